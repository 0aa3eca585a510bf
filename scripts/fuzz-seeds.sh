#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/TARGET/) from samples/: the captures themselves for the
# capture and engine targets, their SIP messages for the parser, SDP bodies for the SDP
# summary, HEP v3 packets for the HEP decoder. Needs a built sipscope (cargo build) and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sipscope=${SIPSCOPE:-$here/target/debug/sipscope}
corpus=$here/fuzz/corpus
mkdir -p "$corpus"/{capture_file,capture_filter,engine,net_frames,tcp_reassembly,sip_message,sdp,hep,hep_stream,websocket}
for f in "$here"/samples/*.pcap; do
    cp "$f" "$corpus/capture_file/"
    cp "$f" "$corpus/engine/"
done
for f in "$here"/samples/*.pcap; do
    "$sipscope" export "$f" --raw --format ndjson
done | python3 -c '
import json, sys, hashlib, struct, os
corpus = sys.argv[1]
def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)
def chunk(t, d):
    return struct.pack("!HHH", 0, t, len(d) + 6) + d
for line in sys.stdin:
    call = json.loads(line)
    for m in call["messages"]:
        raw = m.get("raw")
        if raw is None:
            continue
        data = raw.encode()
        put("sip_message", data)
        if b"\r\n\r\nv=0" in data:
            put("sdp", data.split(b"\r\n\r\n", 1)[1])
        body = (chunk(1, b"\x02") + chunk(2, b"\x11") + chunk(3, bytes(4)) + chunk(4, bytes(4))
                + chunk(7, b"\x13\xc4") + chunk(8, b"\x13\xc4") + chunk(11, b"\x01") + chunk(15, data))
        put("hep", b"HEP3" + struct.pack("!H", len(body) + 6) + body)
        # A HEP-over-TCP stream: the packet twice, read in chunks of 0x40 bytes.
        put("hep_stream", b"\x40" + (b"HEP3" + struct.pack("!H", len(body) + 6) + body) * 2)
        # A WebSocket stream: the handshake, then the message in one masked text frame.
        hs = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
        n = len(data)
        hdr = bytes([0x81, 0x80 | 126]) + struct.pack("!H", n) if n < 65536 else None
        if hdr:
            key = b"\x01\x02\x03\x04"
            masked = bytes(b ^ key[i % 4] for i, b in enumerate(data))
            put("websocket", b"\x40" + hs + hdr + key + masked)
        # One TCP segment with this message, for the reassembly target.
        if n < 256:
            put("tcp_reassembly", bytes([2, 0, 0, 0]) + bytes([0, 0, 1, n]) + data)
' "$corpus"
# Each sample's frames as the net_frames target reads them: [link 0 = Ethernet][length][bytes].
python3 - "$corpus" "$here"/samples/*.pcap <<'PY'
import struct, sys, os, hashlib
corpus = sys.argv[1]
for path in sys.argv[2:]:
    b = open(path, "rb").read()
    if b[:4] != b"\xd4\xc3\xb2\xa1":
        continue
    at, out = 24, b""
    while at + 16 <= len(b):
        incl = struct.unpack("<I", b[at + 8:at + 12])[0]
        frame = b[at + 16:at + 16 + incl][:65535]
        out += b"\x00" + struct.pack(">H", len(frame)) + frame
        at += 16 + incl
    with open(os.path.join(corpus, "net_frames", hashlib.sha1(out).hexdigest()), "wb") as f:
        f.write(out)
PY
# Capture-filter expressions as the README writes them, each with the first frame of a sample:
# [length of the expression][expression][frame].
python3 - "$corpus" "$here"/samples/answered-udp.pcap <<'PY'
import struct, sys, os, hashlib
corpus, path = sys.argv[1], sys.argv[2]
b = open(path, "rb").read()
incl = struct.unpack("<I", b[24 + 8:24 + 12])[0]
frame = b[40:40 + incl]
for expr in [b"udp port 5060", b"host 127.0.0.1 and (port 5060 or portrange 5060-5070)",
             b"not tcp", b"net 10.0.0.0/8 or net 192.168.0.0/16", b"ip6 and src host ::1",
             b"tcp dst port 5061 and not src net 127.0.0.0/8", b"sctp or (udp and port 9060)"]:
    data = bytes([len(expr)]) + expr + frame
    with open(os.path.join(corpus, "capture_filter", hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
PY
echo "fuzz-seeds: corpora in $corpus"
