#!/usr/bin/env bash
# Run the performance benchmarks one after another, each with its default sizes (about 12 minutes
# on 2 cores), and tee everything to bench/results-<hostname>.txt. They report wall times: run
# them on a quiet machine. Arguments pick scripts: bench/run_all.sh threads latency
set -uo pipefail
cd "$(dirname "$0")/.."
scripts=("$@")
[ ${#scripts[@]} -eq 0 ] && scripts=(throughput threads time_to_quality app_overhead latency)
out="bench/results-$(hostname).txt"
{
    echo "# bench/run_all.sh at $(date -Iseconds), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- genlib dashboard bench || echo ' plus uncommitted changes')"
    for s in "${scripts[@]}"; do
        echo
        echo "## python bench/$s.py"
        start=$SECONDS
        python "bench/$s.py"
        rc=$?
        [ $rc -ne 0 ] && echo "## bench/$s.py FAILED (exit $rc)"
        echo "## bench/$s.py took $((SECONDS - start)) s"
    done
} 2>&1 | tee "$out"
echo "written to $out"
