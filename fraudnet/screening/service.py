"""The screening cycle inside `fraudnet serve --watch DIR`: a watcher thread submits each cycle as a job of the
server, which stays the workspace's one writer (leads saved under its write lock, caches renewed, graph refreshed)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from fraudnet.screening.cycle import screen_folder
from fraudnet.screening.schedule import DropFolder, next_run
from fraudnet.screening.settings import ScreeningSettings

__all__ = ["ScreeningService"]

log = logging.getLogger(__name__)


class ScreeningService:
    """Watches `folder` for the server whose services are `services` (`fraudnet.api.context.ApiServices`): on the
    cron schedule, when new files have arrived and held still, or on request (`trigger`), one screening job."""

    def __init__(self, services: Any, folder: Path, settings: ScreeningSettings) -> None:
        self.services = services
        self.folder = Path(folder)
        self.settings = settings
        self.drop = DropFolder(self.folder)
        self.next_due = next_run(settings.cron, datetime.now())
        self.last_job: str | None = None
        self._busy = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the job -------------------------------------------------------------------------------------------------
    def _graph_sync(self, store: Any, data_changed: bool) -> dict[str, Any]:
        graph = self.services.graph
        out: dict[str, Any] = {}
        if data_changed:
            out["refresh"] = graph.refresh_after_ingest(store)
        current = graph.store
        if current.syncs_leads:
            from fraudnet.claims.leads import LeadStore

            rows = LeadStore(store.con).all_leads()
            out["leads_synced"] = current.sync_leads(rows)
        return out

    def job(self, trigger: str) -> Any:
        """The job body: one cycle over the drop folder on the job thread's cursor."""

        def run(progress: Any) -> dict[str, Any]:
            with self._busy:
                progress.stage(0.0, 1.0, f"screening {self.folder.name} / 筛查投放目录")
                signature = self.drop_signature()
                claims = self.services.claims
                report = screen_folder(claims.job_store(), self.folder, self.settings, trigger=trigger,
                                       write_lock=claims.writing, leads_changed=self.services.leads.changed,
                                       graph_sync=self._graph_sync)
                self.drop.mark_screened(signature)
                new = report.get("new_leads", {})
                return {"run_id": report["run_id"], "status": report["status"], "new_red": new.get("red", 0),
                        "new_orange": new.get("orange", 0),
                        "files": dict(Counter(f["status"] for f in report.get("ingest", {}).get("files", [])))}

        return run

    def drop_signature(self) -> dict[str, tuple[int, int]]:
        from fraudnet.screening.schedule import folder_signature

        return folder_signature(self.folder)

    def trigger(self, trigger: str = "request", user: str = "watch") -> Any:
        """Queue one screening job now; returns the job."""
        job = self.services.jobs.submit("screening", user, self.job(trigger))
        self.last_job = job.job_id
        return job

    # -- the watcher thread -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.drop.mark_screened({})  # files already in the folder at start-up are screened at the first look
        self._thread = threading.Thread(target=self._loop, name="fraudnet-watch", daemon=True)
        self._thread.start()
        log.info("watching %s: schedule '%s', next %s", self.folder, self.settings.cron, self.next_due)

    def _loop(self) -> None:
        tick = min(self.settings.poll_s or 30.0, 30.0)
        while not self._stop.wait(tick):
            try:
                now = datetime.now()
                if self._busy.locked():
                    continue
                if now >= self.next_due:
                    self.trigger("schedule")
                    self.next_due = next_run(self.settings.cron, now)
                elif self.settings.poll_s and self.drop.changed(time.monotonic()):
                    self.drop.mark_screened()  # queued: the job marks what it saw
                    self.trigger("files")
            except Exception:  # noqa: BLE001 - the watcher must outlive one bad tick
                log.exception("screening watcher tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def status(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "cron": self.settings.cron, "next_scheduled": self.next_due,
                "poll_seconds": self.settings.poll_s, "last_job": self.last_job,
                "response_hours": self.settings.response_hours}
