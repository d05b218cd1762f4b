"""Which process is this, and is that one still alive: what crash clean-up compares.

A writer or a run is attributed to a process by (host, pid, start). `start` is the process's start
time in clock ticks since boot (field 22 of `/proc/<pid>/stat`), so a pid the kernel has since
given to another process does not count as the same process. Without `/proc` (not Linux), `start`
is None and only the pid is checked (`os.kill(pid, 0)`).

A process is alive on *this* host only: nothing here can tell whether a pid on another machine
runs, so callers compare the host first.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    start: int | None  # clock ticks since boot; None where /proc is missing


def hostname() -> str:
    return socket.gethostname()


def host_key(host: str | None = None) -> str:
    """Eight hex digits standing for `host` (default: this host) where a hostname cannot go."""
    return hashlib.sha256((host if host is not None else hostname()).encode()).hexdigest()[:8]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start ticks) of `pid` from /proc, or None when /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # Field 2 (the command) may hold spaces and parentheses: count the fields after its last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[19])  # fields 3 (state) and 22 (starttime)
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if it is gone or /proc is missing."""
    stat = _stat(pid)
    return stat[1] if stat else None


def current() -> ProcessId:
    """This process."""
    pid = os.getpid()
    return ProcessId(hostname(), pid, start_ticks(pid))


def is_alive(pid: int, start: int | None = None) -> bool:
    """Whether process `pid` of this host runs and, if `start` is given, is the process that started
    then (not a later one that reuses the pid). A zombie (exited, not yet reaped) is not alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    stat = _stat(pid)
    if stat is None:  # no /proc (or it vanished just now): the signal check is all there is
        return _proc_missing()
    state, ticks = stat
    if state in ("Z", "X", "x"):
        return False
    return start is None or ticks == start


def _proc_missing() -> bool:
    """True where /proc does not exist (so a live pid cannot be checked further), False on Linux
    (where a missing /proc/<pid> means the process exited between the two checks)."""
    return not os.path.isdir("/proc/self")
