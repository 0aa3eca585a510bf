//! Call groups: the legs of one call across B2BUAs, SBCs, topology hiding and transfers,
//! found among the calls of a capture. It owns what a call says about its other legs
//! ([`Leg`], small enough to keep one per call of a long capture), the links between legs
//! with their score and evidence, and the groups they make; it reads the model and never
//! changes it, and says nothing about what went wrong (that is `diagnose`).
//!
//! Explicit evidence links two legs outright: a header naming the other leg's Call-ID
//! (`X-Call-ID`/`X-CID`, `Replaces`, a REFER's Refer-To with Replaces), a Call-ID masked by
//! Kamailio's `topoh` that unmasks to the other's, an RFC 7989 Session-ID UUID or a
//! P-Charging-Vector icid shared by both. Without it, pairs are scored: an INVITE leaving the
//! address another INVITE reached within [`GroupConfig::window`], the same dialled number and
//! caller (normalised), the Diversion, the SDP origin, an RTP SSRC seen on both sides of a
//! relay, and responses that mirror each other in time. Weak evidence (addresses, numbers,
//! timing) counts for at most [`WEAK_CAP`], so unrelated calls to the same numbers at the same
//! moments never reach the threshold on it alone; and a leg with two candidates of similar
//! score is reported as ambiguous, never guessed.

pub mod topoh;

use crate::flow::{Call, Outcome};
use crate::time::{Interval, Timestamp};
use compact_str::CompactString;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The most weak evidence (addresses, numbers, timing) may add to a score.
pub const WEAK_CAP: u32 = 40;
/// Score of an explicit link.
pub const EXPLICIT: u32 = 100;
/// A candidate must beat the next one by this much to be taken.
pub const MARGIN: u32 = 20;
/// A Session-ID, icid or SDP origin carried by more legs than this is no evidence (a phone
/// that sends a constant, a test tool).
const MAX_SHARED: usize = 6;
/// INVITEs in the window before a leg beyond which it is not scored (a flood through one
/// element: no guess would be sound).
pub const MAX_CANDIDATES: usize = 4096;
/// Responses mirror each other when the outer one follows within this.
const MIRROR: Interval = Interval::from_millis(500);

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupConfig {
    /// The score from which a heuristic link is taken (explicit links score [`EXPLICIT`]).
    pub threshold: u32,
    /// How long after one INVITE reached an element another may leave it as the same call.
    pub window: Interval,
    /// Kamailio `topoh` mask keys tried on masked Call-IDs.
    pub topoh_keys: Vec<String>,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            threshold: 60,
            window: Interval::from_millis(2000),
            topoh_keys: vec![topoh::DEFAULT_KEY.to_string()],
        }
    }
}

/// One INVITE hop of a leg's first INVITE (a leg through a proxy has several).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hop {
    pub time: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// The final failure of a leg's INVITE: who sent what, when.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub time: Timestamp,
    pub status: u16,
    pub reason: String,
    /// The Reason header (RFC 3326), e.g. `Q.850;cause=34`.
    pub cause: Option<String>,
    pub from: SocketAddr,
    pub to: SocketAddr,
}

/// What grouping reads of one call. Built from the call when it is over ([`Leg::of`]); a few
/// hundred bytes, so that a streaming command can keep one per call.
#[derive(Debug, Clone, Default)]
pub struct Leg {
    pub call_id: Arc<str>,
    pub seq: u64,
    /// The INVITE hops of the call's first INVITE, in time order (at most four).
    pub hops: Vec<Hop>,
    pub dialled: Option<String>,
    pub caller: Option<String>,
    pub asserted: Option<String>,
    pub diversion: Option<String>,
    pub x_call_id: Option<String>,
    pub session_ids: Vec<String>,
    pub icid: Option<String>,
    pub replaces: Vec<String>,
    /// A REFER of this call: when, who transferred (From user), to whom (Refer-To user).
    pub refer: Option<(Timestamp, Option<String>, String)>,
    pub referred_by: Option<String>,
    pub origin: Option<String>,
    /// RTP SSRCs of the call's streams with their first packet's time (at most eight).
    pub ssrcs: Vec<(u32, Timestamp)>,
    pub ringing: Option<Timestamp>,
    pub answered: Option<Timestamp>,
    pub failure: Option<Failure>,
    pub bye: Option<Timestamp>,
    pub cancel: Option<Timestamp>,
    pub outcome: Option<Outcome>,
    pub final_status: Option<u16>,
    pub setup_time: Option<f64>,
    pub post_dial_delay: Option<f64>,
}

