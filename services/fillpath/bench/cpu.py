"""CPU time a server spent, read from /proc (Linux): what a call costs, beside how long it took.

A latency figure says how a call felt; the CPU a call costs says how many of them a core can
serve. The benchmarks read both for the same run: the CPU (user + system) of a process and of all
its descendants (worker processes, a Postgres server's backends) before and after the load.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by `pid` and its living descendants; 0 for a process gone."""
    total = 0.0
    pending = [pid]
    while pending:
        process = Path("/proc") / str(pending.pop())
        try:
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
            for task in (process / "task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended while we looked
    return total


def postgres_pid(data_dir: Path) -> int:
    """The postmaster of the cluster in `data_dir` (its backends are its children)."""
    return int((data_dir / "postmaster.pid").read_text().split()[0])
