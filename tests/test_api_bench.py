"""The API benchmark runs end to end (tiny load) against the real app served by uvicorn."""

from __future__ import annotations

from bench.api import run
from fraudnet.api.app import close_services, create_app, open_services
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace


def test_bench_api_measures_both_endpoints(api_handbuilt: ApiWorkspace) -> None:
    settings = Settings(workspace=api_handbuilt.path)
    ctx = open_services(settings)
    try:
        result = run(create_app(settings, services=ctx), api_handbuilt.tokens, clients=4, requests=24)
    finally:
        close_services(ctx)
    assert result["store"] == "embedded" and result["clients"] == 4
    for name in ("lead_list", "ego_2hop"):
        stats = result[name]
        assert stats["n"] == 24 and stats["failed"] == 0
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["max_ms"]
    assert 1 < result["ego_2hop"]["mean_nodes"] <= 500


def test_bench_api_stops_at_its_time_budget(api_handbuilt: ApiWorkspace) -> None:
    settings = Settings(workspace=api_handbuilt.path)
    ctx = open_services(settings)
    try:
        result = run(create_app(settings, services=ctx), api_handbuilt.tokens, clients=2, requests=100_000,
                     budget_s=1.0)
    finally:
        close_services(ctx)
    for name in ("lead_list", "ego_2hop"):
        stats = result[name]
        assert stats["stopped_after_s"] == 1.0 and 0 < stats["n"] < 100_000 and stats["failed"] == 0
