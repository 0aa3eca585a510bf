//! Several sources read as one, in time order (like `mergecap`): the frame with the earliest
//! timestamp goes first; ties keep command-line order so that merging is deterministic.
//! Merging needs one frame of look-ahead per source, so heads are copied; a single source is
//! read without this type and copies nothing.

use super::{CaptureDamage, Frame, FrameSource, OwnedFrame};

pub struct MergedSource {
    sources: Vec<Box<dyn FrameSource + Send>>,
    heads: Vec<Option<OwnedFrame>>,
    current: Option<OwnedFrame>,
    primed: bool,
}

impl MergedSource {
    pub fn new(sources: Vec<Box<dyn FrameSource + Send>>) -> MergedSource {
        let heads = sources.iter().map(|_| None).collect();
        MergedSource {
            sources,
            heads,
            current: None,
            primed: false,
        }
    }
}

impl FrameSource for MergedSource {
    fn next_frame(&mut self) -> Option<Frame<'_>> {
        if !self.primed {
            self.primed = true;
            for (head, src) in self.heads.iter_mut().zip(self.sources.iter_mut()) {
                *head = src.next_frame().map(|f| f.to_owned());
            }
        }
        // A linear scan: the number of files on a command line is small.
        let best = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|f| (f.time, i)))
            .min()?
            .1;
        let next = self
            .sources
            .get_mut(best)?
            .next_frame()
            .map(|f| f.to_owned());
        let slot = self.heads.get_mut(best)?;
        self.current = std::mem::replace(slot, next);
        self.current.as_ref().map(OwnedFrame::as_frame)
    }

    fn damage(&self, source: usize) -> CaptureDamage {
        self.sources
            .get(source)
            .map(|s| s.damage(0))
            .unwrap_or_default()
    }

    fn progress(&self) -> (u64, Option<u64>) {
        let mut done = 0;
        let mut total = Some(0u64);
        for s in &self.sources {
            let (d, t) = s.progress();
            done += d;
            total = match (total, t) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        (done, total)
    }
}

/// Files first, then live inputs: what is recorded is read before what is arriving (merging
/// them by time would make the files wait for the network). Frames are copied (one at a time),
/// as in a merge.
pub struct ChainSource {
    sources: Vec<Box<dyn FrameSource + Send>>,
    at: usize,
    current: Option<OwnedFrame>,
}

impl ChainSource {
    pub fn new(sources: Vec<Box<dyn FrameSource + Send>>) -> ChainSource {
        ChainSource {
            sources,
            at: 0,
            current: None,
        }
    }
}

impl FrameSource for ChainSource {
    fn next_frame(&mut self) -> Option<Frame<'_>> {
        loop {
            let source = self.sources.get_mut(self.at)?;
            match source.next_frame() {
                Some(f) => {
                    self.current = Some(f.to_owned());
                    break;
                }
                None => self.at += 1,
            }
        }
        self.current.as_ref().map(OwnedFrame::as_frame)
    }
    /// Damage is a file's: the first source holds the files.
    fn damage(&self, source: usize) -> CaptureDamage {
        self.sources
            .first()
            .map(|s| s.damage(source))
            .unwrap_or_default()
    }
    fn progress(&self) -> (u64, Option<u64>) {
        let done = self.sources.iter().map(|s| s.progress().0).sum();
        (done, None)
    }
    fn live_stats(&self) -> Vec<super::InputStats> {
        self.sources.iter().flat_map(|s| s.live_stats()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{LinkType, Timestamp, VecSource};

    fn frame(source: usize, number: u64, ms: i64) -> OwnedFrame {
        OwnedFrame {
            source,
            number,
            time: Timestamp::from_millis(ms),
            link: LinkType::ETHERNET,
            data: Vec::new(),
            orig_len: 0,
        }
    }

    #[test]
    fn merges_in_time_order_with_stable_ties() {
        let a = VecSource::new(vec![frame(0, 1, 10), frame(0, 2, 30), frame(0, 3, 30)]);
        let b = VecSource::new(vec![frame(1, 1, 5), frame(1, 2, 30), frame(1, 3, 40)]);
        let mut m = MergedSource::new(vec![Box::new(a), Box::new(b)]);
        let mut order = Vec::new();
        while let Some(f) = m.next_frame() {
            order.push((f.source, f.number));
        }
        assert_eq!(order, vec![(1, 1), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
    }
}
