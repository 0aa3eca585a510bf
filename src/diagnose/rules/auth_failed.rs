//! `auth_failed`: the originator answered a digest challenge with credentials and was
//! challenged again for the same realm, without `stale=true`: the server refused the
//! credentials, which means a wrong password or user name (RFC 3261 §22.2, §22.3; RFC 2617
//! §3.2.1: a server that only saw an expired nonce says `stale=true` and the client retries).
//! A REGISTER and an INVITE alike. Three or more challenges in a row are also an `auth_loop`;
//! this rule fires on the first refusal.
//!
//! A second challenge for another realm is not a refusal: the request passed the first
//! server and met a second one that wants its own credentials (a proxy, then a registrar).

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe};
use crate::flow::SipMessage;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(first) = cx.call.transactions.first() else {
        return;
    };
    let attempts: Vec<_> = cx
        .call
        .transactions
        .iter()
        .filter(|t| t.client == first.client && t.method == first.method && !t.in_dialog)
        .collect();
    // (the request with credentials, the challenge that refused them)
    let mut refused: Vec<(&SipMessage, &SipMessage)> = Vec::new();
    let mut succeeded_after = false;
    for t in &attempts {
        let status = t.final_status();
        if status.is_some_and(|s| (200..300).contains(&s)) {
            succeeded_after = !refused.is_empty();
            continue;
        }
        if !matches!(status, Some(401) | Some(407)) {
            continue;
        }
        let (Some(request), Some(challenge)) = (cx.request_of(t), cx.final_of(t)) else {
            continue;
        };
        if !request.has_credentials {
            continue;
        }
        let sent = request.auth();
        let again = challenge.auth();
        if again.is_some_and(|a| a.stale) {
            continue;
        }
        let realm_of = |a: Option<&crate::flow::message::Auth>| {
            a.and_then(|a| a.realm.clone())
                .map(|r| r.to_ascii_lowercase())
        };
        // Another realm: a second server asking for its own credentials.
        if let (Some(x), Some(y)) = (realm_of(sent), realm_of(again))
            && x != y
        {
            continue;
        }
        refused.push((request, challenge));
    }
    let Some(&(request, challenge)) = refused.first() else {
        return;
    };
    let realm = request
        .auth()
        .and_then(|a| a.realm.as_deref())
        .or(challenge.auth().and_then(|a| a.realm.as_deref()));
    let user = request.auth().and_then(|a| a.username.as_deref());
    let same_nonce = match (
        request.auth().and_then(|a| a.nonce.as_deref()),
        challenge.auth().and_then(|a| a.nonce.as_deref()),
    ) {
        (Some(a), Some(b)) if a == b => "; the challenge repeats the nonce the credentials used",
        _ => "",
    };
    let mut summary = format!(
        "{} with credentials{}{} at {} was challenged again: {} at {} without stale=true{}: \
         the server refused the credentials (wrong password or user name)",
        request.method().unwrap_or(first.method.as_str()),
        user.map(|u| format!(" for user \"{}\"", crate::sanitize::terminal(u)))
            .unwrap_or_default(),
        realm
            .map(|r| format!(" in realm \"{}\"", crate::sanitize::terminal(r)))
            .unwrap_or_default(),
        cx.at(request.time),
        describe(challenge),
        cx.at(challenge.time),
        same_nonce,
    );
    if refused.len() > 1 {
        summary.push_str(&format!("; {} attempts refused", refused.len()));
    }
    if succeeded_after {
        summary.push_str("; a later attempt succeeded");
    }
    let mut messages: Vec<usize> = refused
        .iter()
        .flat_map(|(r, c)| [r.index, c.index])
        .collect();
    messages.sort_unstable();
    messages.dedup();
    out.push(Anomaly {
        kind: AnomalyKind::AuthFailed,
        severity: if succeeded_after {
            Severity::Warning
        } else {
            Severity::Error
        },
        summary,
        messages,
        reference: "RFC 3261 §22.2, §22.3; RFC 2617 §3.2.1",
    });
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diagnose::{AnomalyKind, DiagnoseConfig, Severity, diagnose};
    use crate::synth::script::{Script, sip};

    /// Digest parameters: realm and nonce.
    #[derive(Clone, Copy)]
    struct Digest(&'static str, &'static str);

    /// One REGISTER and its answer.
    struct Step {
        /// The credentials the REGISTER carries, if any.
        credentials: Option<Digest>,
        status: u16,
        /// The answer's challenge, and whether it calls the nonce stale.
        challenge: Option<(Digest, bool)>,
    }

    fn challenged(credentials: Option<Digest>, realm: &'static str, nonce: &'static str) -> Step {
        Step {
            credentials,
            status: 401,
            challenge: Some((Digest(realm, nonce), false)),
        }
    }

    fn accepted(credentials: Digest) -> Step {
        Step {
            credentials: Some(credentials),
            status: 200,
            challenge: None,
        }
    }

    fn borrow(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    fn register(steps: &[Step]) -> Script {
        let mut s = Script::new();
        for (i, step) in steps.iter().enumerate() {
            let via = format!("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKreg{i}");
            let cseq = format!("{} REGISTER", i + 1);
            let mut response = vec![
                ("Via".to_string(), via),
                ("From".to_string(), "<sip:alice@x>;tag=a".to_string()),
                ("To".to_string(), "<sip:alice@x>".to_string()),
                ("Call-ID".to_string(), "reg".to_string()),
                ("CSeq".to_string(), cseq),
            ];
            let mut request = response.clone();
            if let Some(Digest(realm, nonce)) = step.credentials {
                request.push((
                    "Authorization".to_string(),
                    format!(
                        "Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", \
                         uri=\"sip:x\", response=\"00\""
                    ),
                ));
            }
            if let Some((Digest(realm, nonce), stale)) = step.challenge {
                let stale = if stale { ", stale=TRUE" } else { "" };
                response.push((
                    "WWW-Authenticate".to_string(),
                    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\"{stale}"),
                ));
            }
            let t = i as i64 * 100;
            let reason = if step.status == 200 {
                "OK"
            } else {
                "Unauthorized"
            };
            s.udp(
                t,
                CALLER,
                PROXY,
                &sip("REGISTER sip:x SIP/2.0", &borrow(&request), ""),
            );
            s.udp(
                t + 2,
                PROXY,
                CALLER,
                &sip(
                    &format!("SIP/2.0 {} {reason}", step.status),
                    &borrow(&response),
                    "",
                ),
            );
        }
        s
    }

    fn found(s: &Script) -> Vec<(AnomalyKind, Severity, String)> {
        let (calls, now) = run(s);
        diagnose(&calls[0], now, &DiagnoseConfig::default())
            .anomalies
            .into_iter()
            .map(|a| (a.kind, a.severity, a.summary))
            .collect()
    }

    #[test]
    fn refused_credentials_are_an_authentication_failure() {
        let s = register(&[
            challenged(None, "x", "n1"),
            challenged(Some(Digest("x", "n1")), "x", "n1"),
        ]);
        let f = found(&s);
        let auth: Vec<_> = f
            .iter()
            .filter(|a| a.0 == AnomalyKind::AuthFailed)
            .collect();
        assert_eq!(auth.len(), 1, "{f:?}");
        assert_eq!(auth[0].1, Severity::Error);
        assert!(auth[0].2.contains("user \"alice\""), "{}", auth[0].2);
        assert!(auth[0].2.contains("repeats the nonce"), "{}", auth[0].2);
        assert!(
            !f.iter().any(|a| a.0 == AnomalyKind::AuthLoop),
            "two challenges are no loop: {f:?}"
        );
    }

    #[test]
    fn a_stale_nonce_another_realm_and_a_clean_registration_are_not_failures() {
        let clean = register(&[challenged(None, "x", "n1"), accepted(Digest("x", "n1"))]);
        let stale = register(&[
            challenged(None, "x", "n1"),
            Step {
                credentials: Some(Digest("x", "n1")),
                status: 401,
                challenge: Some((Digest("x", "n2"), true)),
            },
            accepted(Digest("x", "n2")),
        ]);
        let two_realms = register(&[
            challenged(None, "proxy", "n1"),
            challenged(Some(Digest("proxy", "n1")), "registrar", "n2"),
            accepted(Digest("registrar", "n2")),
        ]);
        for s in [clean, stale, two_realms] {
            let f = found(&s);
            assert!(f.is_empty(), "{f:?}");
        }
    }

    #[test]
    fn a_refusal_followed_by_success_is_a_warning() {
        let s = register(&[
            challenged(None, "x", "n1"),
            challenged(Some(Digest("x", "n1")), "x", "n2"),
            accepted(Digest("x", "n2")),
        ]);
        let f = found(&s);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].0, f[0].1),
            (AnomalyKind::AuthFailed, Severity::Warning)
        );
        assert!(f[0].2.contains("a later attempt succeeded"), "{}", f[0].2);
    }
}
