"""Planted-scheme quality floors on the 20k generated city: every planted kind found (recall ≥ 0.9) by red+orange
leads that are right (precision ≥ 0.8), and no legitimate look-alike (family, chronic refill, busy hospital or
pharmacy, outbreak) red."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.evaluate import evaluate, load_truth
from fraudnet.detectors.registry import KINDS, run_detectors

pytestmark = pytest.mark.slow

RECALL_FLOOR = 0.9
PRECISION_FLOOR = 0.8


@pytest.fixture(scope="module")
def city_20k_result(city_20k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Ingest the 20k city into a private workspace, run every detector once, evaluate against truth.json."""
    from fraudnet.ingest.pipeline import ingest_folder

    ws = tmp_path_factory.mktemp("quality_ws")
    with ClaimsStore.open(ws) as store:
        report = ingest_folder(city_20k_dir, store)
        assert report.ok, report
        leads = run_detectors(store.con)
    truth = load_truth(city_20k_dir / "truth.json")
    result = evaluate(list(leads), truth)
    result["errors"] = leads.errors
    result["timings"] = leads.timings
    (ws / "quality.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return result


def _planted_kinds(city_20k_dir: Path) -> set[str]:
    return {s["kind"] for s in load_truth(city_20k_dir / "truth.json")["schemes"]}


def test_no_detector_failed(city_20k_result: dict) -> None:
    assert city_20k_result["errors"] == {}


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.startswith("anomaly:")])
def test_planted_kind_meets_recall_and_precision_floors(kind: str, city_20k_result: dict,
                                                         city_20k_dir: Path) -> None:
    assert kind in _planted_kinds(city_20k_dir), f"the generator plants no {kind}"
    k = city_20k_result["kinds"][kind]
    assert k["planted"] >= 2
    assert k["recall"] >= RECALL_FLOOR, f"{kind}: recall {k['recall']:.2f} ({k['matched_schemes']}/{k['planted']})"
    assert k["precision"] >= PRECISION_FLOOR, (
        f"{kind}: precision {k['precision']:.2f} ({k['false_leads_red_orange']} false of {k['leads_red_orange']})")


@pytest.mark.parametrize("lookalike", ["family", "chronic_refill", "busy_hospital", "busy_pharmacy", "outbreak"])
def test_legitimate_lookalikes_are_never_red(lookalike: str, city_20k_result: dict) -> None:
    entry = city_20k_result["lookalikes"].get(lookalike)
    assert entry is not None and entry["count"] > 0, f"no {lookalike} look-alike in the city"
    assert entry["flagged"]["red"] == 0, f"{entry['flagged']['red']} {lookalike} look-alikes red: {entry['examples']}"


def test_anomalies_are_conservative(city_20k_result: dict) -> None:
    for kind in ("anomaly:institution", "anomaly:practitioner", "anomaly:pharmacy"):
        k = city_20k_result["kinds"].get(kind)
        if k is None:
            continue
        assert k["by_severity"]["red"] <= max(3, 0.2 * k["leads"]), f"{kind}: too many red anomalies {k}"
