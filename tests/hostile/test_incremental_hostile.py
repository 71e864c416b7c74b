"""Hostile increments for incremental detection: a backdated (out-of-order) drop, a drop repeating a day already
ingested (rewritten files, and the same keys with altered content), and a drop reversing earlier settlements. None
may be taken as a pure append: each either loads nothing (detection skipped, state kept) or falls back to the full
path, and the leads stay those of one full run over the same data."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.generate.days import split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.screening.cycle import screen_folder
from fraudnet.screening.settings import ScreeningSettings
from tests.test_incremental_detection import INCREMENTAL, _leads, assert_same_leads, incremental_kinds, reversal_drop

EDGES = [date(2025, 12, 20), date(2025, 12, 25)]  # drops: before 20 Dec, 20–24 Dec, 25–31 Dec


def _state(con: Any) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in con.execute("SELECT kind, source_batch FROM detector_state").fetchall()}


def _full_leads(folders: list[Path], ws: Path, key_from: Path) -> dict[str, tuple]:
    ws.mkdir()
    (ws / "secret.key").write_bytes((key_from / "secret.key").read_bytes())
    with ClaimsStore.open(ws) as store:
        for folder in folders:
            ingest_folder(folder, store)
        empty = ws.parent / (ws.name + "-empty")
        empty.mkdir()
        report = screen_folder(store, empty, ScreeningSettings(), trigger="files", send=False)
        assert report["detection"]["path"] == "full"
        return _leads(store.con)


@pytest.fixture(scope="module")
def drops(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return split_by_day(small_city_dir, tmp_path_factory.mktemp("hostile-drops"), EDGES)


def test_backdated_drop_falls_back_to_the_full_path(drops: list[Path], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    order = [drops[0], drops[2], drops[1]]  # 20–24 December arrives after the end of the month
    with ClaimsStore.open(ws) as store:
        reports = [screen_folder(store, f, ScreeningSettings(), trigger="files", send=False) for f in order]
        got = _leads(store.con)
        assert set(_state(store.con).values()) == {int(store.con.execute(
            "SELECT max(batch_id) FROM ingest_batches").fetchall()[0][0])}
    assert [r["detection"]["path"] for r in reports] == ["full", "incremental", "full"]
    assert "backdated" in reports[2]["detection"]["path_reason"]
    assert_same_leads(got, _full_leads(order, tmp_path / "full", ws))


def test_repeated_day_loads_nothing_and_keeps_the_state(drops: list[Path], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    again, altered = tmp_path / "again", tmp_path / "altered"
    con = duckdb.connect()
    try:
        for out in (again, altered):
            out.mkdir()
        for name in ("mdtrt", "setl", "fee_list"):
            src = f"read_csv('{drops[2] / f'{name}.csv'}', all_varchar = true, header = true)"
            # the same rows in another order and quoting: other bytes, so not recognised as the same file
            con.execute(f"COPY (SELECT * FROM {src} ORDER BY 2 DESC, 1 DESC) TO '{again / f'{name}.csv'}' "
                        f"(HEADER, FORCE_QUOTE *)")
        # the same visits with another time of settlement: same keys, different content (quarantined conflicts)
        shutil.copy(drops[2] / "mdtrt.csv", altered / "mdtrt.csv")
        src = f"read_csv('{drops[2] / 'setl.csv'}', all_varchar = true, header = true)"
        con.execute(f"COPY (SELECT * REPLACE (CAST(CAST(setl_time AS TIMESTAMP) + INTERVAL 1 MINUTE AS VARCHAR) "
                    f"AS setl_time) FROM {src}) TO '{altered / 'setl.csv'}' (HEADER)")
    finally:
        con.close()
    with ClaimsStore.open(ws) as store:
        for folder in drops:
            screen_folder(store, folder, ScreeningSettings(), trigger="files", send=False)
        before = _leads(store.con)
        state = _state(store.con)
        assert set(state) == incremental_kinds()
        for folder in (again, altered):
            report = screen_folder(store, folder, ScreeningSettings(), trigger="files", send=False)
            assert report["ingest"]["rows_loaded"] == 0, report["ingest"]
            assert report["ingest"]["files_loaded"] >= 1  # new bytes: read, nothing new in them
            assert not report["detection"]["ran"]
        assert _state(store.con) == state
        assert _leads(store.con) == before
        quarantined = store.con.execute("SELECT count(*) FROM quarantine WHERE reason LIKE 'conflict%'"
                                        ).fetchall()[0][0]
        assert quarantined > 0


def test_reversal_of_earlier_settlements_falls_back_to_the_full_path(small_city_dir: Path, drops: list[Path],
                                                                     tmp_path: Path) -> None:
    reversal = tmp_path / "reversal"
    n = reversal_drop(small_city_dir, reversal, n=40)
    ws = tmp_path / "ws"
    order = [*drops, reversal]
    with ClaimsStore.open(ws) as store:
        reports = [screen_folder(store, f, ScreeningSettings(), trigger="files", send=False) for f in order]
        got = _leads(store.con)
        refunded = store.con.execute("SELECT count(*) FROM visit_fact WHERE refunded").fetchall()[0][0]
    rev = reports[-1]
    assert rev["ingest"]["rows_loaded"] == n
    assert rev["detection"]["path"] == "full"
    assert f"{n} settlements" in rev["detection"]["path_reason"]
    assert all(rev["detection"]["incremental"][k]["path"] == "full" for k in INCREMENTAL)
    assert refunded > 0
    assert_same_leads(got, _full_leads(order, tmp_path / "full", ws))
