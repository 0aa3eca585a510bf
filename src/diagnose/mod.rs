//! Diagnosis: anomaly rules, the per-call verdict ("why did this call fail"), the hop graph
//! and statistics. Reads the call model that [`crate::flow`] built and never changes it; knows
//! nothing of packets, parsing or output formats.
//!
//! Each rule is its own module in [`rules`] with a stable `kind` name. Thresholds come from
//! the RFC 3261 timers (T1 = 500 ms, 64·T1 = 32 s) and are configurable
//! ([`DiagnoseConfig`]). Rules speak of what was *seen at this capture point*: a message the
//! capture missed is not proof that it was never sent.

pub mod group;
pub mod hops;
pub mod media;
pub mod rules;
pub mod stats;
pub mod verdict;

use crate::flow::{Call, CallSummary, SipMessage, Transaction};
use crate::time::{Interval, Timestamp};
use serde::Serialize;

pub use hops::HopGraph;
pub use verdict::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The stable names of the anomaly kinds (the `kind` field in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    MissingAck,
    NoFinalResponse,
    Retransmission,
    ForwardingLoop,
    TooManyHops,
    TransactionDoesNotExist,
    AuthLoop,
    AuthFailed,
    SdpMismatch,
    PrivateAddress,
    CancelRace,
    SlowSetup,
    Malformed,
    PrackMissing,
    SessionTimerExpired,
    Glare,
    RegistrationFailed,
    NoMedia,
    OneWayMedia,
    MediaAddressMismatch,
    PacketLoss,
    HighJitter,
    MediaTimeout,
    CodecMismatch,
    RtpAfterBye,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 25] = [
        AnomalyKind::MissingAck,
        AnomalyKind::NoFinalResponse,
        AnomalyKind::Retransmission,
        AnomalyKind::ForwardingLoop,
        AnomalyKind::TooManyHops,
        AnomalyKind::TransactionDoesNotExist,
        AnomalyKind::AuthLoop,
        AnomalyKind::AuthFailed,
        AnomalyKind::SdpMismatch,
        AnomalyKind::PrivateAddress,
        AnomalyKind::CancelRace,
        AnomalyKind::SlowSetup,
        AnomalyKind::Malformed,
        AnomalyKind::PrackMissing,
        AnomalyKind::SessionTimerExpired,
        AnomalyKind::Glare,
        AnomalyKind::RegistrationFailed,
        AnomalyKind::NoMedia,
        AnomalyKind::OneWayMedia,
        AnomalyKind::MediaAddressMismatch,
        AnomalyKind::PacketLoss,
        AnomalyKind::HighJitter,
        AnomalyKind::MediaTimeout,
        AnomalyKind::CodecMismatch,
        AnomalyKind::RtpAfterBye,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::MissingAck => "missing_ack",
            AnomalyKind::NoFinalResponse => "no_final_response",
            AnomalyKind::Retransmission => "retransmission",
            AnomalyKind::ForwardingLoop => "forwarding_loop",
            AnomalyKind::TooManyHops => "too_many_hops",
            AnomalyKind::TransactionDoesNotExist => "transaction_does_not_exist",
            AnomalyKind::AuthLoop => "auth_loop",
            AnomalyKind::AuthFailed => "auth_failed",
            AnomalyKind::SdpMismatch => "sdp_mismatch",
            AnomalyKind::PrivateAddress => "private_address",
            AnomalyKind::CancelRace => "cancel_race",
            AnomalyKind::SlowSetup => "slow_setup",
            AnomalyKind::Malformed => "malformed",
            AnomalyKind::PrackMissing => "prack_missing",
            AnomalyKind::SessionTimerExpired => "session_timer_expired",
            AnomalyKind::Glare => "glare",
            AnomalyKind::RegistrationFailed => "registration_failed",
            AnomalyKind::NoMedia => "no_media",
            AnomalyKind::OneWayMedia => "one_way_media",
            AnomalyKind::MediaAddressMismatch => "media_address_mismatch",
            AnomalyKind::PacketLoss => "packet_loss",
            AnomalyKind::HighJitter => "high_jitter",
            AnomalyKind::MediaTimeout => "media_timeout",
            AnomalyKind::CodecMismatch => "codec_mismatch",
            AnomalyKind::RtpAfterBye => "rtp_after_bye",
        }
    }

    /// Whether the kind is concluded from a message that was not seen: a capture that lost
    /// bytes of the call's connection cannot tell it from a message it failed to hold.
    pub fn is_absence(self) -> bool {
        matches!(
            self,
            AnomalyKind::MissingAck
                | AnomalyKind::NoFinalResponse
                | AnomalyKind::PrackMissing
                | AnomalyKind::SessionTimerExpired
        )
    }

    /// Kinds concluded from the RTP and RTCP streams rather than the signalling.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            AnomalyKind::NoMedia
                | AnomalyKind::OneWayMedia
                | AnomalyKind::MediaAddressMismatch
                | AnomalyKind::PacketLoss
                | AnomalyKind::HighJitter
                | AnomalyKind::MediaTimeout
                | AnomalyKind::CodecMismatch
                | AnomalyKind::RtpAfterBye
        )
    }

    pub fn parse(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One finding on a call: `{kind, severity, summary, messages, reference}` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub severity: Severity,
    /// One sentence for people; names hops as `ip:port → ip:port` and times from the call's
    /// first message.
    pub summary: String,
    /// Indexes of the evidence messages in the call.
    pub messages: Vec<usize>,
    /// The RFC sections the rule follows.
    pub reference: &'static str,
    /// Indexes of the evidence streams in the call's media (`Call::media`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<usize>,
}