fn is_invite(m: &str) -> bool {
    m.eq_ignore_ascii_case("INVITE")
}

impl Leg {
    pub fn of(call: &Call, now: Timestamp) -> Leg {
        let summary = call.summary(now);
        let mut leg = Leg {
            call_id: Arc::clone(&call.call_id),
            seq: call.seq,
            caller: call.from.user.as_ref().map(|u| u.to_string()),
            x_call_id: call.linked_call_id.as_ref().map(|x| x.trim().to_string()),
            outcome: Some(summary.outcome),
            final_status: summary.final_status,
            setup_time: summary.setup_time,
            post_dial_delay: summary.post_dial_delay,
            ..Leg::default()
        };
        let messages = call.messages();
        // The INVITE that decided the call (after a 407, the one with credentials): its hops
        // are the transactions that carry its CSeq.
        let deciding = summary
            .originating
            .and_then(|t| call.transactions().get(t))
            .filter(|t| is_invite(&t.method))
            .map(|t| t.cseq);
        let first = messages.iter().find(|m| {
            m.method().is_some_and(is_invite)
                && !m.retransmission
                && (deciding.is_none() || m.cseq.as_ref().map(|c| c.0) == deciding)
        });
        if let Some(first) = first {
            if let crate::flow::Kind::Request { uri, .. } = &first.kind {
                let to = crate::sip::NameAddr::parse(uri.as_bytes());
                leg.dialled = to
                    .user()
                    .map(|u| String::from_utf8_lossy(u).into_owned())
                    .or_else(|| call.to.user.as_ref().map(|u| u.to_string()));
            }
            for t in call.transactions() {
                if !is_invite(&t.method)
                    || t.in_dialog
                    || Some(t.cseq) != first.cseq.as_ref().map(|c| c.0)
                {
                    continue;
                }
                let Some(time) = t.request_time else {
                    continue;
                };
                if leg.hops.len() < 4 {
                    leg.hops.push(Hop {
                        time,
                        src: t.client,
                        dst: t.server,
                    });
                }
                if let Some((code, at)) = t.first_provisional
                    && (180..200).contains(&code)
                {
                    leg.ringing = Some(leg.ringing.map_or(at, |r| r.min(at)));
                }
                if let Some((code, at)) = t.final_response {
                    if (200..300).contains(&code) {
                        leg.answered = Some(leg.answered.map_or(at, |r| r.min(at)));
                    } else if code >= 300
                        && code != 401
                        && code != 407
                        && leg.failure.as_ref().is_none_or(|f| at < f.time)
                        && let Some(m) = t
                            .messages
                            .iter()
                            .filter_map(|&i| messages.get(i))
                            .find(|m| m.status() == Some(code))
                    {
                        leg.failure = Some(Failure {
                            time: at,
                            status: code,
                            reason: match &m.kind {
                                crate::flow::Kind::Response { reason, .. } => {
                                    crate::sanitize::terminal(reason).into_owned()
                                }
                                crate::flow::Kind::Request { .. } => String::new(),
                            },
                            cause: m
                                .reason_header()
                                .map(|r| crate::sanitize::terminal(r).into_owned()),
                            from: m.src,
                            to: m.dst,
                        });
                    }
                }
            }
            leg.hops.sort_by_key(|h| h.time);
            leg.origin = first.sdp_origin();
        }
        for m in messages {
            if m.retransmission {
                continue;
            }
            match m.method() {
                Some(x) if x.eq_ignore_ascii_case("BYE") => {
                    leg.bye = leg.bye.or(Some(m.time));
                }
                Some(x) if x.eq_ignore_ascii_case("CANCEL") => {
                    leg.cancel = leg.cancel.or(Some(m.time));
                }
                _ => {}
            }
            let Some(h) = m.leg_headers() else {
                continue;
            };
            for id in [&h.session_id, &h.session_remote].into_iter().flatten() {
                if leg.session_ids.len() < 4 && !leg.session_ids.iter().any(|s| s == id.as_str()) {
                    leg.session_ids.push(id.to_string());
                }
            }
            if leg.icid.is_none() {
                leg.icid = h.icid.as_ref().map(|s| s.to_string());
            }
            if let Some(r) = &h.replaces
                && leg.replaces.len() < 4
                && !leg.replaces.iter().any(|x| x == r.as_str())
            {
                leg.replaces.push(r.to_string());
            }
            if m.method().is_some_and(|x| x.eq_ignore_ascii_case("REFER"))
                && leg.refer.is_none()
                && let Some(target) = &h.refer_to_user
            {
                leg.refer = Some((
                    m.time,
                    h.referrer_user.as_ref().map(|u| u.to_string()),
                    target.to_string(),
                ));
            }
            // The first INVITE that names them (a re-INVITE may too).
            if m.method().is_some_and(is_invite) {
                let first = |kept: &mut Option<String>, seen: &Option<CompactString>| {
                    if kept.is_none() {
                        *kept = seen.as_ref().map(|s| s.to_string());
                    }
                };
                first(&mut leg.referred_by, &h.referred_by_user);
                first(&mut leg.asserted, &h.asserted_user);
                first(&mut leg.diversion, &h.diversion_user);
            }
        }
        for s in call.media.iter().take(8) {
            leg.ssrcs.push((s.ssrc, s.start));
        }
        leg
    }

