//! `auth_failed`: the originator answered a digest challenge with credentials and was
//! challenged again for the same realm, without `stale=true`: the server refused the
//! credentials, which means a wrong password or user name (RFC 3261 §22.2, §22.3; RFC 2617
//! §3.2.1: a server that only saw an expired nonce says `stale=true` and the client retries).
//! A REGISTER and an INVITE alike. Three or more challenges in a row are also an `auth_loop`;
//! this rule fires on the first refusal.
//!
//! A second challenge for another realm is not a refusal: the request passed the first
//! server and met a second one that wants its own credentials (a proxy, then a registrar).
//! Only credentials that answer a challenge seen earlier in the call count: a first request
//! may carry credentials cached from an earlier registration (their nonce has expired), and
//! an IMS phone's first REGISTER carries an Authorization with an empty nonce that only names
//! the user (3GPP TS 24.229 §5.1.1.2); neither is a refusal when it is challenged.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe, secs};
use crate::flow::SipMessage;
use crate::flow::message::Auth;

/// Credentials that a challenge refused.
struct Refusal<'a> {
    /// The request that carried the credentials.
    request: &'a SipMessage,
    /// The challenge the credentials answered.
    answered: &'a SipMessage,
    /// The new challenge that refused them.
    challenge: &'a SipMessage,
}

impl Refusal<'_> {
    /// The new challenge repeats the nonce the credentials used: the server did not think it
    /// expired, so it refused the credentials themselves.
    fn same_nonce(&self) -> bool {
        let nonce = |m: &SipMessage| m.auth().and_then(|a| a.nonce.clone());
        nonce(self.request).is_some_and(|n| Some(n) == nonce(self.challenge))
    }
}

