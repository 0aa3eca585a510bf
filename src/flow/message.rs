//! The owned record of one SIP message as the model keeps it: what crossed the wire, when,
//! between which addresses, and the fields correlation needs. Built from a parsed
//! [`crate::sip::Message`]; raw bytes are kept only when asked (they dominate memory).
//!
//! Kept small on purpose: short strings (methods, tags, most branches) live inline in
//! `CompactString`s, and the SDP body is kept raw and summarised only when asked, so that a
//! capture of millions of messages costs little memory and little allocation.

use crate::net::{SipPdu, Transport};
use crate::sip::{self, Issue, StartLine, sdp::SdpSummary};
use crate::time::Timestamp;
use compact_str::CompactString;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    Request {
        method: CompactString,
        uri: CompactString,
    },
    Response {
        code: u16,
        reason: CompactString,
    },
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
    pub cseq: Option<(u32, CompactString)>,
    pub branch: Option<CompactString>,
    /// Top Via sent-by as transactions compare it ([`sip::header::Via::sent_by_key`]): lower-cased,
    /// without the transport's default port.
    pub via_sent_by: Option<CompactString>,
    pub via_count: u16,
    pub from_tag: Option<CompactString>,
    pub to_tag: Option<CompactString>,
    pub max_forwards: Option<u32>,
    /// The first Contact's host when it is an IP address literal.
    pub contact_ip: Option<std::net::IpAddr>,
    /// The first Contact carries a `received` or `alias` parameter, or the message a Path
    /// header: a registrar or edge proxy recorded where the binding really is (RFC 3327,
    /// RFC 5626 and the NAT helpers of SIP proxies).
    pub contact_recorded: bool,
    pub has_credentials: bool,
    /// A request whose User-Agent names a SIP scanning tool ([`sip::header::scanner_agent`]).
    pub scanner_agent: bool,
    pub size: u32,
    /// What most messages do not have, boxed so that the common record stays small.
    pub extra: Option<Box<Extra>>,
    /// Set by correlation: positions in the call's transactions and dialogs (a call holds at
    /// most `max_messages_per_call` of either; u32 keeps the record 16 bytes smaller).
    pub transaction: Option<u32>,
    pub dialog: Option<u32>,
    pub retransmission: bool,
}

/// Where the bytes of messages whose records do not keep them can be found again: the UI and
/// its exports read raw text from the capture file through this ([`crate::readback`]) instead
/// of holding every message's bytes.
pub trait RawSource: Send + Sync + std::fmt::Debug {
    /// The bytes of message `m`, or why they cannot be had.
    fn raw_bytes(&self, m: &SipMessage) -> Result<std::sync::Arc<[u8]>, RawError>;
}

/// Why a message's bytes cannot be shown. Each renders as one line for the screen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    #[error("raw text not kept")]
    NotKept,
    /// A frame of the message could not be read again (the reader says why).
    #[error("{0}")]
    Unreadable(String),
    /// The frames decode to no message like this one: the file changed since it was read.
    #[error("frame {0} no longer holds this message (was the file changed?)")]
    Gone(u64),
    #[error("the message's frames hold several messages like it")]
    Ambiguous,
}

/// What most messages do not have: the bytes kept with some (the SDP body, the message's
/// bytes, its frame list) and, boxed once more, the rarer headers. Two levels so that a message
/// with SDP, the common case of an Extra, costs 56 bytes here rather than nearly 300.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// The SDP body as it was, for [`SipMessage::sdp`].
    pub sdp_body: Option<Box<[u8]>>,
    pub raw: Option<Box<[u8]>>,
    /// Every frame that carried the message, when that is more than `packet` alone (IP
    /// fragments, a message over several TCP segments).
    pub frames: Option<Box<[u64]>>,
    pub rare: Option<Box<Rare>>,
}

/// The rarer parts of a message.
#[derive(Debug, Clone, Default)]
pub struct Rare {
    pub reason_header: Option<Box<str>>,
    pub warning: Option<Box<str>>,
    pub issues: Vec<Issue>,
    /// RFC 3262: the RSeq of a provisional response sent reliably (`Require: 100rel`).
    pub rseq: Option<u32>,
    /// RFC 3262: a PRACK's RAck (response number, CSeq number, method).
    pub rack: Option<(u32, u32, CompactString)>,
    /// RFC 4028: Session-Expires delta seconds and refresher (uac/uas), and Min-SE.
    pub session_expires: Option<(u32, Option<CompactString>)>,
    pub min_se: Option<u32>,
    pub retry_after: Option<u32>,
    /// The HEP agent that shipped the message, when it came in HEP.
    pub hep: Option<HepInfo>,
    /// The host of the first Record-Route, when it is a private IP address
    /// ([`sip::header::is_private`]): a proxy behind a NAT that recorded an address the far
    /// side cannot reach. (Other Record-Routes are kept by nobody: the exporters show the raw
    /// message.)
    pub record_route_private: Option<std::net::IpAddr>,
    /// The first digest challenge of a 401/407, or the credentials of a request (boxed: rarer
    /// still than the rest).
    pub auth: Option<Box<Auth>>,
    /// What ties this leg of a call to the others across a B2BUA (boxed: most messages carry
    /// none of it).
    pub leg: Option<Box<LegHeaders>>,
    /// The same message seen at other capture points ([`super::points`]).
    pub sightings: Vec<Sighting>,
}

