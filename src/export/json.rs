//! The JSON wire format (version 1), documented in `docs/json-schema.md` with a JSON Schema in
//! `docs/sipscope.schema.json`. Views borrow the model and serialize on the fly, so a large
//! export is never held twice in memory. Field names here are a contract: add, never rename.

use crate::engine::{EngineCounters, Orphan, SourceStats};
use crate::flow::{Call, Kind, SipMessage};
use crate::time::Timestamp;
use base64::Engine as _;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

pub const VERSION: u32 = 1;
/// The revision of version 1: fields are only added within a version, and each revision that
/// adds some is named here (1.1: media).
pub const SCHEMA_VERSION: &str = "1.4";

/// The top-level `scanners` array: the sources found scanning ([`crate::flow::scanner`]), most
/// requests first.
pub fn scanners(table: &crate::flow::scanner::ScannerTable) -> serde_json::Value {
    table
        .scanners()
        .iter()
        .map(|s| {
            let methods: serde_json::Map<String, serde_json::Value> = s
                .methods
                .iter()
                .map(|(m, n)| ((*m).to_string(), (*n).into()))
                .collect();
            serde_json::json!({
                "source": s.source.to_string(),
                "requests": s.requests,
                "refused": s.refused,
                "unanswered": s.unanswered,
                "methods": methods,
                "scanner_user_agent": s.agent_hints,
                "first": s.first.map(|t| t.to_rfc3339()),
                "last": s.last.map(|t| t.to_rfc3339()),
            })
        })
        .collect::<Vec<_>>()
        .into()
}

pub fn generator() -> String {
    format!("sipscope {}", env!("CARGO_PKG_VERSION"))
}

/// Options that change what is exported.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonOptions<'r> {
    /// Include each message's raw text.
    pub raw: bool,
    /// Where raw text the model does not keep is read back (the terminal UI's saves).
    pub raw_source: Option<&'r dyn crate::flow::message::RawSource>,
    /// Thresholds of the anomaly rules.
    pub diagnose: crate::diagnose::DiagnoseConfig,
    /// How legs are grouped (the defaults when `None`).
    pub grouping: Option<&'r crate::group::GroupConfig>,
}

#[derive(Serialize)]
pub struct PartyView<'a> {
    pub uri: &'a str,
    pub user: Option<&'a str>,
    pub display: Option<&'a str>,
}

#[derive(Serialize)]
struct CSeqView<'a> {
    seq: u32,
    method: &'a str,
}

/// One message, in the order of the call.
pub struct MessageView<'a> {
    pub msg: &'a SipMessage,
    pub opts: JsonOptions<'a>,
}

