"""Hostile increments for the person- and visit-level rules kept incrementally: a day in two drops whose second
half puts a visit between two earlier visits of the same person (the impossible pair they formed is replaced) and
an inpatient stay beginning before an earlier stay of that day (the new stay is the first of an overlapping
pair); a person's psn_info row (male, with a death date) arriving a day after an obstetric visit of theirs; and a
death date re-sent for a person with earlier visits (a row updated in place: the full path). After each drop the
leads are those of one full run over the same data."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.generate.days import split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.screening.cycle import screen_folder
from fraudnet.screening.settings import ScreeningSettings
from tests.test_incremental_detection import _leads, assert_same_leads
from tests.test_incremental_rules import RULES, full_leads

P_ID, P2_ID, Q_ID = "31019999000000000001", "31019999000000000002", "31019999000000000003"
DAY = datetime(2025, 12, 28)


def _csv(path: Path) -> str:
    return f"read_csv('{path}', all_varchar = true, header = true)"


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, la2 = math.radians(a[1]), math.radians(b[1])
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(math.radians(b[0] - a[0]) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class Crafter:
    """Visits and person rows written as drop folders in the city's own columns (copies of template rows)."""

    def __init__(self, city: Path) -> None:
        self.city = city
        self.con = duckdb.connect()
        self.con.execute(f"CREATE TABLE m AS SELECT * FROM {_csv(city / 'mdtrt.csv')}")
        self.con.execute(f"CREATE TABLE p AS SELECT * FROM {_csv(city / 'psn_info.csv')}")
        insts = self.con.execute(
            f"SELECT fixmedins_code, CAST(lnt AS DOUBLE), CAST(lat AS DOUBLE) FROM {_csv(city / 'medins_info.csv')} "
            "WHERE fixmedins_type = '1' AND lnt IS NOT NULL AND lat IS NOT NULL ORDER BY 1").fetchall()
        # the two hospitals farthest apart
        self.km, self.x, self.y = max((_km(a[1:], b[1:]), a[0], b[0]) for a in insts for b in insts if a[0] < b[0])
        self.n = 0

    def visit(self, psn_no: str, inst: str, begin: datetime, end: datetime, med_type: str = "11",
              dise: str | None = None) -> dict[str, Any]:
        self.n += 1
        return {"mdtrt_id": f"3599{self.n:016d}", "psn_no": psn_no, "fixmedins_code": inst, "med_type": med_type,
                "begntime": begin.strftime("%Y-%m-%d %H:%M:%S"), "endtime": end.strftime("%Y-%m-%d %H:%M:%S"),
                "dise_codg": dise}

    def write_visits(self, out: Path, rows: list[dict[str, Any]]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.con.execute("CREATE OR REPLACE TEMP TABLE new AS SELECT * FROM (VALUES " + ", ".join(
            "(" + ", ".join("NULL" if r[k] is None else f"'{r[k]}'" for k in
                            ("mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "endtime", "dise_codg"))
            + ")" for r in rows) + ") t(id, psn, inst, mt, b, e, dx)")
        # the template: an outpatient visit of the city; its other columns (certificate, doctor…) as they are
        self.con.execute(
            f"COPY (SELECT t.* REPLACE (n.id AS mdtrt_id, n.psn AS psn_no, n.inst AS fixmedins_code, n.mt AS med_type, "
            f"n.b AS begntime, n.e AS endtime, coalesce(n.dx, t.dise_codg) AS dise_codg) "
            f"FROM new n, (SELECT * FROM m WHERE med_type = '11' ORDER BY mdtrt_id LIMIT 1) t ORDER BY n.id) "
            f"TO '{out / 'mdtrt.csv'}' (HEADER)")

    def write_person(self, out: Path, template: str, psn_no: str, **values: str) -> None:
        out.mkdir(parents=True, exist_ok=True)
        sets = ", ".join(f"'{v}' AS {k}" for k, v in {"psn_no": psn_no, **values}.items())
        self.con.execute(f"COPY (SELECT * REPLACE ({sets}) FROM p WHERE psn_no = '{template}') "
                         f"TO '{out / 'psn_info.csv'}' (HEADER)")

    def person_with_visits(self, since: str) -> str:
        """A person without a death date who has outpatient visits after `since` and before the 28th."""
        return self.con.execute(
            f"SELECT psn_no FROM m WHERE med_type = '11' AND begntime >= '{since}' AND begntime < '2025-12-28' "
            f"AND psn_no IN (SELECT psn_no FROM p WHERE death_date IS NULL OR death_date = '') "
            f"GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchall()[0][0]


@pytest.fixture(scope="module")
def scenario(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("inc-rules-hostile")
    start = split_by_day(small_city_dir, base / "days", [DAY.date()])[0]  # everything before the 28th
    c = Crafter(small_city_dir)
    template = c.con.execute("SELECT min(psn_no) FROM p").fetchall()[0][0]
    road = c.km / 100.0 * 60.0  # minutes by road between the two hospitals
    t0 = DAY + timedelta(hours=9, seconds=17)
    a = [c.visit(P_ID, c.x, t0, t0 + timedelta(minutes=5)),
         c.visit(P_ID, c.y, t0 + timedelta(minutes=0.6 * road), t0 + timedelta(minutes=0.6 * road + 5)),
         c.visit(P2_ID, c.x, DAY + timedelta(hours=10, seconds=5), datetime(2025, 12, 31, 10), med_type="21"),
         c.visit(Q_ID, c.x, DAY + timedelta(hours=11, seconds=7), DAY + timedelta(hours=11, minutes=9),
                 dise="O26.900")]
    # the rest of the 28th: a visit of P between the two (at the second hospital), P2 admitted earlier elsewhere
    b = [c.visit(P_ID, c.y, t0 + timedelta(minutes=0.3 * road), t0 + timedelta(minutes=0.3 * road + 5)),
         c.visit(P2_ID, c.y, DAY + timedelta(hours=8, seconds=9), datetime(2025, 12, 30, 9), med_type="21")]
    drops = {name: base / name for name in ("28-a", "28-b", "29", "death")}
    c.write_visits(drops["28-a"], a)
    c.write_visits(drops["28-b"], b)
    # the 29th: Q's person row (a man, dead since 1 December) a day after Q's obstetric visit, and one more visit
    c.write_visits(drops["29"], [c.visit(Q_ID, c.y, DAY + timedelta(days=1, hours=10, seconds=11),
                                         DAY + timedelta(days=1, hours=10, minutes=7))])
    c.write_person(drops["29"], template, Q_ID, certno="110101198001011239", gend="1", brdy="1980-01-01",
                   death_date="2025-12-01")
    # a death date re-sent for a person with visits in November and December: the row changes in place
    r = c.person_with_visits("2025-11-15")
    c.write_person(drops["death"], r, r, death_date="2025-11-10")
    order = [("start", start), ("28-a", drops["28-a"]), ("28-b", drops["28-b"]), ("29", drops["29"]),
             ("death", drops["death"])]
    ws = base / "daily"
    reports, after = {}, {}
    with ClaimsStore.open(ws) as store:
        for name, folder in order:
            reports[name] = screen_folder(store, folder, ScreeningSettings(), trigger="files", send=False)
            after[name] = _leads(store.con)
    full = {}
    for i, (name, _) in enumerate(order[1:], start=2):
        full[name] = full_leads([f for _, f in order[:i]], base / f"full-{name}", ws)[1]
    ids = {"a": [v["mdtrt_id"] for v in a], "b": [v["mdtrt_id"] for v in b], "r": r}
    return {"reports": reports, "after": after, "full": full, "ids": ids, "order": order, "base": base, "ws": ws}


def _lead(leads: dict[str, tuple], kind: str, member: str) -> tuple | None:
    hits = [v for v in leads.values() if v[0] == kind and (member in v[3] or member in v[7] or member in v[8])]
    assert len(hits) <= 1
    return hits[0] if hits else None


def test_every_drop_gives_the_full_runs_leads(scenario: dict[str, Any]) -> None:
    for name, full in scenario["full"].items():
        assert_same_leads(scenario["after"][name], full)


def test_appends_ran_incrementally_and_the_update_in_full(scenario: dict[str, Any]) -> None:
    reports = scenario["reports"]
    for name in ("28-a", "28-b"):
        det = reports[name]["detection"]
        assert det["path"] == "incremental", (name, det["path_reason"])
        assert all(det["incremental"][k]["path"] == "incremental" for k in RULES), name
    # a person row for visits already screened: the rules re-judge those visits themselves (parts `unmatched`), and
    # the plan may also send the whole run down the full path; either way the leads are the full run's
    late = reports["29"]["detection"]
    assert late["path"] == "incremental" or "persons registered" in late["path_reason"], late["path_reason"]
    death = reports["death"]
    assert death["ingest"]["rows_loaded"] == 1
    assert death["detection"]["path"] == "full" and "updated" in death["detection"]["path_reason"]


def test_a_visit_between_two_replaces_their_pair(scenario: dict[str, Any]) -> None:
    (x, y, *_), (z, _) = scenario["ids"]["a"], scenario["ids"]["b"]
    before = _lead(scenario["after"]["28-a"], "rule:impersonation", P_ID)
    assert before is not None and {x, y} <= set(before[3])
    after = _lead(scenario["after"]["28-b"], "rule:impersonation", P_ID)
    assert after is not None and {x, z} <= set(after[3]) and y not in after[3]


def test_a_stay_admitted_earlier_the_same_day_overlaps(scenario: dict[str, Any]) -> None:
    stay_a, stay_b = scenario["ids"]["a"][2], scenario["ids"]["b"][1]
    assert _lead(scenario["after"]["28-a"], "rule:overlapping_stays", P2_ID) is None
    lead = _lead(scenario["after"]["28-b"], "rule:overlapping_stays", P2_ID)
    assert lead is not None and {stay_a, stay_b} <= set(lead[3])


def test_a_person_row_arriving_after_the_visits_counts_them(scenario: dict[str, Any]) -> None:
    q_visit = scenario["ids"]["a"][3]
    assert _lead(scenario["after"]["28-b"], "rule:after_death", Q_ID) is None
    dead = _lead(scenario["after"]["29"], "rule:after_death", Q_ID)
    assert dead is not None and q_visit in dead[3] and len(dead[3]) == 2
    mismatch = [v for v in scenario["after"]["29"].values() if v[0] == "rule:gender_age_mismatch" and q_visit in v[3]]
    assert len(mismatch) == 1 and '"certain_visits": 0' not in mismatch[0][5]


def test_a_death_date_resent_for_earlier_visits_counts_them(scenario: dict[str, Any]) -> None:
    r = scenario["ids"]["r"]
    assert _lead(scenario["after"]["29"], "rule:after_death", r) is None
    assert _lead(scenario["after"]["death"], "rule:after_death", r) is not None


@pytest.mark.parametrize("kind", ["rule:after_death", "rule:gender_age_mismatch"])
def test_the_rules_own_parts_count_a_late_person_row(scenario: dict[str, Any], kind: str) -> None:
    """Whatever path the plan picks, a rule's stored parts plus the parts of the day with Q's person row give the
    leads of its full run: the visits stored without a person row are judged again once the row is there."""
    from fraudnet.detectors.context import ClaimsContext
    from fraudnet.detectors.registry import make_detector

    ws = scenario["base"] / f"parts-{kind.split(':')[1]}"
    ws.mkdir()
    (ws / "secret.key").write_bytes((scenario["ws"] / "secret.key").read_bytes())
    detector = make_detector(kind)
    folders = dict(scenario["order"])
    with ClaimsStore.open(ws) as store:
        con = store.con
        for name in ("start", "28-a", "28-b"):
            ingest_folder(folders[name], store)
        mark = con.execute("SELECT max(batch_id) FROM ingest_batches").fetchall()[0][0]
        stored = detector.partials(ClaimsContext(con), None)
        assert len(stored["unmatched"]) >= 1  # Q's obstetric visit, no person row yet
        ingest_folder(folders["29"], store)
        ctx = ClaimsContext(con)
        ctx.temp_table("_day", "SELECT mdtrt_id FROM mdtrt WHERE _batch_id > ?", [mark])
        day = detector.partials(ctx, "_day")
        parts = {}
        for name, keys in detector.incremental_parts.items():  # appended, or summed by key (as the runner does)
            merged = pd.concat([stored[name], day[name][list(stored[name].columns)]], ignore_index=True)
            parts[name] = merged.groupby(list(keys), as_index=False, dropna=False).sum() if keys else merged
        got = {lead.lead_id: lead for lead in detector.leads_from_partials(ctx, parts)}
        want = {lead.lead_id: lead for lead in make_detector(kind).run(ClaimsContext(con))}
    assert sorted(got) == sorted(want)
    assert any(Q_ID in lead.persons for lead in want.values())
    for lid, lead in want.items():
        assert abs(got[lid].score - lead.score) <= 1e-9
        assert (got[lid].evidence, got[lid].features, got[lid].explanation_en) == (
            lead.evidence, lead.features, lead.explanation_en)
