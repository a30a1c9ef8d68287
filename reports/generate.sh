#!/usr/bin/env bash
# Regenerates a committed report on this machine: accuracy (tiergate eval), performance
# (tiergate bench), then the report (tiergate report).
# Usage: npm run report [-- --family small] [-- <extra bench options, e.g. --duration 5>]
#   tiny (default): reports/README.md from reports/tiergate-bench.yaml
#   --family NAME:  reports/NAME/README.md from reports/NAME/tiergate-bench.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
dir=reports
if [[ "${1:-}" == "--family" ]]; then
  [[ -n "${2:-}" ]] || { echo "report: --family needs a name" >&2; exit 2; }
  [[ "$2" == tiny ]] || dir="reports/$2"
  shift 2
fi
config="$dir/tiergate-bench.yaml"
[[ -f "$config" ]] || { echo "report: no $config (a bench config for that family)" >&2; exit 2; }
cli=(node --import tsx src/cli/main.ts)
"${cli[@]}" eval -c "$config" -o "$dir/accuracy-profiles.json"
"${cli[@]}" bench -c "$config" -o "$dir/bench.json" "$@"
"${cli[@]}" report --bench "$dir/bench.json" --profiles "$dir/accuracy-profiles.json" -o "$dir"
