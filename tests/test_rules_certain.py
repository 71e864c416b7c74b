"""Certain evidence (issue 12): impossible events are orange for one, red when repeated or material — tiny tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.base import severity_for_score
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules import RULE_DETECTORS, RULES
from fraudnet.detectors.rules.after_death import AfterDeathDetector
from fraudnet.detectors.rules.certain import MATERIAL_FUND_YUAN, certain_grade
from fraudnet.detectors.rules.gender_age_mismatch import GenderAgeMismatchDetector
from fraudnet.detectors.rules.impersonation import ImpersonationDetector
from fraudnet.detectors.rules.overlapping_stays import OverlappingStaysDetector
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table
from tests.rules_tables import T0, ClaimsBuilder

S = timedelta(seconds=17)  # planted times kept to the second


def with_deaths(b: ClaimsBuilder, deaths: dict[str, object]) -> duckdb.DuckDBPyConnection:
    """Build the tables and add psn_info.death_date (as the claims store has it) for the given persons."""
    con = b.build()
    con.execute("ALTER TABLE psn_info ADD COLUMN death_date DATE")
    for psn, when in deaths.items():
        con.execute("UPDATE psn_info SET death_date = ? WHERE psn_no = ?", [when, psn])
    return con


# -- the grade -------------------------------------------------------------------------------------------------

def test_grade_one_event_orange_repeated_or_material_red_not_significant_orange() -> None:
    assert severity_for_score(certain_grade(1, 100.0).score) == "orange"
    assert certain_grade(1, 100.0).driver == "single"
    assert severity_for_score(certain_grade(1, MATERIAL_FUND_YUAN - 1).score) == "orange"
    assert severity_for_score(certain_grade(2, 100.0).score) == "red"
    assert certain_grade(2, 100.0).driver == "repeated"
    material = certain_grade(1, MATERIAL_FUND_YUAN)
    assert severity_for_score(material.score) == "red" and material.driver == "material"
    held = certain_grade(5, 50_000.0, significant=False)
    assert severity_for_score(held.score) == "orange" and held.driver == "not_significant"
    assert certain_grade(0, 0.0).score == 0.0
    # more events rank higher within red, and the score never leaves [0, 1]
    assert certain_grade(2, 100.0).score < certain_grade(8, 100.0).score <= 0.97


# -- impersonation -----------------------------------------------------------------------------------------------

def _places() -> ClaimsBuilder:
    b = ClaimsBuilder()
    b.institution("WEST", lnt=121.20, lat=31.20)  # ~76 km from EAST
    b.institution("EAST", lnt=122.00, lat=31.20)
    b.institution("NORTH", lnt=121.20, lat=31.425)  # ~25 km from WEST
    b.institution("BJ", admdvs="110101", lnt=116.40, lat=39.90)  # Beijing, ~1,070 km from Shanghai
    for i in range(30):  # ordinary card holders, times to the second
        p = b.person(f"BG{i}")
        for k in range(4):
            b.visit(p, "WEST" if k % 2 else "EAST",
                    T0 + timedelta(days=9 * k + i % 7, minutes=7 * i + 3, seconds=k + 1))
    return b


def test_impersonation_one_event_orange_same_day_burst_orange_two_days_red() -> None:
    b = _places()
    one = b.person("ONE")
    b.visit(one, "WEST", T0 + S)
    b.visit(one, "EAST", T0 + S + timedelta(minutes=15))
    burst = b.person("BURST")  # W→E→W→E within two hours on one day: one event
    for k in range(4):
        b.visit(burst, "WEST" if k % 2 == 0 else "EAST", T0 + S + timedelta(days=1, minutes=15 * k))
    two = b.person("TWO")
    for d in (2, 40):
        b.visit(two, "WEST", T0 + S + timedelta(days=d))
        b.visit(two, "EAST", T0 + S + timedelta(days=d, minutes=10))
    leads = {lead.persons[0]: lead for lead in ImpersonationDetector().run(ClaimsContext(b.build()))}
    assert set(leads) == {"ONE", "BURST", "TWO"}
    assert leads["ONE"].severity == "orange"
    assert leads["ONE"].features["certain_tier"] == "single"
    assert "76.1 km" in leads["ONE"].explanation_en and "15 minutes" in leads["ONE"].explanation_en
    assert "76.1公里" in leads["ONE"].explanation_zh and "15分钟" in leads["ONE"].explanation_zh
    assert leads["BURST"].features["impossible_pairs"] == 3
    assert leads["BURST"].features["certain_events"] == 1
    assert leads["BURST"].severity == "orange"  # a burst on one day is one event, not a pattern
    assert leads["TWO"].severity == "red"
    assert leads["TWO"].features["certain_tier"] == "repeated"
    assert "2 independent impossible events" in leads["TWO"].explanation_en


def test_impersonation_short_hop_within_clock_tolerance_is_a_hit_but_not_certain() -> None:
    """25 km in 3 minutes is too fast, but two institutions' clocks may differ by that much: yellow, statistical."""
    b = _places()
    hop = b.person("HOP")
    pair = [b.visit(hop, "WEST", T0 + S), b.visit(hop, "NORTH", T0 + S + timedelta(minutes=3))]
    lead = ImpersonationDetector().run(ClaimsContext(b.build()))[0]
    assert lead.persons == ["HOP"] and sorted(lead.evidence) == sorted(pair)
    assert lead.features["certain_pairs"] == 0 and lead.features["certain_events"] == 0
    assert lead.features["certain_tier"] is None
    assert lead.severity == "yellow"
    assert "none is impossible for certain" in lead.explanation_en
    # without the tolerance the same hop would be certain evidence
    strict = ImpersonationDetector(certain_tolerance_minutes=0).run(ClaimsContext(b.build()))[0]
    assert strict.severity == "orange" and strict.features["certain_pairs"] == 1


