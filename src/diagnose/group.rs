//! The story of a call group ([`crate::group`]): its verdict names the leg that failed first
//! and how each element passed the failure on ("127.0.0.1:5090 answered 503 … with Reason
//! Q.850;cause=34 on leg 2; the B2BUA 127.0.0.1 sent 480 to 127.0.0.1:5060 2 ms later"), and
//! its setup time and post-dial delay are measured end to end (from the first leg's INVITE)
//! and per leg.

use crate::flow::Outcome;
use crate::group::{Group, Leg};
use serde::Serialize;

/// One leg's figures within its group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegFigures {
    /// Position of the leg in the list grouped.
    pub leg: usize,
    pub call_id: String,
    /// Seconds from the group's first INVITE to this leg's.
    pub offset: Option<f64>,
    pub outcome: Option<Outcome>,
    pub final_status: Option<u16>,
    pub setup_time: Option<f64>,
    pub post_dial_delay: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupVerdict {
    pub summary: String,
    /// The call failed end to end: its first leg failed, or none answered and one failed.
    pub failed: bool,
    /// The final status the caller's leg got.
    pub status: Option<u16>,
    /// The leg whose failure came first (position in the list grouped).
    pub first_failing_leg: Option<usize>,
    /// From the first leg's INVITE to its 2xx, and to its first 18x.
    pub setup_time: Option<f64>,
    pub post_dial_delay: Option<f64>,
    pub legs: Vec<LegFigures>,
}

/// How an address is named in the story: the B2BUA when the group's legs both reach and
/// leave its IP address (on a capture of several hosts), else the address itself.
fn name(legs: &[&Leg], addr: std::net::SocketAddr) -> String {
    let single_host = legs
        .iter()
        .flat_map(|l| l.hops.iter())
        .all(|h| h.src.ip() == addr.ip() && h.dst.ip() == addr.ip());
    if single_host {
        return addr.to_string();
    }
    let reached = legs
        .iter()
        .any(|l| l.hops.iter().any(|h| h.dst.ip() == addr.ip()));
    let left = legs
        .iter()
        .any(|l| l.hops.iter().any(|h| h.src.ip() == addr.ip()));
    if reached && left {
        format!("the B2BUA {}", addr.ip())
    } else {
        addr.to_string()
    }
}

pub fn group_verdict(all: &[Leg], group: &Group) -> GroupVerdict {
    let legs: Vec<(usize, &Leg)> = group
        .legs
        .iter()
        .filter_map(|&i| all.get(i).map(|l| (i, l)))
        .collect();
    let only: Vec<&Leg> = legs.iter().map(|(_, l)| *l).collect();
    let first = legs.first().map(|(_, l)| *l);
    let start = legs.iter().filter_map(|(_, l)| l.start()).min();
    let figures: Vec<LegFigures> = legs
        .iter()
        .map(|(i, l)| LegFigures {
            leg: *i,
            call_id: crate::sanitize::terminal(&l.call_id).into_owned(),
            offset: l.start().zip(start).map(|(s, g)| s.seconds_since(g)),
            outcome: l.outcome,
            final_status: l.final_status,
            setup_time: l.setup_time,
            post_dial_delay: l.post_dial_delay,
        })
        .collect();
    let mut failures: Vec<(usize, &Leg)> = legs
        .iter()
        .filter(|(_, l)| l.failure.is_some())
        .copied()
        .collect();
    failures.sort_by_key(|(_, l)| l.failure.as_ref().map(|f| f.time));
    let position = |i: usize| legs.iter().position(|(j, _)| *j == i).map_or(0, |p| p + 1);
    let answered = first.is_some_and(|l| l.answered.is_some());
    let failed = first.is_some_and(|l| l.failure.is_some()) || (!answered && !failures.is_empty());
    let n = legs.len();
    let summary = if let Some((i, l)) = failures.first().filter(|_| failed) {
        let f = l.failure.as_ref();
        let mut text = f.map_or_else(String::new, |f| {
            format!(
                "{} answered {} {}{} on leg {} of {}",
                name(&only, f.from),
                f.status,
                f.reason,
                f.cause
                    .as_ref()
                    .map_or_else(String::new, |c| format!(" with Reason {c}")),
                position(*i),
                n
            )
        });
        let first_time = f.map(|f| f.time);
        for (j, other) in failures.iter().skip(1) {
            if let (Some(g), Some(t0)) = (other.failure.as_ref(), first_time) {
                text.push_str(&format!(
                    "; {} sent {} {} to {} on leg {} {} ms later",
                    name(&only, g.from),
                    g.status,
                    g.reason,
                    name(&only, g.to),
                    position(*j),
                    g.time.since(t0).as_millis()
                ));
            }
        }
        text
    } else if answered {
        let mut text = format!(
            "Answered end to end across {n} legs after {}",
            first
                .and_then(|l| l.setup_time)
                .map_or_else(|| "?".into(), |s| format!("{s:.3} s"))
        );
        if let Some(p) = first.and_then(|l| l.post_dial_delay) {
            text.push_str(&format!(" (post-dial delay {p:.3} s)"));
        }
        if let Some((i, l)) = failures.first()
            && let Some(f) = &l.failure
        {
            text.push_str(&format!(
                ", after leg {} failed with {} {}",
                position(*i),
                f.status,
                f.reason
            ));
        }
        text
    } else {
        format!("No final answer yet on the first of {n} legs")
    };
    GroupVerdict {
        summary,
        failed,
        status: first.and_then(|l| l.final_status),
        first_failing_leg: failures.first().filter(|_| failed).map(|(i, _)| *i),
        setup_time: first.and_then(|l| l.setup_time),
        post_dial_delay: first.and_then(|l| l.post_dial_delay),
        legs: figures,
    }
}

