#!/usr/bin/env python3
"""Writes an impaired copy of a pcap of RTP for sipp's play_pcap_audio: every Nth packet
dropped (--drop-every), and each packet's send time shifted by a pseudo-random delay of up to
--jitter-ms (packets keep their order: sipp sends them one after the other, so a packet due
before the previous one goes right after it). Deterministic for a given --seed.

    media-impair.py IN.pcap OUT.pcap [--drop-every N] [--jitter-ms MS] [--seed S]
"""
import argparse
import random
import struct

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--drop-every", type=int, default=0)
p.add_argument("--jitter-ms", type=float, default=0.0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
rng = random.Random(a.seed)
data = open(a.src, "rb").read()
magic = data[:4]
endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
unit = 1e9 if nano else 1e6
out = bytearray(data[:24])
at, n = 24, 0
while at + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack(endian + "IIII", data[at : at + 16])
    body = data[at + 16 : at + 16 + incl]
    at += 16 + incl
    n += 1
    if a.drop_every and n % a.drop_every == 0:
        continue
    t = sec + frac / unit + rng.uniform(0, a.jitter_ms) / 1000.0
    sec, frac = int(t), int(round((t - int(t)) * unit))
    if frac >= unit:
        sec, frac = sec + 1, frac - int(unit)
    out += struct.pack(endian + "IIII", sec, frac, incl, orig) + body
open(a.dst, "wb").write(out)
