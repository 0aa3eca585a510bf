//! `sipscope audio --call ID`: the call's audio as a stereo WAV file (caller → callee left,
//! callee → caller right), time-aligned from the RTP timestamps with silence where packets were
//! lost or absent. Two passes over the inputs, as `export --format pcap`: the first finds the
//! call and its streams, the second decodes the streams' payloads
//! ([`crate::export::audio::decode_call`]).
//! Codecs it cannot decode are named on stderr, never skipped silently.

use super::{InputArgs, open, report, sources, stream_matching};
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
    let audio = crate::export::audio::decode_call(&call, &inputs.names, engine.config().net)?;
    for line in &audio.undecoded {
        writeln!(err, "sipscope: {line}")?;
    }
    let mixer = &audio.mixer;
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
        audio.seconds(),
        audio.decoded,
        if audio.decoded == 1 { "" } else { "s" }
    )?;
    report(&sources(&engine, &inputs), &engine, &inputs);
    Ok(())
}
