//! Call groups on real B2BUA traffic (samples/groups, recorded by
//! scripts/record-group-samples.sh) and the precision of the heuristics on many unrelated
//! calls to the same numbers at the same moments.

use crate::common;
use std::collections::BTreeSet;
use std::path::Path;

use common::groups_sample;

fn sipscope(args: &[&str]) -> serde_json::Value {
    common::sipscope_out(args).1
}

fn text_of(args: &[&str]) -> String {
    common::sipscope_out(args).0
}

/// The groups of an export as sets of Call-IDs, with the evidence kinds of their links.
fn groups_of(doc: &serde_json::Value) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let ids = g["call_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            let kinds = g["links"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|l| l["evidence"].as_array().unwrap().iter())
                .map(|e| e["kind"].as_str().unwrap().to_string())
                .collect();
            (ids, kinds)
        })
        .collect()
}

/// What the recordings must give: on the B2BUA, each caller leg `N-…` with its callee leg
/// `b2b-N-…` and nothing else; the refused calls told as the callee's 503 passed on as 480.
fn check_b2bua(path: &str) {
    let doc = sipscope(&["export", path]);
    let calls = doc["calls"].as_array().unwrap();
    let groups = groups_of(&doc);
    assert_eq!(calls.len(), 18, "{path}");
    assert_eq!(groups.len(), 9, "every leg pair is found: {groups:?}");
    for (ids, _) in &groups {
        let ids: Vec<&String> = ids.iter().collect();
        assert_eq!(ids.len(), 2);
        let (outer, inner) = if ids[0].starts_with("b2b-") {
            (ids[1], ids[0])
        } else {
            (ids[0], ids[1])
        };
        assert_eq!(
            inner,
            &format!("b2b-{outer}"),
            "a leg paired with another call's"
        );
    }
    assert!(doc["grouping"]["ambiguous"].as_array().unwrap().is_empty());
    let failed: Vec<&serde_json::Value> = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["verdict"]["failed"] == true)
        .collect();
    assert_eq!(failed.len(), 3);
    for g in failed {
        let v = &g["verdict"];
        let first = v["first_failing_leg"].as_u64().unwrap() as usize;
        assert!(
            calls[first]["call_id"]
                .as_str()
                .unwrap()
                .starts_with("b2b-"),
            "the callee's leg failed first: {v}"
        );
        assert_eq!(v["status"], 480, "{v}");
        let summary = v["summary"].as_str().unwrap();
        assert!(
            summary.contains("answered 503 Service Unavailable with Reason Q.850;cause=34")
                && summary.contains("sent 480 Temporarily Unavailable to 127.0.0.1:5100"),
            "{summary}"
        );
    }
    // The answered groups: end-to-end figures are the caller leg's, every leg's are listed.
    let answered = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["verdict"]["failed"] == false)
        .unwrap();
    let v = &answered["verdict"];
    assert_eq!(v["legs"].as_array().unwrap().len(), 2);
    assert_eq!(v["setup_time"], v["legs"][0]["setup_time"]);
    assert!(v["legs"][1]["offset"].as_f64().unwrap() < 0.1);
    // Every call names its group, and the groups name their calls back.
    for (i, g) in doc["groups"].as_array().unwrap().iter().enumerate() {
        for leg in g["legs"].as_array().unwrap() {
            assert_eq!(calls[leg.as_u64().unwrap() as usize]["group"], i);
        }
    }
}

