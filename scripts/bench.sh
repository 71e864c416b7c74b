#!/usr/bin/env bash
# Benchmarks (DESIGN.md §8): set-up, then the S and M tiers (override with TIERS=S or TIERS=S,M,L), then the
# detection quality harness on both generators (QUALITY="…" passes other options to bench.quality;
# QUALITY=skip leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# BENCH_ARGS passes options to bench.run, e.g. for the L tier (2M persons):
#   TIERS=L QUALITY=skip BENCH_ARGS="--out /tmp/bench --neo4j-budget 600 --delete-after" make bench
# shellcheck disable=SC2086
.venv/bin/python -m bench.run --tiers "${TIERS:-S,M}" ${BENCH_ARGS:-} "$@"
if [[ "${QUALITY:-}" != "skip" ]]; then
  # shellcheck disable=SC2086
  .venv/bin/python -m bench.quality ${QUALITY:---quick} --compare bench/quality_results.json
fi
