//! SIP load on loopback for the live-capture benchmarks (docs/performance.md): complete calls
//! (INVITE, 100, 180, 200, ACK, BYE, 200), each with its own Call-ID, sent as UDP datagrams to
//! 127.0.0.1 at a steady rate of messages per second. A socket on the target port drains them,
//! so no ICMP errors are generated. Prints how many messages were sent.
//!
//!   cargo run --release --example live-load -- --rate 20000 --seconds 60 [--port 5060]
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

fn main() -> std::io::Result<()> {
    let rate = arg("--rate", 20_000.0);
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
    let start = Instant::now();
    let total = (rate * seconds) as u64;
    let mut sent = 0u64;
    let mut n = 0u64;
    let mut pending: Vec<String> = Vec::new();
    while sent < total {
        // Where the schedule says we should be; send what is due, then sleep briefly.
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
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
        "sent {sent} messages ({n} calls) in {took:.1} s: {:.0} messages/s",
        sent as f64 / took
    );
    Ok(())
}
