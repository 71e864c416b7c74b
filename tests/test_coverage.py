"""Detectors know what their data supports: institutions without the detail a detector needs are left out and
reported (CLI, API, lead store), never read as findings."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.claims.audit import ensure_tables
from fraudnet.claims.leads import LeadStore
from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main
from fraudnet.config import Settings
from fraudnet.detectors.card_skimming import CardSkimmingDetector
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.coverage import REQUIREMENTS, Coverage, measure_coverage
from fraudnet.detectors.registry import DETECTORS, make_detector, run_detectors
from fraudnet.detectors.rules.bed_hanging import BedHangingDetector
from fraudnet.detectors.rules.over_quantity import OverQuantityDetector
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import write_minimal_city
from tests.fixtures.server import ApiWorkspace, make_tokens
from tests.rules_tables import T0, ClaimsBuilder
from tests.test_detector_card_skimming import START, City, far_cards, skim


def _stay(b: ClaimsBuilder, psn: str, inst: str, start: datetime, nights: int, treated: list[int],
          billing: str = "daily") -> str:
    """An inpatient stay billed day by day (`daily`), in one bill on the discharge day (`at_discharge`), with its
    daily lines all stamped with the discharge time (`collapsed`), or with no fee line at all (`none`)."""
    mid = b.visit(psn, inst, start, "21", days=nights, dise="M54", fund=2500)
    if billing == "daily":
        for d in range(nights):
            b.fee(mid, "BED", start + timedelta(days=d, hours=1), pric=60)
        for d in treated:
            b.fee(mid, "DRUG", start + timedelta(days=d, hours=3), pric=30)
    elif billing == "collapsed":  # the daily lines kept, all stamped with the discharge time
        end = start + timedelta(days=nights, hours=2)
        for _ in range(nights):
            b.fee(mid, "BED", end, pric=60)
        for _ in treated:
            b.fee(mid, "DRUG", end, pric=30)
    elif billing == "at_discharge":
        end = start + timedelta(days=nights, hours=2)
        b.fee(mid, "BED", end, cnt=nights, pric=60)
        b.fee(mid, "DRUG", end, cnt=len(treated), pric=30)
    return mid


def _hospitals(per_day_h2: bool = False) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """H1 bills day by day (8 hung stays, 40 ordinary, 5 stays without any fee line); H2 bills each stay in one
    bill at discharge; H3 sends no fee lines. Without per-day lines every stay of H2 and H3 looks untreated."""
    b = ClaimsBuilder()
    for code in ("H1", "H2", "H3"):
        b.institution(code)
    b.item("BED", "床位费", "201")
    b.item("DRUG", "头孢呋辛", "101")
    idle = [_stay(b, b.person(f"I{i}"), "H1", T0 + timedelta(days=15 * i), 10, [0, 1]) for i in range(8)]
    for i in range(40):
        _stay(b, b.person(f"NH1{i}"), "H1", T0 + timedelta(days=3 * i), 5, list(range(5)))
    for i in range(5):
        _stay(b, b.person(f"EH1{i}"), "H1", T0 + timedelta(days=7 * i), 6, [], billing="none")
    for i in range(40):
        _stay(b, b.person(f"NH2{i}"), "H2", T0 + timedelta(days=3 * i), 6, list(range(6)),
              billing="daily" if per_day_h2 else "at_discharge")
    for i in range(30):
        _stay(b, b.person(f"NH3{i}"), "H3", T0 + timedelta(days=4 * i), 6, [], billing="none")
    return b.build(), idle


def test_bed_hanging_abstains_where_fee_lines_are_not_per_day_and_still_finds_the_hung_stays() -> None:
    con, idle = _hospitals()
    run = run_detectors(con, only=["rule:bed_hanging"])
    assert [lead.institutions for lead in run] == [["H1"]]
    assert sorted(run[0].evidence) == sorted(idle)
    assert run[0].features["stays"] == 48  # H1's 5 stays without any fee line: no detail, not judged
    info = run.abstained["rule:bed_hanging"]["daily_inpatient_fee_lines"]
    assert info["institutions"] == 2 and info["covered"] == 1 and info["optional"] is False
    assert info["reason_en"] == "2 institutions without per-day fee lines, skipped"
    assert info["reason_zh"] == "2家机构无逐日费用明细，未筛查"
    assert "rule:bed_hanging" not in run.skipped
    # the detector leaves them out itself (its input), not only the registry (its output)
    direct = BedHangingDetector().run(ClaimsContext(con))
    assert [lead.institutions for lead in direct] == [["H1"]]


def test_bed_hanging_would_flag_absent_detail_if_it_did_not_abstain() -> None:
    # The same data, with H2 and H3 declared covered: their untreated-looking stays then become leads, which is
    # exactly what the coverage check prevents.
    con, _ = _hospitals()
    ctx = ClaimsContext(con)
    for name in BedHangingDetector.requires:
        ctx.coverage_cache[name] = Coverage(REQUIREMENTS[name], frozenset({"H1", "H2", "H3"}))
    flagged = {lead.institutions[0] for lead in BedHangingDetector().run(ctx)}
    assert "H2" in flagged


def test_institution_with_per_day_lines_is_screened_and_nothing_abstains() -> None:
    con, _ = _hospitals(per_day_h2=True)
    report = measure_coverage(ClaimsContext(con), ["daily_inpatient_fee_lines"])
    assert report["daily_inpatient_fee_lines"].covered == {"H1", "H2"}
    assert report["daily_inpatient_fee_lines"].uncovered == {"H3"}


def test_months_without_per_day_lines_are_left_out_at_an_institution_that_has_them_later() -> None:
    """H4 bills stays in one bill at discharge in January and February, day by day from April: its winter stays
    are not judged (they would all look untreated), its spring hung stays are found."""
    b = ClaimsBuilder()
    for code in ("H1", "H4"):
        b.institution(code)
    b.item("BED", "床位费", "201")
    b.item("DRUG", "头孢呋辛", "101")
    for i in range(40):
        _stay(b, b.person(f"N1{i}"), "H1", T0 + timedelta(days=3 * i), 5, list(range(5)))
    winter = [_stay(b, b.person(f"W{i}"), "H4", T0 + timedelta(days=2 * i), 6, [0], billing="at_discharge")
              for i in range(29)]
    for i in range(30):
        _stay(b, b.person(f"S{i}"), "H4", T0 + timedelta(days=90 + 2 * i), 5, list(range(5)))
    hung = [_stay(b, b.person(f"G{i}"), "H4", T0 + timedelta(days=92 + 9 * i), 10, [0, 1]) for i in range(6)]
    run = run_detectors(b.build(), only=["rule:bed_hanging"])
    assert [lead.institutions for lead in run] == [["H4"]]
    assert sorted(run[0].evidence) == sorted(hung) and not set(winter) & set(run[0].evidence)
    assert run[0].features["stays"] == 36  # the winter stays are neither hits nor volume
    info = run.abstained["rule:bed_hanging"]["daily_inpatient_fee_lines"]
    assert info["institutions"] == 0 and info["months"] == 2
    assert info["reason_en"] == "2 institution-months without per-day fee lines, skipped"
    assert info["reason_zh"] == "2个机构月无逐日费用明细，未筛查"


def test_bed_hanging_is_skipped_when_no_institution_bills_per_day() -> None:
    b = ClaimsBuilder()
    b.institution("H2")
    b.item("BED", "床位费", "201")
    b.item("DRUG", "头孢呋辛", "101")
    for i in range(30):
        _stay(b, b.person(f"N{i}"), "H2", T0 + timedelta(days=3 * i), 6, [0], billing="at_discharge")
    run = run_detectors(b.build(), only=["rule:bed_hanging"])
    assert list(run) == [] and run.counts["rule:bed_hanging"] == 0
    assert run.skipped["rule:bed_hanging"]["requirement"] == "daily_inpatient_fee_lines"
    assert run.skipped["rule:bed_hanging"]["reason_en"] == (
        "no institution has per-day fee lines (1 institution without), not run")


def test_duplicate_charges_screen_clinics_and_leave_out_a_hospital_whose_stays_are_one_bill() -> None:
    """HB stamps every daily line of a stay with the discharge time: its nightly bed lines look like the same item
    billed many times at once. It is left out (reported); the clinic billing an ECG twice is still found."""
    b = ClaimsBuilder()
    for code in ("HB", "D1", "D2"):
        b.institution(code)
    b.item("BED", "床位费", "201")
    b.item("DRUG", "头孢呋辛", "101")
    b.item("INJ", "静脉注射", "201")
    b.item("ECG", "心电图", "201")
    for i in range(40):
        _stay(b, b.person(f"HB{i}"), "HB", T0 + timedelta(days=3 * i), 6, [0, 2, 4], billing="collapsed")
    for code in ("D1", "D2"):
        for i in range(50):
            t = T0 + timedelta(days=i, hours=1 + i % 8, minutes=i % 60)
            b.fee(b.visit(b.person(f"B{code}{i}"), code, t), "INJ", t, pric=12.0)
    dup = []
    for i in range(8):
        t = T0 + timedelta(days=i, hours=3)
        mid = b.visit(b.person(f"U{i}"), "D1", t)
        b.fee(mid, "ECG", t, pric=25.0)
        b.fee(mid, "ECG", t, pric=25.0)
        dup.append(mid)
    con = b.build()
    run = run_detectors(con, only=["rule:duplicate_charge"])
    assert [lead.institutions for lead in run] == [["D1"]] and sorted(run[0].evidence) == sorted(dup)
    assert run.abstained["rule:duplicate_charge"]["daily_inpatient_fee_lines"]["institutions"] == 1
    assert "rule:duplicate_charge" not in run.skipped
    # the detector itself (no coverage check) reads HB's stamped daily lines as duplicates
    assert "HB" in {lead.institutions[0] for lead in make_detector("rule:duplicate_charge").run(ClaimsContext(con))}


def _skimming_city() -> City:
    """P1 keeps times to the second and has a night burst of far cards; P2 exports dates only (00:00:00), so all
    its visits of a day — including 25 far strangers' — sit at the same midnight minute."""
    rng = np.random.default_rng(1)
    city = City()
    city.background("P1", "310101", ["OP1", "OP2"], 12, 60, rng)
    skim(city, "P1", "OP1", far_cards(city, 25), START + timedelta(days=40, hours=23), 40)
    locals_ = [city.person(f"LP2{i:04d}", "310104") for i in range(300)]
    for d in range(60):
        for _ in range(12):
            city.visit(str(rng.choice(locals_)), "P2", "OPB", START + timedelta(days=d),
                       list(rng.choice([f"X{i:04d}" for i in range(40)], size=2, replace=False)), 80.0)
    for card in far_cards(city, 25, prefix="G"):
        city.visit(card, "P2", "OPB", START + timedelta(days=30), ["K0001", "K0002"], 486.5)
    return city