def test_impersonation_material_single_event_is_red() -> None:
    b = _places()
    rich = b.person("RICH")
    b.visit(rich, "WEST", T0 + S, fund=6_000.0)
    b.visit(rich, "EAST", T0 + S + timedelta(minutes=10), fund=5_500.0)
    lead = ImpersonationDetector().run(ClaimsContext(b.build()))[0]
    assert lead.persons == ["RICH"] and lead.severity == "red"
    assert lead.features["certain_tier"] == "material"
    assert lead.features["certain_fund"] == pytest.approx(5_500.0)  # the smaller visit: one of the two is false
    assert "5,000" in lead.explanation_en


def test_impersonation_long_distance_needs_the_fastest_travel_not_a_car() -> None:
    b = _places()
    fly = b.person("FLY")  # Shanghai → Beijing in 5 hours: possible by air or rail (needs ≥ 3.7 h)
    b.visit(fly, "WEST", T0 + S)
    b.visit(fly, "BJ", T0 + S + timedelta(hours=5))
    fast = b.person("FAST")  # the same trip in 2 hours: impossible
    b.visit(fast, "WEST", T0 + S + timedelta(days=3))
    b.visit(fast, "BJ", T0 + S + timedelta(days=3, hours=2))
    leads = {lead.persons[0]: lead for lead in ImpersonationDetector().run(ClaimsContext(b.build()))}
    assert set(leads) == {"FAST"}
    assert leads["FAST"].severity == "orange"
    assert leads["FAST"].features["example_min_travel_minutes"] == pytest.approx(150 + 1067 / 900 * 60, abs=3)


