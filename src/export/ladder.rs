//! The ladder (sequence) diagram of a call. [`layout`] is a pure function from a call to
//! columns and arrows, and [`annotate`] places a diagnosis on it (which arrows are evidence of
//! which anomaly, where a message that should have followed is missing). Renderers only paint
//! that: the text ladder here, `svg`, `mermaid` and the terminal UI, so every
//! view of a call agrees. Nothing here decides what is an anomaly.
//!
//! Media is drawn as sngrep draws it: each RTP stream is an arrow at its first packet between
//! its two addresses ([`ArrowKind::Stream`], the band lasting to its last packet), its RTCP
//! reports and DTMF digits small arrows at their times. The caller's media addresses join the
//! columns at the left of the hop-graph order, the callee's at the right, so the signalling
//! path keeps its order; per host, an address that is both a SIP and a media endpoint is one
//! column.

use crate::diagnose::{Anomaly, AnomalyKind, Diagnosis, Severity};
use crate::flow::Call;
use crate::media::{Direction, Stream};
use crate::sanitize;
use crate::time::Timestamp;
use std::io::{self, Write};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct Arrow {
    /// Which call of the ladder the message belongs to: 0 for the call itself, 1… for the
    /// legs linked to it ([`merge_legs`]).
    pub leg: usize,
    /// The message's position in its call.
    pub message: usize,
    pub time: Timestamp,
    /// Seconds since the previous message of the call.
    pub delta: f64,
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub retransmission: bool,
    pub transport: &'static str,
    pub kind: ArrowKind,
    /// A message seen at other capture points too: how many, and the seconds from this copy
    /// to the last of them (drawn beside the arrow).
    pub seen_elsewhere: Option<(usize, f64)>,
}

/// What an arrow draws. For media, [`Arrow::message`] is the stream's index in the call's
/// media ([`Call::media`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ArrowKind {
    #[default]
    Message,
    /// An RTP stream, drawn at its first packet; the band lasts until `end`, its last.
    Stream { end: Timestamp, quality: Quality },
    /// An RTCP report about the stream.
    Rtcp,
    /// A DTMF digit (RFC 4733 event) of the stream.
    Dtmf,
}

/// How a stream sounds, for its colour: by the E-model MOS (4.0 and up good, from 3.6 fair,
/// under that poor); streams without an estimate (events only) are good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Good,
    Fair,
    Poor,
}

impl Quality {
    pub fn of(s: &Stream) -> Quality {
        match s.mos {
            Some(m) if m < 3.6 => Quality::Poor,
            Some(m) if m < 4.0 => Quality::Fair,
            _ => Quality::Good,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Fair => "fair",
            Quality::Poor => "poor",
        }
    }
}

impl Arrow {
    /// Whether the arrow is a SIP message (not media).
    pub fn is_message(&self) -> bool {
        self.kind == ArrowKind::Message
    }

    /// The stream an RTP, RTCP or DTMF arrow belongs to.
    pub fn stream(&self) -> Option<usize> {
        (!self.is_message()).then_some(self.message)
    }
}

/// The label of a stream's arrow: codec, packets, loss, jitter, MOS and how long it lasted.
pub fn stream_label(s: &Stream) -> String {
    let mut label = format!(
        "RTP {} {} pkts {:.1}% lost jitter {:.1} ms",
        s.codec
            .as_deref()
            .map_or_else(|| format!("pt {}", s.payload_type), str::to_string),
        s.packets,
        s.loss_percent(),
        s.jitter_max_ms
    );
    if let Some(m) = s.mos {
        label.push_str(&format!(" MOS {m:.1}"));
    }
    label.push_str(&format!(" {:.1} s", s.end.seconds_since(s.start).max(0.0)));
    label
}

fn rtcp_label(r: &crate::media::RtcpReport) -> String {
    let mut label = format!("RTCP {}", r.kind.to_uppercase());
    if let Some(f) = r.fraction_lost {
        label.push_str(&format!(" {:.1}% lost", f * 100.0));
    }
    if let Some(j) = r.jitter_ms {
        label.push_str(&format!(" jitter {j:.1} ms"));
    }
    if let Some(rtt) = r.round_trip_ms {
        label.push_str(&format!(" rtt {rtt:.0} ms"));
    }
    if let Some(m) = r.mos {
        label.push_str(&format!(" MOS {m:.1}"));
    }
    label
}

