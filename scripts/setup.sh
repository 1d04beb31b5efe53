#!/usr/bin/env bash
# Sets up a development checkout from scratch: a virtual environment with the package and its test tools,
# and the git-lfs client used by the interoperability tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

if ! command -v git-lfs >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq git-lfs >/dev/null
  else
    echo "note: git-lfs is not installed; the interoperability tests need it (apt-get install git-lfs)" >&2
  fi
fi
echo "ready: .venv/bin/cclm-shelf --help"
