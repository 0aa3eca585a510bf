//! The verdict: one sentence per call saying how it went and, for a failed call, where the
//! failure started. The failing hop is the deepest hop whose final response the others
//! relayed: from the originating transaction, follow the same request (From tag, CSeq) to the
//! next hop while that hop also ended without success.

use super::{Anomaly, Ctx, Severity, hop};
use crate::flow::{Outcome, SipMessage, Transaction};
use serde::Serialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopRef {
    pub from: SocketAddr,
    pub to: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    /// The Reason header (RFC 3326), e.g. `Q.850;cause=17;text="User busy"`.
    pub reason: Option<String>,
    /// The Warning header (RFC 3261 §20.43).
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub summary: String,
    /// True when the call (or request) did not succeed, or an error-level anomaly was found.
    pub failed: bool,
    /// The final status that decided the outcome at the originating side, if any.
    pub status: Option<u16>,
    pub failing_hop: Option<HopRef>,
    pub cause: Option<Cause>,
    /// The evidence: the originating request, and the final responses along the failing path.
    pub messages: Vec<usize>,
}

/// The originator's request as it continued on the next hop: same From tag, CSeq and method,
/// sent by the server of `t`, after `t`'s request.
fn next_hop<'a>(cx: &Ctx<'a>, t: &'a Transaction, req: &'a SipMessage) -> Option<&'a Transaction> {
    cx.call.transactions.iter().find(|n| {
        n.id != t.id
            && n.client == t.server
            && n.method == t.method
            && n.server != t.client
            && cx.request_of(n).is_some_and(|r| {
                r.from_tag == req.from_tag && r.cseq == req.cseq && r.time >= req.time
            })
    })
}

