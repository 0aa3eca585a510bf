//! Capture sources: where frames come from.
//!
//! Owns the [`Frame`] type and the [`FrameSource`] trait that every input (capture files today;
//! live interfaces and HEP later) implements, plus the time-ordered merge of several sources,
//! and the writer of pcap and pcapng files.
//! It knows nothing about what is inside a frame: link-layer decoding belongs to [`crate::net`].

mod file;
pub mod filter;
pub mod hep;
mod index;
pub mod interface;
pub mod live;
mod merge;
pub mod privilege;
pub mod writer;

pub use file::{FileSource, OpenError, tls_secrets};
pub use index::{FrameIndex, IndexedFrame, ReadBackError};
pub use live::{InputStats, LiveSource};
pub use merge::{ChainSource, MergedSource};
pub use writer::{CaptureFormat, CaptureWriter, FrameTraits, WriteError, WriterOptions};

pub use crate::time::Timestamp;

/// Link-layer header type of a frame, as numbered by tcpdump's LINKTYPE_ registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// DLT_RAW as some BSD-derived writers number it in the pcap header.
    pub const RAW_BSD_12: LinkType = LinkType(12);
    pub const RAW_BSD_14: LinkType = LinkType(14);
    /// Not a link type: a frame with no packet that only tells the engine that time passed
    /// (live inputs yield it while the network is quiet).
    pub const TICK: LinkType = LinkType(u32::MAX);
}

/// One captured frame, with where it came from. Borrowed from the source's buffer: reading a
/// capture copies no packet bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Index of the source (input file) in the order given on the command line.
    pub source: usize,
    /// 1-based frame number within its source, as Wireshark numbers frames.
    pub number: u64,
    pub time: Timestamp,
    pub link: LinkType,
    /// The captured bytes (possibly fewer than were on the wire, see `orig_len`).
    pub data: &'a [u8],
    pub orig_len: u32,
}

impl Frame<'_> {
    pub fn to_owned(&self) -> OwnedFrame {
        OwnedFrame {
            source: self.source,
            number: self.number,
            time: self.time,
            link: self.link,
            data: self.data.to_vec(),
            orig_len: self.orig_len,
        }
    }
}

/// A frame that owns its bytes (frames built in memory, heads of a merge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    pub source: usize,
    pub number: u64,
    pub time: Timestamp,
    pub link: LinkType,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl OwnedFrame {
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            source: self.source,
            number: self.number,
            time: self.time,
            link: self.link,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

/// Problems met inside a readable source. They are counted and reported, never fatal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureDamage {
    /// Records or blocks that could not be read and were skipped.
    pub damaged_records: u64,
    /// Frames whose captured length is shorter than their length on the wire (snaplen).
    pub truncated_frames: u64,
    /// The file ended in the middle of a record.
    pub truncated_file: bool,
    /// Reading stopped early because the rest of the file could not be resynchronised.
    pub stopped_early: Option<String>,
}

/// A stream of frames. Every input implements this, so the engine, the commands and the tests
/// can be driven by files, live interfaces, HEP listeners or frames built in memory alike.
pub trait FrameSource {
    /// The next frame in capture order, or `None` at the end. Damage inside the source is
    /// recorded in [`FrameSource::damage`] and never ends the stream by itself. The frame
    /// borrows the source until the next call.
    fn next_frame(&mut self) -> Option<Frame<'_>>;

    /// Damage met so far, per source index.
    fn damage(&self, source: usize) -> CaptureDamage;

    /// Bytes read so far and the total if known, for progress reporting.
    fn progress(&self) -> (u64, Option<u64>);

    /// Counters of live inputs (received, dropped by the kernel or by us); none for files.
    fn live_stats(&self) -> Vec<InputStats> {
        Vec::new()
    }
}

/// A source over frames already in memory; used by tests and the synthetic generator.
pub struct VecSource {
    frames: Vec<OwnedFrame>,
    done: usize,
}

impl VecSource {
    pub fn new(frames: Vec<OwnedFrame>) -> VecSource {
        VecSource { frames, done: 0 }
    }
}

impl FrameSource for VecSource {
    fn next_frame(&mut self) -> Option<Frame<'_>> {
        let f = self.frames.get(self.done)?;
        self.done += 1;
        Some(f.as_frame())
    }
    fn damage(&self, _source: usize) -> CaptureDamage {
        CaptureDamage::default()
    }
    fn progress(&self) -> (u64, Option<u64>) {
        (self.done as u64, Some(self.frames.len() as u64))
    }
}
