//! `auth_loop`: the originator challenged again and again. Three or more 401/407 responses
//! to its out-of-dialog requests (a registration or a call) without a success in between
//! mean bad credentials or realm; a retry that carries no credentials at all is a client
//! that does not answer challenges (RFC 3261 §22.2, §22.3).

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(first) = cx.call.transactions.first() else {
        return;
    };
    let attempts = cx.attempts();
    let mut challenges: Vec<usize> = Vec::new();
    let mut evidence: Vec<usize> = Vec::new();
    let mut bare_retry: Option<usize> = None;
    let mut with_credentials = 0usize;
    let mut flagged = false;
    for t in attempts {
        let request = cx.request_of(t);
        if let Some(r) = request {
            if !challenges.is_empty() {
                if r.has_credentials {
                    with_credentials += 1;
                } else if bare_retry.is_none() {
                    bare_retry = Some(r.index);
                }
            }
            evidence.push(r.index);
        }
        match t.final_status() {
            Some(401) | Some(407) => {
                if let Some(f) = cx.final_of(t) {
                    challenges.push(f.index);
                    evidence.push(f.index);
                }
            }
            Some(200..=299) => {
                challenges.clear();
                evidence.clear();
                with_credentials = 0;
            }
            _ => {}
        }
        if challenges.len() >= cx.config.auth_challenges && !flagged {
            flagged = true;
            let last = challenges.last().and_then(|&i| cx.msg(i));
            out.push(Anomaly {
                kind: AnomalyKind::AuthLoop,
                severity: Severity::Error,
                summary: format!(
                    "{} challenged {} times without success{}{}",
                    first.method,
                    challenges.len(),
                    if with_credentials > 0 {
                        format!(
                            "; {with_credentials} retries carried credentials and were \
                             refused (wrong password, user or realm)"
                        )
                    } else {
                        String::new()
                    },
                    last.map(|l| format!("; last: {}", describe(l)))
                        .unwrap_or_default()
                ),
                messages: evidence.clone(),
                reference: "RFC 3261 §22.2, §22.3",
                streams: Vec::new(),
            });
        }
    }
    if let Some(i) = bare_retry
        && let Some(r) = cx.msg(i)
    {
        out.push(Anomaly {
            kind: AnomalyKind::AuthLoop,
            severity: Severity::Warning,
            summary: format!(
                "{} at {} retried after a challenge without Authorization or \
                 Proxy-Authorization",
                describe(r),
                cx.at(r.time)
            ),
            messages: vec![i],
            reference: "RFC 3261 §22.2, §22.3",
            streams: Vec::new(),
        });
    }
}
