//! Live inputs from the command line, without privileges: HEP listeners (UDP and TCP) feeding
//! `export`, `calls` and `capture -w`, `--duration`, and the errors for unusable live inputs.
//! (Interface capture needs root: `tests/live_peers.rs`.)

use crate::common;

use sipscope::engine::EngineConfig;
use sipscope::hep::{SenderIdentity, encode};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The messages of a sample as HEP v3 packets, in time order.
fn hep_packets(sample: &str) -> Vec<Vec<u8>> {
    let config = {
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    };
    let (engine, _) = common::analyse_with(&common::samples().join(sample), config);
    let mut msgs: Vec<_> = engine
        .calls()
        .iter()
        .flat_map(|c| c.messages().iter())
        .map(|m| (m.time, m.src, m.dst, m.raw().unwrap().to_vec()))
        .collect();
    msgs.sort_by_key(|m| m.0);
    let me = SenderIdentity {
        capture_id: 9,
        ..Default::default()
    };
    msgs.iter()
        .map(|(t, s, d, raw)| encode(*s, *d, 17, t.0, raw, None, &me).unwrap())
        .collect()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until something listens on `port` (the child has bound its socket).
fn wait_bound(port: u16, tcp: bool) {
    for _ in 0..100 {
        let taken = if tcp {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
        } else {
            UdpSocket::bind(("127.0.0.1", port)).is_err()
        };
        if taken {
            return;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    panic!("nothing listens on {port}");
}

fn calls_csv(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').map_or(l, |(_, r)| r).to_string())
        .collect()
}

fn bare_calls(sample: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args([
            "calls",
            common::samples().join(sample).to_str().unwrap(),
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    calls_csv(&out.stdout)
}

#[test]
fn a_udp_hep_listener_feeds_calls_until_the_duration_ends() {
    let _loopback = common::loopback();
    let port = free_port();
    let spec = format!("udp:127.0.0.1:{port}");
    let child = spawn(&[
        "calls",
        "--hep-listen",
        &spec,
        "--duration",
        "2",
        "--format",
        "csv",
    ]);
    wait_bound(port, false);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in hep_packets("answered-udp.pcap") {
        sock.send_to(&p, ("127.0.0.1", port)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(calls_csv(&out.stdout), bare_calls("answered-udp.pcap"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("28 packets received, 0 dropped by the kernel, 0 dropped by sipscope"),
        "{err}"
    );
}

#[test]
fn a_tcp_hep_listener_and_capture_to_a_file() {
    let _loopback = common::loopback();
    let port = free_port();
    let spec = format!("tcp:127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    // Run as root, sipscope writes as `nobody` once its sockets are open.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = dir.path().join("hep.pcap");
    let child = spawn(&[
        "capture",
        "--hep-listen",
        &spec,
        "--duration",
        "2",
        "-w",
        file.to_str().unwrap(),
    ]);
    wait_bound(port, true);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // All packets in one stream, written in uneven pieces.
    let all: Vec<u8> = hep_packets("busy-486.pcap").concat();
    for piece in all.chunks(333) {
        stream.write_all(piece).unwrap();
    }
    stream.flush().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let analysed = Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["calls", file.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(calls_csv(&analysed.stdout), bare_calls("busy-486.pcap"));
}

/// Calls stream out of `export --format ndjson` as they end, while the input stays open.
#[test]
fn ndjson_streams_live_calls_as_they_end() {
    let _loopback = common::loopback();
    let port = free_port();
    let spec = format!("udp:127.0.0.1:{port}");
    let mut child = spawn(&[
        "export",
        "--hep-listen",
        &spec,
        "--duration",
        "30",
        "--format",
        "ndjson",
        "--t1",
        "20",
    ]);
    wait_bound(port, false);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in hep_packets("busy-486.pcap") {
        sock.send_to(&p, ("127.0.0.1", port)).unwrap();
    }
    // With T1 = 20 ms the call is over 64·T1 = 1.28 s after its last message (by the clock the
    // ticks keep); its line must come long before the 30 s duration.
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while std::io::Read::read(&mut stdout, &mut b).is_ok_and(|n| n == 1) {
            if b[0] == b'\n' {
                let _ = tx.send(line.clone());
                return;
            }
            line.push(b[0]);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a call line before the duration ended");
    let call: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(call["outcome"], "busy");
    assert_eq!(call["messages"][0]["hep"]["capture_id"], 9);
}

fn one_line_error(args: &[&str], needle: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn unusable_live_inputs_get_one_clear_line() {
    let _loopback = common::loopback();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let spec = format!("udp:{addr}");
    one_line_error(&["calls", "--hep-listen", &spec], "cannot listen for HEP");
    one_line_error(
        &["calls", "--hep-listen", "udp:127.0.0.1:0", "--duration=-3"],
        "--duration",
    );
    one_line_error(
        &[
            "calls",
            "--hep-listen",
            "udp:127.0.0.1:0",
            "--hep-send",
            "tcp:127.0.0.1:9",
        ],
        "sent over UDP only",
    );
    one_line_error(&["capture", "-w", "x.pcap"], "needs a live input");
    // Bad flags, as clap reports them, in one line too.
    one_line_error(&["calls", "--no-such-flag"], "--no-such-flag");
    one_line_error(
        &["calls", "--hep-listen", "sctp:1.2.3.4:5"],
        "udp:ADDR:PORT",
    );
    one_line_error(
        &[
            "capture",
            "--hep-listen",
            "udp:127.0.0.1:0",
            "-w",
            "x.pcap",
            "--rotate-size",
            "0",
        ],
        "--rotate-size",
    );
    if cfg!(feature = "libpcap") {
        // Full BPF: libpcap's compiler rejects the expression.
        one_line_error(
            &["calls", "-i", "lo", "-f", "port", "--duration", "1"],
            "port",
        );
    } else {
        one_line_error(
            &[
                "calls",
                "-i",
                "lo",
                "-f",
                "ether host 1:2:3:4:5:6",
                "--duration",
                "1",
            ],
            "not supported without libpcap",
        );
    }
    // A missing interface: "no such interface" as root, the privilege fix otherwise.
    let out = Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["calls", "-i", "no-such-if0", "--duration", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no such interface")
            || err.contains("No such device")
            || err.contains("doesn't exist")
            || err.contains("setcap cap_net_raw"),
        "{err}"
    );
}

/// A flood at a HEP listener: 60,000 scanner probes from four agents' sources sent as fast as
/// one socket can, then a real call, into `stats --max-memory 16M`. Every datagram
/// sent is either received or counted as dropped by the kernel (the socket's buffer
/// overflowing), none by sipscope; the call table stays within its budget by shedding the
/// probes, and the call comes out answered, the four scanners named.
#[test]
fn a_flood_at_a_hep_listener_is_counted_and_shed_and_the_real_call_survives() {
    let _loopback = common::loopback();
    let port = free_port();
    let spec = format!("udp:127.0.0.1:{port}");
    let child = spawn(&[
        "stats",
        "--hep-listen",
        &spec,
        "--duration",
        "8",
        "--max-memory",
        "16M",
    ]);
    wait_bound(port, false);
    let me = SenderIdentity::default();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let server: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let mut packets = Vec::new();
    for k in 0..60_000u64 {
        let source: SocketAddr = format!("198.51.100.{}:5070", 1 + k % 4).parse().unwrap();
        let ext = 100 + k % 5_000;
        let probe = format!(
            "OPTIONS sip:{ext}@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bK-f{k}\r\n\
             From: <sip:{ext}@192.0.2.1>;tag=f{k}\r\nTo: <sip:{ext}@192.0.2.1>\r\n\
             Call-ID: flood-{k}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let t = now_ns + k as i64 * 20_000; // 50,000 a second of capture time
        packets.push(encode(source, server, 17, t, probe.as_bytes(), None, &me).unwrap());
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in &packets {
        sock.send_to(p, ("127.0.0.1", port)).unwrap();
    }
    // The call once the burst has been read or dropped: on a slow machine (a debug build) the
    // kernel drops most of the burst, and the call must not be among what it drops.
    std::thread::sleep(Duration::from_millis(1500));
    let call = hep_packets("answered-udp.pcap");
    for q in &call {
        sock.send_to(q, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let sent = packets.len() + call.len();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("packets received"))
        .unwrap_or_else(|| panic!("{err}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // "hep udp:127.0.0.1:PORT: R packets received, K dropped by the kernel, S dropped by sipscope"
    let [.., received, kernel, internal] = numbers[..] else {
        panic!("{line}")
    };
    eprintln!("{line}");
    assert_eq!((received + kernel, internal), (sent as u64, 0), "{line}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("answered 2"), "{text}");
    assert!(text.contains("scanners              4 sources"), "{text}");
    if received > 40_000 {
        assert!(err.contains("calls_shed"), "{err}");
    }
}
