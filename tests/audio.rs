//! `sipscope audio`: the WAV file of a recorded call (sipp playing `g711a.pcap` both ways)
//! against an independent decode of the RTP payloads tshark reads from the same capture: the
//! header fields, the length, and every sample of both channels.

use crate::common;
use std::path::Path;

/// A-law to linear as Sun's reference `g711.c` writes it (segment switch), apart from the
/// implementation under test.
fn alaw2linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = i32::from(a & 0x0f) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// The samples of one direction as tshark's packets give them: (arrival, RTP timestamp,
/// payload) placed as the exporter places them.
fn expected(path: &Path, src_port: u16, t0: f64) -> Vec<i16> {
    let rows = common::tshark_fields(
        path,
        &[
            "-Y",
            &format!("rtp and udp.srcport == {src_port} and rtp.p_type == 8"),
        ],
        &["frame.time_epoch", "rtp.timestamp", "rtp.payload"],
    );
    let mut out = Vec::new();
    let mut anchor: Option<(u32, usize)> = None;
    for r in rows {
        let time: f64 = r[0][0].parse().unwrap();
        let ts: u32 = r[1][0].parse().unwrap();
        let hex: String = r[2][0].chars().filter(char::is_ascii_hexdigit).collect();
        let payload: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let (first_ts, first_at) =
            *anchor.get_or_insert((ts, ((time - t0) * 8000.0).round() as usize));
        let at = (first_at as i64 + i64::from(ts.wrapping_sub(first_ts) as i32)) as usize;
        if out.len() < at + payload.len() {
            out.resize(at + payload.len(), 0);
        }
        for (i, b) in payload.iter().enumerate() {
            out[at + i] = alaw2linear(*b);
        }
    }
    out
}

#[test]
fn the_wav_of_a_recorded_call_matches_an_independent_decode() {
    if !common::require("tshark") {
        return;
    }
    let sample = common::samples().join("media-two-way.pcap");
    let (engine, _) = common::analyse(&sample);
    let call = engine.calls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("call.wav");
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args([
            "audio",
            sample.to_str().unwrap(),
            "--call",
            &call.call_id,
            "-o",
        ])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = std::fs::read(&wav).unwrap();
    // RIFF/WAVE, PCM, 2 channels, 8 kHz, 16 bits, data size = what follows.
    assert_eq!((&b[0..4], &b[8..16]), (&b"RIFF"[..], &b"WAVEfmt "[..]));
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    assert_eq!(
        (u16_at(20), u16_at(22), u32_at(24), u16_at(34)),
        (1, 2, 8000, 16)
    );
    assert_eq!(&b[36..40], b"data");
    assert_eq!(u32_at(40) as usize, b.len() - 44);
    let frames = (b.len() - 44) / 4;
    // As long as the streams: 7.05 s of audio from the first packet on.
    let span = call
        .media
        .iter()
        .map(|s| s.end)
        .max()
        .unwrap()
        .seconds_since(call.media.iter().map(|s| s.start).min().unwrap());
    assert!(
        (frames as f64 / 8000.0 - span).abs() < 0.05,
        "{frames} frames for {span} s"
    );
    let t0 = call.media.iter().map(|s| s.start).min().unwrap();
    let t0 = t0.0 as f64 / 1e9;
    let channel = |c: usize| -> Vec<i16> {
        (0..frames)
            .map(|i| i16::from_le_bytes([b[44 + i * 4 + c * 2], b[45 + i * 4 + c * 2]]))
            .collect()
    };
    for (c, port) in [(0, 6000), (1, 6100)] {
        let mut want = expected(&sample, port, t0);
        want.resize(frames, 0);
        let got = channel(c);
        let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "channel {c}: {differ} samples differ");
        assert!(
            got.iter().filter(|s| **s != 0).count() > 50_000,
            "channel {c} is silent"
        );
    }
}

