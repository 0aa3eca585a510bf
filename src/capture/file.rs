//! Capture files: pcap (micro- and nanosecond, either byte order, the "modified" variant) and
//! pcapng (several interfaces with their own link types and time resolutions), optionally gzip
//! compressed, from a path or from standard input (`-`).
//!
//! Streaming: memory is bounded by the largest record, never by file size. Records that cannot
//! be read are counted in [`CaptureDamage`]; they never cost the records around them when the
//! format allows resynchronising (pcapng carries block lengths; classic pcap does not, so a
//! corrupt record length ends the file there, as it does in Wireshark).

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
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
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
    /// Bytes of the frame last lent out, consumed at the next call.
    pending_consume: usize,
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
        let bytes_read = Arc::new(AtomicU64::new(0));
        let io_err = |source| OpenError::Io {
            path: path.to_string(),
            source,
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
        let reader: Box<dyn Read + Send> = if start.starts_with(&[0x1f, 0x8b]) {
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
        })
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
        let data = self.reader.data();
        let len = data
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_le_bytes(b) as usize);
        match len {
            Some(len) if len >= 12 && len % 4 == 0 && len <= data.len() => {
                self.reader.consume(len);
                true
            }
            _ => {
                damage.stopped_early =
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
        if self.pending_consume > 0 {
            self.reader.consume(self.pending_consume);
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
                            self.reader.consume(offset);
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
        let m = found?;
        let data = self
            .reader
            .data()
            .get(m.start..m.start.saturating_add(m.len))
            .unwrap_or(&[]);
        Some(Frame {
            source: self.state.index,
            number: m.number,
            time: m.time,
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
