//! Capture files: pcap (micro- and nanosecond, either byte order, the "modified" variant) and
//! pcapng (several interfaces with their own link types and time resolutions), optionally gzip
//! compressed, from a path or from standard input (`-`).
//!
//! Streaming: memory is bounded by the largest record, never by file size. Records that cannot
//! be read are counted in [`CaptureDamage`]; they never cost the records around them when the
//! format allows resynchronising (pcapng carries block lengths; classic pcap does not, so a
//! corrupt record length ends the file there, as it does in Wireshark).

use super::index::{FrameIndex, Recorder};
use super::{CaptureDamage, Frame, FrameSource, LinkType, Timestamp};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Initial read buffer; records larger than this make it grow up to [`MAX_RECORD`].
const INITIAL_BUFFER: usize = 1 << 20;
/// The largest record we accept. libpcap's own limit for a record is 256 KiB; pcapng writers
/// can go further, so allow well beyond that before calling the file damaged.
const MAX_RECORD: usize = 64 << 20;

/// Why a capture could not be opened at all. Each renders as one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    // Not named `source`: thiserror would make it the error's cause, and the one-line
    // message would repeat it ("…: No such file…: No such file…").
    #[error("{path}: {error}")]
    Io { path: String, error: io::Error },
    #[error("{path}: empty file, not a capture")]
    Empty { path: String },
    #[error("{path}: not a pcap or pcapng capture (it starts with {start})")]
    NotCapture { path: String, start: String },
    #[error("{path}: capture header is damaged or truncated")]
    BadHeader { path: String },
}

/// Counts bytes as they are read from the underlying file, for progress reporting.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    offset_secs: i64,
}

/// One capture file read frame by frame.
pub struct FileSource {
    reader: Box<dyn PcapReaderIterator + Send>,
    state: BlockDecoder,
    bytes_read: Arc<AtomicU64>,
    total: Option<u64>,
    capacity: usize,
    finished: bool,
    gzip: bool,
    /// Bytes of the frame last lent out, consumed at the next call.
    pending_consume: usize,
    /// Bytes of the capture consumed so far: the file offset of the reader's buffer.
    consumed: u64,
    /// A plain file opened by path, whose frames can be read again at their offsets.
    seekable: Option<String>,
    /// Where each frame's bytes lie, when asked ([`FileSource::index_into`]).
    recorder: Option<Recorder>,
    /// Added to every frame's time ([`FileSource::shift`]).
    shift: crate::time::Interval,
}

/// What turns blocks into frames; kept apart from the reader so that a block borrowed from
/// the reader's buffer can be decoded without copying it first.
struct BlockDecoder {
    index: usize,
    /// Link type and nanosecond flag of a classic pcap file.
    legacy: Option<(LinkType, bool)>,
    /// Interfaces of the current pcapng section, by interface id.
    interfaces: Vec<Interface>,
    last_time: Timestamp,
    number: u64,
    damage: CaptureDamage,
}

fn describe_start(bytes: &[u8]) -> String {
    let head: Vec<u8> = bytes.iter().take(8).copied().collect();
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}\"", String::from_utf8_lossy(&head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

fn is_capture_magic(b: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 7] = [
        [0xd4, 0xc3, 0xb2, 0xa1], // pcap, little-endian, microseconds
        [0xa1, 0xb2, 0xc3, 0xd4], // pcap, big-endian, microseconds
        [0x4d, 0x3c, 0xb2, 0xa1], // pcap, little-endian, nanoseconds
        [0xa1, 0xb2, 0x3c, 0x4d], // pcap, big-endian, nanoseconds
        [0x34, 0xcd, 0xb2, 0xa1], // "modified" pcap (Kuznetzov), little-endian
        [0xa1, 0xb2, 0xcd, 0x34], // "modified" pcap, big-endian
        [0x0a, 0x0d, 0x0d, 0x0a], // pcapng section header
    ];
    b.len() >= 4 && MAGICS.iter().any(|m| b.get(..4) == Some(&m[..]))
}

