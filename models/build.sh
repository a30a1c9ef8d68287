#!/usr/bin/env bash
# npm run models:build -- [--family NAME] [--from-master] [--quick] [...]
# Builds a model family from models/families/NAME.json (default tiny); all options and stages
# are described in models/build.py and docs/models.md. This wrapper only makes sure Debian's
# interpreter runs it: the first python3 on PATH may lack python3-torch & co.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[[ -x "$PY" ]] || {
  echo "[models:build] $PY not found: run scripts/install.sh" >&2
  exit 1
}
exec "$PY" models/build.py "$@"
