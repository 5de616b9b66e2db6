"""Whether a `running` run still runs: decided one way, when reading, without writing.

A training records its host, its process id and that process's start time when
it begins, and a heartbeat at least every few seconds while it trains. A run
stored as `running` reads as `died` when

- its process is on this machine, in this boot and pid namespace, and is gone:
  the pid is free, or it now belongs to another process (a different start
  time: pids are reused); or
- its heartbeat is older than `OUTAGE_AFTER` and its process cannot be seen
  alive (it runs elsewhere, in a container's pid namespace, or its start time
  was never recorded).

Nothing is written: a read-only database reads the same, and a run that was
only suspended reads as `running` again once it beats.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

# A run whose process cannot be seen from here (another machine, another pid namespace) is declared
# dead only after this long without a heartbeat: long enough for a network outage, during which its
# trainer keeps training into its local spool (tracking/spool.py) and syncs later.
OUTAGE_AFTER = timedelta(hours=2)
# Without a heartbeat for this long (a trainer beats every 10 s), a running run is shown as out of
# contact: "no contact since 14:05 UTC (training may continue offline)".
CONTACT_LOST_AFTER = timedelta(minutes=2)
# A sweep trial that began no run is given up after this long (sweep/runner.py).
STALE_AFTER = timedelta(minutes=15)


def this_host() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


@lru_cache(maxsize=1)
def _namespace() -> str | None:
    """This process's pid namespace (the inode of /proc/self/ns/pid), or None where there is none
    to read. A pid names a process only inside its namespace: a training in a container on this
    host has a pid that means nothing (or another process) out here."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    return link[link.find("[") + 1:link.rfind("]")] or None


def _start_tick(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Field 22 of proc(5), `starttime`; the split starts at field 3, `state`.
    return fields[19] if len(fields) > 19 else None


def process_start(pid: int | None) -> str | None:
    """Who process `pid` of this pid namespace is: the boot, the namespace and the clock tick it
    started at (Linux; `boot/namespace/tick`, the boot id without dashes to fit 64 characters),
    else None.

    Two processes that share a pid never share this, so a reused pid is not
    mistaken for the training that used to have it.
    """
    if pid is None or _boot_id() is None:
        return None
    tick = _start_tick(pid)
    if tick is None:
        return None
    namespace = _namespace()
    return f"{_boot_id().replace('-', '')}/{namespace}/{tick}" if namespace else f"{_boot_id()}/{tick}"


def _checkable_here(started: str) -> bool:
    """Whether a process recorded as `started` has its pid in this boot and pid namespace (a
    `boot/tick` identity from before namespaces were recorded is taken to be)."""
    parts = started.split("/")
    if len(parts) != 3:
        return True
    here = _namespace()
    return _boot_id() is not None and parts[0] == _boot_id().replace("-", "") and here is not None \
        and parts[1] == here


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send Ctrl-C there; treat as unknown
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    try:  # a killed child that nobody reaped yet is a zombie: gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _process_state(pid: int, started: str | None) -> str:
    """'gone', 'same' (the very process that began the run) or 'unknown' (among them: a process of
    another pid namespace or boot, whose pid cannot be looked up from here)."""
    if started is not None and not _checkable_here(started):
        return "unknown"
    if not _pid_alive(pid):
        return "gone"
    now_started = process_start(pid)
    if started is None or now_started is None:
        return "unknown"
    if started.count("/") == 1:  # recorded as boot/tick
        now_started = f"{_boot_id()}/{_start_tick(pid)}"
    return "same" if now_started == started else "gone"


def is_dead(
    *, pid: int | None, host: str | None, started: str | None, heartbeat_at: datetime | None, now: datetime
) -> bool:
    """Whether a run stored as `running` has in fact died (see the module's rules)."""
    if host == this_host() and pid is not None:
        state = _process_state(pid, started)
        if state != "unknown":
            return state == "gone"
    return heartbeat_at is None or now - heartbeat_at > OUTAGE_AFTER


def effective_status(row: Any, now: datetime) -> str:
    """The status a stored run reads as: `running` becomes `died` once its process is gone."""
    if row.status != "running":
        return row.status
    dead = is_dead(pid=row.pid, host=row.host, started=row.process_start, heartbeat_at=row.heartbeat_at, now=now)
    return "died" if dead else "running"


def contact_note(row: Any, now: datetime) -> str | None:
    """For a run that reads as `running` but has not beaten for CONTACT_LOST_AFTER (its trainer lost
    the database, or it died far away and OUTAGE_AFTER has not passed): what others are told."""
    if effective_status(row, now) != "running" or row.heartbeat_at is None:
        return None
    if now - row.heartbeat_at <= CONTACT_LOST_AFTER:
        return None
    return f"no contact since {row.heartbeat_at:%Y-%m-%d %H:%M} UTC (training may continue offline)"


def identity(pid: int | None) -> dict[str, Any]:
    """The columns that let later readers recognise the process of a starting run."""
    return {"host": this_host(), "process_start": process_start(pid)}