#[test]
fn audio_needs_a_call_and_names_what_it_cannot_decode() {
    let sample = common::samples().join("media-two-way.pcap");
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["audio", sample.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--call CALL_ID is required"));
    // The DTMF sample: its event stream is not audio and is not named; the audio decodes.
    let sample = common::samples().join("media-dtmf.pcap");
    let (engine, _) = common::analyse(&sample);
    let id = engine.calls()[0].call_id.to_string();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("dtmf.wav");
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["audio", sample.to_str().unwrap(), "--call", &id, "-o"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 streams decoded") && !err.contains("not decoded"),
        "{err}"
    );
}

/// The payloads of a pcap of RTP over Ethernet and IPv4 (sipp's recordings), in order.
fn rtp_payloads(path: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &d[at + 16..at + 16 + incl];
        at += 16 + incl;
        let ip = &frame[14..];
        let rtp = &ip[(ip[0] & 0x0f) as usize * 4 + 8..];
        let header = 12 + 4 * usize::from(rtp[0] & 0x0f);
        out.push(rtp[header..].to_vec());
    }
    out
}

/// SRTP keyed in the SDP (`media-srtp.pcap`: libsrtp protected sipp's `g711a.pcap` with each
/// side's `a=crypto` key, 80-bit tags in one call and 32-bit in the other): both channels of
/// both calls decrypt to exactly the samples of the clear recording, decoded here apart from
/// sipscope. With the keys changed in the SDP, nothing is decoded and stderr says why.
#[test]
fn srtp_with_sdes_keys_decrypts_to_the_recording() {
    let recording = Path::new("/usr/share/sip-tester/g711a.pcap");
    if !recording.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "sip-tester is required in CI"
        );
        eprintln!(
            "skipped: {} is absent (Debian sip-tester)",
            recording.display()
        );
        return;
    }
    let reference: Vec<i16> = rtp_payloads(recording)
        .iter()
        .flatten()
        .map(|b| alaw2linear(*b))
        .collect();
    let sample = common::samples().join("media-srtp.pcap");
    let (engine, _) = common::analyse(&sample);
    let calls = engine.calls();
    assert_eq!(calls.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    for call in &calls {
        assert!(call.media.iter().all(|s| s.srtp.is_some()));
        let wav = dir.path().join("srtp.wav");
        let out = assert_cmd::Command::cargo_bin("sipscope")
            .unwrap()
            .args([
                "audio",
                sample.to_str().unwrap(),
                "--call",
                &call.call_id,
                "-o",
            ])
            .arg(&wav)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.contains("2 streams decoded"),
            "{err}"
        );
        assert!(!err.contains("SRTP"), "{err}");
        let b = std::fs::read(&wav).unwrap();
        let frames = (b.len() - 44) / 4;
        for c in 0..2 {
            let channel: Vec<i16> = (0..frames)
                .map(|i| i16::from_le_bytes([b[44 + i * 4 + c * 2], b[45 + i * 4 + c * 2]]))
                .collect();
            // Each stream starts at its first packet: compare from the first sound on.
            let first = channel.iter().position(|s| *s != 0).unwrap();
            let skip = reference.iter().position(|s| *s != 0).unwrap();
            let want = &reference[skip..];
            let got = &channel[first..first + want.len()];
            let differ = got.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{} channel {c}", call.call_id);
        }
    }

    // The same capture with every a=crypto key changed (same length, so the frames stay valid).
    let mut bytes = std::fs::read(&sample).unwrap();
    for key in [
        &b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"[..],
        &b"ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB"[..],
    ] {
        let mut i = 0;
        while let Some(at) = bytes[i..].windows(key.len()).position(|w| w == key) {
            let at = i + at;
            bytes[at] = if bytes[at] == b'B' { b'C' } else { b'B' };
            i = at + key.len();
        }
    }
    let wrong = dir.path().join("wrong-keys.pcap");
    std::fs::write(&wrong, &bytes).unwrap();
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args([
            "audio",
            wrong.to_str().unwrap(),
            "--call",
            &calls[0].call_id,
            "-o",
        ])
        .arg(dir.path().join("wrong.wav"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no a=crypto key of the call's SDP authenticates its packets: not decoded"),
        "{err}"
    );
    assert!(err.contains("0 streams decoded"), "{err}");
}