fn role(cx: &Ctx<'_>, a: SocketAddr, first: SocketAddr) -> &'static str {
    if a == first {
        "the caller"
    } else if cx.call.transactions.iter().any(|t| t.client == a) {
        "the proxy"
    } else {
        "the callee"
    }
}

pub fn verdict(cx: &Ctx<'_>, anomalies: &[Anomaly]) -> Verdict {
    let s = cx.summary;
    let errors: Vec<&Anomaly> = anomalies
        .iter()
        .filter(|a| a.severity == Severity::Error)
        .collect();
    let problems = || {
        let mut kinds: Vec<&str> = errors.iter().map(|a| a.kind.as_str()).collect();
        kinds.dedup();
        kinds.join(", ")
    };
    let Some(orig) = s.originating.and_then(|t| cx.tx(t)) else {
        return Verdict {
            summary: "No transaction could be followed in this call".into(),
            failed: !errors.is_empty(),
            status: None,
            failing_hop: None,
            cause: None,
            messages: Vec::new(),
        };
    };
    let request = cx.request_of(orig);
    let mut messages: Vec<usize> = request.map(|r| r.index).into_iter().collect();
    // Follow the request downstream while each hop also failed.
    let mut chain: Vec<&Transaction> = vec![orig];
    if let Some(req) = request {
        let mut cur = orig;
        while chain.len() < 32 {
            let Some(n) = next_hop(cx, cur, req) else {
                break;
            };
            if n.final_status().is_some_and(|c| c < 300) {
                break;
            }
            chain.push(n);
            cur = n;
        }
    }
    let first_client = orig.client;
    let what = orig.method.as_str();
    let failed_outcome = matches!(
        s.outcome,
        Outcome::Busy
            | Outcome::Rejected
            | Outcome::ServerError
            | Outcome::Timeout
            | Outcome::Failed
            | Outcome::Redirected
    );
    let mut failing_hop = None;
    let mut cause = None;
    let summary = match s.outcome {
        Outcome::Answered | Outcome::Completed => {
            let ok = cx.final_of(orig);
            messages.extend(ok.map(|m| m.index));
            let bye = cx.call.messages.iter().any(|m| m.method() == Some("BYE"));
            let mut text = match (s.outcome, s.setup_time, s.duration) {
                (Outcome::Answered, Some(setup), Some(d)) if bye => {
                    format!("Call answered after {setup:.2} s and lasted {d:.2} s")
                }
                // No BYE: how long the call lasted is not known; say what was seen.
                (Outcome::Answered, Some(setup), Some(d)) => format!(
                    "Call answered after {setup:.2} s; no BYE seen{}",
                    if d > 0.0 {
                        format!(" (its last message came {d:.2} s after the answer)")
                    } else {
                        String::new()
                    }
                ),
                (Outcome::Answered, _, _) => "Call answered".to_string(),
                _ => format!(
                    "{what} completed: {}",
                    ok.map(|m| m.label())
                        .unwrap_or_else(|| "acknowledged".into())
                ),
            };
            match errors.first() {
                // The media finding completes the sentence: "answered after 1.20 s and
                // lasted 30.00 s, but one-way audio: …".
                Some(a) if a.kind.is_media() => {
                    text.push_str(", but ");
                    text.push_str(&a.summary);
                    let others: Vec<&str> = errors
                        .iter()
                        .skip(1)
                        .map(|a| a.kind.as_str())
                        .filter(|k| *k != a.kind.as_str())
                        .collect();
                    if !others.is_empty() {
                        text.push_str(&format!("; also {}", others.join(", ")));
                    }
                }
                Some(a) => {
                    text.push_str(&format!(", but with problems: {}", problems()));
                    text.push_str(&format!(" ({})", a.summary));
                }
                None => {}
            }
            text
        }
        Outcome::Cancelled => {
            let f = cx.final_of(orig);
            messages.extend(f.map(|m| m.index));
            format!(
                "Call cancelled by the caller{}",
                s.post_dial_delay
                    .map(|_| " while it rang")
                    .unwrap_or_default()
            )
        }
        Outcome::InProgress => {
            let last = cx.call.messages.last();
            format!(
                "{} still in progress at the end of the capture{}",
                if orig.is_invite() { "Call" } else { what },
                last.map(|m| format!(" (last: {} at {})", m.label(), cx.at(m.time)))
                    .unwrap_or_default()
            )
        }
        _ => {
            // Failed: name the deepest hop and what each hop above did with its answer.
            let deepest = chain.last().copied().unwrap_or(orig);
            failing_hop = Some(HopRef {
                from: deepest.client,
                to: deepest.server,
            });
            let subject = if orig.is_invite() {
                "Call failed".to_string()
            } else {
                format!("{what} failed")
            };
            // Evidence: the final response of every hop on the failing path.
            messages.extend(chain.iter().filter_map(|t| cx.final_of(t)).map(|m| m.index));
            let mut text = match cx.final_of(deepest) {
                Some(f) => {
                    cause = Some(Cause {
                        reason: f.reason_header().map(str::to_string).or_else(|| {
                            chain
                                .iter()
                                .filter_map(|t| cx.final_of(t))
                                .find_map(|m| m.reason_header().map(str::to_string))
                        }),
                        warning: f.warning().map(str::to_string),
                    });
                    format!("{subject}: {} answered {}", deepest.server, f.label())
                }
                None => {
                    let sent = cx
                        .messages_of(deepest)
                        .filter(|m| m.method() == Some(deepest.method.as_str()))
                        .count();
                    format!(
                        "{subject}: {} never answered the {} (sent {sent} time{} on {})",
                        deepest.server,
                        deepest.method,
                        if sent == 1 { "" } else { "s" },
                        hop(deepest.client, deepest.server)
                    )
                }
            };
            // Each hop above, from the deepest up: relayed as is, or changed.
            let deepest_label = cx.final_of(deepest).map(|m| m.label());
            for t in chain.iter().rev().skip(1) {
                let Some(f) = cx.final_of(t) else {
                    continue;
                };
                let who = role(cx, t.server, first_client);
                let to = if t.client == first_client {
                    "the caller".to_string()
                } else {
                    t.client.to_string()
                };
                if deepest_label.as_deref() == Some(f.label().as_str()) {
                    text.push_str(&format!("; {who} {} relayed it to {to}", t.server));
                } else {
                    text.push_str(&format!("; {who} {} sent {} to {to}", t.server, f.label()));
                }
            }
            if !errors.is_empty() {
                text.push_str(&format!("; problems: {}", problems()));
            }
            text
        }
    };
    messages.sort_unstable();
    messages.dedup();
    let mut summary = summary;
    if cx.call.lost_bytes > 0 {
        summary.push_str("; ");
        summary.push_str(&super::lost_note(cx.call.lost_bytes));
    }
    Verdict {
        summary,
        failed: failed_outcome || !errors.is_empty(),
        status: s.final_status,
        failing_hop,
        cause: cause.filter(|c| c.reason.is_some() || c.warning.is_some()),
        messages,
    }
}
