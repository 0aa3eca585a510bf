//! sipscope: a passive SIP protocol analyzer.
//!
//! Data flows one way through these modules, each with a narrow typed interface:
//!
//! - [`capture`]: frame sources (pcap/pcapng files, stdin, merged inputs).
//! - [`net`]: link layers, IPv4/IPv6 defragmentation, TCP reassembly, SIP framing.
//! - [`sip`]: the lenient zero-copy SIP parser and the SDP summary.
//! - [`flow`]: transactions, dialogs and calls (RFC 3261 §12, §17).
//! - [`engine`]: glues the stages together; fed one frame at a time.
//! - [`export`]: JSON, CSV, tables and text ladders, all from the same model.
//! - [`cli`]: the command-line front end used by `main.rs`.
// `unsafe` is denied everywhere but `capture::interface::sys` (AF_PACKET system calls),
// `capture::hep::sys` (a UDP socket's receive buffer and drop count) and `capture::privilege::sys`
// (setuid/setgid), which neither std nor rustix offer; there it is allowed with a written
// reason for each block.
#![deny(unsafe_code)]

/// Hash maps keyed by data that comes off the wire (Call-IDs, tags, branches, addresses):
/// foldhash is keyed per process, so hostile traffic cannot aim at collisions, and it is far
/// cheaper than the standard SipHash on these hot paths.
pub(crate) type WireMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A set of wire-derived keys, keyed as [`WireMap`].
pub(crate) type WireSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Hashes an address as one integer, or two for IPv6: std's `Hash` for a `SocketAddr` feeds the
/// hasher the variant, the octets with their length and the port one by one, four rounds an
/// address, on paths taken per message (a retransmission's signature) and per TCP segment (the
/// stream tables). The IPv6 flow label and scope are left out: equal addresses still hash alike.
pub(crate) fn hash_addr(a: &std::net::SocketAddr, h: &mut impl std::hash::Hasher) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            h.write_u64(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port()))
        }
        std::net::SocketAddr::V6(v6) => {
            h.write_u128(v6.ip().to_bits());
            h.write_u32(1 << 16 | u32::from(v6.port()));
        }
    }
}

pub mod capture;
#[cfg(feature = "cli")]
pub mod cli;
pub mod diagnose;
pub mod engine;
pub mod export;
pub mod flow;
pub mod group;
pub mod hep;
pub mod media;
pub mod net;
pub mod readback;
pub mod rtp;
pub mod sanitize;
pub mod sip;
pub mod srtp;
pub mod synth;
pub mod time;
pub mod tls;
#[cfg(feature = "tui")]
pub mod ui;