def test_card_skimming_abstains_where_times_are_all_midnight() -> None:
    city = _skimming_city()
    run = run_detectors(city.context().con, only=["card_skimming"])
    assert run and all(lead.institutions == ["P1"] for lead in run)
    info = run.abstained["card_skimming"]["minute_times"]
    assert info["institutions"] == 1 and info["covered"] == 1
    assert info["reason_en"] == "1 institution without visit times to the minute, skipped"
    # declared covered, the midnight pile-up at P2 reads as a burst of strangers: a lead from absent data
    ctx = city.context()
    ctx.coverage_cache["minute_times"] = Coverage(REQUIREMENTS["minute_times"], frozenset({"P1", "P2"}))
    assert any("P2" in lead.institutions for lead in CardSkimmingDetector().run(ctx))


def _dispensing(with_days: bool) -> ClaimsBuilder:
    """P1 reports days of supply (9 fills of 90 days for a 30-day drug); P2 does not, and its packs (cnt 21 of a
    7-day drug) would read as 21 days."""
    b = ClaimsBuilder()
    for code in ("P1", "P2", "P3"):
        b.institution(code, ftype="2")
    b.item("MET", "二甲双胍", "101", max_days=30)
    b.item("AMX", "阿莫西林", "101", max_days=7)
    for code in ("P1", "P3"):
        for i in range(40):
            mid = b.visit(b.person(f"B{code}{i:03d}"), code, T0 + timedelta(days=i, hours=1), med_type="41")
            b.fee(mid, "MET", T0 + timedelta(days=i, hours=1), cnt=1, pric=20.0, prd_days=30)
    for i in range(9):
        mid = b.visit(b.person(f"O{i}"), "P1", T0 + timedelta(days=2 * i, hours=4), med_type="41")
        b.fee(mid, "MET", T0 + timedelta(days=2 * i, hours=4), cnt=9, pric=20.0, prd_days=90)
    for i in range(40):
        mid = b.visit(b.person(f"A{i}"), "P2", T0 + timedelta(days=i, hours=6), med_type="41")
        b.fee(mid, "AMX", T0 + timedelta(days=i, hours=6), cnt=21, pric=2.0, prd_days=7 if with_days else None)
    return b


