#!/usr/bin/env bash
# Runs every benchmark at a size that fits a 2-core machine in under 15 minutes, on a stack of
# its own, against a snapshot of the committed tree; then regenerates docs/benchmarks.md.
#   bash bench/run.sh            (make bench)
#   BENCH_QUICK=1 bash bench/run.sh   (a smoke run of a minute or two)
# Results: bench/results/<name>.json. The stack is always stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-$(command -v uv || echo "$HOME/.local/bin/uv")}"
export CMHL_BENCH_STATE="${CMHL_BENCH_STATE:-/tmp/cmhl-bench}"
export CMHL_BENCH_SRC="${CMHL_BENCH_SRC:-/tmp/cmhl-bench-src}"
export CMHL_BENCH_COMMIT="$(git rev-parse --short HEAD)"
rm -rf "$CMHL_BENCH_SRC" && mkdir -p "$CMHL_BENCH_SRC"
git archive HEAD | tar -x -C "$CMHL_BENCH_SRC"
PYTHONPATH="$CMHL_BENCH_SRC/contracts/src:$CMHL_BENCH_SRC/libs/servicekit/src"
for service in "$CMHL_BENCH_SRC"/services/*/src; do PYTHONPATH="$PYTHONPATH:$service"; done
export PYTHONPATH
PY=("$UV" run --frozen python)
STACK=("${PY[@]}" "$CMHL_BENCH_SRC/deploy/local/stack.py")

trap '"${STACK[@]}" down --state-dir "$CMHL_BENCH_STATE" || true' EXIT
# A fresh stack each run: leftovers of an earlier run would add to the catch-up backlog.
if [[ -f "$CMHL_BENCH_STATE/stack.json" ]]; then
  "${STACK[@]}" down --state-dir "$CMHL_BENCH_STATE"
  rm -rf "$CMHL_BENCH_STATE"
fi
started=$(date +%s)
echo "[bench] commit $CMHL_BENCH_COMMIT; stack in $CMHL_BENCH_STATE"
"${STACK[@]}" up --services --free-ports --state-dir "$CMHL_BENCH_STATE"

failed=()
run() { "${PY[@]}" -m "bench.$1" "${@:2}" || failed+=("$1"); }
# First, while the stack is quiet: it measures idle CPU, then every process until consumers
# catch up.
if [[ -n "${BENCH_QUICK:-}" ]]; then
  run pipeline_cpu --rate 10 --duration 5 --idle 10
  run ferretdb_ops --ops 50
  run referral_api --rates 5,10,20 --duration 5
  run agency_intake --events 100
  run freshness --rate 20 --duration 5
  run catchup --events 2000 --naive-events 500
else
  run pipeline_cpu --rate 25 --duration 20
  run ferretdb_ops --ops 300
  run referral_api --rates 10,25,50,100,200,400 --duration 10 --profile
  run agency_intake --events 300 --profile
  run freshness --rate 100 --duration 10
  # The goal's 100/s overloads the API on 2 cores; freshness at a rate it sustains, too.
  run freshness --rate 20 --duration 10 --name freshness_sustained
  # These two stop services: the isolated intake stops all but the referral service, the
  # catch-up all of them (a restarted follow-up service would chew on its backlog for minutes).
  run agency_intake --events 150 --isolated
  run catchup --events 100000 --naive-events 3000 --profile
fi
run memory
run report --make-seconds $(( $(date +%s) - started ))
echo "[bench] done in $(( $(date +%s) - started )) s"
[[ ${#failed[@]} -eq 0 ]] || { echo "[bench] FAILED: ${failed[*]}"; exit 1; }
