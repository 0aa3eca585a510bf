//! Tunnels built in code around a real recording: every frame of `samples/answered-tcp.pcap`
//! and `samples/answered-udp.pcap` wrapped in IP-in-IP, IPv4 in IPv6, GRE (plain and
//! transparent Ethernet bridging), ERSPAN type II and III, VXLAN, GTP-U, PPPoE, and tunnels in
//! tunnels. sipscope must find the same calls as in the bare capture, and the same SIP messages
//! per frame as tshark. (Real tunnel captures from public projects are checked against tshark
//! by `tests/tshark_oracle.rs` when `../shared` is present.)

use crate::common;

use etherparse::{IpNumber, PacketBuilder};
use sipscope::capture::{
    CaptureWriter, FileSource, FrameSource, LinkType, OwnedFrame, WriterOptions,
};
use std::collections::BTreeMap;
use std::path::Path;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn read(path: &Path) -> Vec<OwnedFrame> {
    let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame() {
        assert_eq!(f.link, LinkType::ETHERNET);
        out.push(f.to_owned());
    }
    out
}

fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64);
    let mut v = Vec::new();
    b.write(&mut v, IpNumber(proto), payload).unwrap();
    v
}

fn outer_ip6(proto: u8, payload: &[u8]) -> Vec<u8> {
    let a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut b2 = a;
    b2[15] = 2;
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv6(a, b2, 64);
    let mut v = Vec::new();
    b.write(&mut v, IpNumber(proto), payload).unwrap();
    v
}

fn outer_udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC)
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, port);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The inner IP packet of an Ethernet frame.
fn ip(eth: &[u8]) -> &[u8] {
    &eth[14..]
}

type Wrap = fn(&[u8]) -> Vec<u8>;

fn vxlan(eth: &[u8]) -> Vec<u8> {
    outer_udp(4789, &cat(&[&[0x08, 0, 0, 0, 0, 0x12, 0x34, 0], eth]))
}

fn gre_teb(eth: &[u8]) -> Vec<u8> {
    outer_ip(47, &cat(&[&[0x20, 0, 0x65, 0x58, 0, 0, 0, 9], eth]))
}

const WRAPS: &[(&str, Wrap)] = &[
    ("ipip", |eth| outer_ip(4, ip(eth))),
    ("ipv4-in-ipv6", |eth| outer_ip6(4, ip(eth))),
    ("gre", |eth| {
        outer_ip(47, &cat(&[&[0, 0, 0x08, 0x00], ip(eth)]))
    }),
    ("gre-key-seq", |eth| {
        outer_ip(
            47,
            &cat(&[&[0x30, 0, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 2], ip(eth)]),
        )
    }),
    ("gre-teb", gre_teb),
    ("erspan-2", |eth| {
        let hdr = [
            0x10, 0, 0x88, 0xBE, 0, 0, 0, 1, 0x10, 0x01, 0, 0x05, 0, 0, 0, 0,
        ];
        outer_ip(47, &cat(&[&hdr, eth]))
    }),
    ("erspan-3", |eth| {
        let gre = [0x10, 0, 0x22, 0xEB, 0, 0, 0, 1];
        let ers = [0x20, 0x01, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x01];
        outer_ip(47, &cat(&[&gre, &ers, &[0u8; 8], eth]))
    }),
    ("vxlan", vxlan),
    ("gtp-u", |eth| {
        let inner = ip(eth);
        let len = (inner.len() as u16).to_be_bytes();
        outer_udp(
            2152,
            &cat(&[&[0x30, 0xFF, len[0], len[1], 0, 0, 0, 7], inner]),
        )
    }),
    ("pppoe", |eth| {
        let inner = ip(eth);
        let len = (inner.len() as u16 + 2).to_be_bytes();
        cat(&[
            &MAC,
            &MAC,
            &[
                0x88, 0x64, 0x11, 0x00, 0x00, 0x01, len[0], len[1], 0x00, 0x21,
            ],
            inner,
        ])
    }),
    ("vxlan-in-gre", |eth| gre_teb(&vxlan(eth))),
];

