"""`fraudnet serve --watch DIR`: the server screens a drop folder as its own job; run reports at /api/runs; red leads
carry their response clock in the lead API, and cached lead pages are renewed when a deadline passes."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from fraudnet.api import lead_clock
from fraudnet.claims.leads import LeadStore
from fraudnet.claims.tokens import TokenStore
from fraudnet.generate.days import next_day
from tests.fixtures.server import copy_workspace, start_server, stop_server
from tests.test_screening import _Hook


def _wait(client: httpx.Client, path: str, ok: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(path)
        if r.status_code == 200 and ok(r.json()):
            return r.json()
        time.sleep(1)
    raise AssertionError(f"{path} did not answer as expected within {timeout} s: {r.status_code} {r.text[:300]}")


@pytest.mark.timeout(900)
def test_serve_watch_screens_a_drop_and_reports(small_claims_workspace: Path, small_city_dir: Path,
                                                tmp_path: Path) -> None:
    import threading
    from http.server import HTTPServer

    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    ws = copy_workspace(small_claims_workspace, tmp_path / "ws")
    tokens = TokenStore(ws)
    admin, viewer = tokens.create("ada", "admin"), tokens.create("vic", "viewer")
    tokens.close()
    drop = tmp_path / "drop"
    drop.mkdir()
    env = {"FRAUDNET_WATCH_POLL": "1", "FRAUDNET_NOTIFY_WEBHOOK": f"http://127.0.0.1:{hook.server_address[1]}/h",
           "FRAUDNET_GRAPH_WORKERS": "0"}
    proc, url = start_server(ws, tmp_path / "serve.log", env=env, extra_args=["--watch", str(drop)])
    try:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
        assert client.get("/api/runs/latest").status_code == 404  # nothing screened yet
        watch = client.get("/api/runs/watch").json()
        assert watch["folder"] == str(drop) and watch["cron"] == "0 2 * * *" and watch["response_hours"] == 5
        _, rows = next_day(small_city_dir, tmp_path / "next")
        for f in (tmp_path / "next").iterdir():
            shutil.copy(f, drop / f.name)
        report = _wait(client, "/api/runs/latest", lambda r: r["status"] in ("ok", "failed"))
        assert report["status"] == "ok" and report["trigger"] == "files"
        assert report["ingest"]["files_loaded"] == 4 and report["ingest"]["rows_loaded"] == sum(rows.values())
        assert report["detection"]["ran"] and report["new_leads"]["red"] > 0
        assert report["notifications"]["webhook"].startswith("sent")
        assert _Hook.received and _Hook.received[0]["json"]["run_id"] == report["run_id"]
        listed = client.get("/api/runs").json()["items"]
        assert listed[0]["run_id"] == report["run_id"] and listed[0]["new_red"] == report["new_leads"]["red"]
        assert client.get(f"/api/runs/{report['run_id']}").json()["run_id"] == report["run_id"]
        viewer_client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"}, timeout=60)
        assert viewer_client.get("/api/runs/latest").status_code == 403
        # red leads carry the response clock, in the queue and in the detail
        red = client.get("/api/leads", params={"severity": "red", "page_size": 500}).json()["items"]
        assert red and all(item["response_due_at"] and item["overdue"] is False for item in red)
        one = client.get(f"/api/leads/{red[0]['lead_id']}").json()
        assert one["response_due_at"] == red[0]["response_due_at"] and one["overdue"] is False
        orange = client.get("/api/leads", params={"severity": "orange,yellow"}).json()["items"]
        assert all(item["response_due_at"] is None and item["overdue"] is False for item in orange)
        # a run on request: a screening job; nothing new in the folder, so no detection
        job = client.post("/api/runs")
        assert job.status_code == 202
        done = _wait(client, f"/api/jobs/{job.json()['job_id']}", lambda j: j["state"] in ("succeeded", "failed"))
        assert done["state"] == "succeeded" and done["kind"] == "screening"
        latest = client.get("/api/runs/latest").json()
        assert latest["trigger"] == "request" and not latest["detection"]["ran"]
        assert latest["ingest"]["files_already_ingested"] == 4 and len(_Hook.received) == 1
    finally:
        stop_server(proc)
        hook.shutdown()
        hook.server_close()


class _Queries:
    """The parts of `LeadQueries` the clock guard uses."""

    def __init__(self, con: Any) -> None:
        self.version = 0
        self.store = LeadStore(con)
        self.renewed = 0

    def changed(self) -> None:
        self.version += 1
        self.renewed += 1


def test_cached_pages_renewed_when_a_deadline_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    queries = _Queries(con)
    t0 = datetime(2026, 3, 1, 8, 0)
    con.execute("INSERT INTO leads (lead_id, kind, severity, score, active, status, first_seen) VALUES "
                "('L1', 'rule:x', 'red', 0.9, true, 'new', ?), ('L2', 'rule:x', 'red', 0.9, true, 'new', ?), "
                "('L3', 'rule:x', 'orange', 0.7, true, 'new', ?)", [t0, t0 + timedelta(hours=2), t0])
    clock = {"now": t0 + timedelta(hours=1)}
    monkeypatch.setattr(lead_clock, "utc_now", lambda: clock["now"])
    monkeypatch.setattr("fraudnet.screening.clock.utc_now", lambda: clock["now"])
    lead_clock.renew_at_deadlines(queries)
    assert queries.renewed == 0
    clock["now"] = t0 + timedelta(hours=4, minutes=59)
    lead_clock.renew_at_deadlines(queries)
    assert queries.renewed == 0
    clock["now"] = t0 + timedelta(hours=5, seconds=1)  # L1's deadline passed: cached pages said not overdue
    lead_clock.renew_at_deadlines(queries)
    assert queries.renewed == 1
    lead_clock.renew_at_deadlines(queries)
    assert queries.renewed == 1  # next one is L2's at 7:00 after t0
    clock["now"] = t0 + timedelta(hours=7, seconds=1)
    lead_clock.renew_at_deadlines(queries)
    assert queries.renewed == 2
    assert lead_clock.with_clock({"severity": "red", "status": "new", "first_seen": t0}, clock["now"])["overdue"]
