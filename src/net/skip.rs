//! Why frames or bytes were not turned into SIP messages: one enum for every reason the
//! decoder counts, its name in the JSON (`sources[].skipped`) and whether it means a limit was
//! reached, and the counts of one source in a fixed array.

use serde::ser::{Serialize, SerializeMap, Serializer};

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, limit: $limit:literal;)*) => {
        /// A reason to skip, in the alphabetical order of its name (the JSON's key order).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum SkipReason {
            $($(#[$doc])* $variant,)*
        }

        impl SkipReason {
            /// Every reason, in the order of their names.
            pub const ALL: &[SkipReason] = &[$(SkipReason::$variant,)*];

            /// The name in the JSON and the summaries.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(SkipReason::$variant => $name,)*
                }
            }

            /// A limit was reached (docs/security.md), as opposed to data that was damaged,
            /// lost before the capture point or not SIP (`tcp_gap_bytes` and
            /// `fragments_expired` are mostly capture loss): the summaries and the UI report
            /// these as limits.
            pub fn is_limit(self) -> bool {
                match self {
                    $(SkipReason::$variant => $limit,)*
                }
            }
        }
    };
}

reasons! {
    /// Fragments of a datagram dropped when the fragment memory was full.
    FragmentsEvicted = "fragments_evicted", limit: true;
    /// Fragments of a datagram that never completed within the timeout.
    FragmentsExpired = "fragments_expired", limit: false;
    /// Datagrams still incomplete at the end of the input.
    FragmentsIncomplete = "fragments_incomplete", limit: false;
    /// Fragments that cannot belong to a datagram (overlapping, past the end).
    FragmentsInvalid = "fragments_invalid", limit: false;
    HepDamaged = "hep_damaged", limit: false;
    /// HEP packets that carry something other than SIP (RTCP reports, logs).
    HepNotSip = "hep_not_sip", limit: false;
    HepOversized = "hep_oversized", limit: true;
    Icmp = "icmp", limit: false;
    /// CRLF keep-alives (RFC 5626) and empty datagrams.
    Keepalive = "keepalive", limit: false;
    NotIp = "not_ip", limit: false;
    NotSip = "not_sip", limit: false;
    OtherProtocol = "other_protocol", limit: false;
    /// A SIP message over a stream longer than `--max-message-size`.
    OversizedMessage = "oversized_message", limit: true;
    SctpDamagedChunk = "sctp_damaged_chunk", limit: false;
    SctpDroppedFragments = "sctp_dropped_fragments", limit: false;
    SctpEvicted = "sctp_evicted", limit: true;
    SctpRetransmission = "sctp_retransmission", limit: false;
    TcpBufferEvicted = "tcp_buffer_evicted", limit: true;
    /// Bytes never seen: holes skipped after the timeout or the buffer limit.
    TcpGapBytes = "tcp_gap_bytes", limit: false;
    TcpLossNotesDropped = "tcp_loss_notes_dropped", limit: true;
    /// Segments whose bytes had all been delivered already.
    TcpRetransmission = "tcp_retransmission", limit: false;
    /// Bytes skipped while resynchronising on a start line.
    TcpSkippedBytes = "tcp_skipped_bytes", limit: false;
    TcpStreamBufferFull = "tcp_stream_buffer_full", limit: true;
    TcpStreamEvicted = "tcp_stream_evicted", limit: true;
    /// Text of connections not yet known to be SIP, forgotten because its cache was full.
    TcpUntrackedEvicted = "tcp_untracked_evicted", limit: true;
    Tls = "tls", limit: false;
    Truncated = "truncated", limit: false;
    TunnelDepth = "tunnel_depth", limit: true;
    TunnelUnsupported = "tunnel_unsupported", limit: false;
    UnsupportedLinkType = "unsupported_link_type", limit: false;
}

/// How often each reason happened, for one source. Serialized as a map from name to count,
/// without the reasons that did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl Default for SkipCounts {
    fn default() -> Self {
        SkipCounts([0; SkipReason::ALL.len()])
    }
}

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason, n: u64) {
        if let Some(c) = self.0.get_mut(reason as usize) {
            *c += n;
        }
    }

    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0.get(reason as usize).copied().unwrap_or(0)
    }

    /// The count of the reason named `name` (its JSON key), when it happened.
    pub fn named(&self, name: &str) -> Option<&u64> {
        let i = SkipReason::ALL.iter().position(|r| r.as_str() == name)?;
        self.0.get(i).filter(|&&n| n > 0)
    }

    /// The reasons that happened, with their counts, in the order of their names.
    pub fn iter(&self) -> impl Iterator<Item = (SkipReason, u64)> + '_ {
        SkipReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }
}

impl Serialize for SkipCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_in_the_order_of_their_names_and_index_the_counts() {
        let names: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            names, sorted,
            "alphabetical and unique: the JSON's key order"
        );
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn counts_serialize_as_a_map_of_what_happened() {
        let mut c = SkipCounts::default();
        assert!(c.is_empty());
        c.add(SkipReason::TcpRetransmission, 3);
        c.add(SkipReason::NotSip, 12);
        c.add(SkipReason::Icmp, 0);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"not_sip":12,"tcp_retransmission":3}"#
        );
        assert_eq!(c.get(SkipReason::NotSip), 12);
    }
}
