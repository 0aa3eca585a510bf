#!/usr/bin/env python3
"""A SIP caller over TLS for recording samples (Debian's sipp has no TLS): INVITE to PROXY
(host:port) over TLS, ACK on the 200, BYE after HOLD seconds, N calls on one connection; the
client's TLS secrets written to KEYLOG in the SSLKEYLOGFILE format. --plain sends the same
calls over plain TCP (the clear twin of a TLS sample); --ws speaks SIP over secure WebSocket
(RFC 7118: an HTTP upgrade with the `sip` subprotocol, then one masked text frame per message,
as a browser's SIP stack does); --seed makes Call-IDs, tags and branches the same from run to
run.

    tls-uac.py PROXY KEYLOG [--tls12 CIPHER] [--plain] [--ws] [--seed N] [--hold SECONDS] [--calls N]

TLS 1.3 suites are chosen with OPENSSL_CONF (Ciphersuites =), as for any OpenSSL client.
"""
import argparse, socket, ssl, time, random

p = argparse.ArgumentParser()
p.add_argument("proxy")
p.add_argument("keylog")
p.add_argument("--tls12")
p.add_argument("--hold", type=float, default=1.0)
p.add_argument("--calls", type=int, default=1)
p.add_argument("--plain", action="store_true")
p.add_argument("--ws", action="store_true")
p.add_argument("--seed", type=int)
a = p.parse_args()
if a.seed is not None:
    random.seed(a.seed)
host, port = a.proxy.rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = a.keylog
if a.tls12:
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(a.tls12)

def read_frame(conn, buf):
    """One WebSocket frame from the server (unmasked, unfragmented): its payload, and the rest."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = conn.recv(65536)
            if not chunk:
                raise SystemExit("tls-uac: connection closed")
            buf += chunk
    need(2)
    length, at = buf[1] & 0x7F, 2
    if length == 126:
        need(4)
        length, at = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        need(10)
        length, at = int.from_bytes(buf[2:10], "big"), 10
    need(at + length)
    return buf[at : at + length], buf[at + length :]

def read_message(conn, buf):
    if a.ws:
        payload, buf = read_frame(conn, buf)
        head = payload.split(b"\r\n\r\n", 1)[0]
        return head.decode(), buf
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("tls-uac: connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith((b"content-length:", b"l:")):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        rest += conn.recv(65536)
    return head.decode(), rest[length:]

def headers(head, name):
    return [l.split(":", 1)[1].strip() for l in head.split("\r\n")[1:]
            if l.split(":", 1)[0].strip().lower() == name]

raw = socket.create_connection((host, int(port)))
conn = raw if a.plain else ctx.wrap_socket(raw, server_hostname="sip.example.net")
transport = "TCP" if a.plain else "WSS" if a.ws else "TLS"
lhost, lport = conn.getsockname()[:2]
buf = b""
if a.ws:
    conn.sendall((f"GET / HTTP/1.1\r\nHost: sip.example.net:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: https://sip.example.net\r\n\r\n").encode())
    while b"\r\n\r\n" not in buf:
        buf += conn.recv(65536)
    answer, buf = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in answer.split(b"\r\n")[0]:
        raise SystemExit("tls-uac: no WebSocket upgrade: " + answer.decode(errors="replace"))

masks = random.Random(0)

def send(text):
    data = text.encode()
    if not a.ws:
        conn.sendall(data)
        return
    # Masks from a generator of their own, so that --seed gives the same Call-IDs and tags
    # over WebSocket as over TLS and in clear.
    mask = bytes(masks.getrandbits(8) for _ in range(4))
    head = bytes([0x81])
    if len(data) < 126:
        head += bytes([0x80 | len(data)])
    else:
        head += bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
    conn.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

for n in range(a.calls):
    call_id = f"tls-{random.getrandbits(48):012x}@{lhost}"
    tag = f"{random.getrandbits(32):08x}"
    def request(method, cseq, branch, extra="", ruri=f"sip:bob@{host}:{port}"):
        return (f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/{transport} {lhost}:{lport};rport;branch=z9hG4bK{branch}\r\n"
                f"Max-Forwards: 70\r\nFrom: \"alice\" <sip:alice@{lhost}>;tag={tag}\r\n"
                f"To: <sip:bob@{host}>{extra}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:alice@{lhost}:{lport};transport={transport.lower()}>\r\n")
    sdp = (f"v=0\r\no=alice 1 1 IN IP4 {lhost}\r\ns=-\r\nc=IN IP4 {lhost}\r\nt=0 0\r\n"
           "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    b1 = f"{random.getrandbits(32):08x}"
    send(request("INVITE", 1, b1) + "Content-Type: application/sdp\r\n"
         f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
    while True:
        head, buf = read_message(conn, buf)
        code = int(head.split(" ", 2)[1])
        if code >= 200:
            break
    to = headers(head, "to")[0]
    to_tag = to[to.index(";tag="):] if ";tag=" in to else ""
    routes = list(reversed(headers(head, "record-route")))
    route = "".join(f"Route: {r}\r\n" for r in routes)
    contact = headers(head, "contact")[0].strip("<>").split(">")[0]
    if code >= 300:
        raise SystemExit(f"tls-uac: INVITE answered {code}")
    send(request("ACK", 1, f"{random.getrandbits(32):08x}", to_tag, contact) + route
         + "Content-Length: 0\r\n\r\n")
    time.sleep(a.hold)
    send(request("BYE", 2, f"{random.getrandbits(32):08x}", to_tag, contact) + route
         + "Content-Length: 0\r\n\r\n")
    while True:
        head, buf = read_message(conn, buf)
        if "BYE" in headers(head, "cseq")[0] and int(head.split(" ", 2)[1]) >= 200:
            break
time.sleep(0.2)
conn.close()
