"""When the drop folder is screened: a cron schedule (croniter) or new files arriving."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from croniter import croniter

from fraudnet.errors import ConfigError

__all__ = ["check_cron", "next_run", "folder_signature", "DropFolder"]


def check_cron(expression: str, where: str = "cron") -> None:
    """ConfigError unless `expression` is a valid 5-field cron expression."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ConfigError(f"{where}={expression!r} is not a 5-field cron expression such as '0 2 * * *' "
                          "(minute hour day month weekday) / 定时表达式无效")


def next_run(expression: str, after: datetime) -> datetime:
    """The first time the schedule fires strictly after `after`."""
    return croniter(expression, after).get_next(datetime)


def folder_signature(folder: Path) -> dict[str, tuple[int, int]]:
    """Name → (size, mtime in ns) of the regular files directly in `folder` (hidden and partial files left out)."""
    out: dict[str, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return out
    for entry in entries:
        if entry.name.startswith((".", "~$")) or entry.name.endswith((".part", ".tmp")) or not entry.is_file():
            continue
        st = entry.stat()
        out[entry.name] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass
class DropFolder:
    """A drop folder watched for new or changed files: `changed()` is true once files arrived and then held still
    for `settle_s` seconds (a transfer in progress is not screened half-way)."""

    folder: Path
    settle_s: float = 5.0
    _seen: dict[str, tuple[int, int]] | None = None
    _pending: dict[str, tuple[int, int]] | None = None
    _pending_since: float = 0.0

    def mark_screened(self, signature: dict[str, tuple[int, int]] | None = None) -> None:
        self._seen = folder_signature(self.folder) if signature is None else signature
        self._pending = None

    def changed(self, now_s: float) -> bool:
        current = folder_signature(self.folder)
        if self._seen is None:
            self._seen = {}
        if not set(current.items()) - set(self._seen.items()):
            self._pending = None
            return False
        if current != self._pending:
            self._pending, self._pending_since = current, now_s
            return False
        return now_s - self._pending_since >= self.settle_s
