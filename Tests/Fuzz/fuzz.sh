#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS seconds (make fuzz), then prints one line per target:
# executions, executions per second, coverage (cov: edges, ft: features) and crashes.
#
# The committed corpus (Tests/Fuzz/corpus/<target>) is read, never written: new inputs go to
# .build-fuzz/corpus/<target>, crashes to .build-fuzz/crashes/. A crash is minimised with
#   .build-fuzz/release/fuzz-<target> -minimize_crash=1 -runs=100000 <crash file>
# and the smallest input is committed to the corpus with the fix (Docs/Operations.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
bin=.build-fuzz/${FUZZ_CONFIG:-release}
declare -A max_len=([frame-leader]=16384 [frame-follower]=16384 [handshake]=4096 [batch]=16384 [path]=1024 [sync-manifest]=8192)
targets=${FUZZ_TARGETS:-frame-leader frame-follower handshake batch path sync-manifest}
summary=() total=0 failed=0
for target in $targets; do
    mkdir -p ".build-fuzz/corpus/$target" .build-fuzz/crashes .build-fuzz/logs
    log=".build-fuzz/logs/$target.log"
    echo "fuzzing $target for $seconds s (log: $log)"
    # -malloc_limit_mb=2: twice the largest limit the targets decode with (fuzzLimits), so an
    # allocation sized by a length from the network past its bound is a crash.
    "$bin/fuzz-$target" ".build-fuzz/corpus/$target" "Tests/Fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len="${max_len[$target]}" -malloc_limit_mb=2 -timeout=5 \
        -artifact_prefix=".build-fuzz/crashes/$target-" -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    result=ok
    if [ "$status" -ne 0 ]; then result="CRASH $(ls -t .build-fuzz/crashes/"$target"-* 2>/dev/null | head -1)"; failed=1; fi
    summary+=("$(printf '%-15s %12s executions %8s executions/s  %-22s %s' "$target" "${runs:-?}" "${rate:-?}" "${coverage:-?}" "$result")")
    total=$((total + ${runs:-0}))
done
printf '%s\n' "${summary[@]}"
echo "total: $total executions in $seconds s per target"
exit "$failed"
