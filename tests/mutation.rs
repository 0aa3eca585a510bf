//! The mutation test: thousands of damaged copies of the samples (truncated, bit-flipped,
//! overwritten with boundary values, with bytes inserted or cut out, and spliced from two
//! captures), each analysed, diagnosed and exported within a fixed time budget. Every one
//! must give results or a clean one-line error: never a panic, a hang or a crash.
//!
//! In process (fast): a panic is caught and reported with the mutant saved for replay; a
//! watchdog aborts the run, naming the mutant, if one takes longer than [`HANG`]. A share of
//! the mutants also go through the binary, whose exit must be 0, or 1 with one line on stderr
//! (never 101, a panic, or a signal).
//!
//! `SIPSCOPE_MUTATION_SECONDS` sets the budget (default 40 s), `SIPSCOPE_MUTATION_SEED` the
//! seed (default fixed, so a CI failure replays); a failing mutant is written to
//! `target/mutation-failures/` and `SIPSCOPE_MUTANT=PATH` replays just that file.

use crate::common;

use sipscope::capture::{FileSource, FrameSource};
use sipscope::engine::{Engine, EngineConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One mutant taking longer than this is a hang (a sample takes milliseconds).
const HANG: Duration = Duration::from_secs(20);

/// The synthetic generator's SplitMix64: the same sequence everywhere.
struct Rng(sipscope::synth::Rng);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Mutation {
    Truncate,
    FlipBits,
    Boundary,
    Insert,
    Cut,
    Splice,
}

const MUTATIONS: [Mutation; 6] = [
    Mutation::Truncate,
    Mutation::FlipBits,
    Mutation::Boundary,
    Mutation::Insert,
    Mutation::Cut,
    Mutation::Splice,
];

/// Values that break length fields and parsers.
const BOUNDARY: [&[u8]; 10] = [
    &[0x00],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0xff, 0xff],
    &[0x00, 0x00, 0x00, 0x00],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x7f, 0xff, 0xff, 0xff],
    b"\r\n",
    b"SIP/2.0 ",
];

fn mutate(rng: &mut Rng, samples: &[Vec<u8>], m: Mutation) -> Vec<u8> {
    let base = &samples[rng.below(samples.len())];
    let mut b = base.clone();
    // Mostly past the capture header: damage inside the records is what must not cost the
    // records around it. Sometimes in the header too.
    let body_from = if rng.below(8) == 0 {
        0
    } else {
        24.min(b.len())
    };
    let pos =
        |rng: &mut Rng, len: usize| body_from + rng.below(len.saturating_sub(body_from).max(1));
    match m {
        Mutation::Truncate => b.truncate(rng.below(b.len() + 1)),
        Mutation::FlipBits => {
            for _ in 0..1 + rng.below(16) {
                let at = pos(rng, b.len());
                if let Some(byte) = b.get_mut(at) {
                    *byte ^= 1 << rng.below(8);
                }
            }
        }
        Mutation::Boundary => {
            for _ in 0..1 + rng.below(4) {
                let v = BOUNDARY[rng.below(BOUNDARY.len())];
                let at = pos(rng, b.len());
                for (i, x) in v.iter().enumerate() {
                    if let Some(byte) = b.get_mut(at + i) {
                        *byte = *x;
                    }
                }
            }
        }
        Mutation::Insert => {
            let at = pos(rng, b.len()).min(b.len());
            let n = 1 + rng.below(64);
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(at..at, junk);
        }
        Mutation::Cut => {
            let at = pos(rng, b.len()).min(b.len());
            let end = (at + 1 + rng.below(256)).min(b.len());
            b.drain(at..end);
        }
        Mutation::Splice => {
            // The head of one capture on the tail of another (or of itself).
            let other = &samples[rng.below(samples.len())];
            let cut_a = pos(rng, b.len()).min(b.len());
            let cut_b = rng.below(other.len() + 1);
            b.truncate(cut_a);
            b.extend_from_slice(&other[cut_b..]);
        }
    }
    b
}