fn wrap_capture(input: &Path, wrap: Wrap, out: &Path) {
    let mut w = CaptureWriter::new(
        std::fs::File::create(out).unwrap(),
        WriterOptions::default(),
    );
    for f in read(input) {
        let data = wrap(&f.data);
        let wrapped = OwnedFrame {
            orig_len: data.len() as u32,
            data,
            ..f
        };
        w.write(&wrapped.as_frame()).unwrap();
    }
    w.finish().unwrap();
}

/// Per frame, the Call-IDs of the messages sipscope reports there; and each call's summary.
fn ours(path: &Path) -> (BTreeMap<u64, Vec<String>>, Vec<String>, u64) {
    let (engine, _) = common::analyse(path);
    let mut frames: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut calls = Vec::new();
    for c in engine.calls() {
        let summary = c.summary(engine.now());
        calls.push(format!(
            "{} {} {:?} {:?}",
            c.call_id,
            c.messages().len(),
            summary.outcome,
            summary.final_status
        ));
        for m in c.messages() {
            frames
                .entry(m.packet)
                .or_default()
                .push(c.call_id.to_string());
        }
    }
    let tunneled = engine.source_stats(0, "", Default::default()).tunneled;
    (frames, calls, tunneled)
}

fn tshark(path: &Path) -> BTreeMap<u64, Vec<String>> {
    common::tshark_fields(path, &["-Y", "sip"], &["frame.number", "sip.Call-ID"])
        .into_iter()
        .filter_map(|f| {
            let n = f.first()?.first()?.parse().ok()?;
            Some((n, f.get(1).cloned().unwrap_or_default()))
        })
        .collect()
}

#[test]
fn sip_inside_tunnels_is_found_as_without_them() {
    let tshark_here = common::require("tshark");
    let dir = tempfile::tempdir().unwrap();
    for sample in ["answered-udp.pcap", "answered-tcp.pcap"] {
        let bare = common::samples().join(sample);
        let (bare_frames, bare_calls, none) = ours(&bare);
        assert_eq!(none, 0);
        assert!(!bare_calls.is_empty());
        for (name, wrap) in WRAPS {
            let path = dir.path().join(format!("{name}-{sample}"));
            wrap_capture(&bare, *wrap, &path);
            let (frames, calls, tunneled) = ours(&path);
            assert_eq!(calls, bare_calls, "{name} {sample}: calls");
            assert_eq!(frames, bare_frames, "{name} {sample}: messages per frame");
            assert!(
                tunneled >= read(&bare).len() as u64,
                "{name}: every frame tunneled"
            );
            if tshark_here {
                let mut theirs = tshark(&path);
                for ids in theirs.values_mut() {
                    ids.sort();
                }
                let mut mine = frames.clone();
                for ids in mine.values_mut() {
                    ids.sort();
                }
                assert_eq!(mine, theirs, "{name} {sample}: tshark disagrees");
            }
        }
    }
}

/// Tunnels nested deeper than the limit are counted, not followed for ever.
#[test]
fn nesting_is_bounded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let bare = common::samples().join("answered-udp.pcap");
    let path = dir.path().join("deep.pcap");
    wrap_capture(
        &bare,
        |eth| {
            let mut p = ip(eth).to_vec();
            for _ in 0..6 {
                p = ip(&outer_ip(4, &p)).to_vec();
            }
            outer_ip(4, &p)
        },
        &path,
    );
    let (engine, _) = common::analyse(&path);
    assert!(engine.calls().is_empty());
    let stats = engine.source_stats(0, "", Default::default());
    assert_eq!(
        stats.skipped.named("tunnel_depth").copied(),
        Some(read(&bare).len() as u64)
    );
}
