"""One benchmark stage in its own process (called by bench.run): prints its figures as one JSON line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def stage_generate(persons: str, seed: str, out: str) -> dict[str, Any]:
    from bench import generate

    return generate.run(int(persons), int(seed), Path(out))


def stage_ingest(city: str, workspace: str) -> dict[str, Any]:
    from bench import ingest

    return ingest.run(Path(city), Path(workspace))


def stage_neo4j(workspace: str) -> dict[str, Any]:
    from bench import neo4j_load
    from fraudnet.config import load_settings

    return neo4j_load.run(Path(workspace), load_settings(workspace))


def stage_detect(workspace: str) -> dict[str, Any]:
    from bench import detect

    return detect.run(Path(workspace))


def stage_quality(workspace: str, truth: str) -> dict[str, Any]:
    from fraudnet.claims.leads import LeadStore
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.detectors.evaluate import evaluate_store

    with ClaimsStore.open(Path(workspace), read_only=True) as store:
        return evaluate_store(LeadStore(store.con), json.loads(Path(truth).read_text()))


def stage_api(workspace: str) -> dict[str, Any]:
    from bench import api

    return api.run_workspace(Path(workspace))


def stage_increment(city: str, workspace: str) -> dict[str, Any]:
    from bench import scale

    return scale.increment(Path(city), Path(workspace))


def stage_projection(workspace: str) -> dict[str, Any]:
    from bench import scale

    return scale.projection(Path(workspace))


def stage_neo4j_budget(workspace: str, seconds: str) -> dict[str, Any]:
    from bench import scale

    return scale.neo4j_budget(Path(workspace), float(seconds))


STAGES = {
    "generate": stage_generate,
    "ingest": stage_ingest,
    "neo4j": stage_neo4j,
    "detect": stage_detect,
    "quality": stage_quality,
    "api": stage_api,
    "increment": stage_increment,
    "projection": stage_projection,
    "neo4j_budget": stage_neo4j_budget,
}

if __name__ == "__main__":
    figures = STAGES[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(figures, default=str, ensure_ascii=False))