impl Serialize for MessageView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.msg;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("index", &m.index)?;
        map.serialize_entry("source", &m.source)?;
        map.serialize_entry("packet", &m.packet)?;
        map.serialize_entry("frames", m.frames())?;
        map.serialize_entry("time", &m.time.to_rfc3339())?;
        map.serialize_entry("src", &m.src.to_string())?;
        map.serialize_entry("dst", &m.dst.to_string())?;
        map.serialize_entry("transport", m.transport.as_str())?;
        match &m.kind {
            Kind::Request { method, uri } => {
                map.serialize_entry("method", method)?;
                map.serialize_entry("request_uri", uri)?;
            }
            Kind::Response { code, reason } => {
                map.serialize_entry("status", code)?;
                map.serialize_entry("reason", reason)?;
            }
        }
        map.serialize_entry(
            "cseq",
            &m.cseq
                .as_ref()
                .map(|(seq, method)| CSeqView { seq: *seq, method }),
        )?;
        map.serialize_entry("branch", &m.branch)?;
        map.serialize_entry("from_tag", &m.from_tag)?;
        map.serialize_entry("to_tag", &m.to_tag)?;
        map.serialize_entry("via_count", &m.via_count)?;
        map.serialize_entry("max_forwards", &m.max_forwards)?;
        map.serialize_entry("transaction", &m.transaction)?;
        map.serialize_entry("dialog", &m.dialog)?;
        map.serialize_entry("retransmission", &m.retransmission)?;
        map.serialize_entry("size", &m.size)?;
        map.serialize_entry("issues", m.issues())?;
        if let Some(r) = m.reason_header() {
            map.serialize_entry("reason_header", r)?;
        }
        if !m.sightings().is_empty() {
            let sightings: Vec<serde_json::Value> = m
                .sightings()
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "source": s.point.source,
                        "capture_id": s.point.capture_id,
                        "packet": s.packet,
                        "time": s.time.to_rfc3339(),
                        "delay": s.time.seconds_since(m.time),
                    })
                })
                .collect();
            map.serialize_entry("sightings", &sightings)?;
        }
        if let Some(w) = m.warning() {
            map.serialize_entry("warning", w)?;
        }
        if let Some(sdp) = m.sdp() {
            map.serialize_entry("sdp", &sdp)?;
        }
        if let Some(h) = m.hep() {
            map.serialize_entry(
                "hep",
                &serde_json::json!({
                    "version": h.version,
                    "capture_id": h.capture_id,
                    "node": h.node.as_deref(),
                    "correlation_id": h.correlation_id.as_deref(),
                }),
            )?;
        }
        // Malformed messages always carry their bytes (the evidence of what was wrong).
        let raw = if self.opts.raw {
            m.raw_or_read(self.opts.raw_source).ok()
        } else {
            m.raw().map(std::borrow::Cow::Borrowed)
        };
        if (self.opts.raw || m.is_malformed())
            && let Some(raw) = raw.as_deref()
        {
            match std::str::from_utf8(raw) {
                Ok(text) => map.serialize_entry("raw", text)?,
                Err(_) => map.serialize_entry(
                    "raw_base64",
                    &base64::engine::general_purpose::STANDARD.encode(raw),
                )?,
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct HopView {
    client: String,
    server: String,
}

#[derive(Serialize)]
struct TransactionView<'a> {
    id: usize,
    method: &'a str,
    branch: Option<&'a str>,
    cseq: u32,
    hop: HopView,
    request_seen: bool,
    messages: &'a [usize],
    final_status: Option<u16>,
    retransmissions: u32,
    /// Seconds from request to final response.
    response_time: Option<f64>,
    cancels: Option<usize>,
    acknowledges: Option<usize>,
}

#[derive(Serialize)]
struct DialogView<'a> {
    id: usize,
    from_tag: &'a str,
    to_tag: &'a str,
    state: crate::flow::DialogState,
    method: &'a str,
    messages: &'a [usize],
}

/// One call with everything the model knows about it.
pub struct CallView<'a> {
    pub call: &'a Call,
    pub now: Timestamp,
    pub opts: JsonOptions<'a>,
    /// Begun by a source found scanning ([`crate::flow::scanner`]).
    pub scanner: bool,
    /// The call's group in the document's `groups` (`Some(None)`: a call of one leg); `None`
    /// where calls are not grouped (NDJSON, written as each call ends).
    pub group: Option<Option<usize>>,
}

