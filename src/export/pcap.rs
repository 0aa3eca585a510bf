//! Calls as capture files: the original frames of chosen calls, every IP fragment and TCP
//! segment that carried their messages, copied from the input files unchanged.
//!
//! The model keeps frame numbers, not frames, so the frames are read again from the files:
//! [`wanted_frames`] lists them from the calls, [`write_frames`] re-reads the inputs in time
//! order (the same files read the same way number their frames the same way) and writes the
//! listed ones with [`crate::capture::CaptureWriter`]. Standard input cannot be read again.

use crate::capture::{
    CaptureFormat, CaptureWriter, FileSource, FrameSource, FrameTraits, MergedSource,
};
use crate::capture::{OpenError, WriteError};
use crate::flow::Call;
use std::collections::HashSet;
use std::io::Write;

/// Why the frames of calls could not be saved. Each renders as one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(
        "saving to pcap reads the inputs again and cannot read standard input (`-`): \
         save the capture to a file first"
    )]
    StandardInput,
    #[error("no input to read the frames from")]
    NoInput,
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Only possible when a file changed since it was analysed.
    #[error("{0} frames of the chosen calls were not found when reading the inputs again")]
    Missing(usize),
}

type Result<T> = std::result::Result<T, SaveError>;

/// (source index, frame number) of every frame that carried a message of these calls.
pub fn wanted_frames<'a>(calls: impl IntoIterator<Item = &'a Call>) -> HashSet<(usize, u64)> {
    let mut wanted = HashSet::new();
    for call in calls {
        add_call(&mut wanted, call);
    }
    wanted
}

/// Adds one call's frames to `wanted`.
pub fn add_call(wanted: &mut HashSet<(usize, u64)>, call: &Call) {
    for m in &call.messages {
        wanted.extend(m.frames().iter().map(|&f| (m.source, f)));
        // Its copies at the other capture points, so that the file holds what each saw.
        for s in m.sightings() {
            wanted.extend(s.frames.iter().map(|&f| (s.point.source, f)));
        }
    }
}

/// The TCP connections that carried the chosen calls over TLS or WSS, each with the time of
/// the last message of a chosen call on it: every frame of such a connection up to then is
/// saved with the call (the handshake and the records before its own, which a reader with the
/// key log needs to decrypt them).
#[derive(Default)]
pub struct TlsConnections {
    /// (source, the two addresses in order) → the last message's time.
    pub until: std::collections::HashMap<
        (usize, std::net::SocketAddr, std::net::SocketAddr),
        crate::time::Timestamp,
    >,
}

impl TlsConnections {
    fn key(
        source: usize,
        a: std::net::SocketAddr,
        b: std::net::SocketAddr,
    ) -> (usize, std::net::SocketAddr, std::net::SocketAddr) {
        if a <= b {
            (source, a, b)
        } else {
            (source, b, a)
        }
    }

    pub fn add(&mut self, call: &crate::flow::Call) {
        for m in call.messages() {
            if matches!(
                m.transport,
                crate::net::Transport::Tls | crate::net::Transport::Wss
            ) {
                let until = self
                    .until
                    .entry(Self::key(m.source, m.src, m.dst))
                    .or_default();
                *until = (*until).max(m.time);
            }
        }
    }

    /// Whether the frame is a TCP segment of one of the connections, up to its time.
    pub fn carries(&self, frame: &crate::capture::Frame<'_>) -> bool {
        if self.until.is_empty() {
            return false;
        }
        let Some(facts) = crate::net::link::filter_facts(frame.link, frame.data) else {
            return false;
        };
        let Some((sp, dp)) = facts.ports.filter(|_| facts.proto == 6) else {
            return false;
        };
        let (src, dst) = (
            std::net::SocketAddr::new(facts.src, sp),
            std::net::SocketAddr::new(facts.dst, dp),
        );
        self.until
            .get(&Self::key(frame.source, src, dst))
            .is_some_and(|until| frame.time <= *until)
    }
}

/// Opens the input files again, merged in time order as on the first read (standard input
/// refused: it cannot be read twice).
pub fn reopen(names: &[String]) -> Result<Box<dyn FrameSource + Send>> {
    if names.iter().any(|n| n == "-") {
        return Err(SaveError::StandardInput);
    }
    let mut sources: Vec<Box<dyn FrameSource + Send>> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        sources.push(Box::new(FileSource::open(name, i)?));
    }
    Ok(if sources.len() == 1 {
        sources.pop().ok_or(SaveError::NoInput)?
    } else {
        Box::new(MergedSource::new(sources))
    })
}

/// What the wanted frames are like (link types, timestamp precision), by reading the inputs
/// once: needed to choose pcap or pcapng before writing.
pub fn scan_traits(names: &[String], wanted: &HashSet<(usize, u64)>) -> Result<FrameTraits> {
    let mut traits = FrameTraits::default();
    let mut source = reopen(names)?;
    let mut left = wanted.len();
    while left > 0 {
        let Some(frame) = source.next_frame() else {
            break;
        };
        if wanted.contains(&(frame.source, frame.number)) {
            traits.see(&frame);
            left -= 1;
        }
    }
    Ok(traits)
}

/// Writes the wanted frames of the input files `names` (source index = position) to `out`:
/// pcap, or pcapng when `format` asks for it or the frames have several link types. `traits`
/// describes the frames (from a first pass) or, when `None`, is found by reading the inputs
/// once more. Returns the number of frames written.
pub fn write_frames(
    names: &[String],
    wanted: &HashSet<(usize, u64)>,
    traits: Option<FrameTraits>,
    format: CaptureFormat,
    out: impl Write,
) -> Result<u64> {
    write_frames_with(names, wanted, traits, format, out, None)
}

/// [`write_frames`], and with `also` every other frame it accepts (the calls' RTP, which no
/// frame list names): the inputs are then read to their end.
pub fn write_frames_with(
    names: &[String],
    wanted: &HashSet<(usize, u64)>,
    traits: Option<FrameTraits>,
    format: CaptureFormat,
    out: impl Write,
    mut also: Option<&mut dyn FnMut(&crate::capture::Frame<'_>) -> bool>,
) -> Result<u64> {
    let traits = match traits {
        Some(t) => t,
        None => scan_traits(names, wanted)?,
    };
    let mut writer = CaptureWriter::new(out, traits.options(format));
    let mut source = reopen(names)?;
    let mut left = wanted.len();
    while left > 0 || also.is_some() {
        let Some(frame) = source.next_frame() else {
            break;
        };
        if wanted.contains(&(frame.source, frame.number)) {
            writer.write(&frame)?;
            left -= 1;
        } else if let Some(also) = also.as_mut()
            && also(&frame)
        {
            writer.write(&frame)?;
        }
    }
    let written = writer.frames();
    writer.finish()?;
    if left > 0 {
        return Err(SaveError::Missing(left));
    }
    Ok(written)
}
