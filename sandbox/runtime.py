"""What the program's interpreter needs inside the sandbox, and nothing else of the host.

The interpreter's prefix is mounted at /python whatever its host path (the standard
library, the executable, the libraries it links from its prefix), and the virtualenv is
made again at /venv: its site-packages, a bin/python link to /python and a pyvenv.cfg
naming /python (the host's names the host prefix). Every Python's site.py honours a
venv; not every one looks for site-packages beside its standard library (Debian's does
not). Of /usr, only the folders holding the shared libraries the interpreter, its C
modules and the sandbox's own tools load (found with ldd), and the C.UTF-8 locale: not
/usr/bin, /usr/share or /usr/local (world-readable configuration such as npmrc lives
there), nor the host paths of the venv or the prefix. The libraries site-packages'
extensions load from the system (libstdc++ for torch) live in those same folders; a
package needing a system library from anywhere else fails to import, visibly, in the
learner's log.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from sandbox.policy import PYTHON_MOUNT, VENV_MOUNT

# Shell for the start-up shim (command.started_shim); learner code may use it too.
SHELL = "/bin/sh"
LOCALE = "/usr/lib/locale/C.utf8"
_SYSTEM_LIB_DIRS = ("/lib", "/usr/lib")
_PYTHON_NAME = re.compile(r"python(\d+\.\d+)")


@dataclass(frozen=True)
class Runtime:
    # (host path, path inside), read-only, files or folders.
    binds: tuple[tuple[str, str], ...]
    executable: str  # argv[0] inside
    bin_dir: str  # for PATH inside
    env: Mapping[str, str] = field(default_factory=dict)
    # The virtualenv made at VENV_MOUNT: its pyvenv.cfg, and the interpreter its
    # bin/python links to (None: the program runs the prefix's interpreter itself).
    venv_config: str | None = None
    venv_python: str | None = None


@functools.lru_cache(maxsize=8)
def python_runtime(executable: str, tools: tuple[str, ...] = ()) -> Runtime:
    """The mounts that let `executable` (a venv's python or a prefix install's) run inside,
    with `tools` (absolute paths: setpriv, bwrap) at their own paths. Raises ValueError for
    a program that is not a Python interpreter."""
    real = os.path.realpath(executable)
    match = _PYTHON_NAME.fullmatch(os.path.basename(real))
    prefix = os.path.dirname(os.path.dirname(real))
    version = match[1] if match else ""
    stdlib = os.path.join(prefix, "lib", f"python{version}")
    if not match or not os.path.exists(os.path.join(stdlib, "os.py")):
        raise ValueError(
            f"argv[0] {executable!r} is not a Python interpreter with its standard library "
            "beside it; the strict sandbox runs Python programs only"
        )
    inside_lib = f"{PYTHON_MOUNT}/lib"
    inside_exe = f"{PYTHON_MOUNT}/bin/{os.path.basename(real)}"
    binds = [(real, inside_exe), (stdlib, f"{inside_lib}/python{version}")]
    venv = os.path.dirname(os.path.dirname(executable))
    site = os.path.join(venv, "lib", f"python{version}", "site-packages")
    venv_config = None
    if os.path.exists(os.path.join(venv, "pyvenv.cfg")) and os.path.isdir(site):
        binds.append((os.path.realpath(site), f"{VENV_MOUNT}/lib/python{version}/site-packages"))
        venv_config = (
            f"home = {PYTHON_MOUNT}/bin\ninclude-system-site-packages = false\n"
            f"version = {version}\n"
        )
    loaded = shared_libraries(
        [real, *glob.glob(os.path.join(stdlib, "lib-dynload", "*.so")), *_tool_paths(tools)]
    )
    env: dict[str, str] = {}
    # The prefix's own lib folder (libpython of a pyenv or /usr/local build), unless the
    # prefix is the system's (/usr: Debian's python), whose libraries are the system's.
    prefix_lib = os.path.realpath(os.path.join(prefix, "lib"))
    own_libs = [
        lib
        for lib in loaded
        if os.path.dirname(os.path.realpath(lib)) == prefix_lib
        and prefix_lib not in _SYSTEM_LIB_DIRS
    ]
    if own_libs:
        # libpython: its RUNPATH names the host prefix, so the loader is told where it went.
        binds += [
            (os.path.realpath(lib), f"{inside_lib}/{os.path.basename(lib)}") for lib in own_libs
        ]
        env["LD_LIBRARY_PATH"] = inside_lib
    binds += _system_binds([lib for lib in loaded if lib not in own_libs], tools)
    executable_inside = f"{VENV_MOUNT}/bin/python" if venv_config else inside_exe
    return Runtime(
        binds=tuple(binds),
        executable=executable_inside,
        bin_dir=os.path.dirname(executable_inside),
        env=env,
        venv_config=venv_config,
        venv_python=inside_exe if venv_config else None,
    )


@functools.lru_cache(maxsize=4)
def tools_binds(tools: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """The shell and `tools` with the libraries they load: a sandbox that runs no Python."""
    return tuple(_system_binds(shared_libraries(_tool_paths(tools)), tools))


def _tool_paths(tools: tuple[str, ...]) -> list[str]:
    return [os.path.realpath(SHELL), *tools]


def _system_binds(libraries: list[str], tools: tuple[str, ...]) -> list[tuple[str, str]]:
    """The folders of `libraries` (as linked and as resolved: /lib64/ld-linux... is a link
    into /usr/lib/<arch>), the shell where scripts look for it, `tools`, the locale."""
    folders = {
        folder
        for lib in libraries
        for folder in (
            os.path.realpath(os.path.dirname(lib)),
            os.path.dirname(os.path.realpath(lib)),
        )
    }
    binds = [(folder, folder) for folder in sorted(folders)]
    shell_inside = os.path.join(os.path.realpath(os.path.dirname(SHELL)), os.path.basename(SHELL))
    binds += [(os.path.realpath(SHELL), shell_inside), *((tool, tool) for tool in tools)]
    if os.path.isdir(LOCALE):
        binds.append((LOCALE, LOCALE))
    return binds


def shared_libraries(files: list[str]) -> list[str]:
    """Every shared library (and the dynamic loader) that `files` load, as ldd resolves them."""
    try:
        done = subprocess.run(
            ["ldd", *files],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"ldd could not list the interpreter's libraries: {exc}") from exc
    found = []
    for line in done.stdout.splitlines():
        # "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "\t/lib64/ld-linux-x86-64.so.2 (0x...)"
        path = line.split("=>")[-1].strip().split(" (")[0]
        if line.startswith("\t") and os.path.isabs(path) and os.path.exists(path):
            found.append(path)
    return sorted(set(found))
