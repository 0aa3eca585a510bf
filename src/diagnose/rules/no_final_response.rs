//! `no_final_response`: a client transaction on a hop that never got a final response.
//!
//! Timer B (INVITE) and Timer F (non-INVITE) end a client transaction after 64·T1 without a
//! final response (RFC 3261 §17.1.1.2, §17.1.2.2). It fires when that much capture time has
//! passed, or earlier when the request's retransmissions show the client still waiting. A
//! provisional response moves an INVITE past Timer B; a proxy then waits up to Timer C
//! (§16.6 step 11, more than three minutes) before it gives up.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, hop, secs};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    for t in &cx.call.transactions {
        if t.method == "ACK" || t.final_response.is_some() || !t.request_seen {
            continue;
        }
        let sends: Vec<_> = cx
            .messages_of(t)
            .filter(|m| m.method() == Some(t.method.as_str()))
            .collect();
        let (Some(first), Some(last)) = (sends.first(), sends.last()) else {
            continue;
        };
        let provisional = cx
            .messages_of(t)
            .filter(|m| m.status().is_some_and(|s| s < 200))
            .last();
        let waited = now_minus(cx, first.time);
        let (gave_up, timer) = match (t.is_invite(), provisional) {
            (true, Some(_)) => (waited >= cx.config.timer_c.as_secs_f64(), "Timer C"),
            (true, None) => (cx.waited(first.time), "Timer B"),
            (false, _) => (cx.waited(first.time), "Timer F"),
        };
        // After a provisional, retransmissions stop (INVITE) or slow to T2 (non-INVITE); a
        // resent request then says nothing about giving up.
        let resent = sends.len() > 1 && (provisional.is_none() || !t.is_invite());
        if !(gave_up || resent) {
            continue;
        }
        let offsets: Vec<String> = sends
            .iter()
            .map(|m| secs(m.time.seconds_since(first.time)))
            .collect();
        let mut summary = format!(
            "{} on {} got no final response {}",
            t.method,
            hop(t.client, t.server),
            if gave_up {
                let limit = if timer == "Timer C" {
                    cx.config.timer_c.as_secs_f64()
                } else {
                    cx.config.timeout().as_secs_f64()
                };
                format!("within {limit} s ({timer})")
            } else {
                format!(
                    "before the capture ended ({} s after it was sent)",
                    secs(waited)
                )
            }
        );
        if sends.len() > 1 {
            summary.push_str(&format!(
                "; sent {} times, at {} s",
                sends.len(),
                offsets.join(", ")
            ));
        }
        if let Some(p) = provisional {
            summary.push_str(&format!("; last provisional: {}", p.label()));
        }
        if last.transport.is_reliable() && sends.len() > 1 {
            summary.push_str("; over a reliable transport, where SIP does not retransmit");
        }
        out.push(Anomaly {
            kind: AnomalyKind::NoFinalResponse,
            severity: Severity::Error,
            summary,
            messages: sends.iter().map(|m| m.index).collect(),
            reference: if t.is_invite() {
                "RFC 3261 §17.1.1.2 (Timer B), §16.6 (Timer C)"
            } else {
                "RFC 3261 §17.1.2.2 (Timer F)"
            },
            streams: Vec::new(),
        });
    }
}

fn now_minus(cx: &Ctx<'_>, t: crate::time::Timestamp) -> f64 {
    cx.now.seconds_since(t).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diagnose::{DiagnoseConfig, diagnose};
    use crate::synth::script::Script;

    #[test]
    fn an_invite_resent_without_answer_waits_for_a_final_response() {
        let inv = M::default().text();
        let mut s = Script::new();
        for ms in [0, 500, 1500, 3500] {
            s.udp(ms, CALLER, CALLEE, &inv);
        }
        let (calls, now) = run(&s);
        let d = diagnose(&calls[0], now, &DiagnoseConfig::default());
        let a = d
            .anomalies
            .iter()
            .find(|a| a.kind.as_str() == "no_final_response")
            .expect("flagged");
        assert_eq!(a.messages, vec![0, 1, 2, 3]);
        assert!(
            a.summary
                .contains("sent 4 times, at 0.00, 0.50, 1.50, 3.50 s"),
            "{}",
            a.summary
        );
    }

    #[test]
    fn a_ringing_invite_at_the_end_of_a_capture_is_not_flagged() {
        let mut s = Script::new();
        s.udp(0, CALLER, CALLEE, &M::default().text());
        let ringing = M {
            start: "SIP/2.0 180 Ringing",
            to_tag: Some("b1"),
            ..M::default()
        };
        s.udp(100, CALLEE, CALLER, &ringing.text());
        s.udp(40_000, CALLEE, CALLER, &ringing.text());
        let (calls, now) = run(&s);
        let d = diagnose(&calls[0], now, &DiagnoseConfig::default());
        assert!(!kinds(&d.anomalies).contains(&"no_final_response"));
    }
}