/// Thresholds. The timer defaults are RFC 3261's; the setup thresholds are operational
/// choices (documented in `docs/anomalies.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DiagnoseConfig {
    /// RFC 3261 T1; 64·T1 is how long a transaction may wait (Timer B/F/H).
    pub t1: Interval,
    /// RFC 3261 §16.6 step 11: how long a proxy lets a ringing INVITE wait (Timer C, > 3 min).
    pub timer_c: Interval,
    /// Post-dial delay (INVITE → first 18x) above which a call is slow to set up, seconds.
    pub pdd_threshold: f64,
    /// Setup time (INVITE → 2xx) above which a call is slow to set up, seconds.
    pub setup_threshold: f64,
    /// Challenges without success that make an authentication loop.
    pub auth_challenges: usize,
    /// Loss above which a stream has `packet_loss`, percent of the expected packets.
    pub loss_threshold: f64,
    /// Mean jitter above which a stream has `high_jitter`, milliseconds.
    pub jitter_threshold: f64,
    /// Silence before the end of a dialog after which its media has `media_timeout`, seconds.
    pub media_timeout: f64,
}

impl Default for DiagnoseConfig {
    fn default() -> Self {
        DiagnoseConfig {
            t1: Interval::from_millis(500),
            timer_c: crate::flow::call::TIMER_C,
            pdd_threshold: 5.0,
            setup_threshold: 30.0,
            auth_challenges: 3,
            loss_threshold: 1.0,
            jitter_threshold: 30.0,
            media_timeout: 10.0,
        }
    }
}

impl DiagnoseConfig {
    /// 64·T1.
    pub fn timeout(&self) -> Interval {
        self.t1.saturating_mul(64)
    }
}

/// Everything the diagnosis says about one call.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The call's outcome and timings, as the rules saw them (computed once per call).
    #[serde(skip)]
    pub summary: CallSummary,
    pub verdict: Verdict,
    pub anomalies: Vec<Anomaly>,
    pub hops: HopGraph,
}

impl Diagnosis {
    /// True when nothing is wrong: no anomaly above info and a call that did not fail.
    pub fn is_clean(&self) -> bool {
        !self.verdict.failed && self.anomalies.iter().all(|a| a.severity == Severity::Info)
    }
}

/// Diagnoses a call. `now` is the capture time reached (the end of the capture for a file):
/// a rule that waits for a timer only fires once the timer ran out before `now`, or when
/// retransmissions show a side still waiting.
pub fn diagnose(call: &Call, now: Timestamp, config: &DiagnoseConfig) -> Diagnosis {
    let now = call.as_of(now);
    let summary = call.summary(now);
    let mut cx = Ctx {
        call,
        now,
        config,
        summary: &summary,
        media: None,
    };
    cx.media = media::MediaView::of(&cx);
    let mut anomalies = Vec::new();
    for rule in rules::ALL {
        rule(&cx, &mut anomalies);
    }
    if call.lost_bytes > 0 {
        // What the capture did not hold may be what these rules found missing.
        for a in anomalies.iter_mut().filter(|a| a.kind.is_absence()) {
            if a.severity == Severity::Error {
                a.severity = Severity::Warning;
            }
            a.summary.push_str("; ");
            a.summary.push_str(&lost_note(call.lost_bytes));
        }
    }
    anomalies.sort_by_key(|a| (std::cmp::Reverse(a.severity), a.messages.first().copied()));
    let hops = HopGraph::build(call);
    let verdict = verdict::verdict(&cx, &anomalies);
    Diagnosis {
        summary,
        verdict,
        anomalies,
        hops,
    }
}

/// What a call's verdict and absence-based findings say when its TCP connections lost bytes.
pub fn lost_note(bytes: u64) -> String {
    format!(
        "{} byte{} of this call's TCP traffic {} not captured or could not be decoded, so what \
         was not seen may be missing from the capture only",
        thousands(bytes),
        if bytes == 1 { "" } else { "s" },
        if bytes == 1 { "was" } else { "were" },
    )
}

