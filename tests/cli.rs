//! The command line as a user runs it: the quick start, every command and format, filters,
//! several inputs, standard input, gzip, and clear one-line errors for unusable input.

use crate::common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::io::Write;

fn sipscope() -> Command {
    Command::cargo_bin("sipscope").unwrap()
}

fn sample(name: &str) -> String {
    common::samples().join(name).to_string_lossy().into_owned()
}

fn schema_for(def: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(common::root().join("docs/sipscope.schema.json")).unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    schema["$ref"] = serde_json::Value::String(format!("#/$defs/{def}"));
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, value: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the schema:\n{}",
        errors.join("\n")
    );
}

fn json_out(args: &[&str]) -> serde_json::Value {
    let out = sipscope().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn quick_start_lists_calls() {
    sipscope()
        .arg(sample("answered-udp.pcap"))
        .assert()
        .success()
        .stdout(predicate::str::contains("CALL-ID"))
        .stdout(predicate::str::contains("answered"))
        .stdout(predicate::function(|s: &str| s.lines().count() == 3));
}

#[test]
fn calls_formats() {
    let csv = sipscope()
        .args(["calls", "--format", "csv", &sample("busy-486.pcap")])
        .output()
        .unwrap();
    let text = String::from_utf8(csv.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("index,start,call_id"));
    let row = lines.next().unwrap();
    assert!(row.contains(",busy,486,Busy Here,"), "{row}");
    let doc = json_out(&["calls", "--format", "json", &sample("busy-486.pcap")]);
    assert_valid(&schema_for("callList"), &doc, "calls --format json");
    assert_eq!(doc["calls"][0]["outcome"], "busy");
}

#[test]
fn export_json_matches_the_schema_for_every_sample() {
    let validator = schema_for("document");
    for f in common::captures_in(&common::samples()) {
        let path = f.to_string_lossy().into_owned();
        let doc = json_out(&["export", "--raw", &path]);
        assert_valid(&validator, &doc, &path);
        assert_eq!(doc["version"], 1);
        let calls = doc["calls"].as_array().unwrap();
        // The KeyUpdate sample is TLS alone: without its key log, no call.
        assert!(!calls.is_empty() || path.contains("keyupdate"), "{path}");
        for call in calls {
            for m in call["messages"].as_array().unwrap() {
                assert!(
                    m["raw"].as_str().unwrap().starts_with(
                        m.get("method")
                            .and_then(|v| v.as_str())
                            .unwrap_or("SIP/2.0")
                    )
                );
            }
        }
    }
}

#[test]
fn export_json_matches_the_schema_on_shared_captures() {
    let Some(root) = common::shared_captures() else {
        eprintln!("skipped: ../shared/captures is absent");
        return;
    };
    let validator = schema_for("document");
    for f in common::captures_in(&root) {
        let path = f.to_string_lossy().into_owned();
        let doc = json_out(&["export", "--raw", &path]);
        assert_valid(&validator, &doc, &path);
    }
}

/// Decrypted SIP over TLS exports with the transport `TLS`, and the document matches the
/// schema.
#[test]
fn export_json_of_sip_over_tls_matches_the_schema() {
    let validator = schema_for("document");
    let pcap = sample("tls/tls12-aes256-gcm.pcap");
    let keys = sample("tls/tls12-aes256-gcm.keys");
    let doc = json_out(&["export", "--raw", &pcap, "--tls-keylog", &keys]);
    assert_valid(&validator, &doc, &pcap);
    let transports: Vec<&str> = doc["calls"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports.iter().filter(|t| **t == "TLS").count(), 7);
    // The decrypted text is kept with --raw (it cannot be read again from the frames).
    assert!(
        doc["calls"][0]["messages"][0]["raw"]
            .as_str()
            .unwrap()
            .starts_with("INVITE ")
    );
}

#[test]
fn ndjson_streams_one_valid_call_per_line() {
    let out = sipscope()
        .args(["export", "--format", "ndjson", &sample("answered-tcp.pcap")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let validator = schema_for("call");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_valid(&validator, &v, "ndjson line");
        assert_eq!(v["outcome"], "answered");
    }
}

#[test]
fn export_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    sipscope()
        .args([
            "export",
            &sample("register-401.pcap"),
            "-o",
            path.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["calls"][0]["first_method"], "REGISTER");
}

#[test]
fn flow_draws_a_ladder() {
    let doc = json_out(&["calls", "--format", "json", &sample("cancel-ringing.pcap")]);
    let id = doc["calls"][0]["call_id"].as_str().unwrap().to_string();
    sipscope()
        .args(["flow", &sample("cancel-ringing.pcap"), "--call", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("Call-ID: {id}")))
        .stdout(predicate::str::contains("127.0.0.1:5061"))
        .stdout(predicate::str::contains("CANCEL"))
        .stdout(predicate::str::contains("487 Request Terminated"))
        .stdout(predicate::function(|s: &str| s.lines().count() == 2 + 13));
    sipscope()
        .args(["flow", &sample("cancel-ringing.pcap"), "--call", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::starts_with("sipscope: no call matches"));
}

#[test]
fn flow_writes_svg_and_mermaid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failed.svg");
    sipscope()
        .args(["flow", &sample("missing-ack.pcap"), "--format", "svg", "-o"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.contains("missing_ack"));
    sipscope()
        .args(["flow", &sample("busy-486.pcap"), "--format", "mermaid"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("sequenceDiagram\n"))
        .stdout(predicate::str::contains("486 Busy Here"));
    // Nothing matched: an error, and no empty file left behind.
    let none = dir.path().join("none.svg");
    sipscope()
        .args([
            "flow",
            &sample("busy-486.pcap"),
            "--call",
            "nope",
            "--format",
            "svg",
            "-o",
        ])
        .arg(&none)
        .assert()
        .failure();
    assert!(!none.exists());
}

#[test]
fn filters() {
    let both = [
        sample("busy-486.pcap"),
        sample("register-401.pcap"),
        sample("answered-udp.pcap"),
    ];
    let rows = |extra: &[&str]| -> usize {
        let mut args: Vec<&str> = vec!["calls", "--format", "json"];
        args.extend(both.iter().map(String::as_str));
        args.extend_from_slice(extra);
        json_out(&args)["calls"].as_array().unwrap().len()
    };
    assert_eq!(rows(&[]), 4);
    assert_eq!(rows(&["--status", "4xx"]), 1);
    assert_eq!(rows(&["--status", "200"]), 3);
    assert_eq!(rows(&["--method", "register"]), 1);
    assert_eq!(rows(&["--from", "ALICE"]), 4);
    assert_eq!(rows(&["--to", "bob"]), 3);
    assert_eq!(rows(&["--until", "2000-01-01T00:00:00Z"]), 0);
    assert_eq!(rows(&["--since", "0"]), 4);
}

#[test]
fn several_files_are_merged_in_time_order() {
    let doc = json_out(&[
        "calls",
        "--format",
        "json",
        &sample("register-401.pcap"),
        &sample("answered-udp.pcap"),
    ]);
    let calls = doc["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    let starts: Vec<&str> = calls.iter().map(|c| c["start"].as_str().unwrap()).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
    assert_eq!(doc["sources"].as_array().unwrap().len(), 2);
}

#[test]
fn reads_standard_input_and_gzip() {
    let bytes = std::fs::read(sample("busy-486.pcap")).unwrap();
    sipscope()
        .arg("-")
        .write_stdin(bytes.clone())
        .assert()
        .success()
        .stdout(predicate::str::contains("busy"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.pcap.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    sipscope()
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("busy"));
}

fn one_line_error(args: &[&str], needle: &str) {
    let out = sipscope().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("sipscope: ") && err.contains(needle),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unusable_input_gets_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello world, not a capture").unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, "").unwrap();
    let garbage_gz = dir.path().join("x.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"plain text inside").unwrap();
    std::fs::write(&garbage_gz, gz.finish().unwrap()).unwrap();
    one_line_error(&[text.to_str().unwrap()], "not a pcap or pcapng capture");
    one_line_error(&[empty.to_str().unwrap()], "empty file");
    one_line_error(&[garbage_gz.to_str().unwrap()], "gzip data");
    one_line_error(&["/nonexistent/file.pcap"], "No such file");
    // Regression: the cause was printed twice ("…: No such file…: No such file…").
    let out = sipscope().arg("/nonexistent/file.pcap").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("No such file")
            .count(),
        1
    );
    one_line_error(&[dir.path().to_str().unwrap()], "is a directory");
    one_line_error(&[], "no capture file or live input given");
    one_line_error(&["--status", "9xx", &sample("busy-486.pcap")], "--status");
    one_line_error(
        &["--since", "yesterday", &sample("busy-486.pcap")],
        "--since",
    );
    one_line_error(&["-", "-"], "standard input");
}

#[test]
fn bad_flags_are_usage_errors() {
    sipscope()
        .arg("--no-such-flag")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-such-flag"));
    sipscope()
        .args(["calls", "--format", "xml", "x"])
        .assert()
        .code(2);
}

/// Every limit has a flag; a limit reached is reported on stderr (and counted in the JSON),
/// and a value that is no size is a one-line usage error.
#[test]
fn limit_flags_are_applied_and_reported() {
    let out = sipscope()
        .args(["calls", "--max-calls", "1", "--max-messages-per-call", "3"])
        .arg(sample("answered-udp.pcap"))
        .arg(sample("busy-486.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("limits reached: ")
            && err.contains(" calls_evicted, ")
            && err.contains(" messages_dropped"),
        "{err}"
    );
    let doc = json_out(&[
        "export",
        "--format",
        "json",
        "--max-messages-per-call",
        "3",
        &sample("answered-udp.pcap"),
    ]);
    assert!(doc["limits"]["messages_dropped"].as_u64().unwrap() > 0);
    assert!(
        doc["calls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["messages"].as_array().unwrap().len() <= 3)
    );
    for (flag, value) in [
        ("--max-tcp-buffer", "lots"),
        ("--max-message-size", "12X"),
        ("--fragment-timeout", "nan"),
        ("--max-tcp-streams", "many"),
    ] {
        let out = sipscope()
            .args(["calls", flag, value, &sample("answered-udp.pcap")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(flag), "{err}");
    }
    // Sizes take suffixes.
    sipscope()
        .args([
            "calls",
            "--max-tcp-buffer",
            "64M",
            "--max-fragment-memory",
            "512K",
        ])
        .arg(sample("answered-tcp.pcap"))
        .assert()
        .success();
}

#[test]
fn help_has_examples() {
    sipscope()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    for cmd in ["calls", "flow", "export"] {
        sipscope()
            .args([cmd, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
    }
}

#[test]
fn a_truncated_capture_keeps_what_it_has_and_says_so() {
    let bytes = std::fs::read(sample("answered-udp.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    sipscope()
        .arg(&cut)
        .assert()
        .success()
        .stdout(predicate::str::contains("answered"))
        .stderr(predicate::str::contains(
            "file ends in the middle of a record",
        ));
}

#[test]
fn malformed_messages_always_carry_their_bytes() {
    let Some(root) = common::shared_captures() else {
        eprintln!("skipped: ../shared/captures is absent");
        return;
    };
    let path = root.join("zeek/invalid-content-length.pcap");
    let doc = json_out(&["export", path.to_str().unwrap()]);
    let messages = doc["calls"][0]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    for m in messages {
        assert_eq!(m["issues"][0]["issue"], "bad_content_length");
        assert!(
            m["raw"].as_str().unwrap().contains("Content-Length: "),
            "{m}"
        );
    }
}

/// Completions and manual pages come from the same definitions as `--help`: every command
/// and flag the help lists is in them.
#[test]
fn completions_and_manual_pages_follow_the_help() {
    let bash = sipscope().args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    let bash = String::from_utf8(bash.stdout).unwrap();
    for word in [
        "calls",
        "flow",
        "export",
        "diagnose",
        "stats",
        "capture",
        "--max-memory",
    ] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = sipscope().args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    sipscope()
        .args(["completions", "tcsh"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid value 'tcsh'"));

    let page = sipscope().arg("man").output().unwrap();
    assert!(page.status.success());
    let page = String::from_utf8(page.stdout).unwrap();
    assert!(
        page.starts_with(".ie") && page.contains(".TH sipscope 1"),
        "{page}"
    );
    assert!(
        page.contains("sipscope\\-diagnose(1)"),
        "the page names the command pages"
    );

    let dir = tempfile::tempdir().unwrap();
    sipscope()
        .args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    let export = std::fs::read_to_string(dir.path().join("sipscope-export.1")).unwrap();
    assert!(export.contains("\\-\\-format"), "{export}");
    for c in ["calls", "flow", "diagnose", "stats", "capture"] {
        assert!(dir.path().join(format!("sipscope-{c}.1")).is_file(), "{c}");
    }
}
