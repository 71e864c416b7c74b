#!/usr/bin/env bash
# Builds the browser link chart (frontend/, Vite + Cytoscape.js) into fraudnet/viz/static/ (index.html + hashed assets).
#   scripts/build-frontend.sh           npm ci (when node_modules is missing or stale) + typecheck + build
#   scripts/build-frontend.sh --check   also fails if the committed build differs from a fresh one
set -euo pipefail
cd "$(dirname "$0")/../frontend"
if ! command -v npm >/dev/null; then
  echo "npm is needed to build the front-end (apt-get install -y nodejs npm); the committed build in" \
       "fraudnet/viz/static/ is used meanwhile" >&2
  exit 1
fi
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# API types generated from the app's OpenAPI schema (openapi-typescript has its own install: it needs TypeScript 5).
if [[ -f tools/openapi/package.json ]]; then
  if [[ ! -d tools/openapi/node_modules || tools/openapi/package-lock.json -nt tools/openapi/node_modules/.package-lock.json ]]; then
    (cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error)
  fi
  PY="${PYTHON:-../.venv/bin/python}"
  SCHEMA="$(mktemp --suffix=.json)"
  "$PY" ../scripts/openapi_dump.py > "$SCHEMA"
  tools/openapi/node_modules/.bin/openapi-typescript "$SCHEMA" -o src/api-types.ts --root-types >/dev/null
  # The schema's digest beside the types: tests/test_frontend_api_types.py fails when the API changed since.
  sha256sum "$SCHEMA" | cut -d' ' -f1 > src/api-types.sha256
  rm -f "$SCHEMA"
fi
npx --no-install tsc --noEmit -p .
npx --no-install vite build --logLevel warn
echo "front-end built into $(cd ../fraudnet/viz/static && pwd)"
if [[ "${1:-}" == "--check" ]]; then
  cd ..
  if ! git diff --quiet -- fraudnet/viz/static frontend/src/api-types.ts frontend/src/api-types.sha256 || \
     [[ -n "$(git ls-files --others --exclude-standard fraudnet/viz/static frontend/src/api-types.*)" ]]; then
    echo "fraudnet/viz/static or frontend/src/api-types.ts differs from a fresh build (API schema changed?):" \
         "commit the rebuilt assets and types" >&2
    exit 1
  fi
fi
