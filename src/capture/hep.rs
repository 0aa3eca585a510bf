//! HEP listeners (`--hep-listen udp:ADDR:PORT`, `tcp:ADDR:PORT`): a collector that agents such
//! as kamailio's `siptrace`, heplify or `sngrep -H` send to.
//!
//! Each HEP packet received becomes one frame: an IP/UDP datagram from the sender to the
//! listening address, with the HEP packet as its payload (link type raw IP), so that it takes
//! the same path through [`crate::net`] as HEP found in a capture, and `capture -w` writes
//! files that tshark and sipscope read back. Over TCP, packets are cut from the stream by the
//! HEP v3 length field. Owns sockets and framing only; the HEP format is [`crate::hep`].

use super::LinkType;
use super::live::{Feed, LiveSource, now};
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often blocked reads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Largest HEP packet that fits a UDP datagram over IPv4 (it is wrapped in one).
const MAX_WRAPPED: usize = 65_507;
/// Bytes buffered per TCP connection while looking for the next packet.
const MAX_TCP_BUFFER: usize = 256 << 10;

/// Where to listen for HEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HepListen {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

impl FromStr for HepListen {
    type Err = String;
    /// `udp:ADDR:PORT`, `tcp:ADDR:PORT`, or `ADDR:PORT` (UDP); `[::]:9060` for IPv6.
    fn from_str(s: &str) -> Result<Self, String> {
        let (proto, addr) = match s.split_once(':') {
            Some((p @ ("udp" | "tcp"), rest)) => (p, rest),
            _ => ("udp", s),
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("`{s}`: expected udp:ADDR:PORT or tcp:ADDR:PORT"))?;
        Ok(if proto == "tcp" {
            HepListen::Tcp(addr)
        } else {
            HepListen::Udp(addr)
        })
    }
}

impl std::fmt::Display for HepListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HepListen::Udp(a) => write!(f, "hep udp:{a}"),
            HepListen::Tcp(a) => write!(f, "hep tcp:{a}"),
        }
    }
}

/// Binds the socket now (so that a bad address or a port in use is an error at once) and
/// reads it on a thread of `live`. Returns the bound address (the port, when 0 was asked).
pub fn listen(live: &mut LiveSource, spec: HepListen) -> std::io::Result<SocketAddr> {
    match spec {
        HepListen::Udp(addr) => {
            let socket = UdpSocket::bind(addr)?;
            socket.set_read_timeout(Some(POLL))?;
            let local = socket.local_addr()?;
            live.spawn(spec.to_string(), move |feed| {
                read_udp(&socket, local, &feed)
            });
            Ok(local)
        }
        HepListen::Tcp(addr) => {
            let listener = TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            let local = listener.local_addr()?;
            live.spawn(spec.to_string(), move |feed| {
                accept_tcp(&listener, local, &feed)
            });
            Ok(local)
        }
    }
}

/// The HEP packet as the payload of a UDP datagram from `from` to `to`, on raw IP.
fn wrap(from: SocketAddr, to: SocketAddr, hep: &[u8]) -> Option<Vec<u8>> {
    if hep.len() > MAX_WRAPPED {
        return None;
    }
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => Some(a.octets()),
        IpAddr::V6(a) => a.to_ipv4_mapped().map(|m| m.octets()),
    };
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mut out = Vec::with_capacity(hep.len() + 48);
    let built = match (v4(from.ip()), v4(to.ip())) {
        (Some(s), Some(d)) => etherparse::PacketBuilder::ipv4(s, d, 64)
            .udp(from.port(), to.port())
            .write(&mut out, hep),
        _ => etherparse::PacketBuilder::ipv6(v6(from.ip()), v6(to.ip()), 64)
            .udp(from.port(), to.port())
            .write(&mut out, hep),
    };
    built.ok().map(|()| out)
}

fn deliver(feed: &Feed, from: SocketAddr, to: SocketAddr, hep: &[u8]) -> bool {
    match wrap(from, to, hep) {
        Some(data) => {
            let len = data.len() as u32;
            // The frame is stamped with the agent's capture time, the time of the message it
            // carries: the engine's clock must agree with its messages (regression: stamped on
            // arrival, an agent's messages looked hours old and the live UI forgot them).
            let time = crate::hep::decode(hep)
                .ok()
                .and_then(|p| p.time_ns)
                .map_or_else(now, super::Timestamp);
            feed.send(LinkType::RAW, data, len, time)
        }
        None => {
            feed.counters.errors.fetch_add(1, Ordering::Relaxed);
            true
        }
    }
}