/// The stream address an RTCP address stands for: the same address or the one whose port + 1
/// it is (RFC 3550's RTCP port), failing those the one on the same host.
fn media_side(addr: SocketAddr, s: &Stream) -> SocketAddr {
    let near = |x: SocketAddr| {
        x.ip() == addr.ip() && (x.port() == addr.port() || x.port().wrapping_add(1) == addr.port())
    };
    if near(s.src) {
        s.src
    } else if near(s.dst) {
        s.dst
    } else if s.src.ip() == addr.ip() {
        s.src
    } else if s.dst.ip() == addr.ip() {
        s.dst
    } else {
        addr
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// One column per endpoint address:port, in hop-graph order (caller left, proxies in
    /// path order, callee right; then endpoints seen only in responses). At most
    /// [`MAX_COLUMNS`].
    pub columns: Vec<SocketAddr>,
    pub arrows: Vec<Arrow>,
    /// Endpoints beyond [`MAX_COLUMNS`], drawn in the last column with its own (a hostile or
    /// broken call can have thousands: a ladder that wide is unreadable and unbounded).
    pub folded: usize,
    /// The positions of the stream arrows ([`ArrowKind::Stream`]) in `arrows`, so that drawing
    /// a line looks at the streams only, not every arrow before it.
    pub bands: Vec<usize>,
}

/// The positions of the stream arrows among `arrows`.
fn bands_of(arrows: &[Arrow]) -> Vec<usize> {
    arrows
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a.kind, ArrowKind::Stream { .. }))
        .map(|(i, _)| i)
        .collect()
}

/// Columns a ladder draws at most; further endpoints share the last one ([`Layout::folded`]).
pub const MAX_COLUMNS: usize = 64;

impl Layout {
    /// The label of column `i`: its address, and for the last column of a folded layout how
    /// many more endpoints it stands for.
    pub fn column_label(&self, i: usize) -> String {
        let Some(c) = self.columns.get(i) else {
            return String::new();
        };
        if self.folded > 0 && i + 1 == self.columns.len() {
            format!("{c} +{}", self.folded)
        } else {
            c.to_string()
        }
    }

    /// The note a renderer prints for a folded layout.
    pub fn folded_note(&self) -> Option<String> {
        (self.folded > 0).then(|| {
            format!(
                "{} more endpoints than the {MAX_COLUMNS} columns are drawn in the last column",
                self.folded
            )
        })
    }
}

pub fn layout(call: &Call) -> Layout {
    // Columns in hop-graph order: caller left, proxies in path order, callee right; the
    // caller's media addresses before them, the callee's after.
    let hops: Vec<SocketAddr> = crate::diagnose::HopGraph::build(call).endpoints;
    let mut columns: Vec<SocketAddr> = Vec::with_capacity(hops.len() + 2);
    for s in &call.media {
        let caller_side = match s.direction {
            Direction::CallerToCallee => s.src,
            Direction::CalleeToCaller => s.dst,
            Direction::Unknown => continue,
        };
        if !hops.contains(&caller_side) && !columns.contains(&caller_side) {
            columns.push(caller_side);
        }
    }
    for h in hops {
        if !columns.contains(&h) {
            columns.push(h);
        }
    }
    let mut extra: std::collections::HashSet<SocketAddr, foldhash::fast::RandomState> =
        columns.iter().skip(MAX_COLUMNS).copied().collect();
    columns.truncate(MAX_COLUMNS);
    let mut index: crate::WireMap<SocketAddr, usize> =
        columns.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut col = |a: SocketAddr, columns: &mut Vec<SocketAddr>| -> usize {
        if let Some(&i) = index.get(&a) {
            return i;
        }
        if columns.len() < MAX_COLUMNS {
            columns.push(a);
            index.insert(a, columns.len() - 1);
            columns.len() - 1
        } else {
            extra.insert(a);
            MAX_COLUMNS - 1
        }
    };
    let mut arrows = Vec::with_capacity(call.messages.len());
    let mut prev: Option<Timestamp> = None;
    for m in &call.messages {
        let from = col(m.src, &mut columns);
        let to = col(m.dst, &mut columns);
        arrows.push(Arrow {
            leg: 0,
            message: m.index,
            time: m.time,
            delta: prev.map_or(0.0, |p| m.time.seconds_since(p)),
            from,
            to,
            label: m.label(),
            retransmission: m.retransmission,
            transport: m.transport.as_str(),
            kind: ArrowKind::Message,
            seen_elsewhere: m
                .sightings()
                .last()
                .map(|s| (m.sightings().len(), s.time.seconds_since(m.time))),
        });
        prev = Some(m.time);
    }
    if !call.media.is_empty() {
        media_arrows(call, &mut arrows, |a| col(a, &mut columns));
    }
    Layout {
        bands: bands_of(&arrows),
        columns,
        arrows,
        folded: extra.len(),
    }
}

