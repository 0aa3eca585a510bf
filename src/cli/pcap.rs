//! `export --format pcap`: the original frames of the selected calls, every IP fragment and TCP
//! segment that carried their messages, written back as a capture.
//!
//! Two passes over the inputs: the first runs the engine and notes which frames (source, frame
//! number) the matching calls' messages came in; the second ([`crate::export::pcap`]) reads the
//! files again and copies those frames unchanged. Memory holds the frame numbers only, never the
//! frames. Standard input cannot be read twice, so it is refused with a clear error.
//!
//! A call signalled over TLS (or secure WebSocket) brings every frame of its TCP connection
//! from the connection's start to the call's last message on it: the handshake and every
//! record before, which a reader with the key log (Wireshark, sipscope) needs to decrypt the
//! call's own records (keys from the hellos, sequence numbers from the records' count). The
//! other calls on that connection stay encrypted there without the key log.

use super::{InputArgs, open, report, sources, stream_matching};
use crate::capture::{CaptureDamage, CaptureFormat, Frame, FrameSource, FrameTraits};
use crate::export::pcap as pcap_export;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// A frame source that notes what the frames are like (link types, timestamp precision,
/// length) as they go by, so that the writer can choose its format without another pass.
struct Observe {
    inner: Box<dyn FrameSource + Send>,
    seen: FrameTraits,
    /// Shared copy, updated only when `seen` changes (rarely): the source runs on the reader
    /// thread.
    shared: Arc<Mutex<FrameTraits>>,
}

impl FrameSource for Observe {
    fn next_frame(&mut self) -> Option<Frame<'_>> {
        let frame = self.inner.next_frame()?;
        let before = (self.seen.links.len(), self.seen.nanos, self.seen.max_len);
        self.seen.see(&frame);
        if before != (self.seen.links.len(), self.seen.nanos, self.seen.max_len)
            && let Ok(mut shared) = self.shared.lock()
        {
            *shared = self.seen.clone();
        }
        Some(frame)
    }
    fn damage(&self, source: usize) -> CaptureDamage {
        self.inner.damage(source)
    }
    fn progress(&self) -> (u64, Option<u64>) {
        self.inner.progress()
    }
}

/// Writes the frames of the calls that match the filters to `path` (or standard output).
pub(super) fn export(input: &InputArgs, path: Option<&str>) -> Result<()> {
    if input.files.iter().any(|f| f == "-") {
        anyhow::bail!(
            "export --format pcap reads its inputs twice and cannot read standard input (`-`): \
             save the capture to a file first"
        );
    }
    if input.live.any() {
        anyhow::bail!(
            "export --format pcap copies frames from capture files; to write live traffic to a \
             file use `sipscope capture -i IFACE -w PATH`"
        );
    }
    if path.is_none() && io::stdout().is_terminal() {
        anyhow::bail!("refusing to write a capture file to the terminal: use -o PATH or a pipe");
    }
    let matcher = input.filters.compile()?;
    let mut inputs = open(input)?;
    let traits = Arc::new(Mutex::new(FrameTraits::default()));
    inputs.source = Box::new(Observe {
        inner: inputs.source,
        seen: FrameTraits::default(),
        shared: Arc::clone(&traits),
    });
    let mut wanted: HashSet<(usize, u64)> = HashSet::new();
    let mut media = MediaFrames::default();
    let mut tls = pcap_export::TlsConnections::default();
    let engine = stream_matching(input, &mut inputs, &matcher, false, |call, _| {
        pcap_export::add_call(&mut wanted, &call);
        media.add(&call);
        tls.add(&call);
        Ok(())
    })?;
    let stats = sources(&engine, &inputs);
    // The whole input's traits: pcapng if the inputs mix link types, even if the chosen
    // frames happen not to.
    let traits = traits.lock().map(|t| t.clone()).unwrap_or_default();
    let format = path.map_or(CaptureFormat::Pcap, CaptureFormat::for_path);
    let out: Box<dyn Write> = match path {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {p}"))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    if media.flows.is_empty() && tls.until.is_empty() {
        pcap_export::write_frames(&inputs.names, &wanted, Some(traits), format, out)?;
    } else {
        let mut decoder = crate::net::Decoder::new(engine.config().net);
        decoder.set_media(true);
        let mut also = |frame: &Frame<'_>| {
            tls.carries(frame) || (!media.flows.is_empty() && media.carries(&mut decoder, frame))
        };
        pcap_export::write_frames_with(
            &inputs.names,
            &wanted,
            Some(traits),
            format,
            out,
            Some(&mut also),
        )?;
    }
    report(&stats, &engine, &inputs);
    Ok(())
}

/// The RTP and RTCP of the chosen calls, as sngrep's "save with RTP" has it: no frame list
/// names them (nothing is kept per packet), so on the second read each UDP datagram is
/// decoded and kept when it belongs to a stream of a chosen call (same input, addresses and
/// SSRC-free flow, within the stream's time) or is RTCP between the next ports.
#[derive(Default)]
struct MediaFrames {
    /// (source, src, dst) → the streams' time spans.
    flows: std::collections::HashMap<
        (usize, std::net::SocketAddr, std::net::SocketAddr),
        Vec<(crate::time::Timestamp, crate::time::Timestamp)>,
    >,
}

impl MediaFrames {
    fn add(&mut self, call: &crate::flow::Call) {
        let next =
            |a: std::net::SocketAddr| std::net::SocketAddr::new(a.ip(), a.port().wrapping_add(1));
        for s in &call.media {
            let span = (s.start, s.end);
            self.flows
                .entry((s.source, s.src, s.dst))
                .or_default()
                .push(span);
            // RTCP: from the port above, or on the same ports (rtcp-mux); reports may come a
            // few seconds after the last packet.
            let late = s.end.saturating_add(crate::time::Interval::from_secs(10));
            self.flows
                .entry((s.source, next(s.src), next(s.dst)))
                .or_default()
                .push((s.start, late));
            self.flows
                .entry((s.source, next(s.dst), next(s.src)))
                .or_default()
                .push((s.start, late));
        }
    }

    fn carries(&self, decoder: &mut crate::net::Decoder, frame: &Frame<'_>) -> bool {
        decoder.feed(frame, &mut |_| {});
        let mut keep = false;
        decoder.drain_media(|d, _| {
            keep |= self
                .flows
                .get(&(d.source, d.src, d.dst))
                .is_some_and(|spans| {
                    spans.iter().any(|(a, b)| (*a..=*b).contains(&d.time))
                        || matches!(d.payload, crate::net::MediaPayload::Rtcp(_))
                            && spans.iter().any(|(a, _)| d.time >= *a)
                });
        });
        keep
    }
}
