#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: set-up (incl. Neo4j jars and chromium), lint, pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo; echo "==> ruff"
.venv/bin/ruff check fraudnet tests bench
echo; echo "==> pytest"
.venv/bin/python -m pytest "$@"
