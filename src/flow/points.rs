//! Capture points: the inputs (files, interfaces) and HEP agents (by capture id) a message
//! was seen at. The same message seen at two points is one message with two sightings
//! ([`super::message::Sighting`]), never a retransmission; the delays between the points'
//! copies give the offset between their clocks. This module owns the points' spans and the
//! delays; which message is a sighting of which is decided by the call ([`super::Call`]).

use super::SipMessage;
use crate::time::{Interval, Timestamp};
use serde::Serialize;

/// Points followed at most; messages from further ones are never taken for sightings.
pub const MAX_POINTS: usize = 64;
/// Delays kept per pair of points and direction, for the medians.
pub const MAX_SAMPLES: usize = 4096;
/// How far apart in time two copies of one message may be (clocks off included).
pub const MAX_APART: Interval = Interval::from_secs(60);

/// Where a message was captured: its input, and the HEP agent's capture id when it came in
/// HEP (one listener hears many agents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Point {
    pub source: usize,
    pub capture_id: Option<u32>,
}

impl Point {
    pub fn of(m: &SipMessage) -> Point {
        Point {
            source: m.source,
            capture_id: m.hep().and_then(|h| h.capture_id),
        }
    }
}

#[derive(Debug, Clone)]
struct Span {
    point: Point,
    first: Timestamp,
    last: Timestamp,
}

/// The delays between two points' copies of the messages both saw, `b`'s time minus `a`'s
/// (`a` < `b`), by direction of the message (from the lower address to the higher, or back).
#[derive(Debug, Clone)]
struct Pair {
    a: Point,
    b: Point,
    forward: Vec<i64>,
    backward: Vec<i64>,
    sightings: u64,
}

/// The clock offset between two capture points, estimated from the messages both saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetEstimate {
    pub a: Point,
    pub b: Point,
    /// Messages seen at both.
    pub sightings: u64,
    /// Seconds `b`'s clock is ahead of `a`'s: with messages both ways, the mean of the two
    /// directions' median delays (the transit cancels out); one way only, the median delay,
    /// transit included.
    pub offset: f64,
    /// Seconds a message takes from one point to the other (half the difference of the two
    /// directions' medians); `None` with messages one way only.
    pub one_way_delay: Option<f64>,
    /// Sightings whose delay was not kept for the medians ([`MAX_SAMPLES`]).
    pub not_sampled: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CapturePoints {
    spans: Vec<Span>,
    pairs: Vec<Pair>,
    not_sampled: u64,
}

fn median(v: &[i64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mid = |i: usize| v.get(i).copied().unwrap_or(0) as f64;
    Some(if n % 2 == 1 {
        mid(n / 2)
    } else {
        (mid(n / 2 - 1) + mid(n / 2)) / 2.0
    })
}

impl CapturePoints {
    /// A message from `p` at `t`.
    pub fn note(&mut self, p: Point, t: Timestamp) {
        let full = self.spans.len() >= MAX_POINTS;
        match self.spans.iter_mut().find(|s| s.point == p) {
            Some(s) => {
                s.first = s.first.min(t);
                s.last = s.last.max(t);
            }
            None if !full => self.spans.push(Span {
                point: p,
                first: t,
                last: t,
            }),
            None => {}
        }
    }

    /// Whether two points captured at the same time, within [`MAX_APART`]: files of one point
    /// rotated hours apart never pair. (Files rotated back to back do overlap so: a
    /// retransmission that crosses from one into the next within a minute is taken for a
    /// sighting.)
    pub fn overlap(&self, a: Point, b: Point) -> bool {
        let span = |p: Point| self.spans.iter().find(|s| s.point == p);
        match (span(a), span(b)) {
            (Some(x), Some(y)) => {
                x.first <= y.last.saturating_add(MAX_APART)
                    && y.first <= x.last.saturating_add(MAX_APART)
            }
            _ => false,
        }
    }

    /// `m` (first seen at `primary`) was seen again at `seen`, `delay` later.
    pub fn sighting(&mut self, m: &SipMessage, primary: Point, seen: Point, delay: Interval) {
        let (a, b, d) = if primary < seen {
            (primary, seen, delay.as_nanos())
        } else {
            (seen, primary, -delay.as_nanos())
        };
        let forward = (m.src.ip(), m.src.port()) < (m.dst.ip(), m.dst.port());
        let pair = match self.pairs.iter().position(|p| p.a == a && p.b == b) {
            Some(i) => self.pairs.get_mut(i),
            None if self.pairs.len() < MAX_POINTS => {
                self.pairs.push(Pair {
                    a,
                    b,
                    forward: Vec::new(),
                    backward: Vec::new(),
                    sightings: 0,
                });
                self.pairs.last_mut()
            }
            None => None,
        };
        let Some(pair) = pair else {
            self.not_sampled += 1;
            return;
        };
        pair.sightings += 1;
        let samples = if forward {
            &mut pair.forward
        } else {
            &mut pair.backward
        };
        if samples.len() < MAX_SAMPLES {
            samples.push(d);
        } else {
            self.not_sampled += 1;
        }
    }

    /// The offsets between the points that saw the same messages.
    pub fn estimates(&self) -> Vec<OffsetEstimate> {
        self.pairs
            .iter()
            .filter_map(|p| {
                let (f, b) = (median(&p.forward), median(&p.backward));
                let (offset, delay) = match (f, b) {
                    (Some(f), Some(b)) => ((f + b) / 2.0, Some((f - b).abs() / 2.0)),
                    (Some(x), None) | (None, Some(x)) => (x, None),
                    (None, None) => return None,
                };
                Some(OffsetEstimate {
                    a: p.a,
                    b: p.b,
                    sightings: p.sightings,
                    offset: offset / 1e9,
                    one_way_delay: delay.map(|d| d / 1e9),
                    not_sampled: self.not_sampled,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_both_directions_cancel_the_transit() {
        let mut points = CapturePoints::default();
        let a = Point {
            source: 0,
            capture_id: None,
        };
        let b = Point {
            source: 1,
            capture_id: None,
        };
        let t = Timestamp::from_millis(1_000);
        points.note(a, t);
        points.note(b, t);
        assert!(points.overlap(a, b));
        let msg = |src: &str, dst: &str| {
            let mut s = crate::synth::script::Script::new();
            let text = crate::synth::script::sip(
                "OPTIONS sip:b@x SIP/2.0",
                &[("Call-ID", "p"), ("CSeq", "1 OPTIONS")],
                "",
            );
            s.udp(0, src, dst, &text);
            let mut engine = crate::engine::Engine::new(crate::engine::EngineConfig::default());
            for f in s.frames() {
                engine.feed(&f.as_frame());
            }
            engine.finish();
            engine.calls()[0].messages()[0].clone()
        };
        // b's clock 2.5 s ahead, 1 ms of transit each way.
        let there = msg("10.0.0.1:5060", "10.0.0.2:5060");
        let back = msg("10.0.0.2:5060", "10.0.0.1:5060");
        for _ in 0..3 {
            points.sighting(&there, a, b, Interval::from_millis(2501));
            points.sighting(&back, a, b, Interval::from_millis(2499));
        }
        let e = points.estimates();
        assert_eq!(e.len(), 1);
        assert!((e[0].offset - 2.5).abs() < 1e-9, "{e:?}");
        assert!((e[0].one_way_delay.unwrap() - 0.001).abs() < 1e-9);
        assert_eq!(e[0].sightings, 6);
        // Files one after the other do not overlap.
        let c = Point {
            source: 2,
            capture_id: None,
        };
        points.note(c, Timestamp::from_millis(90_000));
        assert!(!points.overlap(a, c));
    }
}
