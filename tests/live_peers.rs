//! Live capture and HEP against real peers (`scripts/live-peers.sh`): sipp calls through
//! kamailio on loopback while sipscope captures `lo`, kamailio's siptrace and sngrep send HEP to
//! sipscope listeners, and sipscope forwards HEP to sngrep. Every view must hold the same calls
//! with the same messages as tcpdump's recording of the same traffic, analysed from the file.
//!
//! Needs root (packet capture) and sipp, kamailio, tcpdump, sngrep: skipped without them, except
//! in CI, where `.ci/run` installs them and runs as root.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

/// Per call: outcome and each message as `label src→dst`, in order.
type Calls = BTreeMap<String, (String, Vec<String>)>;

fn from_json(path: &Path) -> Calls {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| {
            panic!("{}: {e}", path.display());
        });
    let mut calls = Calls::new();
    for c in doc["calls"].as_array().unwrap() {
        let messages = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let label = m["method"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m["status"].to_string());
                format!(
                    "{label} {}→{}",
                    m["src"].as_str().unwrap(),
                    m["dst"].as_str().unwrap()
                )
            })
            .collect();
        calls.insert(
            c["call_id"].as_str().unwrap().to_string(),
            (c["outcome"].as_str().unwrap().to_string(), messages),
        );
    }
    calls
}

fn from_capture(path: &Path) -> Calls {
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["export", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("x.json");
    std::fs::write(&json, &out.stdout).unwrap();
    from_json(&json)
}

#[test]
fn live_capture_and_hep_agree_with_tcpdump() {
    let _loopback = common::loopback();
    let tools = ["sipp", "kamailio", "tcpdump", "sngrep"];
    if !common::root_with(&tools) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let calls = 10;
    let status = std::process::Command::new("bash")
        .arg(common::root().join("scripts/live-peers.sh"))
        .arg(env!("CARGO_BIN_EXE_sipscope"))
        .arg(dir.path())
        .arg(calls.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/live-peers.sh failed");
    let reference = from_capture(&dir.path().join("tcpdump.pcap"));
    assert_eq!(reference.len(), calls, "calls in tcpdump's recording");
    assert!(
        reference
            .values()
            .all(|(outcome, m)| outcome == "answered" && m.len() == 14),
        "{reference:#?}"
    );
    for (what, got) in [
        (
            "live capture (-i lo)",
            from_json(&dir.path().join("live.json")),
        ),
        (
            "HEP from kamailio siptrace",
            from_json(&dir.path().join("hep-kamailio.json")),
        ),
        (
            "HEP from sngrep -H",
            from_json(&dir.path().join("hep-sngrep.json")),
        ),
        (
            "sngrep -L receiving our HEP",
            from_capture(&dir.path().join("sngrep-received.pcap")),
        ),
    ] {
        assert_eq!(got, reference, "{what} differs from tcpdump");
    }
    // Nothing was dropped, and the summary says so.
    let live_log = std::fs::read_to_string(dir.path().join("live.log")).unwrap();
    assert!(
        live_log
            .contains("lo: 140 packets received, 0 dropped by the kernel, 0 dropped by sipscope"),
        "{live_log}"
    );
    assert!(
        live_log.contains("HEP sent: 140 messages, 0 failed"),
        "{live_log}"
    );
    // sipscope dropped root once its sockets were open: its files belong to `nobody`.
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(dir.path().join("live.json"))
        .unwrap()
        .uid();
    assert_ne!(owner, 0, "live.json was written after root was dropped");
    let kamailio = std::fs::read(dir.path().join("hep-kamailio.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&kamailio).unwrap();
    assert_eq!(doc["calls"][0]["messages"][0]["hep"]["capture_id"], 2001);
}
