//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
                Some("md" | "json" | "sh" | "xml" | "cfg" | "txt" | "keys")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether the tests that record from real peers can run: root, with every tool on the
/// PATH. In CI they must (`.ci/run` installs them): a missing one fails the test there;
/// elsewhere the test is skipped, saying so.
pub fn root_with(tools: &[&str]) -> bool {
    if is_root() && tools.iter().all(|t| have_path(t)) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI runs as root with {tools:?} installed (.ci/run)");
    }
    eprintln!("skipped: needs root and {tools:?}");
    false
}

/// A sample of samples/groups (the call-group and capture-point recordings), as a path.
pub fn groups_sample(name: &str) -> String {
    samples()
        .join("groups")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Runs the sipscope binary, which must succeed: its standard output (as text, and as JSON
/// when it is JSON, else null) and its standard error.
pub fn sipscope_out(args: &[&str]) -> (String, serde_json::Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        serde_json::from_slice(&out.stdout).unwrap_or_default(),
        stderr,
    )
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

/// What a user does with the model, for the tests of damaged and hostile input: diagnose every
/// call, draw every ladder (no escape may reach it), export JSON (valid).
pub fn exercise(engine: &Engine, damage: sipscope::capture::CaptureDamage) {
    let now = engine.now();
    let calls = engine.calls();
    for call in &calls {
        let d = sipscope::diagnose::diagnose(call, now, &Default::default());
        assert!(!d.verdict.summary.is_empty());
    }
    // Ladders are as long as the call: checked as they are written, not kept.
    struct NoEscapes(usize);
    impl std::io::Write for NoEscapes {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            assert!(!b.contains(&0x1b), "an escape reached the ladder");
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut ladders = NoEscapes(0);
    sipscope::export::diagram::write(
        &calls,
        &vec![now; calls.len()],
        &Default::default(),
        sipscope::export::diagram::Format::Text,
        &mut ladders,
    )
    .unwrap();
    assert!(calls.is_empty() || ladders.0 > 0);
    let sources = vec![engine.source_stats(0, "input", damage)];
    let opts = sipscope::export::json::JsonOptions {
        raw_source: None,
        raw: true,
        diagnose: Default::default(),
        grouping: None,
    };
    let doc = sipscope::export::json::Document::of(engine, &sources, &calls, opts);
    let text = serde_json::to_vec(&doc).unwrap();
    serde_json::from_slice::<serde::de::IgnoredAny>(&text).unwrap();
}

/// Recording and live capture need root (tcpdump, AF_PACKET, network namespaces).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The tshark options of the differential tests: SIP found by content on any port (as sipscope
/// does), and TCP reassembled out of order (as sipscope does; tshark only when asked).
pub const TSHARK_AS_SIPSCOPE: &[&str] = &[
    "-o",
    "tcp.try_heuristic_first:TRUE",
    "-o",
    "udp.try_heuristic_first:TRUE",
    "-o",
    "tcp.reassemble_out_of_order:TRUE",
];

/// Runs tshark on a capture with `options` (say `TSHARK_AS_SIPSCOPE`, a `-Y` display filter,
/// `-d` decode-as rules) and returns, per frame it prints, each of `fields` as the list of its
/// occurrences.
pub fn tshark_fields(path: &Path, options: &[&str], fields: &[&str]) -> Vec<Vec<Vec<String>>> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-r").arg(path).args(options);
    // Separators that no field value contains.
    cmd.args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=\u{1}",
    ]);
    cmd.args(["-E", "separator=\u{2}"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            line.split('\u{2}')
                .map(|v| {
                    v.split('\u{1}')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// An Ethernet/IPv4/UDP frame at `ms` milliseconds into 2026-01-01, from `src` to `dst`
/// (`ip:port`), numbered `number`.
pub fn udp_frame(
    number: u64,
    ms: i64,
    src: &str,
    dst: &str,
    payload: &[u8],
) -> sipscope::capture::OwnedFrame {
    let (s, d): (std::net::SocketAddrV4, std::net::SocketAddrV4) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(s.ip().octets(), d.ip().octets(), 64)
        .udp(s.port(), d.port());
    let mut data = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut data, payload).unwrap();
    sipscope::capture::OwnedFrame {
        source: 0,
        number,
        time: sipscope::capture::Timestamp::from_millis(1_767_225_600_000 + ms),
        link: sipscope::capture::LinkType::ETHERNET,
        orig_len: data.len() as u32,
        data,
    }
}

/// Tests that use the loopback network (live capture on `lo`, sipp and kamailio on the SIP
/// ports, tcpdump recording them) hold this while they run: in the one test binary they would
/// otherwise run at once and see, or take the ports of, each other's traffic.
pub fn loopback() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A capture from the synthetic generator, written into a temporary directory that lives as
/// long as the returned handle: the default configuration, changed by `set`.
pub fn synth_capture(
    set: impl FnOnce(&mut sipscope::synth::SynthConfig),
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.pcap");
    let mut cfg = sipscope::synth::SynthConfig::default();
    set(&mut cfg);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    sipscope::synth::write_pcap(&cfg, &mut f).unwrap();
    drop(f);
    (dir, path)
}
