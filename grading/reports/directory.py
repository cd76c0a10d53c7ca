"""The employee directory import: a CSV from HR's system of record becomes users and profiles.

`directory_plan` reads a file and the database and says what an import would change, writing
nothing; `directory_apply` makes exactly those changes in one transaction and then enrolls new
members of assigned departments. Keyed on the employee id, so the same file twice changes nothing.

Columns: employee_id, name, email, department, manager_employee_id, active (any order).
A file with any bad row is refused whole, each problem naming its row; nothing is imported.

People absent from the file are left as they are (a file may cover one site): a leaver is marked
`active=false`, which sets `User.is_active = False` and keeps every record of theirs.

Usernames of new people: the email's local part, lower-cased and cut to the characters Django
allows; if that is taken (case-insensitively), `<local>-<employee id>`, then a counter. The
username is chosen once, at creation, and never changed by a later import. New people get an
unusable password: they sign in through single sign-on or a password-reset link.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from academy.numbers import count_text
from academy.refusals import Refusal
from courses.models import Department, EmployeeProfile
from courses.services import department_slug
from grading.models import EmployeeImport
from grading.reports.services import department_assignments_sync

COLUMNS = ("employee_id", "name", "email", "department", "manager_employee_id", "active")
MAX_BYTES = 20 * 1024 * 1024  # ~250,000 rows; a directory export is far smaller
MAX_ERRORS_SHOWN = 50
PREVIEW_LIFETIME = datetime.timedelta(hours=24)
ACTIVE_VALUES = {
    **dict.fromkeys(("true", "yes", "y", "1", "active"), True),
    **dict.fromkeys(("false", "no", "n", "0", "inactive"), False),
}
_USERNAME_BAD = re.compile(r"[^\w.@+-]", re.ASCII)


class DirectoryRefused(Refusal):
    """A file that cannot be imported; `errors` lists every problem found, by row."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        super().__init__(
            "Nothing was imported: "
            + "; ".join(shown)
            + (f"; and {more} more problem(s)" if more > 0 else "")
            + "."
        )
        self.errors = errors


@dataclass(frozen=True)
class PersonFields:
    """What the directory says about one person: the User and EmployeeProfile fields it owns.

    An import writes thousands at once, in bulk; single sign-on writes one person at a time
    (courses.services.employee_profile_update). Both find departments by name in any case
    and make new ones with courses.services.department_slug.
    """

    employee_id: str
    first_name: str
    last_name: str
    email: str
    department: str  # a department name; "" for none
    manager_employee_id: str  # "" for none
    is_active: bool


def person_from_row(row: dict[str, str]) -> PersonFields:
    """One CSV row (already checked) as the fields it sets. The name is split at its first
    space, so `get_full_name()` gives it back exactly; emails are compared lower-cased."""
    first, _, last = row["name"].partition(" ")
    return PersonFields(
        employee_id=row["employee_id"],
        first_name=first,
        last_name=last,
        email=row["email"].lower(),
        department=row["department"],
        manager_employee_id=row["manager_employee_id"],
        is_active=ACTIVE_VALUES[row["active"].lower()],
    )


@dataclass(frozen=True)
class Current:
    """A person as the database has them, in the terms of PersonFields."""

    user_id: int
    first_name: str
    last_name: str
    email: str
    department: str
    manager_employee_id: str
    is_active: bool


def person_diff(person: PersonFields, current: Current) -> dict[str, tuple[str, str]]:
    """Field → (now, after) for every field the import would change."""
    pairs = {
        "name": (f"{current.first_name} {current.last_name}".strip(),
                 f"{person.first_name} {person.last_name}".strip()),
        "email": (current.email, person.email),
        "department": (current.department, person.department),
        "manager": (current.manager_employee_id, person.manager_employee_id),
        "active": (_yes(current.is_active), _yes(person.is_active)),
    }  # fmt: skip
    if current.email.lower() == person.email:
        pairs["email"] = (person.email, person.email)  # a change of case alone is no change
    return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


def _yes(value: bool) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------
# Reading the file