    /// When the leg's first INVITE was first sent.
    pub fn start(&self) -> Option<Timestamp> {
        self.hops.first().map(|h| h.time)
    }
}

/// Digits of a telephone number with its visual separators gone (`+1 (555) 010-0199` is
/// `15550100199`), or `None` for a user part that is not a number.
fn digits(user: &str) -> Option<String> {
    let user = user.trim();
    let user = user.strip_prefix('+').unwrap_or(user);
    let d: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    (d.len() >= 3 && d.chars().all(|c| c.is_ascii_digit())).then_some(d)
}

/// A user part made ready for comparison once ([`same_party`]): its digits when it is a
/// number (leading zeros aside), else its text lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartyKey {
    number: Option<String>,
    text: String,
}

impl PartyKey {
    fn of(user: &str) -> PartyKey {
        PartyKey {
            number: digits(user).map(|d| d.trim_start_matches('0').to_string()),
            text: user.trim().to_ascii_lowercase(),
        }
    }

    fn same(&self, other: &PartyKey) -> bool {
        match (&self.number, &other.number) {
            (Some(x), Some(y)) => {
                let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
                if short.len() < 6 {
                    return short == long;
                }
                long.ends_with(short.as_str()) && long.len() - short.len() <= 5
            }
            _ => !self.text.is_empty() && self.text == other.text,
        }
    }
}

/// Two user parts name the same party: equal text, or numbers equal once international
/// and national prefixes are set aside (`+4930123456`, `004930123456` and `030123456` are
/// one number: the shorter, of at least six digits, ends the longer, which has at most four
/// more).
pub fn same_party(a: &str, b: &str) -> bool {
    PartyKey::of(a).same(&PartyKey::of(b))
}

/// A leg's parties made ready for comparison once, before the pairs are scored.
#[derive(Debug, Default)]
struct PartyKeys {
    dialled: Option<PartyKey>,
    callers: Vec<PartyKey>,
    diversion: Option<PartyKey>,
    referred_by: Option<PartyKey>,
    /// A REFER's sender and target.
    referrer: Option<PartyKey>,
    target: Option<PartyKey>,
}

impl PartyKeys {
    fn of(l: &Leg) -> PartyKeys {
        let key = |s: &Option<String>| s.as_deref().map(PartyKey::of);
        PartyKeys {
            dialled: key(&l.dialled),
            callers: [&l.caller, &l.asserted]
                .into_iter()
                .flatten()
                .map(|s| PartyKey::of(s))
                .collect(),
            diversion: key(&l.diversion),
            referred_by: key(&l.referred_by),
            referrer: l.refer.as_ref().and_then(|(_, from, _)| key(from)),
            target: l.refer.as_ref().map(|(_, _, t)| PartyKey::of(t)),
        }
    }
}

/// Whether two optional parties are known and the same.
fn both_same(a: &Option<PartyKey>, b: &Option<PartyKey>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x.same(y))
}

