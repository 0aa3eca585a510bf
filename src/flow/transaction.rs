//! SIP transactions (RFC 3261 §17): the key that matches requests and responses, and what the
//! model records per transaction. A proxy's forwarded request carries its own top Via branch,
//! so each hop is its own transaction.

use super::message::SipMessage;
use crate::time::Timestamp;
use compact_str::CompactString;
use std::net::SocketAddr;

/// How a message finds its transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// §17.2.3: top Via branch with the magic cookie + sent-by + method (ACK matches INVITE
    /// only where it acknowledges a non-2xx; that choice is made by the call). The sent-by is
    /// compared as [`crate::sip::header::Via::sent_by_key`] writes it. A response whose sent-by
    /// differs still joins the transaction with its branch and method (§17.1.3).
    Rfc3261 {
        branch: CompactString,
        sent_by: CompactString,
        method: CompactString,
    },
    /// §17.2.3 for RFC 2543 peers (no magic cookie): From tag, CSeq number and method, and
    /// the top Via (sent-by and branch, if any). The To tag is left out: responses add it.
    Rfc2543 {
        from_tag: Option<CompactString>,
        cseq: u32,
        method: CompactString,
        sent_by: Option<CompactString>,
        branch: Option<CompactString>,
    },
}

impl TransactionKey {
    /// Whether two messages have the same key for any one method: what [`TransactionKey::of`]
    /// compares, without building the keys.
    pub fn same(a: &SipMessage, b: &SipMessage) -> bool {
        fn cookie(m: &SipMessage) -> Option<(&CompactString, &CompactString)> {
            match (&m.branch, &m.via_sent_by) {
                (Some(b), Some(s)) if b.starts_with("z9hG4bK") => Some((b, s)),
                _ => None,
            }
        }
        match (cookie(a), cookie(b)) {
            (Some(x), Some(y)) => x == y,
            (None, None) => {
                a.cseq.is_some()
                    && a.cseq.as_ref().map(|c| c.0) == b.cseq.as_ref().map(|c| c.0)
                    && a.from_tag == b.from_tag
                    && a.via_sent_by == b.via_sent_by
                    && a.branch == b.branch
            }
            _ => false,
        }
    }

    /// Whether both carry the same magic-cookie branch (sent-by aside): how a client matches a
    /// response to its transaction (RFC 3261 §17.1.3, with the CSeq method compared by the
    /// caller). RFC 2543 messages never match this way.
    pub fn same_branch(a: &SipMessage, b: &SipMessage) -> bool {
        match (&a.branch, &b.branch) {
            (Some(x), Some(y)) => x.starts_with("z9hG4bK") && x == y,
            _ => false,
        }
    }

    /// The key of `msg` when the transaction's method is `method` (its CSeq method, or INVITE
    /// for an ACK being matched to its INVITE).
    pub fn of(msg: &SipMessage, method: &str) -> Option<TransactionKey> {
        match (&msg.branch, &msg.via_sent_by) {
            (Some(b), Some(sent_by)) if b.starts_with("z9hG4bK") => Some(TransactionKey::Rfc3261 {
                branch: b.clone(),
                sent_by: sent_by.clone(),
                method: method.into(),
            }),
            _ => {
                let (cseq, _) = msg.cseq.as_ref()?;
                Some(TransactionKey::Rfc2543 {
                    from_tag: msg.from_tag.clone(),
                    cseq: *cseq,
                    method: method.into(),
                    sent_by: msg.via_sent_by.clone(),
                    branch: msg.branch.clone(),
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: usize,
    /// INVITE, BYE, CANCEL... An ACK for a 2xx is its own transaction with method ACK.
    pub method: CompactString,
    pub branch: Option<CompactString>,
    pub cseq: u32,
    /// The hop: who sent the request (client) and who received it (server).
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Whether the transaction was first seen through a response (request not captured).
    pub request_seen: bool,
    pub messages: Vec<usize>,
    pub first_time: Timestamp,
    pub request_time: Option<Timestamp>,
    pub first_provisional: Option<(u16, Timestamp)>,
    /// First final response (status, time).
    pub final_response: Option<(u16, Timestamp)>,
    pub retransmissions: u32,
    /// For a CANCEL: the INVITE transaction it cancels (RFC 3261 §9.2 matching).
    pub cancels: Option<usize>,
    /// For an INVITE: the CANCEL transaction(s) aimed at it.
    pub cancelled_by: Vec<usize>,
    /// For an INVITE with a non-2xx final: the ACK message (same branch, §17.1.1.3).
    pub ack: Option<usize>,
    /// For a 2xx ACK transaction: the INVITE transaction it acknowledges (same dialog, CSeq).
    pub acknowledges: Option<usize>,
    /// The request carried a To tag (in-dialog request).
    pub in_dialog: bool,
}

impl Transaction {
    pub fn is_invite(&self) -> bool {
        self.method == "INVITE"
    }

    pub fn final_status(&self) -> Option<u16> {
        self.final_response.map(|(c, _)| c)
    }

    /// Seconds from the request to the final response.
    pub fn response_time(&self) -> Option<f64> {
        match (self.request_time, self.final_response) {
            (Some(req), Some((_, t))) => Some(t.seconds_since(req)),
            _ => None,
        }
    }
}
