//! Live capture from network interfaces (`-i IFACE`, `-i any`) on Linux through AF_PACKET
//! sockets, with no libpcap.
//!
//! A named interface is read with a raw packet socket and keeps its link layer (Ethernet, or
//! raw IP for tunnel devices); `any` uses a cooked socket over every interface and writes Linux
//! "cooked" (SLL) headers, as libpcap does. Packets a loopback interface shows twice (outgoing,
//! then incoming) are taken once. The capture filter ([`super::filter`]) runs here, before a
//! frame is queued; kernel drops are read from the socket's statistics.
//!
//! Owns the sockets and their system calls only. The system calls are in `sys`, the one place
//! in sipscope with `unsafe` code: the standard library and rustix have no packet sockets (no
//! `sockaddr_ll`, no `PACKET_STATISTICS`), and every call there is a plain libc call on memory
//! we own, with sizes from `size_of`.

use super::LinkType;
use super::filter::{CaptureFilter, FactsOf};
use super::live::{Feed, LiveSource, now};
use std::sync::atomic::Ordering;

/// Largest frame read (jumbo frames, GRO-merged segments).
const SNAPLEN: usize = 262_144;

/// Opens `name` (or `any`) now, so that a missing privilege or interface is an error at once,
/// and reads it on a thread of `live`. Without libpcap the capture filter is evaluated here on
/// what `facts` reads of each frame (the network stage's reader: capture does not look into
/// packets); libpcap compiles it to BPF itself.
pub fn open(
    live: &mut LiveSource,
    name: &str,
    filter: Option<&str>,
    facts: FactsOf,
) -> Result<(), InterfaceError> {
    #[cfg(feature = "libpcap")]
    {
        let _ = facts;
        with_libpcap::open(live, name, filter)
    }
    #[cfg(not(feature = "libpcap"))]
    {
        open_packet_socket(live, name, filter, facts)
    }
}

/// Why an interface could not be opened. Each renders as one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    /// With the fix: the privilege, and the command that grants it to this program.
    #[error(
        "capturing on {name} needs the CAP_NET_RAW privilege: run as root, or once \
         `sudo setcap cap_net_raw,cap_net_admin=eip {program}`"
    )]
    Privilege { name: String, program: String },
    #[error("cannot capture on {name}: {error}")]
    Open { name: String, error: String },
    /// The capture filter's own one-line message.
    #[error("{0}")]
    Filter(String),
    #[error(transparent)]
    FilterSyntax(#[from] super::filter::FilterError),
}

/// Explains a missing privilege with the fix.
fn privilege(name: &str) -> InterfaceError {
    InterfaceError::Privilege {
        name: name.to_string(),
        program: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "sipscope".into()),
    }
}

fn cannot(name: &str, error: impl std::fmt::Display) -> InterfaceError {
    InterfaceError::Open {
        name: name.to_string(),
        error: error.to_string(),
    }
}

#[cfg_attr(feature = "libpcap", allow(dead_code))]
fn open_packet_socket(
    live: &mut LiveSource,
    name: &str,
    filter: Option<&str>,
    facts: FactsOf,
) -> Result<(), InterfaceError> {
    let filter = filter.map(|f| CaptureFilter::parse(f, facts)).transpose()?;
    let socket = sys::PacketSocket::open(name).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => privilege(name),
        _ => cannot(name, e),
    })?;
    live.spawn(name.to_string(), move |feed| {
        read(&socket, filter.as_ref(), &feed)
    });
    Ok(())
}

