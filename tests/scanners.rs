//! Scanners named (`flow::scanner`): a recorded sweep, a real one from a public capture and the
//! synthetic flood are found, each of their calls marked; clean traffic, a busy registrar
//! client and a proxy's OPTIONS pings are not scanners.

use crate::common;

use assert_cmd::Command;
use sipscope::engine::{Engine, EngineConfig};
use std::net::IpAddr;

fn scanners_of(engine: &Engine) -> Vec<(IpAddr, u64)> {
    engine
        .scanners()
        .scanners()
        .iter()
        .map(|s| (s.source, s.requests))
        .collect()
}

/// sipp sweeping 40 extensions with OPTIONS (`scripts/record-samples.sh`): one scanner, every
/// call marked, in every output.
#[test]
fn a_recorded_sweep_is_named_in_every_output() {
    let path = common::samples().join("scanner-sweep.pcap");
    let (engine, _) = common::analyse(&path);
    let local: IpAddr = [127, 0, 0, 1].into();
    assert_eq!(scanners_of(&engine), [(local, 40)]);

    let out = Command::cargo_bin("sipscope")
        .unwrap()
        .args(["stats"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("scanners              1 sources, 40 requests")
            && text.contains("127.0.0.1           40 requests (OPTIONS 40), 40 refused, 0 unanswered, User-Agent of a scanning tool"),
        "{text}"
    );

    for args in [
        &["export", "--format", "json"][..],
        &["calls", "--format", "json"][..],
    ] {
        let out = Command::cargo_bin("sipscope")
            .unwrap()
            .args(args)
            .arg(&path)
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["scanners"][0]["source"], "127.0.0.1", "{args:?}");
        assert_eq!(doc["scanners"][0]["methods"]["OPTIONS"], 40, "{args:?}");
        let calls = doc["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 40);
        assert!(calls.iter().all(|c| c["scanner"] == true), "{args:?}");
    }
    // `diagnose` counts the scanner's failures instead of listing them.
    let out = Command::cargo_bin("sipscope")
        .unwrap()
        .args(["diagnose"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "0 calls clean, 40 with a failure or an anomaly\n40 of them begun by scanners and not \
         shown (1 scanning source, listed by `sipscope stats`; --all shows their calls)\n"
    );
    let out = Command::cargo_bin("sipscope")
        .unwrap()
        .args(["calls"])
        .arg(&path)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().next().unwrap().ends_with("NOTE"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.ends_with("  scanner")).count(),
        40
    );
}

/// Every other sample is real traffic of a few calls: no scanner.
#[test]
fn clean_samples_have_no_scanners() {
    for path in common::captures_in(&common::samples()) {
        if path.ends_with("scanner-sweep.pcap") {
            continue;
        }
        let (engine, _) = common::analyse(&path);
        assert_eq!(scanners_of(&engine), [], "{}", path.display());
    }
}

/// A real sipvicious run (ipfixprobe's sip.pcap: INVITE probes, a REGISTER sweep, then a
/// password guess): the scanner and nobody else, among the public captures.
#[test]
fn the_public_captures_have_one_scanner_the_real_one() {
    let Some(dir) = common::shared_captures() else {
        eprintln!("skipped: ../shared/captures is absent");
        return;
    };
    for path in common::captures_in(&dir) {
        let (engine, _) = common::analyse(&path);
        let found = scanners_of(&engine);
        if path.ends_with("ipfixprobe/sip.pcap") {
            assert_eq!(found, [("147.32.77.113".parse().unwrap(), 13)]);
        } else {
            assert_eq!(found, [], "{}", path.display());
        }
    }
}

/// The synthetic flood: four sources (two name their tool, two pretend to be phones), and
/// none of the real calls among them is marked.
#[test]
fn the_synthetic_flood_names_its_four_sources_and_no_caller() {
    let cfg = {
        let mut built = sipscope::synth::SynthConfig::default();
        built.calls = 100;
        built.scanner_requests = 8_000;
        built.scanner_rate = 1_000.0;
        built.calls_per_second = 20.0;
        built
    };
    let mut pcap = Vec::new();
    sipscope::synth::write_pcap(&cfg, &mut pcap).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    std::fs::write(&path, pcap).unwrap();
    let (engine, _) = common::analyse(&path);
    let found = scanners_of(&engine);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found.iter().map(|s| s.1).sum::<u64>(), 8_000);
    let table = engine.scanners();
    let calls = engine.calls();
    let marked = calls.iter().filter(|c| table.marks(c)).count();
    assert_eq!((calls.len(), marked), (8_100, 8_000));
}