/// A message seen again at another capture point: where, when, in which frames there (the
/// last completed it, as [`SipMessage::packet`] does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub point: super::points::Point,
    pub time: Timestamp,
    pub packet: u64,
    pub frames: Box<[u64]>,
}

/// The headers and SDP origin that tie the legs of one call across B2BUAs, SBCs and
/// transfers, read from a message that carries any of them (what the grouping stage reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegHeaders {
    /// RFC 7989 Session-ID: this side's UUID and the `remote` one, lower-cased; the null UUID
    /// is not kept.
    pub session_id: Option<CompactString>,
    pub session_remote: Option<CompactString>,
    /// The `icid-value` of P-Charging-Vector (RFC 7315 §4.6).
    pub icid: Option<CompactString>,
    /// The Call-ID a Replaces header names (RFC 3891), or the Replaces embedded in a REFER's
    /// Refer-To URI (an attended transfer, RFC 5589).
    pub replaces: Option<CompactString>,
    /// The user of a REFER's Refer-To URI (the transfer target), and of its From (who
    /// transfers).
    pub refer_to_user: Option<CompactString>,
    pub referrer_user: Option<CompactString>,
    /// The user of Referred-By (RFC 3892): who transferred this call.
    pub referred_by_user: Option<CompactString>,
    /// The user of the first P-Asserted-Identity (RFC 3325).
    pub asserted_user: Option<CompactString>,
    /// The user of the first Diversion (RFC 5806).
    pub diversion_user: Option<CompactString>,
}

impl LegHeaders {
    fn is_empty(&self) -> bool {
        *self == LegHeaders::default()
    }
}

/// `%40` and the like in a URI header value, decoded; bytes that do not decode are kept.
fn percent_decoded(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        let hex = |b: u8| (b as char).to_digit(16);
        if b == b'%'
            && let (Some(&h), Some(&l)) = (v.get(i + 1), v.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// The value of parameter `name` in `a=1;b=2` (case-insensitive name, quotes stripped).
fn param_value<'v>(v: &'v [u8], name: &[u8]) -> Option<&'v [u8]> {
    v.split(|b| *b == b';').find_map(|p| {
        let eq = memchr::memchr(b'=', p)?;
        let (n, value) = (sip::header::trim(p.get(..eq)?), p.get(eq + 1..)?);
        n.eq_ignore_ascii_case(name).then(|| {
            let value = sip::header::trim(value);
            value
                .strip_prefix(b"\"")
                .and_then(|x| x.strip_suffix(b"\""))
                .unwrap_or(value)
        })
    })
}

/// An RFC 7989 UUID: 32 hex digits, not all zero (the null UUID of a side that does not know
/// the other yet).
fn session_uuid(v: &[u8], text: &dyn Fn(&[u8]) -> CompactString) -> Option<CompactString> {
    let v = sip::header::trim(v);
    (v.len() == 32 && v.iter().all(u8::is_ascii_hexdigit) && v.iter().any(|b| *b != b'0')).then(
        || {
            let mut s = text(v);
            s.make_ascii_lowercase();
            s
        },
    )
}

/// A digest challenge or the credentials answering one (RFC 3261 §22), as far as telling
/// attempts apart needs: realm, nonce, user name, and whether the server called the nonce
/// stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub realm: Option<CompactString>,
    pub nonce: Option<CompactString>,
    pub username: Option<CompactString>,
    pub stale: bool,
}

/// What a HEP agent said about a message it shipped (node name and correlation id as text,
/// cut like any header value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepInfo {
    pub version: u8,
    pub capture_id: Option<u32>,
    pub node: Option<CompactString>,
    pub correlation_id: Option<CompactString>,
}

/// Longest header value kept in the model; longer values are cut (the raw bytes keep all).
pub(crate) const MAX_VALUE: usize = 1024;
/// Longest SDP body kept for the summary.
const MAX_SDP: usize = 16 << 10;

/// Whether a Contact value carries a `received` or `alias` parameter (of the header or of the
/// URI): what registrars and their NAT helpers add to say where a binding really is.
fn records_where_it_is(contact: &[u8]) -> bool {
    let starts = |at: usize, name: &[u8]| {
        contact
            .get(at + 1..at + 1 + name.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(name))
    };
    memchr::memchr_iter(b';', contact).any(|at| starts(at, b"received") || starts(at, b"alias="))
}

