"""Incremental detection of the person- and visit-level rule screens (impersonation, sex/age mismatch, care after
death, overlapping stays): a small city fed drop by drop — one day cut in two by institution, so that a person's
visits of that day arrive in two drops — gives exactly the leads of one full run over the same data, and these
rules demonstrably took the incremental path on every pure append."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.generate.days import split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.screening.cycle import screen_folder
from fraudnet.screening.settings import ScreeningSettings
from tests.test_incremental_detection import _leads, assert_same_leads, split_institutions

# the rules made incremental beside duplicate charges, over-quantity and over-standard price
RULES = ("rule:impersonation", "rule:gender_age_mismatch", "rule:after_death", "rule:overlapping_stays",
         "rule:bed_hanging", "rule:discharge_growth")
# drop 0: up to 19 Dec; 1: 20–26 Dec; 2: 27 Dec; 3: 28 Dec (cut in two by institution); 4: 29 Dec; 5: 30–31 Dec
EDGES = [date(2025, 12, 20), date(2025, 12, 27), date(2025, 12, 28), date(2025, 12, 29), date(2025, 12, 30)]


def screen_in_turn(folders: list[tuple[str, Path]], ws: Path) -> tuple[dict[str, dict[str, Any]], dict[str, tuple]]:
    """Each folder through a screening cycle on `ws`: the cycle reports by name and the active leads after."""
    with ClaimsStore.open(ws) as store:
        reports = {name: screen_folder(store, folder, ScreeningSettings(), trigger="files", send=False)
                   for name, folder in folders}
        return reports, _leads(store.con)


def full_leads(folders: list[Path], ws: Path, key_from: Path) -> tuple[dict[str, Any], dict[str, tuple]]:
    """The same folders ingested into a fresh workspace (same pseudonymisation key) and screened in one full run."""
    ws.mkdir(parents=True)
    (ws / "secret.key").write_bytes((key_from / "secret.key").read_bytes())
    with ClaimsStore.open(ws) as store:
        for folder in folders:
            ingest_folder(folder, store)
        empty = ws.parent / (ws.name + "-empty")
        empty.mkdir()
        report = screen_folder(store, empty, ScreeningSettings(), trigger="files", send=False)
        assert report["detection"]["path"] == "full"
        return report, _leads(store.con)


@pytest.fixture(scope="module")
def fed(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("inc-rules")
    drops = split_by_day(small_city_dir, base / "days", EDGES)
    few, rest = base / "28-few", base / "28-rest"
    split_institutions(drops[3], few, rest, n=5)
    order = [("start", drops[0]), ("20-26", drops[1]), ("27", drops[2]), ("28 few", few), ("28 rest", rest),
             ("29", drops[4]), ("30-31", drops[5])]
    ws = base / "daily"
    reports, daily = screen_in_turn(order, ws)
    full_report, full = full_leads([f for _, f in order], base / "full", ws)
    return {"reports": reports, "daily": daily, "full": full, "full_report": full_report}


def test_day_by_day_gives_the_full_runs_leads(fed: dict[str, Any]) -> None:
    assert all(r["status"] == "ok" for r in fed["reports"].values())
    kinds = {v[0] for v in fed["full"].values()}
    assert set(RULES) <= kinds, kinds  # every rule has leads to compare
    assert_same_leads(fed["daily"], fed["full"])


def test_the_rules_ran_incrementally_on_pure_appends(fed: dict[str, Any]) -> None:
    reports = fed["reports"]
    assert reports["start"]["detection"]["path"] == "full"
    for name in ("20-26", "27", "28 few", "28 rest", "29", "30-31"):
        det = reports[name]["detection"]
        assert det["path"] == "incremental", (name, det["path_reason"])
        for kind in RULES:
            assert det["incremental"][kind]["path"] == "incremental", (name, kind)
            assert kind not in det["full_detectors"]
    # the day's part of a visit-level rule is the day's visits only: a handful of institutions, not all of them
    few = reports["28 few"]["detection"]["incremental"]["rule:gender_age_mismatch"]
    assert few["partial_rows_computed"]["volume"] <= 5 < few["partial_rows_kept"]["volume"]
