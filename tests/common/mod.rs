//! Helpers shared by the integration tests.
#![allow(dead_code)]
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use sipscope::capture::{FileSource, FrameSource};
use sipscope::engine::{Engine, EngineConfig};
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/captures`, or `None` in a user's clone where it does not exist.
pub fn shared_captures() -> Option<PathBuf> {
    let p = root().join("../shared/captures");
    p.is_dir().then_some(p)
}

pub fn samples() -> PathBuf {
    root().join("samples")
}

/// Every capture file under `dir` (recursively), sorted, skipping docs and scripts.
pub fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("md" | "json" | "sh" | "xml" | "cfg" | "txt")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs the engine over one file with the default configuration.
pub fn analyse(path: &Path) -> (Engine, Box<dyn FrameSource + Send>) {
    analyse_with(path, EngineConfig::default())
}

pub fn analyse_with(path: &Path, config: EngineConfig) -> (Engine, Box<dyn FrameSource + Send>) {
    let mut src: Box<dyn FrameSource + Send> =
        Box::new(FileSource::open(path.to_str().unwrap(), 0).expect("open capture"));
    let mut engine = Engine::new(config);
    engine.run(src.as_mut());
    (engine, src)
}

pub fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Skips a test that needs an external tool, loudly, unless CI requires it.
pub fn require(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{tool} is required in CI (.ci/run installs it)");
    }
    eprintln!("skipped: {tool} is not installed");
    false
}

/// True when `tool` is on the PATH (for tools without a `--version` that exits 0).
pub fn have_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}
