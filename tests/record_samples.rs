//! Records the samples anew from real SIP software (sipp through kamailio, captured by
//! tcpdump) with `scripts/record-samples.sh`, and checks that sipscope reads each recording
//! as the committed sample says. Runs in CI (`.ci/run` installs the tools); elsewhere it needs
//! root and the tools, or it is skipped with a message.

use crate::common;

use sipscope::flow::Outcome;

#[test]
fn recordings_from_real_peers_read_as_expected() {
    let _loopback = common::loopback();
    let tools = ["sipp", "kamailio", "tcpdump"];
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if !missing.is_empty() || !common::is_root() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI must record samples: missing {missing:?}, root: {}",
                common::is_root()
            );
        }
        eprintln!("skipped: needs root and {tools:?} (missing {missing:?})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("bash")
        .arg(common::root().join("scripts/record-samples.sh"))
        .arg(dir.path())
        .status()
        .expect("run record-samples.sh");
    assert!(status.success(), "record-samples.sh failed");
    let expect = [
        ("answered-udp.pcap", 2, Outcome::Answered, Some(200)),
        ("answered-tcp.pcap", 2, Outcome::Answered, Some(200)),
        ("answered-ipv6-direct.pcap", 1, Outcome::Answered, Some(200)),
        ("busy-486.pcap", 1, Outcome::Busy, Some(486)),
        ("cancel-ringing.pcap", 1, Outcome::Cancelled, Some(487)),
        ("reject-503.pcap", 1, Outcome::ServerError, Some(500)),
        ("register-401.pcap", 1, Outcome::Completed, Some(200)),
        ("missing-ack.pcap", 1, Outcome::Answered, Some(200)),
        ("slow-setup.pcap", 1, Outcome::Answered, Some(200)),
        ("loop-482.pcap", 1, Outcome::Rejected, Some(482)),
        ("sdp-488.pcap", 1, Outcome::Rejected, Some(488)),
        ("proxy-408.pcap", 1, Outcome::Timeout, Some(408)),
        ("register-403.pcap", 1, Outcome::Failed, Some(403)),
        ("loop-483.pcap", 1, Outcome::Rejected, Some(483)),
        ("dialog-481.pcap", 1, Outcome::Answered, Some(200)),
        ("auth-loop.pcap", 1, Outcome::Failed, Some(401)),
        ("cancel-race.pcap", 1, Outcome::Answered, Some(200)),
        ("glare-491.pcap", 1, Outcome::Answered, Some(200)),
        ("bad-content-length.pcap", 1, Outcome::Answered, Some(200)),
        ("prack-missing.pcap", 1, Outcome::ServerError, Some(500)),
        ("session-timer.pcap", 1, Outcome::Answered, Some(200)),
        ("private-address.pcap", 1, Outcome::Answered, Some(200)),
        ("via-rewritten.pcap", 1, Outcome::Completed, Some(200)),
        (
            "register-wrong-password.pcap",
            1,
            Outcome::Failed,
            Some(401),
        ),
        ("mid-dialog.pcap", 1, Outcome::Completed, Some(200)),
        ("tcp-ack-not-captured.pcap", 1, Outcome::Answered, Some(200)),
        ("register-behind-nat.pcap", 1, Outcome::Completed, Some(200)),
        ("scanner-sweep.pcap", 40, Outcome::Failed, Some(404)),
        ("media-two-way.pcap", 1, Outcome::Answered, Some(200)),
        ("media-one-way.pcap", 1, Outcome::Answered, Some(200)),
        ("media-dtmf.pcap", 1, Outcome::Answered, Some(200)),
        ("media-loss.pcap", 1, Outcome::Answered, Some(200)),
        ("media-timeout.pcap", 1, Outcome::Answered, Some(200)),
        ("media-after-bye.pcap", 1, Outcome::Answered, Some(200)),
        ("media-none.pcap", 2, Outcome::Answered, Some(200)),
        ("media-nat.pcap", 1, Outcome::Answered, Some(200)),
        ("media-codec-mismatch.pcap", 1, Outcome::Answered, Some(200)),
        ("media-hold.pcap", 1, Outcome::Answered, Some(200)),
        ("media-srtp.pcap", 2, Outcome::Answered, Some(200)),
    ];
    for (file, calls, outcome, status) in expect {
        let (engine, _) = common::analyse(&dir.path().join(file));
        let now = engine.now();
        let found = engine.calls();
        assert_eq!(found.len(), calls, "{file}");
        for c in found {
            let s = c.summary(now);
            assert_eq!(
                (s.outcome, s.final_status),
                (outcome, status),
                "{file}: {:?}",
                c.messages().iter().map(|m| m.label()).collect::<Vec<_>>()
            );
            // One sample is malformed on purpose (a caller with a wrong Content-Length).
            let malformed = c.messages().iter().filter(|m| m.is_malformed()).count();
            let expected = if file == "bad-content-length.pcap" {
                2
            } else {
                0
            };
            assert_eq!(malformed, expected, "{file}: malformed messages");
        }
        // The fresh recording shows the same anomaly kinds as the committed sample.
        let kinds = |engine: &sipscope::engine::Engine| -> Vec<Vec<&'static str>> {
            engine
                .calls()
                .iter()
                .map(|c| {
                    let d = sipscope::diagnose::diagnose(c, engine.now(), &Default::default());
                    let mut k: Vec<&str> = d.anomalies.iter().map(|a| a.kind.as_str()).collect();
                    k.sort_unstable();
                    k.dedup();
                    k
                })
                .collect()
        };
        let (committed, _) = common::analyse(&common::samples().join(file));
        assert_eq!(kinds(&engine), kinds(&committed), "{file}: anomaly kinds");
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}
