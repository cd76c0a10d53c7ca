"""Run untrusted learner code in a sandbox.

Plain Python, no Django: the worker reads the settings and passes them in, so
this module can be tested (and reasoned about) on its own.

STRICT mode, as root (a Celery worker on a server)::

    the job folder's files -> a size-capped tmpfs   (its quota; back on disk after the run)
    sh: join fresh memory and pids cgroups    (where writable)
    prlimit: cpu, fsize, nofile, core         (+ nproc without a pids cgroup,
                                               + address space without a memory cgroup)
    bwrap --args FD (root, no user namespace) mounts the sandbox, new pid/net/ipc/uts
      setpriv -> uid 65534, or a uid lent to this run alone without a pids cgroup;
                 no groups, no capabilities, no_new_privs
        bwrap (unprivileged, user namespace)  forbids nested user namespaces; 65534 inside
          sh: report "started", stdin -> /dev/null
            the learner's program: /venv/bin/python, the job at /job

Inside, host paths are neutral: the interpreter's prefix is at /python, its venv made
again at /venv, of /usr only the library folders it loads (sandbox/runtime.py),
the job at /job, a GPU's device nodes only where the policy names them (a `gpu` lab on a
GPU worker), and bubblewrap reads its mount list from a file descriptor, so its
command line (the sandbox's /proc/1/cmdline) names no host folder and no job.

The outer bubblewrap runs as root without a user namespace because the
interpreter lives under /root (mode 700): only root can bind it, and a
bubblewrap started as root *with* a user namespace maps the sandbox to host
uid 0 (SANDBOX.md, pitfall 2). So privileges are dropped inside, after the
mounts, with setpriv. A second, unprivileged bubblewrap then sets
``--disable-userns``: without it the learner could create user namespaces,
the usual door to kernel exploits (nf_tables and friends).

STRICT mode without root (a developer's laptop): one unprivileged bubblewrap
with its own user namespace does all of the above.

BASIC mode (no bubblewrap): rlimits, an empty environment, the job folder as
working directory, and a memory cgroup where writable. It isolates neither
the network nor the file system, and says so loudly.
"""

from __future__ import annotations

from sandbox.capabilities import (
    Capabilities,
    capabilities_report,
    detect_capabilities,
    nvidia_device_nodes,
)
from sandbox.jobfiles import open_job_file
from sandbox.jobspace import JobFilesLost
from sandbox.policy import (
    LIMIT_OUTCOMES,
    MAX_LINE_BYTES,
    MAX_STDOUT_BYTES,
    QUOTA_OUTCOMES,
    STDERR_TAIL_BYTES,
    Limits,
    SandboxError,
    SandboxMode,
    SandboxPolicy,
    SandboxUnavailable,
    UnsafeJobFile,
)
from sandbox.supervisor import SandboxResult, run, run_sandboxed

__all__ = [
    "LIMIT_OUTCOMES",
    "MAX_LINE_BYTES",
    "MAX_STDOUT_BYTES",
    "QUOTA_OUTCOMES",
    "STDERR_TAIL_BYTES",
    "Capabilities",
    "JobFilesLost",
    "Limits",
    "SandboxError",
    "SandboxMode",
    "SandboxPolicy",
    "SandboxResult",
    "SandboxUnavailable",
    "UnsafeJobFile",
    "capabilities_report",
    "detect_capabilities",
    "nvidia_device_nodes",
    "open_job_file",
    "run",
    "run_sandboxed",
]