pub(crate) fn text(v: &[u8]) -> CompactString {
    let v = sip::header::trim(v);
    let v = v.get(..MAX_VALUE).unwrap_or(v);
    CompactString::from_utf8_lossy(v)
}

/// [`text`] of a slice of `block` whose UTF-8 validity is known (`valid`, the block as a
/// `str`): the value is then taken from the `str` (an O(1) boundary check) rather than
/// validated again. Anything else, a slice from elsewhere or a block that is not UTF-8, goes
/// through [`text`]; the result is the same either way.
fn text_in(block: &[u8], valid: Option<&str>, v: &[u8]) -> CompactString {
    match within(block, valid, v) {
        Some(s) => CompactString::new(s),
        None => text(v),
    }
}

/// The trimmed, cut value as a slice of `valid` when it lies in `block` and cuts on a
/// character boundary; `None` sends the caller to [`text`].
fn within<'a>(block: &[u8], valid: Option<&'a str>, v: &[u8]) -> Option<&'a str> {
    let v = sip::header::trim(v);
    let v = v.get(..MAX_VALUE).unwrap_or(v);
    let off = (v.as_ptr() as usize).wrapping_sub(block.as_ptr() as usize);
    off.checked_add(v.len())
        .filter(|end| *end <= block.len())
        .and_then(|end| valid?.get(off..end))
}

/// What a record keeps beyond the fields that correlation and the call summary read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// The message's bytes (`--raw`, the ladder's message view). A malformed message keeps
    /// them whatever this says: they are the evidence.
    pub raw: bool,
    /// What only the exporters and the diagnosis read: the SDP body, the list of frames that
    /// carried the message (JSON `frames`, pcap export), the Contact address (`contact_ip`)
    /// and the depth of the Via stack (`via_count`; without the detail it is 1 when there is
    /// a Via at all). Off for the call table, which reads none of them: most messages then
    /// need no [`Extra`], and only the top Via is parsed.
    pub detail: bool,
}

impl Keep {
    /// Everything but the raw bytes: what the exporters and the diagnosis read.
    pub const DETAIL: Keep = Keep {
        raw: false,
        detail: true,
    };
}

fn boxed(v: &[u8]) -> Box<str> {
    text(v).into_string().into_boxed_str()
}

/// A parsed message's head (start line and headers), checked as UTF-8 once (it nearly always
/// is) rather than value by value: the Call-ID and six values or more of every message are
/// turned into text.
pub struct Head<'a> {
    bytes: &'a [u8],
    valid: Option<&'a str>,
}

impl<'a> Head<'a> {
    pub fn of(msg: &sip::Message<'a>) -> Head<'a> {
        let bytes = msg
            .raw
            .get(..msg.raw.len().saturating_sub(msg.body.len()))
            .unwrap_or(msg.raw);
        // simdutf8: a third of a byte's worth of instructions where std's check takes one and
        // a half, on every byte of every message's head (3% of a run's instructions).
        Head {
            bytes,
            valid: simdutf8::basic::from_utf8(bytes).ok(),
        }
    }

    /// `text` of a value, from the checked head when it lies in it.
    pub fn text(&self, v: &[u8]) -> CompactString {
        text_in(self.bytes, self.valid, v)
    }

    /// Writes `text` of a value to `out` (without a `CompactString` between, which a
    /// value longer than 24 bytes would allocate).
    pub fn push_text(&self, v: &[u8], out: &mut String) {
        match within(self.bytes, self.valid, v) {
            Some(s) => out.push_str(s),
            None => out.push_str(&text(v)),
        }
    }
}

/// Heap bytes of a string that does not fit inline.
fn heap(s: &CompactString) -> usize {
    if s.is_heap_allocated() {
        s.capacity()
    } else {
        0
    }
}

impl SipMessage {
    /// Bytes the record owns beyond itself: its rarer parts ([`Extra`]: raw bytes, the SDP,
    /// frame lists) and the strings too long to live inline. What the engine's memory budget
    /// counts for it, with the record's own size.
    pub fn heap_bytes(&self) -> usize {
        let strings = match &self.kind {
            Kind::Request { method, uri } => heap(method) + heap(uri),
            Kind::Response { reason, .. } => heap(reason),
        } + self.cseq.as_ref().map_or(0, |(_, m)| heap(m))
            + [
                &self.branch,
                &self.via_sent_by,
                &self.from_tag,
                &self.to_tag,
            ]
            .into_iter()
            .flatten()
            .map(heap)
            .sum::<usize>();
        let extra = self.extra.as_ref().map_or(0, |e| {
            std::mem::size_of::<Extra>()
                + e.sdp_body.as_ref().map_or(0, |b| b.len())
                + e.raw.as_ref().map_or(0, |b| b.len())
                + e.frames.as_ref().map_or(0, |f| f.len() * 8)
                + e.rare.as_ref().map_or(0, |r| {
                    std::mem::size_of::<Rare>()
                        + r.reason_header.as_ref().map_or(0, |s| s.len())
                        + r.warning.as_ref().map_or(0, |s| s.len())
                        + r.issues.capacity() * std::mem::size_of::<Issue>()
                        + r.auth.as_ref().map_or(0, |_| std::mem::size_of::<Auth>())
                        + r.hep.as_ref().map_or(0, |_| 64)
                })
        });
        strings + extra
    }