/// Adds the call's streams, RTCP reports and DTMF digits to its arrows, in time order (at one
/// time, messages first and a stream before its marks), the deltas recomputed line to line.
fn media_arrows(call: &Call, arrows: &mut Vec<Arrow>, mut col: impl FnMut(SocketAddr) -> usize) {
    // The callee's side first, so that it is what is appended after the hops.
    for s in &call.media {
        col(if s.direction == Direction::CalleeToCaller {
            s.src
        } else {
            s.dst
        });
    }
    for (k, s) in call.media.iter().enumerate() {
        let (from, to) = (col(s.src), col(s.dst));
        let base = Arrow {
            leg: 0,
            message: k,
            time: s.start,
            delta: 0.0,
            from,
            to,
            label: stream_label(s),
            retransmission: false,
            seen_elsewhere: None,
            transport: "RTP",
            kind: ArrowKind::Stream {
                end: s.end,
                quality: Quality::of(s),
            },
        };
        for r in &s.rtcp {
            let (from, to) = (col(media_side(r.from, s)), col(media_side(r.to, s)));
            arrows.push(Arrow {
                time: r.time,
                from,
                to,
                label: rtcp_label(r),
                transport: "RTCP",
                kind: ArrowKind::Rtcp,
                ..base.clone()
            });
        }
        for d in &s.dtmf {
            arrows.push(Arrow {
                time: d.time,
                label: format!("DTMF {} ({:.0} ms)", d.digit, d.duration_ms),
                kind: ArrowKind::Dtmf,
                ..base.clone()
            });
        }
        arrows.push(base);
    }
    let rank = |a: &Arrow| match a.kind {
        ArrowKind::Message => 0u8,
        ArrowKind::Stream { .. } => 1,
        _ => 2,
    };
    arrows.sort_by_key(|a| (a.time, rank(a)));
    let mut prev: Option<Timestamp> = None;
    for a in arrows.iter_mut() {
        a.delta = prev.map_or(0.0, |p| a.time.seconds_since(p));
        prev = Some(a.time);
    }
}

impl Layout {
    /// The columns of the streams whose band is open at arrow `i` (begun before it and not
    /// yet ended), whose lifelines are drawn heavier.
    pub fn open_bands(&self, i: usize) -> Vec<usize> {
        let Some(at) = self.arrows.get(i) else {
            return Vec::new();
        };
        let mut cols = Vec::new();
        let before = self.bands.iter().take_while(|&&k| k < i);
        for a in before.filter_map(|&k| self.arrows.get(k)) {
            if let ArrowKind::Stream { end, .. } = a.kind
                && end >= at.time
            {
                for c in [a.from, a.to] {
                    if !cols.contains(&c) {
                        cols.push(c);
                    }
                }
            }
        }
        cols
    }
}

/// One ladder for a call and the legs linked to it (`legs`, the call first): the arrows of
/// every leg in time order, each with its [`Arrow::leg`], over the columns of the first
/// extended by the others' endpoints.
pub fn merge_legs(legs: &[&Call]) -> Layout {
    let mut layouts: Vec<Layout> = legs.iter().map(|c| layout(c)).collect();
    if layouts.len() < 2 {
        return layouts.pop().unwrap_or_default();
    }
    // The first call's columns first; the legs' endpoints are added as they come.
    let (mut columns, folded) = layouts
        .first()
        .map(|l| (l.columns.clone(), l.folded))
        .unwrap_or_default();
    let mut arrows: Vec<Arrow> = Vec::new();
    for (leg, l) in layouts.into_iter().enumerate() {
        for a in l.arrows {
            let map = |i: usize, columns: &mut Vec<SocketAddr>| {
                // Arrows index their own layout's columns; an index out of range (never made
                // by `layout`) maps to the first column rather than panicking.
                let Some(&addr) = l.columns.get(i) else {
                    return 0;
                };
                columns.iter().position(|x| *x == addr).unwrap_or_else(|| {
                    columns.push(addr);
                    columns.len() - 1
                })
            };
            let (from, to) = (map(a.from, &mut columns), map(a.to, &mut columns));
            arrows.push(Arrow { from, to, leg, ..a });
        }
    }
    arrows.sort_by_key(|a| a.time);
    let mut prev = None;
    for a in &mut arrows {
        a.delta = prev.map_or(0.0, |p: Timestamp| a.time.seconds_since(p));
        prev = Some(a.time);
    }
    Layout {
        bands: bands_of(&arrows),
        columns,
        arrows,
        folded,
    }
}

/// One column per host instead of per address and port (port 0 stands for "any port of this
/// address"): a ladder of fewer, wider lanes.
pub fn per_host(layout: &mut Layout) {
    let mut hosts: Vec<SocketAddr> = Vec::new();
    let mut remap = Vec::with_capacity(layout.columns.len());
    for c in &layout.columns {
        let h = SocketAddr::new(c.ip(), 0);
        let i = hosts.iter().position(|x| *x == h).unwrap_or_else(|| {
            hosts.push(h);
            hosts.len() - 1
        });
        remap.push(i);
    }
    for a in &mut layout.arrows {
        a.from = remap.get(a.from).copied().unwrap_or(0);
        a.to = remap.get(a.to).copied().unwrap_or(0);
    }
    layout.columns = hosts;
}

/// Something that should have followed an arrow and was not seen at this capture point. It is
/// drawn as a dashed arrow back from the evidence's destination: the ACK or PRACK would answer
/// the 2xx or reliable 1xx, the final response would answer the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// The last arrow of the evidence.
    pub after: usize,
    pub kind: AnomalyKind,
    /// Short label drawn on the dashed arrow.
    pub label: &'static str,
    /// For an unanswered request: seconds from its first sending to the end of the capture.
    pub waited: Option<f64>,
}

