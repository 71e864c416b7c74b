"""Property-based run of the OpenAPI schema (schemathesis): no 5xx and no response that breaks the schema."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from fraudnet.api.app import close_services, create_app, open_services
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_workspace(api_handbuilt_template: ApiWorkspace, tmp_path_factory: pytest.TempPathFactory) -> ApiWorkspace:
    from tests.fixtures.server import copy_workspace

    ws = copy_workspace(api_handbuilt_template.path, tmp_path_factory.mktemp("fuzz") / "ws")
    return ApiWorkspace(ws, dict(api_handbuilt_template.tokens), api_handbuilt_template.lead_id)


# The schema is read from the app when this module loads; the app gets its stores (a copy of the hand-built
# workspace) from the `fuzz_context` fixture before any call. (`schemathesis.pytest.from_fixture` does not work
# with pytest 9.)
APP = create_app(Settings(workspace=Path(tempfile.gettempdir()) / "fraudnet-fuzz-never-opened"))
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(APP.openapi())))
schema.app = APP  # calls go through the ASGI app (the app's start-up keeps the context the fixture sets)


@pytest.fixture(scope="module", autouse=True)
def fuzz_context(fuzz_workspace: ApiWorkspace) -> Iterator[None]:
    ctx = open_services(Settings(workspace=fuzz_workspace.path))
    APP.state.services = ctx
    try:
        yield
    finally:
        close_services(ctx)


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_api_schema_admin(case: schemathesis.Case, fuzz_workspace: ApiWorkspace) -> None:
    """Every operation with generated inputs as an admin (who may call all of them)."""
    case.call_and_validate(headers=fuzz_workspace.headers("admin"), checks=CHECKS)


@schema.include(method="GET").parametrize()
@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_api_schema_viewer_reads(case: schemathesis.Case, fuzz_workspace: ApiWorkspace) -> None:
    """Reads as a viewer: masked answers still conform; forbidden ones are documented 403s."""
    case.call_and_validate(headers=fuzz_workspace.headers("viewer"), checks=CHECKS)


def test_fuzzed_app_answers_from_the_workspace(fuzz_workspace: ApiWorkspace) -> None:
    """The app the schema runs against really serves the fixture's workspace (tokens valid, lead present)."""
    from fastapi.testclient import TestClient

    client = TestClient(APP)
    assert client.get("/api/me", headers=fuzz_workspace.headers("viewer")).json()["role"] == "viewer"
    lead = client.get(f"/api/leads/{fuzz_workspace.lead_id}", headers=fuzz_workspace.headers("admin"))
    assert lead.status_code == 200
