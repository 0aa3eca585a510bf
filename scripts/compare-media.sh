#!/usr/bin/env bash
# Whole-process comparison of the media analysis: `sipscope media` against
# `tshark -q -z rtp,streams`, `sngrep -r` (with RTP), tcpdump's bare read of the same file, and
# `sipscope calls --no-media`; wall time (best and median of N runs, file in the page cache) and
# peak RSS of each, and the ratios (docs/performance.md, Media).
#
#   scripts/compare-media.sh                 generate 280 calls with 1,070,000 RTP packets
#   scripts/compare-media.sh CAPTURE [RUNS]  compare on an existing capture
#
# Needs tshark, sngrep, tcpdump and GNU time (/usr/bin/time). Builds sipscope in release mode.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
runs=${2:-3}
for tool in tshark sngrep tcpdump /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "compare-media: $tool is not installed" >&2; exit 1; }
done
(cd "$here" && cargo build --release --quiet --bin sipscope --example gen-capture)
if [ $# -ge 1 ]; then
    capture=$1
else
    capture=${TMPDIR:-/tmp}/sipscope-media-1m.pcap
    [ -f "$capture" ] || "$here/target/release/examples/gen-capture" --calls 280 --cps 2 \
        --hold 115 --tcp 0 --fragments 0 --rtp 0.1 -o "$capture"
fi
cat "$capture" >/dev/null

# One run under GNU time: "seconds max_rss_kb".
run_once() {
    local report
    report=$(mktemp)
    /usr/bin/time -o "$report" -f "%e %M" "$@" >/dev/null 2>&1
    tail -1 "$report"
    rm -f "$report"
}

sipscope=$here/target/release/sipscope
declare -A best median rss
names=(tcpdump sipscope-media sipscope-no-media tshark sngrep)
for _ in $(seq "$runs"); do
    for name in "${names[@]}"; do
        case $name in
            tcpdump) out=$(run_once tcpdump -r "$capture" -w /dev/null) ;;
            sipscope-media) out=$(run_once "$sipscope" media "$capture") ;;
            sipscope-no-media) out=$(run_once "$sipscope" calls --no-media "$capture") ;;
            tshark) out=$(run_once tshark -q -r "$capture" -z rtp,streams) ;;
            sngrep) out=$(run_once sngrep -N -q -r -l 100000 -I "$capture") ;;
        esac
        eval "times_${name//-/_}+=(\"$out\")"
    done
done

median() {
    sort -n | awk '{v[NR]=$1} END {printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
printf '%-20s %10s %10s %12s\n' run best median "peak RSS"
for name in "${names[@]}"; do
    eval "list=(\"\${times_${name//-/_}[@]}\")"
    b=$(printf '%s\n' "${list[@]}" | cut -d' ' -f1 | sort -n | head -1)
    m=$(printf '%s\n' "${list[@]}" | cut -d' ' -f1 | median)
    r=$(printf '%s\n' "${list[@]}" | cut -d' ' -f2 | sort -n | tail -1)
    best[$name]=$b median[$name]=$m rss[$name]=$r
    printf '%-20s %9ss %9ss %9s MB\n' "$name" "$b" "$m" "$((r / 1024))"
done
awk -v s="${median[sipscope-media]}" -v t="${median[tshark]}" -v g="${median[sngrep]}" \
    -v d="${median[tcpdump]}" 'BEGIN {
        printf "sipscope media: %.1fx faster than tshark, %.1fx than sngrep, %.2fx tcpdump'"'"'s read\n", t / s, g / s, s / d
    }'
