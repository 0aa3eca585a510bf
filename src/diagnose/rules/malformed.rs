//! `malformed`: messages that failed to parse cleanly, or whose Content-Length does not match
//! the body (RFC 3261 §7, §7.4.2, §18.3). LF-only line endings are accepted by most stacks and
//! are not flagged.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe};
use crate::sip::Issue;

fn explain(issue: &Issue) -> String {
    match issue {
        Issue::LfLineEndings => "lines end in LF, not CRLF".into(),
        Issue::HeaderWithoutColon { line } => format!("line {line} is a header without a colon"),
        Issue::ContinuationWithoutHeader { line } => {
            format!("line {line} continues no header")
        }
        Issue::NoEndOfHeaders => "no empty line ends the headers (truncated?)".into(),
        Issue::BadContentLength => "Content-Length is not a number".into(),
        Issue::ContentLengthMismatch { declared, actual } => {
            format!("Content-Length says {declared} bytes, the body has {actual}")
        }
        Issue::MissingHeader { name } => format!("no usable {name} header"),
    }
}

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let bad: Vec<_> = cx
        .call
        .messages
        .iter()
        .filter(|m| m.is_malformed())
        .collect();
    let Some(first) = bad.first() else {
        return;
    };
    let why: Vec<String> = first
        .issues()
        .iter()
        .filter(|i| i.is_malformed())
        .map(explain)
        .collect();
    out.push(Anomaly {
        kind: AnomalyKind::Malformed,
        severity: Severity::Warning,
        summary: format!(
            "{} malformed message{}; first: {} at {}: {}",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            describe(first),
            cx.at(first.time),
            why.join("; ")
        ),
        messages: bad.iter().map(|m| m.index).collect(),
        reference: "RFC 3261 §7, §7.4.2, §18.3",
        streams: Vec::new(),
    });
}
