#!/usr/bin/env bash
# Whole-process comparison: `sipscope calls` against `sngrep -N -q -l 100000 -I` on the same
# capture, wall time (best of N runs, file in the page cache) and peak RSS, and the ratio.
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

measure() { # name command... -> "best_seconds max_rss_kb"
    local best="" rss=0
    for _ in $(seq "$runs"); do
        local out report
        report=$(mktemp)
        /usr/bin/time -o "$report" -f "%e %M" "$@" >/dev/null 2>&1
        out=$(tail -1 "$report")
        rm -f "$report"
        local t=${out% *} m=${out#* }
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    echo "$best $rss"
}

read -r s_time s_rss < <(measure "$here/target/release/sipscope" calls "$capture")
read -r g_time g_rss < <(measure sngrep -N -q -l 100000 -I "$capture")

size=$(stat -c %s "$capture")
echo "capture: $capture ($((size / 1000000)) MB)"
printf "%-10s %10s %14s\n" tool "wall (s)" "peak RSS (MB)"
printf "%-10s %10s %14d\n" sipscope "$s_time" $((s_rss / 1024))
printf "%-10s %10s %14d\n" sngrep "$g_time" $((g_rss / 1024))
awk "BEGIN{printf \"sipscope is %.1fx faster, with %.2fx the peak RSS\n\", $g_time / $s_time, $s_rss / $g_rss}"