def test_impersonation_abstains_on_date_only_and_hour_rounded_times() -> None:
    b = ClaimsBuilder()
    b.institution("WEST", lnt=121.20, lat=31.20)
    b.institution("EAST", lnt=121.60, lat=31.20)
    b.institution("HW", lnt=121.20, lat=31.30)  # records times to the hour only
    b.institution("HE", lnt=121.60, lat=31.30)
    day = datetime(2025, 3, 1)
    dated = b.person("DATED")  # 00:00:00 at both: the same date, time unknown
    b.visit(dated, "WEST", day)
    b.visit(dated, "EAST", day)
    for i in range(25):  # two institutions whose clocks are the hour
        p = b.person(f"H{i}")
        b.visit(p, "HW" if i % 2 else "HE", T0 + timedelta(days=i, hours=i % 8))
    hourly = b.person("HOURLY")  # 09:00 and 09:00 at 38 km: may really be an hour apart
    b.visit(hourly, "HW", T0 + timedelta(days=50))
    b.visit(hourly, "HE", T0 + timedelta(days=50, minutes=0))
    assert ImpersonationDetector().run(ClaimsContext(b.build())) == []


# -- sex mismatch ------------------------------------------------------------------------------------------------

def _hospitals(b: ClaimsBuilder, codes: tuple[str, ...] = ("G1", "G2"), n: int = 60) -> None:
    for code in codes:
        b.institution(code)
        for i in range(n):
            b.visit(b.person(f"N{code}{i}", gend="1" if i % 2 else "2", age=30 + i % 40), code,
                    T0 + timedelta(days=i), dise="J06")


def test_man_billed_a_delivery_is_orange_two_patients_red_age_rule_stays_statistical() -> None:
    b = ClaimsBuilder()
    _hospitals(b, ("G1", "G2", "G3"))
    one = b.visit(b.person("MAN", gend="1", age=40), "G1", T0, "52", days=3, dise="O80.0", fund=1500.0)
    two = [b.visit(b.person(f"MEN{i}", gend="1", age=40), "G2", T0 + timedelta(days=i), "52", days=3, dise="O80.0",
                   fund=1500.0) for i in range(2)]
    old = b.visit(b.person("OLD", gend="2", age=65), "G3", T0, dise="O80.0")  # obstetrics at 65: unlikely only
    leads = {lead.institutions[0]: lead for lead in GenderAgeMismatchDetector().run(ClaimsContext(b.build()))}
    assert leads["G1"].evidence == [one] and leads["G1"].severity == "orange"
    assert leads["G1"].features["certain_tier"] == "single"
    assert "MAN(男) O80.0" in leads["G1"].explanation_zh and "MAN(male) O80.0" in leads["G1"].explanation_en
    assert sorted(leads["G2"].evidence) == sorted(two) and leads["G2"].severity == "red"
    assert leads["G2"].features["certain_events"] == 2
    assert leads["G3"].evidence == [old] and leads["G3"].severity == "yellow"
    assert leads["G3"].features["certain_visits"] == 0


def test_woman_billed_prostate_item_is_certain_semen_analysis_is_not() -> None:
    b = ClaimsBuilder()
    _hospitals(b)
    b.item("TURP", "经尿道前列腺电切术", "201")
    b.item("SEMEN", "精液常规检查", "201")
    w = b.visit(b.person("WOMAN", gend="2", age=50), "G1", T0 + S, dise="Z00")
    b.fee(w, "TURP", T0 + S, pric=3000)
    wife = b.visit(b.person("WIFE", gend="2", age=30), "G2", T0 + S, dise="Z31")  # a couple's fertility work-up
    b.fee(wife, "SEMEN", T0 + S, pric=80)
    leads = {lead.institutions[0]: lead for lead in GenderAgeMismatchDetector().run(ClaimsContext(b.build()))}
    assert leads["G1"].severity == "orange" and leads["G1"].features["certain_visits"] == 1
    assert "前列腺电切术" in leads["G1"].explanation_zh
    assert leads["G2"].features["certain_visits"] == 0 and leads["G2"].severity == "yellow"


