//! Regression tests on real captures from `../shared/captures/` for cases where sipscope's
//! answer differs from tshark's on purpose, or where a bug was found. Each skips when the
//! shared folder is absent (a user's clone).

use crate::common;

use sipscope::flow::Outcome;
use std::path::PathBuf;

fn shared(rel: &str) -> Option<PathBuf> {
    let root = common::shared_captures();
    if root.is_none() {
        eprintln!("skipped: ../shared/captures is absent");
    }
    root.map(|r| r.join(rel))
}

#[test]
fn sip_quoted_in_icmp_errors_is_not_a_message() {
    let Some(p) = shared("ipfixprobe/sip.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let stats = engine.source_stats(0, "x", Default::default());
    // tshark counts 45, five of which are copies quoted in ICMP port-unreachable errors.
    assert_eq!(stats.sip_messages, 40);
    assert_eq!(stats.skipped.named("icmp"), Some(&5));
}

#[test]
fn http_on_the_sip_port_is_not_sip() {
    let Some(p) = shared("ndpi/http_on_sip_port.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    assert!(engine.calls().is_empty());
    let stats = engine.source_stats(0, "x", Default::default());
    assert_eq!(stats.sip_messages, 0);
    // The connection was tracked from its SYN; its bytes never showed a SIP start line and
    // were skipped, counted.
    assert!(
        stats
            .skipped
            .named("tcp_skipped_bytes")
            .copied()
            .unwrap_or(0)
            > 100,
        "{:?}",
        stats.skipped
    );
}

#[test]
fn tls_is_counted_and_skipped() {
    let Some(p) = shared("sngrep/tlssaved.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    assert!(engine.calls().is_empty());
    let stats = engine.source_stats(0, "x", Default::default());
    assert!(
        stats.skipped.named("tls").copied().unwrap_or(0) >= 1,
        "{:?}",
        stats.skipped
    );
}

#[test]
fn fuzzed_capture_keeps_mangled_messages() {
    let Some(p) = shared("ndpi/fuzz-2006-06-26-2594.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let packets: Vec<u64> = engine
        .calls()
        .iter()
        .flat_map(|c| c.messages().iter().map(|m| m.packet))
        .chain(engine.orphans().iter().map(|o| o.message.packet))
        .collect();
    // NUL in status lines (108, 348, 454), NUL in the request line (346), a bad UDP length
    // (154), a bare CR ending the request line (247): all kept.
    for f in [108, 154, 247, 346, 348, 454] {
        assert!(packets.contains(&f), "frame {f} lost");
    }
    let stats = engine.source_stats(0, "x", Default::default());
    assert!(stats.malformed > 0);
}

#[test]
fn fragmented_udp_invite_is_reassembled() {
    let Some(p) = shared("packetnet/udp-ip-fragmented.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let total: usize = engine.calls().iter().map(|c| c.messages().len()).sum();
    assert_eq!(total, 13);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let Some(p) = shared("sngrep/ipv6frag.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].messages().len(), 32);
}

#[test]
fn tcp_on_a_non_standard_port_is_found_by_content() {
    // Port 6060 is X11 to tshark's default port table; SIP is recognised by its start line.
    let Some(p) = shared("heplify/sip_ipv4_tcp_fragmented.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let total: usize = engine.calls().iter().map(|c| c.messages().len()).sum();
    assert_eq!(total, 406);
    assert_eq!(engine.calls().len(), 70);
}

#[test]
fn tcp_retransmissions_do_not_duplicate_messages() {
    let Some(p) = shared("heplify/sip_ipv4_tcp_retrans.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let total: usize = engine.calls().iter().map(|c| c.messages().len()).sum();
    assert_eq!(total, 8);
    let stats = engine.source_stats(0, "x", Default::default());
    assert!(
        stats
            .skipped
            .named("tcp_retransmission")
            .copied()
            .unwrap_or(0)
            > 0,
        "{:?}",
        stats.skipped
    );
}

#[test]
fn proxied_call_has_a_transaction_per_hop() {
    let Some(p) = shared("sipnab/sip-proxy.pcap") else {
        return;
    };
    let (engine, _) = common::analyse(&p);
    let calls = engine.calls();
    let call = calls[0];
    let invites: Vec<_> = call
        .transactions()
        .iter()
        .filter(|t| t.method == "INVITE")
        .collect();
    assert_eq!(invites.len(), 2, "caller→proxy and proxy→callee");
    assert_ne!(invites[0].client, invites[1].client);
    let s = call.summary(engine.now());
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(s.final_status, Some(200));
}
