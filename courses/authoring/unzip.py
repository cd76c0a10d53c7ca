"""Unpack an uploaded course folder (zip) safely, for the importer to read."""

from __future__ import annotations

import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from courses.authoring.source import CourseFolderError

MAX_FILES = 2_000
MAX_UNPACKED_BYTES = 200 * 1024 * 1024


@contextmanager
def unpacked_course_folder(*, upload: BinaryIO, name: str = "upload.zip") -> Iterator[Path]:
    """The course folder inside a zip, unpacked in a temporary folder removed afterwards.

    Refuses links, absolute paths, `..` and zip bombs before writing anything."""
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile:
        raise CourseFolderError(name, "not a zip file") from None
    with archive, tempfile.TemporaryDirectory(prefix="course-import-") as tmp:
        root = Path(tmp)
        members = archive.infolist()
        if len(members) > MAX_FILES:
            raise CourseFolderError(name, f"too many files ({len(members)} > {MAX_FILES})")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise CourseFolderError(name, "unpacks to more than 200 MB")
        for member in members:
            path = PurePosixPath(member.filename)
            if path.is_absolute() or ".." in path.parts:
                raise CourseFolderError(name, f"unsafe path in archive: {member.filename}")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise CourseFolderError(name, f"links are not allowed: {member.filename}")
        try:
            archive.extractall(root)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            # A forged CRC, a truncated member or a bad compression stream: the upload is
            # damaged, which the author can fix; it is not the platform's fault.
            raise CourseFolderError(
                name, f"the zip is damaged ({exc}); zip the folder again"
            ) from None
        candidates = [p.parent for p in root.rglob("course.yaml") if "__MACOSX" not in p.parts]
        if len(candidates) != 1:
            raise CourseFolderError(name, "the zip must contain exactly one course.yaml")
        yield candidates[0]
