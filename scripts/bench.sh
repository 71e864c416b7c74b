#!/usr/bin/env bash
# Benchmarks (DESIGN.md §8): set-up, then the S and M tiers (override with TIERS=S or TIERS=S,M,L).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m bench.run --tiers "${TIERS:-S,M}" "$@"
