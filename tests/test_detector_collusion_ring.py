"""Collusion ring detector: tight rings and rotating pools found; outbreaks, busy wards, chemo cohorts not."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.base import Lead
from fraudnet.detectors.collusion_ring import CollusionRingDetector, poisson_binomial_sf
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.evaluate import evaluate, load_truth
from fraudnet.errors import DetectorError

VISIT_COLUMNS = {
    "mdtrt_id": "VARCHAR", "psn_no": "VARCHAR", "fixmedins_code": "VARCHAR", "med_type": "VARCHAR",
    "begntime": "TIMESTAMP", "endtime": "TIMESTAMP", "atddr_no": "VARCHAR", "dise_codg": "VARCHAR",
    "opter_id": "VARCHAR", "medfee_sumamt": "DOUBLE", "fund_pay_sumamt": "DOUBLE", "refunded": "BOOLEAN",
    "is_inpatient": "BOOLEAN", "los_days": "INTEGER", "is_pharmacy": "BOOLEAN", "fixmedins_type": "VARCHAR",
}
TABLES = {
    "psn_info": {"psn_no": "VARCHAR", "gend": "VARCHAR", "brdy": "DATE", "live_admdvs": "VARCHAR",
                 "mob_hash": "VARCHAR", "addr_key": "VARCHAR"},
    "medins_info": {"fixmedins_code": "VARCHAR", "fixmedins_type": "VARCHAR", "hosp_lv": "VARCHAR",
                    "admdvs": "VARCHAR", "lnt": "DOUBLE", "lat": "DOUBLE"},
    "fee_list": {"mdtrt_id": "VARCHAR", "feedetl_sn": "VARCHAR", "psn_no": "VARCHAR", "fee_ocur_time": "TIMESTAMP",
                 "hilist_code": "VARCHAR", "cnt": "DOUBLE", "pric": "DOUBLE", "det_item_fee_sumamt": "DOUBLE",
                 "bilg_dr_codg": "VARCHAR", "prd_days": "DOUBLE", "vali_flag": "VARCHAR"},
    "hilist": {"hilist_code": "VARCHAR", "hilist_name": "VARCHAR", "list_type": "VARCHAR",
               "pric_uplmt_amt": "DOUBLE", "max_days_per_fill": "DOUBLE", "key_drug_flag": "VARCHAR"},
    "phar_inv": {"fixmedins_code": "VARCHAR", "hilist_code": "VARCHAR", "inv_data_type": "VARCHAR",
                 "cnt": "DOUBLE", "occur_time": "TIMESTAMP", "spler_name": "VARCHAR"},
}


def make_context(visits: list[dict], persons: list[dict] | None = None, institutions: list[dict] | None = None,
                 fees: list[dict] | None = None, hilist: list[dict] | None = None,
                 phar_inv: list[dict] | None = None) -> ClaimsContext:
    """An in-memory claims store with the detector-facing tables (visit_fact as the ingest helper defines it)."""
    con = duckdb.connect()
    frames = {"visit_fact": (VISIT_COLUMNS, visits), "psn_info": (TABLES["psn_info"], persons or []),
              "medins_info": (TABLES["medins_info"], institutions or []), "fee_list": (TABLES["fee_list"], fees or []),
              "hilist": (TABLES["hilist"], hilist or []), "phar_inv": (TABLES["phar_inv"], phar_inv or [])}
    for name, (cols, rows) in frames.items():
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in cols.items())})")
        if rows:
            df = pd.DataFrame(rows)
            for c in cols:
                if c not in df.columns:
                    df[c] = None
            df = df[list(cols)]  # noqa: F841 — read by DuckDB's replacement scan
            con.execute(f"INSERT INTO {name} SELECT * FROM df")
    return ClaimsContext(con)


def planted_quality(workspace: Path, city_dir: Path, detector: Any) -> tuple[list[Lead], dict]:
    """Run one detector on an ingested generated city; its leads and `evaluate` against the city's truth.json."""
    with ClaimsStore.open(workspace, read_only=True) as store:
        leads = detector.run(ClaimsContext(store.con))
    return leads, evaluate(leads, load_truth(city_dir))


