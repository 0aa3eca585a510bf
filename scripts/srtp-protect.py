#!/usr/bin/env python3
"""Writes an SRTP copy of a pcap of RTP for sipp's play_pcap_audio: each RTP packet protected
by libsrtp 2 (Debian: libsrtp2-1, through ctypes) with the given suite and inline key, the IP
and UDP lengths grown by the tag. The key is the base64 `inline:` value of the SDP's
`a=crypto` line (30 bytes: master key and salt).

    srtp-protect.py IN.pcap OUT.pcap --suite AES_CM_128_HMAC_SHA1_80 --key BASE64
"""
import argparse
import base64
import ctypes
import ctypes.util
import struct

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--suite", default="AES_CM_128_HMAC_SHA1_80")
p.add_argument("--key", required=True)
a = p.parse_args()

lib = ctypes.CDLL(ctypes.util.find_library("srtp2") or "libsrtp2.so.1")


# libsrtp 2.x's srtp.h
class CryptoPolicy(ctypes.Structure):
    _fields_ = [
        ("cipher_type", ctypes.c_uint32),
        ("cipher_key_len", ctypes.c_int),
        ("auth_type", ctypes.c_uint32),
        ("auth_key_len", ctypes.c_int),
        ("auth_tag_len", ctypes.c_int),
        ("sec_serv", ctypes.c_int),
    ]


class Ssrc(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("value", ctypes.c_uint)]


class Policy(ctypes.Structure):
    pass


Policy._fields_ = [
    ("ssrc", Ssrc),
    ("rtp", CryptoPolicy),
    ("rtcp", CryptoPolicy),
    ("key", ctypes.c_char_p),
    ("keys", ctypes.c_void_p),
    ("num_master_keys", ctypes.c_ulong),
    ("deprecated_ekt", ctypes.c_void_p),
    ("window_size", ctypes.c_ulong),
    ("allow_repeat_tx", ctypes.c_int),
    ("enc_xtn_hdr", ctypes.c_void_p),
    ("enc_xtn_hdr_count", ctypes.c_int),
    ("next", ctypes.c_void_p),
]

SSRC_ANY_OUTBOUND = 3
setters = {
    "AES_CM_128_HMAC_SHA1_80": lib.srtp_crypto_policy_set_rtp_default,
    "AES_CM_128_HMAC_SHA1_32": lib.srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
}
tag_len = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}[a.suite]

assert lib.srtp_init() == 0
key = ctypes.create_string_buffer(base64.b64decode(a.key), 30)
policy = Policy()
setters[a.suite](ctypes.byref(policy.rtp))
lib.srtp_crypto_policy_set_rtcp_default(ctypes.byref(policy.rtcp))
policy.ssrc = Ssrc(SSRC_ANY_OUTBOUND, 0)
policy.key = ctypes.cast(key, ctypes.c_char_p)
policy.window_size = 128
session = ctypes.c_void_p()
assert lib.srtp_create(ctypes.byref(session), ctypes.byref(policy)) == 0

data = open(a.src, "rb").read()
magic = data[:4]
endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
linktype = struct.unpack(endian + "I", data[20:24])[0]
link = {1: 14, 113: 16, 0: 4}[linktype]
out = bytearray(data[:24])
at = 24
while at + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack(endian + "IIII", data[at : at + 16])
    frame = bytearray(data[at + 16 : at + 16 + incl])
    at += 16 + incl
    ip = frame[link:]
    ihl = (ip[0] & 0x0F) * 4
    udp = ip[ihl:]
    rtp = bytes(udp[8:])
    buf = ctypes.create_string_buffer(rtp, len(rtp) + 16)
    n = ctypes.c_int(len(rtp))
    assert lib.srtp_protect(session, buf, ctypes.byref(n)) == 0
    assert n.value == len(rtp) + tag_len
    srtp = buf.raw[: n.value]
    ip = bytearray(ip[:ihl]) + bytearray(udp[:8]) + srtp
    struct.pack_into(">H", ip, 2, len(ip))  # IPv4 total length
    struct.pack_into(">H", ip, 10, 0)
    s = 0
    for i in range(0, ihl, 2):
        s += (ip[i] << 8) | ip[i + 1]
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into(">H", ip, 10, ~s & 0xFFFF)
    struct.pack_into(">H", ip, ihl + 4, 8 + len(srtp))  # UDP length
    struct.pack_into(">H", ip, ihl + 6, 0)  # no UDP checksum
    frame = frame[:link] + ip
    out += struct.pack(endian + "IIII", sec, frac, len(frame), len(frame)) + frame
open(a.dst, "wb").write(out)
