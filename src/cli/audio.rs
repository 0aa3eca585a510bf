//! `sipscope audio --call ID`: the call's audio as a stereo WAV file (caller → callee left,
//! callee → caller right), time-aligned from the RTP timestamps with silence where packets were
//! lost or absent. Two passes over the inputs, as `export --format pcap`: the first finds the
//! call and its streams, the second decodes the streams' payloads ([`crate::export::audio`]).
//! Codecs it cannot decode are named on stderr, never skipped silently.

use super::{InputArgs, open, report, sources, stream_matching};
use crate::export::audio::{Decoder, Mixer, RATE};
use crate::media::{Direction, Stream};
use anyhow::{Context, Result};
use std::io::Write;

pub(super) fn run(input: &InputArgs, output: Option<&str>) -> Result<()> {
    let Some(wanted) = input.filters.call_id() else {
        anyhow::bail!("--call CALL_ID is required (list the calls with `sipscope calls`)");
    };
    if input.no_media {
        anyhow::bail!("`sipscope audio` needs the media analysis: leave out --no-media");
    }
    if input.files.iter().any(|f| f == "-") || input.live.any() {
        anyhow::bail!(
            "`sipscope audio` reads its capture files twice: standard input and live inputs cannot be"
        );
    }
    let matcher = input.filters.compile()?;
    let mut inputs = open(input)?;
    let mut found: Option<crate::flow::Call> = None;
    let engine = stream_matching(input, &mut inputs, &matcher, false, |call, _| {
        if found.is_none() {
            found = Some(call);
        }
        Ok(())
    })?;
    let call = found.with_context(|| {
        format!(
            "no call {} (list them with `sipscope calls`)",
            crate::sanitize::terminal(wanted)
        )
    })?;
    if call.media.is_empty() {
        anyhow::bail!(
            "call {} has no RTP in this capture (see `sipscope media`)",
            crate::sanitize::terminal(&call.call_id)
        );
    }
    let mut err = std::io::stderr();
    // The streams to decode, with their channel and decoder; the others named.
    let mut plan: Vec<(&Stream, usize, Decoder)> = Vec::new();
    for s in &call.media {
        let codec = s.codec.as_deref().unwrap_or("");
        let channel = match s.direction {
            Direction::CallerToCallee => 0,
            Direction::CalleeToCaller => 1,
            Direction::Unknown => continue,
        };
        match Decoder::for_codec(codec) {
            Some(d) => plan.push((s, channel, d)),
            None if s.events_only() => {}
            None => {
                writeln!(
                    err,
                    "sipscope: RTP {} → {} carries {}: not decoded (its channel is silent for it)",
                    s.src,
                    s.dst,
                    crate::sanitize::terminal(if codec.is_empty() {
                        "an unknown payload type"
                    } else {
                        codec
                    })
                )?;
            }
        }
    }
    let t0 = call
        .media
        .iter()
        .map(|s| s.start)
        .min()
        .unwrap_or(call.start());
    let mut mixer = Mixer::default();
    let mut decoder = crate::net::Decoder::new(engine.config().net);
    decoder.set_media(true);
    decoder.set_media_payloads(true);
    // Per planned stream: the first packet's RTP timestamp and its sample position.
    let mut anchor: Vec<Option<(u32, usize)>> = vec![None; plan.len()];
    let mut source = crate::export::pcap::reopen(&inputs.names)?;
    while let Some(frame) = source.next_frame() {
        decoder.feed(&frame, &mut |_| {});
        decoder.drain_media(|d, bytes| {
            let crate::net::MediaPayload::Rtp(h) = &d.payload else {
                return;
            };
            let Some(i) = plan.iter().position(|(s, _, _)| {
                s.source == d.source
                    && s.src == d.src
                    && s.dst == d.dst
                    && s.ssrc == h.ssrc
                    && (s.start..=s.end).contains(&d.time)
            }) else {
                return;
            };
            let Some((s, channel, dec)) = plan.get(i) else {
                return;
            };
            // Only the stream's audio codec: events and comfort noise are silence here.
            if h.payload_type != s.payload_type {
                return;
            }
            let Some(anchor) = anchor.get_mut(i) else {
                return;
            };
            let (first_ts, first_at) = *anchor.get_or_insert_with(|| {
                let at = (d.time.seconds_since(t0) * f64::from(RATE))
                    .round()
                    .max(0.0);
                (h.timestamp, at as usize)
            });
            let offset = i64::from(h.timestamp.wrapping_sub(first_ts) as i32);
            let Ok(at) = usize::try_from(first_at as i64 + offset) else {
                return;
            };
            let start = usize::from(h.payload_offset);
            let payload = d
                .rtp_bytes
                .as_ref()
                .and_then(|r| bytes.get(r.clone()))
                .and_then(|b| b.get(start..start + usize::from(h.payload_len)))
                .unwrap_or(&[]);
            mixer.put(*channel, at, *dec, payload);
        });
    }
    if mixer.clipped > 0 {
        writeln!(
            err,
            "sipscope: audio past one hour not written ({} samples)",
            mixer.clipped
        )?;
    }
    let path = output.map_or_else(|| "call.wav".to_string(), str::to_string);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("cannot write {path}"))?,
    );
    mixer.write_wav(&mut out)?;
    out.flush()?;
    writeln!(
        err,
        "sipscope: {path}: {:.2} s of audio, {} stream{} decoded",
        mixer.len() as f64 / f64::from(RATE),
        plan.len(),
        if plan.len() == 1 { "" } else { "s" }
    )?;
    report(&sources(&engine, &inputs), &engine, &inputs);
    Ok(())
}
