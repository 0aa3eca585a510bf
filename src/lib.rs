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

pub mod capture;
pub mod cli;
pub mod diagnose;
pub mod engine;
pub mod export;
pub mod flow;
pub mod hep;
pub mod net;
pub mod readback;
pub mod sanitize;
pub mod sip;
pub mod synth;
pub mod ui;
