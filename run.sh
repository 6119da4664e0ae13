#!/usr/bin/env bash
# Set up (once) and start the portal on embedded defaults with demo data:
#   bash run.sh            -> http://127.0.0.1:5000
# PORT and HOST override the address. Needs Python 3.11+ with venv.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.vanthu-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e .
  echo "$want" > "$stamp"
fi
exec .venv/bin/flask --app app serve --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
