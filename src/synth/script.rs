//! Hand-written SIP exchanges as captures: a test writes who sends what to whom and when, and
//! gets frames (for the engine) or a pcap file. Used where a case cannot be recorded from real
//! software on loopback (public addresses, 90-second session timers) and by unit tests.

use crate::capture::{LinkType, OwnedFrame};
use crate::time::Timestamp;
use etherparse::PacketBuilder;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

/// A capture in the making: UDP datagrams in the order they are added.
#[derive(Debug, Clone, Default)]
pub struct Script {
    frames: Vec<OwnedFrame>,
}

/// Base time of every script (2026-01-01T00:00:00Z), so that outputs are stable.
const BASE_MS: i64 = 1_767_225_600_000;

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    /// A UDP datagram from `src` to `dst` (`"ip:port"`, `"[v6]:port"`) `ms` milliseconds after
    /// the start. Panics on a bad address: scripts are written by tests, not read off the wire.
    #[allow(clippy::panic)] // test scripts, see above
    pub fn udp(&mut self, ms: i64, src: &str, dst: &str, payload: &str) -> &mut Script {
        let (src, dst): (SocketAddr, SocketAddr) = (
            src.parse().unwrap_or_else(|_| panic!("bad address {src}")),
            dst.parse().unwrap_or_else(|_| panic!("bad address {dst}")),
        );
        let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let builder = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => builder.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => builder.ipv6(s.octets(), d.octets(), 64),
            _ => panic!("mixed address families"),
        }
        .udp(src.port(), dst.port());
        let mut data = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut data, payload.as_bytes())
            .unwrap_or_else(|e| panic!("cannot build frame: {e}"));
        self.frames.push(OwnedFrame {
            source: 0,
            number: self.frames.len() as u64 + 1,
            time: Timestamp::from_millis(BASE_MS + ms),
            link: LinkType::ETHERNET,
            orig_len: data.len() as u32,
            data,
        });
        self
    }

    pub fn frames(&self) -> &[OwnedFrame] {
        &self.frames
    }

    /// Writes the frames as a pcap file (microsecond resolution, Ethernet).
    pub fn write_pcap(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        for f in &self.frames {
            let us = f.time.0 / 1000;
            out.write_all(&((us / 1_000_000) as u32).to_le_bytes())?;
            out.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
            out.write_all(&(f.data.len() as u32).to_le_bytes())?;
            out.write_all(&(f.data.len() as u32).to_le_bytes())?;
            out.write_all(&f.data)?;
        }
        out.flush()
    }
}

/// A SIP message from a start line, headers and a body; Content-Length is added.
pub fn sip(start: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = String::with_capacity(256 + body.len());
    s.push_str(start);
    s.push_str("\r\n");
    for (name, value) in headers {
        s.push_str(name);
        s.push_str(": ");
        s.push_str(value);
        s.push_str("\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.push_str(body);
    s
}

/// A minimal SDP offer or answer: one audio stream on `ip:port` with these payload types.
pub fn sdp(ip: &str, port: u16, payload_types: &[u8]) -> String {
    let pts: Vec<String> = payload_types.iter().map(u8::to_string).collect();
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        pts.join(" ")
    )
}
