//! Where each frame of a capture file lies, so that one frame can be read again without
//! reading the file from its start (as Wireshark reads a packet's bytes back when it is
//! shown). [`FileSource`](super::FileSource) records the position of every frame's bytes as it
//! reads them; [`FrameIndex::read`] opens the file and reads those bytes back.
//!
//! Eight bytes a frame: the byte offset of the frame's data (40 bits, files up to 1 TiB), its
//! captured length (20 bits, up to 1 MiB) and its link type (4 bits, a slot among the file's
//! first fifteen link types). A frame outside those bounds is not indexed and cannot be read
//! back (its reader says so). Only plain files are indexed: gzip streams and standard input
//! cannot be read at an offset. Owns no decoding: what the bytes are is for [`crate::net`].

use super::LinkType;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

const OFFSET_BITS: u32 = 40;
const LEN_BITS: u32 = 20;
const MAX_OFFSET: u64 = (1 << OFFSET_BITS) - 1;
const MAX_LEN: u64 = (1 << LEN_BITS) - 1;
/// Link-type slots per file; the last value marks a frame that is not indexed.
const LINK_SLOTS: usize = 15;
const NOT_INDEXED: u64 = u64::MAX;
/// Entries a reader gathers before it hands them over under the lock: a frame costs no lock,
/// and a frame shown on screen is almost never among the last few thousand read.
const BATCH: usize = 4096;

/// Why a frame could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadBackError {
    #[error("the input is not indexed (standard input or a compressed file)")]
    NoIndex,
    #[error("frame {0} is not indexed yet")]
    NotYet(u64),
    #[error("frame {0} is too large or too far into the file to be indexed")]
    TooLarge(u64),
    #[error("cannot read frame {frame} again from {path}: {error}")]
    Io {
        frame: u64,
        path: String,
        error: String,
    },
}

/// One frame read back: its link type and captured bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFrame {
    pub link: LinkType,
    pub data: Vec<u8>,
}

/// The index of one file.
#[derive(Debug, Default)]
struct FileIndex {
    path: String,
    /// Entry `n - 1` is frame `n`.
    entries: Vec<u64>,
    links: Vec<LinkType>,
    /// Opened on the first read back.
    file: Option<std::fs::File>,
}

/// The frame indexes of the input files, by source index; shared between the reader that
/// records them and whoever reads frames back.
#[derive(Debug, Clone, Default)]
pub struct FrameIndex {
    files: Arc<Mutex<Vec<Option<FileIndex>>>>,
}

impl FrameIndex {
    pub fn new() -> FrameIndex {
        FrameIndex::default()
    }

    /// A recorder for source `source`, the file at `path`.
    pub(super) fn recorder(&self, source: usize, path: &str) -> Recorder {
        let mut files = lock(&self.files);
        if files.len() <= source {
            files.resize_with(source + 1, || None);
        }
        if let Some(slot) = files.get_mut(source) {
            *slot = Some(FileIndex {
                path: path.to_string(),
                ..FileIndex::default()
            });
        }
        Recorder {
            index: self.clone(),
            source,
            pending: Vec::with_capacity(BATCH),
            links: Vec::new(),
        }
    }

    /// True when source `source` is indexed (its frames can be read back).
    pub fn covers(&self, source: usize) -> bool {
        matches!(lock(&self.files).get(source), Some(Some(_)))
    }