def test_big_institution_is_not_red_for_being_big() -> None:
    """Two certain events at an institution whose volume gives as many slips by chance stay orange."""
    b = ClaimsBuilder()
    _hospitals(b, ("BIG",), n=400)
    for i in range(2):
        b.visit(b.person(f"M{i}", gend="1", age=40), "BIG", T0 + timedelta(days=i), dise="O80.0")
    # a city whose slip rate is 1 in 200 visits (the floor stands for it): 2 expected at BIG
    lead = GenderAgeMismatchDetector(baseline_floor=0.005).run(ClaimsContext(b.build()))[0]
    assert lead.features["certain_events"] == 2
    assert not lead.features["certain_significant"]
    assert lead.severity == "orange" and lead.features["certain_tier"] == "not_significant"


# -- care after death --------------------------------------------------------------------------------------------

def test_visit_after_death_orange_two_days_red_death_day_and_refunds_ignored() -> None:
    b = ClaimsBuilder()
    for code in ("H1", "PH"):
        b.institution(code)
    died = date(2025, 1, 10)
    a = b.person("A")
    b.visit(a, "H1", datetime(2025, 1, 10, 8), "21", days=0.5)  # died in hospital that day: fine
    after = b.visit(a, "PH", datetime(2025, 1, 20, 10, 5, 3), "41", fund=80.0)
    b.visit(a, "PH", datetime(2025, 1, 21, 10), "41", refunded=True)  # refunded: not a claim
    r = b.person("R")
    red = [b.visit(r, "PH", datetime(2025, 2, 1 + d, 9, 30), "41", fund=60.0) for d in (0, 7)]
    m = b.person("M")
    big = b.visit(m, "H1", datetime(2025, 3, 1, 9), "21", days=6, fund=7_200.0)
    alive = b.person("ALIVE")
    b.visit(alive, "PH", datetime(2025, 1, 20, 10), "41")
    con = with_deaths(b, {"A": died, "R": date(2025, 1, 31), "M": date(2025, 2, 27)})
    leads = {lead.persons[0]: lead for lead in AfterDeathDetector().run(ClaimsContext(con))}
    assert set(leads) == {"A", "R", "M"}
    assert leads["A"].kind == "rule:after_death"
    assert leads["A"].evidence == [after] and leads["A"].severity == "orange"
    assert leads["A"].institutions == ["PH"]
    assert "2025-01-10" in leads["A"].explanation_zh and "死亡后第10" in leads["A"].explanation_zh
    assert "PH" in leads["A"].explanation_en
    assert sorted(leads["R"].evidence) == sorted(red) and leads["R"].severity == "red"
    assert leads["M"].evidence == [big] and leads["M"].severity == "red"
    assert leads["M"].features["certain_tier"] == "material"


# -- simultaneous inpatient stays --------------------------------------------------------------------------------

def test_overlapping_stays_at_two_institutions_orange_then_red_transfers_and_same_institution_ignored() -> None:
    b = ClaimsBuilder()
    for code in ("H1", "H2", "H3"):
        b.institution(code)
    p = b.person("TWICE")
    a = b.visit(p, "H1", datetime(2025, 1, 1, 9, 12, 5), "21", days=10, fund=3_000.0)
    c = b.visit(p, "H2", datetime(2025, 1, 4, 15, 40, 1), "21", days=3, fund=2_000.0)  # inside H1's stay, 3 days
    t = b.person("TRANSFER")  # discharged from H1 and admitted to H2 the same day
    b.visit(t, "H1", datetime(2025, 1, 1, 9, 3, 3), "21", days=4)
    b.visit(t, "H2", datetime(2025, 1, 5, 7, 1, 2), "21", days=5)
    s = b.person("SAME")  # two overlapping records at one institution: a data error
    b.visit(s, "H1", datetime(2025, 1, 1, 9, 3, 3), "21", days=6)
    b.visit(s, "H1", datetime(2025, 1, 3, 9, 3, 3), "21", days=6)
    r = b.person("REPEAT")  # overlaps starting on two days
    b.visit(r, "H1", datetime(2025, 2, 1, 8, 5, 5), "21", days=20, fund=500.0)
    b.visit(r, "H2", datetime(2025, 2, 3, 8, 5, 5), "21", days=3, fund=400.0)
    b.visit(r, "H3", datetime(2025, 2, 10, 8, 5, 5), "21", days=3, fund=400.0)
    leads = {lead.persons[0]: lead for lead in OverlappingStaysDetector().run(ClaimsContext(b.build()))}
    assert set(leads) == {"TWICE", "REPEAT"}
    lead = leads["TWICE"]
    assert lead.kind == "rule:overlapping_stays" and sorted(lead.evidence) == sorted([a, c])
    assert lead.severity == "orange" and lead.institutions == ["H1", "H2"]
    assert lead.features["max_overlap_days"] == pytest.approx(3.0)
    assert "3.0 days" in lead.explanation_en and "3.0天" in lead.explanation_zh
    assert leads["REPEAT"].severity == "red" and leads["REPEAT"].features["certain_events"] == 2