impl Missing {
    /// The dashed arrow: from the evidence's destination back to its source.
    pub fn arrow(&self, l: &Layout) -> Option<Arrow> {
        let a = l.arrows.get(self.after)?;
        Some(Arrow {
            from: a.to,
            to: a.from,
            label: self.label.to_string(),
            retransmission: false,
            delta: 0.0,
            ..a.clone()
        })
    }

    /// What the marker says beside the arrow.
    pub fn note(&self) -> String {
        match self.waited {
            Some(w) => format!("{}: waited {w:.1} s", self.kind.as_str()),
            None => format!("{}: not seen at this capture point", self.kind.as_str()),
        }
    }
}

/// One line of a drawn ladder: an arrow, or after it a marker for what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Arrow(usize),
    /// `marker` indexes [`Annotations::missing`]; it follows arrow `after`.
    Missing {
        after: usize,
        marker: usize,
    },
}

impl Row {
    /// The arrow this line draws or follows.
    pub fn arrow(self) -> usize {
        match self {
            Row::Arrow(a) | Row::Missing { after: a, .. } => a,
        }
    }
}

/// A diagnosis placed on a layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    /// Per arrow, the anomalies (kind, severity) whose evidence it is; empty for most arrows.
    pub flags: Vec<Vec<(AnomalyKind, Severity)>>,
    /// Missing messages, in arrow order.
    pub missing: Vec<Missing>,
    /// Every line of the ladder in order: each arrow, markers after theirs.
    pub rows: Vec<Row>,
}

impl Annotations {
    /// The line that draws an arrow (rows are ordered by arrow, markers after theirs).
    pub fn row_of(&self, arrow: usize) -> usize {
        self.rows.partition_point(|r| r.arrow() < arrow)
    }

    /// The anomaly kinds an arrow is evidence of.
    pub fn flags_of(&self, arrow: usize) -> &[(AnomalyKind, Severity)] {
        self.flags.get(arrow).map_or(&[], Vec::as_slice)
    }
}

/// Places anomalies on a layout. `own` maps an arrow to the index of its message in the call
/// the anomalies are about (`None` for arrows of other calls, such as linked legs); `now` is
/// the capture time reached, for how long an unanswered request waited.
pub fn annotate(
    l: &Layout,
    anomalies: &[Anomaly],
    now: Timestamp,
    own: impl Fn(&Arrow) -> Option<usize>,
) -> Annotations {
    let by_message: std::collections::HashMap<usize, usize> = l
        .arrows
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_message())
        .filter_map(|(i, a)| own(a).map(|m| (m, i)))
        .collect();
    // A stream is evidence through its own arrow (not its RTCP or DTMF marks).
    let by_stream: std::collections::HashMap<usize, usize> = l
        .arrows
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a.kind, ArrowKind::Stream { .. }))
        .filter_map(|(i, a)| own(a).map(|m| (m, i)))
        .collect();
    let mut flags = vec![Vec::new(); l.arrows.len()];
    let mut missing: Vec<Missing> = Vec::new();
    for a in anomalies {
        let arrows: Vec<usize> = a
            .messages
            .iter()
            .filter_map(|m| by_message.get(m).copied())
            .collect();
        let streams = a.streams.iter().filter_map(|k| by_stream.get(k).copied());
        for i in arrows.iter().copied().chain(streams) {
            if let Some(f) = flags.get_mut(i)
                && !f.contains(&(a.kind, a.severity))
            {
                f.push((a.kind, a.severity));
            }
        }
        let label = match a.kind {
            AnomalyKind::MissingAck => "✗ ACK not seen",
            AnomalyKind::NoFinalResponse => "✗ no final response",
            AnomalyKind::PrackMissing => "✗ PRACK not seen",
            _ => continue,
        };
        let (Some(&first), Some(&after)) = (arrows.iter().min(), arrows.iter().max()) else {
            continue;
        };
        let waited = (a.kind == AnomalyKind::NoFinalResponse)
            .then(|| {
                l.arrows
                    .get(first)
                    .map(|f| now.seconds_since(f.time).max(0.0))
            })
            .flatten();
        missing.push(Missing {
            after,
            kind: a.kind,
            label,
            waited,
        });
    }
    missing.sort_by_key(|m| m.after);
    let mut rows = Vec::with_capacity(l.arrows.len() + missing.len());
    let mut next = missing.iter().enumerate().peekable();
    for i in 0..l.arrows.len() {
        rows.push(Row::Arrow(i));
        while let Some((marker, m)) = next.next_if(|(_, m)| m.after == i) {
            rows.push(Row::Missing {
                after: m.after,
                marker,
            });
        }
    }
    Annotations {
        flags,
        missing,
        rows,
    }
}

/// A call's ladder with its diagnosis placed on it, ready to draw.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub layout: Layout,
    pub notes: Annotations,
    /// The Call-IDs of the legs drawn after the call ([`Arrow::leg`] 1, 2, …).
    pub legs: Vec<String>,
    /// With legs: the verdict of the call group they make ([`crate::diagnose::group`]).
    pub group_verdict: Option<String>,
}