    /// Reads frame `number` (1-based) of source `source` again from its file.
    pub fn read(&self, source: usize, number: u64) -> Result<IndexedFrame, ReadBackError> {
        let mut files = lock(&self.files);
        let Some(Some(file)) = files.get_mut(source) else {
            return Err(ReadBackError::NoIndex);
        };
        let entry = number
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| file.entries.get(i).copied())
            .ok_or(ReadBackError::NotYet(number))?;
        if entry == NOT_INDEXED {
            return Err(ReadBackError::TooLarge(number));
        }
        let offset = entry & MAX_OFFSET;
        let len = ((entry >> OFFSET_BITS) & MAX_LEN) as usize;
        let slot = (entry >> (OFFSET_BITS + LEN_BITS)) as usize;
        let link = file
            .links
            .get(slot)
            .copied()
            .ok_or(ReadBackError::TooLarge(number))?;
        let io = |error: std::io::Error, path: &str| ReadBackError::Io {
            frame: number,
            path: path.to_string(),
            error: error.to_string(),
        };
        if file.file.is_none() {
            file.file = Some(std::fs::File::open(&file.path).map_err(|e| io(e, &file.path))?);
        }
        let path = file.path.clone();
        let handle = file.file.as_mut().ok_or(ReadBackError::NoIndex)?;
        let mut data = vec![0; len];
        handle
            .seek(SeekFrom::Start(offset))
            .and_then(|_| handle.read_exact(&mut data))
            .map_err(|e| io(e, &path))?;
        Ok(IndexedFrame { link, data })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a reader panicked; the entries are still what was recorded.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the frames of one file as it is read, handing them to the shared index in
/// batches.
#[derive(Debug)]
pub(super) struct Recorder {
    index: FrameIndex,
    source: usize,
    pending: Vec<u64>,
    /// The file's link types so far, by slot (a copy of the shared list, read without the
    /// lock).
    links: Vec<LinkType>,
}

impl Recorder {
    /// The next frame's bytes are `len` bytes at `offset` of the file.
    pub(super) fn record(&mut self, offset: u64, len: usize, link: LinkType) {
        let slot = match self.links.iter().position(|&l| l == link) {
            Some(s) => Some(s),
            None if self.links.len() < LINK_SLOTS => {
                self.links.push(link);
                Some(self.links.len() - 1)
            }
            None => None,
        };
        let entry = match slot {
            Some(slot) if offset <= MAX_OFFSET && (len as u64) <= MAX_LEN => {
                (slot as u64) << (OFFSET_BITS + LEN_BITS) | (len as u64) << OFFSET_BITS | offset
            }
            _ => NOT_INDEXED,
        };
        self.pending.push(entry);
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Hands the recorded entries to the shared index.
    pub(super) fn flush(&mut self) {
        let mut files = lock(&self.index.files);
        if let Some(Some(file)) = files.get_mut(self.source) {
            file.entries.append(&mut self.pending);
            file.links.clone_from(&self.links);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bounds_are_refused() {
        let index = FrameIndex::new();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, b"0123456789abcdef").unwrap();
        let mut rec = index.recorder(0, tmp.path().to_str().unwrap());
        rec.record(2, 3, LinkType::ETHERNET);
        rec.record(10, 4, LinkType::RAW);
        rec.record(MAX_OFFSET + 1, 4, LinkType::RAW);
        rec.record(0, (MAX_LEN + 1) as usize, LinkType::RAW);
        assert_eq!(index.read(0, 1), Err(ReadBackError::NotYet(1)));
        rec.flush();
        let f = index.read(0, 1).unwrap();
        assert_eq!(
            (f.link, f.data.as_slice()),
            (LinkType::ETHERNET, &b"234"[..])
        );
        let f = index.read(0, 2).unwrap();
        assert_eq!((f.link, f.data.as_slice()), (LinkType::RAW, &b"abcd"[..]));
        assert_eq!(index.read(0, 3), Err(ReadBackError::TooLarge(3)));
        assert_eq!(index.read(0, 4), Err(ReadBackError::TooLarge(4)));
        assert_eq!(index.read(0, 5), Err(ReadBackError::NotYet(5)));
        assert_eq!(index.read(0, 0), Err(ReadBackError::NotYet(0)));
        assert_eq!(index.read(1, 1), Err(ReadBackError::NoIndex));
        assert!(index.covers(0) && !index.covers(1));
    }

    /// A file cut short since it was read: the frame past its end is an error, not a panic
    /// or a short frame.
    #[test]
    fn a_truncated_file_is_an_error() {
        let index = FrameIndex::new();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, &[7; 64]).unwrap();
        let mut rec = index.recorder(0, tmp.path().to_str().unwrap());
        rec.record(0, 16, LinkType::RAW);
        rec.record(40, 24, LinkType::RAW);
        rec.flush();
        tmp.as_file().set_len(50).unwrap();
        assert_eq!(index.read(0, 1).unwrap().data, vec![7; 16]);
        assert!(matches!(
            index.read(0, 2),
            Err(ReadBackError::Io { frame: 2, .. })
        ));
    }

    #[test]
    fn a_file_of_many_link_types_indexes_the_first_fifteen() {
        let index = FrameIndex::new();
        let mut rec = index.recorder(0, "/nonexistent");
        for l in 0..20 {
            rec.record(0, 1, LinkType(l));
        }
        drop(rec);
        assert_eq!(index.read(0, 16), Err(ReadBackError::TooLarge(16)));
        assert!(matches!(index.read(0, 15), Err(ReadBackError::Io { .. })));
    }
}
