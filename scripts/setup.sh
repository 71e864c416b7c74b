#!/usr/bin/env bash
# Installs everything fraudnet needs on a fresh machine; safe to run again (each step skips what is done).
#   scripts/setup.sh            Python venv + packages, Neo4j 5.26 jars (Maven), front-end assets
#   scripts/setup.sh --test     the same plus test tools (Debian chromium for browser tests, PySpark)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
WITH_TESTS=0
[[ "${1:-}" == "--test" ]] && WITH_TESTS=1

step() { printf '\n==> %s\n' "$*"; }

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  step "Creating virtual environment .venv ($($PY --version))"
  "$PY" -m venv .venv
fi
step "Installing Python packages (pinned by constraints.txt)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"

step "Neo4j Community 5.26 jars from Maven Central (neo4j-launcher/)"
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "Java 17 and Maven are needed for the Neo4j launcher: apt-get install -y openjdk-17-jdk-headless maven" >&2
  exit 1
fi
.venv/bin/python -c "from fraudnet.graph.neo4j_server import ensure_built; print('launcher ready:', ensure_built())"

if [[ -f frontend/package.json ]] && command -v npm >/dev/null; then
  step "Front-end (npm ci + build into fraudnet/viz/static)"
  bash scripts/build-frontend.sh
fi

if [[ $WITH_TESTS == 1 ]]; then
  step "PySpark for the Spark engine's tests (the [spark] extra; Java 17 runs it)"
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,spark]"
  # chromium for browser tests; fonts-wqy-microhei so Chinese shows in their screenshots and PDFs.
  if [[ ! -x /usr/bin/chromium || ! -d /usr/share/fonts/truetype/wqy ]]; then
    step "Debian chromium (+ CJK font) for browser tests"
    if [[ $(id -u) == 0 ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei
    fi
  fi
fi
step "Set-up done in $ROOT"
