//! `private_address`: a packet from a public address that names a private one: the SDP
//! connection address (media will be sent where it cannot arrive: one-way or no audio), the
//! Contact of a dialog (the remote target: later in-dialog requests go nowhere, missing ACK,
//! BYE timeouts), the first Record-Route of a dialog (a proxy behind a NAT that recorded its
//! private address: in-dialog requests routed through it go nowhere), or the top Via (the next hop must add `received`, RFC 3261 §18.2.1, RFC
//! 3581). Private means RFC 1918, shared address space (100.64.0.0/10, RFC 6598), link-local,
//! or IPv6 unique-local and link-local.
//!
//! Only a dialog's Contact is a target (§12.1.1, §12.1.2): that of dialog-creating and
//! target-refresh requests and their responses. A REGISTER's Contact is a binding, and a
//! registrar's 200 OK lists the bindings back: neither routes anything in this call. A binding
//! earns a note only when the registrar's 2xx shows it did not record where the binding
//! really is (no `received` or `alias` on the Contact, no Path, RFC 3327): requests for the
//! user may then go to an address that cannot be reached. Without the 2xx there is nothing to
//! say.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity};
use std::net::IpAddr;

pub use crate::sip::header::is_private;

/// Addresses that can be reached across the Internet, as far as a packet's source can tell.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    !is_private(ip)
        && !ip.is_loopback()
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    // (what, address) -> evidence, in order of first sight.
    let mut found: Vec<(&'static str, IpAddr, Vec<usize>, String)> = Vec::new();
    // Each new (what, address) is looked up among those found: capped, so that a call with
    // thousands of private addresses stays linear.
    let mut budget = crate::diagnose::Budget::new(
        AnomalyKind::PrivateAddress,
        "RFC 3261 §18.2.1, §12.1.2; RFC 3581; RFC 3264 §5",
    );
    for m in cx.call.messages.iter().filter(|m| !m.retransmission) {
        if !is_public(m.src.ip()) {
            continue;
        }
        let mut note = |what: &'static str, ip: IpAddr| {
            if !is_private(ip) {
                return;
            }
            match found.iter_mut().find(|(w, a, _, _)| *w == what && *a == ip) {
                Some((_, _, ev, _)) => ev.push(m.index),
                None if budget.take() => found.push((
                    what,
                    ip,
                    vec![m.index],
                    format!("{} from {}", m.label(), m.src),
                )),
                None => {}
            }
        };
        if let Some(sdp) = m.sdp() {
            let addresses = sdp
                .connection
                .iter()
                .chain(sdp.media.iter().filter_map(|x| x.connection.as_ref()));
            for a in addresses {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    note("SDP connection address", ip);
                }
            }
        }
        if let Some(ip) = m.record_route_private()
            && m.cseq_method().is_some_and(dialog_target)
        {
            note("Record-Route", ip);
        }
        if let Some(ip) = m.contact_ip {
            match m.cseq_method() {
                Some(method) if dialog_target(method) => note("Contact", ip),
                Some("REGISTER") if m.is_request() && binding_unrecorded(cx, m) => {
                    note("registered Contact", ip)
                }
                _ => {}
            }
        }
        if let Some(ip) = m
            .via_sent_by
            .as_deref()
            .and_then(|v| crate::sip::header::ip_of(crate::sip::header::host_of(v.as_bytes())))
            && m.is_request()
        {
            note("top Via", ip);
        }
    }
    for (what, ip, messages, first) in found {
        let (severity, risk) = match what {
            "SDP connection address" => (
                Severity::Warning,
                "media sent there will not arrive: one-way or no audio",
            ),
            "Contact" => (
                Severity::Warning,
                "in-dialog requests (ACK, BYE) sent there will not arrive",
            ),
            "Record-Route" => (
                Severity::Warning,
                "in-dialog requests routed through that proxy (ACK, BYE) will not arrive",
            ),
            "registered Contact" => (
                Severity::Info,
                "the registrar's 2xx shows no received, alias or Path for the binding, so \
                 requests for this user may be sent where they cannot arrive",
            ),
            _ => (
                Severity::Info,
                "the next hop must answer to the packet's source (received, rport)",
            ),
        };
        out.push(Anomaly {
            kind: AnomalyKind::PrivateAddress,
            severity,
            summary: format!("{what} {ip} is private in {first}, a public address: {risk}"),
            messages,
            reference: "RFC 3261 §18.2.1, §12.1.2; RFC 3581; RFC 3264 §5",
            streams: Vec::new(),
        });
    }
    budget.finish(out);
}