impl Serialize for CallView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.call;
        // Diagnosed once: the rules' summary also gives the outcome and timings below.
        let diagnosis = crate::diagnose::diagnose(c, self.now, &self.opts.diagnose);
        let sum = &diagnosis.summary;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("call_id", &*c.call_id)?;
        map.serialize_entry("first_method", c.first_method())?;
        map.serialize_entry("from", &party(&c.from))?;
        map.serialize_entry("to", &party(&c.to))?;
        map.serialize_entry("linked_call_id", &c.linked_call_id)?;
        if let Some(group) = self.group {
            map.serialize_entry("group", &group)?;
        }
        map.serialize_entry("start", &c.start().to_rfc3339())?;
        map.serialize_entry("end", &c.end().to_rfc3339())?;
        map.serialize_entry("outcome", &sum.outcome)?;
        map.serialize_entry("final_status", &sum.final_status)?;
        map.serialize_entry("final_reason", &sum.final_reason)?;
        map.serialize_entry("post_dial_delay", &sum.post_dial_delay)?;
        map.serialize_entry("setup_time", &sum.setup_time)?;
        map.serialize_entry("duration", &sum.duration)?;
        map.serialize_entry("message_count", &c.messages.len())?;
        map.serialize_entry("dropped_messages", &c.dropped_messages)?;
        map.serialize_entry("lost_bytes", &c.lost_bytes)?;
        map.serialize_entry("scanner", &self.scanner)?;
        let opts = self.opts;
        map.serialize_entry(
            "messages",
            &SeqOf(|| c.messages.iter().map(move |m| MessageView { msg: m, opts })),
        )?;
        let txs: Vec<TransactionView<'_>> = c
            .transactions
            .iter()
            .map(|t| TransactionView {
                id: t.id,
                method: &t.method,
                branch: t.branch.as_deref(),
                cseq: t.cseq,
                hop: HopView {
                    client: t.client.to_string(),
                    server: t.server.to_string(),
                },
                request_seen: t.request_seen,
                messages: &t.messages,
                final_status: t.final_status(),
                retransmissions: t.retransmissions,
                response_time: t.response_time(),
                cancels: t.cancels,
                acknowledges: t.acknowledges,
            })
            .collect();
        map.serialize_entry("transactions", &txs)?;
        let dialogs: Vec<DialogView<'_>> = c
            .dialogs
            .iter()
            .map(|d| DialogView {
                id: d.id,
                from_tag: &d.local_tag,
                to_tag: &d.remote_tag,
                state: d.state,
                method: &d.method,
                messages: &d.messages,
            })
            .collect();
        map.serialize_entry("dialogs", &dialogs)?;
        map.serialize_entry(
            "media",
            &SeqOf(|| c.media.iter().map(crate::export::media::stream_json)),
        )?;
        map.serialize_entry("anomalies", &diagnosis.anomalies)?;
        map.serialize_entry("verdict", &diagnosis.verdict)?;
        map.serialize_entry("hops", &diagnosis.hops)?;
        map.end()
    }
}

fn party(p: &crate::flow::Party) -> PartyView<'_> {
    PartyView {
        uri: &p.uri,
        user: p.user.as_deref(),
        display: p.display.as_deref(),
    }
}

/// Serializes an iterator as a JSON array without collecting it.
struct SeqOf<F>(F);

impl<F, I, T> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator<Item = T>,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

#[derive(Serialize)]
struct OrphanView<'a> {
    reason: &'a str,
    #[serde(flatten)]
    message: MessageView<'a>,
}

/// The whole document: `{"version", "generator", "sources", "scanners", "calls", "malformed",
/// "limits"}`.
pub struct Document<'a> {
    pub sources: &'a [SourceStats],
    pub scanners: crate::flow::scanner::ScannerTable,
    pub calls: &'a [&'a Call],
    pub orphans: &'a [Orphan],
    pub counters: EngineCounters,
    pub now: Timestamp,
    pub opts: JsonOptions<'a>,
    /// Streams tied to no call.
    pub untied_media: &'a [crate::media::Stream],
    pub media_counters: Option<crate::media::MediaCounters>,
    /// The clock offsets between capture points that saw the same messages.
    pub capture_points: Vec<crate::flow::points::OffsetEstimate>,
    /// What grouping read of each call, and the groups of `calls`.
    pub legs: Vec<crate::group::Leg>,
    pub grouping: crate::group::Grouping,
}