impl Ladder {
    pub fn new(call: &Call, diagnosis: Option<&Diagnosis>, now: Timestamp) -> Ladder {
        Ladder::with_legs(&[call], diagnosis, now)
    }

    /// The ladder of `legs[0]` with the legs linked to it merged in ([`merge_legs`]); the
    /// diagnosis is the first call's and marks only its arrows.
    pub fn with_legs(legs: &[&Call], diagnosis: Option<&Diagnosis>, now: Timestamp) -> Ladder {
        let layout = merge_legs(legs);
        let anomalies = diagnosis.map_or(&[][..], |d| d.anomalies.as_slice());
        let notes = annotate(&layout, anomalies, now, |a| {
            (a.leg == 0).then_some(a.message)
        });
        let group_verdict = group_verdict(legs, now);
        let legs = legs.iter().skip(1).map(|c| c.call_id.to_string()).collect();
        Ladder {
            layout,
            notes,
            legs,
            group_verdict,
        }
    }
}

/// The verdict of the call group that `legs` make (two legs or more), the legs taken in the
/// order their INVITEs began.
pub fn group_verdict(legs: &[&Call], now: Timestamp) -> Option<String> {
    if legs.len() < 2 {
        return None;
    }
    let summed: Vec<crate::group::Leg> = legs
        .iter()
        .map(|c| crate::group::Leg::of(c, c.as_of(now)))
        .collect();
    let mut order: Vec<usize> = (0..summed.len()).collect();
    order.sort_by_key(|&i| {
        summed
            .get(i)
            .map(|l| (l.start().is_none(), l.start(), l.seq))
    });
    let group = crate::group::Group {
        id: 0,
        legs: order,
        links: Vec::new(),
    };
    Some(crate::diagnose::group::group_verdict(&summed, &group).summary)
}

/// The groups of `calls` ([`crate::group::correlate`]), judged as of `now`.
pub fn group_calls(
    calls: &[&Call],
    now: Timestamp,
    config: &crate::group::GroupConfig,
) -> (Vec<crate::group::Leg>, crate::group::Grouping) {
    let legs: Vec<crate::group::Leg> = calls
        .iter()
        .map(|c| crate::group::Leg::of(c, c.as_of(now)))
        .collect();
    let grouping = crate::group::correlate(&legs, config);
    (legs, grouping)
}

/// The other legs of `calls[own]`'s call group (a B2BUA's other side, a transfer), by
/// position, in the order they began; at most eight.
pub fn linked_legs(calls: &[&Call], own: usize, now: Timestamp) -> Vec<usize> {
    let Some(call) = calls.get(own) else {
        return Vec::new();
    };
    // Only the calls that began around this one can be its legs (a B2BUA's within seconds, a
    // transfer's within 32 s of a REFER while it lasted): the UI asks again as messages come,
    // and a live table may hold a million calls.
    let margin = crate::time::Interval::from_secs(40);
    let (from, until) = (
        call.start()
            .saturating_add(crate::time::Interval::from_nanos(-margin.as_nanos())),
        call.end().saturating_add(margin),
    );
    let near: Vec<usize> = (0..calls.len())
        .filter(|&i| {
            calls
                .get(i)
                .is_some_and(|c| c.start() >= from && c.start() <= until)
        })
        .collect();
    let subset: Vec<&Call> = near.iter().filter_map(|&i| calls.get(i).copied()).collect();
    let Some(me) = near.iter().position(|&i| i == own) else {
        return Vec::new();
    };
    let (_, grouping) = group_calls(&subset, now, &crate::group::GroupConfig::default());
    grouping
        .others(me)
        .into_iter()
        .filter_map(|k| near.get(k).copied())
        .take(8)
        .collect()
}

/// Width of one lane in characters.
const LANE: usize = 26;
const TIME_WIDTH: usize = 28;

fn time_of_day(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..26).map(str::to_string).unwrap_or(s)
}

