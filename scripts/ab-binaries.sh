#!/usr/bin/env bash
# A/B timing of two sipscope binaries on one capture, run alternately so that a noisy host
# moves both alike: wall and user+sys CPU time, min and median of RUNS runs each.
#
#   scripts/ab-binaries.sh OLD_BINARY NEW_BINARY CAPTURE [RUNS] [COMMAND]
#
# COMMAND defaults to `calls`. Build the old binary from another checkout, for example:
#   git worktree add /tmp/old 80aa0a4 && (cd /tmp/old && cargo build --release)
#   scripts/ab-binaries.sh /tmp/old/target/release/sipscope target/release/sipscope \
#       /tmp/sipscope-calls-20k.pcap 15
# Needs GNU time (/usr/bin/time).
set -euo pipefail

[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
old=$1 new=$2 capture=$3 runs=${4:-11} command=${5:-calls}
command -v /usr/bin/time >/dev/null || { echo "ab-binaries: /usr/bin/time is not installed" >&2; exit 1; }
for bin in "$old" "$new"; do
    [ -x "$bin" ] || { echo "ab-binaries: $bin is not an executable" >&2; exit 1; }
done
cat "$capture" >/dev/null # into the page cache

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for _ in $(seq "$runs"); do
    for side in A B; do
        bin=$old
        [ "$side" = B ] && bin=$new
        /usr/bin/time -o "$results.one" -f "%e %U %S" "$bin" "$command" "$capture" >/dev/null 2>&1
        read -r wall user sys <"$results.one"
        echo "$side $wall $(awk "BEGIN{print $user + $sys}")" >>"$results"
    done
done
rm -f "$results.one"

summary() { # side column -> "min / median"
    awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$results" | sort -n |
        awk '{v[NR] = $1} END {printf "%.2f / %.2f s", v[1], v[int((NR + 1) / 2)]}'
}
echo "capture: $capture, $runs runs each of \`$command\`, alternated"
printf "%-3s %-50s %-18s %s\n" "" binary "wall, min / median" "CPU, min / median"
printf "%-3s %-50s %-18s %s\n" A "$old" "$(summary A 2)" "$(summary A 3)"
printf "%-3s %-50s %-18s %s\n" B "$new" "$(summary B 2)" "$(summary B 3)"
