#!/usr/bin/env bash
# Whole-process comparison: `sipscope calls` against `sngrep -N -q -l 100000 -I` on the same
# capture, wall time (best and median of N runs each, the two tools taking turns, file in the
# page cache), median system time and peak RSS, and the ratio.
#
# Taking turns keeps a host that slows down for a while from favouring either tool, but each
# sipscope run then starts just after sngrep has freed about 290 MB; on a virtual machine that
# hands freed memory back to its host, sipscope's fresh pages are then slow to fault in, which
# shows as system time (docs/performance.md). `hyperfine -N --warmup 3` runs each
# tool in a block instead; the docs give both.
#
#   scripts/compare-sngrep.sh                 generate 20,000 calls and compare
#   scripts/compare-sngrep.sh CAPTURE [RUNS]  compare on an existing capture
#
# Needs sngrep and GNU time (/usr/bin/time). Builds sipscope in release mode first.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
runs=${2:-3}
for tool in sngrep /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "compare-sngrep: $tool is not installed" >&2; exit 1; }
done

(cd "$here" && cargo build --release --quiet --bin sipscope --example gen-capture)
if [ $# -ge 1 ]; then
    capture=$1
else
    capture=${TMPDIR:-/tmp}/sipscope-calls-20k.pcap
    [ -f "$capture" ] || "$here/target/release/examples/gen-capture" --calls 20000 -o "$capture"
fi
cat "$capture" >/dev/null # into the page cache: compare processing, not the disk

# One run under GNU time: "seconds max_rss_kb system_seconds".
run_once() {
    local report out
    report=$(mktemp)
    /usr/bin/time -o "$report" -f "%e %M %S" "$@" >/dev/null 2>&1
    out=$(tail -1 "$report")
    rm -f "$report"
    echo "$out"
}

# The two tools take turns, one run each per round: a host that slows down for a while then
# slows both, rather than whichever happened to be running.
s_runs=() g_runs=()
for _ in $(seq "$runs"); do
    s_runs+=("$(run_once "$here/target/release/sipscope" calls "$capture")")
    g_runs+=("$(run_once sngrep -N -q -l 100000 -I "$capture")")
done

# The median of a column of numbers.
median() {
    sort -n | awk '{v[NR]=$1} END {printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# "best median max_rss_kb median_system" of a list of "seconds rss system" runs.
summary() {
    local best med rss sys
    best=$(printf '%s\n' "$@" | sort -n | head -1 | cut -d' ' -f1)
    med=$(printf '%s\n' "$@" | cut -d' ' -f1 | median)
    rss=$(printf '%s\n' "$@" | cut -d' ' -f2 | sort -n | tail -1)
    sys=$(printf '%s\n' "$@" | cut -d' ' -f3 | median)
    echo "$best $med $rss $sys"
}
read -r s_time s_med s_rss s_sys < <(summary "${s_runs[@]}")
read -r g_time g_med g_rss g_sys < <(summary "${g_runs[@]}")

size=$(stat -c %s "$capture")
echo "capture: $capture ($((size / 1000000)) MB)"
echo "runs: $runs of each, taking turns"
printf "%-10s %10s %12s %16s %14s\n" tool "best (s)" "median (s)" "median sys (s)" "peak RSS (MB)"
printf "%-10s %10s %12s %16s %14d\n" sipscope "$s_time" "$s_med" "$s_sys" $((s_rss / 1024))
printf "%-10s %10s %12s %16s %14d\n" sngrep "$g_time" "$g_med" "$g_sys" $((g_rss / 1024))
awk "BEGIN{printf \"sipscope is %.1fx faster (best against best; %.1fx median against median), with %.2fx the peak RSS\n\", $g_time / $s_time, $g_med / $s_med, $s_rss / $g_rss}"