fn realm(a: Option<&Auth>) -> Option<String> {
    a.and_then(|a| a.realm.as_deref())
        .map(str::to_ascii_lowercase)
}

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(first) = cx.call.transactions.first() else {
        return;
    };
    let attempts = cx.attempts();
    let mut refused: Vec<Refusal<'_>> = Vec::new();
    let mut succeeded_after = false;
    // The last challenge, until a success.
    let mut last_challenge: Option<&SipMessage> = None;
    for t in attempts {
        let status = t.final_status();
        if status.is_some_and(|s| (200..300).contains(&s)) {
            succeeded_after = !refused.is_empty();
            last_challenge = None;
            continue;
        }
        if !matches!(status, Some(401) | Some(407)) {
            continue;
        }
        let (Some(request), Some(challenge)) = (cx.request_of(t), cx.final_of(t)) else {
            continue;
        };
        let answered = last_challenge.replace(challenge);
        let sent = request.auth();
        let empty_nonce = sent.is_some_and(|a| a.nonce.as_deref().is_none_or(str::is_empty));
        let (Some(answered), true, false) = (answered, request.has_credentials, empty_nonce) else {
            continue;
        };
        let again = challenge.auth();
        if again.is_some_and(|a| a.stale) {
            continue;
        }
        // Another realm: a second server asking for its own credentials.
        if let (Some(x), Some(y)) = (realm(sent), realm(again))
            && x != y
        {
            continue;
        }
        refused.push(Refusal {
            request,
            answered,
            challenge,
        });
    }
    // Certain when the server repeated the nonce, or when credentials answering a fresh nonce
    // were refused again right after (an expired nonce would have been accepted then).
    let certain = refused.iter().enumerate().find(|(i, r)| {
        r.same_nonce()
            || refused
                .get(i + 1)
                .is_some_and(|next| std::ptr::eq(next.answered, r.challenge))
    });
    let Some(shown) = certain.map(|(_, r)| r).or(refused.first()) else {
        return;
    };
    let sent = shown.request.auth();
    let realm = sent
        .and_then(|a| a.realm.as_deref())
        .or(shown.challenge.auth().and_then(|a| a.realm.as_deref()));
    let user = sent.and_then(|a| a.username.as_deref());
    let why = if shown.same_nonce() {
        "the challenge repeats the nonce the credentials used: the server refused the \
         credentials (wrong password or user name)"
            .to_string()
    } else if certain.is_some() {
        "credentials answering that challenge's nonce were refused in turn: the server refused \
         the credentials (wrong password or user name)"
            .to_string()
    } else {
        format!(
            "with a new nonce: the credentials were refused, or the nonce had expired before \
             the client answered it ({} s after the challenge)",
            secs(shown.request.time.seconds_since(shown.answered.time))
        )
    };
    let mut summary = format!(
        "{} with credentials{}{} at {} was challenged again, without stale=true: {} at {}; {why}",
        shown.request.method().unwrap_or(first.method.as_str()),
        user.map(|u| format!(" for user \"{}\"", crate::sanitize::terminal(u)))
            .unwrap_or_default(),
        realm
            .map(|r| format!(" in realm \"{}\"", crate::sanitize::terminal(r)))
            .unwrap_or_default(),
        cx.at(shown.request.time),
        describe(shown.challenge),
        cx.at(shown.challenge.time),
    );
    if refused.len() > 1 {
        summary.push_str(&format!("; {} attempts refused", refused.len()));
    }
    if succeeded_after {
        summary.push_str("; a later attempt succeeded");
    }
    let mut messages: Vec<usize> = refused
        .iter()
        .flat_map(|r| [r.request.index, r.challenge.index])
        .collect();
    messages.sort_unstable();
    messages.dedup();
    // A refusal the client got past is worth less; an ambiguous one (a nonce that may have
    // expired) is never an error.
    let severity = match (certain.is_some(), succeeded_after) {
        (true, false) => Severity::Error,
        (true, true) | (false, false) => Severity::Warning,
        (false, true) => Severity::Info,
    };
    out.push(Anomaly {
        kind: AnomalyKind::AuthFailed,
        severity,
        summary,
        messages,
        reference: "RFC 3261 §22.2, §22.3; RFC 2617 §3.2.1",
        streams: Vec::new(),
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

    /// Via, From, To, Call-ID and CSeq of the `i`-th attempt (a branch and CSeq of its own).
    fn headers(i: usize, method: &str, to: &str, call_id: &str) -> Vec<(String, String)> {
        vec![
            (
                "Via".to_string(),
                format!("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call_id}{i}"),
            ),
            ("From".to_string(), "<sip:alice@x>;tag=a".to_string()),
            ("To".to_string(), to.to_string()),
            ("Call-ID".to_string(), call_id.to_string()),
            ("CSeq".to_string(), format!("{} {method}", i + 1)),
        ]
    }

    fn register(steps: &[Step]) -> Script {
        let mut s = Script::new();
        for (i, step) in steps.iter().enumerate() {
            let mut response = headers(i, "REGISTER", "<sip:alice@x>", "reg");
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
        // Credentials cached from an earlier registration, refused once, then accepted; and
        // an IMS first REGISTER whose Authorization only names the user (empty nonce).
        let cached = register(&[
            challenged(Some(Digest("x", "old")), "x", "n1"),
            accepted(Digest("x", "n1")),
        ]);
        let ims = register(&[
            challenged(Some(Digest("ims", "")), "ims", "n1"),
            accepted(Digest("ims", "n1")),
        ]);
        for s in [clean, stale, two_realms, cached, ims] {
            let f = found(&s);
            assert!(f.is_empty(), "{f:?}");
        }
    }

    /// A server that sends a fresh nonce with every challenge (as kamailio does): refused
    /// twice in a row is certain; refused once, then abandoned, may be an expired nonce.
    #[test]
    fn fresh_nonces_are_certain_only_when_refused_twice() {
        let twice = register(&[
            challenged(None, "x", "n1"),
            challenged(Some(Digest("x", "n1")), "x", "n2"),
            challenged(Some(Digest("x", "n2")), "x", "n3"),
        ]);
        let f = found(&twice);
        let auth: Vec<_> = f
            .iter()
            .filter(|a| a.0 == AnomalyKind::AuthFailed)
            .collect();
        assert_eq!(auth.len(), 1, "{f:?}");
        assert_eq!(auth[0].1, Severity::Error);
        assert!(auth[0].2.contains("refused in turn"), "{}", auth[0].2);
        let once = register(&[
            challenged(None, "x", "n1"),
            challenged(Some(Digest("x", "n1")), "x", "n2"),
        ]);
        let f = found(&once);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].0, f[0].1),
            (AnomalyKind::AuthFailed, Severity::Warning)
        );
        assert!(f[0].2.contains("or the nonce had expired"), "{}", f[0].2);
    }

    #[test]
    fn a_refusal_followed_by_success_is_no_error() {
        let s = register(&[
            challenged(None, "x", "n1"),
            challenged(Some(Digest("x", "n1")), "x", "n2"),
            accepted(Digest("x", "n2")),
        ]);
        let f = found(&s);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].0, f[0].1), (AnomalyKind::AuthFailed, Severity::Info));
        assert!(f[0].2.contains("or the nonce had expired"), "{}", f[0].2);
        assert!(f[0].2.contains("a later attempt succeeded"), "{}", f[0].2);
    }

    /// An INVITE challenged by a proxy (407), retried with Proxy-Authorization, and
    /// challenged again with the same nonce: the same finding as for REGISTER.
    #[test]
    fn an_invite_refused_by_a_proxy_is_an_authentication_failure() {
        let mut s = Script::new();
        for (i, credentials) in [None, Some("n1")].into_iter().enumerate() {
            let mut request = headers(i, "INVITE", "<sip:bob@x>", "inv");
            let mut response = request.clone();
            response[2].1.push_str(";tag=p");
            if let Some(nonce) = credentials {
                request.push((
                    "Proxy-Authorization".to_string(),
                    format!(
                        "Digest username=\"alice\", realm=\"x\", nonce=\"{nonce}\", uri=\"sip:bob@x\", response=\"00\""
                    ),
                ));
            }
            response.push((
                "Proxy-Authenticate".to_string(),
                "Digest realm=\"x\", nonce=\"n1\"".to_string(),
            ));
            let t = i as i64 * 100;
            s.udp(
                t,
                CALLER,
                PROXY,
                &sip("INVITE sip:bob@x SIP/2.0", &borrow(&request), ""),
            );
            s.udp(
                t + 2,
                PROXY,
                CALLER,
                &sip(
                    "SIP/2.0 407 Proxy Authentication Required",
                    &borrow(&response),
                    "",
                ),
            );
        }
        let f = found(&s);
        let auth: Vec<_> = f
            .iter()
            .filter(|a| a.0 == AnomalyKind::AuthFailed)
            .collect();
        assert_eq!(auth.len(), 1, "{f:?}");
        assert_eq!(auth[0].1, Severity::Error);
        assert!(
            auth[0].2.starts_with("INVITE with credentials"),
            "{}",
            auth[0].2
        );
    }
}