    /// Builds the record from a parsed message.
    pub fn from_parsed(pdu: &SipPdu, msg: &sip::Message<'_>, keep: Keep) -> SipMessage {
        SipMessage::build(pdu, msg, keep, &Head::of(msg), false).0
    }

    /// [`SipMessage::from_parsed`] with the head already checked, and with `init` the call's
    /// parties too ([`crate::flow::CallInit`], for a Call-ID seen for the first time), from the From and To
    /// the record reads anyway.
    pub fn build(
        pdu: &SipPdu,
        msg: &sip::Message<'_>,
        keep: Keep,
        head: &Head<'_>,
        init: bool,
    ) -> (SipMessage, Option<Box<crate::flow::CallInit>>) {
        let text = |v: &[u8]| head.text(v);
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
        // One pass over the headers: this runs for every message of every capture.
        let mut via: Option<sip::Via<'_>> = None;
        let mut via_count: usize = 0;
        let (mut from, mut to, mut cseq, mut max_forwards) = (None, None, None, None);
        let (mut reason_header, mut warning, mut has_credentials) = (None, None, false);
        let (mut contact_ip, mut requires_100rel, mut rseq, mut rack) = (None, false, None, None);
        let (mut session_expires, mut min_se, mut retry_after) = (None, None, None);
        let mut linked_call_id = None;
        let mut leg = LegHeaders::default();
        let user_of = |v: &[u8]| {
            let first = sip::header::split_commas(v).next().unwrap_or(v);
            sip::NameAddr::parse(first).user().map(text)
        };
        let mut digest: Option<sip::header::Digest<'_>> = None;
        let mut contact_recorded = false;
        let mut scanner_agent = false;
        let mut record_route_private = None;
        let mut record_route_seen = false;
        let from_outside = {
            let ip = pdu.src.ip();
            !(sip::header::is_private(ip) || ip.is_loopback() || ip.is_unspecified())
        };
        let number = |v: &[u8]| {
            let v = sip::header::trim(v);
            let end = v
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(v.len());
            sip::header::parse_u32(v.get(..end).unwrap_or(v))
        };
        for h in &msg.headers {
            match h.kind {
                // The top Via only: the first value of the first Via with one, as below.
                sip::HeaderKind::Via if !keep.detail => {
                    if via_count == 0
                        && let Some(v) = sip::header::split_commas(h.value).next()
                    {
                        via = sip::Via::parse(v);
                        via_count = 1;
                    }
                }
                sip::HeaderKind::Via => {
                    for v in sip::header::split_commas(h.value) {
                        if via_count == 0 {
                            via = sip::Via::parse(v);
                        }
                        via_count += 1;
                    }
                }
                sip::HeaderKind::From if from.is_none() => {
                    from = Some(sip::NameAddr::parse(h.value))
                }
                sip::HeaderKind::To if to.is_none() => to = Some(sip::NameAddr::parse(h.value)),
                sip::HeaderKind::CSeq if cseq.is_none() => cseq = sip::CSeq::parse(h.value),
                sip::HeaderKind::MaxForwards if max_forwards.is_none() => {
                    max_forwards = sip::header::parse_u32(sip::header::trim(h.value))
                }
                sip::HeaderKind::Reason if reason_header.is_none() => {
                    reason_header = Some(boxed(h.value))
                }
                sip::HeaderKind::Warning if warning.is_none() => warning = Some(boxed(h.value)),
                sip::HeaderKind::Authorization | sip::HeaderKind::ProxyAuthorization => {
                    has_credentials = true;
                    if digest.is_none() && msg.is_request() {
                        digest = Some(sip::header::Digest::parse(h.value));
                    }
                }
                sip::HeaderKind::WwwAuthenticate | sip::HeaderKind::ProxyAuthenticate
                    if digest.is_none() && !msg.is_request() =>
                {
                    digest = Some(sip::header::Digest::parse(h.value))
                }
                sip::HeaderKind::Contact if keep.detail && contact_ip.is_none() => {
                    let first = sip::header::split_commas(h.value).next();
                    contact_ip = first
                        .and_then(|c| sip::NameAddr::parse(c).host().and_then(sip::header::ip_of));
                    contact_recorded |= first.is_some_and(records_where_it_is);
                }
                sip::HeaderKind::Path => contact_recorded = true,
                sip::HeaderKind::UserAgent if msg.is_request() => {
                    scanner_agent = sip::header::scanner_agent(h.value)
                }
                // Only a packet from a public address can name an address the far side cannot
                // reach (`private_address`): others are not parsed for it.
                sip::HeaderKind::RecordRoute
                    if keep.detail && !record_route_seen && from_outside =>
                {
                    record_route_seen = true;
                    record_route_private = sip::header::split_commas(h.value)
                        .next()
                        .and_then(|r| sip::NameAddr::parse(r).host().and_then(sip::header::ip_of))
                        .filter(|ip| sip::header::is_private(*ip));
                }
                sip::HeaderKind::Require => {
                    requires_100rel |= sip::header::split_commas(h.value)
                        .any(|t| sip::header::trim(t).eq_ignore_ascii_case(b"100rel"))
                }
                sip::HeaderKind::RSeq if rseq.is_none() => rseq = number(h.value),
                sip::HeaderKind::RAck if rack.is_none() => {
                    // `RAck: 776656 1 INVITE` (response number, CSeq number, method).
                    let mut parts = h
                        .value
                        .split(|b| sip::header::is_lws(*b))
                        .filter(|p| !p.is_empty());
                    if let (Some(r), Some(c), Some(m)) = (parts.next(), parts.next(), parts.next())
                        && let (Some(r), Some(c)) = (number(r), number(c))
                    {
                        rack = Some((r, c, text(m)));
                    }
                }
                sip::HeaderKind::SessionExpires if session_expires.is_none() => {
                    let semi = memchr::memchr(b';', h.value).unwrap_or(h.value.len());
                    let refresher = sip::header::params(h.value.get(semi..).unwrap_or(&[]))
                        .find(|(n, _)| n.eq_ignore_ascii_case(b"refresher"))
                        .and_then(|(_, v)| v)
                        .map(text);
                    session_expires =
                        number(h.value.get(..semi).unwrap_or(&[])).map(|n| (n, refresher));
                }
                sip::HeaderKind::XCallId if linked_call_id.is_none() => {
                    linked_call_id = Some(h.value)
                }
                sip::HeaderKind::SessionId if leg.session_id.is_none() => {
                    let semi = memchr::memchr(b';', h.value).unwrap_or(h.value.len());
                    leg.session_id = session_uuid(h.value.get(..semi).unwrap_or(&[]), &text);
                    leg.session_remote = param_value(h.value.get(semi..).unwrap_or(&[]), b"remote")
                        .and_then(|r| session_uuid(r, &text));
                }
                sip::HeaderKind::ChargingVector if leg.icid.is_none() => {
                    leg.icid = param_value(h.value, b"icid-value")
                        .filter(|v| !v.is_empty())
                        .map(text)
                }
                sip::HeaderKind::Replaces if leg.replaces.is_none() => {
                    let semi = memchr::memchr(b';', h.value).unwrap_or(h.value.len());
                    let id = sip::header::trim(h.value.get(..semi).unwrap_or(&[]));
                    leg.replaces = (!id.is_empty()).then(|| text(id));
                }
                sip::HeaderKind::ReferTo if leg.refer_to_user.is_none() => {
                    let to = sip::NameAddr::parse(h.value);
                    leg.refer_to_user = to.user().map(text);
                    // `sip:dave@host?Replaces=12345%40host%3Bto-tag%3D1%3Bfrom-tag%3D2`
                    if leg.replaces.is_none()
                        && let Some(q) = memchr::memchr(b'?', to.uri)
                    {
                        let headers = to.uri.get(q + 1..).unwrap_or(&[]);
                        leg.replaces = headers.split(|b| *b == b'&').find_map(|h| {
                            let eq = memchr::memchr(b'=', h)?;
                            if !h.get(..eq)?.eq_ignore_ascii_case(b"replaces") {
                                return None;
                            }
                            let value = percent_decoded(h.get(eq + 1..)?);
                            let id = value.split(|b| *b == b';').next()?;
                            (!id.is_empty()).then(|| text(id))
                        });
                    }
                }
                sip::HeaderKind::ReferredBy if leg.referred_by_user.is_none() => {
                    leg.referred_by_user = user_of(h.value)
                }
                sip::HeaderKind::AssertedIdentity if leg.asserted_user.is_none() => {
                    leg.asserted_user = user_of(h.value)
                }
                sip::HeaderKind::Diversion if leg.diversion_user.is_none() => {
                    leg.diversion_user = user_of(h.value)
                }
                sip::HeaderKind::MinSe if min_se.is_none() => min_se = number(h.value),
                sip::HeaderKind::RetryAfter if retry_after.is_none() => {
                    retry_after = number(h.value)
                }
                _ => {}
            }
        }
        if leg.refer_to_user.is_some()
            && matches!(msg.start, StartLine::Request { method, .. } if method.eq_ignore_ascii_case(b"REFER"))
        {
            leg.referrer_user = from.as_ref().and_then(|f| f.user()).map(text);
        }
        let leg = (!leg.is_empty()).then(|| Box::new(leg));
        // Bounded: a hostile body is not kept whole just because it claims to be SDP.
        let sdp_body = (keep.detail && msg.has_sdp()).then(|| {
            msg.body
                .get(..MAX_SDP)
                .unwrap_or(msg.body)
                .to_vec()
                .into_boxed_slice()
        });
        let init = init.then(|| {
            Box::new(crate::flow::CallInit::from_parts(
                from.clone(),
                to.clone(),
                linked_call_id,
                &text,
            ))
        });
        let record = SipMessage {
            index: 0,
            source: pdu.source,
            packet: pdu.frame,
            time: pdu.time,
            src: pdu.src,
            dst: pdu.dst,
            transport: pdu.transport,
            kind,
            cseq: cseq.map(|c| (c.seq, text(c.method))),
            branch: via.as_ref().and_then(|v| v.branch).map(text),
            // `Via::sent_by_key`, from the head already known to be UTF-8.
            via_sent_by: via.as_ref().map(|v| {
                let mut s = text(v.sent_by_without_default_port());
                s.make_ascii_lowercase();
                s
            }),
            via_count: via_count.min(u16::MAX as usize) as u16,
            from_tag: from.and_then(|f| f.tag).map(text),
            to_tag: to.and_then(|t| t.tag).map(text),
            max_forwards,
            contact_ip,
            contact_recorded,
            has_credentials,
            scanner_agent,
            size: msg.raw.len().min(u32::MAX as usize) as u32,
            extra: {
                // A malformed message keeps its bytes always: they are the evidence, and rare.
                let malformed = msg.issues.iter().any(Issue::is_malformed);
                let raw = (keep.raw || malformed).then(|| msg.raw.to_vec().into_boxed_slice());
                let rseq = rseq.filter(|_| requires_100rel);
                let frames = (keep.detail && pdu.frames != [pdu.frame]).then(|| pdu.frames.into());
                let hep = pdu.hep.map(|h| HepInfo {
                    version: h.version,
                    capture_id: h.capture_id,
                    node: h.node.map(text),
                    correlation_id: h.correlation_id.map(text),
                });
                let rare = reason_header.is_some()
                    || hep.is_some()
                    || warning.is_some()
                    || !msg.issues.is_empty()
                    || rseq.is_some()
                    || rack.is_some()
                    || session_expires.is_some()
                    || min_se.is_some()
                    || retry_after.is_some()
                    || digest.is_some()
                    || leg.is_some()
                    || record_route_private.is_some();
                let rare = rare.then(|| {
                    Box::new(Rare {
                        reason_header,
                        warning,
                        issues: msg.issues.to_vec(),
                        rseq,
                        rack,
                        session_expires,
                        min_se,
                        retry_after,
                        hep,
                        record_route_private,
                        leg,
                        sightings: Vec::new(),
                        auth: digest.map(|d| {
                            Box::new(Auth {
                                realm: d.realm.map(text),
                                nonce: d.nonce.map(text),
                                username: d.username.map(text),
                                stale: d.stale,
                            })
                        }),
                    })
                });
                (rare.is_some() || frames.is_some() || sdp_body.is_some() || raw.is_some()).then(
                    || {
                        Box::new(Extra {
                            sdp_body,
                            raw,
                            frames,
                            rare,
                        })
                    },
                )
            },
            transaction: None,
            dialog: None,
            retransmission: false,
        };
        (record, init)
    }

