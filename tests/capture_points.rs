//! One call captured at two points (samples/groups/two-point-{a,b}.pcap, the two ends of a
//! veth pair between network namespaces): each message once, with its sighting at the other
//! point; the clock offset between the files estimated, and set with `--time-offset`.

use crate::common;

use common::groups_sample as sample;

fn run(args: &[&str]) -> (serde_json::Value, String) {
    let (_, json, stderr) = common::sipscope_out(args);
    (json, stderr)
}

#[test]
fn two_points_give_each_message_once_with_its_sighting() {
    let (a, b) = (sample("two-point-a.pcap"), sample("two-point-b.pcap"));
    let (alone, _) = run(&["export", &a]);
    let (both, stderr) = run(&["export", &a, &b]);
    let calls = both["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    for (c, single) in calls.iter().zip(alone["calls"].as_array().unwrap()) {
        let messages = c["messages"].as_array().unwrap();
        assert_eq!(messages.len(), single["messages"].as_array().unwrap().len());
        for m in messages {
            assert_eq!(m["retransmission"], false, "{m}");
            let s = m["sightings"].as_array().unwrap();
            assert_eq!(s.len(), 1, "{m}");
            // Each copy at the other point; the first copy is the one that came first.
            assert_ne!(s[0]["source"], m["source"]);
            let delay = s[0]["delay"].as_f64().unwrap();
            assert!((0.0..0.001).contains(&delay), "{delay}");
        }
    }
    let points = both["capture_points"].as_array().unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["sightings"], 21);
    assert!(points[0]["offset"].as_f64().unwrap().abs() < 0.001);
    assert!(points[0]["one_way_delay"].as_f64().is_some());
    assert!(stderr.contains("21 messages seen at both"), "{stderr}");
    // Files of one point: no sighting, no capture point.
    assert!(alone["capture_points"].as_array().unwrap().is_empty());
}

/// One file's clock 2.5 s ahead (editcap moved it): the offset is found, the copies still
/// pair up, and `--time-offset` puts the file back.
#[test]
fn a_clock_offset_is_estimated_and_set() {
    if !common::require("editcap") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late.pcap");
    let status = std::process::Command::new("editcap")
        .args([
            "-t",
            "2.5",
            &sample("two-point-b.pcap"),
            &late.to_string_lossy(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let late = late.to_string_lossy().into_owned();
    let a = sample("two-point-a.pcap");
    let (doc, stderr) = run(&["export", &a, &late]);
    let p = &doc["capture_points"][0];
    assert_eq!(p["sightings"], 21);
    assert!((p["offset"].as_f64().unwrap() - 2.5).abs() < 0.001, "{p}");
    assert!(
        stderr.contains(&format!("{late} is 2.500 s ahead of"))
            && stderr.contains(&format!("--time-offset {late}=-2.500 aligns it")),
        "{stderr}"
    );
    for c in doc["calls"].as_array().unwrap() {
        assert_eq!(c["messages"].as_array().unwrap().len(), 7);
    }
    let offset = format!("{late}=-2.5");
    let (aligned, stderr) = run(&["export", &a, &late, "--time-offset", &offset]);
    assert!(
        aligned["capture_points"][0]["offset"]
            .as_f64()
            .unwrap()
            .abs()
            < 0.001
    );
    assert!(!stderr.contains("aligns it"), "{stderr}");
    // A file that is not an input is a clear error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["calls", &a, "--time-offset", "nope.pcap=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--time-offset names nope.pcap"), "{err}");
}

/// The text ladder says where else a message was seen.
#[test]
fn the_ladder_shows_the_delay_between_points() {
    let (text, _, _) = common::sipscope_out(&[
        "flow",
        &sample("two-point-a.pcap"),
        &sample("two-point-b.pcap"),
    ]);
    assert_eq!(text.matches("seen at 2 points, +0.0").count(), 21, "{text}");
}

/// HEP from two agents (capture ids 101 and 202) that saw the same calls, the second's clock
/// 1.5 s ahead: the agents are two capture points of one listener.
#[test]
fn hep_agents_are_capture_points() {
    use sipscope::hep::{SenderIdentity, encode};
    let mut config = sipscope::engine::EngineConfig::default();
    config.keep_raw = true;
    let (engine, _) = common::analyse_with(
        &common::samples().join("groups").join("two-point-a.pcap"),
        config,
    );
    let calls = engine.calls();
    let first = calls[0].messages()[0].time.0;
    let mut frames = Vec::new();
    for c in &calls {
        for m in c.messages() {
            for (agent, ahead_ns, late_ms) in [(101u32, 0i64, 0i64), (202, 1_500_000_000, 1)] {
                let me = SenderIdentity {
                    capture_id: agent,
                    ..Default::default()
                };
                let packet = encode(
                    m.src,
                    m.dst,
                    17,
                    m.time.0 + ahead_ns,
                    m.raw().unwrap(),
                    None,
                    &me,
                )
                .unwrap();
                let at = (m.time.0 - first) / 1_000_000 + late_ms;
                let from = format!("192.0.2.{}:40000", agent % 250);
                frames.push((at, from, packet));
            }
        }
    }
    frames.sort_by_key(|f| f.0);
    let mut hep = sipscope::engine::Engine::new(sipscope::engine::EngineConfig::default());
    for (i, (at, from, packet)) in frames.iter().enumerate() {
        let f = common::udp_frame(i as u64 + 1, *at, from, "192.0.2.9:9060", packet);
        hep.feed(&f.as_frame());
    }
    hep.finish();
    let merged = hep.calls();
    assert_eq!(merged.len(), 3);
    for c in &merged {
        assert_eq!(c.messages().len(), 7);
        for m in c.messages() {
            assert!(!m.retransmission);
            assert_eq!(m.sightings().len(), 1, "{m:?}");
            assert_ne!(
                m.sightings()[0].point.capture_id,
                m.hep().and_then(|h| h.capture_id)
            );
        }
    }
    let e = hep.capture_points();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].sightings, 21);
    assert_eq!(
        (e[0].a.capture_id, e[0].b.capture_id),
        (Some(101), Some(202))
    );
    assert!((e[0].offset - 1.5).abs() < 1e-6, "{e:?}");
}
