"""Collusion ring detector on hostile input: one-day floods, hyper-frequent patients, missing dates and fields."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from fraudnet.detectors.collusion_ring import CollusionRingDetector
from fraudnet.errors import DetectorError
from tests.test_detector_collusion_ring import (
    POOL,
    RING,
    RING_DAYS,
    admission,
    background,
    make_context,
    pool_batches,
    pool_visits,
    ring_visits,
)


def test_every_admission_on_one_day_gives_no_lead() -> None:
    day = datetime(2025, 5, 5, 8)
    visits = [admission(f"D{i:04d}", f"ONE{i % 150:04d}", "H1", day + timedelta(minutes=i)) for i in range(300)]
    assert CollusionRingDetector().run(make_context(visits)) == []


def test_patients_admitted_hundreds_of_times_are_not_a_ring() -> None:
    rng = np.random.default_rng(21)
    visits = background("H1", rng, 150)
    start = datetime(2025, 1, 1, 9)
    for p in range(4):
        for k, d in enumerate(sorted(rng.choice(365, 300, replace=False))):
            visits.append(admission(f"F{p}{k:03d}", f"FREQ{p}", "H1", start + timedelta(days=int(d)), los=1 + k % 3))
    leads = CollusionRingDetector().run(make_context(visits))
    assert not [ld for ld in leads if ld.severity in {"red", "orange"}]


def test_missing_dates_and_fields_are_skipped_and_rings_still_found() -> None:
    rng = np.random.default_rng(22)
    visits = (background("H1", rng, 150) + background("H2", rng, 150, prefix="C") + ring_visits(RING_DAYS)
              + pool_visits(pool_batches(), ["H2"]))
    broken = []
    for i in range(40):
        v = admission(f"X{i:03d}", RING[i % len(RING)] if i % 2 else POOL[i % len(POOL)], "H1", datetime(2025, 3, 3))
        v["begntime"] = None
        v["endtime"] = None
        broken.append(v)
    for v in visits[:30]:
        v["dise_codg"] = None
        v["los_days"] = None
        v["atddr_no"] = None
    leads = CollusionRingDetector().run(make_context(visits + broken))
    persons = [set(ld.persons) for ld in leads if ld.severity in {"red", "orange"}]
    assert set(RING) in persons
    assert any(len(p & set(POOL)) >= 12 for p in persons)
    assert all(not set(ld.evidence) & {v["mdtrt_id"] for v in broken} for ld in leads)


def test_only_scheduled_care_gives_no_lead() -> None:
    day = datetime(2025, 1, 6, 8)
    visits = [admission(f"S{c:02d}{j}", f"DIAL{j}", "H1", day + timedelta(days=2 * c), dise="N18.500", los=0)
              for c in range(150) for j in range(6)]
    assert CollusionRingDetector().run(make_context(visits)) == []


@pytest.mark.parametrize(("name", "value"), [("null_alpha", 0.0), ("null_rounds", 0), ("event_pvalue", 1.5),
                                             ("max_pool", 2)])
def test_out_of_range_parameters_raise(name: str, value: float) -> None:
    with pytest.raises(DetectorError, match=name):
        CollusionRingDetector(**{name: value}).run(make_context([]))
