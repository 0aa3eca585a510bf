//! `--hep-send`: every SIP message decoded is forwarded as HEP v3 over UDP to a collector
//! (Homer, heplify-server, sngrep -L). The live front end's; the HEP wire format itself is
//! [`crate::hep`]'s.

use crate::hep::{SenderIdentity, encode};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Counters of a [`HepSender`].
#[derive(Debug, Default)]
pub struct SenderCounters {
    pub sent: std::sync::atomic::AtomicU64,
    /// Messages not sent: too large for HEP, or the socket refused them.
    pub failed: std::sync::atomic::AtomicU64,
}

/// Forwards SIP messages as HEP v3 over UDP (`--hep-send udp:HOST:PORT`).
pub struct HepSender {
    socket: std::net::UdpSocket,
    me: SenderIdentity,
    pub counters: std::sync::Arc<SenderCounters>,
}

impl HepSender {
    /// `spec` is `udp:HOST:PORT` or `HOST:PORT`; the host is resolved now.
    pub fn connect(spec: &str, me: SenderIdentity) -> std::io::Result<HepSender> {
        use std::io::{Error, ErrorKind};
        use std::net::ToSocketAddrs;
        let target = match spec.split_once(':') {
            Some(("udp", rest)) => rest,
            Some(("tcp", _)) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "HEP over TCP is received (--hep-listen tcp:...), but sent over UDP only",
                ));
            }
            _ => spec,
        };
        let addr = target
            .to_socket_addrs()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("`{spec}`: {e}")))?
            .next()
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, format!("`{spec}`: no address")))?;
        let bind: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = std::net::UdpSocket::bind(bind)?;
        socket.connect(addr)?;
        Ok(HepSender {
            socket,
            me,
            counters: Default::default(),
        })
    }

    /// Sends one PDU (a message, or a datagram's messages) as it was captured.
    pub fn send(&self, pdu: &crate::net::SipPdu<'_>) {
        use crate::net::Transport;
        use std::sync::atomic::Ordering;
        let proto = match pdu.transport {
            Transport::Udp => 17,
            Transport::Tcp | Transport::Ws => 6,
            Transport::Sctp => 132,
        };
        let correlation = pdu.hep.and_then(|h| h.correlation_id);
        let packet = encode(
            pdu.src,
            pdu.dst,
            proto,
            pdu.time.0,
            pdu.bytes,
            correlation,
            &self.me,
        );
        let ok = packet.is_some_and(|p| self.socket.send(&p).is_ok());
        let counter = if ok {
            &self.counters.sent
        } else {
            &self.counters.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The sender as an engine tap: every PDU decoded is forwarded.
    pub fn into_tap(self) -> crate::engine::Tap {
        Box::new(move |pdu| self.send(pdu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hep::tests::{SIP, me};

    #[test]
    fn the_sender_forwards_pdus_as_hep() {
        let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        collector
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let spec = format!("udp:{}", collector.local_addr().unwrap());
        let sender = HepSender::connect(&spec, me()).unwrap();
        let src = "10.0.0.1:5060".parse().unwrap();
        let dst = "10.0.0.2:5060".parse().unwrap();
        let pdu = crate::net::SipPdu {
            source: 0,
            frame: 1,
            frames: &[1],
            time: crate::time::Timestamp(1_700_000_000_000_001_000),
            src,
            dst,
            transport: crate::net::Transport::Tcp,
            bytes: SIP,
            hep: None,
        };
        sender.send(&pdu);
        let mut buf = [0u8; 2048];
        let n = collector.recv(&mut buf).unwrap();
        let p = crate::hep::decode(&buf[..n]).unwrap();
        assert_eq!((p.src, p.dst, p.ip_protocol), (src, dst, 6));
        assert_eq!(p.time_ns, Some(1_700_000_000_000_001_000));
        assert_eq!(p.node, Some(&b"edge-1"[..]));
        assert_eq!(&*p.payload, SIP);
        assert_eq!(
            sender
                .counters
                .sent
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(HepSender::connect("tcp:127.0.0.1:9", me()).is_err());
        assert!(HepSender::connect("udp:no-such-host.invalid:9060", me()).is_err());
    }
}