/// The whole library path on one input: read, analyse, diagnose, export JSON (valid).
fn analyse(bytes: &[u8]) -> Result<(), String> {
    let mut src = FileSource::from_reader(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        "mutant",
        0,
        None,
    )
    .map_err(|e| e.to_string())?;
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    engine.run(&mut src);
    common::exercise(&engine, src.damage(0));
    Ok(())
}

fn save_failure(bytes: &[u8], name: &str) -> std::path::PathBuf {
    let dir = common::root().join("target/mutation-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.pcap"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The binary on one input: exit 0, or 1 with one clean line; never a panic or a signal.
fn run_binary(bytes: &[u8], dir: &std::path::Path, n: u64) -> Result<(), String> {
    let path = dir.join(format!("m{n}.pcap"));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["diagnose", "--all", "--no-progress"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) if err.lines().count() == 1 && err.starts_with("sipscope: ") => Ok(()),
        other => Err(format!("exit {other:?}, stderr: {err}")),
    }
}

#[test]
fn damaged_copies_of_the_samples_never_panic_hang_or_crash() {
    if let Some(replay) = std::env::var_os("SIPSCOPE_MUTANT") {
        let bytes = std::fs::read(&replay).unwrap();
        let _ = analyse(&bytes);
        return;
    }
    let budget = std::env::var("SIPSCOPE_MUTATION_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(40), Duration::from_secs_f64);
    let seed = std::env::var("SIPSCOPE_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0x5EED_5195_C09E);
    let samples: Vec<Vec<u8>> = common::captures_in(&common::samples())
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(samples.len() >= 20);

    // The watchdog: the start time of the mutant in progress (0 when none).
    let started = Arc::new(AtomicU64::new(0));
    let current = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    {
        let (started, current) = (started.clone(), current.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let s = started.load(Ordering::Acquire);
                if s != 0
                    && (epoch.elapsed().as_millis() as u64).saturating_sub(s)
                        > HANG.as_millis() as u64
                {
                    eprintln!(
                        "mutation: mutant {} (seed {seed}) hangs: over {HANG:?}; see target/mutation-failures/",
                        current.load(Ordering::Acquire)
                    );
                    std::process::abort();
                }
            }
        });
    }

    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(sipscope::synth::Rng::new(seed));
    let mut counts: std::collections::BTreeMap<Mutation, u64> = Default::default();
    let mut errors = 0u64;
    let mut through_binary = 0u64;
    let mut n = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < budget {
        let m = MUTATIONS[rng.below(MUTATIONS.len())];
        let bytes = mutate(&mut rng, &samples, m);
        *counts.entry(m).or_default() += 1;
        n += 1;
        // Saved before it runs, so that a hang or a crash leaves it behind for replay.
        let pending = save_failure(&bytes, "in-progress");
        current.store(n, Ordering::Release);
        started.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::Release);
        let result = std::panic::catch_unwind(|| analyse(&bytes));
        started.store(0, Ordering::Release);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                errors += 1;
                assert!(!e.contains('\n'), "mutant {n}: error of several lines: {e}");
            }
            Err(_) => {
                let path = save_failure(&bytes, &format!("panic-{seed}-{n}"));
                panic!(
                    "mutant {n} ({m:?}, seed {seed}) panicked; saved as {}",
                    path.display()
                );
            }
        }
        let _ = std::fs::remove_file(pending);
        // One in forty also through the binary (a process costs more than an analysis).
        if n.is_multiple_of(40) {
            through_binary += 1;
            if let Err(e) = run_binary(&bytes, dir.path(), n) {
                let path = save_failure(&bytes, &format!("binary-{seed}-{n}"));
                panic!(
                    "mutant {n} ({m:?}): the binary failed: {e}; saved as {}",
                    path.display()
                );
            }
        }
    }
    eprintln!(
        "mutation: {n} mutants in {:.1} s (seed {seed}): {counts:?}; {errors} gave a clean error; {through_binary} also through the binary",
        t0.elapsed().as_secs_f64()
    );
    // "Thousands": a budget too small for that (a slow machine) says so instead of passing
    // quietly on a handful.
    if std::env::var_os("SIPSCOPE_MUTATION_SECONDS").is_none() {
        assert!(n >= 1000, "only {n} mutants in the budget");
    }
}
