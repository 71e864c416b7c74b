"""Workspace file safety: folder 0700 and files 0600 (names, addresses, birth dates are in clear), and a clear
answer when another process (usually `fraudnet serve`) holds the claims store's write lock."""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import duckdb

from fraudnet.errors import StoreError

__all__ = ["LOCK_WAIT_ENV", "secure_workspace", "secure_file", "connect_waiting", "lock_holder"]

log = logging.getLogger(__name__)

LOCK_WAIT_ENV = "FRAUDNET_LOCK_WAIT"
_LOCK_RE = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def secure_workspace(workspace: Path) -> None:
    """Create the workspace folder with mode 0700, and take group/other access away from an existing one of ours."""
    workspace.mkdir(mode=0o700, parents=True, exist_ok=True)
    _restrict(workspace, 0o700)


def secure_file(path: Path) -> None:
    """Mode 0600 for a workspace file of ours (no-op when missing or not ours)."""
    _restrict(path, 0o600)


def _restrict(path: Path, mode: int) -> None:
    try:
        st = os.stat(path)
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
    except FileNotFoundError:
        pass
    except OSError as exc:  # e.g. a read-only mount: the data is still readable by its own rules
        log.warning("could not restrict the mode of %s: %s", path, exc)


def lock_holder(message: str) -> tuple[int, str] | None:
    """(PID, command line) of the process DuckDB names in a lock error, or None."""
    match = _LOCK_RE.search(message)
    if not match:
        return None
    pid, command = int(match.group(2)), match.group(1)
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or command
    except OSError:
        pass
    return pid, command


def _lock_wait_s() -> float:
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return 0.0
    try:
        return max(0.0, float(text))
    except ValueError as exc:
        raise StoreError(f"{LOCK_WAIT_ENV}={text!r} is not a number of seconds") from exc


def connect_waiting(path: Path, read_only: bool, wait_s: float | None = None) -> Any:
    """`duckdb.connect`, waiting up to `wait_s` (default `FRAUDNET_LOCK_WAIT`, else 0) seconds for another
    process's lock; then a StoreError naming that process and what to do instead. Other errors pass through."""
    wait_s = _lock_wait_s() if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            if time.monotonic() < deadline:
                if not announced:
                    log.warning("claims store %s is locked by another process; waiting up to %.0f s", path, wait_s)
                    announced = True
                time.sleep(0.5)
                continue
            raise StoreError(_lock_message(path, str(exc), wait_s)) from exc


def _lock_message(path: Path, message: str, wait_s: float) -> str:
    holder = lock_holder(message)
    who = f"process {holder[0]} ({holder[1]})" if holder else "another process"
    serving = holder is not None and " serve" in f" {holder[1]}"
    waited = f" after waiting {wait_s:g} s" if wait_s else ""
    advice = ("while `fraudnet serve` runs, use its API instead (POST /api/jobs/ingest, POST /api/jobs/detect, "
              "POST /api/leads/{id}/status; `fraudnet tokens` works as is) or stop it"
              if serving else "wait for it to finish or stop it")
    return (f"claims store {path} is in use by {who}{waited}: DuckDB lets one process write at a time; {advice}; "
            f"or wait for the lock with `fraudnet --wait SECONDS …` ({LOCK_WAIT_ENV}=SECONDS) / 理赔库正被其他进程占用"
            f"{'（fraudnet serve）' if serving else ''}，请通过接口操作、停止该进程，或用 --wait 等待")
