"""The front-end's generated API types (frontend/src/api-types.ts) match the API's current OpenAPI schema."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_api_types_are_current() -> None:
    # The digest build-frontend.sh wrote beside the types, against the schema the app gives now.
    schema = subprocess.run([sys.executable, str(ROOT / "scripts" / "openapi_dump.py")], check=True,
                            capture_output=True, cwd=ROOT).stdout
    recorded = (ROOT / "frontend" / "src" / "api-types.sha256").read_text().strip()
    assert hashlib.sha256(schema).hexdigest() == recorded, (
        "the API's OpenAPI schema changed since frontend/src/api-types.ts was generated: run "
        "scripts/build-frontend.sh and commit frontend/src/api-types.ts, api-types.sha256 and fraudnet/viz/static")
    types = (ROOT / "frontend" / "src" / "api-types.ts").read_text()
    assert "export type SchemaCaseFileOut" in types and "export type SchemaLeadOut" in types