def assert_quality_floor(result: dict, kind: str, lookalikes: tuple[str, ...]) -> None:
    """Recall ≥ 0.9 and precision ≥ 0.8 of red+orange leads; the named look-alikes never red."""
    stats = result["kinds"][kind]
    assert stats["planted"] >= 2
    assert stats["recall"] >= 0.9, stats
    assert stats["precision"] >= 0.8, stats
    for look in lookalikes:
        assert result["lookalikes"].get(look, {}).get("flagged", {}).get("red", 0) == 0, (look, result["lookalikes"])


def admission(mid: str, psn: str, inst: str, when: datetime, doctor: str = "D000000000001", dise: str = "J18.900",
              los: int = 7, fee: float = 8000.0) -> dict:
    return {"mdtrt_id": mid, "psn_no": psn, "fixmedins_code": inst, "med_type": "21", "begntime": when,
            "endtime": when + timedelta(days=los), "atddr_no": doctor, "dise_codg": dise, "opter_id": "OP1",
            "medfee_sumamt": fee, "fund_pay_sumamt": round(fee * 0.7, 2), "refunded": False, "is_inpatient": True,
            "los_days": los, "is_pharmacy": False, "fixmedins_type": "1"}


def background(inst: str, rng: np.random.Generator, n: int, days: int = 365, prefix: str = "B") -> list[dict]:
    """Ordinary admissions of distinct persons spread over the year, with various doctors and diagnoses."""
    start = datetime(2025, 1, 1, 9)
    out = []
    for i in range(n):
        when = start + timedelta(days=int(rng.integers(0, days)), hours=int(rng.integers(0, 8)))
        out.append(admission(f"{prefix}{inst}{i:05d}", f"{prefix}P{inst}{i:05d}", inst, when,
                             doctor=f"D{int(rng.integers(100, 110)):012d}",
                             dise=str(rng.choice(["I10", "E11.9", "K29.7", "M54.5", "N18.3"])),
                             los=int(rng.integers(2, 15)), fee=float(rng.uniform(2000, 20000))))
    return out


RING = [f"RING{i:02d}" for i in range(6)]
RING_DAYS = [datetime(2025, 2, 3, 9), datetime(2025, 4, 14, 9), datetime(2025, 6, 9, 9), datetime(2025, 8, 18, 9),
             datetime(2025, 10, 27, 9)]


def ring_visits(days: list[datetime], inst: str = "H1") -> list[dict]:
    out = []
    for k, day in enumerate(days):
        for i, p in enumerate(RING):
            when = day + timedelta(days=i % 2, hours=i)  # same day or the next day
            out.append(admission(f"R{k}{i}", p, inst, when, doctor="D000000000777", dise="K29.700",
                                 los=8, fee=9100.0 + 37 * i))
    return out


def test_poisson_binomial_sf_matches_binomial() -> None:
    from scipy.stats import binom

    assert poisson_binomial_sf([0.3] * 8, 3) == pytest.approx(binom.sf(2, 8, 0.3))
    assert poisson_binomial_sf([0.5, 0.5], 0) == 1.0
    assert poisson_binomial_sf([0.5, 0.5], 3) == 0.0


def test_ring_of_six_on_five_days_found_with_exact_members() -> None:
    rng = np.random.default_rng(1)
    visits = background("H1", rng, 120) + ring_visits(RING_DAYS)
    persons = [{"psn_no": p, "mob_hash": "phoneX" if i < 3 else f"ph{i}"} for i, p in enumerate(RING)]
    leads = CollusionRingDetector().run(make_context(visits, persons=persons))
    assert len(leads) == 1
    lead = leads[0]
    assert isinstance(lead, Lead)
    assert lead.kind == "collusion_ring"
    assert lead.severity == "red"
    assert lead.persons == sorted(RING)
    assert lead.practitioners == ["D000000000777"]
    assert lead.institutions == ["H1"]
    assert lead.evidence == sorted(f"R{k}{i}" for k in range(5) for i in range(6))
    assert lead.features["occasions_together"] == 5
    assert lead.features["group_size"] == 6
    assert lead.features["baseline_ratio"] > 5
    assert lead.features["shared_phone_members"] == 3
    assert lead.amount_at_risk == pytest.approx(sum(v["fund_pay_sumamt"] for v in ring_visits(RING_DAYS)))
    assert "6 persons" in lead.explanation_en and "5 occasions" in lead.explanation_en
    assert "6名参保人" in lead.explanation_zh and "入院5次" in lead.explanation_zh
    assert lead.period_start == datetime(2025, 2, 3, 9)


