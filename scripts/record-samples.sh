#!/usr/bin/env bash
# Records the captures in samples/ from real SIP software on loopback: sipp callers and callees
# (scenarios in scripts/scenarios/) through a kamailio proxy (scripts/kamailio.cfg), captured by
# tcpdump. Needs root (or CAP_NET_RAW for tcpdump) and: sipp (Debian: sip-tester), kamailio,
# tcpdump. Traffic stays on 127.0.0.1 and ::1.
#
#   scripts/record-samples.sh                    record every sample into samples/
#   scripts/record-samples.sh OUTDIR             record into another folder
#   scripts/record-samples.sh OUTDIR NAME...     record only these samples (e.g. glare-491)
#
# One sample (private-address) needs addresses that are not loopback: it is recorded inside a
# network namespace of its own (iproute2's `ip netns`), so its traffic never leaves the host.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../samples}
only=("${@:2}")
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in sipp kamailio tcpdump ip ss python3 mergecap; do
    command -v "$tool" >/dev/null || { echo "record-samples: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
nat_ns=sipscope-rec-$$
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/kamailio.pid" ] && kill "$(cat "$work/kamailio.pid")" 2>/dev/null || true
    sleep 0.3
    ip netns del "$nat_ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Scenario templates: fill in the status code, reason and Q.850 cause.
# A caller scenario whose INVITE goes to another Request-URI user (see kamailio.cfg).
to_user() { # file user [max-forwards] -> path
    local dst="$work/$(basename "$1" .xml)-$2.xml"
    sed -e "s/INVITE sip:bob@/INVITE sip:$2@/" -e "s/Max-Forwards: 70/Max-Forwards: ${3:-70}/" \
        "$1" >"$dst"
    echo "$dst"
}

template() { # file code reason cause -> path
    local dst="$work/$(basename "$1" .xml)-$2.xml"
    sed -e "s/@CODE@/$2/g" -e "s/@REASON@/$3/g" -e "s/@CAUSE@/$4/g" "$1" >"$dst"
    echo "$dst"
}

wait_port() { # proto addr:port
    for _ in $(seq 50); do
        if "${in_ns[@]}" ss -ln"${1:0:1}" 2>/dev/null | grep -q -- "$2"; then return 0; fi
        sleep 0.1
    done
    echo "record-samples: nothing listens on $1 $2" >&2
    return 1
}

for port in 5060 5061 5070; do
    if ss -lntu 2>/dev/null | grep -qE "[:.]$port\b"; then
        echo "record-samples: port $port is already in use; stop what holds it first" >&2
        exit 1
    fi
done

echo "starting kamailio"
kamailio -f "$here/kamailio.cfg" -DD -E -w "$work" -P "$work/kamailio.pid" -m 32 -M 8 \
    >"$work/kamailio.log" 2>&1 &
pids+=($!)
if ! wait_port udp 127.0.0.1:5060 || ! wait_port tcp 127.0.0.1:5060; then
    tail -20 "$work/kamailio.log" >&2
    exit 1
fi

# Commands run through this prefix; record_in_ns sets it to run inside a network namespace.
in_ns=()

wanted() { # name: is it among the samples asked for (all when none were named)?
    [ ${#only[@]} -eq 0 ] && return 0
    local n
    for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}

# record NAME HOST UAS_SCENARIO UAC_SCENARIO TARGET CALLS [extra sipp caller options...]
# Both sipp instances give up after $timeout seconds (30 unless set for one recording);
# $sipp_opts (empty unless set for one recording) is passed to both. Set for one recording,
# $filter replaces tcpdump's capture filter (to leave a message out of the capture, as a
# capture point that lost it would), and $capture_after starts the capture that many seconds
# after the caller (a capture that joins calls already under way).
record() {
    local name=$1 host=$2 uas=$3 uac=$4 target=$5 calls=$6
    shift 6
    wanted "$name" || return 0
    local pcap="$out/$name.pcap" timeout=${timeout:-30}
    local tcpdump_pid=""
    echo "recording $name"
    start_capture() {
        # --immediate-mode: without it libpcap hands packets over in blocks on a timer, and the
        # last block is lost when tcpdump is stopped. In immediate mode each ring slot is as big
        # as the snap length (256 KiB with -s 0), so the default 2 MiB buffer holds only 8
        # packets and the kernel drops packets from the burst of a forwarding loop: -B 65536
        # (64 MiB).
        "${in_ns[@]}" tcpdump -i lo -s 0 -B 65536 -U -n --immediate-mode -w "$pcap" \
            "${filter:-port 5060 or port 5061 or port 5070}" >"$work/tcpdump-$name.log" 2>&1 &
        tcpdump_pid=$!
        pids+=("$tcpdump_pid")
        sleep 1
    }
    [ -n "${capture_after:-}" ] || start_capture
    local uas_pid=""
    if [ "$uas" != - ]; then # `-`: no callee (the proxy's next hop is unreachable or itself)
        (cd "$work" && "${in_ns[@]}" sipp -sf "$uas" -i "$host" -p 5070 -m "$calls" -nostdin \
            -timeout "$timeout" -trace_err ${sipp_opts:-} ${uas_opts:-} \
            >"$work/uas-$name.log" 2>&1) &
        uas_pid=$!
        pids+=("$uas_pid")
        # A callee on TCP (sipp_opts="-t t1") listens on TCP.
        wait_port "$([[ "${sipp_opts:-}" == *"-t t1"* ]] && echo tcp || echo udp)" \
            "$([ "$host" = ::1 ] && echo '\[::1\]' || echo "$host"):5070"
    fi
    (cd "$work" && "${in_ns[@]}" sipp -sf "$uac" -i "$host" -p 5061 -m "$calls" -r 2 \
        -rp 1000 -nostdin -timeout "$timeout" -timeout_error -trace_err ${sipp_opts:-} "$@" "$target" \
        >"$work/uac-$name.log" 2>&1) &
    local uac_pid=$!
    if [ -n "${capture_after:-}" ]; then
        sleep "$capture_after"
        start_capture
    fi
    if ! wait "$uac_pid"; then
        echo "record-samples: the caller of $name failed; sipp's errors:" >&2
        cat "$work"/*_errors.log >&2 2>/dev/null || tail -20 "$work/uac-$name.log" >&2
        exit 1
    fi
    [ -z "$uas_pid" ] || wait "$uas_pid" || true
    sleep 1.5
    kill -INT "$tcpdump_pid"
    wait "$tcpdump_pid" || true
    # A sample with packets missing would mislead every test that reads it.
    if grep -qE '^[1-9][0-9]* packets? dropped by kernel' "$work/tcpdump-$name.log"; then
        echo "record-samples: tcpdump dropped packets while recording $name:" >&2
        cat "$work/tcpdump-$name.log" >&2
        exit 1
    fi
}

s=$here/scenarios
record answered-udp 127.0.0.1 "$s/uas-answer.xml" "$s/uac-call.xml" 127.0.0.1:5060 2
record answered-tcp 127.0.0.1 "$s/uas-answer.xml" "$s/uac-call.xml" 127.0.0.1:5060 2 -t t1
record answered-ipv6-direct ::1 "$s/uas-answer.xml" "$s/uac-call.xml" '[::1]:5070' 1
record busy-486 127.0.0.1 "$(template "$s/uas-reject.xml" 486 'Busy Here' 17)" \
    "$(template "$s/uac-fail.xml" 486 'Busy Here' 17)" 127.0.0.1:5060 1
record cancel-ringing 127.0.0.1 "$s/uas-ring.xml" "$s/uac-cancel.xml" 127.0.0.1:5060 1
# The callee answers 503; a proxy must not relay 503 upstream (RFC 3261 §16.7 step 6), so
# kamailio sends 500 to the caller.
record reject-503 127.0.0.1 "$(template "$s/uas-reject.xml" 503 'Service Unavailable' 41)" \
    "$(template "$s/uac-fail.xml" 500 'Server Internal Error' 41)" 127.0.0.1:5060 1
record register-401 127.0.0.1 "$s/uas-registrar.xml" "$s/uac-register.xml" 127.0.0.1:5060 1


# Anomalies (docs/anomalies.md), each from real software.
record missing-ack 127.0.0.1 "$s/uas-noack.xml" "$s/uac-noack.xml" 127.0.0.1:5060 1
record slow-setup 127.0.0.1 "$s/uas-slow.xml" "$s/uac-call.xml" 127.0.0.1:5060 1
record loop-482 127.0.0.1 "$(template "$s/uas-reject.xml" 482 'Loop Detected' 25)" \
    "$(template "$s/uac-fail.xml" 482 'Loop Detected' 25)" 127.0.0.1:5060 1
record sdp-488 127.0.0.1 "$(template "$s/uas-reject.xml" 488 'Not Acceptable Here' 65)" \
    "$(template "$s/uac-fail.xml" 488 'Not Acceptable Here' 65)" 127.0.0.1:5060 1
# kamailio forwards to a port where nothing listens, retransmits, and answers 408 after 4 s.
record proxy-408 127.0.0.1 - \
    "$(to_user "$(template "$s/uac-fail.xml" 408 'Request Timeout' 102)" unreachable)" \
    127.0.0.1:5060 1
record register-403 127.0.0.1 "$s/uas-registrar-deny.xml" "$s/uac-register-denied.xml" \
    127.0.0.1:5060 1

# A scanner's extension sweep: 40 OPTIONS, a fresh Call-ID and extension each, all refused 404.
record scanner-sweep 127.0.0.1 "$s/uas-scan-target.xml" "$s/uac-scan.xml" 127.0.0.1:5070 40 \
    -r 40

# A second BYE on a dialog that has ended: 481 Call/Transaction Does Not Exist.
record dialog-481 127.0.0.1 "$s/uas-bye-twice.xml" "$s/uac-bye-twice.xml" 127.0.0.1:5060 1
# A wrong password: three 401 challenges and no success.
record auth-loop 127.0.0.1 "$s/uas-registrar-refuse.xml" "$s/uac-register-wrong-password.xml" \
    127.0.0.1:5060 1
# The callee's 200 OK crosses the caller's CANCEL; the call is up and is ended with BYE.
record cancel-race 127.0.0.1 "$s/uas-answer-cancelled.xml" "$s/uac-cancel-late.xml" \
    127.0.0.1:5060 1
# Both sides re-INVITE at once: 491 each way, then the caller's retry succeeds.
# sipp runs one scenario step per tick, so a message can arrive between two sends; here it
# is ignored rather than fatal, and comes again when the proxy retransmits it.
sipp_opts="-default_behaviors all,-abortunexp" record glare-491 127.0.0.1 "$s/uas-glare.xml" "$s/uac-glare.xml" 127.0.0.1:5060 1
# Content-Length shorter and longer than the SDP body.
record bad-content-length 127.0.0.1 "$s/uas-answer.xml" \
    "$(sed 's/@LEN@/120/g' "$s/uac-bad-length.xml" >"$work/uac-bad-length.xml" &&
        echo "$work/uac-bad-length.xml")" 127.0.0.1:5060 1
# A reliable 183 never PRACKed: retransmitted for 64*T1 (32 s), then 500.
timeout=45 record prack-missing 127.0.0.1 "$s/uas-prack-required.xml" "$s/uac-no-prack.xml" \
    127.0.0.1:5060 1
# A session timer nobody refreshes: the callee sends BYE after 60 s of the 90 s interval.
timeout=80 record session-timer 127.0.0.1 "$s/uas-session-timer.xml" "$s/uac-session-timer.xml" \
    127.0.0.1:5060 1

# Correct on real traffic (the conclusions of docs/anomalies.md that a naive analyzer gets wrong).
# A notifier behind an ALG answers the SUBSCRIBE with its top Via rewritten (port dropped,
# rport and received filled in); the phone answers the NOTIFY with the host's case changed.
sipp_opts="-t t1" record via-rewritten 127.0.0.1 "$s/uas-notifier-rewrites-via.xml" \
    "$s/uac-subscribe.xml" 127.0.0.1:5070 1
# A wrong password: one challenge answered with credentials, challenged again with the same
# nonce (no stale=true), then the phone gives up (auth_failed).
record register-wrong-password 127.0.0.1 "$s/uas-registrar-refuse-once.xml" \
    "$s/uac-register-give-up.xml" 127.0.0.1:5060 1
# The capture starts 1 s into a call over TCP, after its INVITE and reliable 183: it sees the
# PRACK, the 200s and the ACK, then the BYE 40 s later (one call, not two).
capture_after=1 timeout=60 sipp_opts="-t t1" record mid-dialog 127.0.0.1 \
    "$s/uas-prack-hold.xml" "$s/uac-prack-hold.xml" 127.0.0.1:5070 1
# A call over TCP, hung up 34 s after the answer, whose ACK the capture point lost (the capture
# filter leaves out segments that start with "ACK "): the BYE after it shows the hole, so
# missing_ack is a warning that says so, and so does the verdict.
sed 's/<pause milliseconds="1000"\/>/<pause milliseconds="34000"\/>/' "$s/uac-call.xml" \
    >"$work/uac-call-34s.xml"
filter='port 5061 and not tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x41434b20' sipp_opts="-t t1" \
    timeout=60 record tcp-ack-not-captured 127.0.0.1 "$s/uas-answer.xml" \
    "$work/uac-call-34s.xml" 127.0.0.1:5070 1

# A phone behind a NAT calls directly with its private address in Via, Contact and SDP. Public
# addresses (203.0.113.0/24, TEST-NET-3) on the loopback of a namespace of our own.
if wanted private-address; then
    ip netns add "$nat_ns"
    ip -n "$nat_ns" link set lo up
    ip -n "$nat_ns" addr add 203.0.113.5/32 dev lo
    ip -n "$nat_ns" addr add 203.0.113.6/32 dev lo
    in_ns=(ip netns exec "$nat_ns")
    record private-address 203.0.113.6 "$s/uas-answer.xml" "$s/uac-behind-nat.xml" \
        203.0.113.6:5070 1 -i 203.0.113.5
    in_ns=()
fi
# The same phone registers its private address; the registrar records where the REGISTER
# came from (received), so the Contact listed back in the 200 OK is no private_address.
if wanted register-behind-nat; then
    ip netns add "$nat_ns" 2>/dev/null || true
    ip -n "$nat_ns" link set lo up
    ip -n "$nat_ns" addr add 203.0.113.5/32 dev lo 2>/dev/null || true
    ip -n "$nat_ns" addr add 203.0.113.6/32 dev lo 2>/dev/null || true
    in_ns=(ip netns exec "$nat_ns")
    record register-behind-nat 203.0.113.6 "$s/uas-registrar-nat.xml" \
        "$s/uac-register-behind-nat.xml" 203.0.113.6:5070 1 -i 203.0.113.5
    in_ns=()
fi

# Media (docs/anomalies.md, media kinds): sipp plays real RTP with play_pcap_audio (the
# recordings sipp ships in /usr/share/sip-tester), from its media port to the SDP address of
# the other side, keeping the recording's timing. The callee's media port is 6100, the caller's
# 6000; the capture keeps SIP and the media ports.
audio=/usr/share/sip-tester/g711a.pcap
dtmf=/usr/share/sip-tester/dtmf_2833
media_filter="port 5060 or port 5061 or port 5070 or portrange 6000-6199"
# media_uac NAME PLAY HOLD_MS [DTMF_DIGITS] [REASON] [AFTER_BYE_MS] [SDP_IP] -> scenario path
media_uac() {
    local dst="$work/uac-media-$1.xml" digits=${4:-} d1=- d2=- d3=- after=0
    if [ -n "$digits" ]; then
        d1=${dtmf}_${digits:0:1}.pcap d2=${dtmf}_${digits:1:1}.pcap d3=${dtmf}_${digits:2:1}.pcap
        after=7500
    fi
    local reason='/@REASON@/d'
    [ -z "${5:-}" ] || reason="s|@REASON@|$5|"
    sed -e "s|@PLAY@|$2|" -e "s|@HOLD@|$3|" -e "s|@DTMF_AFTER@|$after|" \
        -e "s|@DTMF1@|$d1|" -e "s|@DTMF2@|$d2|" -e "s|@DTMF3@|$d3|" -e "$reason" \
        -e "s|@AFTER_BYE@|${6:-0}|" -e "s|@MEDIA_IP@|${7:-[media_ip]}|" \
        -e '/play_pcap_audio="-"/d' "$s/uac-media.xml" >"$dst"
    echo "$dst"
}
# media_uas NAME PLAY [PT CODEC] -> scenario path (the answer's codec: PCMA by default)
media_uas() {
    local dst="$work/uas-media-$1.xml"
    sed -e "s|@PLAY@|$2|" -e "s|@PT@|${3:-8}|g" -e "s|@CODEC@|${4:-PCMA}|g" \
        -e '/play_pcap_audio="-"/d' "$s/uas-media.xml" >"$dst"
    echo "$dst"
}
# An impaired copy of the audio recording (scripts/media-impair.py): packets dropped, send
# times shifted; sipp keeps the copy's timing, so the loss and jitter are real on the wire.
python3 "$here/media-impair.py" "$audio" "$work/g711a-loss.pcap" --drop-every 12 --seed 1
python3 "$here/media-impair.py" "$audio" "$work/g711a-jitter.pcap" --jitter-ms 160 --seed 2
media() { # NAME UAS UAC [HOST TARGET] [extra caller options]
    local name=$1 uas=$2 uac=$3 host=${4:-127.0.0.1} target=${5:-127.0.0.1:5060}
    shift 5 2>/dev/null || shift $#
    filter=$media_filter uas_opts="-mp 6100" timeout=60 \
        record "$name" "$host" "$uas" "$uac" "$target" 1 -mp 6000 "$@"
}
# Two-way audio, 7 s each way, hung up after 7.5 s: clean.
media media-two-way "$(media_uas two-way "$audio")" "$(media_uac two-way "$audio" 7500)"
# The callee never sends: one-way audio.
media media-one-way "$(media_uas one-way -)" "$(media_uac one-way "$audio" 7500)"
# DTMF 1, 2, 3 as RFC 4733 events after the audio.
media media-dtmf "$(media_uas dtmf "$audio")" "$(media_uac dtmf "$audio" 500 123)"
# Loss (one packet in twelve dropped) and jitter (send times shifted up to 160 ms).
media media-loss "$(media_uas loss "$work/g711a-loss.pcap")" \
    "$(media_uac loss "$work/g711a-jitter.pcap" 7500)"
# RTP stops after 7 s; the call goes on 13 s more, and the caller hangs up with a Reason.
media media-timeout "$(media_uas timeout "$audio")" \
    "$(media_uac timeout "$audio" 20000 "" 'Reason: SIP;cause=408;text="RTP timeout"')"
# The caller hangs up 2 s in while both recordings play on for 5 s more.
media media-after-bye "$(media_uas after-bye "$audio")" \
    "$(media_uac after-bye "$audio" 2000 "" "" 6000)"
# Audio both ways for 7 s, then the caller puts the call on hold (re-INVITE a=sendonly,
# answered a=recvonly) for 12 s without RTP: hold, not a media timeout.
media media-hold "$s/uas-media-hold.xml" "$s/uac-media-hold.xml"
# The callee answers PCMU only; the caller sends its PCMA recording anyway.
media media-codec-mismatch "$(media_uas codec-mismatch "$audio" 0 PCMU)" \
    "$(media_uac codec-mismatch "$audio" 7500)"
# SRTP keyed in the SDP (SDES, RFC 4568): each side offers or answers RTP/SAVP with an
# a=crypto key of its own and plays sipp's recording protected with that key by libsrtp
# (scripts/srtp-protect.py; Debian: libsrtp2-1). One call with 80-bit tags, one with 32-bit
# (on media ports 2 higher, so that no two streams share addresses and SSRC), recorded one
# after the other and merged.
if wanted media-srtp; then
    srtp_scenario() { # SCENARIO SUITE KEY -> the scenario with its SDP made SRTP with this key
        local dst="${1%.xml}-srtp.xml"
        sed -e 's|RTP/AVP|RTP/SAVP|' \
            -e "s|^\( *\)a=sendrecv|\1a=crypto:1 $2 inline:$3\n\1a=sendrecv|" "$1" >"$dst"
        echo "$dst"
    }
    asked=("${only[@]}")
    only=()
    caller_key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd
    callee_key=ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB
    for bits in 80 32; do
        suite=AES_CM_128_HMAC_SHA1_$bits
        off=$([ "$bits" = 80 ] && echo 0 || echo 2)
        python3 "$here/srtp-protect.py" "$audio" "$work/caller-$bits.pcap" --suite "$suite" \
            --key "$caller_key"
        python3 "$here/srtp-protect.py" "$audio" "$work/callee-$bits.pcap" --suite "$suite" \
            --key "$callee_key"
        filter=$media_filter uas_opts="-mp $((6100 + off))" timeout=60 \
            record "media-srtp-$bits" 127.0.0.1 \
            "$(srtp_scenario "$(media_uas "srtp-$bits" "$work/callee-$bits.pcap")" "$suite" "$callee_key")" \
            "$(srtp_scenario "$(media_uac "srtp-$bits" "$work/caller-$bits.pcap" 7500)" "$suite" "$caller_key")" \
            127.0.0.1:5060 1 -mp $((6000 + off))
    done
    mergecap -F pcap -w "$out/media-srtp.pcap" "$out/media-srtp-80.pcap" "$out/media-srtp-32.pcap"
    rm -f "$out/media-srtp-80.pcap" "$out/media-srtp-32.pcap"
    only=("${asked[@]}")
fi
# No media, in a capture that holds another call's RTP between the same hosts (two calls
# recorded one after the other, merged in time order).
if wanted media-none; then
    asked=("${only[@]}")
    only=()
    media media-none-1 "$(media_uas none-1 "$audio")" "$(media_uac none-1 "$audio" 7500)"
    media media-none-2 "$(media_uas none-2 -)" "$(media_uac none-2 - 7500)"
    mergecap -F pcap -w "$out/media-none.pcap" "$out/media-none-1.pcap" "$out/media-none-2.pcap"
    rm -f "$out/media-none-1.pcap" "$out/media-none-2.pcap"
    only=("${asked[@]}")
fi
# A phone behind a NAT: its SDP names 192.168.1.20 while its RTP and signalling come from
# 203.0.113.5; the callee's RTP goes to the private address (routed to the namespace's
# loopback, where the capture sees it and nothing receives it).
if wanted media-nat; then
    ip netns add "$nat_ns" 2>/dev/null || true
    ip -n "$nat_ns" link set lo up
    ip -n "$nat_ns" addr add 203.0.113.5/32 dev lo 2>/dev/null || true
    ip -n "$nat_ns" addr add 203.0.113.6/32 dev lo 2>/dev/null || true
    ip -n "$nat_ns" route add 192.168.1.0/24 dev lo 2>/dev/null || true
    in_ns=(ip netns exec "$nat_ns")
    media media-nat "$(media_uas nat "$audio")" \
        "$(media_uac nat "$audio" 7500 "" "" 0 192.168.1.20)" 203.0.113.6 203.0.113.6:5070 \
        -i 203.0.113.5 -mi 203.0.113.5
    in_ns=()
fi

# Last: the looped 483s are retransmitted on each hop for a while (Timer G until H), and
# would spill into the next capture.
# kamailio forwards to itself until Max-Forwards (10 here, to keep the capture small) runs
# out: 483 Too Many Hops.
record loop-483 127.0.0.1 - \
    "$(to_user "$(template "$s/uac-fail.xml" 483 'Too Many Hops' 25)" loop 10)" 127.0.0.1:5060 1

echo "done: $(ls "$out"/*.pcap | wc -l) captures in $out"
