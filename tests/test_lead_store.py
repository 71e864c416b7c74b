"""Lead store: lifecycle, history, re-runs that keep decisions and never duplicate, filters, sorting, risk."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from fraudnet.claims.leads import LeadStore
from fraudnet.detectors.base import Lead
from fraudnet.errors import InvalidRequestError, NotFoundError


def _lead(kind: str, evidence: list[str], score: float = 0.9, inst: str = "H1", persons: tuple[str, ...] = ("P1",),
          amount: float = 100.0, start: datetime = datetime(2025, 3, 1), end: datetime = datetime(2025, 3, 20)) -> Lead:
    return Lead(kind=kind, score=score, persons=list(persons), practitioners=["D1"], institutions=[inst],
                evidence=evidence, amount_at_risk=amount, period_start=start, period_end=end,
                explanation_zh="测试线索", explanation_en="test lead", features={"hits": len(evidence)})


@pytest.fixture()
def store() -> LeadStore:
    return LeadStore(duckdb.connect())


def test_lifecycle_with_history_assignee_and_notes(store: LeadStore) -> None:
    lead = _lead("rule:split_admission", ["m1", "m2"])
    assert store.save_run([lead], ["rule:split_admission"])["new"] == 1
    got = store.get(lead.lead_id)
    assert got["status"] == "new" and got["features"] == {"hits": 2} and got["evidence"] == ["m1", "m2"]
    store.set_status(lead.lead_id, "reviewing", "alice", "on it")
    store.assign(lead.lead_id, "bob", "alice")
    store.add_note(lead.lead_id, "visited the ward: empty beds 病床空置", "bob")
    store.set_status(lead.lead_id, "confirmed", "bob")
    store.set_status(lead.lead_id, "reviewing", "alice", "reopened")  # reopening is allowed
    done = store.set_status(lead.lead_id, "referred", "alice")
    assert done["status"] == "referred" and done["assignee"] == "bob"
    assert [n["text"] for n in done["notes"]] == ["visited the ward: empty beds 病床空置"]
    moves = [(h["from"], h["to"], h["user"]) for h in done["history"] if h["action"] == "status"]
    assert moves == [("new", "reviewing", "alice"), ("reviewing", "confirmed", "bob"),
                     ("confirmed", "reviewing", "alice"), ("reviewing", "referred", "alice")]
    assert all(h["at"] is not None for h in done["history"])


def test_invalid_transitions_and_unknown_leads_raise(store: LeadStore) -> None:
    lead = _lead("rule:bed_hanging", ["m1"])
    store.save_run([lead], ["rule:bed_hanging"])
    with pytest.raises(InvalidRequestError) as err:
        store.set_status(lead.lead_id, "confirmed", "u")  # new → confirmed skips review
    assert err.value.field == "status"
    with pytest.raises(InvalidRequestError):
        store.set_status(lead.lead_id, "closed", "u")
    with pytest.raises(NotFoundError):
        store.set_status("LNOPE", "reviewing", "u")
    with pytest.raises(InvalidRequestError):
        store.add_note(lead.lead_id, "  ", "u")
    assert store.get("LNOPE") is None


def test_rerun_updates_in_place_retires_and_inherits_decisions(store: LeadStore) -> None:
    kind = "collusion_ring"
    a, b = _lead(kind, ["m1", "m2", "m3", "m4"]), _lead(kind, ["x1", "x2"], score=0.3)
    c = _lead("rule:over_quantity", ["q1"])
    store.save_run([a, b, c], [kind, "rule:over_quantity"])
    store.set_status(a.lead_id, "reviewing", "alice")
    store.assign(a.lead_id, "bob", "alice")
    store.add_note(a.lead_id, "ring members interviewed", "bob")
    # same evidence again: updated in place, nothing duplicated, decisions kept
    again = store.save_run([_lead(kind, ["m4", "m3", "m2", "m1"], score=0.95), b], [kind])
    assert (again["new"], again["updated"], again["retired"]) == (0, 2, 0)
    rows, total = store.list(active_only=False, limit=100)
    assert total == 3 and len({r["lead_id"] for r in rows}) == 3
    kept = store.get(a.lead_id)
    assert (kept["status"], kept["assignee"], kept["score"]) == ("reviewing", "bob", 0.95)
    # the ring grew: a new lead id whose evidence mostly overlaps inherits status, assignee and notes
    grown = _lead(kind, ["m1", "m2", "m3", "m4", "m5"])
    third = store.save_run([grown], [kind])
    assert (third["new"], third["retired"], third["inherited"]) == (1, 2, 1)
    new = store.get(grown.lead_id)
    assert (new["status"], new["assignee"], new["supersedes"]) == ("reviewing", "bob", [a.lead_id])
    assert [n["text"] for n in new["notes"]] == ["ring members interviewed"]
    old = store.get(a.lead_id)
    assert old["active"] is False and old["status"] == "reviewing"  # retired, decisions kept
    assert store.get(c.lead_id)["active"] is True  # kinds not run are untouched
    active, n_active = store.list(limit=100)
    assert n_active == 2 and {r["lead_id"] for r in active} == {grown.lead_id, c.lead_id}


def test_filters_sorting_and_validation(store: LeadStore) -> None:
    leads = [
        _lead("rule:split_admission", ["a1"], 0.95, "H1", ("P1",), 500.0, datetime(2025, 1, 5), datetime(2025, 1, 9)),
        _lead("rule:split_admission", ["a2"], 0.65, "H2", ("P2",), 900.0, datetime(2025, 6, 1), datetime(2025, 6, 3)),
        _lead("rule:bed_hanging", ["b1"], 0.2, "H1", ("P3",), 50.0, datetime(2025, 9, 1), datetime(2025, 9, 30)),
    ]
    store.save_run(leads, ["rule:split_admission", "rule:bed_hanging"])
    ids = lambda rows: [r["lead_id"] for r in rows]  # noqa: E731
    rows, total = store.list()
    assert total == 3 and ids(rows) == [leads[0].lead_id, leads[1].lead_id, leads[2].lead_id]
    assert ids(store.list(sort="-amount")[0]) == [leads[1].lead_id, leads[0].lead_id, leads[2].lead_id]
    assert ids(store.list(sort="period_start")[0])[0] == leads[0].lead_id
    assert ids(store.list(sort="-severity")[0])[-1] == leads[2].lead_id
    assert store.list(kind="rule:bed_hanging")[1] == 1
    assert store.list(severity=["red", "orange"])[1] == 2
    assert store.list(institution="H1")[1] == 2
    assert store.list(person="P2")[1] == 1
    assert store.list(practitioner="D1")[1] == 3
    assert store.list(min_amount=400)[1] == 2
    assert store.list(date_from=date(2025, 5, 1), date_to=date(2025, 6, 30))[1] == 1
    assert store.list(date_from="2025-09-15")[1] == 1
    page, total = store.list(limit=1, offset=1)
    assert total == 3 and ids(page) == [leads[1].lead_id]
    assert store.list(limit=10, offset=3) == ([], 3)  # past the end: no rows, still the total
    assert store.page_ids(sort="-amount", limit=2) == ([leads[1].lead_id, leads[0].lead_id], 3)
    assert store.list(status="new")[1] == 3
    for bad in ({"severity": ["purple"]}, {"sort": "-name"}, {"status": "open"}, {"date_from": "yesterday"},
                {"min_amount": -1}, {"limit": 0}, {"offset": -5}):
        with pytest.raises(InvalidRequestError) as err:
            store.list(**bad)
        assert err.value.field == next(iter(bad))


def test_entity_scores_and_leads_for_entity(store: LeadStore) -> None:
    a = _lead("rule:split_admission", ["a1"], 0.5, "H1", ("P1",), 100.0)
    b = _lead("rule:bed_hanging", ["b1"], 0.5, "H1", ("P2",), 200.0)
    c = _lead("rule:over_quantity", ["c1"], 0.9, "H2", ("P2",), 50.0)
    store.save_run([a, b, c], ["rule:split_admission", "rule:bed_hanging", "rule:over_quantity"])
    scores = store.entity_scores().set_index(["entity_type", "entity_id"])
    assert scores.loc[("Institution", "H1"), "score"] == pytest.approx(0.75)  # 1 − 0.5 × 0.5
    assert scores.loc[("Institution", "H1"), "leads"] == 2
    assert scores.loc[("Institution", "H1"), "amount_at_risk"] == pytest.approx(300.0)
    assert scores.loc[("Person", "P2"), "top_kinds"].split(";")[0] == "rule:over_quantity"
    assert [r["lead_id"] for r in store.leads_for_entity("Person", "P2")] == [c.lead_id, b.lead_id]
    store.set_status(c.lead_id, "reviewing", "u")
    store.set_status(c.lead_id, "dismissed", "u")
    assert ("Institution", "H2") not in store.entity_scores().set_index(["entity_type", "entity_id"]).index
    with pytest.raises(InvalidRequestError):
        store.leads_for_entity("Drug", "X")


def test_store_persists_in_a_database_file(tmp_path) -> None:
    path = tmp_path / "claims.duckdb"
    con = duckdb.connect(str(path))
    lead = _lead("rule:duplicate_charge", ["d1", "d2"])
    LeadStore(con).save_run([lead], ["rule:duplicate_charge"])
    LeadStore(con).add_note(lead.lead_id, "kept", "u")
    con.close()
    ro = duckdb.connect(str(path), read_only=True)
    got = LeadStore(ro).get(lead.lead_id)  # read-only connections work once the tables exist
    assert got["notes"][0]["text"] == "kept"


def test_incremental_run_does_not_retire(store: LeadStore) -> None:
    old = _lead("rule:over_standard_price", ["p1", "p2"])
    store.save_run([old], ["rule:over_standard_price"])
    new = _lead("rule:over_standard_price", ["p9"], inst="H2")
    counts = store.save_run([new], ["rule:over_standard_price"], retire=False)
    assert (counts["new"], counts["retired"]) == (1, 0)
    assert store.list(kind="rule:over_standard_price")[1] == 2
    assert store.save_run([new], ["rule:over_standard_price"])["retired"] == 1  # a full run retires


def test_incremental_run_does_not_duplicate_evidence_already_held(store: LeadStore) -> None:
    full = _lead("rule:duplicate_charge", ["d1", "d2", "d3", "d4"])
    store.save_run([full], ["rule:duplicate_charge"])
    recent = _lead("rule:duplicate_charge", ["d3", "d4"])  # the same institution's recent hits only
    counts = store.save_run([recent], ["rule:duplicate_charge"], retire=False)
    assert (counts["new"], counts["covered"]) == (0, 1)
    rows, total = store.list(kind="rule:duplicate_charge")
    assert total == 1 and rows[0]["lead_id"] == full.lead_id


def test_lead_index_pages_like_the_sql(api_city_template, tmp_path) -> None:  # noqa: ANN001
    """The in-memory index the API pages with gives the SQL's ids and totals, for random filters and sorts."""
    import random

    from fraudnet.claims.leads import SORT_KEYS, LeadIndex
    from fraudnet.claims.store import ClaimsStore
    from tests.fixtures.server import copy_workspace

    with ClaimsStore.open(copy_workspace(api_city_template.path, tmp_path / "ws")) as claims:
        store = LeadStore(claims.con)
        leads = store.all_leads()
        assert len(leads) > 20
        for lead, status in zip(leads[:6], ("reviewing", "reviewing", "reviewing", "confirmed", "dismissed",
                                            "reviewing"), strict=True):
            store.set_status(lead["lead_id"], "reviewing", "inv1")
            if status != "reviewing":
                store.set_status(lead["lead_id"], status, "inv1")
        # A lead without amount or period, and one tying another's score: NULLS LAST and lead-id tie order.
        claims.con.execute("UPDATE leads SET amount_at_risk = NULL, period_start = NULL, period_end = NULL "
                           "WHERE lead_id = ?", [leads[7]["lead_id"]])
        claims.con.execute("UPDATE leads SET score = ? WHERE lead_id = ?", [leads[9]["score"], leads[8]["lead_id"]])
        # Periods exactly on the bounds a date filter turns into (day start, day end).
        bound = date(2025, 3, 3)
        claims.con.execute("UPDATE leads SET period_start = ?, period_end = ? WHERE lead_id = ?",
                           [datetime(2025, 3, 3), datetime(2025, 3, 3), leads[10]["lead_id"]])
        claims.con.execute("UPDATE leads SET period_start = ?, period_end = ? WHERE lead_id = ?",
                           [datetime(2025, 3, 3, 23, 59, 59, 999999)] * 2 + [leads[11]["lead_id"]])
        index = LeadIndex(claims.con)
        assert len(index) == store.list(limit=1)[1]
        for query in ({"date_from": bound}, {"date_to": bound}, {"date_from": bound, "date_to": bound}):
            want = store.page_ids(**query, limit=500)
            assert index.page_ids(**query, limit=500) == want
            assert {leads[10]["lead_id"], leads[11]["lead_id"]} <= set(want[0])
        rng = random.Random(5)
        kinds = sorted({x["kind"] for x in leads})
        persons = sorted({p for x in leads for p in x["persons"]})
        institutions = sorted({i for x in leads for i in x["institutions"]})
        practitioners = sorted({d for x in leads for d in x["practitioners"]}) or ["D0"]
        days = sorted({x["period_start"].date() for x in leads if x["period_start"]})
        checked = 0
        for _ in range(400):
            query: dict = {"sort": rng.choice(["", "-"]) + rng.choice(sorted(SORT_KEYS)),
                           "offset": rng.choice([0, 0, 5, 50]), "limit": rng.choice([1, 10, 50, 500])}
            for name, values in (("kind", kinds), ("person", persons), ("institution", institutions),
                                 ("practitioner", practitioners), ("status", ["new", "reviewing", "confirmed"])):
                if rng.random() < 0.2:
                    query[name] = rng.choice(values)
            if rng.random() < 0.3:
                query["severity"] = rng.sample(["red", "orange", "yellow"], rng.randint(1, 2))
            if rng.random() < 0.3:
                query["min_amount"] = rng.choice([0, 100, 1000, 5000.5])
            if rng.random() < 0.3:
                query["date_from"] = rng.choice(days)
            if rng.random() < 0.3:
                query["date_to"] = rng.choice(days)
                if "date_from" in query and query["date_from"] > query["date_to"]:
                    query["date_from"], query["date_to"] = query["date_to"], query["date_from"]
            want = store.page_ids(**query)
            assert index.page_ids(**query) == want, query
            checked += bool(want[0])
        assert checked > 150  # most queries found something, so the comparison means something
        with pytest.raises(InvalidRequestError) as err:
            index.page_ids(sort="-name")
        assert err.value.field == "sort"