def test_over_quantity_abstains_without_days_of_supply() -> None:
    run = run_detectors(_dispensing(with_days=False).build(), only=["rule:over_quantity"])
    assert [lead.institutions for lead in run] == [["P1"]]
    assert run.abstained["rule:over_quantity"]["days_of_supply"]["institutions"] == 1
    assert run.abstained["rule:over_quantity"]["days_of_supply"]["reason_zh"] == "1家机构无取药天数，未筛查"
    # with days of supply reported, P2's 7-day fills are within the limit and nothing abstains
    run = run_detectors(_dispensing(with_days=True).build(), only=["rule:over_quantity"])
    assert [lead.institutions for lead in run] == [["P1"]] and "rule:over_quantity" not in run.abstained
    assert [lead.institutions for lead in OverQuantityDetector().run(
        ClaimsContext(_dispensing(with_days=False).build()))] == [["P1"]]


def test_drug_resale_shopping_screen_runs_without_days_of_supply() -> None:
    """Two shoppers sharing a phone each collect a key drug from 8 prescribers at 7 pharmacies; no pharmacy
    reports prd_days. The shopping screen does not need it: the chain is found, without the supply part."""
    b = ClaimsBuilder()
    pharmacies = [b.institution(f"P{i}", ftype="2") for i in range(7)]
    b.item("KEY", "奥施康定", "101", max_days=7, key="1")
    b.item("VC", "维生素C片", "101", max_days=7)
    for s in ("S1", "S2"):
        b.person(s, mob_hash="PHONE1")
        for k in range(8):
            mid = b.visit(s, pharmacies[k % 7], T0 + timedelta(days=8 * k, hours=2), med_type="41")
            b.fee(mid, "KEY", T0 + timedelta(days=8 * k, hours=2), cnt=2, pric=300.0, dr=f"D{k:012d}")
    for i in range(70):  # ordinary customers
        mid = b.visit(b.person(f"C{i}"), pharmacies[i % 7], T0 + timedelta(days=i, hours=5), med_type="41")
        b.fee(mid, "VC", T0 + timedelta(days=i, hours=5), cnt=1, pric=3.5)
    for i in range(20):  # ordinary patients of the key drug (the baseline): monthly at their own pharmacy
        pat = b.person(f"K{i}")
        for k in range(3):
            mid = b.visit(pat, pharmacies[i % 7], T0 + timedelta(days=30 * k + i, hours=3), med_type="41")
            b.fee(mid, "KEY", T0 + timedelta(days=30 * k + i, hours=3), cnt=2, pric=300.0, dr=f"DK{i:011d}")
    run = run_detectors(b.build(), only=["drug_resale"])
    assert len(run) == 1 and set(run[0].persons) >= {"S1", "S2"}
    assert run[0].features["supply_reported"] is False
    assert "days of supply not reported" in run[0].explanation_en and "未报送取药天数" in run[0].explanation_zh
    info = run.abstained["drug_resale"]["days_of_supply"]
    assert info["optional"] is True and info["institutions"] == 7
    assert info["reason_en"] == "7 institutions without days of supply, that evidence not used"
    assert "drug_resale" not in run.skipped


