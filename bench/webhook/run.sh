#!/usr/bin/env bash
# Load-test the webhook against a bare Flask endpoint (see README.md beside this file).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk ..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
exec .venv/bin/python bench/webhook/run.py "$@"
