"""The daily screening cycle: drops ingested and screened one after another give the leads of one full run; run
reports, skipped runs, webhook and SMTP notices of new red leads, the response clock."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fraudnet.claims.leads import LeadStore
from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main as cli_main
from fraudnet.detectors.registry import run_detectors
from fraudnet.generate.days import next_day, split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.screening.clock import response_clock
from fraudnet.screening.cycle import screen_folder
from fraudnet.screening.runs import RunStore
from fraudnet.screening.schedule import DropFolder, check_cron, next_run
from fraudnet.screening.settings import ScreeningSettings

LAST_DAYS = [date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31)]


def _active(con: Any) -> dict[str, tuple[str, float, str, int]]:
    rows = con.execute("SELECT lead_id, kind, round(score, 9), severity, len(evidence) FROM leads WHERE active"
                       ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


@pytest.fixture(scope="module")
def drops(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The small city as four drops: everything before 29 December, then one drop per day for the last three."""
    return split_by_day(small_city_dir, tmp_path_factory.mktemp("drops"), LAST_DAYS)


@pytest.fixture(scope="module")
def day_by_day(drops: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A workspace fed drop by drop, a screening cycle after each, then the last drop again (nothing new)."""
    ws = tmp_path_factory.mktemp("ws-daily")
    reports = []
    with ClaimsStore.open(ws) as store:
        for folder in [*drops, drops[-1]]:
            reports.append(screen_folder(store, folder, ScreeningSettings(), trigger="files", send=False))
    return ws, reports


def test_day_by_day_screening_equals_one_full_run(small_city_dir: Path, day_by_day: tuple[Path, list[dict]],
                                                   tmp_path: Path) -> None:
    """Same lead ids, kinds, scores, severities and evidence counts as ingesting the city at once and detecting."""
    ws, reports = day_by_day
    assert [r["status"] for r in reports] == ["ok"] * 5
    with ClaimsStore.open(tmp_path / "full") as full:
        assert ingest_folder(small_city_dir, full).ok
        run = run_detectors(full.con)
        LeadStore(full.con).save_run(list(run), list(run.kinds))
        expected = _active(full.con)
        counts_full = full.table_counts()
    with ClaimsStore.open(ws, read_only=True) as daily:
        got = _active(daily.con)
        assert daily.table_counts() == counts_full
    assert len(expected) > 20
    assert got == expected


def test_run_reports_say_what_came_in_and_what_is_new(day_by_day: tuple[Path, list[dict]]) -> None:
    ws, reports = day_by_day
    first, day1, last_again = reports[0], reports[1], reports[-1]
    assert first["ingest"]["files_loaded"] == 8 and first["detection"]["ran"]
    assert first["new_leads"]["red"] > 0 and first["new_leads"]["orange"] >= 0
    assert sum(v["red"] for v in first["new_leads"]["by_kind"].values()) == first["new_leads"]["red"]
    assert first["new_leads"]["by_institution"]
    # a later day: only fact tables, detection ran again, known warnings not reported again as new
    assert day1["ingest"]["files_loaded"] == 4 and day1["ingest"]["rows_loaded"] > 0 and day1["detection"]["ran"]
    assert day1["new_leads"]["red"] < first["new_leads"]["red"]
    # the same drop again: every file already in, detection skipped
    assert last_again["ingest"]["files_loaded"] == 0 and last_again["ingest"]["files_already_ingested"] == 4
    assert not last_again["detection"]["ran"] and "nothing new" in last_again["detection"]["reason"]
    assert last_again["new_leads"]["red"] == 0
    with ClaimsStore.open(ws, read_only=True) as store:
        runs = RunStore(store.con)
        assert runs.latest()["run_id"] == last_again["run_id"]
        assert [r["run_id"] for r in runs.list(10)] == [r["run_id"] for r in reversed(reports)]
        assert runs.get(first["run_id"])["new_leads"]["red"] == first["new_leads"]["red"]


def test_red_leads_carry_a_response_clock(day_by_day: tuple[Path, list[dict]]) -> None:
    first = day_by_day[1][0]
    lead = first["new_leads"]["red_leads"][0]
    due = datetime.fromisoformat(lead["response_due_at"]) if isinstance(lead["response_due_at"], str) \
        else lead["response_due_at"]
    seen = datetime.fromisoformat(lead["first_seen"]) if isinstance(lead["first_seen"], str) else lead["first_seen"]
    assert due - seen == timedelta(hours=5)
    t0 = datetime(2026, 1, 1, 8, 0)
    red = {"severity": "red", "first_seen": t0, "status": "new"}
    assert response_clock(red, 5, t0 + timedelta(hours=4, minutes=59)) == {"response_due_at": t0 + timedelta(hours=5),
                                                                          "overdue": False}
    assert response_clock(red, 5, t0 + timedelta(hours=5))["overdue"] is True
    assert response_clock(red | {"status": "reviewing"}, 5, t0 + timedelta(hours=6))["overdue"] is True
    assert response_clock(red | {"status": "referred"}, 5, t0 + timedelta(hours=6))["overdue"] is False
    assert response_clock(red, 2, t0 + timedelta(hours=3))["overdue"] is True  # configurable target
    assert response_clock(red | {"severity": "orange"}, 5, t0 + timedelta(days=9)) == {"response_due_at": None,
                                                                                      "overdue": False}


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"path": self.path, "json": json.loads(body), "event": self.headers["X-Fraudnet-Event"]})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture()
def webhook_server() -> Any:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


@pytest.fixture()
def smtp_server(free_tcp_port: int) -> Any:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Inbox(Message):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[Any] = []

        def handle_message(self, message: Any) -> None:
            self.messages.append(message)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_tcp_port)
    controller.start()
    yield free_tcp_port, inbox.messages
    controller.stop()


def test_new_red_leads_are_notified_by_webhook_and_email(drops: list[Path], tmp_path: Path, webhook_server: Any,
                                                         smtp_server: Any) -> None:
    url, posted = webhook_server
    port, mails = smtp_server
    settings = ScreeningSettings(webhook_url=url, smtp_host="127.0.0.1", smtp_port=port,
                                 mail_to=("duty@bureau.example",), response_hours=3)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = screen_folder(store, drops[0], settings, trigger="schedule")
        again = screen_folder(store, drops[0], settings, trigger="schedule")
    assert report["notifications"]["webhook"].startswith("sent")
    assert report["notifications"]["email"] == "sent to 1"
    assert len(posted) == 1 and posted[0]["path"] == "/hook" and posted[0]["event"] == "fraudnet.red_leads"
    payload = posted[0]["json"]
    assert payload["run_id"] == report["run_id"] and payload["new_red"] == report["new_leads"]["red"] > 0
    assert len(payload["leads"]) == payload["new_red"]
    lead = payload["leads"][0]
    assert set(lead) == {"lead_id", "kind", "severity", "score", "institutions", "amount_at_risk", "first_seen",
                         "response_due_at"}  # no persons in a notice
    seen, due = datetime.fromisoformat(lead["first_seen"]), datetime.fromisoformat(lead["response_due_at"])
    assert due - seen == timedelta(hours=3)
    assert len(mails) == 1 and mails[0]["To"] == "duty@bureau.example"
    assert f"{payload['new_red']} new red" in mails[0]["Subject"] and lead["lead_id"] in mails[0].get_payload()
    assert again["notifications"] == {} and len(posted) == 1  # nothing new: no second notice


def test_a_failing_webhook_does_not_fail_the_run(drops: list[Path], tmp_path: Path) -> None:
    settings = ScreeningSettings(webhook_url="http://127.0.0.1:9/nothing-listens", webhook_timeout_s=2)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = screen_folder(store, drops[0], settings)
    assert report["status"] == "ok" and report["notifications"]["webhook"].startswith("failed")


def test_schedule_and_drop_folder(tmp_path: Path) -> None:
    assert next_run("0 2 * * *", datetime(2026, 3, 1, 1, 59)) == datetime(2026, 3, 1, 2, 0)
    assert next_run("0 2 * * *", datetime(2026, 3, 1, 2, 0)) == datetime(2026, 3, 2, 2, 0)
    with pytest.raises(Exception, match="cron expression"):
        check_cron("every day at two")
    drop = DropFolder(tmp_path, settle_s=5)
    drop.mark_screened()
    assert not drop.changed(0)
    (tmp_path / "mdtrt_20260301.csv").write_text("x")
    (tmp_path / ".hidden.csv").write_text("x")
    assert not drop.changed(100)  # just arrived: wait until it holds still
    assert not drop.changed(103)
    assert drop.changed(106)
    drop.mark_screened()
    assert not drop.changed(200)


def test_next_day_makes_new_rows(small_city_dir: Path, tmp_path: Path) -> None:
    day, counts = next_day(small_city_dir, tmp_path / "next")
    assert day == date(2026, 1, 1) and counts["mdtrt"] > 0 and counts["fee_list"] > counts["mdtrt"]
    with ClaimsStore.open(tmp_path / "ws") as store:
        assert ingest_folder(small_city_dir, store).ok
        before = store.table_counts()
        report = ingest_folder(tmp_path / "next", store)
        after = store.table_counts()
    assert report.ok and after["mdtrt"] - before["mdtrt"] == counts["mdtrt"]
    assert after["fee_list"] - before["fee_list"] == counts["fee_list"]


def test_cli_watch_once_and_runs(drops: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    result = runner.invoke(cli_main, ["-w", ws, "watch", str(drops[0]), "--once", "--no-notify"])
    assert result.exit_code == 0, result.output
    assert "8 file(s) loaded" in result.output and "new red" in result.output
    result = runner.invoke(cli_main, ["-w", ws, "runs", "--latest"])
    assert result.exit_code == 0 and json.loads(result.output)["trigger"] == "manual"
    bad = runner.invoke(cli_main, ["-w", ws, "watch", str(drops[0]), "--cron", "61 * * * *", "--once"])
    assert bad.exit_code == 2 and "cron" in bad.output


def test_response_clock_in_cli_list_and_exports(drops: list[Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Red leads list and export `response_due_at` (first seen + FRAUDNET_RESPONSE_HOURS) and `overdue`."""
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        screen_folder(store, drops[0], ScreeningSettings(), send=False)
        reds = [r[0] for r in store.con.execute("SELECT lead_id FROM leads WHERE active AND severity = 'red' "
                                                "ORDER BY lead_id").fetchall()]
        now = datetime.utcnow()
        store.con.execute("UPDATE leads SET first_seen = ? WHERE lead_id = ?", [now - timedelta(hours=6), reds[0]])
        store.con.execute("UPDATE leads SET first_seen = ? WHERE lead_id = ?", [now - timedelta(hours=1), reds[1]])
        store.con.execute("UPDATE leads SET first_seen = ?, status = 'referred' WHERE lead_id = ?",
                          [now - timedelta(hours=9), reds[2]])
    runner = CliRunner()
    monkeypatch.setenv("FRAUDNET_RESPONSE_HOURS", "5")
    result = runner.invoke(cli_main, ["-w", str(ws), "leads", "list", "--severity", "red", "--limit", "500",
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["lead_id"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows[reds[0]]["overdue"] is True and rows[reds[1]]["overdue"] is False
    assert rows[reds[2]]["overdue"] is False  # referred: the clock stopped
    due = datetime.fromisoformat(rows[reds[1]]["response_due_at"])
    assert abs((due - now).total_seconds() - 4 * 3600) < 120
    table = runner.invoke(cli_main, ["-w", str(ws), "leads", "list", "--severity", "red", "--limit", "500"])
    assert "OVERDUE" in table.output
    out = tmp_path / "leads.jsonl"
    monkeypatch.setenv("FRAUDNET_RESPONSE_HOURS", "0.5")  # a tighter target makes the second one overdue too
    exported = runner.invoke(cli_main, ["-w", str(ws), "leads", "export", "--format", "jsonl", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    lines = {d["lead_id"]: d for d in map(json.loads, out.read_text().splitlines())}
    assert lines[reds[0]]["overdue"] and lines[reds[1]]["overdue"] and not lines[reds[2]]["overdue"]
    orange = next(d for d in lines.values() if d["severity"] != "red")
    assert orange["response_due_at"] is None and orange["overdue"] is False


def test_a_full_cli_detect_moves_the_watermark(drops: list[Path], tmp_path: Path) -> None:
    """After `fraudnet detect` over everything loaded, a screening cycle with nothing new does not detect again."""
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(drops[0], store).ok
    runner = CliRunner()
    assert runner.invoke(cli_main, ["-w", str(ws), "detect", "--no-sync"]).exit_code == 0
    with ClaimsStore.open(ws) as store:
        report = screen_folder(store, drops[0], ScreeningSettings(), send=False)
    assert not report["detection"]["ran"] and report["detection"]["pending_batches"] == 0
