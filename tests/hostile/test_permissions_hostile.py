"""Callers without the rights: refusals come through the error hierarchy (one JSON error body, 401/403/409), and
no API module raises a bare HTTPException."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.claims.tokens import TokenStore
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace

API = Path(__file__).resolve().parents[2] / "fraudnet" / "api"


def test_refusals_have_the_project_error_body(api_handbuilt: ApiWorkspace) -> None:
    scoped = TokenStore(api_handbuilt.path).create("admin_a", "admin", regions=["310101"])
    with TestClient(create_app(Settings(workspace=api_handbuilt.path, graph_workers=0))) as client:
        # No token, a malformed header, an unknown token: 401 with the challenge header.
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
            r = client.get("/api/leads", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"] == "unauthorized" and r.json()["field"] is None
        # A viewer changing a case, an investigator reading the audit log: 403 naming the role.
        r = client.post(f"/api/leads/{api_handbuilt.lead_id}/status", json={"status": "reviewing"},
                        headers=api_handbuilt.headers("viewer"))
        assert r.status_code == 403 and r.json()["error"] == "forbidden" and "'viewer'" in r.json()["message"]
        r = client.get("/api/audit", headers=api_handbuilt.headers("investigator"))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        # An admin limited to a region may not read the whole workspace (audit log, Cypher).
        scoped_headers = {"Authorization": f"Bearer {scoped}"}
        for method, path in (("get", "/api/audit"), ("post", "/api/cypher")):
            r = client.request(method.upper(), path, headers=scoped_headers,
                               json={"query": "MATCH (n) RETURN n"} if method == "post" else None)
            assert r.status_code == 403 and r.json()["error"] == "forbidden" and "310101" in r.json()["message"]
        # Cypher on the embedded store: a mode, answered 409 with the error hierarchy's code.
        r = client.post("/api/cypher", json={"query": "MATCH (n) RETURN n"}, headers=api_handbuilt.headers("admin"))
        assert r.status_code == 409 and r.json()["error"] == "config_error" and "Neo4j" in r.json()["message"]


def test_no_api_module_raises_a_bare_http_exception() -> None:
    offenders = [str(p.relative_to(API)) for p in API.rglob("*.py") if "HTTPException(" in p.read_text("utf-8")]
    assert offenders == [], "raise a fraudnet error (mapped in fraudnet/api/errors.py) instead of HTTPException"
