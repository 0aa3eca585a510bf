//! SIP load on loopback for the live-capture benchmarks (docs/performance.md): complete calls
//! (INVITE, 100, 180, 200, ACK, BYE, 200), each with its own Call-ID, sent as UDP datagrams to
//! 127.0.0.1 at a steady rate of messages per second. A socket on the target port drains them,
//! so no ICMP errors are generated. Prints how many messages were sent.
//!
//! With `--scanners RATE`, a scanner flood rides along: OPTIONS, REGISTER and INVITE probes
//! from four loopback addresses (127.0.0.11 to .14), each with a fresh Call-ID and extension,
//! never answered, RATE a second in all.
//!
//! With `--rtp RATE`, RTP rides along: PCMU packets of 172 bytes, 50 a second per stream
//! (RATE/50 streams, each its own SSRC and source port on 127.0.0.21), RATE a second in all,
//! to a socket on the port 10 above the SIP port that drains them.
//!
//!   cargo run --release --example live-load -- --rate 20000 --seconds 60 [--port 5060]
//!   cargo run --release --example live-load -- --rate 2000 --rtp 98000 --seconds 30
//!   cargo run --release --example live-load -- --rate 700 --scanners 100000 --seconds 30
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn call(n: u64, port: u16) -> Vec<String> {
    let id = format!("load-{n}@127.0.0.1");
    let via = format!("Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK{n}a", port + 1);
    let bye_via = format!("Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK{n}b", port + 1);
    // The ACK for a 2xx is a transaction of its own (RFC 3261 §17.1.1.3): a new branch.
    let ack_via = format!("Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK{n}c", port + 1);
    let from = format!("From: \"Load {n}\" <sip:caller{n}@127.0.0.1>;tag=f{n}");
    let to = format!("To: <sip:callee{n}@127.0.0.1>");
    let to_tag = format!("{to};tag=t{n}");
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\n";
    let msg = |start: &str, via: &str, to: &str, cseq: &str, body: &str| {
        let mut m = format!(
            "{start}\r\n{via}\r\n{from}\r\n{to}\r\nCall-ID: {id}\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\nContact: <sip:caller{n}@127.0.0.1:{}>\r\n",
            port + 1
        );
        if !body.is_empty() {
            m.push_str("Content-Type: application/sdp\r\n");
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        m
    };
    let uri = format!("INVITE sip:callee{n}@127.0.0.1:{port} SIP/2.0");
    vec![
        msg(&uri, &via, &to, "1 INVITE", sdp),
        msg("SIP/2.0 100 Trying", &via, &to, "1 INVITE", ""),
        msg("SIP/2.0 180 Ringing", &via, &to_tag, "1 INVITE", ""),
        msg("SIP/2.0 200 OK", &via, &to_tag, "1 INVITE", sdp),
        msg(
            &format!("ACK sip:callee{n}@127.0.0.1:{port} SIP/2.0"),
            &ack_via,
            &to_tag,
            "1 ACK",
            "",
        ),
        msg(
            &format!("BYE sip:callee{n}@127.0.0.1:{port} SIP/2.0"),
            &bye_via,
            &to_tag,
            "2 BYE",
            "",
        ),
        msg("SIP/2.0 200 OK", &bye_via, &to_tag, "2 BYE", ""),
    ]
}

/// A scanner's probe: a fresh Call-ID and extension, a tool's User-Agent on half the sources.
fn probe(k: u64, source: u8, sport: u16, port: u16) -> String {
    let method = ["OPTIONS", "REGISTER", "INVITE"][(k % 3) as usize];
    let ext = 100 + (k.wrapping_mul(2_654_435_761) % 9_900);
    let agent = if source.is_multiple_of(2) {
        "friendly-scanner"
    } else {
        "PolycomSoundPointIP-SPIP_550-UA/3.3.2.0242"
    };
    format!(
        "{method} sip:{ext}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.{source}:{sport};branch=z9hG4bK-s{k}\r\n\
From: \"{ext}\"<sip:{ext}@127.0.0.1>;tag=s{k}\r\nTo: \"{ext}\"<sip:{ext}@127.0.0.1>\r\n\
Call-ID: scan-{k}-{source}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nUser-Agent: {agent}\r\n\
Contact: <sip:{ext}@127.0.0.{source}:{sport}>\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"
    )
}

fn main() -> std::io::Result<()> {
    let rate = arg("--rate", 20_000.0);
    let scan_rate = arg("--scanners", 0.0);
    let seconds = arg("--seconds", 60.0);
    let port = arg("--port", 5060.0) as u16;
    let sink = UdpSocket::bind(("127.0.0.1", port))?;
    sink.set_read_timeout(Some(Duration::from_millis(200)))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        loop {
            let _ = sink.recv(&mut buf);
        }
    });
    let sender = UdpSocket::bind(("127.0.0.1", port + 1))?;
    let scanners: Vec<(u8, UdpSocket)> = if scan_rate > 0.0 {
        (11..15)
            .map(|s| UdpSocket::bind((format!("127.0.0.{s}").as_str(), port + 2)).map(|u| (s, u)))
            .collect::<std::io::Result<_>>()?
    } else {
        Vec::new()
    };
    let rtp_rate = arg("--rtp", 0.0);
    let rtp_total = (rtp_rate * seconds) as u64;
    let rtp_streams = ((rtp_rate / 50.0).ceil() as u64).max(1);
    let rtp_sink = UdpSocket::bind(("127.0.0.1", port + 10))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            let _ = rtp_sink.recv(&mut buf);
        }
    });
    let rtp_socket = if rtp_rate > 0.0 {
        Some(UdpSocket::bind(("127.0.0.21", 0))?)
    } else {
        None
    };
    let mut rtp_sent = 0u64;
    let mut packet = [0xffu8; 172];
    let scan_total = (scan_rate * seconds) as u64;
    let mut scanned = 0u64;
    let start = Instant::now();
    let total = (rate * seconds) as u64;
    let mut sent = 0u64;
    let mut n = 0u64;
    let mut pending: Vec<String> = Vec::new();
    while sent < total || scanned < scan_total || rtp_sent < rtp_total {
        // Where the schedule says we should be; send what is due, then sleep briefly.
        let elapsed = start.elapsed().as_secs_f64();
        let rtp_due = ((elapsed * rtp_rate) as u64).min(rtp_total);
        while let Some(socket) = &rtp_socket
            && rtp_sent < rtp_due
        {
            // Stream k sends its i-th packet: sequence i, timestamp 160·i.
            let (k, i) = (rtp_sent % rtp_streams, rtp_sent / rtp_streams);
            packet[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            packet[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            packet[4..8].copy_from_slice(&((i as u32).wrapping_mul(160)).to_be_bytes());
            packet[8..12].copy_from_slice(&(0x5000_0000 + k as u32).to_be_bytes());
            socket.send_to(&packet, ("127.0.0.1", port + 10))?;
            rtp_sent += 1;
        }
        let scan_due = ((elapsed * scan_rate) as u64).min(scan_total);
        while scanned < scan_due {
            let (source, socket) = &scanners[(scanned % scanners.len() as u64) as usize];
            let m = probe(scanned, *source, port + 2, port);
            socket.send_to(m.as_bytes(), ("127.0.0.1", port))?;
            scanned += 1;
        }
        let due = ((elapsed * rate) as u64).min(total);
        while sent < due {
            if pending.is_empty() {
                n += 1;
                pending = call(n, port);
                pending.reverse();
            }
            if let Some(m) = pending.pop() {
                sender.send_to(m.as_bytes(), ("127.0.0.1", port))?;
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} messages ({n} calls), {scanned} scanner requests and {rtp_sent} RTP packets in {took:.1} s: {:.0} packets/s",
        (sent + scanned + rtp_sent) as f64 / took
    );
    Ok(())
}