fn read(
    socket: &sys::PacketSocket,
    filter: Option<&CaptureFilter>,
    feed: &Feed,
) -> Result<(), String> {
    let mut buf = vec![0u8; SNAPLEN + 20];
    let mut last_stats = std::time::Instant::now();
    while !feed.stopped() {
        if last_stats.elapsed() >= std::time::Duration::from_millis(500) {
            last_stats = std::time::Instant::now();
            feed.counters
                .dropped_kernel
                .fetch_add(socket.drops(), Ordering::Relaxed);
        }
        let (link, frame, wire_len) = match socket.recv(&mut buf) {
            Ok(Some(got)) => got,
            Ok(None) => continue, // timeout, or a packet not to take (loopback duplicate)
            Err(e) => return Err(e.to_string()),
        };
        let Some(link) = link else {
            feed.counters.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if filter.is_some_and(|f| !f.matches(link, frame)) {
            continue;
        }
        let orig = u32::try_from(wire_len).unwrap_or(u32::MAX);
        if !feed.send(link, frame.to_vec(), orig, now()) {
            return Ok(());
        }
    }
    feed.counters
        .dropped_kernel
        .fetch_add(socket.drops(), Ordering::Relaxed);
    Ok(())
}

/// The `libpcap` build: the same inputs through libpcap, with full BPF capture filters.
#[cfg(feature = "libpcap")]
mod with_libpcap {
    use super::super::Timestamp;
    use super::{InterfaceError, LinkType, LiveSource, SNAPLEN, cannot, privilege};
    use std::sync::atomic::Ordering;

    pub fn open(
        live: &mut LiveSource,
        name: &str,
        filter: Option<&str>,
    ) -> Result<(), InterfaceError> {
        let device = pcap::Capture::from_device(name).map_err(|e| cannot(name, e))?;
        let mut cap = device
            .promisc(true)
            .snaplen(SNAPLEN as i32)
            .timeout(100)
            .immediate_mode(true)
            .buffer_size(32 << 20)
            .open()
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("ermission") || text.contains("not permitted") {
                    privilege(name)
                } else {
                    cannot(name, text)
                }
            })?;
        if let Some(f) = filter {
            cap.filter(f, true)
                .map_err(|e| InterfaceError::Filter(format!("capture filter `{f}`: {e}")))?;
        }
        let link = LinkType(cap.get_datalink().0 as u32);
        live.spawn(name.to_string(), move |feed| {
            let mut last = std::time::Instant::now();
            while !feed.stopped() {
                if last.elapsed() >= std::time::Duration::from_millis(500) {
                    last = std::time::Instant::now();
                    if let Ok(s) = cap.stats() {
                        // libpcap's counters are totals since the start.
                        let total = u64::from(s.dropped) + u64::from(s.if_dropped);
                        feed.counters.dropped_kernel.store(total, Ordering::Relaxed);
                    }
                }
                match cap.next_packet() {
                    Ok(p) => {
                        let t = Timestamp::from_secs_nanos(
                            p.header.ts.tv_sec,
                            p.header.ts.tv_usec * 1000,
                        );
                        if !feed.send(link, p.data.to_vec(), p.header.len, t) {
                            return Ok(());
                        }
                    }
                    Err(pcap::Error::TimeoutExpired) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        });
        Ok(())
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys {
    //! AF_PACKET system calls. SAFETY (for every `unsafe` block below): the calls are the
    //! documented libc functions on a file descriptor we own (an `OwnedFd`), and every pointer
    //! passed is to a local value or to `buf`, with the length of that value or buffer.
    use super::{LinkType, SNAPLEN};
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const ARPHRD_ETHER: u16 = 1;
    const ARPHRD_LOOPBACK: u16 = 772;
    const ARPHRD_NONE: u16 = 0xFFFE;
    const ARPHRD_IPGRE: u16 = 778;
    const ARPHRD_TUNNEL: u16 = 768;
    const ARPHRD_TUNNEL6: u16 = 769;
    const ARPHRD_SIT: u16 = 776;

    pub struct PacketSocket {
        fd: OwnedFd,
        /// `any`: cooked packets, given SLL headers here.
        cooked: bool,
    }

    fn check(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    impl PacketSocket {
        pub fn open(name: &str) -> io::Result<PacketSocket> {
            let cooked = name == "any";
            let kind = if cooked {
                libc::SOCK_DGRAM
            } else {
                libc::SOCK_RAW
            };
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: see the module doc.
            let raw = check(unsafe { libc::socket(libc::AF_PACKET, kind, i32::from(proto)) })?;
            // SAFETY: `raw` is a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            if !cooked {
                let cname = CString::new(name)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad name"))?;
                // SAFETY: see the module doc.
                let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
                if index == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no such interface (`ip link` lists them; `any` captures on all)",
                    ));
                }
                // SAFETY: an all-zero sockaddr_ll is valid; fields are set below.
                let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                addr.sll_family = libc::AF_PACKET as u16;
                addr.sll_protocol = proto;
                addr.sll_ifindex = index as i32;
                // SAFETY: see the module doc.
                check(unsafe {
                    libc::bind(
                        fd.as_raw_fd(),
                        (&raw const addr).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                })?;
            }
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            set(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)?;
            // A large receive buffer absorbs bursts; the kernel caps it at rmem_max.
            let _ = set(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &(32i32 << 20));
            Ok(PacketSocket { fd, cooked })
        }

        /// One packet: its link type (None if unsupported), the frame and its length on the
        /// wire. `Ok(None)` on a timeout or for a packet not to take.
        #[allow(clippy::type_complexity)]
        pub fn recv<'b>(
            &self,
            buf: &'b mut [u8],
        ) -> io::Result<Option<(Option<LinkType>, &'b [u8], usize)>> {
            // SAFETY: an all-zero sockaddr_ll is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let head = if self.cooked { 16 } else { 0 };
            let room = buf.len().min(head + SNAPLEN);
            let Some(body) = buf.get_mut(head..room) else {
                return Ok(None);
            };
            // SAFETY: see the module doc; `body` is writable for `body.len()` bytes.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    body.as_mut_ptr().cast(),
                    body.len(),
                    libc::MSG_TRUNC,
                    (&raw mut from).cast(),
                    &mut from_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => Ok(None),
                    _ => Err(e),
                };
            }
            let wire = n as usize;
            let got = wire.min(body.len());
            // Sent on a loopback device: the same packet comes back as received.
            if from.sll_pkttype == libc::PACKET_OUTGOING && from.sll_hatype == ARPHRD_LOOPBACK {
                return Ok(None);
            }
            if self.cooked {
                // The SLL header (LINKTYPE_LINUX_SLL): packet type, ARPHRD type, address
                // length, 8 address bytes, protocol.
                let mut h = [0u8; 16];
                h[0..2].copy_from_slice(&u16::from(from.sll_pkttype).to_be_bytes());
                h[2..4].copy_from_slice(&from.sll_hatype.to_be_bytes());
                h[4..6].copy_from_slice(&u16::from(from.sll_halen).to_be_bytes());
                h[6..14].copy_from_slice(&from.sll_addr);
                h[14..16].copy_from_slice(&from.sll_protocol.to_ne_bytes());
                if let Some(dst) = buf.get_mut(..16) {
                    dst.copy_from_slice(&h);
                }
                let frame = buf.get(..16 + got).unwrap_or(&[]);
                return Ok(Some((Some(LinkType::LINUX_SLL), frame, wire + 16)));
            }
            let link = match from.sll_hatype {
                ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LinkType::ETHERNET),
                ARPHRD_NONE | ARPHRD_IPGRE | ARPHRD_TUNNEL | ARPHRD_TUNNEL6 | ARPHRD_SIT => {
                    Some(LinkType::RAW)
                }
                _ => None,
            };
            Ok(Some((link, buf.get(..got).unwrap_or(&[]), wire)))
        }

        /// Packets the kernel dropped since the last call (the counters reset when read).
        pub fn drops(&self) -> u64 {
            let mut stats = libc::tpacket_stats {
                tp_packets: 0,
                tp_drops: 0,
            };
            let mut len = std::mem::size_of::<libc::tpacket_stats>() as u32;
            // SAFETY: see the module doc.
            let r = unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_STATISTICS,
                    (&raw mut stats).cast(),
                    &mut len,
                )
            };
            if r < 0 { 0 } else { u64::from(stats.tp_drops) }
        }
    }

    fn set<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: see the module doc.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as u32,
            )
        })
        .map(|_| ())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! Without Linux's AF_PACKET, live capture needs the `libpcap` build.
    use super::LinkType;
    use std::io;

    pub struct PacketSocket;

    impl PacketSocket {
        pub fn open(_name: &str) -> io::Result<PacketSocket> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "live capture on this system needs the `libpcap` build (cargo build --features libpcap)",
            ))
        }
        pub fn recv<'b>(
            &self,
            _buf: &'b mut [u8],
        ) -> io::Result<Option<(Option<LinkType>, &'b [u8], usize)>> {
            Ok(None)
        }
        pub fn drops(&self) -> u64 {
            0
        }
    }
}
