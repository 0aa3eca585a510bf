#!/usr/bin/env bash
# Live capture and HEP against real peers, on loopback: sipp calls through a kamailio proxy while
#   - sipscope captures lo live (-i lo) and forwards every message as HEP to sngrep (-L), which
#     writes what it receives to a pcap;
#   - kamailio's siptrace module mirrors every message it handles as HEP v3 to a sipscope
#     listener;
#   - sngrep captures lo and sends HEP (-H) to another sipscope listener;
#   - tcpdump records lo, the reference.
# Needs root (CAP_NET_RAW for -i lo, tcpdump and sngrep) and sipp, kamailio, tcpdump, sngrep.
# Used by tests/live_peers.rs, which compares the results.
#
#   scripts/live-peers.sh SIPSCOPE OUTDIR [CALLS]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sipscope=$1
out=$2
calls=${3:-10}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# sipscope drops root once its sockets are open (to nobody here): let it write its results.
chmod a+rwx "$out"

for tool in sipp kamailio tcpdump sngrep ss; do
    command -v "$tool" >/dev/null || { echo "live-peers: $tool is not installed" >&2; exit 1; }
done
for port in 5060 5061 5070 19062 19063 19064; do
    if ss -lntu 2>/dev/null | grep -qE "[:.]$port\b"; then
        echo "live-peers: port $port is already in use" >&2
        exit 1
    fi
done

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/kamailio.pid" ] && kill "$(cat "$work/kamailio.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # proto addr:port
    for _ in $(seq 50); do
        if ss -ln"${1:0:1}" 2>/dev/null | grep -q -- "$2"; then return 0; fi
        sleep 0.1
    done
    echo "live-peers: nothing listens on $1 $2" >&2
    return 1
}

# kamailio sends its HEP copies from 5060: they are not part of the reference.
filter="(port 5060 or port 5061 or port 5070) and not port 19062"
duration=$((calls / 2 + 8))

# The reference recording.
tcpdump -i lo -s 0 -B 65536 -U -w "$out/tcpdump.pcap" $filter 2>"$work/tcpdump.log" &
pids+=($!)
# HEP receivers first: sipscope for kamailio and sngrep, sngrep for sipscope.
"$sipscope" export --hep-listen udp:127.0.0.1:19062 --duration "$duration" \
    -o "$out/hep-kamailio.json" 2>"$out/hep-kamailio.log" &
hep_kamailio=$!
"$sipscope" export --hep-listen udp:127.0.0.1:19064 --duration "$duration" \
    -o "$out/hep-sngrep.json" 2>"$out/hep-sngrep.log" &
hep_sngrep=$!
sngrep -N -q -L udp:127.0.0.1:19063 -O "$out/sngrep-received.pcap" >"$work/sngrep-l.log" 2>&1 &
pids+=($!)
wait_port udp 127.0.0.1:19062
wait_port udp 127.0.0.1:19063
wait_port udp 127.0.0.1:19064
# Live capture, forwarding to sngrep; sngrep capturing and forwarding to sipscope.
"$sipscope" export -i lo --capture-filter "$filter" --duration "$duration" \
    --hep-send udp:127.0.0.1:19063 --hep-node live-peers -o "$out/live.json" 2>"$out/live.log" &
live=$!
sngrep -N -q -d lo -H udp:127.0.0.1:19064 >"$work/sngrep-h.log" 2>&1 &
pids+=($!)

# kamailio with siptrace mirroring every message as HEP v3.
sed 's|^loadmodule "textops.so"|loadmodule "textops.so"\
loadmodule "siptrace.so"\
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:19062")\
modparam("siptrace", "hep_mode_on", 1)\
modparam("siptrace", "hep_version", 3)\
modparam("siptrace", "hep_capture_id", 2001)\
modparam("siptrace", "trace_mode", 1)\
modparam("siptrace", "trace_to_database", 0)\
modparam("siptrace", "trace_on", 1)|' "$here/kamailio.cfg" >"$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -DD -E -w "$work" -P "$work/kamailio.pid" -m 32 -M 8 \
    >"$work/kamailio.log" 2>&1 &
pids+=($!)
wait_port udp 127.0.0.1:5060 || { tail -20 "$work/kamailio.log" >&2; exit 1; }
sleep 1 # the capturers are up

s=$here/scenarios
(cd "$work" && sipp -sf "$s/uas-answer.xml" -i 127.0.0.1 -p 5070 -m "$calls" -nostdin \
    -timeout 30 >/dev/null 2>&1) &
uas=$!
wait_port udp 127.0.0.1:5070
if ! (cd "$work" && sipp -sf "$s/uac-call.xml" -i 127.0.0.1 -p 5061 -m "$calls" -r 5 \
    -rp 1000 -nostdin -timeout 30 -timeout_error 127.0.0.1:5060 >/dev/null 2>&1); then
    echo "live-peers: the sipp caller failed" >&2
    exit 1
fi
wait "$uas" || true
sleep 1

# The sipscope processes end at --duration and write their files.
wait "$live" "$hep_kamailio" "$hep_sngrep"
# sngrep writes its pcap as packets come; tcpdump flushes on SIGTERM.
cleanup_pids=("${pids[@]}")
for p in "${cleanup_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
sleep 0.5
echo "live-peers: done in $out"
