//! Writing frames to capture files: classic pcap when every frame has one link type, pcapng when
//! they do not (a pcap file has a single link type; pcapng has one per interface).
//!
//! Owns the file formats only: which frames to write is the caller's business (the export of
//! selected calls, the `capture` command, the UI). Records are encoded by pcap-parser's
//! `serialize` feature, so the reader and the writer agree on the formats by construction.
//! Frames are written exactly as captured: bytes, captured and original lengths, timestamps.

use super::{Frame, LinkType};
use pcap_parser::{
    EnhancedPacketBlock, InterfaceDescriptionBlock, LegacyPcapBlock, Linktype, PcapHeader,
    SectionHeaderBlock, ToVec,
};
use std::collections::HashMap;
use std::io::{self, Write};

/// Which file format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic pcap (libpcap), little-endian. One link type per file.
    Pcap,
    /// pcapng: one interface per link type.
    PcapNg,
}

impl CaptureFormat {
    /// `.pcapng` (or `.ntar`) asks for pcapng; anything else gets pcap.
    pub fn for_path(path: &str) -> CaptureFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".pcapng") || lower.ends_with(".ntar") {
            CaptureFormat::PcapNg
        } else {
            CaptureFormat::Pcap
        }
    }
}

/// What the writer needs to know before the first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    pub format: CaptureFormat,
    /// Nanosecond timestamps (pcap magic `a1b23c4d`, pcapng `if_tsresol` 9); microseconds
    /// otherwise, which every reader understands.
    pub nanos: bool,
    /// Snapshot length recorded in the file header(s).
    pub snaplen: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            format: CaptureFormat::Pcap,
            nanos: false,
            snaplen: 262_144,
        }
    }
}

/// Facts about a set of frames that decide how to write them: gathered on a first pass (or
/// from the capture source) so that the writer can pick pcap or pcapng up front.
#[derive(Debug, Clone, Default)]
pub struct FrameTraits {
    pub links: Vec<LinkType>,
    /// Some frame's timestamp has a nonzero sub-microsecond part.
    pub nanos: bool,
    pub max_len: u32,
}

impl FrameTraits {
    pub fn see(&mut self, frame: &Frame<'_>) {
        if !self.links.contains(&frame.link) {
            self.links.push(frame.link);
        }
        self.nanos |= frame.time.0 % 1000 != 0;
        self.max_len = self
            .max_len
            .max(frame.orig_len)
            .max(u32::try_from(frame.data.len()).unwrap_or(u32::MAX));
    }