/// A read that ended without data or failure: the poll timeout, or a signal (glibc signals
/// every thread when the process drops root with setuid).
fn nothing_yet(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

fn read_udp(socket: &UdpSocket, local: SocketAddr, feed: &Feed) -> Result<(), String> {
    let mut buf = vec![0u8; 65_536];
    while !feed.stopped() {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if !deliver(feed, from, local, buf.get(..n).unwrap_or(&[])) {
                    return Ok(());
                }
            }
            Err(e) if nothing_yet(&e) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn accept_tcp(listener: &TcpListener, local: SocketAddr, feed: &Feed) -> Result<(), String> {
    while !feed.stopped() {
        match listener.accept() {
            Ok((stream, from)) => {
                let feed = feed.clone();
                std::thread::spawn(move || read_tcp(stream, from, local, &feed));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Cuts HEP v3 packets out of a TCP stream; bytes that are not HEP are skipped up to the next
/// `HEP3` and counted as errors.
fn read_tcp(mut stream: TcpStream, from: SocketAddr, local: SocketAddr, feed: &Feed) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 65_536];
    while !feed.stopped() {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(e) if nothing_yet(&e) => continue,
            Err(_) => return,
        }
        let mut at = 0;
        loop {
            let rest = buf.get(at..).unwrap_or(&[]);
            match crate::hep::v3_length(rest) {
                Some(len) if len >= 6 => match rest.get(..len) {
                    Some(packet) => {
                        if !deliver(feed, from, local, packet) {
                            return;
                        }
                        at += len;
                    }
                    None => break, // wait for the rest
                },
                _ if rest.len() < 4 => break,
                _ => {
                    // Not at a packet: skip to the next "HEP3" (or keep the last 3 bytes).
                    feed.counters.errors.fetch_add(1, Ordering::Relaxed);
                    let skip = memchr::memmem::find(rest.get(1..).unwrap_or(&[]), b"HEP3")
                        .map_or(rest.len().saturating_sub(3), |i| i + 1);
                    at += skip.max(1);
                }
            }
        }
        buf.drain(..at.min(buf.len()));
        if buf.len() > MAX_TCP_BUFFER {
            feed.counters.errors.fetch_add(1, Ordering::Relaxed);
            buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameSource;
    use crate::hep::{SenderIdentity, decode, encode};
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    fn packet() -> Vec<u8> {
        let a = "10.0.0.1:5060".parse().unwrap();
        encode(
            a,
            a,
            17,
            1_000_000_000,
            SIP,
            None,
            &SenderIdentity::default(),
        )
        .unwrap()
    }

    /// The HEP packet inside a received frame.
    fn unwrap_frame(data: &[u8]) -> Vec<u8> {
        let p = etherparse::SlicedPacket::from_ip(data).unwrap();
        match p.transport {
            Some(etherparse::TransportSlice::Udp(u)) => u.payload().to_vec(),
            _ => panic!("not UDP"),
        }
    }

    fn next_real(live: &mut LiveSource) -> Option<Vec<u8>> {
        for _ in 0..500 {
            match live.next_frame() {
                Some(f) if f.link == LinkType::TICK => continue,
                Some(f) => return Some(f.data.to_vec()),
                None => return None,
            }
        }
        None
    }

    #[test]
    fn specs_parse() {
        assert_eq!(
            "udp:127.0.0.1:9060".parse::<HepListen>(),
            Ok(HepListen::Udp("127.0.0.1:9060".parse().unwrap()))
        );
        assert_eq!(
            "tcp:[::1]:9061".parse::<HepListen>(),
            Ok(HepListen::Tcp("[::1]:9061".parse().unwrap()))
        );
        assert!("sctp:1.2.3.4:1".parse::<HepListen>().is_err());
        assert!("udp:nowhere".parse::<HepListen>().is_err());
    }

    #[test]
    fn udp_and_tcp_listeners_turn_packets_into_frames() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut live = LiveSource::new(Arc::clone(&stop), None, 0);
        live.set_wait(Duration::from_millis(10));
        let udp = listen(&mut live, "udp:127.0.0.1:0".parse().unwrap()).unwrap();
        let tcp = listen(&mut live, "tcp:127.0.0.1:0".parse().unwrap()).unwrap();
        let p = packet();
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(&p, udp)
            .unwrap();
        let got = unwrap_frame(&next_real(&mut live).unwrap());
        assert_eq!(decode(&got).unwrap().payload.as_ref(), SIP);
        // Over TCP: two packets in one write, then one in two writes, with junk between.
        let mut s = TcpStream::connect(tcp).unwrap();
        let mut two = p.clone();
        two.extend_from_slice(&p);
        two.extend_from_slice(b"junk");
        s.write_all(&two).unwrap();
        s.write_all(&p[..10]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&p[10..]).unwrap();
        for _ in 0..3 {
            let got = unwrap_frame(&next_real(&mut live).unwrap());
            assert_eq!(decode(&got).unwrap().payload.as_ref(), SIP);
        }
        let stats = live.live_stats();
        assert_eq!(stats[0].received, 1);
        assert_eq!(stats[1].received, 3);
        assert!(stats[1].errors >= 1, "the junk is counted");
        stop.store(true, Ordering::Relaxed);
        assert!(live.next_frame().is_none());
    }

    #[test]
    fn a_port_in_use_is_an_error_at_once() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut live = LiveSource::new(Arc::new(AtomicBool::new(false)), None, 0);
        let spec = HepListen::Udp(taken.local_addr().unwrap());
        assert!(listen(&mut live, spec).is_err());
    }
}
