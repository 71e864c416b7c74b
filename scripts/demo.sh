#!/usr/bin/env bash
# The main job on a fresh machine: set-up, generate a city, ingest, load the graph, detect, serve.
#   scripts/demo.sh                 embedded default graph store
#   scripts/demo.sh --neo4j         also starts the bundled Neo4j 5.26 and loads the graph into it
# Environment: PERSONS (default 20000), SEED (default 42), FRAUDNET_WORKSPACE (default ./fraudnet-data),
#              PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
USE_NEO4J=0
[[ "${1:-}" == "--neo4j" ]] && USE_NEO4J=1
PERSONS="${PERSONS:-20000}"
SEED="${SEED:-42}"
WS="${FRAUDNET_WORKSPACE:-fraudnet-data}"
CITY="$WS/city-$PERSONS-$SEED"
PORT="${PORT:-8000}"
export FRAUDNET_WORKSPACE="$WS"

bash scripts/setup.sh
FN=.venv/bin/fraudnet

echo; echo "==> 1/5 generate a city of $PERSONS persons (seed $SEED) into $CITY"
[[ -f "$CITY/truth.json" ]] || $FN generate --persons "$PERSONS" --seed "$SEED" --out "$CITY"

echo; echo "==> 2/5 ingest into the claims store ($WS/claims.duckdb)"
$FN ingest "$CITY"

if [[ $USE_NEO4J == 1 ]]; then
  echo; echo "==> 3/5 start Neo4j and load the graph"
  $FN neo4j status >/dev/null 2>&1 || $FN neo4j start
  $FN neo4j load
else
  echo; echo "==> 3/5 graph: embedded store (built from the claims store when the service starts)"
fi

echo; echo "==> 4/5 detect, evaluate against the planted truth, export leads"
$FN detect
$FN evaluate --truth "$CITY/truth.json"
$FN leads export --format csv --out "$WS/leads.csv" --min-severity orange
$FN leads export --format xlsx --out "$WS/leads.xlsx"

echo; echo "==> 5/5 serve on http://127.0.0.1:$PORT  (API docs /docs, link chart /)"
TOKEN=$($FN tokens create --user demo-admin --role admin)
echo "Admin token for the browser login and API (Authorization: Bearer ...):"
echo "  $TOKEN"
exec $FN serve --port "$PORT"