    /// Options for these frames: pcap unless `wanted` says pcapng or the frames have several
    /// link types (which pcap cannot hold).
    pub fn options(&self, wanted: CaptureFormat) -> WriterOptions {
        let format = if self.links.len() > 1 {
            CaptureFormat::PcapNg
        } else {
            wanted
        };
        WriterOptions {
            format,
            nanos: self.nanos,
            snaplen: self.max_len.max(WriterOptions::default().snaplen),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A pcap file holds one link type; this frame has another (write pcapng instead).
    #[error("a pcap file holds one link type ({0}); this frame has link type {1}: write pcapng")]
    LinkType(u32, u32),
    #[error("cannot encode a capture record: {0}")]
    Encode(String),
}

/// Writes frames to `out` in one capture format. Nothing is written before the first frame
/// (pcap needs its link type in the file header), except by [`CaptureWriter::finish`], which
/// writes a valid empty file when no frame came.
pub struct CaptureWriter<W: Write> {
    out: W,
    options: WriterOptions,
    started: bool,
    /// pcap: the file's link type.
    link: Option<LinkType>,
    /// pcapng: interface id per link type.
    interfaces: HashMap<LinkType, u32>,
    frames: u64,
    bytes: u64,
}

fn encode<T: ToVec>(mut block: T) -> Result<Vec<u8>, WriteError> {
    block
        .to_vec()
        .map_err(|e| WriteError::Encode(format!("{e:?}")))
}

impl<W: Write> CaptureWriter<W> {
    pub fn new(out: W, options: WriterOptions) -> CaptureWriter<W> {
        CaptureWriter {
            out,
            options,
            started: false,
            link: None,
            interfaces: HashMap::new(),
            frames: 0,
            bytes: 0,
        }
    }

    pub fn options(&self) -> WriterOptions {
        self.options
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes written so far, headers included (for size-based rotation).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.out.write_all(bytes)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn start(&mut self, link: LinkType) -> Result<(), WriteError> {
        self.started = true;
        match self.options.format {
            CaptureFormat::Pcap => {
                let header = PcapHeader {
                    magic_number: if self.options.nanos {
                        0xa1b2_3c4d
                    } else {
                        0xa1b2_c3d4
                    },
                    version_major: 2,
                    version_minor: 4,
                    thiszone: 0,
                    sigfigs: 0,
                    snaplen: self.options.snaplen,
                    network: Linktype(link.0 as i32),
                };
                self.link = Some(link);
                self.put(&encode(header)?)
            }
            CaptureFormat::PcapNg => {
                let shb = SectionHeaderBlock {
                    block_type: 0,
                    block_len1: 0,
                    bom: 0,
                    major_version: 1,
                    minor_version: 0,
                    section_len: -1,
                    options: Vec::new(),
                    block_len2: 0,
                };
                self.put(&encode(shb)?)
            }
        }
    }

    /// The pcapng interface for `link`, described on first use.
    fn interface(&mut self, link: LinkType) -> Result<u32, WriteError> {
        if let Some(&id) = self.interfaces.get(&link) {
            return Ok(id);
        }
        let id = self.interfaces.len() as u32;
        let idb = InterfaceDescriptionBlock {
            block_type: 0,
            block_len1: 0,
            linktype: Linktype(link.0 as i32),
            reserved: 0,
            snaplen: self.options.snaplen,
            options: Vec::new(),
            block_len2: 0,
            if_tsresol: if self.options.nanos { 9 } else { 6 },
            if_tsoffset: 0,
        };
        self.put(&encode(idb)?)?;
        self.interfaces.insert(link, id);
        Ok(id)
    }

    /// Writes one frame as it was captured. Times before 1970 are written as 1970.
    pub fn write(&mut self, frame: &Frame<'_>) -> Result<(), WriteError> {
        if !self.started {
            self.start(frame.link)?;
        }
        let caplen = u32::try_from(frame.data.len())
            .map_err(|_| WriteError::Encode("frame longer than 4 GiB".into()))?;
        let origlen = frame.orig_len.max(caplen);
        let ns = frame.time.0.max(0) as u64;
        let ticks = if self.options.nanos { ns } else { ns / 1000 };
        let record = match self.options.format {
            CaptureFormat::Pcap => {
                let link = self.link.unwrap_or(frame.link);
                if link != frame.link {
                    return Err(WriteError::LinkType(link.0, frame.link.0));
                }
                let per_sec = if self.options.nanos {
                    1_000_000_000
                } else {
                    1_000_000
                };
                encode(LegacyPcapBlock {
                    // Seconds beyond 2106 do not fit a pcap record; they saturate.
                    ts_sec: u32::try_from(ticks / per_sec).unwrap_or(u32::MAX),
                    ts_usec: (ticks % per_sec) as u32,
                    caplen,
                    origlen,
                    data: frame.data,
                })?
            }
            CaptureFormat::PcapNg => {
                let if_id = self.interface(frame.link)?;
                encode(EnhancedPacketBlock {
                    block_type: 0,
                    block_len1: 0,
                    if_id,
                    ts_high: (ticks >> 32) as u32,
                    ts_low: ticks as u32,
                    caplen,
                    origlen,
                    data: frame.data,
                    options: Vec::new(),
                    block_len2: 0,
                })?
            }
        };
        self.put(&record)?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes and returns the output. With no frame written, writes a valid empty file
    /// (pcap with Ethernet link type, or a pcapng section with no interface).
    pub fn finish(mut self) -> Result<W, WriteError> {
        if !self.started {
            self.start(LinkType::ETHERNET)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Flushes buffered records to the output (live capture writes as it goes).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{FileSource, FrameSource, OwnedFrame, Timestamp};

    fn frame(number: u64, link: LinkType, ns: i64, data: &[u8]) -> OwnedFrame {
        OwnedFrame {
            source: 0,
            number,
            time: Timestamp(ns),
            link,
            data: data.to_vec(),
            orig_len: data.len() as u32 + 10,
        }
    }

    fn read_back(bytes: &[u8]) -> Vec<OwnedFrame> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, bytes).unwrap();
        let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
        let mut out = Vec::new();
        while let Some(f) = src.next_frame() {
            out.push(f.to_owned());
        }
        // The test frames are snaplen-truncated on purpose (orig_len > captured); nothing else
        // may be wrong with the file.
        let damage = src.damage(0);
        assert_eq!(damage.truncated_frames, out.len() as u64);
        assert_eq!(damage.damaged_records, 0);
        assert!(!damage.truncated_file && damage.stopped_early.is_none());
        out
    }

    fn round_trip(options: WriterOptions, frames: &[OwnedFrame]) -> Vec<OwnedFrame> {
        let mut w = CaptureWriter::new(Vec::new(), options);
        for f in frames {
            w.write(&f.as_frame()).unwrap();
        }
        assert_eq!(w.frames(), frames.len() as u64);
        let bytes = w.finish().unwrap();
        read_back(&bytes)
    }

    #[test]
    fn pcap_round_trips_bytes_lengths_and_microsecond_times() {
        let frames = vec![
            frame(1, LinkType::ETHERNET, 1_700_000_000_123_456_000, b"abc"),
            frame(
                2,
                LinkType::ETHERNET,
                1_700_000_001_000_001_000,
                &[0u8; 1500],
            ),
        ];
        let back = round_trip(WriterOptions::default(), &frames);
        assert_eq!(back, frames);
    }

    #[test]
    fn nanosecond_pcap_keeps_nanoseconds() {
        let frames = vec![frame(1, LinkType::RAW, 1_700_000_000_123_456_789, b"x")];
        let opts = WriterOptions {
            nanos: true,
            ..Default::default()
        };
        assert_eq!(round_trip(opts, &frames), frames);
    }

    #[test]
    fn pcapng_holds_several_link_types() {
        let frames = vec![
            frame(1, LinkType::ETHERNET, 1_000_000_000, b"eth"),
            frame(2, LinkType::LINUX_SLL, 2_000_000_001, b"sll-frame"),
            frame(3, LinkType::ETHERNET, 3_000_000_000, b"eth2"),
        ];
        let mut traits = FrameTraits::default();
        for f in &frames {
            traits.see(&f.as_frame());
        }
        let opts = traits.options(CaptureFormat::Pcap);
        assert_eq!(opts.format, CaptureFormat::PcapNg);
        assert!(opts.nanos);
        assert_eq!(round_trip(opts, &frames), frames);
    }

    #[test]
    fn pcap_refuses_a_second_link_type() {
        let mut w = CaptureWriter::new(Vec::new(), WriterOptions::default());
        w.write(&frame(1, LinkType::ETHERNET, 0, b"a").as_frame())
            .unwrap();
        let err = w
            .write(&frame(2, LinkType::RAW, 0, b"b").as_frame())
            .unwrap_err();
        assert!(matches!(err, WriteError::LinkType(1, 101)), "{err}");
    }

    #[test]
    fn an_empty_file_is_still_a_capture() {
        for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
            let w = CaptureWriter::new(
                Vec::new(),
                WriterOptions {
                    format,
                    ..Default::default()
                },
            );
            let bytes = w.finish().unwrap();
            assert!(read_back(&bytes).is_empty());
        }
    }

    #[test]
    fn format_follows_the_file_name() {
        assert_eq!(CaptureFormat::for_path("a.pcapng"), CaptureFormat::PcapNg);
        assert_eq!(CaptureFormat::for_path("a.PCAPNG"), CaptureFormat::PcapNg);
        assert_eq!(CaptureFormat::for_path("a.pcap"), CaptureFormat::Pcap);
        assert_eq!(CaptureFormat::for_path("call"), CaptureFormat::Pcap);
    }
}