const REGISTRAR: &str = "10.0.0.1:5060";

fn register(call: usize, cseq: u32, user: &str, from: &str, credentials: bool) -> String {
    let auth = if credentials {
        format!(
            "Authorization: Digest username=\"{user}\", realm=\"example.net\", nonce=\"n{call}\", uri=\"sip:example.net\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
        )
    } else {
        String::new()
    };
    format!(
        "REGISTER sip:example.net SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call}x{cseq}\r\n\
         From: <sip:{user}@example.net>;tag=f{call}\r\nTo: <sip:{user}@example.net>\r\n\
         Call-ID: reg{call}@pbx\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{from}>\r\n\
         Expires: 600\r\n{auth}User-Agent: Asterisk PBX 20.5.0\r\nContent-Length: 0\r\n\r\n"
    )
}

fn response(request: &str, status: &str, extra: &str) -> String {
    let keep: Vec<&str> = request
        .split("\r\n")
        .filter(|l| {
            ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| l.starts_with(h))
        })
        .collect();
    let mut out = format!("SIP/2.0 {status}\r\n");
    for l in keep {
        out.push_str(l);
        if l.starts_with("To:") {
            out.push_str(";tag=r1");
        }
        out.push_str("\r\n");
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// Precision: a PBX registering 300 extensions (each challenged with 401 and registered again
/// with credentials in the same call, a fresh Call-ID per extension and refresh), and a proxy
/// pinging three gateways with OPTIONS every 10 s for ten minutes, one of them down: no
/// scanner, though both send hundreds of requests with distinct Call-IDs and many get a 401 or
/// no answer at all.
#[test]
fn a_busy_registrar_client_and_options_pings_are_not_scanners() {
    let mut frames = Vec::new();
    let mut push = |ms: i64, src: &str, dst: &str, text: &str| {
        let n = frames.len() as u64 + 1;
        frames.push(common::udp_frame(n, ms, src, dst, text.as_bytes()));
    };
    let pbx = "10.0.0.9:5060";
    let challenge = "WWW-Authenticate: Digest realm=\"example.net\", nonce=\"abc\"\r\n";
    for refresh in 0..2 {
        for ext in 0..300usize {
            let call = refresh * 1000 + ext;
            let at = (refresh * 300_000 + ext * 50) as i64;
            let user = format!("{}", 2000 + ext);
            let first = register(call, 1, &user, pbx, false);
            push(at, pbx, REGISTRAR, &first);
            push(
                at + 2,
                REGISTRAR,
                pbx,
                &response(&first, "401 Unauthorized", challenge),
            );
            let second = register(call, 2, &user, pbx, true);
            push(at + 4, pbx, REGISTRAR, &second);
            push(at + 6, REGISTRAR, pbx, &response(&second, "200 OK", ""));
        }
    }
    let proxy = "10.0.0.1:5060";
    for round in 0..60usize {
        for (g, up) in [
            ("10.0.1.1:5060", true),
            ("10.0.1.2:5060", true),
            ("10.0.1.3:5060", false),
        ] {
            let at = (round * 10_000) as i64 + 1;
            let ping = format!(
                "OPTIONS sip:{g} SIP/2.0\r\nVia: SIP/2.0/UDP {proxy};branch=z9hG4bKping{round}{g}\r\n\
                 From: <sip:ping@10.0.0.1>;tag=p{round}\r\nTo: <sip:{g}>\r\n\
                 Call-ID: ping{round}-{g}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
                 User-Agent: kamailio (5.8.4 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n"
            );
            push(at, proxy, g, &ping);
            if up {
                push(at + 3, g, proxy, &response(&ping, "200 OK", ""));
            }
        }
    }
    frames.sort_by_key(|f| f.time);
    let mut engine = Engine::new(EngineConfig::default());
    for f in &frames {
        engine.feed(&f.as_frame());
    }
    engine.finish();
    assert_eq!(engine.calls().len(), 600 + 180);
    let table = engine.scanners();
    let pbx_tally = table.tally("10.0.0.9".parse().unwrap()).unwrap();
    assert_eq!((pbx_tally.calls, pbx_tally.probes), (600, 0));
    let proxy_tally = table.tally("10.0.0.1".parse().unwrap()).unwrap();
    assert_eq!((proxy_tally.calls, proxy_tally.probes), (180, 60));
    assert_eq!(scanners_of(&engine), []);
}
