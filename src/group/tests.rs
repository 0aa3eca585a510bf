use super::*;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A leg whose INVITE went from `src` to `dst` at `at` ms, to `dialled`, from `caller`.
fn leg(id: &str, at: i64, src: &str, dst: &str, dialled: &str, caller: &str) -> Leg {
    Leg {
        call_id: Arc::from(id),
        seq: at as u64,
        hops: vec![Hop {
            time: t(at),
            src: addr(src),
            dst: addr(dst),
        }],
        dialled: Some(dialled.into()),
        caller: Some(caller.into()),
        ..Leg::default()
    }
}

#[test]
fn numbers_are_compared_without_their_prefixes() {
    assert!(same_party("+4930123456", "004930123456"));
    assert!(same_party("+4930123456", "030123456"));
    assert!(same_party("+1 (555) 010-0199", "15550100199"));
    assert!(same_party("alice", "Alice"));
    assert!(!same_party("+4930123456", "+4930123457"));
    assert!(!same_party("123", "9123"));
    assert!(!same_party("alice", "bob"));
    assert!(!same_party("", ""));
}

#[test]
fn explicit_headers_link_outright() {
    let mut a = leg("a@x", 0, "10.0.0.1:5060", "10.0.0.2:5060", "100", "200");
    let mut b = leg("b@x", 5, "10.0.0.2:5060", "10.0.0.3:5060", "999", "888");
    b.x_call_id = Some("a@x".into());
    let mut c = leg("c@x", 9000, "10.0.0.9:5060", "10.0.0.8:5060", "5", "6");
    let mut d = leg("d@x", 9500, "10.0.0.7:5060", "10.0.0.6:5060", "7", "8");
    c.session_ids = vec!["ab30317f1a784dc48ff824d0d3715d86".into()];
    d.session_ids = vec!["ab30317f1a784dc48ff824d0d3715d86".into()];
    a.icid = Some("icid-1".into());
    let g = correlate(&[a, b, c, d], &GroupConfig::default());
    assert_eq!(g.groups.len(), 2, "{g:?}");
    assert_eq!(g.groups[0].legs, vec![0, 1]);
    assert_eq!(g.groups[0].links[0].evidence[0].kind, EvidenceKind::XCallId);
    assert_eq!(g.groups[1].legs, vec![2, 3]);
    assert_eq!(
        g.groups[1].links[0].evidence[0].kind,
        EvidenceKind::SessionId
    );
    assert_eq!(g.group_of, vec![Some(0), Some(0), Some(1), Some(1)]);
    assert_eq!(g.others(1), vec![0]);
}

/// A B2BUA: the INVITE leaves the element 3 ms after one reached it, for the same number,
/// and the answers are relayed.
#[test]
fn a_b2bua_pair_is_scored_and_linked() {
    let mut a = leg(
        "in@x",
        0,
        "10.0.0.1:5060",
        "10.0.0.2:5060",
        "+4930123456",
        "100",
    );
    let mut b = leg(
        "out@y",
        3,
        "10.0.0.2:5080",
        "10.0.0.3:5060",
        "030123456",
        "100",
    );
    b.ringing = Some(t(50));
    a.ringing = Some(t(52));
    b.answered = Some(t(900));
    a.answered = Some(t(902));
    let g = correlate(&[a.clone(), b.clone()], &GroupConfig::default());
    assert_eq!(g.groups.len(), 1, "{g:?}");
    let link = &g.groups[0].links[0];
    let kinds: Vec<_> = link.evidence.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EvidenceKind::B2buaAddress));
    assert!(kinds.contains(&EvidenceKind::MirroredAnswer));
    assert_eq!(link.score, WEAK_CAP + 15 + 25);
    // Without the relayed responses, weak evidence alone is not enough.
    a.ringing = None;
    a.answered = None;
    let g = correlate(&[a, b], &GroupConfig::default());
    assert!(g.groups.is_empty(), "{g:?}");
}

/// Two calls through the same element to the same number at the same moment, mirrored alike:
/// each inbound leg has two equal candidates. Reported, never guessed.
#[test]
fn equal_candidates_are_ambiguous() {
    let mut legs = Vec::new();
    for i in 0..2 {
        let mut a = leg(
            &format!("in{i}"),
            0,
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            "555",
            "1",
        );
        let mut b = leg(
            &format!("out{i}"),
            3,
            "10.0.0.2:5080",
            "10.0.0.3:5060",
            "555",
            "1",
        );
        b.answered = Some(t(500));
        a.answered = Some(t(502));
        legs.push(a);
        legs.push(b);
    }
    let g = correlate(&legs, &GroupConfig::default());
    assert!(g.groups.is_empty(), "{g:?}");
    assert!(!g.ambiguous.is_empty());
    assert!(g.ambiguous.iter().all(|a| a.candidates.len() >= 2));
}

/// The same RTP SSRC on both sides of a relay, with the element's address: linked.
#[test]
fn a_relayed_ssrc_links() {
    let mut a = leg("in", 0, "10.0.0.1:5060", "10.0.0.2:5060", "555", "1");
    let mut b = leg("out", 3, "10.0.0.2:5080", "10.0.0.3:5060", "777", "2");
    a.ssrcs = vec![(0x1234_5678, t(1000))];
    b.ssrcs = vec![(0x1234_5678, t(1001))];
    let g = correlate(&[a, b], &GroupConfig::default());
    assert_eq!(g.groups.len(), 1, "{g:?}");
}

/// A transfer: the transferee's new INVITE carries Referred-By the transferor, to the
/// REFER's target, seconds after the REFER.
#[test]
fn a_transfer_links_by_referred_by() {
    let mut a = leg("first", 0, "10.0.0.1:5060", "10.0.0.2:5060", "bob", "alice");
    a.refer = Some((t(10_000), Some("bob".into()), "carol".into()));
    a.answered = Some(t(500));
    let mut b = leg(
        "second",
        10_050,
        "10.0.0.1:5060",
        "10.0.0.4:5060",
        "carol",
        "alice",
    );
    b.referred_by = Some("bob".into());
    b.answered = Some(t(11_000));
    let g = correlate(&[a, b], &GroupConfig::default());
    assert_eq!(g.groups.len(), 1, "{g:?}");
    assert!(
        g.groups[0].links[0]
            .evidence
            .iter()
            .any(|e| e.kind == EvidenceKind::ReferredBy)
    );
}

/// A capture whose every call names its other leg (a B2BUA setting X-Call-ID on all): as many
/// explicit links as pairs, found through an index (they were looked for in the list of
/// links, which made this quadratic).
#[test]
fn many_explicit_links_are_grouped_pair_by_pair() {
    let n = 20_000;
    let legs: Vec<Leg> = (0..n)
        .map(|i| {
            let at = i as i64 * 10;
            let mut l = leg(
                &format!("c{i}"),
                at,
                "10.0.0.1:5060",
                "10.0.0.2:5060",
                &format!("{}", 100_000 + i),
                "1",
            );
            if i % 2 == 1 {
                l.x_call_id = Some(format!("c{}", i - 1));
            }
            l
        })
        .collect();
    let g = correlate(&legs, &GroupConfig::default());
    assert_eq!(g.groups.len(), n / 2);
    assert!(
        g.groups
            .iter()
            .all(|g| g.legs.len() == 2 && g.links.len() == 1)
    );
    assert_eq!(g.groups[7].legs, vec![14, 15]);
}
