"""Hostile input for the certain-evidence rules: bad death dates, bad coordinates, ties, transfers."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules.after_death import AfterDeathDetector
from fraudnet.detectors.rules.gender_age_mismatch import GenderAgeMismatchDetector
from fraudnet.detectors.rules.impersonation import ImpersonationDetector
from fraudnet.detectors.rules.overlapping_stays import OverlappingStaysDetector
from fraudnet.errors import DetectorError
from tests.rules_tables import T0, ClaimsBuilder

S = timedelta(seconds=17)


def _deaths_as_text(b: ClaimsBuilder, deaths: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """A hand-made store whose death_date column is free text (as a careless export would have it)."""
    con = b.build()
    con.execute("ALTER TABLE psn_info ADD COLUMN death_date VARCHAR")
    for psn, text in deaths.items():
        con.execute("UPDATE psn_info SET death_date = ? WHERE psn_no = ?", [text, psn])
    return con


def test_malformed_future_placeholder_and_pre_birth_death_dates_give_no_lead() -> None:
    b = ClaimsBuilder()
    b.institution("PH")
    texts = {"BAD": "2025-02-30", "WORD": "deceased", "FUTURE": "2099-01-01", "EPOCH": "1970-01-01",
             "OLD": "1900-01-01", "PREBIRTH": "1950-01-01", "EMPTY": ""}
    for psn in texts:
        b.person(psn, age=40)  # born 1985: a 1950 death is before birth
        b.visit(psn, "PH", datetime(2025, 3, 1, 10, 0, 5), "41")
    con = _deaths_as_text(b, texts)
    assert AfterDeathDetector().run(ClaimsContext(con)) == []


def test_store_without_death_date_abstains_and_says_so() -> None:
    b = ClaimsBuilder()
    b.institution("PH")
    b.visit(b.person("P"), "PH", T0, "41")
    detector = AfterDeathDetector()
    assert detector.run(ClaimsContext(b.build())) == []
    assert "death_date" in detector.abstained_


def test_bad_placeholder_parameter_is_rejected() -> None:
    b = ClaimsBuilder()
    with pytest.raises(DetectorError, match="placeholder_dates"):
        AfterDeathDetector(placeholder_dates=("not a date",)).run(ClaimsContext(b.build()))
    with pytest.raises(DetectorError, match="min_overlap_hours"):
        OverlappingStaysDetector(min_overlap_hours=-1).run(ClaimsContext(b.build()))
    with pytest.raises(DetectorError, match="air_overhead_minutes"):
        ImpersonationDetector(air_overhead_minutes=-5).run(ClaimsContext(b.build()))


def test_duplicate_person_rows_take_the_latest_death_date() -> None:
    b = ClaimsBuilder()
    b.institution("PH")
    b.person("DUP")
    b.person("DUP")  # the same person twice (a hand-made table without the key)
    b.visit("DUP", "PH", datetime(2025, 3, 5, 10, 0, 5), "41")
    con = b.build()
    con.execute("ALTER TABLE psn_info ADD COLUMN death_date DATE")
    con.execute("UPDATE psn_info SET death_date = '2025-03-01' WHERE rowid = (SELECT min(rowid) FROM psn_info)")
    con.execute("UPDATE psn_info SET death_date = '2025-03-10' WHERE rowid = (SELECT max(rowid) FROM psn_info)")
    assert AfterDeathDetector().run(ClaimsContext(con)) == []  # alive on 3-5 by the later record


def test_missing_and_placeholder_coordinates_never_make_distance() -> None:
    b = ClaimsBuilder()
    b.institution("A", lnt=None, lat=None)  # same city, no coordinates: nothing can be said
    b.institution("B", lnt=None, lat=None)
    b.institution("ZERO", lnt=0.0, lat=0.0)  # the 0/0 placeholder is not in the Gulf of Guinea
    b.institution("NEAR", lnt=121.40, lat=31.20)
    b.institution("JUNK", lnt=999.0, lat=31.2)
    p = b.person("P")
    b.visit(p, "A", T0 + S)
    b.visit(p, "B", T0 + S + timedelta(minutes=5))
    b.visit(p, "ZERO", T0 + S + timedelta(minutes=10))
    b.visit(p, "NEAR", T0 + S + timedelta(minutes=15))
    b.visit(p, "JUNK", T0 + S + timedelta(minutes=20))
    b.visit(p, "NEAR", T0 + S + timedelta(minutes=25))
    assert ImpersonationDetector().run(ClaimsContext(b.build())) == []


def test_same_timestamp_at_the_same_place_or_next_door_is_not_impossible() -> None:
    b = ClaimsBuilder()
    b.institution("CLINIC", lnt=121.40, lat=31.20)
    b.institution("PHARMACY", ftype="2", lnt=121.401, lat=31.201)  # across the street
    p = b.person("P")
    for _ in range(3):  # three records at one institution at one second
        b.visit(p, "CLINIC", T0 + S)
    b.visit(p, "PHARMACY", T0 + S)
    q = b.person("Q")  # unknown admdvs on one side: no city comparison either
    b.institution("NOWHERE", admdvs="", lnt=None, lat=None)
    b.visit(q, "CLINIC", T0 + S)
    b.visit(q, "NOWHERE", T0 + S + timedelta(minutes=1))
    assert ImpersonationDetector().run(ClaimsContext(b.build())) == []


def test_visits_without_begin_time_are_skipped() -> None:
    b = ClaimsBuilder()
    b.institution("W", lnt=121.2, lat=31.2)
    b.institution("E", lnt=121.6, lat=31.2)
    p = b.person("P")
    b.visit(p, "W", T0 + S)
    b.visit(p, "E", T0 + S + timedelta(minutes=5))
    con = b.build()
    con.execute("UPDATE visit_fact SET begntime = NULL")
    assert ImpersonationDetector().run(ClaimsContext(con)) == []


def test_transfers_date_only_stays_and_broken_stays_give_no_overlap() -> None:
    b = ClaimsBuilder()
    for code in ("H1", "H2"):
        b.institution(code)
    t = b.person("TRANSFER")  # H1 discharge recorded the evening after the H2 admission: < 24 h overlap
    b.visit(t, "H1", datetime(2025, 1, 1, 9, 3, 3), "21", days=4.4)
    b.visit(t, "H2", datetime(2025, 1, 5, 7, 1, 2), "21", days=5)
    d = b.person("DATES")  # date-only: 1-4 and 3-10 overlap one recorded day, which may be minutes
    b.visit(d, "H1", datetime(2025, 2, 1), "21", days=3)
    b.visit(d, "H2", datetime(2025, 2, 3), "21", days=7)
    z = b.person("ZERO")  # a stay that ends before it begins, and one without an end
    b.visit(z, "H1", datetime(2025, 3, 10, 9, 3, 3), "21", days=-5)
    b.visit(z, "H2", datetime(2025, 3, 8, 9, 3, 3), "21", days=1)
    n = b.person("NOEND")
    b.visit(n, "H1", datetime(2025, 4, 1, 9, 3, 3), "21", days=1)
    b.visit(n, "H2", datetime(2025, 4, 1, 19, 3, 3), "21", days=3)
    same = b.person("TIE")  # two stays beginning at the same second at two institutions, 3 days long
    b.visit(same, "H1", datetime(2025, 5, 1, 9, 3, 3), "21", days=3)
    b.visit(same, "H2", datetime(2025, 5, 1, 9, 3, 3), "21", days=3)
    con = b.build()
    con.execute("UPDATE visit_fact SET endtime = NULL WHERE psn_no = 'NOEND' AND fixmedins_code = 'H1'")
    leads = OverlappingStaysDetector().run(ClaimsContext(con))
    assert [lead.persons for lead in leads] == [["TIE"]]  # the tie is a real double stay, reported once
    assert leads[0].features["overlapping_pairs"] == 1


def test_unknown_sex_never_makes_a_certain_event() -> None:
    b = ClaimsBuilder()
    b.institution("G")
    for i in range(60):
        b.visit(b.person(f"N{i}", gend="2", age=30), "G", T0 + timedelta(days=i), dise="J06")
    b.visit(b.person("UNK", gend="9", age=40), "G", T0, dise="O80.0")
    b.visit(b.person("NONE", gend="", age=40), "G", T0, dise="N40")
    assert GenderAgeMismatchDetector().run(ClaimsContext(b.build())) == []
