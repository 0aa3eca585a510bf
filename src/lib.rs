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
#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod engine;
pub mod export;
pub mod flow;
pub mod net;
pub mod sanitize;
pub mod sip;
pub mod synth;