/// Draws the ladder as text: a header row of endpoints, then one line per message, the kinds
/// of anomaly a message is evidence of at its right, and a dashed arrow (┄) where a message
/// is missing. Retransmissions are drawn with double lines (═) like sngrep.
pub fn write_text(call: &Call, ladder: &Ladder, out: &mut dyn Write) -> io::Result<()> {
    let l = &ladder.layout;
    writeln!(out, "Call-ID: {}", sanitize::terminal(&call.call_id))?;
    if !ladder.legs.is_empty() {
        let legs: Vec<_> = ladder
            .legs
            .iter()
            .map(|id| sanitize::terminal(id))
            .collect();
        writeln!(out, "Linked legs (drawn with them): {}", legs.join(", "))?;
    }
    if let Some(v) = &ladder.group_verdict {
        writeln!(out, "Group verdict: {}", sanitize::terminal(v))?;
    }
    let header = header_line(l, LANE, TIME_WIDTH, |c| c.to_string());
    writeln!(out, "{}", header.trim_end())?;
    if let Some(note) = l.folded_note() {
        writeln!(out, "({note})")?;
    }
    for row in &ladder.notes.rows {
        match *row {
            Row::Arrow(i) => {
                let Some(a) = l.arrows.get(i) else { continue };
                let lane = lane_line_at(l, i, LANE);
                let stamp = format!("{} +{:.6}", time_of_day(a.time), a.delta);
                let flags = ladder.notes.flags_of(i);
                let mut notes: Vec<String> =
                    flags.iter().map(|f| f.0.as_str().to_string()).collect();
                if let Some((n, delay)) = a.seen_elsewhere {
                    notes.push(format!("seen at {} points, +{:.3} ms", n + 1, delay * 1e3));
                }
                if notes.is_empty() {
                    writeln!(out, "{stamp:<TIME_WIDTH$}{}", lane.trim_end())?;
                } else {
                    writeln!(out, "{stamp:<TIME_WIDTH$}{lane}  {}", notes.join(","))?;
                }
            }
            Row::Missing { marker, .. } => {
                let Some(m) = ladder.notes.missing.get(marker) else {
                    continue;
                };
                let Some(a) = m.arrow(l) else { continue };
                let lane = dashed_line(l, &a, LANE);
                writeln!(out, "{:TIME_WIDTH$}{lane}  {}", "", m.note())?;
            }
        }
    }
    if l.arrows.iter().any(|a| a.retransmission) {
        writeln!(out, "{}═ retransmission", " ".repeat(TIME_WIDTH))?;
    }
    if l.arrows.iter().any(|a| a.seen_elsewhere.is_some()) {
        writeln!(
            out,
            "{}seen at N points: captured at the other inputs too, this long after the copy drawn",
            " ".repeat(TIME_WIDTH)
        )?;
    }
    if l.arrows.iter().any(|a| !a.is_message()) {
        writeln!(
            out,
            "{}━ RTP stream (┃ while it flows) · ┈ RTCP report or DTMF digit",
            " ".repeat(TIME_WIDTH)
        )?;
    }
    Ok(())
}

/// The row of endpoint names over the lanes, each centred in its lane after `indent` spaces;
/// `name` says how an endpoint is written (address:port, or only the host when compressed).
pub fn header_line(
    l: &Layout,
    lane: usize,
    indent: usize,
    name: impl Fn(SocketAddr) -> String,
) -> String {
    let mut header = " ".repeat(indent);
    for &c in &l.columns {
        let name = sanitize::clip(&name(c), lane.saturating_sub(2));
        let pad = lane.saturating_sub(sanitize::width(&name));
        header.push_str(&" ".repeat(pad / 2));
        header.push_str(&name);
        header.push_str(&" ".repeat(pad - pad / 2));
    }
    header
}

/// One arrow drawn across the lanes, `lane` characters per endpoint: vertical lines at each
/// endpoint's centre, the arrow between its two endpoints with the label in the middle (`═` for
/// retransmissions), or `⟲ label` when source and destination are one endpoint. Shared by the
/// text ladder and the terminal UI so that both draw the same picture.
pub fn lane_line(l: &Layout, a: &Arrow, lane: usize) -> String {
    let line = match a.kind {
        ArrowKind::Stream { .. } => '━',
        ArrowKind::Rtcp | ArrowKind::Dtmf => '┈',
        ArrowKind::Message if a.retransmission => '═',
        ArrowKind::Message => '─',
    };
    draw_lanes(l, a, lane, line)
}

/// [`lane_line`] for arrow `i` of the layout, the lifelines of open stream bands drawn heavy
/// (`┃`) from a stream's first packet to its last.
pub fn lane_line_at(l: &Layout, i: usize, lane: usize) -> String {
    let Some(a) = l.arrows.get(i) else {
        return String::new();
    };
    let drawn = lane_line(l, a, lane);
    let open = l.open_bands(i);
    if open.is_empty() {
        return drawn;
    }
    // Lifelines sit at each lane's centre; only a plain `│` there is replaced (an arrow's own
    // line or label crossing it stays).
    let mut chars: Vec<char> = Vec::with_capacity(drawn.len());
    let mut col = 0usize;
    for c in drawn.chars() {
        let is_center = col % lane == lane / 2 && open.contains(&(col / lane));
        chars.push(if c == '│' && is_center { '┃' } else { c });
        col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
    }
    chars.into_iter().collect()
}

/// A missing message's arrow ([`Missing::arrow`]), dashed.
pub fn dashed_line(l: &Layout, a: &Arrow, lane: usize) -> String {
    draw_lanes(l, a, lane, '┄')
}

/// A line of terminal columns. A wide character takes its cell and the next (marked `\0`,
/// skipped when the line is written out); zero-width characters (combining marks) ride along
/// with the cell before them. So a label in any script keeps the lanes in line.
struct Cells {
    cells: Vec<char>,
    zero_width: Vec<(usize, char)>,
}

const WIDE_TAIL: char = '\0';

impl Cells {
    fn new(width: usize) -> Cells {
        Cells {
            cells: vec![' '; width],
            zero_width: Vec::new(),
        }
    }