/// The top-level `groups` array: each group of two legs or more with its legs (positions in
/// `calls`), links (score, evidence) and verdict.
pub fn groups_json(
    legs: &[crate::group::Leg],
    grouping: &crate::group::Grouping,
) -> serde_json::Value {
    grouping
        .groups
        .iter()
        .map(|g| {
            let call_ids: Vec<String> = g
                .legs
                .iter()
                .filter_map(|&i| legs.get(i))
                .map(|l| crate::sanitize::terminal(&l.call_id).into_owned())
                .collect();
            serde_json::json!({
                "id": g.id,
                "legs": g.legs,
                "call_ids": call_ids,
                "links": g.links,
                "verdict": crate::diagnose::group::group_verdict(legs, g),
            })
        })
        .collect::<Vec<_>>()
        .into()
}

/// The top-level `grouping` object: the threshold, the legs with candidates too close to
/// choose between, and the legs not scored for crowding.
pub fn grouping_json(grouping: &crate::group::Grouping) -> serde_json::Value {
    serde_json::json!({
        "threshold": grouping.threshold,
        "groups": grouping.groups.len(),
        "grouped_calls": grouping.group_of.iter().filter(|g| g.is_some()).count(),
        "ambiguous": grouping.ambiguous.iter().map(|a| serde_json::json!({
            "call": a.leg,
            "candidates": a.candidates,
        })).collect::<Vec<_>>(),
        "crowded": grouping.crowded,
    })
}

impl<'a> Document<'a> {
    /// The document of `calls` (all or some of the engine's), with the engine's orphans,
    /// counters and clock.
    pub fn of(
        engine: &'a crate::engine::Engine,
        sources: &'a [SourceStats],
        calls: &'a [&'a Call],
        opts: JsonOptions<'a>,
    ) -> Self {
        let now = engine.now();
        let legs: Vec<crate::group::Leg> = calls
            .iter()
            .map(|c| crate::group::Leg::of(c, c.as_of(now)))
            .collect();
        let default = crate::group::GroupConfig::default();
        let grouping = crate::group::correlate(&legs, opts.grouping.unwrap_or(&default));
        Document {
            capture_points: engine.capture_points(),
            legs,
            grouping,
            sources,
            scanners: engine.scanners(),
            calls,
            orphans: engine.orphans(),
            counters: engine.counters(),
            now: engine.now(),
            opts,
            untied_media: engine.untied_media(),
            media_counters: engine.media_counters(),
        }
    }
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("version", &VERSION)?;
        map.serialize_entry("schema_version", SCHEMA_VERSION)?;
        map.serialize_entry("generator", &generator())?;
        map.serialize_entry("sources", self.sources)?;
        map.serialize_entry("scanners", &scanners(&self.scanners))?;
        let (now, opts, table) = (self.now, self.opts, &self.scanners);
        let group_of = &self.grouping.group_of;
        map.serialize_entry(
            "calls",
            &SeqOf(|| {
                self.calls.iter().enumerate().map(move |(i, c)| CallView {
                    call: c,
                    now,
                    opts,
                    scanner: table.marks(c),
                    group: Some(group_of.get(i).copied().flatten()),
                })
            }),
        )?;
        map.serialize_entry("groups", &groups_json(&self.legs, &self.grouping))?;
        map.serialize_entry("capture_points", &self.capture_points)?;
        map.serialize_entry("grouping", &grouping_json(&self.grouping))?;
        map.serialize_entry(
            "malformed",
            &SeqOf(|| {
                self.orphans.iter().map(move |o| OrphanView {
                    reason: &o.reason,
                    message: MessageView {
                        msg: &o.message,
                        opts,
                    },
                })
            }),
        )?;
        map.serialize_entry(
            "media",
            &SeqOf(|| {
                self.untied_media
                    .iter()
                    .map(crate::export::media::stream_json)
            }),
        )?;
        map.serialize_entry("media_stats", &self.media_counters)?;
        map.serialize_entry("limits", &self.counters)?;
        map.end()
    }
}