/// `1974` → `1,974`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Candidates of one kind a rule examines in one call. A finding often needs a search of the
/// call (the request a response answers, the PRACK of a reliable 18x); capping the candidates
/// keeps a hostile call of 100,000 messages linear, and its report readable. Past the cap,
/// candidates are only counted, and one more finding says how many were not examined.
pub(crate) const MAX_CANDIDATES: usize = 64;

/// Counts the candidates of one rule against [`MAX_CANDIDATES`].
pub(crate) struct Budget {
    kind: AnomalyKind,
    reference: &'static str,
    examined: usize,
    skipped: usize,
}

impl Budget {
    pub(crate) fn new(kind: AnomalyKind, reference: &'static str) -> Budget {
        Budget {
            kind,
            reference,
            examined: 0,
            skipped: 0,
        }
    }

    /// True when one more candidate may be examined; false (and counted) past the cap.
    pub(crate) fn take(&mut self) -> bool {
        if self.examined < MAX_CANDIDATES {
            self.examined += 1;
            true
        } else {
            self.skipped += 1;
            false
        }
    }

    /// Says, as a finding, how many candidates were not examined.
    pub(crate) fn finish(self, out: &mut Vec<Anomaly>) {
        if self.skipped > 0 {
            out.push(Anomaly {
                kind: self.kind,
                severity: Severity::Info,
                summary: format!(
                    "{} more candidates for {} in this call were not examined (at most \
                     {MAX_CANDIDATES} per call)",
                    self.skipped,
                    self.kind.as_str()
                ),
                messages: Vec::new(),
                reference: self.reference,
                streams: Vec::new(),
            });
        }
    }
}

/// A set for the rules' de-duplication (keyed per process, like every wire-keyed table).
pub(crate) type Seen<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// What every rule reads: the call, the time reached, the thresholds and the call summary.
pub struct Ctx<'a> {
    pub call: &'a Call,
    pub now: Timestamp,
    pub config: &'a DiagnoseConfig,
    pub summary: &'a CallSummary,
    /// The media side of an answered INVITE call (`None` otherwise, or with media analysis
    /// off).
    pub media: Option<media::MediaView<'a>>,
}

impl<'a> Ctx<'a> {
    pub fn msg(&self, i: usize) -> Option<&'a SipMessage> {
        self.call.messages.get(i)
    }

    pub fn tx(&self, i: usize) -> Option<&'a Transaction> {
        self.call.transactions.get(i)
    }

    pub fn messages_of(&self, t: &'a Transaction) -> impl Iterator<Item = &'a SipMessage> + 'a {
        let call = self.call;
        t.messages.iter().filter_map(move |&i| call.messages.get(i))
    }

    /// The transaction's request (the first copy), if it was captured. An ACK for a non-2xx
    /// final belongs to its INVITE's transaction and is not its request.
    pub fn request_of(&self, t: &'a Transaction) -> Option<&'a SipMessage> {
        self.messages_of(t)
            .find(|m| m.method().is_some_and(|meth| meth == t.method.as_str()))
    }

    /// The request a response answers (on the response's hop), if it was captured.
    pub fn request_for(&self, response: &SipMessage) -> Option<&'a SipMessage> {
        response
            .transaction
            .and_then(|t| self.tx(t as usize))
            .and_then(|t| self.request_of(t))
    }

    /// Evidence for a response: its request (when captured), then the response.
    pub fn with_request(&self, response: &SipMessage) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .request_for(response)
            .map(|r| r.index)
            .into_iter()
            .collect();
        v.push(response.index);
        v
    }

    /// The originator's out-of-dialog requests with the call's first method, in order: the
    /// attempts of a registration or a call (authentication retries included).
    pub fn attempts(&self) -> impl Iterator<Item = &'a Transaction> + 'a {
        let first = self.call.transactions.first();
        self.call.transactions.iter().filter(move |t| {
            first.is_some_and(|f| t.client == f.client && t.method == f.method && !t.in_dialog)
        })
    }

    /// The first final response of the transaction, if it was captured.
    pub fn final_of(&self, t: &'a Transaction) -> Option<&'a SipMessage> {
        self.messages_of(t)
            .find(|m| m.status().is_some_and(|s| s >= 200))
    }

    /// Seconds since the call's first message, for summaries.
    pub fn at(&self, t: Timestamp) -> String {
        format!("+{:.3} s", t.seconds_since(self.call.start()))
    }

    /// True when 64·T1 has passed since `since` at the capture time reached.
    pub fn waited(&self, since: Timestamp) -> bool {
        self.now.since(since) >= self.config.timeout()
    }
}

/// `a → b` for summaries.
pub fn hop(from: std::net::SocketAddr, to: std::net::SocketAddr) -> String {
    format!("{from} → {to}")
}

/// A message as one line of evidence: `INVITE` or `486 Busy Here`, with its hop.
pub fn describe(m: &SipMessage) -> String {
    format!("{} {}", m.label(), hop(m.src, m.dst))
}

/// Seconds with two decimals, for lists of intervals.
pub fn secs(v: f64) -> String {
    format!("{v:.2}")
}
