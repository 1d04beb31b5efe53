#!/usr/bin/env bash
# Sets up a development checkout from scratch: a virtual environment with the package and its test tools,
# a second Keras 3 beside the first (compatibility tests), and the system tools the tests drive: the git-lfs
# client (interoperability) and Debian's Chromium (the shelf's web pages in a real browser).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip, quietly: its output is kept in a log and shown only when it fails.
quiet_pip() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip --disable-pip-version-check --quiet "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
quiet_pip install --upgrade pip
quiet_pip install -e '.[dev]'

# The Keras version the compatibility tests load saved folders under, beside the installed one (Keras is pure
# Python; tests put this folder first on PYTHONPATH in a subprocess).
KERAS_COMPAT=${KERAS_COMPAT:-3.10.0}
if [ ! -d ".venv/keras-$KERAS_COMPAT/keras" ]; then
  quiet_pip install --target ".venv/keras-$KERAS_COMPAT" --no-deps "keras==$KERAS_COMPAT"
fi

missing=()
command -v git-lfs >/dev/null 2>&1 || missing+=(git-lfs)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed; the tests that drive them need them (apt-get install ${missing[*]})" >&2
  fi
fi
echo "ready: source .venv/bin/activate, then: cclm-shelf --help"
