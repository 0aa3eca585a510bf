#!/usr/bin/env bash
# The output of every command on every capture, one digest per run, to show that a change
# (a refactor, a faster path) leaves every output byte-identical.
#
#     cargo build --release
#     scripts/output-digest.sh /tmp/before         # on the old build
#     scripts/output-digest.sh /tmp/after          # on the new build
#     diff -r /tmp/before /tmp/after && echo identical
#
# Captures: samples/, ../shared/captures (when present) and a synthetic capture of 2,000 calls
# (TCP, fragments, retransmissions, scanners). Commands: calls (table and CSV), export (JSON
# and JSON with --raw), flow, diagnose (text and --all), stats (text and JSON). Standard error
# is kept too (damage and limits reports). SIPSCOPE names the binary (default
# target/release/sipscope).
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:?usage: scripts/output-digest.sh OUTPUT_DIR}
bin=${SIPSCOPE:-target/release/sipscope}
mkdir -p "$out"

# One path for every run: the JSON names its sources.
synth="${TMPDIR:-/tmp}/sipscope-digest-synth.pcap"
if [ ! -f "$synth" ]; then
    cargo run --quiet --release --example gen-capture -- --calls 2000 --scanners 2000 \
        -o "$synth" >/dev/null 2>&1
fi

captures=()
while IFS= read -r f; do captures+=("$f"); done < <(
    {
        find samples -type f -name '*.pcap*'
        if [ -d ../shared/captures ]; then
            find ../shared/captures -type f ! -name '*.md' ! -name '*.json' ! -name '*.txt' \
                ! -name '*.sh' ! -name '*.xml' ! -name '*.cfg'
        fi
        echo "$synth"
    } | sort
)

commands=(
    "calls"
    "calls --format csv"
    "export --format json"
    "export --format json --raw"
    "export --format ndjson"
    "flow"
    "diagnose"
    "diagnose --all --format json"
    "stats"
    "stats --format json"
)

for c in "${captures[@]}"; do
    name=$(echo "$c" | sed 's|^\.\./shared/captures/|shared/|; s|.*/sipscope-digest-synth\.pcap$|synth|' \
        | tr '/' '_')
    for cmd in "${commands[@]}"; do
        # shellcheck disable=SC2086 # the command's words are meant to split
        {
            "$bin" $cmd "$c" 2>&1 || echo "exit status $?"
        } | sha256sum | cut -d' ' -f1 >"$out/$name.$(echo "$cmd" | tr ' ' '_')"
    done
done
echo "$(find "$out" -type f | wc -l) outputs digested in $out"
