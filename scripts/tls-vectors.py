#!/usr/bin/env python3
"""Records TLS connections between Python's ssl client and server (OpenSSL) through memory
BIOs: every record each side wrote, in order, with the client's key log (SSLKEYLOGFILE
format). One connection per TLS 1.3 suite (chosen through an OpenSSL configuration file) and
per TLS 1.2 suite family sipscope decrypts (AES-GCM, ChaCha20-Poly1305, AES-CBC with and
without encrypt-then-MAC); the client sends an OPTIONS and the server answers 200 OK.

    scripts/tls-vectors.py tests/data/tls-vectors.json

The keys are throwaway: a fresh self-signed certificate per run.
"""
import json
import os
import subprocess
import sys
import tempfile

TLS13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
TLS12 = [
    ("ECDHE-RSA-AES128-GCM-SHA256", True),
    ("ECDHE-RSA-AES256-GCM-SHA384", True),
    ("ECDHE-RSA-CHACHA20-POLY1305", True),
    ("ECDHE-RSA-AES256-SHA384", True),   # CBC, encrypt-then-MAC (OpenSSL's default)
    ("ECDHE-RSA-AES128-SHA", False),     # CBC, MAC-then-encrypt
]


def connection(work, name, tls13_suite=None, tls12_cipher=None, etm=True):
    import ssl

    key, crt = os.path.join(work, "k.pem"), os.path.join(work, "c.pem")
    keylog = os.path.join(work, name + ".keys")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(crt, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.keylog_filename = keylog
    for ctx in (server, client):
        if tls12_cipher:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(tls12_cipher)
            if not etm:
                ctx.options |= 0x80000  # SSL_OP_NO_ENCRYPT_THEN_MAC
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_hostname="sip.example.net")
    flights = []

    def pump():
        for who, src, dst in (("c", c_out, s_in), ("s", s_out, c_in)):
            data = src.read()
            if data:
                flights.append([who, data.hex()])
                dst.write(data)

    done = [False, False]
    for _ in range(20):
        for i, end in enumerate((c, s)):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
        pump()
        if all(done):
            break
    sent = [b"OPTIONS sip:bob@sip.example.net SIP/2.0\r\nCall-ID: tls-vector\r\nContent-Length: 0\r\n\r\n"]
    replies = [b"SIP/2.0 200 OK\r\nCall-ID: tls-vector\r\nContent-Length: 0\r\n\r\n"]
    c.write(sent[0])
    pump()
    s.read(65536)
    s.write(replies[0])
    pump()
    c.read(65536)
    pump()
    return {
        "name": name,
        "version": c.version(),
        "cipher": c.cipher()[0],
        "flights": flights,
        "keylog": open(keylog).read(),
        "client_plaintext": b"".join(sent).decode(),
        "server_plaintext": b"".join(replies).decode(),
    }


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        # A child: OPENSSL_CONF already picks its TLS 1.3 suite.
        work, suite = sys.argv[2], sys.argv[3]
        print(json.dumps(connection(work, suite, tls13_suite=suite)))
        return
    out_path = sys.argv[1]
    work = tempfile.mkdtemp()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", os.path.join(work, "k.pem"), "-out", os.path.join(work, "c.pem"),
         "-subj", "/CN=sip.example.net"],
        check=True, capture_output=True)
    vectors = []
    for suite in TLS13:
        conf = os.path.join(work, suite + ".cnf")
        with open(conf, "w") as f:
            f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n"
                    f"[sys]\nCiphersuites = {suite}\n")
        child = subprocess.run([sys.executable, __file__, "--one", work, suite],
                               env=dict(os.environ, OPENSSL_CONF=conf),
                               check=True, capture_output=True, text=True)
        v = json.loads(child.stdout)
        assert v["cipher"] == suite, (v["cipher"], suite)
        vectors.append(v)
    for cipher, etm in TLS12:
        name = cipher + ("" if etm else "-mac-then-encrypt")
        v = connection(work, name, tls12_cipher=cipher, etm=etm)
        vectors.append(v)
    for v in vectors:
        print(v["name"], v["version"], v["cipher"], len(v["flights"]), "flights", file=sys.stderr)
    with open(out_path, "w") as f:
        json.dump(vectors, f, indent=1)
        f.write("\n")


main()