    /// The first Record-Route's address, when it is private ([`Rare::record_route_private`]).
    pub fn record_route_private(&self) -> Option<std::net::IpAddr> {
        self.rare().and_then(|x| x.record_route_private)
    }

    /// The digest challenge (401/407) or credentials (request) the message carried.
    pub fn auth(&self) -> Option<&Auth> {
        self.rare().and_then(|x| x.auth.as_deref())
    }

    /// Where else the message was seen ([`Sighting`]), in the order the copies came.
    pub fn sightings(&self) -> &[Sighting] {
        self.rare().map_or(&[], |x| x.sightings.as_slice())
    }

    /// The headers that tie this leg to the call's other legs ([`LegHeaders`]), if any.
    pub fn leg_headers(&self) -> Option<&LegHeaders> {
        self.rare().and_then(|x| x.leg.as_deref())
    }

    /// The HEP agent that shipped the message, if it came in HEP.
    pub fn hep(&self) -> Option<&HepInfo> {
        self.rare().and_then(|x| x.hep.as_ref())
    }

    /// Every frame (within its source) that carried a byte of the message, in stream order.
    pub fn frames(&self) -> &[u64] {
        match self.extra.as_ref().and_then(|x| x.frames.as_deref()) {
            Some(f) => f,
            None => std::slice::from_ref(&self.packet),
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

    /// The SDP summary of the body, if it carries SDP (computed on demand).
    /// The SDP `o=` line's username and session id (RFC 4566 §5.2), when the SDP body is kept:
    /// a B2BUA that passes the SDP through keeps it on both legs.
    pub fn sdp_origin(&self) -> Option<String> {
        let body = self.extra.as_ref()?.sdp_body.as_deref()?;
        let line = body
            .split(|b| *b == b'\n')
            .map(sip::header::trim)
            .find(|l| l.starts_with(b"o="))?;
        let mut words = line
            .get(2..)?
            .split(|b| *b == b' ')
            .filter(|w| !w.is_empty());
        let (user, id) = (words.next()?, words.next()?);
        Some(format!(
            "{} {}",
            String::from_utf8_lossy(user),
            String::from_utf8_lossy(id)
        ))
    }

    pub fn sdp(&self) -> Option<SdpSummary> {
        self.extra
            .as_ref()?
            .sdp_body
            .as_deref()
            .and_then(SdpSummary::parse)
    }

    pub fn reason_header(&self) -> Option<&str> {
        self.rare()?.reason_header.as_deref()
    }

    pub fn warning(&self) -> Option<&str> {
        self.rare()?.warning.as_deref()
    }

    /// The rarer fields (RFC 3262 and RFC 4028 headers among them), when present.
    pub fn rare(&self) -> Option<&Rare> {
        self.extra.as_ref()?.rare.as_deref()
    }

    /// The request URI of a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { uri, .. } => Some(uri),
            Kind::Response { .. } => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason_phrase(&self) -> Option<&str> {
        match &self.kind {
            Kind::Response { reason, .. } => Some(reason),
            Kind::Request { .. } => None,
        }
    }

    /// What was wrong or unusual in the message.
    pub fn issues(&self) -> &[Issue] {
        self.rare().map_or(&[], |e| e.issues.as_slice())
    }

    /// The message's bytes, when the engine was asked to keep them.
    pub fn raw(&self) -> Option<&[u8]> {
        self.extra.as_ref()?.raw.as_deref()
    }

    /// The message's bytes: kept in the record, else read again by `reader` (from the capture
    /// file, [`crate::readback`]). The error says why there are none.
    pub fn raw_or_read(
        &self,
        reader: Option<&dyn RawSource>,
    ) -> Result<std::borrow::Cow<'_, [u8]>, RawError> {
        match (self.raw(), reader) {
            (Some(b), _) => Ok(std::borrow::Cow::Borrowed(b)),
            (None, Some(r)) => r
                .raw_bytes(self)
                .map(|b| std::borrow::Cow::Owned(b.to_vec())),
            (None, None) => Err(RawError::NotKept),
        }
    }

    /// Short label as drawn on a ladder arrow: `INVITE` or `200 OK`.
    pub fn label(&self) -> String {
        match &self.kind {
            Kind::Request { method, .. } => method.to_string(),
            Kind::Response { code, reason } if reason.is_empty() => code.to_string(),
            Kind::Response { code, reason } => format!("{code} {reason}"),
        }
    }

    /// True for issues that make the message malformed (not just unusual).
    pub fn is_malformed(&self) -> bool {
        self.issues().iter().any(Issue::is_malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taking a value from the block checked once gives what checking the value alone gives:
    /// for every slice of a valid block, of a block with bytes that are not UTF-8 (the value
    /// itself valid or not), and for slices from outside the block.
    #[test]
    fn leg_headers_are_read() {
        use crate::synth::script::{Script, sip};
        let invite = sip(
            "INVITE sip:+4930123456@x SIP/2.0",
            &[
                ("Call-ID", "leg"),
                ("CSeq", "1 INVITE"),
                ("From", "<sip:alice@x>;tag=1"),
                ("To", "<sip:+4930123456@x>"),
                (
                    "Session-ID",
                    "AB30317F1A784DC48FF824D0D3715D86;remote=00000000000000000000000000000000",
                ),
                (
                    "P-Charging-Vector",
                    "icid-value=\"1234bc9876e\";icid-generated-at=192.0.6.8",
                ),
                ("P-Asserted-Identity", "\"A\" <tel:+4930111>, <sip:a@x>"),
                ("Diversion", "<sip:+4930999@x>;reason=unconditional"),
                ("b", "<sip:bob@x>"),
                (
                    "Replaces",
                    "425928@bobster.example.org;to-tag=7743;from-tag=6472",
                ),
            ],
            "",
        );
        let refer = sip(
            "REFER sip:bob@x SIP/2.0",
            &[
                ("Call-ID", "leg"),
                ("CSeq", "2 REFER"),
                ("From", "<sip:alice@x>;tag=1"),
                ("To", "<sip:bob@x>;tag=2"),
                (
                    "Refer-To",
                    "<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>",
                ),
            ],
            "",
        );
        let mut s = Script::new();
        s.udp(0, "10.0.0.1:5060", "10.0.0.2:5060", &invite);
        s.udp(1, "10.0.0.1:5060", "10.0.0.2:5060", &refer);
        let mut engine = crate::engine::Engine::new(crate::engine::EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let m = calls[0].messages();
        let h = m[0].leg_headers().unwrap();
        assert_eq!(
            h.session_id.as_deref(),
            Some("ab30317f1a784dc48ff824d0d3715d86")
        );
        // The null UUID of a side that does not know the other yet is not kept.
        assert_eq!(h.session_remote, None);
        assert_eq!(h.icid.as_deref(), Some("1234bc9876e"));
        assert_eq!(h.asserted_user.as_deref(), Some("+4930111"));
        assert_eq!(h.diversion_user.as_deref(), Some("+4930999"));
        assert_eq!(h.referred_by_user.as_deref(), Some("bob"));
        assert_eq!(h.replaces.as_deref(), Some("425928@bobster.example.org"));
        let r = m[1].leg_headers().unwrap();
        assert_eq!(r.refer_to_user.as_deref(), Some("dave"));
        assert_eq!(r.referrer_user.as_deref(), Some("alice"));
        assert_eq!(r.replaces.as_deref(), Some("12345@192.168.118.3"));
    }

    /// Hostile values of the leg headers: a Session-ID that is not a UUID, broken percent
    /// escapes, an empty Replaces, a Refer-To without a URI: nothing read, nothing panics.
    #[test]
    fn hostile_leg_headers_read_as_nothing() {
        assert_eq!(percent_decoded(b"a%4"), b"a%4");
        assert_eq!(percent_decoded(b"%zz%41%"), b"%zzA%");
        assert_eq!(param_value(b";icid-value=", b"icid-value"), Some(&b""[..]));
        assert_eq!(param_value(b"\"", b"x"), None);
        use crate::synth::script::{Script, sip};
        let invite = sip(
            "INVITE sip:b@x SIP/2.0",
            &[
                ("Call-ID", "bad"),
                ("CSeq", "1 INVITE"),
                (
                    "Session-ID",
                    "not-a-uuid;remote=ZZ30317F1A784DC48FF824D0D3715D86",
                ),
                ("P-Charging-Vector", "icid-value=;orig-ioi=x"),
                ("Replaces", ";to-tag=1"),
                ("Refer-To", "<sip:x?Replaces=%zz%4>"),
                ("Referred-By", "\""),
                ("Diversion", ""),
            ],
            "",
        );
        let mut s = Script::new();
        s.udp(0, "10.0.0.1:5060", "10.0.0.2:5060", &invite);
        let mut engine = crate::engine::Engine::new(crate::engine::EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let h = calls[0].messages()[0].leg_headers();
        let h = h.cloned().unwrap_or_default();
        assert_eq!(h.session_id, None);
        assert_eq!(h.session_remote, None);
        assert_eq!(h.icid, None);
        // `%zz%4` is kept as it was, up to its `;`: not a Call-ID of this capture, harmless.
        assert_eq!(h.replaces.as_deref(), Some("%zz%4"));
        assert_eq!(h.referred_by_user, None);
        assert_eq!(h.diversion_user, None);
    }

    #[test]
    fn values_from_a_checked_block_are_the_same_text() {
        let blocks: [&[u8]; 3] = [
            b"INVITE sip:b@x SIP/2.0\r\nFrom: \"\xc3\xa9t\xc3\xa9\" <sip:a@x>;tag=1\r\n",
            b"SIP/2.0 200 OK\r\nTo: <sip:b@x>;tag=\xff\xfe2\r\nVia: SIP/2.0/UDP h\r\n",
            b"  \t",
        ];
        let elsewhere = b"sip:c@y".to_vec();
        for block in blocks {
            let valid = std::str::from_utf8(block).ok();
            for a in 0..=block.len() {
                for b in a..=block.len() {
                    let v = &block[a..b];
                    assert_eq!(text_in(block, valid, v), text(v), "{a}..{b} of {block:?}");
                    let head = Head {
                        bytes: block,
                        valid,
                    };
                    let mut pushed = String::from("before");
                    head.push_text(v, &mut pushed);
                    assert_eq!(
                        pushed,
                        format!("before{}", text(v)),
                        "{a}..{b} of {block:?}"
                    );
                }
            }
            assert_eq!(text_in(block, valid, &elsewhere), text(&elsewhere));
        }
        // A value longer than the model keeps, cut inside a two-byte character.
        let mut long = b"Call-ID: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_VALUE - 1));
        long.extend("\u{e9}\u{e9}".as_bytes());
        let valid = std::str::from_utf8(&long).ok();
        let value = &long[9..];
        assert_eq!(text_in(&long, valid, value), text(value));
        let mut pushed = String::new();
        Head {
            bytes: &long,
            valid,
        }
        .push_text(value, &mut pushed);
        assert_eq!(pushed, text(value));
    }
}