/// Kinds of evidence, as the JSON names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    XCallId,
    Topoh,
    SessionId,
    Icid,
    Replaces,
    ReferredBy,
    B2buaAddress,
    DialledNumber,
    Caller,
    Diversion,
    Timing,
    SdpOrigin,
    RtpSsrc,
    MirroredRinging,
    MirroredAnswer,
    MirroredFailure,
    MirroredBye,
    MirroredCancel,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        use EvidenceKind::*;
        match self {
            XCallId => "x_call_id",
            Topoh => "topoh",
            SessionId => "session_id",
            Icid => "icid",
            Replaces => "replaces",
            ReferredBy => "referred_by",
            B2buaAddress => "b2bua_address",
            DialledNumber => "dialled_number",
            Caller => "caller",
            Diversion => "diversion",
            Timing => "timing",
            SdpOrigin => "sdp_origin",
            RtpSsrc => "rtp_ssrc",
            MirroredRinging => "mirrored_ringing",
            MirroredAnswer => "mirrored_answer",
            MirroredFailure => "mirrored_failure",
            MirroredBye => "mirrored_bye",
            MirroredCancel => "mirrored_cancel",
        }
    }

    fn weak(self) -> bool {
        use EvidenceKind::*;
        matches!(
            self,
            B2buaAddress | DialledNumber | Caller | Diversion | Timing
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub points: u32,
    /// One line for a person, wire strings sanitised.
    pub detail: String,
}

/// Two legs tied together: `from` is the earlier (the side nearer the caller).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub from: usize,
    pub to: usize,
    pub score: u32,
    pub evidence: Vec<Evidence>,
}

impl Link {
    pub fn explicit(&self) -> bool {
        self.score >= EXPLICIT
    }
}

/// A leg with more than one candidate of similar score: reported, not linked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ambiguity {
    pub leg: usize,
    pub candidates: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub id: usize,
    /// Legs by position in the list given, in the order their INVITEs began.
    pub legs: Vec<usize>,
    pub links: Vec<Link>,
}

/// The groups of a list of legs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Grouping {
    /// Groups of two legs or more, in the order of their first leg.
    pub groups: Vec<Group>,
    /// Per leg, its group's position in `groups` (`None`: a call of one leg).
    pub group_of: Vec<Option<usize>>,
    pub ambiguous: Vec<Ambiguity>,
    /// Legs with more INVITEs in the window before them than [`MAX_CANDIDATES`]: not scored.
    pub crowded: u64,
    pub threshold: u32,
}

impl Grouping {
    /// The other legs of `leg`'s group, in group order.
    pub fn others(&self, leg: usize) -> Vec<usize> {
        self.group_of
            .get(leg)
            .copied()
            .flatten()
            .and_then(|g| self.groups.get(g))
            .map(|g| g.legs.iter().copied().filter(|&l| l != leg).collect())
            .unwrap_or_default()
    }
}

struct Unions(Vec<usize>);

impl Unions {
    fn find(&mut self, mut x: usize) -> usize {
        while let Some(&p) = self.0.get(x) {
            if p == x {
                break;
            }
            let grand = self.0.get(p).copied().unwrap_or(p);
            if let Some(slot) = self.0.get_mut(x) {
                *slot = grand;
            }
            x = p;
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb
            && let Some(slot) = self.0.get_mut(ra.max(rb))
        {
            *slot = ra.min(rb);
        }
    }
}

fn ms(i: Interval) -> i64 {
    i.as_millis()
}

/// How many legs carry each SDP origin and RTP SSRC: a value many legs share (a test tool's
/// constant, a replayed recording) is no evidence.
#[derive(Default)]
struct Common<'l> {
    origins: HashMap<&'l str, usize>,
    ssrcs: HashMap<u32, usize>,
}

