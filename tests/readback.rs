//! Raw messages read back from the capture file (the terminal UI's way, `sipscope::readback`)
//! are byte for byte the messages an engine that kept them holds: every message of every
//! sample and of every shared capture. And every frame read back through the index is the
//! frame the streaming read lent out.

use crate::common;

use sipscope::capture::{FileSource, FrameIndex, FrameSource};
use sipscope::engine::{Engine, EngineConfig};
use sipscope::flow::message::{RawError, RawSource};
use sipscope::readback::RawReader;
use std::path::{Path, PathBuf};

fn captures() -> Vec<PathBuf> {
    let mut all = common::captures_in(&common::samples());
    match common::shared_captures() {
        Some(dir) => all.extend(common::captures_in(&dir)),
        None => eprintln!("../shared/captures is absent: only the samples are compared"),
    }
    all
}

/// Messages compared, and those that could not be read back, with why.
#[derive(Default)]
struct Tally {
    compared: usize,
    kept_anyway: usize,
    failed: Vec<String>,
}

fn compare(path: &Path, tally: &mut Tally) {
    let name = path.to_str().unwrap();
    let Ok(mut kept_source) = FileSource::open(name, 0) else {
        return;
    };
    let mut kept = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    kept.run(&mut kept_source);
    kept.finish();

    let index = FrameIndex::new();
    let mut source = FileSource::open(name, 0).unwrap();
    let gzip = !source.index_into(&index);
    let config = EngineConfig::default();
    let reader = RawReader::new(index, config.net);
    let mut lean = Engine::new(config);
    lean.run(&mut source);
    lean.finish();

    let (a, b) = (kept.calls(), lean.calls());
    assert_eq!(a.len(), b.len(), "{name}: calls");
    for (ca, cb) in a.iter().zip(&b) {
        assert_eq!(
            ca.messages().len(),
            cb.messages().len(),
            "{name}: {}",
            ca.call_id
        );
        for (ma, mb) in ca.messages().iter().zip(cb.messages()) {
            let want = ma.raw().expect("kept");
            if mb.raw().is_some() {
                // Malformed messages keep their bytes in every mode.
                tally.kept_anyway += 1;
                continue;
            }
            if gzip {
                continue;
            }
            tally.compared += 1;
            match reader.raw_bytes(mb) {
                Ok(got) => assert_eq!(
                    &got[..],
                    want,
                    "{name}: frame {} of call {}",
                    mb.packet,
                    cb.call_id
                ),
                Err(e) => {
                    tally
                        .failed
                        .push(format!("{name}: frame {} ({}): {e}", mb.packet, mb.label()))
                }
            }
        }
    }
}

#[test]
fn every_message_read_back_is_the_message_kept() {
    let mut tally = Tally::default();
    for path in captures() {
        compare(&path, &mut tally);
    }
    eprintln!(
        "{} messages read back, {} kept by their records (malformed)",
        tally.compared, tally.kept_anyway
    );
    assert!(tally.compared > 500, "only {} compared", tally.compared);
    assert!(
        tally.failed.is_empty(),
        "{} of {} not read back:\n{}",
        tally.failed.len(),
        tally.compared,
        tally.failed.join("\n")
    );
}

/// The generator's TCP segments split, coalesced, reordered and retransmitted, its IP
/// fragments, and scanner probes.
#[test]
fn every_message_of_a_synthetic_capture_reads_back() {
    let (_dir, path) = common::synth_capture(|c| {
        c.calls = 1_500;
        c.tcp_share = 0.5;
        c.fragment_share = 0.3;
        c.scanner_requests = 500;
    });
    let mut tally = Tally::default();
    compare(&path, &mut tally);
    assert!(tally.compared > 15_000, "only {} compared", tally.compared);
    assert!(
        tally.failed.is_empty(),
        "{} of {} not read back:\n{}",
        tally.failed.len(),
        tally.compared,
        tally.failed[..tally.failed.len().min(20)].join("\n")
    );
}

#[test]
fn every_frame_read_back_is_the_frame_read() {
    let mut frames = 0u64;
    for path in captures() {
        let name = path.to_str().unwrap();
        let Ok(mut source) = FileSource::open(name, 0) else {
            continue;
        };
        let index = FrameIndex::new();
        if !source.index_into(&index) {
            continue;
        }
        let mut seen = Vec::new();
        while let Some(f) = source.next_frame() {
            seen.push((f.number, f.link, f.data.to_vec()));
        }
        for (number, link, data) in seen {
            let back = index
                .read(0, number)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(back.link, link, "{name}: frame {number}");
            assert_eq!(back.data, data, "{name}: frame {number}");
            frames += 1;
        }
    }
    assert!(frames > 1000, "only {frames} frames");
}

#[test]
fn a_message_whose_file_changed_is_refused_not_shown_wrong() {
    let sample = common::samples().join("answered-udp.pcap");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.pcap");
    std::fs::copy(&sample, &copy).unwrap();
    let index = FrameIndex::new();
    let mut source = FileSource::open(copy.to_str().unwrap(), 0).unwrap();
    assert!(source.index_into(&index));
    let config = EngineConfig::default();
    let mut engine = Engine::new(config);
    engine.run(&mut source);
    engine.finish();
    let reader = RawReader::new(index, config.net);
    let calls = engine.calls();
    let invite = &calls[0].messages()[0];
    assert!(reader.raw_bytes(invite).unwrap().starts_with(b"INVITE "));
    // Another capture under the same name: its frames are not these messages.
    std::fs::copy(common::samples().join("busy-486.pcap"), &copy).unwrap();
    let fresh = RawReader::new(FrameIndex::new(), config.net);
    assert!(
        matches!(fresh.raw_bytes(invite), Err(RawError::Unreadable(_))),
        "no index, no bytes"
    );
    let bye = calls[0].messages().last().unwrap();
    let e = reader.raw_bytes(bye).unwrap_err();
    assert!(
        matches!(e, RawError::Gone(_) | RawError::Unreadable(_)),
        "{e}"
    );
}