def test_ring_of_three_occasions_still_flagged() -> None:
    rng = np.random.default_rng(2)
    visits = background("H1", rng, 200) + ring_visits(RING_DAYS[:3])
    leads = CollusionRingDetector().run(make_context(visits))
    assert [ld.persons for ld in leads] == [sorted(RING)]
    assert leads[0].severity in {"red", "orange"}


def test_ring_with_partial_participation_keeps_every_member() -> None:
    rng = np.random.default_rng(6)
    members = [f"PART{i:02d}" for i in range(9)]
    # Each occasion brings 6 of the 9 (two-thirds), rotating: everyone comes at least twice.
    attend = [members[0:6], members[3:9], members[0:3] + members[6:9], members[1:7]]
    visits = background("H1", rng, 150)
    for k, (day, group) in enumerate(zip(RING_DAYS, attend, strict=False)):
        for i, p in enumerate(group):
            visits.append(admission(f"Q{k}{i}", p, "H1", day + timedelta(days=i % 2, hours=i),
                                    doctor="D000000000888", dise="M54.500", los=9, fee=7600.0 + 11 * i))
    leads = CollusionRingDetector().run(make_context(visits))
    assert [ld.persons for ld in leads] == [members]
    assert leads[0].severity == "red"
    assert leads[0].features["occasions_together"] == 4
    assert len(leads[0].evidence) == 24


def test_outbreak_admitted_once_is_not_red() -> None:
    rng = np.random.default_rng(3)
    outbreak = [admission(f"O{i}", f"OUT{i:02d}", "H1", datetime(2025, 7, 1, 20) + timedelta(minutes=7 * i),
                          dise="A05.900", los=3, fee=2100.0) for i in range(30)]
    visits = background("H1", rng, 120) + ring_visits(RING_DAYS[:1]) + outbreak
    leads = CollusionRingDetector().run(make_context(visits))
    assert not [ld for ld in leads if ld.severity == "red"]
    assert leads == []


def test_big_hospital_with_many_same_day_admissions_has_no_lead() -> None:
    rng = np.random.default_rng(4)
    pool = [f"BIG{i:05d}" for i in range(2500)]
    visits = []
    start = datetime(2025, 3, 1, 8)
    for day in range(60):
        for j, p in enumerate(rng.choice(pool, size=80, replace=False)):
            visits.append(admission(f"V{day:03d}{j:02d}", str(p), "H9", start + timedelta(days=day, minutes=5 * j),
                                    doctor=f"D{int(rng.integers(0, 60)):012d}", dise="I10", los=5, fee=6000.0))
    leads = CollusionRingDetector().run(make_context(visits))
    assert leads == []


def test_ring_hidden_in_big_hospital_still_found() -> None:
    rng = np.random.default_rng(5)
    pool = [f"BIG{i:05d}" for i in range(4000)]
    visits = []
    start = datetime(2025, 1, 1, 8)
    for day in range(0, 365, 4):
        for j, p in enumerate(rng.choice(pool, size=60, replace=False)):
            visits.append(admission(f"V{day:03d}{j:02d}", str(p), "H1", start + timedelta(days=day, minutes=5 * j),
                                    doctor=f"D{int(rng.integers(0, 60)):012d}", dise="I10", los=5, fee=6000.0))
    visits += ring_visits(RING_DAYS)
    leads = CollusionRingDetector().run(make_context(visits))
    assert [ld.persons for ld in leads if ld.severity in {"red", "orange"}] == [sorted(RING)]


def test_invalid_parameter_raises_detector_error() -> None:
    with pytest.raises(DetectorError, match="together_share"):
        CollusionRingDetector(together_share=0).run(make_context([]))


def test_empty_store_gives_no_leads() -> None:
    assert CollusionRingDetector().run(make_context([])) == []


def test_planted_rings_on_small_city(small_claims_workspace: Path, small_city_dir: Path) -> None:
    leads, result = planted_quality(small_claims_workspace, small_city_dir, CollusionRingDetector())
    assert_quality_floor(result, "collusion_ring", ("outbreak", "busy_hospital", "family"))
    assert all(ld.explanation_zh and ld.explanation_en and ld.evidence for ld in leads)