impl FileSource {
    /// Opens `path` (`-` for standard input) as source number `index`.
    pub fn open(path: &str, index: usize) -> Result<FileSource, OpenError> {
        let io_err = |error| OpenError::Io {
            path: path.to_string(),
            error,
        };
        let (raw, total): (Box<dyn Read + Send>, Option<u64>) = if path == "-" {
            (Box::new(io::stdin()), None)
        } else {
            let file = std::fs::File::open(Path::new(path)).map_err(io_err)?;
            let meta = file.metadata().map_err(io_err)?;
            if meta.is_dir() {
                return Err(io_err(io::Error::other("is a directory")));
            }
            (Box::new(file), Some(meta.len()))
        };
        let mut source = Self::from_reader(raw, path, index, total)?;
        if path != "-" && !source.gzip {
            source.seekable = Some(path.to_string());
        }
        Ok(source)
    }

    /// Moves every frame of this file by `by` (a clock that was off at this capture point,
    /// `--time-offset`).
    pub fn shift(&mut self, by: crate::time::Interval) {
        self.shift = by;
    }

    /// Records where each frame lies in `index`, so that frames can be read again
    /// ([`FrameIndex::read`]). False, and nothing recorded, for standard input and compressed
    /// files, which cannot be read at an offset, or once frames have been read.
    pub fn index_into(&mut self, index: &FrameIndex) -> bool {
        match &self.seekable {
            Some(path) if self.state.number == 0 => {
                self.recorder = Some(index.recorder(self.state.index, path));
                true
            }
            _ => false,
        }
    }

    fn consume(&mut self, n: usize) {
        self.reader.consume_noshift(n);
        self.consumed += n as u64;
    }

    /// Reads a capture from any reader (`name` is used in messages; `total`, the size when
    /// known, for progress). For tests and fuzzing, which have the bytes in memory.
    pub fn from_reader(
        raw: Box<dyn Read + Send>,
        name: &str,
        index: usize,
        total: Option<u64>,
    ) -> Result<FileSource, OpenError> {
        let path = name;
        let bytes_read = Arc::new(AtomicU64::new(0));
        let io_err = |error| OpenError::Io {
            path: path.to_string(),
            error,
        };
        let counted = CountingReader {
            inner: raw,
            count: bytes_read.clone(),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, counted);
        let start = buffered.fill_buf().map_err(io_err)?.to_vec();
        if start.is_empty() {
            return Err(OpenError::Empty {
                path: path.to_string(),
            });
        }
        let gzip = start.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read + Send> = if gzip {
            let mut gz =
                BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(buffered));
            let inner_start = gz.fill_buf().map_err(io_err)?.to_vec();
            if inner_start.is_empty() {
                return Err(OpenError::Empty {
                    path: path.to_string(),
                });
            }
            if !is_capture_magic(&inner_start) {
                return Err(OpenError::NotCapture {
                    path: path.to_string(),
                    start: format!("gzip data containing {}", describe_start(&inner_start)),
                });
            }
            Box::new(gz)
        } else {
            if !is_capture_magic(&start) {
                return Err(OpenError::NotCapture {
                    path: path.to_string(),
                    start: describe_start(&start),
                });
            }
            Box::new(buffered)
        };
        let reader = pcap_parser::create_reader(INITIAL_BUFFER, reader).map_err(|_| {
            OpenError::BadHeader {
                path: path.to_string(),
            }
        })?;
        Ok(FileSource {
            reader,
            state: BlockDecoder {
                index,
                legacy: None,
                interfaces: Vec::new(),
                last_time: Timestamp::default(),
                number: 0,
                damage: CaptureDamage::default(),
            },
            bytes_read,
            total,
            capacity: INITIAL_BUFFER,
            finished: false,
            pending_consume: 0,
            consumed: 0,
            seekable: None,
            recorder: None,
            shift: crate::time::Interval::default(),
            gzip,
        })
    }

    /// The length of the next pcapng block by its own length field, when that length is
    /// sound and the whole block is in the buffer (a pcap file has no block lengths).
    fn buffered_block_len(&self) -> Option<usize> {
        if self.state.legacy.is_some() {
            return None;
        }
        let data = self.reader.data();
        data.get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_le_bytes(b) as usize)
            .filter(|&len| len >= 12 && len % 4 == 0 && len <= data.len())
    }

    /// After a block that cannot be parsed: skip it using its own length field when the
    /// format has one (pcapng), else stop reading this file.
    fn skip_damaged(&mut self) -> bool {
        let damage = &mut self.state.damage;
        damage.damaged_records += 1;
        if self.state.legacy.is_some() {
            damage.stopped_early =
                Some("damaged pcap record header; the rest of the file cannot be read".into());
            return false;
        }
        match self.buffered_block_len() {
            Some(len) => {
                self.consume(len);
                true
            }
            None => {
                self.state.damage.stopped_early =
                    Some("damaged pcapng block; the rest of the file cannot be read".into());
                false
            }
        }
    }
}