def test_every_detector_declares_known_requirements() -> None:
    for kind in DETECTORS:
        detector = make_detector(kind)
        requires = getattr(detector, "requires", ())  # none declared: the registry reads it as ()
        assert isinstance(requires, tuple), kind
        assert set(requires) | set(getattr(detector, "optional", ())) <= set(REQUIREMENTS), kind
    assert BedHangingDetector.requires == ("admission_discharge_times", "daily_inpatient_fee_lines")
    assert CardSkimmingDetector.requires == ("minute_times", "operator_ids")


def _minimal_workspace(tmp_path: Path) -> Path:
    """The minimal contract city ingested: its one inpatient stay has fee lines on its admission day only."""
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws) as store:
        report = ingest_folder(write_minimal_city(tmp_path / "input"), store)
        assert report.ok, report
        ensure_tables(store.con)
    return ws


def test_cli_prints_what_was_skipped_and_the_run_keeps_it(tmp_path: Path) -> None:
    ws = _minimal_workspace(tmp_path)
    result = CliRunner().invoke(main, ["-w", str(ws), "detect", "--only", "rule:bed_hanging"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ("rule:bed_hanging: no institution has per-day fee lines (1 institution without), not run / "
            "无机构具备逐日费用明细（1家机构缺少），未运行") in " ".join(result.output.split())
    with ClaimsStore.open(ws, read_only=True) as store:
        stored = json.loads(store.con.execute("SELECT coverage FROM lead_runs").fetchall()[-1][0])
    assert stored["skipped"]["rule:bed_hanging"]["requirement"] == "daily_inpatient_fee_lines"


def test_lead_runs_of_an_older_workspace_get_the_coverage_column() -> None:
    con = duckdb.connect()
    con.execute('CREATE TABLE lead_runs (run_id VARCHAR NOT NULL, "at" TIMESTAMP NOT NULL, kinds VARCHAR[], '
                "new_leads INTEGER, updated_leads INTEGER, retired_leads INTEGER, inherited_leads INTEGER)")
    con.execute("INSERT INTO lead_runs VALUES ('old', now()::TIMESTAMP, ['rule:bed_hanging'], 1, 0, 0, 0)")
    store = LeadStore(con)
    store.save_run([], ["rule:bed_hanging"], run_id="new", coverage={"skipped": {"rule:bed_hanging": {}}})
    rows = dict(con.execute("SELECT run_id, coverage FROM lead_runs").fetchall())
    assert rows["old"] is None and json.loads(rows["new"]) == {"skipped": {"rule:bed_hanging": {}}}


def test_api_detection_summary_carries_abstentions(tmp_path: Path) -> None:
    ws = _minimal_workspace(tmp_path)
    with ClaimsStore.open(ws) as store:
        tokens = make_tokens(store.con)
    api = ApiWorkspace(ws, tokens)
    with TestClient(create_app(Settings(workspace=ws))) as client:
        r = client.post("/api/jobs/detect", json={"only": ["rule:bed_hanging", "rule:over_quantity"]},
                        headers=api.headers("investigator"))
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while True:
            job = client.get(f"/api/jobs/{r.json()['job_id']}", headers=api.headers("viewer")).json()
            if job["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert job["state"] == "succeeded", job
    skipped = job["result"]["skipped"]["rule:bed_hanging"]
    assert skipped["requirement"] == "daily_inpatient_fee_lines"
    assert skipped["reason_zh"] == "无机构具备逐日费用明细（1家机构缺少），未运行"
    assert "abstained" in job["result"]
    # the minimal city has no catalogue: no drug line has a maximum days per fill, so over-quantity has nothing
    # to ask of the data and runs (finding nothing)
    assert "rule:over_quantity" not in job["result"]["skipped"]


def test_nothing_abstains_on_the_generated_city(small_claims_workspace: Path) -> None:
    """The product's own generated city carries every detail at every institution and month."""
    with ClaimsStore.open(small_claims_workspace, read_only=True) as store:
        ctx = ClaimsContext(store.con)
        report = measure_coverage(ctx, list(REQUIREMENTS))
    for name, cov in report.items():
        assert cov.covered and not cov.uncovered and not cov.gaps and not cov.missing, name