def test_planted_rings_on_20k_city(claims_20k_workspace: Path, city_20k_dir: Path) -> None:
    leads, result = planted_quality(claims_20k_workspace, city_20k_dir, CollusionRingDetector())
    assert_quality_floor(result, "collusion_ring", ("outbreak", "busy_hospital", "family"))
    truth = load_truth(city_20k_dir)
    rings = [s for s in truth["schemes"] if s["kind"] == "collusion_ring"]
    # Members found exactly enough to act on: the lead's persons are ring members, and most of the ring is there
    # (a member admitted with the group only once is indistinguishable from chance and may be left out).
    for ring in rings:
        best = max(leads, key=lambda ld: len(set(ld.evidence) & set(ring["evidence"])))
        found = set(best.persons) & set(ring["persons"])
        assert len(found) >= 0.9 * len(best.persons)
        assert len(found) >= 0.5 * len(ring["persons"])
        assert best.institutions == sorted(ring["institutions"])


# ---------------------------------------------------------------- rotating pools (communities, not repeated pairs)
POOL = [f"POOL{i:02d}" for i in range(15)]


def pool_batches(n_batches: int = 8, size: int = 4, seed: int = 0) -> list[list[str]]:
    """Batches of `size` from the 15-person pool, each person 2–3 times, no pair together more than twice."""
    rng = np.random.default_rng(seed)
    while True:
        used = dict.fromkeys(POOL, 0)
        pairs: dict[tuple[str, str], int] = {}
        batches = []
        for _ in range(n_batches):
            order = sorted(POOL, key=lambda p: (used[p], rng.random()))
            batch: list[str] = []
            for p in order:
                if len(batch) < size and all(pairs.get(tuple(sorted((p, q))), 0) < 2 for q in batch):
                    batch.append(p)
            for p in batch:
                used[p] += 1
            for i, a in enumerate(batch):
                for b in batch[i + 1:]:
                    pairs[tuple(sorted((a, b)))] = pairs.get(tuple(sorted((a, b))), 0) + 1
            batches.append(batch)
        if min(used.values()) >= 2 and all(len(b) == size for b in batches):
            return batches


def pool_visits(batches: list[list[str]], insts: list[str], first: datetime = datetime(2025, 1, 20, 9)) -> list[dict]:
    """Each batch admitted within a day at one institution (alternating when several), ~6 weeks apart."""
    out = []
    for k, batch in enumerate(batches):
        day = first + timedelta(days=41 * k + (k * 7) % 5)
        for i, p in enumerate(batch):
            out.append(admission(f"P{k:02d}{i}", p, insts[k % len(insts)], day + timedelta(days=i % 2, hours=i),
                                 doctor="D000000000555", dise="M51.202", los=9, fee=8800.0 + 13 * i))
    return out


def returning_patients(inst: str, rng: np.random.Generator, n: int, days: int = 365) -> list[dict]:
    """Ordinary patients admitted two or three times a year on their own dates."""
    start = datetime(2025, 1, 1, 9)
    out = []
    for i in range(n):
        for k in range(int(rng.integers(2, 4))):
            when = start + timedelta(days=int(rng.integers(0, days)), hours=int(rng.integers(0, 8)))
            out.append(admission(f"RP{inst}{i:04d}{k}", f"RPP{inst}{i:04d}", inst, when,
                                 doctor=f"D{int(rng.integers(100, 110)):012d}",
                                 dise=str(rng.choice(["I10", "E11.9", "K29.7", "M54.5", "J18.9"])),
                                 los=int(rng.integers(2, 15)), fee=float(rng.uniform(2000, 20000))))
    return out


def test_rotating_pool_found_as_one_group_with_its_shape() -> None:
    batches = pool_batches()
    rng = np.random.default_rng(11)
    visits = background("H1", rng, 200) + returning_patients("H1", rng, 60) + pool_visits(batches, ["H1"])
    persons = [{"psn_no": p, "mob_hash": "recruiter" if i < 4 else f"ph{i}"} for i, p in enumerate(POOL)]
    leads = CollusionRingDetector().run(make_context(visits, persons=persons))
    strong = [ld for ld in leads if ld.severity in {"red", "orange"}]
    assert len(strong) == 1, [(ld.persons, ld.score) for ld in leads]
    lead = strong[0]
    assert set(lead.persons) <= set(POOL) and len(lead.persons) >= 13
    assert lead.institutions == ["H1"]
    assert lead.features["shape"] == "pool"
    assert lead.features["pair_max_together"] <= 2
    assert lead.features["occasions_together"] == 8
    assert lead.features["shared_phone_members"] == 4
    assert "pool of" in lead.explanation_en and "8 batches of 4" in lead.explanation_en
    assert "no pair together more than 2 times" in lead.explanation_en
    assert "人员池" in lead.explanation_zh and "分8批" in lead.explanation_zh


