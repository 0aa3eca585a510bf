//! The owned record of one SIP message as the model keeps it: what crossed the wire, when,
//! between which addresses, and the fields correlation needs. Built from a parsed
//! [`crate::sip::Message`]; raw bytes are kept only when asked (they dominate memory).

use crate::capture::Timestamp;
use crate::net::{SipPdu, Transport};
use crate::sip::{self, Issue, StartLine, sdp::SdpSummary};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone)]
pub struct SipMessage {
    /// Position in its call.
    pub index: usize,
    pub source: usize,
    pub packet: u64,
    pub time: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub kind: Kind,
    pub cseq: Option<(u32, String)>,
    pub branch: Option<String>,
    pub via_sent_by: Option<String>,
    pub via_count: usize,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub max_forwards: Option<u32>,
    pub reason_header: Option<String>,
    pub warning: Option<String>,
    pub has_credentials: bool,
    pub sdp: Option<SdpSummary>,
    pub size: usize,
    pub issues: Vec<Issue>,
    pub raw: Option<Box<[u8]>>,
    /// Set by correlation.
    pub transaction: Option<usize>,
    pub dialog: Option<usize>,
    pub retransmission: bool,
}

/// Longest header value kept in the model; longer values are cut (the raw bytes keep all).
const MAX_VALUE: usize = 1024;

pub(crate) fn text(v: &[u8]) -> String {
    let v = sip::header::trim(v);
    let v = v.get(..MAX_VALUE).unwrap_or(v);
    String::from_utf8_lossy(v).into_owned()
}

impl SipMessage {
    /// Builds the record from a parsed message. `None` without a Call-ID: such a message
    /// belongs to no call and is reported as malformed by the engine.
    pub fn from_parsed(pdu: &SipPdu, msg: &sip::Message<'_>, keep_raw: bool) -> SipMessage {
        let kind = match msg.start {
            StartLine::Request { method, uri } => Kind::Request {
                method: text(method),
                uri: text(uri),
            },
            StartLine::Response { code, reason } => Kind::Response {
                code,
                reason: text(reason),
            },
        };
        let via = msg.top_via();
        let sdp = if msg.has_sdp() {
            SdpSummary::parse(msg.body)
        } else {
            None
        };
        SipMessage {
            index: 0,
            source: pdu.source,
            packet: pdu.frame,
            time: pdu.time,
            src: pdu.src,
            dst: pdu.dst,
            transport: pdu.transport,
            kind,
            cseq: msg.cseq().map(|c| (c.seq, text(c.method))),
            branch: via.as_ref().and_then(|v| v.branch).map(text),
            via_sent_by: via.as_ref().map(|v| text(v.sent_by)),
            via_count: msg.via_count(),
            from_tag: msg.from().and_then(|f| f.tag).map(text),
            to_tag: msg.to().and_then(|t| t.tag).map(text),
            max_forwards: msg.max_forwards(),
            reason_header: msg.header(sip::HeaderKind::Reason).map(text),
            warning: msg.header(sip::HeaderKind::Warning).map(text),
            has_credentials: msg.header(sip::HeaderKind::Authorization).is_some()
                || msg.header(sip::HeaderKind::ProxyAuthorization).is_some(),
            sdp,
            size: msg.raw.len(),
            issues: msg.issues.clone(),
            raw: keep_raw.then(|| msg.raw.to_vec().into_boxed_slice()),
            transaction: None,
            dialog: None,
            retransmission: false,
        }
    }

    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } => Some(method),
            Kind::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            Kind::Response { code, .. } => Some(*code),
            Kind::Request { .. } => None,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.kind, Kind::Request { .. })
    }

    /// The CSeq method, which names the transaction's method for responses.
    pub fn cseq_method(&self) -> Option<&str> {
        self.cseq.as_ref().map(|(_, m)| m.as_str())
    }

    /// Short label as drawn on a ladder arrow: `INVITE` or `200 OK`.
    pub fn label(&self) -> String {
        match &self.kind {
            Kind::Request { method, .. } => method.clone(),
            Kind::Response { code, reason } if reason.is_empty() => code.to_string(),
            Kind::Response { code, reason } => format!("{code} {reason}"),
        }
    }

    /// True for issues that make the message malformed (not just unusual).
    pub fn is_malformed(&self) -> bool {
        self.issues
            .iter()
            .any(|i| !matches!(i, Issue::LfLineEndings))
    }
}