def directory_parse(data: bytes) -> list[tuple[int, PersonFields]]:
    """The file's rows as (row number, person); DirectoryRefused names every bad row.

    Row numbers are a spreadsheet's: the header is row 1."""
    if len(data) > MAX_BYTES:
        raise DirectoryRefused(
            [gettext("the file is larger than %(mb)s MB") % {"mb": MAX_BYTES // 1024 // 1024}]
        )
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DirectoryRefused(
            [f"row {line}: the file is not UTF-8 (byte {exc.start}); save it as CSV UTF-8"]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(header) != len(set(header)):
        problem = "; ".join(
            filter(
                None,
                [
                    "missing " + ", ".join(missing) if missing else "",
                    "unknown " + ", ".join(repr(u) for u in unknown) if unknown else "",
                    "a column appears twice" if len(header) != len(set(header)) else "",
                ],
            )
        )
        raise DirectoryRefused(
            [f"row 1: the header must name the columns {', '.join(COLUMNS)} ({problem})"]
        )
    errors: list[str] = []
    people: list[tuple[int, PersonFields]] = []
    seen_ids: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                errors.append(f"row {line}: {len(cells)} cells, the header has {len(header)}")
                continue
            row = {name: " ".join(value.split()) for name, value in zip(header, cells, strict=True)}
            problems = _row_problems(row)
            eid, email = row["employee_id"], row["email"].lower()
            if eid and eid in seen_ids:
                problems.append(f"employee id {eid} is also on row {seen_ids[eid]}")
            if email and email in seen_emails:
                problems.append(f"email {email} is also on row {seen_emails[email]}")
            seen_ids.setdefault(eid, line)
            seen_emails.setdefault(email, line)
            if problems:
                errors.append(
                    f"row {line}" + (f" ({eid})" if eid else "") + ": " + ", ".join(problems)
                )
            else:
                people.append((line, person_from_row(row)))
    except csv.Error as exc:
        errors.append(f"row {reader.line_num}: not valid CSV ({exc})")
    if errors:
        raise DirectoryRefused(errors)
    if not people:
        raise DirectoryRefused([gettext("the file has a header but no rows")])
    return people


def _row_problems(row: dict[str, str]) -> list[str]:
    problems = []
    if not row["employee_id"]:
        problems.append(gettext("missing employee id"))
    elif len(row["employee_id"]) > 40:
        problems.append(gettext("employee id longer than 40 characters"))
    if not row["name"]:
        problems.append(gettext("missing name"))
    else:
        first, _, last = row["name"].partition(" ")
        if len(first) > 150 or len(last) > 150:
            problems.append(gettext("name too long"))
    try:
        validate_email(row["email"])
    except ValidationError:
        problems.append(
            gettext("bad email %(email)r") % {"email": row["email"]}
            if row["email"]
            else gettext("missing email")
        )
    if len(row["department"]) > 120:
        problems.append(gettext("department name longer than 120 characters"))
    if row["manager_employee_id"] and row["manager_employee_id"] == row["employee_id"]:
        problems.append(gettext("is their own manager"))
    if row["active"].lower() not in ACTIVE_VALUES:
        problems.append(f"active must be true or false (or yes/no, 1/0), not {row['active']!r}")
    return problems


# --------------------------------------------------------------------------
# The plan: what an import would change


@dataclass
class DirectoryPlan:
    created: list[PersonFields] = field(default_factory=list)
    linked: dict[str, int] = field(default_factory=dict)  # employee id → profile-less user
    updated: list[tuple[PersonFields, dict[str, tuple[str, str]]]] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)  # employee ids, also in `updated`
    departments_created: list[str] = field(default_factory=list)
    unchanged: int = 0
    usernames: dict[str, str] = field(default_factory=dict)  # employee id → new username
    enrolled: int = 0  # filled in by directory_apply

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.departments_created)

    def digest(self) -> str:
        """A fingerprint of the changes, so a confirmation applies the plan it was shown."""
        h = hashlib.sha256()
        for p in self.created:
            h.update(
                f"c{p}{self.usernames.get(p.employee_id)}{self.linked.get(p.employee_id)}".encode()
            )
        for p, diff in self.updated:
            h.update(f"u{p}{sorted(diff.items())}".encode())
        h.update(f"d{self.departments_created}{self.unchanged}".encode())
        return h.hexdigest()

    def summary(self) -> str:
        if not self.changes:
            return gettext("0 changes: all %(count)s people already match the file.") % {
                "count": count_text(self.unchanged)
            }
        departments = ngettext(
            "%(count)s department created",
            "%(count)s departments created",
            len(self.departments_created),
        ) % {"count": count_text(len(self.departments_created))}
        enrolled = (
            ngettext(
                "; %(count)s enrollment from department assignments",
                "; %(count)s enrollments from department assignments",
                self.enrolled,
            )
            % {"count": count_text(self.enrolled)}
            if self.enrolled
            else ""
        )
        return gettext(
            "%(created)s created, %(updated)s updated, %(deactivated)s deactivated, "
            "%(departments)s, %(unchanged)s unchanged%(enrolled)s."
        ) % {
            "created": count_text(len(self.created)),
            "updated": count_text(len(self.updated) - len(self.deactivated)),
            "deactivated": count_text(len(self.deactivated)),
            "departments": departments,
            "unchanged": count_text(self.unchanged),
            "enrolled": enrolled,
        }


def _department_key(name: str) -> str:
    return name.casefold()


def directory_plan(people: list[tuple[int, PersonFields]]) -> DirectoryPlan:
    """Compare the file with the database; refuses rows whose manager is unknown or circular,
    or whose email belongs to someone else. Reads only."""
    departments = {_department_key(n): n for n in Department.objects.values_list("name", flat=True)}
    profiles = list(
        EmployeeProfile.objects.values_list(
            "employee_id",
            "user_id",
            "user__first_name",
            "user__last_name",
            "user__email",
            "user__is_active",
            "department__name",
            "manager_id",
        )
    )
    eid_of_user = {row[1]: row[0] for row in profiles}
    current = {
        eid: Current(uid, first, last, email, dept or "", eid_of_user.get(mgr, "") if mgr else "", active)
        for eid, uid, first, last, email, active, dept, mgr in profiles
    }  # fmt: skip
    in_file = {p.employee_id: p for _, p in people}
    errors = _manager_problems(people, in_file, current)
    # Whose email is whose: an email held by another employee is refused; one held by exactly
    # one account without a profile (made by hand before the directory) links that account.
    owner_of_email = {c.email.lower(): eid for eid, c in current.items() if c.email}
    profile_less: dict[str, list[int]] = defaultdict(list)
    taken_usernames: set[str] = set()
    for uid, email, username, has_profile in User.objects.values_list(
        "id", "email", "username", "profile__id"
    ):
        taken_usernames.add(username.lower())
        if has_profile is None and email:
            profile_less[email.lower()].append(uid)
    plan = DirectoryPlan()
    new_departments: dict[str, str] = {}
    for line, person in people:
        owner = owner_of_email.get(person.email)
        if (
            owner
            and owner != person.employee_id
            and (owner not in in_file or in_file[owner].email == person.email)
        ):
            errors.append(
                f"row {line} ({person.employee_id}): email {person.email} belongs to employee {owner}"
            )
            continue
        key = _department_key(person.department)
        if person.department and key not in departments and key not in new_departments:
            new_departments[key] = person.department
        was = current.get(person.employee_id)
        if was is None:
            accounts = profile_less.get(person.email, [])
            if len(accounts) > 1:
                errors.append(
                    f"row {line} ({person.employee_id}): {len(accounts)} accounts without an "
                    f"employee id have the email {person.email}; remove all but one first"
                )
                continue
            if accounts:
                plan.linked[person.employee_id] = accounts[0]
            else:
                plan.usernames[person.employee_id] = _new_username(person, taken_usernames)
            plan.created.append(person)
            continue
        # An existing department spelt in another case is that department, not a change.
        target = departments.get(key, person.department) if person.department else ""
        diff = person_diff(_with_department(person, target), was)
        if diff:
            plan.updated.append((person, diff))
            if "active" in diff and not person.is_active:
                plan.deactivated.append(person.employee_id)
        else:
            plan.unchanged += 1
    if errors:
        raise DirectoryRefused(errors)
    plan.departments_created = sorted(new_departments.values(), key=str.casefold)
    return plan


def _with_department(person: PersonFields, name: str) -> PersonFields:
    return PersonFields(**{**person.__dict__, "department": name})


def _manager_problems(
    people: list[tuple[int, PersonFields]],
    in_file: dict[str, PersonFields],
    current: dict[str, Current],
) -> list[str]:
    """Managers must exist (in the file or the database), and the chain may not loop: the
    chain is followed through the file's managers and, for people not in it, the database's."""
    errors = []
    line_of = {p.employee_id: line for line, p in people}

    def manager_of(eid: str) -> str:
        if eid in in_file:
            return in_file[eid].manager_employee_id
        c = current.get(eid)
        return c.manager_employee_id if c else ""

    for line, person in people:
        m = person.manager_employee_id
        if m and m not in in_file and m not in current:
            errors.append(
                f"row {line} ({person.employee_id}): manager {m} is neither in the file nor in the directory"
            )
    if errors:
        return errors
    state: dict[str, int] = {}  # 1 = on the current path, 2 = known to end
    for _, person in people:
        path: list[str] = []
        eid = person.employee_id
        while eid and state.get(eid) is None:
            state[eid] = 1
            path.append(eid)
            eid = manager_of(eid)
        if eid and state.get(eid) == 1:
            loop = [*path[path.index(eid) :], eid]
            first = min(line_of.get(e, 10**9) for e in loop)
            errors.append(f"row {first} ({loop[0]}): manager cycle " + " → ".join(loop))
        for e in path:
            state[e] = 2
    return errors


def _new_username(person: PersonFields, taken: set[str]) -> str:
    local = _USERNAME_BAD.sub("", person.email.split("@", 1)[0].lower())[:100] or "employee"
    candidates = [local, f"{local}-{_USERNAME_BAD.sub('', person.employee_id.lower())}"[:140]]
    name = next((c for c in candidates if c not in taken), None)
    counter = 2
    while name is None:
        name = f"{local}-{counter}" if f"{local}-{counter}" not in taken else None
        counter += 1
    taken.add(name)
    return name


# --------------------------------------------------------------------------
# Applying


def directory_preview(data: bytes) -> DirectoryPlan:
    """What importing this file would change; writes nothing."""
    return directory_plan(directory_parse(data))


def directory_apply(data: bytes, *, expected_digest: str | None = None) -> DirectoryPlan:
    """Import the file: one transaction, bulk writes, then enroll new members of assigned
    departments. With `expected_digest`, refuses if the plan is no longer the one previewed
    (the database changed in between)."""
    people = directory_parse(data)
    with transaction.atomic():
        plan = directory_plan(people)
        if expected_digest is not None and plan.digest() != expected_digest:
            raise DirectoryRefused(
                [gettext("the directory changed since the preview; preview the file again")]
            )
        if plan.changes:
            _write(plan)
            plan.enrolled = department_assignments_sync()
    return plan


def _write(plan: DirectoryPlan) -> None:
    batch = 2000
    taken = set(Department.objects.values_list("slug", flat=True))
    new = []
    for name in plan.departments_created:
        slug = department_slug(name, taken=taken.__contains__)
        taken.add(slug)
        new.append(Department(name=name, slug=slug))
    Department.objects.bulk_create(new, batch_size=batch)
    department_id = {
        _department_key(n): pk for pk, n in Department.objects.values_list("id", "name")
    }
    unusable = make_password(None)  # one unusable value; hashing 50,000 passwords takes hours
    joined = timezone.now()
    _insert(
        User,
        ["username", "first_name", "last_name", "email", "is_active", "password", "is_staff",
         "is_superuser", "date_joined"],
        [
            (plan.usernames[p.employee_id], p.first_name, p.last_name, p.email, p.is_active,
             unusable, False, False, joined)
            for p in plan.created
            if p.employee_id not in plan.linked
        ],
    )  # fmt: skip
    new_names = set(plan.usernames.values())
    user_of: dict[str, int] = dict(EmployeeProfile.objects.values_list("employee_id", "user_id"))
    by_username = {
        u: pk
        for pk, u in User.objects.filter(profile__isnull=True).values_list("id", "username")
        if u in new_names
    }
    for eid, username in plan.usernames.items():
        user_of[eid] = by_username[username]
    user_of.update(plan.linked)

    def dept(p: PersonFields) -> int | None:
        return department_id[_department_key(p.department)] if p.department else None

    def manager(p: PersonFields) -> int | None:
        return user_of[p.manager_employee_id] if p.manager_employee_id else None

    _insert(
        EmployeeProfile,
        ["user", "employee_id", "department", "manager"],
        [(user_of[p.employee_id], p.employee_id, dept(p), manager(p)) for p in plan.created],
    )
    linked = [p for p in plan.created if p.employee_id in plan.linked]
    _update_users(linked, user_of, ["first_name", "last_name", "email", "is_active"])
    _update_users(
        [p for p, diff in plan.updated if diff.keys() & {"name", "email", "active"}],
        user_of,
        ["first_name", "last_name", "email", "is_active"],
    )
    moved = [p for p, diff in plan.updated if diff.keys() & {"department", "manager"}]
    changed = []
    for start in range(0, len(moved), batch):
        chunk = moved[start : start + batch]
        profiles = {
            pr.employee_id: pr
            for pr in EmployeeProfile.objects.filter(employee_id__in=[p.employee_id for p in chunk])
        }
        for p in chunk:
            profile = profiles[p.employee_id]
            profile.department_id = dept(p)
            profile.manager_id = manager(p)
            changed.append(profile)
    EmployeeProfile.objects.bulk_update(changed, ["department", "manager"], batch_size=500)


def _insert(model: type[Model], fields: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert plain rows: COPY on PostgreSQL, one prepared statement on SQLite. bulk_create
    builds a model instance and compiles SQL per row, which was most of the time of a
    50,000-person import; on PostgreSQL, so is executemany's round of messages per row."""
    if not rows:
        return
    meta = model._meta
    # Concrete fields only (a reverse relation has no column); the stubs type it as either.
    columns = [cast(Field, meta.get_field(name)) for name in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(str(field.column)) for field in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = [
            connection.ops.adapt_datetimefield_value
            if field.get_internal_type() == "DateTimeField"
            else None
            for field in columns
        ]
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608 - names from the model
        cursor.executemany(
            sql, [tuple(a(v) if a else v for a, v in zip(adapt, row, strict=True)) for row in rows]
        )


def _update_users(people: list[PersonFields], user_of: dict[str, int], fields: list[str]) -> None:
    users = [
        User(
            pk=user_of[p.employee_id],
            first_name=p.first_name,
            last_name=p.last_name,
            email=p.email,
            is_active=p.is_active,
        )
        for p in people
    ]
    User.objects.bulk_update(users, fields, batch_size=500)


# --------------------------------------------------------------------------
# The HR page: upload → preview (the file kept server-side) → confirm


def employee_import_preview(
    *, data: bytes, filename: str, actor: User
) -> tuple[EmployeeImport, DirectoryPlan]:
    """Check and plan an uploaded file, and keep it for its confirmation. Writes only that."""
    plan = directory_preview(data)
    upload = EmployeeImport.objects.create(
        uploaded_by=actor,
        filename=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        plan_digest=plan.digest(),
    )
    return upload, plan


def employee_import_confirm(*, upload_id: int, sha256: str, actor: User) -> DirectoryPlan:
    """Apply the file previewed as `upload_id`, once, if it is still the one that was shown."""
    with transaction.atomic():
        upload = (
            EmployeeImport.objects.select_for_update()
            .filter(pk=upload_id, uploaded_by=actor)
            .first()
        )
        if upload is None or upload.sha256 != sha256:
            raise DirectoryRefused([gettext("this preview is unknown; upload the file again")])
        data = bytes(upload.content)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DirectoryRefused(
                [gettext("the stored file does not match its preview; upload it again")]
            )
        if upload.applied_at is not None:
            raise DirectoryRefused(
                [f"this file was imported already, at {upload.applied_at:%H:%M}"]
            )
        if timezone.now() - upload.uploaded_at > PREVIEW_LIFETIME:
            raise DirectoryRefused(
                [gettext("this preview is over a day old; upload the file again")]
            )
        plan = directory_apply(data, expected_digest=upload.plan_digest)
        upload.applied_at = timezone.now()
        upload.summary = plan.summary()
        upload.save(update_fields=["applied_at", "summary"])
    return plan
