//! SIP over TLS recorded from real software (`scripts/record-tls-samples.sh`: kamailio's tls
//! module as the server, a Python `ssl` caller writing the key log): with `--tls-keylog`
//! sipscope reads the same SIP messages as tshark with `-o tls.keylog_file:` on every TLS 1.2
//! and 1.3 sample (and the secure WebSocket one), the same calls as in the clear twin apart from the transport, and nothing
//! of the TLS leg without the keys or with another connection's.

use crate::common;

use sipscope::engine::{Engine, EngineConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS samples of calls through kamailio (the KeyUpdate one, of lone OPTIONS to openssl,
/// has a test of its own).
fn tls_samples() -> Vec<PathBuf> {
    common::captures_in(&common::samples().join("tls"))
        .into_iter()
        .filter(|p| p.with_extension("keys").exists())
        .filter(|p| !p.to_string_lossy().contains("keyupdate"))
        .collect()
}

fn keys_of(path: &Path) -> Arc<sipscope::tls::KeyLog> {
    let k = sipscope::tls::KeyLog::default();
    k.add_text(&std::fs::read_to_string(path.with_extension("keys")).unwrap());
    Arc::new(k)
}

fn engine(path: &Path, keys: Option<Arc<sipscope::tls::KeyLog>>) -> Engine {
    let mut src = sipscope::capture::FileSource::open(path.to_str().unwrap(), 0).unwrap();
    let mut engine = Engine::new(EngineConfig::default());
    if let Some(k) = keys {
        engine.set_tls_keys(k);
    }
    engine.run(&mut src);
    engine
}

/// Per Call-ID: the messages' labels and transports, in order.
fn calls(engine: &Engine) -> BTreeMap<String, Vec<(String, &'static str)>> {
    engine
        .calls()
        .iter()
        .map(|c| {
            (
                c.call_id.to_string(),
                c.messages()
                    .iter()
                    .map(|m| (m.label(), m.transport.as_str()))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn every_tls_sample_decrypts_to_the_messages_tshark_decrypts() {
    if !common::require("tshark") {
        return;
    }
    let samples = tls_samples();
    assert_eq!(samples.len(), 7, "{samples:?}");
    for path in &samples {
        let keys = path.with_extension("keys");
        let rows = common::tshark_fields(
            path,
            &[
                "-o",
                &format!("tls.keylog_file:{}", keys.display()),
                "-Y",
                "sip",
            ],
            &["sip.Call-ID"],
        );
        let mut theirs: BTreeMap<String, usize> = BTreeMap::new();
        for row in rows {
            for id in &row[0] {
                *theirs.entry(id.clone()).or_default() += 1;
            }
        }
        let ours = calls(&engine(path, Some(keys_of(path))));
        let counts: BTreeMap<String, usize> =
            ours.iter().map(|(id, m)| (id.clone(), m.len())).collect();
        assert_eq!(counts, theirs, "{}", path.display());
        // The caller's leg is TLS (secure WebSocket in the wss sample), the callee's UDP.
        let secure = if path.to_string_lossy().contains("wss") {
            "WSS"
        } else {
            "TLS"
        };
        for messages in ours.values() {
            let tls = messages.iter().filter(|m| m.1 == secure).count();
            assert_eq!(tls, 7, "{}: {messages:?}", path.display());
            assert!(messages.iter().all(|m| m.1 == secure || m.1 == "UDP"));
        }
    }
}

#[test]
fn the_clear_twin_gives_the_same_calls_apart_from_the_transport() {
    let twin = calls(&engine(
        &common::samples().join("tls/tls-twin-clear-tcp.pcap"),
        None,
    ));
    assert_eq!(twin.len(), 2);
    for path in tls_samples() {
        let ours = calls(&engine(&path, Some(keys_of(&path))));
        let as_clear: BTreeMap<String, Vec<(String, &'static str)>> = ours
            .into_iter()
            .map(|(id, m)| {
                let m = m
                    .into_iter()
                    .map(|(l, t)| (l, if t == "TLS" || t == "WSS" { "TCP" } else { t }))
                    .collect();
                (id, m)
            })
            .collect();
        assert_eq!(as_clear, twin, "{}", path.display());
    }
}

/// Without a key log the TLS leg is not read (only the proxy's UDP leg is); with another
/// connection's keys, it is not either, and nothing false comes out of it.
#[test]
fn without_the_right_keys_the_tls_leg_stays_closed() {
    let samples = tls_samples();
    let other = keys_of(samples.last().unwrap());
    for path in &samples[..samples.len() - 1] {
        for keys in [None, Some(Arc::clone(&other))] {
            let ours = calls(&engine(path, keys));
            assert_eq!(ours.len(), 2, "{}", path.display());
            for messages in ours.values() {
                assert_eq!(messages.len(), 6, "{}: {messages:?}", path.display());
                assert!(messages.iter().all(|m| m.1 == "UDP"));
            }
        }
    }
}

/// The recording script runs against the real peers (CI): every sample it records decrypts to
/// both calls, seven messages over TLS each.
#[test]
fn recordings_from_kamailio_tls_decrypt() {
    let _loopback = common::loopback();
    let tools = ["kamailio", "sipp", "tcpdump", "python3", "openssl"];
    let websocket = std::path::Path::new("/usr/lib/x86_64-linux-gnu/kamailio/modules/websocket.so");
    if !common::root_with(&tools) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("bash")
        .arg(common::root().join("scripts/record-tls-samples.sh"))
        .arg(dir.path())
        .env("LIVE_SIPSCOPE", env!("CARGO_BIN_EXE_sipscope"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/record-tls-samples.sh failed");
    // Live, with a key log empty at the start and written as the calls went: both calls read
    // whole, their TLS leg decrypted.
    let live = std::fs::read(dir.path().join("live.json")).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("live.log")).unwrap_or_default();
        panic!("no live.json ({e}): {log}")
    });
    let live: serde_json::Value = serde_json::from_slice(&live).unwrap();
    let live_calls = live["calls"].as_array().unwrap();
    assert_eq!(live_calls.len(), 2, "{live}");
    for c in live_calls {
        let tls = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["transport"] == "TLS")
            .count();
        assert_eq!(tls, 7, "{c}");
    }
    let recorded: Vec<PathBuf> = common::captures_in(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .filter(|p| p.with_extension("keys").exists())
        .filter(|p| !p.to_string_lossy().contains("keyupdate"))
        .collect();
    keyupdates_are_followed(&dir.path().join("tls13-keyupdate.pcap"));
    assert!(websocket.exists() || std::env::var_os("CI").is_none());
    assert_eq!(recorded.len(), if websocket.exists() { 7 } else { 6 });
    for path in recorded {
        let ours = calls(&engine(&path, Some(keys_of(&path))));
        assert_eq!(ours.len(), 2, "{}", path.display());
        // The caller's leg: TLS, or secure WebSocket for the wss sample.
        let transport = if path.to_string_lossy().contains("wss") {
            "WSS"
        } else {
            "TLS"
        };
        for messages in ours.values() {
            assert_eq!(
                messages.iter().filter(|m| m.1 == transport).count(),
                7,
                "{}: {messages:?}",
                path.display()
            );
        }
    }
}

/// The key log inside the capture: a pcapng Decryption Secrets Block (`editcap
/// --inject-secrets`) is used without `--tls-keylog`; a key log file that holds no secret is
/// refused in one line.
#[test]
fn secrets_inside_a_pcapng_are_used() {
    if !common::have_path("editcap") {
        if std::env::var_os("CI").is_some() {
            panic!("editcap (with tshark) is required in CI");
        }
        eprintln!("skipped: editcap is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sample = common::samples().join("tls/tls13-chacha20.pcap");
    let with = dir.path().join("with-secrets.pcapng");
    let status = std::process::Command::new("editcap")
        .arg("--inject-secrets")
        .arg(format!("tls,{}", sample.with_extension("keys").display()))
        .arg(&sample)
        .arg(&with)
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["calls", "--format", "csv"])
        .arg(&with)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows.iter().all(|r| r.contains(",13,")), "{text}");
    let empty = dir.path().join("empty.keys");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .arg("calls")
        .arg(&sample)
        .arg("--tls-keylog")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no TLS secret"), "{err}");
}

/// The summary says which connections could not be opened and why: no secret for the
/// connection in the key log (naming the server and the name the client asked for), or
/// secrets that do not authenticate its records. Key material never reaches the output.
#[test]
fn connections_that_stay_closed_are_reported() {
    let sample = common::samples().join("tls/tls13-aes128-gcm.pcap");
    let dir = tempfile::tempdir().unwrap();
    let run = |keys: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
            .args(["calls", "--format", "json"])
            .arg(&sample)
            .arg("--tls-keylog")
            .arg(keys)
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let other = common::samples().join("tls/tls12-chacha20.keys");
    // A key log of another connection, with lines that are no key log's among them.
    let mut junk = std::fs::read_to_string(&other).unwrap();
    junk.push_str("not a key log line\nCLIENT_RANDOM zz\n");
    let other = dir.path().join("other.keys");
    std::fs::write(&other, junk).unwrap();
    let (_, err) = run(&other);
    assert!(
        err.contains("2 lines that are not NSS key log lines were skipped"),
        "{err}"
    );
    assert!(
        err.contains(
            "1 TLS connection without keys in the key log, 1 to sip.example.net (127.0.0.1:5061): not read"
        ),
        "{err}"
    );
    // The right randoms with made-up secrets.
    let right = std::fs::read_to_string(sample.with_extension("keys")).unwrap();
    let wrong: String = right
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}\n", w[0], w[1], "ab".repeat(w[2].len() / 2))
        })
        .collect();
    let wrong_path = dir.path().join("wrong.keys");
    std::fs::write(&wrong_path, &wrong).unwrap();
    let (out, err) = run(&wrong_path);
    assert!(
        err.contains("did not authenticate their first record"),
        "{err}"
    );
    // No secret of either key log is printed anywhere.
    for log in [&right, &wrong] {
        for secret in log
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().nth(2))
        {
            assert!(!out.contains(secret) && !err.contains(secret));
        }
    }
}

/// Without a key log, every TLS sample's connection is still followed from its hellos and
/// reported: on standard error with the server, its name and the flag to pass; in the JSON
/// `sources[].tls` with the version and suite tshark names for it; in `stats`.
#[test]
fn connections_without_a_key_log_are_listed_with_their_servers() {
    for sample in tls_samples() {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
            .args(["export", "--format", "json"])
            .arg(&sample)
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let name = sample.file_stem().unwrap().to_str().unwrap().to_string();
        let port = if name.starts_with("wss") { 7443 } else { 5061 };
        assert!(
            err.contains(&format!(
                "1 TLS connection without keys, 1 to sip.example.net (127.0.0.1:{port}): not read \u{2014} pass --tls-keylog FILE"
            )),
            "{}: {err}",
            sample.display()
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let tls = &doc["sources"][0]["tls"];
        assert_eq!(tls["connections"], 1);
        assert_eq!(tls["without_keys"], 1);
        let server = &tls["servers"][0];
        assert_eq!(server["address"], format!("127.0.0.1:{port}"));
        assert_eq!(server["sni"], "sip.example.net");
        assert_eq!(server["keys"], "without_keys");
        let version = if name.starts_with("tls13") || name.starts_with("wss") {
            "TLS 1.3"
        } else {
            "TLS 1.2"
        };
        assert_eq!(server["version"], version, "{name}");
        // The suite as tshark reads it from the ServerHello.
        if common::require("tshark") {
            let t = std::process::Command::new("tshark")
                .args(["-r"])
                .arg(&sample)
                .args([
                    "-Y",
                    "tls.handshake.type == 2",
                    "-T",
                    "fields",
                    "-e",
                    "tls.handshake.ciphersuite",
                ])
                .output()
                .unwrap();
            let id = String::from_utf8_lossy(&t.stdout).trim().to_string();
            let id = u16::from_str_radix(id.trim_start_matches("0x"), 16).unwrap();
            assert_eq!(
                server["suite"],
                sipscope::tls::suite_name(id).unwrap(),
                "{name}"
            );
        }
        // With its key log it is decrypted, and said so.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
            .arg("stats")
            .arg(&sample)
            .arg("--tls-keylog")
            .arg(sample.with_extension("keys"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("tls connections       1 (1 decrypted)"),
            "{name}: {text}"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("TLS"));
    }
}

/// TLS 1.3 KeyUpdate (RFC 8446 §4.6.3), from OpenSSL (`scripts/record-tls-samples.sh`:
/// s_client asks for an update both ways after its first OPTIONS and updates its own keys
/// after the second): the three OPTIONS read, the last under keys updated twice on its side,
/// the updates counted, as tshark reads them.
fn keyupdates_are_followed(path: &Path) {
    let keys = path.with_extension("keys");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["export", "--format", "json"])
        .arg(path)
        .arg("--tls-keylog")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = doc["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "keyupdate-1@127.0.0.1",
            "keyupdate-2@127.0.0.1",
            "keyupdate-3@127.0.0.1"
        ]
    );
    let tls = &doc["sources"][0]["tls"];
    assert_eq!(tls["decrypted"], 1);
    assert!(tls["key_updates"].as_u64().unwrap() >= 3, "{tls}");
    assert_eq!(tls["damaged_records"], 0);
    if common::require("tshark") {
        let rows = common::tshark_fields(
            path,
            &[
                "-o",
                &format!("tls.keylog_file:{}", keys.display()),
                "-d",
                "tcp.port==5063,tls",
                "-d",
                "tls.port==5063,sip",
                "-Y",
                "sip.Method",
            ],
            &["sip.Call-ID"],
        );
        let theirs: Vec<&str> = rows.iter().map(|r| r[0][0].as_str()).collect();
        assert_eq!(theirs, ids);
    }
}

#[test]
fn the_keyupdate_sample_is_followed() {
    keyupdates_are_followed(&common::samples().join("tls/tls13-keyupdate.pcap"));
}

/// A call over TLS saved as pcap brings its connection from the handshake on, so that the
/// saved file decrypts with the same key log: here the second call of the connection, whose
/// records follow the first call's, reads whole from the export in sipscope and in tshark.
#[test]
fn a_tls_call_saved_as_pcap_decrypts_with_its_key_log() {
    for sample in tls_samples() {
        let keys = sample.with_extension("keys");
        let analysed = engine(&sample, Some(keys_of(&sample)));
        let all = calls(&analysed);
        // The later call of the two on the connection.
        let id = &analysed
            .calls()
            .iter()
            .max_by_key(|c| c.start())
            .unwrap()
            .call_id
            .to_string();
        let messages = &all[id];
        let second = all.keys().find(|k| *k != id).unwrap().clone();
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("call.pcap");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
            .args(["export", "--format", "pcap", "--call", id, "-o"])
            .arg(&saved)
            .arg(&sample)
            .arg("--tls-keylog")
            .arg(&keys)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again = calls(&engine(&saved, Some(keys_of(&sample))));
        assert_eq!(again.get(id), Some(messages), "{}", sample.display());
        // The other call's UDP leg is not in the file; its TLS records are, read or not.
        assert!(
            again
                .get(&second)
                .is_none_or(|m| m.iter().all(|(_, t)| *t != "UDP"))
        );
        if common::require("tshark") {
            let rows = common::tshark_fields(
                &saved,
                &[
                    "-o",
                    &format!("tls.keylog_file:{}", keys.display()),
                    "-Y",
                    &format!("sip.Call-ID == \"{id}\""),
                ],
                &["frame.number"],
            );
            assert_eq!(rows.len(), messages.len(), "{}", sample.display());
        }
    }
}