/// Evidence for `b` being the leg that `a` became at the next element (`a` began first).
fn score(
    (a, ka): (&Leg, &PartyKeys),
    (b, kb): (&Leg, &PartyKeys),
    config: &GroupConfig,
    common: &Common<'_>,
) -> Option<Link> {
    let b_hop = b.hops.first()?;
    // A transfer: `b` carries Referred-By and began after a REFER of `a`. The transferee
    // places it from its own address, once `a` was answered.
    let transfer =
        b.referred_by.is_some() && a.refer.as_ref().is_some_and(|(at, _, _)| b_hop.time >= *at);
    // A B2BUA places the next leg while the first waits for its answer: a leg that began
    // after the first was answered or refused is another call.
    let settled = [a.answered, a.failure.as_ref().map(|f| f.time)]
        .into_iter()
        .flatten()
        .min();
    if !transfer && settled.is_some_and(|s| s < b_hop.time) {
        return None;
    }
    // The INVITE of `b` left an address that one of `a`'s hops reached, shortly after: the
    // same socket, or the same host when the legs' ends are on other hosts (on one host,
    // loopback captures, every address shares the IP and says nothing).
    let arrival = a
        .hops
        .iter()
        .filter(|h| h.time <= b_hop.time)
        .filter_map(|h| {
            if h.dst == b_hop.src {
                Some((h.time, 20))
            } else if h.dst.ip() == b_hop.src.ip()
                && h.src.ip() != h.dst.ip()
                && b_hop.dst.ip() != b_hop.src.ip()
            {
                Some((h.time, 10))
            } else {
                None
            }
        })
        .max();
    // Leg `b` leaves from where `a`'s caller sent it (the same socket, or the caller's host on
    // a capture of several hosts): the same party calling again, not an element going on.
    let a_first = a.hops.first()?;
    let single_host = a_first.src.ip() == a_first.dst.ip();
    if !transfer
        && (b_hop.src == a_first.src || (!single_host && b_hop.src.ip() == a_first.src.ip()))
    {
        return None;
    }
    let dialled = match (&a.dialled, &b.dialled) {
        (Some(_), Some(_)) => both_same(&ka.dialled, &kb.dialled),
        _ => false,
    };
    // Neither the element nor the number nor a transfer: not a candidate at all.
    if arrival.is_none() && !dialled && !transfer {
        return None;
    }
    // On a capture of several hosts, a leg that leaves from no address the first one reached
    // is tied to it only by what an element passes through (its RTP, its SDP origin) or by
    // a transfer: numbers and timing are shared by unrelated calls.
    let elsewhere = arrival.is_none() && !single_host && !transfer;
    let a_start = a.start()?;
    let since = b_hop.time.since(arrival.map_or(a_start, |(t, _)| t));
    if b_hop.time < a_start || (since > config.window && !transfer) {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((at, points)) = arrival {
        evidence.push(Evidence {
            kind: EvidenceKind::B2buaAddress,
            points,
            detail: format!(
                "INVITE left {} {} ms after one arrived there",
                if points == 20 {
                    b_hop.src.to_string()
                } else {
                    b_hop.src.ip().to_string()
                },
                ms(b_hop.time.since(at))
            ),
        });
    }
    if dialled {
        evidence.push(Evidence {
            kind: EvidenceKind::DialledNumber,
            points: 20,
            detail: format!(
                "same dialled party ({} / {})",
                clean(a.dialled.as_deref()),
                clean(b.dialled.as_deref())
            ),
        });
    }
    if ka
        .callers
        .iter()
        .any(|x| kb.callers.iter().any(|y| x.same(y)))
    {
        evidence.push(Evidence {
            kind: EvidenceKind::Caller,
            points: 10,
            detail: format!("same caller ({})", clean(a.caller.as_deref())),
        });
    }
    if let Some(d) = &b.diversion
        && both_same(&kb.diversion, &ka.dialled)
    {
        evidence.push(Evidence {
            kind: EvidenceKind::Diversion,
            points: 10,
            detail: format!(
                "Diversion names the first leg's dialled party ({})",
                clean(Some(d))
            ),
        });
    }
    if since <= Interval::from_millis(200) && since <= config.window {
        evidence.push(Evidence {
            kind: EvidenceKind::Timing,
            points: 10,
            detail: format!("{} ms apart", ms(since)),
        });
    }
    // A session id of a few digits ("o=- 2 …") is not distinctive.
    if let (Some(x), Some(y)) = (&a.origin, &b.origin)
        && x == y
        && x.rsplit(' ').next().is_some_and(|id| id.len() >= 6)
        && common
            .origins
            .get(x.as_str())
            .is_some_and(|&n| n <= MAX_SHARED)
    {
        evidence.push(Evidence {
            kind: EvidenceKind::SdpOrigin,
            points: 30,
            detail: format!("same SDP origin ({})", clean(Some(x))),
        });
    }
    if let Some((ssrc, _)) = a.ssrcs.iter().find(|(s, t)| {
        common.ssrcs.get(s).is_some_and(|&n| n <= MAX_SHARED)
            && b.ssrcs.iter().any(|(s2, t2)| {
                s == s2 && t.since(*t2).max(t2.since(*t)) <= Interval::from_millis(2000)
            })
    }) {
        evidence.push(Evidence {
            kind: EvidenceKind::RtpSsrc,
            points: 60,
            detail: format!("RTP SSRC 0x{ssrc:08x} relayed between the legs"),
        });
    }
    // The outer leg's response follows the inner one's: the element relayed it.
    let mirror = |outer: Option<Timestamp>, inner: Option<Timestamp>| match (outer, inner) {
        (Some(o), Some(i)) if o >= i && o.since(i) <= MIRROR => Some(ms(o.since(i))),
        _ => None,
    };
    // A BYE or CANCEL may go either way: the two legs' come within the mirror time.
    let near = |x: Option<Timestamp>, y: Option<Timestamp>| match (x, y) {
        (Some(x), Some(y)) if x.since(y).max(y.since(x)) <= MIRROR => {
            Some(ms(x.since(y).max(y.since(x))))
        }
        _ => None,
    };
    // Responses relayed one way ("… ms later"); BYEs and CANCELs either way ("… ms apart").
    let relayed = [
        (
            EvidenceKind::MirroredRinging,
            15,
            mirror(a.ringing, b.ringing),
            "ringing relayed",
            "later",
        ),
        (
            EvidenceKind::MirroredAnswer,
            25,
            mirror(a.answered, b.answered),
            "answer relayed",
            "later",
        ),
        (
            EvidenceKind::MirroredBye,
            15,
            near(a.bye, b.bye),
            "BYEs",
            "apart",
        ),
        (
            EvidenceKind::MirroredCancel,
            15,
            near(a.cancel, b.cancel),
            "CANCELs",
            "apart",
        ),
    ];
    for (kind, points, d, what, how) in relayed {
        if let Some(d) = d {
            evidence.push(Evidence {
                kind,
                points,
                detail: format!("{what} {d} ms {how}"),
            });
        }
    }
    if let (Some(fa), Some(fb)) = (&a.failure, &b.failure)
        && let Some(d) = mirror(Some(fa.time), Some(fb.time))
    {
        evidence.push(Evidence {
            kind: EvidenceKind::MirroredFailure,
            points: 25,
            detail: format!("{} answered {} ms after {}", fa.status, d, fb.status),
        });
    }
    if let (Some((at, _, target)), Some(by)) = (&a.refer, &b.referred_by)
        && b_hop.time >= *at
        && both_same(&ka.referrer, &kb.referred_by)
        && both_same(&kb.dialled, &ka.target)
    {
        evidence.push(Evidence {
            kind: EvidenceKind::ReferredBy,
            points: 60,
            detail: format!(
                "transferred by {} to {}",
                clean(Some(by)),
                clean(Some(target))
            ),
        });
    }
    if elsewhere
        && !evidence
            .iter()
            .any(|e| matches!(e.kind, EvidenceKind::RtpSsrc | EvidenceKind::SdpOrigin))
    {
        return None;
    }
    let weak: u32 = evidence
        .iter()
        .filter(|e| e.kind.weak())
        .map(|e| e.points)
        .sum();
    let strong: u32 = evidence
        .iter()
        .filter(|e| !e.kind.weak())
        .map(|e| e.points)
        .sum();
    Some(Link {
        from: 0,
        to: 0,
        score: weak.min(WEAK_CAP) + strong,
        evidence,
    })
}

fn clean(s: Option<&str>) -> String {
    crate::sanitize::terminal(s.unwrap_or("?")).into_owned()
}

/// Legs whose INVITEs come by time: the transfers' and B2BUAs' REFERs and Referred-By may
/// come much later than the window, so a REFER opens its own window.
const TRANSFER_WINDOW: Interval = Interval::from_secs(32);

/// Groups `legs`.
pub fn correlate(legs: &[Leg], config: &GroupConfig) -> Grouping {
    let n = legs.len();
    let mut links: Vec<Link> = Vec::new();
    let by_id: HashMap<&str, usize> = legs
        .iter()
        .enumerate()
        .map(|(i, l)| (&*l.call_id, i))
        .collect();
    let ordered = |a: usize, b: usize| {
        let key = |i: usize| legs.get(i).map(|l| (l.start(), l.seq));
        if key(a) <= key(b) { (a, b) } else { (b, a) }
    };
    // Where each pair's link is in `links`: a capture whose every call names its other leg
    // has as many links as calls.
    let mut linked: HashMap<(usize, usize), usize> = HashMap::new();
    let mut explicit = |a: usize, b: usize, kind: EvidenceKind, detail: String| {
        if a == b {
            return;
        }
        let (from, to) = ordered(a, b);
        let evidence = Evidence {
            kind,
            points: EXPLICIT,
            detail,
        };
        match linked.get(&(from, to)).and_then(|&k| links.get_mut(k)) {
            Some(l) => {
                if !l.evidence.iter().any(|e| e.kind == kind) {
                    l.evidence.push(evidence);
                }
            }
            None => {
                linked.insert((from, to), links.len());
                links.push(Link {
                    from,
                    to,
                    score: EXPLICIT,
                    evidence: vec![evidence],
                });
            }
        }
    };
    let masks: Vec<topoh::Mask> = config
        .topoh_keys
        .iter()
        .filter_map(|k| topoh::Mask::new(k))
        .collect();
    for (i, leg) in legs.iter().enumerate() {
        if let Some(x) = &leg.x_call_id
            && let Some(&j) = by_id.get(x.as_str())
        {
            explicit(
                i,
                j,
                EvidenceKind::XCallId,
                format!("X-Call-ID names {}", clean(Some(x))),
            );
        }
        for r in &leg.replaces {
            if let Some(&j) = by_id.get(r.as_str()) {
                explicit(
                    i,
                    j,
                    EvidenceKind::Replaces,
                    format!("Replaces names {}", clean(Some(r))),
                );
            }
        }
        if leg.call_id.starts_with(topoh::PREFIX)
            && let Some((j, original)) = masks.iter().find_map(|m| {
                let original = m.unmask(&leg.call_id)?;
                Some((*by_id.get(original.as_str())?, original))
            })
        {
            explicit(
                i,
                j,
                EvidenceKind::Topoh,
                format!("topoh-masked Call-ID unmasks to {}", clean(Some(&original))),
            );
        }
    }
    // Shared identifiers: the legs that carry one, linked in time order.
    let shared = |label: &str, key: &dyn Fn(&Leg) -> Vec<&str>| {
        let mut carriers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, l) in legs.iter().enumerate() {
            for k in key(l) {
                carriers.entry(k).or_default().push(i);
            }
        }
        let mut found: Vec<(usize, usize, String)> = Vec::new();
        for (k, mut v) in carriers {
            v.dedup();
            if v.len() < 2 || v.len() > MAX_SHARED {
                continue;
            }
            v.sort_by_key(|&i| legs.get(i).map(|l| (l.start(), l.seq)));
            for w in v.windows(2) {
                if let [a, b] = *w {
                    found.push((a, b, format!("same {label} {}", clean(Some(k)))));
                }
            }
        }
        found.sort();
        found
    };
    let mut found = shared("Session-ID", &|l| {
        l.session_ids.iter().map(String::as_str).collect()
    })
    .into_iter()
    .map(|(a, b, d)| (a, b, EvidenceKind::SessionId, d))
    .collect::<Vec<_>>();
    found.extend(
        shared("icid-value", &|l| {
            l.icid.iter().map(String::as_str).collect()
        })
        .into_iter()
        .map(|(a, b, d)| (a, b, EvidenceKind::Icid, d)),
    );
    for (a, b, kind, detail) in found {
        explicit(a, b, kind, detail);
    }
    // Heuristic candidates: for each leg, the legs whose INVITE began within the window
    // before it (or since a REFER of theirs).
    let keys: Vec<PartyKeys> = legs.iter().map(PartyKeys::of).collect();
    let mut common = Common::default();
    for l in legs {
        if let Some(o) = &l.origin {
            *common.origins.entry(o.as_str()).or_default() += 1;
        }
        let mut seen: Vec<u32> = l.ssrcs.iter().map(|(s, _)| *s).collect();
        seen.sort_unstable();
        seen.dedup();
        for s in seen {
            *common.ssrcs.entry(s).or_default() += 1;
        }
    }
    let mut order: Vec<usize> = (0..n)
        .filter(|&i| legs.get(i).is_some_and(|l| l.start().is_some()))
        .collect();
    order.sort_by_key(|&i| legs.get(i).and_then(Leg::start));
    let start_of = |i: usize| legs.get(i).and_then(Leg::start).unwrap_or_default();
    let transferring: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| legs.get(i).is_some_and(|l| l.refer.is_some()))
        .collect();
    let mut candidates: Vec<Link> = Vec::new();
    let mut crowded = 0u64;
    for (pos, &b) in order.iter().enumerate() {
        let Some(leg_b) = legs.get(b) else { continue };
        let tb = start_of(b);
        let earlier = order.get(..pos).unwrap_or(&[]);
        let from = earlier.partition_point(|&a| tb.since(start_of(a)) > config.window);
        let mut near: Vec<usize> = earlier.get(from..).unwrap_or(&[]).to_vec();
        if near.len() > MAX_CANDIDATES {
            // More INVITEs in the window than can be told apart: no guess for this leg.
            crowded += 1;
            continue;
        }
        if leg_b.referred_by.is_some() {
            near.extend(transferring.iter().copied().filter(|&a| {
                a != b && start_of(a) <= tb && tb.since(start_of(a)) <= TRANSFER_WINDOW
            }));
            near.sort_unstable();
            near.dedup();
        }
        for a in near {
            let Some(leg_a) = legs.get(a) else { continue };
            if linked.contains_key(&(a, b)) {
                continue;
            }
            // Candidates a little under the threshold are kept too: they make a link that
            // reaches it ambiguous when they come close.
            let (Some(ka), Some(kb)) = (keys.get(a), keys.get(b)) else {
                continue;
            };
            if let Some(mut link) = score((leg_a, ka), (leg_b, kb), config, &common)
                && link.score + MARGIN > config.threshold
            {
                link.from = a;
                link.to = b;
                candidates.push(link);
            }
        }
    }
    // A candidate is taken when it is the clear best of both its legs.
    let mut outs: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut ins: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, c) in candidates.iter().enumerate() {
        outs.entry(c.from).or_default().push(k);
        ins.entry(c.to).or_default().push(k);
    }
    let score_of = |k: &usize| candidates.get(*k).map_or(0, |c| c.score);
    for v in outs.values_mut().chain(ins.values_mut()) {
        v.sort_by_key(|k| std::cmp::Reverse(score_of(k)));
    }
    let clear = |v: Option<&Vec<usize>>, k: usize| -> bool {
        v.is_some_and(|v| {
            v.first() == Some(&k)
                && v.get(1)
                    .is_none_or(|s| score_of(s) + MARGIN <= score_of(&k))
        })
    };
    let mut ambiguous: Vec<Ambiguity> = Vec::new();
    for (k, c) in candidates.iter().enumerate() {
        if c.score >= config.threshold && clear(outs.get(&c.from), k) && clear(ins.get(&c.to), k) {
            links.push(c.clone());
        }
    }
    let mut unclear: Vec<(usize, &Vec<usize>)> = outs
        .iter()
        .chain(ins.iter())
        .filter(|(_, v)| {
            matches!((v.first(), v.get(1)), (Some(f), Some(s))
                if score_of(f) >= config.threshold && score_of(s) + MARGIN > score_of(f))
        })
        .map(|(leg, v)| (*leg, v))
        .collect();
    unclear.sort_by_key(|(leg, _)| *leg);
    for (leg, v) in unclear {
        if ambiguous.last().is_some_and(|a| a.leg == leg) {
            continue;
        }
        ambiguous.push(Ambiguity {
            leg,
            candidates: v
                .iter()
                .take(4)
                .filter_map(|k| candidates.get(*k).cloned())
                .collect(),
        });
    }
    let mut unions = Unions((0..n).collect());
    for l in &links {
        unions.union(l.from, l.to);
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let root = unions.find(i);
        members.entry(root).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = members.into_values().filter(|m| m.len() > 1).collect();
    for g in &mut groups {
        g.sort_by_key(|&i| legs.get(i).map(|l| (l.start().is_none(), l.start(), l.seq)));
    }
    groups.sort_by_key(|g| {
        g.first()
            .and_then(|&i| legs.get(i))
            .map(|l| (l.start(), l.seq))
    });
    let mut group_of = vec![None; n];
    for (id, legs_of) in groups.iter().enumerate() {
        for &l in legs_of {
            if let Some(slot) = group_of.get_mut(l) {
                *slot = Some(id);
            }
        }
    }
    let mut links_of: HashMap<usize, Vec<Link>> = HashMap::new();
    for l in links {
        if let Some(g) = group_of.get(l.from).copied().flatten() {
            links_of.entry(g).or_default().push(l);
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (id, legs_of) in groups.into_iter().enumerate() {
        let mut own = links_of.remove(&id).unwrap_or_default();
        own.sort_by_key(|l| (l.from, l.to));
        out.push(Group {
            id,
            legs: legs_of,
            links: own,
        });
    }
    Grouping {
        groups: out,
        group_of,
        ambiguous,
        crowded,
        threshold: config.threshold,
    }
}

#[cfg(test)]
mod tests;