/// Methods whose Contact is a dialog's remote target: those that create a dialog and the
/// target refreshes (RFC 3261 §12.1, §12.2; RFC 3311 UPDATE; RFC 6665 SUBSCRIBE, NOTIFY).
fn dialog_target(method: &str) -> bool {
    matches!(
        method,
        "INVITE" | "SUBSCRIBE" | "NOTIFY" | "REFER" | "UPDATE"
    )
}

/// Whether the registrar's 2xx to this REGISTER is in the call and shows that nothing recorded
/// where the binding really is.
fn binding_unrecorded(cx: &Ctx<'_>, register: &crate::flow::SipMessage) -> bool {
    if register.contact_recorded {
        return false;
    }
    let Some(t) = register
        .transaction
        .and_then(|t| cx.call.transactions.get(t as usize))
    else {
        return false;
    };
    cx.messages_of(t)
        .find(|m| m.status().is_some_and(|s| (200..300).contains(&s)))
        .is_some_and(|ok| !ok.contact_recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_shared_and_public_ranges() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "198.51.100.7", "2001:db8::1", "::ffff:8.8.4.4"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for neither in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "224.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(neither.parse().unwrap()), "{neither}");
        }
    }

    /// A proxy behind a NAT records its private address: the 200 OK that crosses to the public
    /// side carries it in Record-Route, and the caller would send its ACK and BYE there. A
    /// REGISTER's bindings and a public Record-Route are nothing to say.
    #[test]
    fn a_private_record_route_and_registration_bindings() {
        use crate::diagnose::rules::testkit::run;
        use crate::diagnose::{DiagnoseConfig, diagnose};
        use crate::synth::script::{Script, sip};
        let (phone, proxy) = ("198.51.100.7:5060", "203.0.113.9:5060");
        let msg = |start: &str, cseq: &str, rr: &str, contact: &str| {
            sip(
                start,
                &[
                    ("Via", "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1"),
                    ("From", "<sip:a@x>;tag=a"),
                    ("To", "<sip:b@x>;tag=b"),
                    ("Call-ID", "rr"),
                    ("CSeq", cseq),
                    ("Record-Route", rr),
                    ("Contact", contact),
                ],
                "",
            )
        };
        let found = |rr: &str, method: &str| {
            let mut s = Script::new();
            let cseq = format!("1 {method}");
            let contact = "<sip:b@198.51.100.20>";
            s.udp(
                0,
                phone,
                proxy,
                &msg(&format!("{method} sip:b@x SIP/2.0"), &cseq, rr, contact),
            );
            s.udp(5, proxy, phone, &msg("SIP/2.0 200 OK", &cseq, rr, contact));
            let (calls, now) = run(&s);
            diagnose(&calls[0], now, &DiagnoseConfig::default())
                .anomalies
                .into_iter()
                .filter(|a| a.kind == AnomalyKind::PrivateAddress)
                .map(|a| (a.severity, a.summary))
                .collect::<Vec<_>>()
        };
        let private = found("<sip:10.1.1.1;lr>", "INVITE");
        assert_eq!(private.len(), 1, "{private:?}");
        assert_eq!(private[0].0, Severity::Warning);
        assert!(
            private[0].1.starts_with("Record-Route 10.1.1.1"),
            "{private:?}"
        );
        assert!(found("<sip:203.0.113.9;lr>", "INVITE").is_empty());
        // A registration of a private Contact, and the registrar's answer listing `bound`.
        let registered = |bound: &str| {
            let mut s = Script::new();
            let rr = "<sip:203.0.113.9;lr>";
            let contact = "<sip:a@192.168.1.20:5060>";
            s.udp(
                0,
                phone,
                proxy,
                &msg("REGISTER sip:x SIP/2.0", "1 REGISTER", rr, contact),
            );
            s.udp(
                5,
                proxy,
                phone,
                &msg("SIP/2.0 200 OK", "1 REGISTER", rr, bound),
            );
            let (calls, now) = run(&s);
            diagnose(&calls[0], now, &DiagnoseConfig::default())
        };
        // The binding recorded with `received`: nothing to say.
        let d =
            registered("<sip:a@192.168.1.20:5060>;expires=60;received=\"sip:198.51.100.7:5060\"");
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        // Without `received`, the binding is an info note, on the REGISTER.
        let d = registered("<sip:a@192.168.1.20:5060>;expires=60");
        let notes: Vec<_> = d
            .anomalies
            .iter()
            .map(|a| (a.severity, a.summary.as_str()))
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, Severity::Info);
        assert!(
            notes[0].1.starts_with("registered Contact 192.168.1.20"),
            "{notes:?}"
        );
    }
}
