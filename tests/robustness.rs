//! No panic, no hang: every capture we have, truncated copies of each at several points, and
//! random bytes give either results or a clear error. (The fuzz targets of the hardening work
//! go further; this runs in every `cargo test`.)

use crate::common;

use sipscope::capture::{FileSource, FrameSource};
use sipscope::engine::{Engine, EngineConfig};
use std::path::PathBuf;

fn all_captures() -> Vec<PathBuf> {
    let mut files = common::captures_in(&common::samples());
    if let Some(shared) = common::shared_captures() {
        files.extend(common::captures_in(&shared));
    }
    files
}

/// Opens and analyses bytes written to a temporary file: either an open error (a clear
/// message) or an analysis that ends.
fn analyse_bytes(bytes: &[u8]) -> Result<usize, String> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    let mut src = FileSource::open(file.path().to_str().unwrap(), 0).map_err(|e| e.to_string())?;
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    engine.run(&mut src);
    let _ = src.damage(0);
    // The diagnosis reads whatever the damaged data made of the calls.
    for call in engine.calls() {
        let d = sipscope::diagnose::diagnose(call, engine.now(), &Default::default());
        assert!(!d.verdict.summary.is_empty());
    }
    Ok(engine.calls().len())
}

#[test]
fn truncated_copies_give_results_or_errors() {
    for f in all_captures() {
        let bytes = std::fs::read(&f).unwrap();
        let whole = analyse_bytes(&bytes).unwrap_or(0);
        for cut in [
            1,
            4,
            23,
            24,
            25,
            40,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len().saturating_sub(1),
        ] {
            if cut >= bytes.len() {
                continue;
            }
            match analyse_bytes(&bytes[..cut]) {
                Ok(n) => assert!(
                    n <= whole + 1,
                    "{}: cut at {cut} found more calls",
                    f.display()
                ),
                Err(e) => assert!(!e.is_empty() && !e.contains('\n'), "{}: {e}", f.display()),
            }
        }
    }
}

#[test]
fn random_bytes_and_bit_flips_never_panic() {
    // A fixed generator: the same inputs every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for len in [0usize, 1, 3, 24, 100, 4096] {
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = analyse_bytes(&bytes);
        // The same behind a valid pcap header, so the records themselves are random.
        let mut pcap = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        pcap.extend_from_slice(&bytes);
        let _ = analyse_bytes(&pcap);
    }
    for f in all_captures().into_iter().take(25) {
        let mut bytes = std::fs::read(&f).unwrap();
        for _ in 0..20 {
            let i = (next() as usize) % bytes.len();
            bytes[i] ^= 1 << (next() % 8);
        }
        let _ = analyse_bytes(&bytes);
    }
}