/// Figures over every call group of a capture, a call of one leg counting as a group of its
/// own (`stats --by-group`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupStats {
    pub calls: u64,
    /// Call groups, single legs included.
    pub groups: u64,
    /// Groups of two legs or more, and the calls in them.
    pub multi_leg_groups: u64,
    pub grouped_calls: u64,
    /// Groups that failed end to end.
    pub failed: u64,
    /// Failed groups by the status of the failure that came first.
    pub first_failure_status: std::collections::BTreeMap<u16, u64>,
    /// Links by the kind of their strongest evidence.
    pub links: std::collections::BTreeMap<&'static str, u64>,
    pub ambiguous: u64,
    pub crowded: u64,
}

pub fn group_stats(legs: &[Leg], grouping: &crate::group::Grouping) -> GroupStats {
    let mut s = GroupStats {
        calls: legs.len() as u64,
        multi_leg_groups: grouping.groups.len() as u64,
        ambiguous: grouping.ambiguous.len() as u64,
        crowded: grouping.crowded,
        ..GroupStats::default()
    };
    for g in &grouping.groups {
        s.grouped_calls += g.legs.len() as u64;
        let v = group_verdict(legs, g);
        if v.failed {
            s.failed += 1;
            if let Some(f) = v
                .first_failing_leg
                .and_then(|i| legs.get(i))
                .and_then(|l| l.failure.as_ref())
            {
                *s.first_failure_status.entry(f.status).or_default() += 1;
            }
        }
        for l in &g.links {
            if let Some(e) = l.evidence.iter().max_by_key(|e| e.points) {
                *s.links.entry(e.kind.as_str()).or_default() += 1;
            }
        }
    }
    for (i, l) in legs.iter().enumerate() {
        if grouping.group_of.get(i).copied().flatten().is_some() {
            continue;
        }
        if let Some(f) = l.failure.as_ref().filter(|_| l.answered.is_none()) {
            s.failed += 1;
            *s.first_failure_status.entry(f.status).or_default() += 1;
        }
    }
    s.groups = s.calls - s.grouped_calls + s.multi_leg_groups;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Failure, Hop};
    use crate::time::Timestamp;
    use std::sync::Arc;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    /// The carrier refused with 503 and a Q.850 cause; the SBC told the caller 480 2 ms later:
    /// the verdict names the carrier's leg first, then the translation.
    #[test]
    fn the_first_failure_is_named_and_its_translation_told() {
        let a = Leg {
            call_id: Arc::from("a"),
            hops: vec![Hop {
                time: t(0),
                src: "10.0.0.1:5060".parse().unwrap(),
                dst: "10.0.0.2:5060".parse().unwrap(),
            }],
            failure: Some(Failure {
                time: t(52),
                status: 480,
                reason: "Temporarily Unavailable".into(),
                cause: None,
                from: "10.0.0.2:5060".parse().unwrap(),
                to: "10.0.0.1:5060".parse().unwrap(),
            }),
            final_status: Some(480),
            ..Leg::default()
        };
        let b = Leg {
            call_id: Arc::from("b"),
            hops: vec![Hop {
                time: t(3),
                src: "10.0.0.2:5080".parse().unwrap(),
                dst: "10.0.0.3:5060".parse().unwrap(),
            }],
            failure: Some(Failure {
                time: t(50),
                status: 503,
                reason: "Service Unavailable".into(),
                cause: Some("Q.850;cause=34".into()),
                from: "10.0.0.3:5060".parse().unwrap(),
                to: "10.0.0.2:5080".parse().unwrap(),
            }),
            final_status: Some(503),
            ..Leg::default()
        };
        let group = Group {
            id: 0,
            legs: vec![0, 1],
            links: Vec::new(),
        };
        let v = group_verdict(&[a, b], &group);
        assert!(v.failed);
        assert_eq!(v.first_failing_leg, Some(1));
        assert_eq!(v.status, Some(480));
        assert_eq!(
            v.summary,
            "10.0.0.3:5060 answered 503 Service Unavailable with Reason Q.850;cause=34 on leg 2 \
             of 2; the B2BUA 10.0.0.2 sent 480 Temporarily Unavailable to 10.0.0.1:5060 on leg \
             1 2 ms later"
        );
        assert_eq!(v.legs[1].offset, Some(0.003));
    }
}
