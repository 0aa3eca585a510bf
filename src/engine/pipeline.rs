//! The engine on two threads for whole sources: a reading thread runs [`super::Ingest`], this
//! thread the call table, batches between them through a bounded channel, with the same
//! results as feeding frames one by one.

use super::ingest::BATCH_BYTES;
use super::*;

/// How many prepared messages travel between the two threads at once. (1,024 held twice the
/// memory between the threads, 3 MB more at the peak, for no gain in speed.)
pub(super) const BATCH: usize = 512;
/// Batches in flight: bounds the memory between the threads.
pub(super) const IN_FLIGHT: usize = 8;

/// Runs a whole source through a new engine on two threads: this thread correlates while a
/// second one reads, decodes and parses. `each` is called on this thread after every batch
/// (for streaming output) with the bytes read so far. Results are the same as feeding the
/// frames one by one to [`Engine::feed`].
pub fn run_pipelined(
    source: &mut (dyn FrameSource + Send),
    config: EngineConfig,
    mut each: impl FnMut(&mut Engine, u64),
) -> Result<Engine, ReaderFailed> {
    run_pipelined_with(source, Engine::new(config), |engine, done| {
        each(engine, done);
        Ok::<(), ReaderFailed>(())
    })
}

/// The reading thread of [`run_pipelined`] ended by a panic: a bug (the library does not
/// panic on data), reported rather than passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reading thread failed")]
pub struct ReaderFailed;

/// [`run_pipelined`] with an engine made by the caller (with a tap, say) and a callback that
/// can fail (an output error): the first error stops the run and is returned.
pub fn run_pipelined_with<E: From<ReaderFailed>>(
    source: &mut (dyn FrameSource + Send),
    mut engine: Engine,
    mut each: impl FnMut(&mut Engine, u64) -> Result<(), E>,
) -> Result<Engine, E> {
    let config = engine.model.config;
    let mut ingest = std::mem::replace(&mut engine.ingest, Ingest::new(&config));
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = Arc::clone(&waiting);
    if matches!(ingest.defer, Defer::Never) {
        ingest.defer = Defer::WhenIdle(Arc::clone(&waiting));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Batch, Timestamp, u64)>(IN_FLIGHT);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
    let reading: &mut (dyn FrameSource + Send) = &mut *source;
    let result = std::thread::scope(|scope| -> Result<(), E> {
        let reader = scope.spawn(move || {
            let source = reading;
            let mut batch = Batch::with_capacity(BATCH);
            let mut last = Timestamp::default();
            let mut frames = 0u64;
            while let Some(frame) = source.next_frame() {
                last = last.max(frame.time);
                ingest.feed(&frame, &mut batch);
                frames += 1;
                // Frames carry time forward even when they hold no SIP (streaming timers). A
                // live input's tick (a quiet network) sends what there is at once.
                let tick = frame.link == crate::capture::LinkType::TICK;
                if tick
                    || batch.units >= BATCH
                    || batch.pdu_bytes >= BATCH_BYTES
                    || frames.is_multiple_of(BATCH as u64 * 4)
                {
                    let next = back_rx
                        .try_recv()
                        .unwrap_or_else(|_| Batch::with_capacity(BATCH));
                    let full = std::mem::replace(&mut batch, next);
                    // Counted before it is sent, so that the consumer never counts it first.
                    counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if tx.send((full, last, source.progress().0)).is_err() {
                        return ingest; // the consumer stopped (an output error)
                    }
                }
            }
            ingest.finish(&mut batch);
            counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send((batch, last, source.progress().0));
            ingest
        });
        let mut failure = None;
        for (mut batch, time, progress) in rx.iter() {
            waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            if failure.is_some() {
                continue; // drain so the reader can finish
            }
            engine.apply(time, &mut batch);
            let _ = back_tx.send(batch);
            if let Err(e) = each(&mut engine, progress) {
                failure = Some(e);
            }
        }
        match reader.join() {
            Ok(ingest) => engine.ingest = ingest,
            Err(_) => return Err(E::from(ReaderFailed)),
        }
        failure.map_or(Ok(()), Err)
    });
    result?;
    // What `finish` does after the last frame, minus the flush the reader already did.
    engine.finish_model();
    each(&mut engine, source.progress().0)?;
    Ok(engine)
}
