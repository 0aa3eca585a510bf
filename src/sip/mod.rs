//! The SIP parser: hand-written, zero-copy and lenient.
//!
//! Owns the syntax of SIP messages (RFC 3261 §7, §20, §25) and of the SDP summary. A parsed
//! [`Message`] is byte spans into the caller's buffer: the start line, an ordered list of
//! headers (never a map: repeated Via headers matter) and the body, plus the [`Issue`]s met.
//! It knows nothing about transports, transactions or calls.
//!
//! Why by hand: the SIP crates on crates.io are either strict (they reject what real phones
//! send: LF-only line endings, folded headers, junk values) or allocate per header; an analyzer
//! must read hostile and broken traffic, keep everything it could read, say where and why it
//! stopped, and never panic. Every access here is bounds-checked (`get`, never indexing).

pub mod header;
pub mod message;
pub mod sdp;

pub use header::{CSeq, HeaderKind, NameAddr, Via};
pub use message::{Issue, Message, ParseError, StartLine, find_start_line, looks_like_start};
