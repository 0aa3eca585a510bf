//! `registration_failed`: a REGISTER from the originator answered with a final failure other
//! than the 401/407 challenge every registration gets first (403 Forbidden, 404 Not Found,
//! 423 Interval Too Brief, 5xx...; RFC 3261 §10.3). Unanswered REGISTERs are
//! `no_final_response`; repeated challenges are `auth_loop`.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(first) = cx.call.transactions.iter().find(|t| t.method == "REGISTER") else {
        return;
    };
    for t in cx
        .call
        .transactions
        .iter()
        .filter(|t| t.method == "REGISTER" && t.client == first.client)
    {
        let Some(code) = t.final_status() else {
            continue;
        };
        if code < 300 || code == 401 || code == 407 {
            continue;
        }
        let Some(f) = cx.final_of(t) else {
            continue;
        };
        let messages = cx.with_request(f);
        let detail = match code {
            423 => "; the requested expiry was too short (Min-Expires)",
            403 => "; the registrar refused this user",
            404 => "; the registrar does not know this address of record",
            _ => "",
        };
        out.push(Anomaly {
            kind: AnomalyKind::RegistrationFailed,
            severity: Severity::Error,
            summary: format!(
                "REGISTER for {} refused: {} at {}{detail}",
                cx.call.to.uri,
                describe(f),
                cx.at(f.time)
            ),
            messages,
            reference: "RFC 3261 §10.3",
            streams: Vec::new(),
        });
    }
}