def test_pool_moved_between_two_hospitals_is_one_lead_naming_both() -> None:
    batches = pool_batches(seed=3)
    rng = np.random.default_rng(12)
    visits = (background("H1", rng, 150) + background("H2", rng, 150, prefix="C") + returning_patients("H1", rng, 40)
              + returning_patients("H2", rng, 40) + pool_visits(batches, ["H1", "H2"]))
    leads = [ld for ld in CollusionRingDetector().run(make_context(visits)) if ld.severity in {"red", "orange"}]
    assert len(leads) == 1, [(ld.persons, ld.institutions, ld.score) for ld in leads]
    assert leads[0].institutions == ["H1", "H2"]
    assert set(leads[0].persons) <= set(POOL) and len(leads[0].persons) >= 12


def test_returning_patients_alone_give_no_lead() -> None:
    rng = np.random.default_rng(13)
    visits = background("H1", rng, 300) + returning_patients("H1", rng, 150)
    assert CollusionRingDetector().run(make_context(visits)) == []


def test_chemotherapy_cohort_on_a_fixed_cycle_is_not_a_ring() -> None:
    rng = np.random.default_rng(14)
    cohort = [f"CHEMO{i}" for i in range(8)]
    visits = background("H1", rng, 200)
    for c, day in enumerate(range(5, 360, 21)):
        for j, p in enumerate(cohort):
            visits.append(admission(f"K{c:02d}{j}", p, "H1", datetime(2025, 1, 1, 8) + timedelta(days=day, hours=j % 3),
                                    doctor="D000000000321", dise="Z51.100", los=1, fee=4200.0))
    assert CollusionRingDetector().run(make_context(visits)) == []


def test_pool_at_a_small_hospital_with_batches_spread_over_three_days_is_found() -> None:
    """A hospital admitting ~90 a year; a pool of 12 admitted in 6 batches of 3–7 over one to three days, each
    member 2–3 times. Each batch is most of its window's crowd, so every pair's co-admission looks likely on its
    own: the pool must still reach the group test (an edge cut at 10 % dropped it)."""
    pool = [f"SMALL{i:02d}" for i in range(12)]
    sizes = [3, 4, 3, 3, 6, 7]
    counts = dict.fromkeys(pool, 0)
    batches: list[list[str]] = []
    for k, size in enumerate(sizes):
        order = sorted(pool, key=lambda p: (counts[p], (pool.index(p) * 7 + k * 5) % 12))
        batch = order[:size]
        for p in batch:
            counts[p] += 1
        batches.append(batch)
    assert min(counts.values()) >= 2
    first = [datetime(2025, 1, 12, 14), datetime(2025, 4, 4, 8), datetime(2025, 5, 16, 16), datetime(2025, 6, 29, 9),
             datetime(2025, 10, 10, 8), datetime(2025, 11, 4, 10)]
    offsets = [[0, 0, 1], [0, 0, 0, 1], [0, 1, 2], [0, 2, 2], [0, 0, 0, 1, 2, 2], [0, 0, 0, 0, 1, 1, 1]]
    visits = []
    for k, (day, batch) in enumerate(zip(first, batches, strict=True)):
        for i, p in enumerate(batch):
            visits.append(admission(f"S{k}{i}", p, "H9", day + timedelta(days=offsets[k][i], hours=i),
                                    doctor="D000000000901" if i % 2 else "D000000000902", dise="K29.700",
                                    los=10, fee=9000.0 + 11 * i))
    rng = np.random.default_rng(21)
    visits += background("H9", rng, 50, prefix="Q") + returning_patients("H9", rng, 5)
    leads = [ld for ld in CollusionRingDetector().run(make_context(visits)) if ld.severity in {"red", "orange"}]
    assert len(leads) == 1, [(ld.persons, ld.score, ld.severity) for ld in leads]
    assert set(leads[0].persons) <= set(pool) and len(leads[0].persons) >= 10
    assert leads[0].features["shape"] == "pool"
