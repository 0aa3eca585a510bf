//! `--hep-send`: every SIP message decoded is forwarded as HEP v3 over UDP to a collector
//! (Homer, heplify-server, sngrep -L); with the media analysis, each RTCP compound too (HEP
//! type 5, as JSON in the shape captagent and heplify send and Homer stores) and, when an
//! INVITE call (or any call with RTP) is over, a quality report (type 100, JSON: the verdict,
//! the anomalies, each stream's figures and MOS), both tied to the call by the correlation id
//! (its Call-ID). The live front end's; the HEP wire format itself is [`crate::hep`]'s.

use crate::hep::{PAYLOAD_LOG_JSON, PAYLOAD_RTCP_JSON, SenderIdentity, encode, encode_typed};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;

/// Counters of a [`HepSender`].
#[derive(Debug, Default)]
pub struct SenderCounters {
    pub sent: std::sync::atomic::AtomicU64,
    /// Messages not sent: too large for HEP, or the socket refused them.
    pub failed: std::sync::atomic::AtomicU64,
    /// RTCP compounds sent (type 5).
    pub rtcp: std::sync::atomic::AtomicU64,
    /// Call quality reports sent (type 100).
    pub reports: std::sync::atomic::AtomicU64,
}

/// Forwards SIP messages as HEP v3 over UDP (`--hep-send udp:HOST:PORT`).
#[derive(Clone)]
pub struct HepSender {
    socket: std::sync::Arc<std::net::UdpSocket>,
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
            socket: std::sync::Arc::new(socket),
            me,
            counters: Default::default(),
        })
    }

    /// Sends one encoded packet; counts it as sent in `ok` or as failed.
    fn send_packet(&self, packet: Option<Vec<u8>>, ok: &std::sync::atomic::AtomicU64) {
        let sent = packet.is_some_and(|p| self.socket.send(&p).is_ok());
        if sent {
            ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends one PDU (a message, or a datagram's messages) as it was captured.
    pub fn send(&self, pdu: &crate::net::SipPdu<'_>) {
        use crate::net::Transport;
        let proto = match pdu.transport {
            Transport::Udp => 17,
            Transport::Tcp | Transport::Ws | Transport::Tls | Transport::Wss => 6,
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
        self.send_packet(packet, &self.counters.sent);
    }

    /// The sender as an engine tap: every PDU decoded is forwarded.
    pub fn into_tap(self) -> crate::engine::Tap {
        Box::new(move |pdu| self.send(pdu))
    }

    /// The sender as the engine's reporter of RTCP and of calls that are over, the calls
    /// judged with `config`.
    pub fn into_reporter(
        self,
        config: crate::diagnose::DiagnoseConfig,
    ) -> Box<dyn crate::engine::Reporter> {
        Box::new(HepReporter {
            sender: self,
            config,
        })
    }
}

/// [`HepSender`] as a [`crate::engine::Reporter`].
struct HepReporter {
    sender: HepSender,
    config: crate::diagnose::DiagnoseConfig,
}

impl crate::engine::Reporter for HepReporter {
    fn rtcp(&mut self, d: &crate::net::MediaDatagram, bytes: &[u8], call_id: Option<&str>) {
        let Some(json) = rtcp_json(bytes) else {
            return;
        };
        let packet = encode_typed(
            d.src,
            d.dst,
            17,
            d.time.0,
            PAYLOAD_RTCP_JSON,
            json.to_string().as_bytes(),
            call_id.map(str::as_bytes),
            &self.sender.me,
        );
        self.sender.send_packet(packet, &self.sender.counters.rtcp);
    }

    fn call_over(&mut self, call: &crate::flow::Call, now: crate::time::Timestamp) {
        if call.first_method() != "INVITE" && call.media.is_empty() {
            return;
        }
        let Some(first) = call.messages.first() else {
            return;
        };
        let d = crate::diagnose::diagnose(call, now, &self.config);
        let report = quality_json(call, &d);
        let packet = encode_typed(
            first.src,
            first.dst,
            17,
            now.0,
            PAYLOAD_LOG_JSON,
            report.to_string().as_bytes(),
            Some(call.call_id.as_bytes()),
            &self.sender.me,
        );
        self.sender
            .send_packet(packet, &self.sender.counters.reports);
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// An RTCP compound as the JSON Homer stores for HEP type 5: its first sender or receiver
/// report, with its report blocks and, for an SR, the sender information. `None` when the
/// compound holds neither.
pub fn rtcp_json(bytes: &[u8]) -> Option<Value> {
    use crate::rtp::{Compound, RtcpPacket};
    let mut offset = 0usize;
    for packet in Compound::new(bytes) {
        let Ok(packet) = packet else { return None };
        // Where this packet begins, for the sender information the parser does not keep.
        let here = offset;
        let words = usize::from(u16::from_be_bytes(
            bytes.get(here + 2..here + 4)?.try_into().ok()?,
        ));
        offset = here + (words + 1) * 4;
        let (kind, ssrc, blocks) = match packet {
            RtcpPacket::SenderReport { ssrc, blocks, .. } => (200, ssrc, blocks),
            RtcpPacket::ReceiverReport { ssrc, blocks } => (201, ssrc, blocks),
            _ => continue,
        };
        let blocks: Vec<Value> = blocks
            .map(|b| {
                json!({
                    "source_ssrc": b.ssrc,
                    "fraction_lost": b.fraction_lost,
                    "packets_lost": b.cumulative_lost,
                    "highest_seq_no": b.highest_sequence,
                    "ia_jitter": b.jitter,
                    "lsr": b.last_sr,
                    "dlsr": b.delay_since_last_sr,
                })
            })
            .collect();
        let mut v = json!({
            "type": kind,
            "ssrc": ssrc,
            "report_count": blocks.len(),
            "report_blocks": blocks,
        });
        if let (200, Some(o)) = (kind, v.as_object_mut()) {
            o.insert(
                "sender_information".into(),
                json!({
                    "ntp_timestamp_sec": be32(bytes, here + 8)?,
                    "ntp_timestamp_usec": be32(bytes, here + 12)?,
                    "rtp_timestamp": be32(bytes, here + 16)?,
                    "packets": be32(bytes, here + 20)?,
                    "octets": be32(bytes, here + 24)?,
                }),
            );
        }
        return Some(v);
    }
    None
}

/// The quality report of a call for HEP type 100: the verdict, the anomalies, and each
/// stream's figures (as `calls[].media[]` in the JSON export, without its RTCP and DTMF
/// lists), with the lowest MOS.
pub fn quality_json(call: &crate::flow::Call, d: &crate::diagnose::Diagnosis) -> Value {
    let streams: Vec<Value> = call
        .media
        .iter()
        .map(|s| {
            let mut v = crate::export::media::stream_json(s);
            if let Some(o) = v.as_object_mut() {
                o.remove("rtcp");
                o.remove("dtmf");
                o.insert("rtcp_reports".into(), json!(s.rtcp.len()));
                o.insert("dtmf_digits".into(), json!(s.dtmf.len()));
            }
            v
        })
        .collect();
    let mos = call
        .media
        .iter()
        .filter_map(|s| s.mos)
        .fold(None, |a: Option<f64>, m| Some(a.map_or(m, |a| a.min(m))));
    json!({
        "type": "sipscope_call_report",
        "call_id": crate::sanitize::terminal(&call.call_id),
        "verdict": crate::sanitize::terminal(&d.verdict.summary),
        "failed": d.verdict.failed,
        "status": d.summary.final_status,
        "outcome": d.summary.outcome.as_str(),
        "anomalies": d
            .anomalies
            .iter()
            .map(|a| json!({
                "kind": a.kind.as_str(),
                "severity": a.severity.as_str(),
                "summary": crate::sanitize::terminal(&a.summary),
            }))
            .collect::<Vec<_>>(),
        "mos": mos,
        "streams": streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hep::tests::{SIP, me};

    /// An SR with one report block, then SDES: the JSON Homer stores, from the SR.
    #[test]
    fn rtcp_compounds_become_homer_json() {
        let mut sr = vec![0x81, 200, 0, 12];
        sr.extend_from_slice(&0x1111_1111u32.to_be_bytes()); // sender SSRC
        for word in [0xe000_0001u32, 0x8000_0000, 160_000, 1_000, 160_000] {
            sr.extend_from_slice(&word.to_be_bytes());
        }
        sr.extend_from_slice(&0x2222_2222u32.to_be_bytes()); // block: source
        sr.extend_from_slice(&[64, 0, 0, 5]); // 25% lost, 5 cumulative
        for word in [1_234u32, 80, 0xabcd_0000, 65_536] {
            sr.extend_from_slice(&word.to_be_bytes());
        }
        sr.extend_from_slice(&[0x81, 202, 0, 1, 0x11, 0x11, 0x11, 0x11]);
        let v = rtcp_json(&sr).unwrap();
        assert_eq!(v["type"], 200);
        assert_eq!(v["ssrc"], 0x1111_1111u32);
        assert_eq!(v["sender_information"]["packets"], 1_000);
        assert_eq!(v["sender_information"]["octets"], 160_000);
        assert_eq!(v["sender_information"]["ntp_timestamp_sec"], 0xe000_0001u32);
        let b = &v["report_blocks"][0];
        assert_eq!(b["source_ssrc"], 0x2222_2222u32);
        assert_eq!(
            (b["fraction_lost"].as_u64(), b["packets_lost"].as_i64()),
            (Some(64), Some(5))
        );
        assert_eq!(
            (b["ia_jitter"].as_u64(), b["dlsr"].as_u64()),
            (Some(80), Some(65_536))
        );
        // SDES alone, or damage, is no report.
        assert!(rtcp_json(&sr[28 + 24..]).is_none());
        assert!(rtcp_json(&[0x81, 200, 0, 40]).is_none());
    }

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
