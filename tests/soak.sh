#!/usr/bin/env bash
# Steadiness: run test files N times each and count failures, on a quiet
# machine or with both cores loaded.
#
#   bash tests/soak.sh N [--load] [FILE ...]
#
# N       runs of each file (each run is `python -m pytest FILE`)
# --load  two busy loops (`python3 -c "while True: pass"`) load both cores
#         while the files run; they are bounded with `timeout` and stopped
#         at the end
# FILE    test files (default: the files that restart routers, fail them
#         over and lose journals: the ones that failed by timing before)
#
# Prints one line per run and a table: file, runs, failures. Exits 1 if any
# run failed; the output of failed runs is kept in a directory it names.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:?usage: bash tests/soak.sh N [--load] [FILE ...]}
shift
load=0
if [ "${1:-}" = --load ]; then
    load=1
    shift
fi
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    files=(tests/integration/test_stream_identity.py
           tests/integration/test_failover.py
           tests/integration/test_failover_masters.py
           tests/integration/test_chaos.py
           tests/integration/test_operator_router.py)
fi
MAX_SECONDS=${SOAK_MAX_SECONDS:-21600}   # the busy loops' bound: 6 h
out=$(mktemp -d -t bmo-soak-XXXX)
busy=()
stop_load() {
    for pid in "${busy[@]}"; do kill "$pid" 2>/dev/null; done
}
trap stop_load EXIT
if [ "$load" = 1 ]; then
    for _ in 1 2; do
        timeout "$MAX_SECONDS" python3 -c "while True: pass" &
        busy+=($!)
    done
fi

declare -A failed
total_failed=0
for f in "${files[@]}"; do
    failed[$f]=0
    for i in $(seq 1 "$runs"); do
        log="$out/$(basename "$f" .py)-$i.log"
        start=$(date +%s)
        if python -m pytest -q -p no:randomly "$f" >"$log" 2>&1; then
            verdict=passed
            rm -f "$log"
        else
            verdict="FAILED (log: $log)"
            failed[$f]=$((failed[$f] + 1))
            total_failed=$((total_failed + 1))
        fi
        echo "soak: $f run $i/$runs: $verdict in $(( $(date +%s) - start ))s"
    done
done

echo
echo "soak: $runs runs per file, $( [ "$load" = 1 ] && echo "both cores loaded" || echo "quiet" )"
printf '%-55s %5s %8s\n' file runs failures
for f in "${files[@]}"; do
    printf '%-55s %5s %8s\n' "$f" "$runs" "${failed[$f]}"
done
[ "$total_failed" = 0 ] && rmdir "$out" 2>/dev/null
[ "$total_failed" = 0 ]
