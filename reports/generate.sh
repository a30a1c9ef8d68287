#!/usr/bin/env bash
# Regenerates the committed report (reports/README.md, *.svg) on this machine:
# accuracy (tiergate eval), performance (tiergate bench), then the report (tiergate report).
# Usage: npm run report [-- <extra bench options, e.g. --duration 5>]
set -euo pipefail
cd "$(dirname "$0")/.."
cli=(node --import tsx src/cli/main.ts)
config=reports/tiergate-bench.yaml
"${cli[@]}" eval -c "$config" -o reports/accuracy-profiles.json
"${cli[@]}" bench -c "$config" -o reports/bench.json "$@"
"${cli[@]}" report --bench reports/bench.json --profiles reports/accuracy-profiles.json -o reports
