//! Live inputs (network interfaces, HEP listeners) read as one frame source.
//!
//! Each input runs on its own thread and hands frames to a bounded channel; when the channel is
//! full, frames are dropped and counted (internal drops), never queued without limit. The
//! source ends when told to stop (Ctrl-C, `--duration`) or when every input has ended. While
//! nothing arrives it yields [`LinkType::TICK`] frames, which carry no packet but move the
//! engine's clock, so that calls end (and stream out) on a quiet network too.
//!
//! Owns threads, the channel, stopping and the counters; how an interface or a socket is read
//! belongs to each input ([`super::hep`], [`super::interface`]).

use super::{CaptureDamage, Frame, FrameSource, LinkType, OwnedFrame, Timestamp};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Frames waiting between the input threads and the engine.
const QUEUE: usize = 65_536;

/// Counters of one live input, shown in the UI status bar and summarised at exit.
#[derive(Debug, Default)]
pub struct InputCounters {
    pub name: String,
    pub received: AtomicU64,
    /// Dropped because the engine did not keep up (the queue was full).
    pub dropped_internal: AtomicU64,
    /// Dropped by the kernel before we could read them (socket statistics), when known.
    pub dropped_kernel: AtomicU64,
    /// Packets that were not usable (a HEP packet too large to wrap, a read error).
    pub errors: AtomicU64,
}

/// A snapshot of one input's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputStats {
    pub name: String,
    pub received: u64,
    pub dropped_internal: u64,
    pub dropped_kernel: u64,
    pub errors: u64,
}