    fn set(&mut self, x: usize, c: char) {
        if let Some(cell) = self.cells.get_mut(x) {
            *cell = c;
        }
    }

    /// Writes `text` from column `x`, clipped at the end of the line.
    fn text(&mut self, x: usize, text: &str) {
        use unicode_width::UnicodeWidthChar;
        let mut col = x;
        for c in text.chars() {
            match c.width().unwrap_or(0) {
                0 => self.zero_width.push((col.saturating_sub(1), c)),
                w => {
                    if col + w > self.cells.len() {
                        break;
                    }
                    self.set(col, c);
                    for k in 1..w {
                        self.set(col + k, WIDE_TAIL);
                    }
                    col += w;
                }
            }
        }
    }

    fn into_string(self) -> String {
        let mut out = String::with_capacity(self.cells.len() * 3);
        for (i, c) in self.cells.into_iter().enumerate() {
            if c != WIDE_TAIL {
                out.push(c);
            }
            out.extend(
                self.zero_width
                    .iter()
                    .filter(|(at, _)| *at == i)
                    .map(|(_, z)| *z),
            );
        }
        out
    }
}

fn draw_lanes(l: &Layout, a: &Arrow, lane: usize, line: char) -> String {
    let center = |i: usize| i * lane + lane / 2;
    let mut cells = Cells::new(l.columns.len().max(1) * lane);
    for i in 0..l.columns.len() {
        cells.set(center(i), '│');
    }
    let (lo, hi) = (a.from.min(a.to), a.from.max(a.to));
    let label = sanitize::clip(&a.label, (center(hi) - center(lo)).saturating_sub(4).max(6));
    if lo == hi {
        // Source and destination are one endpoint (a capture on one host's loopback).
        cells.text(center(lo) + 2, &format!("⟲ {label}"));
    } else {
        for x in center(lo) + 1..center(hi) {
            cells.set(x, line);
        }
        if a.to > a.from {
            cells.set(center(hi) - 1, '►');
        } else {
            cells.set(center(lo) + 1, '◄');
        }
        let span = center(hi) - center(lo);
        let start = center(lo) + span.saturating_sub(sanitize::width(&label)) / 2;
        cells.text(start, &label);
    }
    cells.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(message: usize, ms: i64, from: usize, to: usize, label: &str) -> Arrow {
        Arrow {
            leg: 0,
            message,
            time: Timestamp::from_millis(ms),
            delta: 0.0,
            from,
            to,
            label: label.into(),
            retransmission: false,
            transport: "UDP",
            kind: ArrowKind::Message,
            seen_elsewhere: None,
        }
    }

    fn anomaly(kind: AnomalyKind, messages: Vec<usize>) -> Anomaly {
        Anomaly {
            kind,
            severity: Severity::Error,
            summary: String::new(),
            messages,
            reference: "",
            streams: Vec::new(),
        }
    }

    /// A call with thousands of endpoints (hostile, or a scanner) draws at most
    /// [`MAX_COLUMNS`] columns; the rest share the last one, and every renderer says so.
    #[test]
    fn endpoints_beyond_the_column_limit_share_the_last_column() {
        let mut s = crate::synth::script::Script::new();
        for i in 0..300u32 {
            let src = format!("198.51.{}.{}:5060", i / 250, i % 250);
            let m = crate::synth::script::sip(
                "OPTIONS sip:b@x SIP/2.0",
                &[
                    ("Via", &format!("SIP/2.0/UDP {src};branch=z9hG4bK{i}")),
                    ("From", "<sip:a@x>;tag=1"),
                    ("To", "<sip:b@x>"),
                    ("Call-ID", "scan"),
                    ("CSeq", "1 OPTIONS"),
                ],
                "",
            );
            s.udp(i64::from(i), &src, "203.0.113.2:5060", &m);
        }
        let mut engine = crate::engine::Engine::new(Default::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let l = layout(calls[0]);
        assert_eq!(l.columns.len(), MAX_COLUMNS);
        assert_eq!(l.folded, 301 - MAX_COLUMNS);
        assert!(
            l.arrows
                .iter()
                .all(|a| a.from < MAX_COLUMNS && a.to < MAX_COLUMNS)
        );
        assert!(
            l.column_label(MAX_COLUMNS - 1)
                .ends_with(&format!(" +{}", l.folded))
        );
        let mut text = Vec::new();
        crate::export::diagram::write(
            &calls,
            &[engine.now()],
            &Default::default(),
            crate::export::diagram::Format::Text,
            &mut text,
        )
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("237 more endpoints than the 64 columns"),
            "{text}"
        );
    }

    /// Two legs of a B2BUA: each leg's messages once, in time order, marked with their leg,
    /// over columns that hold every endpoint once; per host, one column per address.
    #[test]
    fn legs_merge_in_time_order_and_fold_per_host() {
        let mut s = crate::synth::script::Script::new();
        let leg = |s: &mut crate::synth::script::Script, id: &str, from: &str, to: &str, at| {
            let m = crate::synth::script::sip(
                "OPTIONS sip:b@x SIP/2.0",
                &[
                    ("Via", &format!("SIP/2.0/UDP {from};branch=z9hG4bK{id}")),
                    ("From", "<sip:a@x>;tag=1"),
                    ("To", "<sip:b@x>"),
                    ("Call-ID", id),
                    ("CSeq", "1 OPTIONS"),
                ],
                "",
            );
            s.udp(at, from, to, &m);
        };
        leg(&mut s, "a", "192.0.2.1:5060", "192.0.2.2:5060", 0);
        leg(&mut s, "b", "192.0.2.2:5070", "192.0.2.3:5060", 5);
        leg(&mut s, "a", "192.0.2.1:5060", "192.0.2.2:5060", 10);
        let mut engine = crate::engine::Engine::new(Default::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let (a, b) = (calls[0], calls[1]);
        assert_eq!(merge_legs(&[a]), layout(a));
        let l = merge_legs(&[a, b]);
        let legs: Vec<(usize, usize)> = l.arrows.iter().map(|x| (x.leg, x.message)).collect();
        assert_eq!(legs, vec![(0, 0), (1, 0), (0, 1)]);
        assert!(l.arrows.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(l.columns.len(), 4);
        assert!(l.arrows.iter().all(|x| x.from < 4 && x.to < 4));
        let mut hosts = l.clone();
        per_host(&mut hosts);
        assert_eq!(hosts.columns.len(), 3);
        assert!(hosts.columns.iter().all(|c| c.port() == 0));
        assert_eq!(
            hosts.arrows[1].from, hosts.arrows[0].to,
            "192.0.2.2 is one column"
        );
    }

    #[test]
    fn markers_follow_the_last_evidence_and_point_back() {
        let l = Layout {
            columns: vec![
                "127.0.0.1:5061".parse().unwrap(),
                "127.0.0.1:5060".parse().unwrap(),
            ],
            arrows: vec![
                arrow(0, 0, 0, 1, "INVITE"),
                arrow(1, 300, 1, 0, "200 OK"),
                arrow(2, 800, 1, 0, "200 OK"),
                arrow(3, 900, 0, 1, "INVITE"),
            ],
            folded: 0,
            bands: Vec::new(),
        };
        let anomalies = [
            anomaly(AnomalyKind::MissingAck, vec![1, 2]),
            anomaly(AnomalyKind::NoFinalResponse, vec![3]),
        ];
        let n = annotate(&l, &anomalies, Timestamp::from_millis(10_900), |a| {
            Some(a.message)
        });
        assert_eq!(
            n.rows,
            vec![
                Row::Arrow(0),
                Row::Arrow(1),
                Row::Arrow(2),
                Row::Missing {
                    after: 2,
                    marker: 0
                },
                Row::Arrow(3),
                Row::Missing {
                    after: 3,
                    marker: 1
                },
            ]
        );
        assert_eq!(n.row_of(3), 4);
        assert_eq!(n.flags_of(1), &[(AnomalyKind::MissingAck, Severity::Error)]);
        assert!(n.flags_of(0).is_empty());
        // The ACK would go back from the caller to the one that sent the 2xx.
        let ack = n.missing[0].arrow(&l).unwrap();
        assert_eq!((ack.from, ack.to), (0, 1));
        assert_eq!(n.missing[1].waited, Some(10.0));
        assert_eq!(n.missing[1].note(), "no_final_response: waited 10.0 s");
        // Arrows of another call (`own` gives None) are never flagged.
        let none = annotate(&l, &anomalies, Timestamp::from_millis(0), |_| None);
        assert!(none.missing.is_empty() && none.flags.iter().all(Vec::is_empty));
    }

    /// Regression: a label with wide characters was laid out one cell per character, so the
    /// lanes after it were pushed right on screen.
    #[test]
    fn wide_labels_keep_the_lanes_in_line() {
        use unicode_width::UnicodeWidthStr;
        let l = Layout {
            columns: vec![
                "127.0.0.1:5061".parse().unwrap(),
                "127.0.0.1:5060".parse().unwrap(),
                "127.0.0.1:5070".parse().unwrap(),
            ],
            arrows: vec![
                arrow(0, 0, 0, 1, "486 話中です"),
                arrow(1, 0, 1, 2, "e\u{301}té"),
            ],
            folded: 0,
            bands: Vec::new(),
        };
        let plain = lane_line(&l, &arrow(2, 0, 0, 1, "486 Busy"), 26);
        for a in &l.arrows {
            let drawn = lane_line(&l, a, 26);
            assert_eq!(drawn.width(), plain.width(), "{drawn}");
            // The third lane's line is in the same column as on a plain line.
            let col = |s: &str| {
                let mut w = 0;
                let mut last = 0;
                for c in s.chars() {
                    if c == '│' {
                        last = w;
                    }
                    w += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                }
                last
            };
            assert_eq!(col(&drawn), col(&plain), "{drawn}");
        }
        assert!(lane_line(&l, &l.arrows[0], 26).contains("話中です"));
        assert!(lane_line(&l, &l.arrows[1], 26).contains("e\u{301}té"));
    }
}
