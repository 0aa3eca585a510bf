//! HEP listeners (`--hep-listen udp:ADDR:PORT`, `tcp:ADDR:PORT`): a collector that agents such
//! as kamailio's `siptrace`, heplify or `sngrep -H` send to.
//!
//! Each HEP packet received becomes one frame: an IP/UDP datagram from the sender to the
//! listening address, with the HEP packet as its payload (link type raw IP), so that it takes
//! the same path through [`crate::net`] as HEP found in a capture, and `capture -w` writes
//! files that tshark and sipscope read back. Over TCP, packets are cut from the stream by the
//! HEP v3 length field. Owns sockets and framing only; the HEP format is [`crate::hep`].
//!
//! A UDP listener asks for a receive buffer of [`RECEIVE_BUFFER`] bytes, so that a burst
//! waits in the kernel while the engine catches up (Linux grants at most `net.core.rmem_max`;
//! docs/security.md), and counts what overflowed it anyway: on Linux the socket's drop count
//! (the counter `SO_RXQ_OVFL` reports, read whole with `SO_MEMINFO`) is read twice a second and
//! at the end, and reported as "dropped by the kernel" like an interface's. Neither the
//! standard library nor rustix read it: the `sys` module below calls libc.

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
/// The receive buffer a UDP listener asks for: a second of a busy agent's traffic (about
/// 20,000 HEP packets of 400 bytes).
pub const RECEIVE_BUFFER: usize = 8 << 20;

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
            // Best effort: a smaller buffer than asked still works, and its drops are counted.
            let _ = sys::tune(&socket, RECEIVE_BUFFER);
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
    let mut last_stats = std::time::Instant::now();
    let note_drops = || {
        if let Some(drops) = sys::drops(socket) {
            feed.counters
                .dropped_kernel
                .fetch_max(u64::from(drops), Ordering::Relaxed);
        }
    };
    while !feed.stopped() {
        if last_stats.elapsed() >= Duration::from_millis(500) {
            last_stats = std::time::Instant::now();
            note_drops();
        }
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if !deliver(feed, from, local, buf.get(..n).unwrap_or(&[])) {
                    note_drops();
                    return Ok(());
                }
            }
            Err(e) if nothing_yet(&e) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    note_drops();
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

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys {
    //! `SO_RCVBUF` and `SO_MEMINFO`. SAFETY (for every `unsafe` block below): the calls are
    //! the documented libc functions on the descriptor of a socket the caller owns, and every
    //! pointer passed is to a local value, with its length.
    use std::io;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// `SO_MEMINFO` (Linux 4.6), not exported by libc for every architecture.
    const SO_MEMINFO: libc::c_int = if cfg!(any(target_arch = "sparc", target_arch = "sparc64")) {
        0x39
    } else {
        55
    };

    fn get<T: Copy>(socket: &UdpSocket, name: libc::c_int, value: &mut T) -> io::Result<()> {
        let mut len = std::mem::size_of::<T>() as libc::socklen_t;
        // SAFETY: see the module doc.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                std::ptr::from_mut(value).cast(),
                &mut len,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Asks for a receive buffer of `bytes`; returns the buffer the kernel granted (at most
    /// twice `net.core.rmem_max`).
    pub(super) fn tune(socket: &UdpSocket, bytes: usize) -> io::Result<usize> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: see the module doc.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut granted: libc::c_int = 0;
        get(socket, libc::SO_RCVBUF, &mut granted)?;
        Ok(usize::try_from(granted).unwrap_or(0))
    }

    /// Datagrams the socket dropped since it was opened because its receive buffer was full.
    pub(super) fn drops(socket: &UdpSocket) -> Option<u32> {
        let mut info = [0u32; 9]; // SK_MEMINFO_VARS of Linux 4.6; later kernels append
        get(socket, SO_MEMINFO, &mut info).ok()?;
        info.get(libc::SK_MEMINFO_DROPS as usize).copied()
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! Elsewhere: the system's default buffer, without drop counts.
    use std::io;
    use std::net::UdpSocket;

    pub(super) fn tune(_socket: &UdpSocket, _bytes: usize) -> io::Result<usize> {
        Ok(0)
    }

    pub(super) fn drops(_socket: &UdpSocket) -> Option<u32> {
        None
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

    /// Datagrams that overflow the socket's receive buffer are counted, not lost silently:
    /// every datagram sent is either read or in the drop count.
    #[cfg(target_os = "linux")]
    #[test]
    fn datagrams_the_receive_buffer_could_not_hold_are_counted() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        // The smallest buffer the kernel grants (it rounds up to its minimum).
        let granted = sys::tune(&socket, 1).unwrap();
        assert!(granted > 0 && granted < RECEIVE_BUFFER);
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 400;
        for _ in 0..sent {
            sender
                .send_to(&[0x55; 1000], socket.local_addr().unwrap())
                .unwrap();
        }
        let mut buf = vec![0u8; 2048];
        let mut read = 0u32;
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!((n, from), (1000, sender.local_addr().unwrap()));
            read += 1;
        }
        let drops = sys::drops(&socket).unwrap();
        assert!(
            drops > 0,
            "a buffer of {granted} bytes held {read} datagrams of {sent}"
        );
        assert_eq!(read + drops, sent);
    }
}
