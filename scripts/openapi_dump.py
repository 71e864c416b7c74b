"""Print the API's OpenAPI schema (JSON, keys sorted) without opening a workspace: the input of the front-end's
generated API types (`frontend/src/api-types.ts`, made by `scripts/build-frontend.sh`)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main() -> int:
    from fraudnet.api.app import create_app
    from fraudnet.config import Settings

    with tempfile.TemporaryDirectory() as tmp:  # the app opens its stores only when started; none is started here
        schema = create_app(Settings(workspace=Path(tmp) / "ws")).openapi()
    sys.stdout.write(json.dumps(schema, ensure_ascii=False, sort_keys=True, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