/// kamailio's topoh with a key of its own: without the key the legs are grouped by what the
/// SBC could not hide (the RTP rtpengine relays, the number, the relayed responses); with it,
/// by the masked Call-ID read back.
fn check_sbc(path: &str) {
    let doc = sipscope(&["export", path]);
    let groups = groups_of(&doc);
    assert_eq!(groups.len(), 2, "{groups:?}");
    for (ids, kinds) in &groups {
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.iter().filter(|c| c.starts_with("!!:")).count(), 1);
        assert!(
            kinds.contains("rtp_ssrc") && !kinds.contains("topoh"),
            "{kinds:?}"
        );
    }
    let keyed = sipscope(&["export", path, "--topoh-key", "sipscope-sample-key"]);
    let with_key = groups_of(&keyed);
    assert_eq!(
        with_key.iter().map(|g| &g.0).collect::<Vec<_>>(),
        groups.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    for (_, kinds) in &with_key {
        assert!(kinds.contains("topoh"), "{kinds:?}");
    }
    let detail = keyed["groups"][0]["links"][0]["evidence"][0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    let first_call =
        keyed["calls"][keyed["groups"][0]["legs"][0].as_u64().unwrap() as usize]["call_id"]
            .as_str()
            .unwrap()
            .to_string();
    assert_eq!(
        detail,
        format!("topoh-masked Call-ID unmasks to {first_call}")
    );
}

#[test]
fn b2bua_legs_are_paired_and_the_failure_told_end_to_end() {
    check_b2bua(&groups_sample("b2bua-3pcc.pcap"));
}

#[test]
fn topology_hiding_and_a_media_relay_do_not_hide_the_legs() {
    check_sbc(&groups_sample("sbc-topoh.pcap"));
}

/// Calls placed one after another by one caller to one callee, seen from one capture point:
/// one leg each, never a group.
#[test]
fn calls_in_a_row_from_one_caller_are_not_grouped() {
    for name in ["two-point-a.pcap", "two-point-b.pcap"] {
        let doc = sipscope(&["export", &groups_sample(name)]);
        assert_eq!(doc["calls"].as_array().unwrap().len(), 3);
        assert!(groups_of(&doc).is_empty(), "{name}");
    }
}

/// Precision: thousands of unrelated calls through one proxy, to three numbers from three
/// callers, at 300 calls a second: no two are grouped.
#[test]
fn unrelated_calls_to_the_same_numbers_are_never_grouped() {
    let (_dir, path) = common::synth_capture(|c| {
        c.calls = 3000;
        c.calls_per_second = 300.0;
        c.numbers = 3;
        c.max_hold_secs = 5.0;
        c.rtp = true;
    });
    let (engine, _) = common::analyse(&path);
    let calls = engine.calls();
    assert!(calls.len() >= 3000);
    let (legs, grouping) = sipscope::export::ladder::group_calls(
        &calls,
        engine.now(),
        &sipscope::group::GroupConfig::default(),
    );
    assert_eq!(legs.len(), calls.len());
    assert!(grouping.groups.is_empty(), "{:?}", grouping.groups.first());
    // The same through the command line, and every sample alike: no group where there is no
    // B2BUA.
    let doc = sipscope(&[
        "calls",
        "--by-group",
        "--format",
        "json",
        &path.to_string_lossy(),
    ]);
    assert!(doc["groups"].as_array().unwrap().is_empty());
    for sample in common::captures_in(&common::samples()) {
        if sample.starts_with(common::samples().join("groups")) {
            continue;
        }
        let doc = sipscope(&["export", &sample.to_string_lossy()]);
        assert!(groups_of(&doc).is_empty(), "{}", sample.display());
    }
}

/// `calls --by-group` and `stats --by-group` count per group, in every format.
#[test]
fn calls_and_stats_count_per_group() {
    let path = groups_sample("b2bua-3pcc.pcap");
    let doc = sipscope(&["calls", "--by-group", "--format", "json", &path]);
    let rows = doc["calls"].as_array().unwrap();
    assert_eq!(rows.iter().filter(|r| r.get("group").is_some()).count(), 18);
    assert_eq!(doc["groups"].as_array().unwrap().len(), 9);
    let stats = sipscope(&["stats", "--by-group", "--format", "json", &path]);
    let g = &stats["groups"];
    assert_eq!(g["calls"], 18);
    assert_eq!(g["groups"], 9);
    assert_eq!(g["multi_leg_groups"], 9);
    assert_eq!(g["failed"], 3);
    assert_eq!(g["first_failure_status"]["503"], 3);
    let text = text_of(&["calls", "--by-group", &path]);
    assert!(
        text.contains("9 call groups of two legs or more (18 calls"),
        "{text}"
    );
    assert!(text.contains("group 9: calls 17, 18"), "{text}");
    let csv = text_of(&["calls", "--by-group", "--format", "csv", &path]);
    assert!(csv.lines().next().unwrap().ends_with(",group"));
    assert!(csv.lines().nth(1).unwrap().ends_with(",1"), "{csv}");
    let text = text_of(&["stats", "--by-group", &path]);
    assert!(
        text.contains("call groups           9 (9 of two legs or more, holding 18 calls)"),
        "{text}"
    );
    // The merged ladder: one diagram per group, its legs' messages together.
    let text = text_of(&["flow", "--legs", &path]);
    assert_eq!(text.matches("Call-ID: ").count(), 9, "{text}");
    assert!(text.contains("127.0.0.1:5101") && text.contains("127.0.0.1:5103"));
}

/// The recording script runs against the real peers (CI): what it records groups as the
/// committed samples do.
#[test]
fn recordings_from_real_b2buas_group() {
    let _loopback = common::loopback();
    let tools = ["sipp", "kamailio", "rtpengine", "tcpdump", "ip"];
    if !common::root_with(&tools) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("bash")
        .arg(common::root().join("scripts/record-group-samples.sh"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/record-group-samples.sh failed");
    let at = |name: &str| -> String { dir.path().join(name).to_string_lossy().into_owned() };
    check_b2bua(&at("b2bua-3pcc.pcap"));
    check_sbc(&at("sbc-topoh.pcap"));
    assert!(Path::new(&at("two-point-a.pcap")).exists());
    assert!(Path::new(&at("two-point-b.pcap")).exists());
}
