"""CPU seconds spent by each of the bench's processes (Linux `/proc`), to tell where an
order's time goes: the Temporal dev server, the worker (in the bench's own process, with
the bench's placing of orders), the API, the sandboxes standing in for the four systems."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/stat").read_text()
        return text.rsplit(")", 1)[1].split()
    return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def process_cpu_s(pid: int, *, with_children: bool = True) -> float:
    """User + system CPU seconds of `pid` (and of its live descendants): the state field
    is the first after the name, utime and stime the 12th and 13th (proc(5))."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    if with_children:
        total += sum(process_cpu_s(child) for child in _children(pid))
    return total


def cpu_by_process(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named process tree; the bench's own process alone (its
    children are the servers, counted under their own names)."""
    own = os.getpid()
    return {
        name: process_cpu_s(pid, with_children=pid != own)
        for name, pid in pids.items()
        if pid is not None
    }
