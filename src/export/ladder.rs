//! The ladder (sequence) diagram of a call. [`layout`] is a pure function from a call to
//! columns and arrows; renderers only paint it (text here; the terminal UI and SVG later), so
//! every view of a call agrees.

use crate::capture::Timestamp;
use crate::flow::Call;
use crate::sanitize;
use std::io::{self, Write};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct Arrow {
    pub message: usize,
    pub time: Timestamp,
    /// Seconds since the previous message of the call.
    pub delta: f64,
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub retransmission: bool,
    pub transport: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One column per endpoint address:port, in hop-graph order (caller left, proxies in
    /// path order, callee right; then endpoints seen only in responses).
    pub columns: Vec<SocketAddr>,
    pub arrows: Vec<Arrow>,
}

pub fn layout(call: &Call) -> Layout {
    // Columns in hop-graph order: caller left, proxies in path order, callee right.
    let mut columns: Vec<SocketAddr> = crate::diagnose::HopGraph::build(call).endpoints;
    let col = |a: SocketAddr, columns: &mut Vec<SocketAddr>| -> usize {
        match columns.iter().position(|c| *c == a) {
            Some(i) => i,
            None => {
                columns.push(a);
                columns.len() - 1
            }
        }
    };
    let mut arrows = Vec::with_capacity(call.messages.len());
    let mut prev: Option<Timestamp> = None;
    for m in &call.messages {
        let from = col(m.src, &mut columns);
        let to = col(m.dst, &mut columns);
        arrows.push(Arrow {
            message: m.index,
            time: m.time,
            delta: prev.map_or(0.0, |p| m.time.seconds_since(p)),
            from,
            to,
            label: m.label(),
            retransmission: m.retransmission,
            transport: m.transport.as_str(),
        });
        prev = Some(m.time);
    }
    Layout { columns, arrows }
}

/// Width of one lane in characters.
const LANE: usize = 26;
const TIME_WIDTH: usize = 28;

fn time_of_day(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..26).map(str::to_string).unwrap_or(s)
}

/// Draws the ladder as text: a header row of endpoints, then one line per message.
/// Retransmissions are drawn with double lines (═) like sngrep.
pub fn write_text(call: &Call, out: &mut dyn Write) -> io::Result<()> {
    let l = layout(call);
    writeln!(out, "Call-ID: {}", sanitize::terminal(&call.call_id))?;
    let header = header_line(&l, LANE, TIME_WIDTH, |c| c.to_string());
    writeln!(out, "{}", header.trim_end())?;
    for a in &l.arrows {
        let lane = lane_line(&l, a, LANE);
        let stamp = format!("{} +{:.6}", time_of_day(a.time), a.delta);
        writeln!(out, "{stamp:<TIME_WIDTH$}{}", lane.trim_end())?;
    }
    if l.arrows.iter().any(|a| a.retransmission) {
        writeln!(out, "{}═ retransmission", " ".repeat(TIME_WIDTH))?;
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
        let pad = lane.saturating_sub(name.chars().count());
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
    let width = l.columns.len().max(1) * lane;
    let center = |i: usize| i * lane + lane / 2;
    let mut cells: Vec<char> = vec![' '; width];
    for i in 0..l.columns.len() {
        if let Some(c) = cells.get_mut(center(i)) {
            *c = '│';
        }
    }
    let (lo, hi) = (a.from.min(a.to), a.from.max(a.to));
    let line = if a.retransmission { '═' } else { '─' };
    let label = sanitize::clip(&a.label, (center(hi) - center(lo)).saturating_sub(4).max(6));
    if lo == hi {
        // Source and destination are one endpoint (a capture on one host's loopback).
        let text: Vec<char> = format!("⟲ {label}").chars().collect();
        for (k, ch) in text.into_iter().enumerate() {
            if let Some(c) = cells.get_mut(center(lo) + 2 + k) {
                *c = ch;
            }
        }
    } else {
        for x in center(lo) + 1..center(hi) {
            if let Some(c) = cells.get_mut(x) {
                *c = line;
            }
        }
        if a.to > a.from {
            if let Some(c) = cells.get_mut(center(hi) - 1) {
                *c = '►';
            }
        } else if let Some(c) = cells.get_mut(center(lo) + 1) {
            *c = '◄';
        }
        let chars: Vec<char> = label.chars().collect();
        let span = center(hi) - center(lo);
        let start = center(lo) + (span.saturating_sub(chars.len())) / 2;
        for (k, ch) in chars.into_iter().enumerate() {
            if let Some(c) = cells.get_mut(start + k) {
                *c = ch;
            }
        }
    }
    cells.into_iter().collect()
}