/// Where a frame's bytes are in the reader's buffer, and what we know about it.
struct FrameMeta {
    number: u64,
    time: Timestamp,
    link: LinkType,
    orig_len: u32,
    start: usize,
    len: usize,
}

impl BlockDecoder {
    /// `base` is the address of the reader's buffer: the frame is located by its offset, so
    /// that it can be lent out after the block (which borrows the reader) is dropped.
    fn frame(
        &mut self,
        link: LinkType,
        time: Timestamp,
        data: &[u8],
        orig_len: u32,
        base: usize,
    ) -> FrameMeta {
        self.number += 1;
        self.last_time = time;
        if (orig_len as usize) > data.len() {
            self.damage.truncated_frames += 1;
        }
        let (start, len) = if data.is_empty() {
            (0, 0)
        } else {
            ((data.as_ptr() as usize).wrapping_sub(base), data.len())
        };
        FrameMeta {
            number: self.number,
            time,
            link,
            orig_len,
            start,
            len,
        }
    }

    /// Reads one block: a frame's description, or `None` for blocks that carry no packet.
    fn handle(&mut self, block: PcapBlockOwned<'_>, base: usize) -> Option<FrameMeta> {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.legacy = Some((LinkType(h.network.0 as u32), h.is_nanosecond_precision()));
                None
            }
            PcapBlockOwned::Legacy(b) => {
                let (link, nanos) = self.legacy.unwrap_or((LinkType::ETHERNET, false));
                let frac = if nanos {
                    i64::from(b.ts_usec)
                } else {
                    i64::from(b.ts_usec).saturating_mul(1000)
                };
                let time = Timestamp::from_secs_nanos(i64::from(b.ts_sec), frac);
                let caplen = (b.caplen as usize).min(b.data.len());
                let data = b.data.get(..caplen).unwrap_or(b.data);
                Some(self.frame(link, time, data, b.origlen, base))
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                // Interface ids are scoped to their section.
                self.interfaces.clear();
                None
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.interfaces.push(Interface {
                    link: LinkType(idb.linktype.0 as u32),
                    resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                    offset_secs: idb.if_tsoffset,
                });
                None
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(iface) = self.interfaces.get(epb.if_id as usize).copied() else {
                    self.damage.damaged_records += 1;
                    return None;
                };
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let secs = (raw / iface.resolution) as i64;
                let frac = raw % iface.resolution;
                let nanos =
                    (u128::from(frac) * 1_000_000_000 / u128::from(iface.resolution)) as i64;
                let time =
                    Timestamp::from_secs_nanos(secs.saturating_add(iface.offset_secs), nanos);
                let caplen = (epb.caplen as usize).min(epb.data.len());
                let data = epb.data.get(..caplen).unwrap_or(epb.data);
                Some(self.frame(iface.link, time, data, epb.origlen, base))
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // Simple packets belong to interface 0 and carry no timestamp.
                let Some(iface) = self.interfaces.first().copied() else {
                    self.damage.damaged_records += 1;
                    return None;
                };
                let caplen = (spb.origlen as usize).min(spb.data.len());
                let data = spb.data.get(..caplen).unwrap_or(spb.data);
                let time = self.last_time;
                Some(self.frame(iface.link, time, data, spb.origlen, base))
            }
            PcapBlockOwned::NG(_) => None,
        }
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> Option<Frame<'_>> {
        // The previous frame was lent from the buffer; only now may the reader move on.
        // Without shifting: `consume` moved the unread half of the buffer to its front each
        // time half of it had been read (a second copy of the whole file); `refill` moves
        // what is left of it when it must, by then a partial record.
        if self.pending_consume > 0 {
            self.consume(self.pending_consume);
            self.pending_consume = 0;
        }
        let mut stalls = 0u32;
        let mut found = None;
        while !self.finished {
            let base = self.reader.data().as_ptr() as usize;
            let step = match self.reader.next() {
                Ok((offset, block)) => {
                    stalls = 0;
                    match self.state.handle(block, base) {
                        Some(meta) => {
                            self.pending_consume = offset;
                            found = Some(meta);
                            break;
                        }
                        None => {
                            self.consume(offset);
                            continue;
                        }
                    }
                }
                Err(PcapError::Eof) => Step::End,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::UnexpectedEof) => {
                    self.state.damage.truncated_file = true;
                    Step::End
                }
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(_) => Step::Damaged,
            };
            // A pcapng block that is whole by its own length field yet wants more bytes (a
            // packet's capture length past its block) is damaged, not unfinished: waiting for
            // more would read the blocks after it as its rest.
            let step = match step {
                Step::Refill if self.buffered_block_len().is_some() => Step::Damaged,
                other => other,
            };
            match step {
                Step::End => self.finished = true,
                Step::Refill => {
                    stalls += 1;
                    if stalls > 4 || self.reader.refill().is_err() {
                        self.state.damage.truncated_file = true;
                        self.finished = true;
                    }
                }
                Step::Grow => {
                    if self.capacity >= MAX_RECORD || !self.reader.grow(self.capacity * 2) {
                        self.state.damage.damaged_records += 1;
                        self.state.damage.stopped_early =
                            Some(format!("a record claims more than {MAX_RECORD} bytes"));
                        self.finished = true;
                    } else {
                        self.capacity *= 2;
                        if self.reader.refill().is_err() {
                            self.finished = true;
                        }
                    }
                }
                Step::Damaged => {
                    if !self.skip_damaged() {
                        self.finished = true;
                    }
                }
            }
        }
        let Some(m) = found else {
            if let Some(r) = &mut self.recorder {
                r.flush();
            }
            return None;
        };
        if let Some(r) = &mut self.recorder {
            r.record(self.consumed + m.start as u64, m.len, m.link);
        }
        let data = self
            .reader
            .data()
            .get(m.start..m.start.saturating_add(m.len))
            .unwrap_or(&[]);
        Some(Frame {
            source: self.state.index,
            number: m.number,
            time: m.time.saturating_add(self.shift),
            link: m.link,
            data,
            orig_len: m.orig_len,
        })
    }

    fn damage(&self, _source: usize) -> CaptureDamage {
        self.state.damage.clone()
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes_read.load(Ordering::Relaxed), self.total)
    }
}

