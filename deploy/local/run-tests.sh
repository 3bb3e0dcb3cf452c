#!/usr/bin/env bash
# Starts a throw-away stack on free ports, runs every test against it, and always stops it.
set -euo pipefail
state_dir="$1"; shift
uv_bin="$(command -v uv || echo "$HOME/.local/bin/uv")"
rm -rf "$state_dir"
stop() { "$uv_bin" run --frozen python deploy/local/stack.py down --state-dir "$state_dir" || true; }
trap stop EXIT
"$uv_bin" run --frozen python deploy/local/stack.py up --free-ports --state-dir "$state_dir"
set -a; source "$state_dir/test.env"; set +a
"$uv_bin" run --frozen pytest "$@"