impl InputCounters {
    pub fn snapshot(&self) -> InputStats {
        InputStats {
            name: self.name.clone(),
            received: self.received.load(Ordering::Relaxed),
            dropped_internal: self.dropped_internal.load(Ordering::Relaxed),
            dropped_kernel: self.dropped_kernel.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// What an input thread is given: where to send frames, its source index, when to stop.
#[derive(Clone)]
pub struct Feed {
    tx: SyncSender<OwnedFrame>,
    pub source: usize,
    pub stop: Arc<AtomicBool>,
    pub counters: Arc<InputCounters>,
    number: Arc<AtomicU64>,
}

impl Feed {
    /// Hands a frame to the engine, or drops and counts it when the queue is full. Returns
    /// false when the source has gone (stop reading).
    pub fn send(&self, link: LinkType, data: Vec<u8>, orig_len: u32, time: Timestamp) -> bool {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let frame = OwnedFrame {
            source: self.source,
            number: self.number.fetch_add(1, Ordering::Relaxed) + 1,
            time,
            link,
            data,
            orig_len,
        };
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                // The frame number is used anyway: frame numbers count what was received.
                self.counters
                    .dropped_internal
                    .fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The wall clock as a capture timestamp.
pub fn now() -> Timestamp {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        Err(_) => Timestamp(0),
    }
}

/// Live inputs as one [`FrameSource`].
pub struct LiveSource {
    rx: Receiver<OwnedFrame>,
    tx: Option<SyncSender<OwnedFrame>>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    wait: Duration,
    counters: Vec<Arc<InputCounters>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    current: Option<OwnedFrame>,
    /// The latest frame's time and when it arrived: ticks continue that clock, so that a
    /// sender whose clock differs from ours (HEP agents) does not make time jump.
    clock: Option<(Timestamp, Instant)>,
    errors: Arc<Mutex<Vec<String>>>,
    first_source: usize,
}

impl LiveSource {
    /// `first_source` is the source index of the first input (files come before).
    pub fn new(stop: Arc<AtomicBool>, duration: Option<Duration>, first_source: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        LiveSource {
            rx,
            tx: Some(tx),
            stop,
            deadline: duration.map(|d| Instant::now() + d),
            wait: Duration::from_millis(20),
            counters: Vec::new(),
            threads: Vec::new(),
            current: None,
            clock: None,
            errors: Arc::new(Mutex::new(Vec::new())),
            first_source,
        }
    }

    /// How long `next_frame` waits for a frame before it yields a tick (zero: never waits).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Starts an input on its own thread: `run` reads and calls [`Feed::send`] until
    /// [`Feed::stopped`]; an error it returns is reported at the end.
    pub fn spawn(
        &mut self,
        name: String,
        run: impl FnOnce(Feed) -> Result<(), String> + Send + 'static,
    ) -> usize {
        let source = self.first_source + self.counters.len();
        let counters = Arc::new(InputCounters {
            name: name.clone(),
            ..Default::default()
        });
        self.counters.push(Arc::clone(&counters));
        let Some(tx) = self.tx.clone() else {
            return source;
        };
        let feed = Feed {
            tx: tx.clone(),
            source,
            stop: Arc::clone(&self.stop),
            counters,
            number: Arc::new(AtomicU64::new(0)),
        };
        let errors = Arc::clone(&self.errors);
        // `run` drops its `Feed` (and its sender) when it returns. This second sender keeps the
        // channel open until the error is recorded: the source ends when the channel closes,
        // and whoever then reads `errors` must find it (regression: a failed input's error was
        // sometimes missing from the exit report, and the unit test below failed in CI).
        let open_until_reported = tx;
        self.threads.push(std::thread::spawn(move || {
            if let Err(e) = run(feed)
                && let Ok(mut errors) = errors.lock()
            {
                errors.push(format!("{name}: {e}"));
            }
            drop(open_until_reported);
        }));
        source
    }

    /// Errors the inputs ended with.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn tick(&mut self) -> Frame<'_> {
        // Before the first frame there is no clock to continue: a tick at time zero moves
        // nothing (the engine keeps the latest time it has seen). Starting from the wall clock
        // instead would put a HEP agent's first messages, stamped by its own clock, in the past
        // (regression: the live UI forgot calls as they arrived).
        let time = match self.clock {
            Some((t, at)) => Timestamp(t.0.saturating_add(at.elapsed().as_nanos() as i64)),
            None => Timestamp(0),
        };
        self.current = Some(OwnedFrame {
            source: self.first_source,
            number: 0,
            time,
            link: LinkType::TICK,
            data: Vec::new(),
            orig_len: 0,
        });
        match &self.current {
            Some(f) => f.as_frame(),
            None => unreachable_frame(),
        }
    }

    fn ended(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Never reached: `tick` has just stored the frame. Kept total without a panic.
fn unreachable_frame() -> Frame<'static> {
    Frame {
        source: 0,
        number: 0,
        time: Timestamp(0),
        link: LinkType::TICK,
        data: &[],
        orig_len: 0,
    }
}

impl FrameSource for LiveSource {
    fn next_frame(&mut self) -> Option<Frame<'_>> {
        if self.tx.is_some() {
            // Our own sender is only for spawning: drop it so that the channel closes when
            // every input thread has ended.
            self.tx = None;
        }
        if self.ended() {
            self.stop.store(true, Ordering::Relaxed);
            return None;
        }
        let got = if self.wait.is_zero() {
            self.rx.try_recv().map_err(|e| match e {
                std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            self.rx.recv_timeout(self.wait)
        };
        match got {
            Ok(f) => {
                self.clock = Some((f.time, Instant::now()));
                self.current = Some(f);
                self.current.as_ref().map(OwnedFrame::as_frame)
            }
            Err(RecvTimeoutError::Timeout) => Some(self.tick()),
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    fn damage(&self, _source: usize) -> CaptureDamage {
        CaptureDamage::default()
    }

    fn progress(&self) -> (u64, Option<u64>) {
        let n = self
            .counters
            .iter()
            .map(|c| c.received.load(Ordering::Relaxed))
            .sum();
        (n, None)
    }

    fn live_stats(&self) -> Vec<InputStats> {
        self.counters.iter().map(|c| c.snapshot()).collect()
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Input threads notice the stop flag within their read timeout; they are not joined
        // here so that dropping never blocks on a socket.
        self.threads.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_ticks_drops_and_the_end() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut live = LiveSource::new(Arc::clone(&stop), None, 3);
        live.set_wait(Duration::from_millis(5));
        let release = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicBool::new(false));
        let (r, done) = (Arc::clone(&release), Arc::clone(&sent));
        live.spawn("test".into(), move |feed| {
            for i in 0..(QUEUE + 10) {
                feed.send(LinkType::RAW, vec![i as u8], 1, Timestamp(1_000 + i as i64));
            }
            done.store(true, Ordering::Relaxed);
            while !r.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err("ended".into())
        });
        while !sent.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let first = live.next_frame().map(|f| (f.source, f.number, f.link));
        assert_eq!(first, Some((3, 1, LinkType::RAW)));
        let mut n = 1;
        while live.next_frame().is_some_and(|f| f.link != LinkType::TICK) {
            n += 1;
        }
        assert_eq!(n, QUEUE);
        let stats = live.live_stats();
        assert_eq!(stats[0].received, QUEUE as u64 + 10);
        assert_eq!(stats[0].dropped_internal, 10);
        // A tick continues the clock of the last frame.
        let t = live.next_frame().map(|f| (f.link, f.time)).unwrap();
        assert_eq!(t.0, LinkType::TICK);
        assert!(t.1.0 >= 1_000 + QUEUE as i64 - 1);
        release.store(true, Ordering::Relaxed);
        while live.next_frame().is_some() {}
        assert_eq!(live.errors(), vec!["test: ended".to_string()]);
    }

    #[test]
    fn an_input_error_is_recorded_before_the_source_ends() {
        // Regression: the input's sender went away when `run` returned, before its error was
        // recorded, so a reader that saw the end could miss the error. Holding the error list
        // here stalls the input thread between the two; the source must not end meanwhile.
        let stop = Arc::new(AtomicBool::new(false));
        let mut live = LiveSource::new(Arc::clone(&stop), None, 0);
        live.set_wait(Duration::from_millis(1));
        let errors = Arc::clone(&live.errors);
        let held = errors.lock().unwrap();
        let returned = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&returned);
        live.spawn("failing".into(), move |_feed| {
            r.store(true, Ordering::Relaxed);
            Err("gone".into())
        });
        while !returned.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            let f = live.next_frame().map(|f| f.link);
            assert_eq!(
                f,
                Some(LinkType::TICK),
                "the source ended before the error was kept"
            );
        }
        drop(held);
        while live.next_frame().is_some() {}
        assert_eq!(live.errors(), vec!["failing: gone".to_string()]);
    }

    #[test]
    fn stop_and_duration_end_the_source() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut live = LiveSource::new(Arc::clone(&stop), Some(Duration::from_millis(30)), 0);
        let s = Arc::clone(&stop);
        live.spawn("idle".into(), move |feed| {
            while !feed.stopped() {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(s);
            Ok(())
        });
        let started = Instant::now();
        while live.next_frame().is_some() {}
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(stop.load(Ordering::Relaxed), "inputs are told to stop");
    }
}