enum Step {
    End,
    Refill,
    Grow,
    Damaged,
}

/// Key log text a pcapng file carries at most (a million connections' secrets).
const MAX_SECRETS: usize = 256 << 20;

/// The TLS key log a pcapng file carries in Decryption Secrets Blocks before its first packet
/// (as `editcap --inject-secrets tls,KEYS` writes them), the blocks' texts one after the
/// other; empty for a pcap file, standard input, a file without secrets or one that cannot be
/// read (opening it for the analysis reports why).
pub fn tls_secrets(path: &str) -> Vec<u8> {
    use pcap_parser::pcapng::SecretsType;
    let mut out = Vec::new();
    if path == "-" {
        return out;
    }
    let Ok(file) = std::fs::File::open(Path::new(path)) else {
        return out;
    };
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let gzip = buffered
        .fill_buf()
        .is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    let raw: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let Ok(mut reader) = pcap_parser::create_reader(INITIAL_BUFFER, raw) else {
        return out;
    };
    // Only the blocks before the first packet are looked at: the secrets come first.
    for _ in 0..100_000 {
        let stop = match reader.next() {
            Ok((n, block)) => {
                let stop = match block {
                    PcapBlockOwned::NG(Block::DecryptionSecrets(d))
                        if d.secrets_type == SecretsType::TlsKeyLog =>
                    {
                        out.extend_from_slice(d.data);
                        out.push(b'\n');
                        out.len() > MAX_SECRETS
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_))
                    | PcapBlockOwned::Legacy(_) => true,
                    _ => false,
                };
                reader.consume(n);
                stop
            }
            Err(PcapError::Incomplete(_)) => reader.refill().is_err(),
            Err(_) => true,
        };
        if stop {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    /// (frame number, time, link type, bytes) of each frame read.
    type Read = (u64, Timestamp, LinkType, Vec<u8>);

    fn read_all(path: &std::path::Path) -> (Vec<Read>, CaptureDamage) {
        let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
        let mut out = Vec::new();
        while let Some(f) = src.next_frame() {
            out.push((f.number, f.time, f.link, f.data.to_vec()));
        }
        (out, src.damage(0))
    }

    /// A classic pcap with one 3-byte record, in the given byte order and time unit.
    fn pcap(big_endian: bool, nanos: bool) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w32(magic));
        b.extend_from_slice(&w16(2));
        b.extend_from_slice(&w16(4));
        b.extend_from_slice(&w32(0));
        b.extend_from_slice(&w32(0));
        b.extend_from_slice(&w32(65535));
        b.extend_from_slice(&w32(101)); // raw IP
        b.extend_from_slice(&w32(1_700_000_000));
        b.extend_from_slice(&w32(
            123_456_789 % if nanos { 1_000_000_000 } else { 1_000_000 }
        ));
        b.extend_from_slice(&w32(3));
        b.extend_from_slice(&w32(10));
        b.extend_from_slice(&[1, 2, 3]);
        b
    }

    #[test]
    fn classic_pcap_both_orders_and_resolutions() {
        for (be, nanos, frac) in [
            (false, false, 456_789_000),
            (true, false, 456_789_000),
            (false, true, 123_456_789),
            (true, true, 123_456_789),
        ] {
            let f = write(&pcap(be, nanos));
            let (frames, damage) = read_all(f.path());
            assert_eq!(frames.len(), 1, "be={be} nanos={nanos}");
            let (n, t, link, data) = &frames[0];
            assert_eq!(*n, 1);
            assert_eq!(*link, LinkType::RAW);
            assert_eq!(data, &vec![1, 2, 3]);
            assert_eq!(t.secs(), 1_700_000_000);
            assert_eq!(t.subsec_nanos(), frac, "be={be} nanos={nanos}");
            assert_eq!(
                damage.truncated_frames, 1,
                "caplen 3 < origlen 10 is counted"
            );
        }
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(len as usize - 4, 0);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    fn idb(link: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = link.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&65535u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend_from_slice(&9u16.to_le_bytes()); // if_tsresol
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        }
        block(1, &body)
    }

    fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = iface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        body.resize(20 + data.len().div_ceil(4) * 4, 0);
        block(6, &body)
    }

    #[test]
    fn pcapng_interfaces_with_their_own_link_types_and_resolutions() {
        let mut shb_body = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        shb_body.extend_from_slice(&1u16.to_le_bytes());
        shb_body.extend_from_slice(&0u16.to_le_bytes());
        shb_body.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut b = block(0x0A0D_0D0A, &shb_body);
        b.extend(idb(1, None)); // Ethernet, microseconds
        b.extend(idb(101, Some(9))); // raw IP, nanoseconds
        b.extend(epb(1, 1_700_000_000_000_000_001, &[0xAA; 5]));
        b.extend(epb(0, 1_700_000_000_000_002, &[0xBB; 6]));
        b.extend(epb(7, 0, &[0xCC; 4])); // no such interface: damaged, skipped
        b.extend(epb(0, 1_700_000_000_000_003, &[0xDD; 7]));
        let f = write(&b);
        let (frames, damage) = read_all(f.path());
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].2, LinkType::RAW);
        assert_eq!(frames[0].1, Timestamp(1_700_000_000_000_000_001));
        assert_eq!(
            frames[0].3,
            vec![0xAA; 5],
            "padding is not part of the frame"
        );
        assert_eq!(frames[1].2, LinkType::ETHERNET);
        assert_eq!(frames[1].1, Timestamp(1_700_000_000_000_002_000));
        assert_eq!(
            frames[2].3,
            vec![0xDD; 7],
            "the frame after the damaged one survives"
        );
        assert_eq!(damage.damaged_records, 1);
        assert_eq!(
            frames.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn not_a_capture_is_a_clear_error() {
        let f = write(b"\x7fELF\x02\x01\x01\x00");
        let err = FileSource::open(f.path().to_str().unwrap(), 0)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("not a pcap or pcapng capture (it starts with bytes 7f 45 4c 46"),
            "{err}"
        );
    }
}
