#!/usr/bin/env bash
# Records SIP over TLS from real software on loopback: kamailio's tls module as the TLS server
# (scripts/kamailio-tls.cfg), relaying to a sipp callee over UDP; the caller is
# scripts/tls-uac.py over Python's ssl (OpenSSL), which writes the key log. One capture and its
# key log (.keys) per TLS version and suite family, one of SIP over secure WebSocket (kamailio's
# websocket module on 7443), and the same calls in clear over TCP.
#
#   scripts/record-tls-samples.sh OUTDIR
#   LIVE_SIPSCOPE=target/debug/sipscope scripts/record-tls-samples.sh OUTDIR
#
# With LIVE_SIPSCOPE, two more calls over TLS are captured live by that sipscope (`-i lo`) with
# a key log that is empty when it starts and written by the caller as the calls go: the result
# is OUTDIR/live.json (and live.log, its standard error).
#
# Needs root (or CAP_NET_RAW for tcpdump), kamailio with kamailio-tls-modules and
# kamailio-websocket-modules, sipp, tcpdump, python3 and openssl. Traffic stays on 127.0.0.1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: record-tls-samples.sh OUTDIR}
mkdir -p "$out"
for tool in kamailio sipp tcpdump python3 openssl ss; do
    command -v "$tool" >/dev/null || { echo "record-tls-samples: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    pkill -f "sipp -sn uas -i 127.0.0.1 -p 5070" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$work/key.pem" \
    -out "$work/cert.pem" -subj /CN=sip.example.net 2>/dev/null
cat >"$work/tls.cfg" <<TLS
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $work/key.pem
certificate = $work/cert.pem

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
TLS
sed "s|@TLS_CFG@|$work/tls.cfg|" "$here/kamailio-tls.cfg" >"$work/kamailio.cfg"

# A fresh kamailio per recording: the calls of every recording carry the same Call-IDs and
# branches (--seed), which a proxy that saw them would take for retransmissions.
kamailio_pid=""
proxy() {
    if [ -n "$kamailio_pid" ]; then
        kill "$kamailio_pid" 2>/dev/null || true
        wait "$kamailio_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            ss -ltn | grep -q '127.0.0.1:5061 ' || break
            sleep 0.1
        done
    fi
    kamailio -f "$work/kamailio.cfg" -DD -E -w "$work" -m 32 -M 8 \
        >"$work/kamailio.log" 2>&1 &
    kamailio_pid=$!
    pids+=("$kamailio_pid")
    for _ in $(seq 50); do
        ss -ltn | grep -q '127.0.0.1:5061 ' && return
        sleep 0.1
    done
    echo "record-tls-samples: kamailio did not start" >&2
    tail -20 "$work/kamailio.log" >&2
    exit 1
}

# A sipp callee on UDP 5070 for two calls, once the previous one has let the port go.
callee() {
    for _ in $(seq 100); do
        ss -lun | grep -q '127.0.0.1:5070 ' || break
        sleep 0.1
    done
    sipp -sn uas -i 127.0.0.1 -p 5070 -m 2 -bg >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        ss -lun | grep -q '127.0.0.1:5070 ' && return
        sleep 0.1
    done
    echo "record-tls-samples: sipp did not start" >&2
    exit 1
}

# record NAME ARGS...: a sipp callee, tcpdump, and tls-uac.py with ARGS.
record() {
    local name=$1
    shift
    local pcap="$out/$name.pcap"
    proxy
    callee
    tcpdump -i lo -s 0 -U -n --immediate-mode -w "$pcap" \
        "port 5060 or port 5061 or port 5070 or port 7443" >"$work/tcpdump-$name.log" 2>&1 &
    local tcpdump_pid=$!
    for _ in $(seq 50); do
        grep -q "listening on" "$work/tcpdump-$name.log" && break
        sleep 0.1
    done
    rm -f "$out/$name.keys"
    env "${uac_env[@]}" timeout 30 python3 "$here/tls-uac.py" "${target:-127.0.0.1:5061}" \
        "$out/$name.keys" --calls 2 --hold 0.3 --seed 7 "$@"
    sleep 0.5
    kill -INT "$tcpdump_pid"
    wait "$tcpdump_pid" || true
    pkill -f "sipp -sn uas -i 127.0.0.1 -p 5070" || true
    echo "recorded $name"
}

suite_conf() {
    cat >"$work/$1.cnf" <<CNF
openssl_conf = init
[init]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
Ciphersuites = $1
CNF
    echo "$work/$1.cnf"
}

uac_env=(OPENSSL_CONF="$(suite_conf TLS_AES_128_GCM_SHA256)")
record tls13-aes128-gcm
uac_env=(OPENSSL_CONF="$(suite_conf TLS_AES_256_GCM_SHA384)")
record tls13-aes256-gcm
uac_env=(OPENSSL_CONF="$(suite_conf TLS_CHACHA20_POLY1305_SHA256)")
record tls13-chacha20
uac_env=(X=1)
record tls12-aes256-gcm --tls12 ECDHE-RSA-AES256-GCM-SHA384
record tls12-chacha20 --tls12 ECDHE-RSA-CHACHA20-POLY1305
record tls12-aes128-cbc-sha256 --tls12 ECDHE-RSA-AES128-SHA256
# SIP over secure WebSocket, TLS 1.3 with OpenSSL's default suite.
target=127.0.0.1:7443 record wss-tls13 --ws
# A live capture following a key log as it is written (LIVE_SIPSCOPE).
if [ -n "${LIVE_SIPSCOPE:-}" ]; then
    proxy
    callee
    # sipscope drops root once its capture socket is open: its output must stay writable. The
    # key log it opened before that.
    chmod a+rwx "$out"
    : >"$out/live.keys"
    "$LIVE_SIPSCOPE" export -i lo --capture-filter "port 5060 or port 5061 or port 5070" \
        --duration 8 --tls-keylog "$out/live.keys" -o "$out/live.json" 2>"$out/live.log" &
    live_pid=$!
    sleep 2 # the capture socket is open
    timeout 30 python3 "$here/tls-uac.py" 127.0.0.1:5061 "$out/live.keys" --calls 2 --hold 0.3 \
        --seed 11
    wait "$live_pid" || true
    pkill -f "sipp -sn uas -i 127.0.0.1 -p 5070" || true
    echo "recorded live"
fi
# TLS 1.3 KeyUpdate (RFC 8446 §4.6.3), which kamailio never sends: openssl s_client sends three
# OPTIONS to openssl s_server on 5063 (which answers nothing), asking for a key update both ways
# (`K`) after the first and updating its own keys (`k`) after the second (s_client's commands,
# read only without -ign_eof; the server's input stays open so that it does not hang up).
keyupdate() {
    local pcap="$out/tls13-keyupdate.pcap" keys="$out/tls13-keyupdate.keys"
    rm -f "$keys"
    sleep 20 | openssl s_server -accept 127.0.0.1:5063 -cert "$work/cert.pem" \
        -key "$work/key.pem" -tls1_3 >"$work/s_server.log" 2>&1 &
    local server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 50); do
        ss -ltn | grep -q '127.0.0.1:5063 ' && break
        sleep 0.1
    done
    tcpdump -i lo -s 0 -U -n --immediate-mode -w "$pcap" "port 5063" \
        >"$work/tcpdump-keyupdate.log" 2>&1 &
    local tcpdump_pid=$!
    for _ in $(seq 50); do
        grep -q "listening on" "$work/tcpdump-keyupdate.log" && break
        sleep 0.1
    done
    options() {
        printf 'OPTIONS sip:bob@127.0.0.1:5063 SIP/2.0\nVia: SIP/2.0/TLS 127.0.0.1:5090;branch=z9hG4bK-ku%s\nFrom: <sip:alice@127.0.0.1>;tag=ku%s\nTo: <sip:bob@127.0.0.1>\nCall-ID: keyupdate-%s@127.0.0.1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n' "$1" "$1" "$1"
    }
    (sleep 0.5; options 1; sleep 0.3; echo K; sleep 0.3; options 2; sleep 0.3; echo k; sleep 0.3
        options 3; sleep 0.5) |
        timeout 10 openssl s_client -connect 127.0.0.1:5063 -tls1_3 -crlf \
            -servername sip.example.net -keylogfile "$keys" >"$work/s_client.log" 2>&1 || true
    sleep 0.3
    kill -INT "$tcpdump_pid"
    wait "$tcpdump_pid" || true
    kill "$server_pid" 2>/dev/null || true
    echo "recorded tls13-keyupdate"
}
keyupdate
# The same calls (same Call-IDs, tags, branches) in clear over TCP: port 5060.
pcap="$out/tls-twin-clear-tcp.pcap"
proxy
callee
tcpdump -i lo -s 0 -U -n --immediate-mode -w "$pcap" "port 5060 or port 5070" \
    >"$work/tcpdump-twin.log" 2>&1 &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump-twin.log" && break; sleep 0.1; done
timeout 30 python3 "$here/tls-uac.py" 127.0.0.1:5060 /dev/null --plain --calls 2 --hold 0.3 --seed 7
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
pkill -f "sipp -sn uas -i 127.0.0.1 -p 5070" || true
echo "recorded tls-twin-clear-tcp"