# -- catalogue and the death_date of the contract ----------------------------------------------------------------

def test_new_rules_are_registered_with_threshold_and_source() -> None:
    for kind, cls in (("rule:after_death", AfterDeathDetector), ("rule:overlapping_stays", OverlappingStaysDetector)):
        assert RULE_DETECTORS[kind] is cls
        info = next(r for r in RULES if r.kind == kind)
        assert info.entity == "person" and info.threshold and info.source


def _psn_with(folder: Path, column: str, values: list[str]) -> Path:
    src = write_minimal_city(folder, skip=("psn_info",))
    header, rows = MINIMAL_ROWS["psn_info"]
    write_table(src / "psn_info.csv", header + [column], [r + [v] for r, v in zip(rows, values, strict=True)])
    return src


@pytest.mark.parametrize("column", ["death_date", "die_date"])
def test_death_date_and_its_alias_ingest(tmp_path: Path, column: str) -> None:
    src = _psn_with(tmp_path / "in", column, ["2025-03-03", "20250401", ""])
    with ClaimsStore.open(tmp_path / "ws") as store:
        assert ingest_folder(src, store).ok
        got = store.sql("SELECT psn_no, death_date FROM psn_info ORDER BY psn_no")
        assert [None if v != v else v.date() for v in got["death_date"]] == [date(2025, 3, 3), date(2025, 4, 1), None]
        # and the rule reads it: MD004 (2025-03-04) of person 1 is the day after the death date
        leads = AfterDeathDetector().run(ClaimsContext(store.con))
        assert [(lead.persons, lead.evidence) for lead in leads] == [(["PSN0000000000000000001"], ["MD004"])]


def test_malformed_death_date_is_quarantined_with_file_row_field(tmp_path: Path) -> None:
    src = _psn_with(tmp_path / "in", "death_date", ["2025-02-30", "", "yesterday"])
    with ClaimsStore.open(tmp_path / "ws") as store:
        ingest_folder(src, store)
        q = store.sql("SELECT file_name, row_number, field, value FROM quarantine WHERE table_name = 'psn_info' "
                      "ORDER BY row_number")
        assert [tuple(r) for r in q.itertuples(index=False)] == [
            ("psn_info.csv", 2, "death_date", "2025-02-30"), ("psn_info.csv", 4, "death_date", "yesterday")]


def test_store_created_before_death_date_gains_the_column_on_open(tmp_path: Path) -> None:
    with ClaimsStore.open(tmp_path / "ws") as store:
        store.execute("ALTER TABLE psn_info DROP COLUMN death_date")  # as a store of the earlier contract
        store.execute("INSERT INTO psn_info (psn_no, gend) VALUES ('OLD1', '1')")
    with ClaimsStore.open(tmp_path / "ws") as store:
        got = store.sql("SELECT psn_no, death_date FROM psn_info")
        assert got["psn_no"].tolist() == ["OLD1"] and got["death_date"].isna().all()
    with ClaimsStore.open(tmp_path / "ws", read_only=True) as store:
        assert "death_date" in store.sql("SELECT * FROM psn_info").columns
