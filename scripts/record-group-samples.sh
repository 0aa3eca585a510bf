#!/usr/bin/env bash
# Records the call-group samples (samples/groups/) from real software: calls whose legs carry
# different Call-IDs, and one call captured at two points.
#
#   b2bua-3pcc.pcap       a two-leg B2BUA emulated with sipp's 3PCC extended mode: one sipp
#                         answers the caller's leg and has its twin place the callee's leg
#                         (scripts/scenarios/b2bua-*.xml); six calls answered, then three the
#                         callee refuses with 503 and Reason Q.850;cause=34, which the B2BUA
#                         passes on to the caller as 480
#   sbc-topoh.pcap        kamailio as an SBC (scripts/kamailio-sbc.cfg): topoh masks the
#                         callee leg's Call-ID (mask_callid=1, with its own key
#                         "sipscope-sample-key") and rtpengine rewrites the SDP and relays the
#                         RTP (sipp plays /usr/share/sip-tester/g711a.pcap both ways); two calls
#   two-point-a.pcap,     three calls between two network namespaces over a veth pair,
#   two-point-b.pcap      captured at each end of the pair
#
#   scripts/record-group-samples.sh OUTDIR
#
# Needs root, sipp, kamailio, rtpengine (Debian: rtpengine-daemon), tcpdump, iproute2. Traffic
# stays on 127.0.0.1 and in the namespaces the script creates.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
s=$here/scenarios
out=${1:?usage: record-group-samples.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for tool in sipp kamailio rtpengine tcpdump ip ss; do
    command -v "$tool" >/dev/null || { echo "record-group-samples: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
ns_a=sipscope-pa-$$
ns_b=sipscope-pb-$$
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/kamailio.pid" ] && kill "$(cat "$work/kamailio.pid")" 2>/dev/null || true
    sleep 0.3
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # proto addr:port [netns]
    local run=()
    [ -z "${3:-}" ] || run=(ip netns exec "$3")
    for _ in $(seq 50); do
        if "${run[@]}" ss -ln"${1:0:1}" 2>/dev/null | grep -q -- "$2"; then return 0; fi
        sleep 0.1
    done
    echo "record-group-samples: nothing listens on $1 $2" >&2
    return 1
}

capture() { # file filter [netns iface]: starts tcpdump, sets $capture_pid
    local run=() iface=lo
    if [ -n "${3:-}" ]; then run=(ip netns exec "$3"); iface=$4; fi
    # Immediate mode with a large buffer: no packet of a burst is lost (see record-samples.sh).
    "${run[@]}" tcpdump -i "$iface" -s 0 -B 65536 -U -n --immediate-mode -w "$1" "$2" \
        >"$work/tcpdump-$(basename "$1").log" 2>&1 &
    capture_pid=$!
    pids+=("$capture_pid")
    sleep 1
}

stop_capture() {
    sleep 0.5
    kill "$capture_pid" 2>/dev/null || true
    wait "$capture_pid" 2>/dev/null || true
}

# --- The B2BUA (sipp 3PCC extended mode) ------------------------------------------------------
printf 'm;127.0.0.1:5111\ns1;127.0.0.1:5112\n' >"$work/twins.cfg"
sed -e 's/@CODE@/503/g' -e 's/@REASON@/Service Unavailable/g' -e 's/@CAUSE@/34/g' \
    "$s/uas-reject.xml" >"$work/uas-503.xml"
# b2bua CALLEE_SCENARIO CALLS RATE: one run of caller, B2BUA twins and callee.
b2bua() {
    local callee=$1 calls=$2 rate=$3
    (cd "$work" && exec sipp -sf "$callee" -i 127.0.0.1 -p 5103 -m "$calls" -nostdin -timeout 30 \
        -trace_err >"$work/callee.log" 2>&1) &
    pids+=($!)
    (cd "$work" && exec sipp -sf "$s/b2bua-leg-b.xml" -i 127.0.0.1 -p 5102 -slave s1 \
        -slave_cfg "$work/twins.cfg" 127.0.0.1:5103 -nostdin -timeout 30 -trace_err \
        >"$work/leg-b.log" 2>&1) &
    local slave=$!
    pids+=("$slave")
    wait_port tcp :5112
    (cd "$work" && exec sipp -sf "$s/b2bua-leg-a.xml" -i 127.0.0.1 -p 5101 -master m \
        -slave_cfg "$work/twins.cfg" -m "$calls" -nostdin -timeout 30 -trace_err \
        >"$work/leg-a.log" 2>&1) &
    local master=$!
    pids+=("$master")
    wait_port udp 127.0.0.1:5101
    (cd "$work" && timeout 40 sipp -sf "$s/b2bua-caller.xml" -i 127.0.0.1 -p 5100 \
        127.0.0.1:5101 -m "$calls" -r "$rate" -nostdin -timeout 30 -trace_err \
        >"$work/caller.log" 2>&1) || {
        cat "$work"/*errors.log >&2 2>/dev/null || true
        echo "record-group-samples: the B2BUA caller failed" >&2
        exit 1
    }
    # The twin ends with the master; the next run needs its command port.
    wait "$master" 2>/dev/null || true
    wait "$slave" 2>/dev/null || true
    for _ in $(seq 50); do
        ss -lnt 2>/dev/null | grep -q ':5112 ' || break
        sleep 0.1
    done
}
echo "recording b2bua-3pcc"
capture "$out/b2bua-3pcc.pcap" "udp and portrange 5100-5103"
b2bua "$s/uas-answer.xml" 6 10
b2bua "$work/uas-503.xml" 3 10
stop_capture

# --- kamailio with topoh and rtpengine --------------------------------------------------------
echo "recording sbc-topoh"
rtpengine --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:22222 --foreground \
    --log-stderr --port-min=40000 --port-max=40199 >"$work/rtpengine.log" 2>&1 &
pids+=($!)
wait_port udp 127.0.0.1:22222
kamailio -f "$here/kamailio-sbc.cfg" -DD -E -w "$work" -P "$work/kamailio.pid" -m 32 -M 8 \
    >"$work/kamailio.log" 2>&1 &
pids+=($!)
wait_port udp 127.0.0.1:5064 || { tail -20 "$work/kamailio.log" >&2; exit 1; }
audio=/usr/share/sip-tester/g711a.pcap
sed -e "s|@PLAY@|$audio|" -e "s|@HOLD@|5000|" -e "s|@DTMF_AFTER@|0|" -e "s|@DTMF1@|-|" \
    -e "s|@DTMF2@|-|" -e "s|@DTMF3@|-|" -e '/@REASON@/d' -e "s|@AFTER_BYE@|0|" \
    -e "s|@MEDIA_IP@|[media_ip]|" -e '/play_pcap_audio="-"/d' "$s/uac-media.xml" >"$work/uac.xml"
sed -e "s|@PLAY@|$audio|" -e "s|@PT@|8|g" -e "s|@CODEC@|PCMA|g" -e '/play_pcap_audio="-"/d' \
    "$s/uas-media.xml" >"$work/uas.xml"
capture "$out/sbc-topoh.pcap" \
    "port 5064 or port 5065 or port 5074 or portrange 6000-6199 or portrange 40000-40199"
(cd "$work" && exec sipp -sf "$work/uas.xml" -i 127.0.0.1 -p 5074 -mp 6100 -m 2 -nostdin \
    -timeout 40 -trace_err >"$work/uas.log" 2>&1) &
pids+=($!)
wait_port udp 127.0.0.1:5074
(cd "$work" && timeout 50 sipp -sf "$work/uac.xml" -i 127.0.0.1 -p 5065 -mp 6000 \
    127.0.0.1:5064 -m 2 -l 1 -r 1 -rp 8000 -nostdin -timeout 40 -trace_err >"$work/uac.log" 2>&1) || {
    tail -20 "$work/kamailio.log" >&2
    echo "record-group-samples: the SBC caller failed" >&2
    exit 1
}
stop_capture
kill "$(cat "$work/kamailio.pid")" 2>/dev/null || true

# --- One call seen at two capture points --------------------------------------------------------
echo "recording two-point"
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "va$$" type veth peer name "vb$$"
ip link set "va$$" netns "$ns_a"
ip link set "vb$$" netns "$ns_b"
ip -n "$ns_a" addr add 10.77.0.1/24 dev "va$$"
ip -n "$ns_b" addr add 10.77.0.2/24 dev "vb$$"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "va$$" up
ip -n "$ns_b" link set "vb$$" up
capture "$out/two-point-a.pcap" "udp port 5060" "$ns_a" "va$$"
local_a=$capture_pid
capture "$out/two-point-b.pcap" "udp port 5060" "$ns_b" "vb$$"
(cd "$work" && exec ip netns exec "$ns_b" sipp -sf "$s/uas-answer.xml" -i 10.77.0.2 -p 5060 -m 3 \
    -nostdin -timeout 30 -trace_err >"$work/tp-uas.log" 2>&1) &
pids+=($!)
wait_port udp 10.77.0.2:5060 "$ns_b"
(cd "$work" && timeout 40 ip netns exec "$ns_a" sipp -sf "$s/uac-call.xml" -i 10.77.0.1 \
    -p 5060 10.77.0.2:5060 -m 3 -r 5 -nostdin -timeout 30 -trace_err \
    >"$work/tp-uac.log" 2>&1) || { echo "record-group-samples: the two-point caller failed" >&2; exit 1; }
stop_capture
capture_pid=$local_a
stop_capture
echo "recorded into $out"
