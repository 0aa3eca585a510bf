//! `sipscope capture`: live inputs written to capture files, like `tcpdump -w`, with rotation by
//! size or time. Nothing is analysed; what is written is every frame the capture filter lets
//! through, so that the files can be analysed later by sipscope, tshark or sngrep.

use super::live::{self, LiveArgs};
use crate::capture::{CaptureFormat, CaptureWriter, FrameSource, LinkType, WriterOptions};
use anyhow::{Context, Result};
use clap::Args;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub(super) struct CaptureArgs {
    #[command(flatten)]
    live: LiveArgs,
    /// Write the frames to this file (`-` for standard output). With rotation, files are
    /// named PATH-00001.pcap, PATH-00002.pcap... (before the extension).
    #[arg(short = 'w', long = "write", value_name = "PATH")]
    write: String,
    /// Start a new file when the current one reaches this many megabytes (10^6 bytes).
    #[arg(long, value_name = "MB")]
    rotate_size: Option<f64>,
    /// Start a new file every this many seconds.
    #[arg(long, value_name = "SECONDS")]
    rotate_seconds: Option<f64>,
}

/// Where rotated files go: `dir/stem-00001.ext`.
struct Names {
    base: PathBuf,
    rotating: bool,
    next: u32,
}

impl Names {
    fn next(&mut self) -> PathBuf {
        if !self.rotating {
            return self.base.clone();
        }
        self.next += 1;
        let stem = self
            .base
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "capture".into());
        let ext = self
            .base
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_else(|| ".pcap".into());
        self.base
            .with_file_name(format!("{stem}-{:05}{ext}", self.next))
    }
}

fn positive(v: Option<f64>, what: &str) -> Result<Option<f64>> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => anyhow::bail!("{what} must be a positive number"),
        v => Ok(v),
    }
}

pub(super) fn run(args: CaptureArgs) -> Result<()> {
    if !args.live.any() {
        anyhow::bail!("capture needs a live input: -i IFACE or --hep-listen udp:ADDR:PORT");
    }
    let to_stdout = args.write == "-";
    let rotate_bytes = positive(args.rotate_size, "--rotate-size")?.map(|mb| (mb * 1e6) as u64);
    let rotate_every =
        positive(args.rotate_seconds, "--rotate-seconds")?.map(Duration::from_secs_f64);
    if to_stdout && (rotate_bytes.is_some() || rotate_every.is_some()) {
        anyhow::bail!("standard output cannot be rotated: give -w a file name");
    }
    if to_stdout && io::stdout().is_terminal() {
        anyhow::bail!("refusing to write a capture file to the terminal: use -w PATH or a pipe");
    }
    // Several inputs may have several link types: pcapng holds them all.
    let inputs = args.live.interfaces.len() + args.live.hep_listen.len();
    let format = if inputs > 1 {
        CaptureFormat::PcapNg
    } else if to_stdout {
        CaptureFormat::Pcap
    } else {
        CaptureFormat::for_path(&args.write)
    };
    let options = WriterOptions {
        format,
        nanos: false,
        snaplen: 262_144,
    };
    let stop = live::stop_on_signals()?;
    let (mut source, _) = args.live.open(0, stop, Duration::from_millis(100))?;
    let mut names = Names {
        base: PathBuf::from(&args.write),
        rotating: rotate_bytes.is_some() || rotate_every.is_some(),
        next: 0,
    };
    let create = |path: &Path| -> Result<Box<dyn Write>> {
        Ok(Box::new(io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )))
    };
    let open_next = |names: &mut Names| -> Result<(CaptureWriter<Box<dyn Write>>, PathBuf)> {
        let path = names.next();
        let out: Box<dyn Write> = if to_stdout {
            Box::new(io::BufWriter::new(io::stdout().lock()))
        } else {
            create(&path)?
        };
        Ok((CaptureWriter::new(out, options), path))
    };
    let (mut writer, mut path) = open_next(&mut names)?;
    let mut files = vec![path.clone()];
    let mut opened = Instant::now();
    let mut flushed = Instant::now();
    let mut written = 0u64;
    while let Some(frame) = source.next_frame() {
        let due = rotate_every.is_some_and(|d| opened.elapsed() >= d)
            || rotate_bytes.is_some_and(|b| writer.bytes() >= b);
        if due {
            writer.finish()?;
            (writer, path) = open_next(&mut names)?;
            files.push(path.clone());
            opened = Instant::now();
        }
        if frame.link != LinkType::TICK {
            writer.write(&frame)?;
            written += 1;
        }
        // Flushed about once a second, so that the file can be read while it grows.
        if flushed.elapsed() >= Duration::from_secs(1) {
            writer.flush()?;
            flushed = Instant::now();
        }
    }
    writer.finish()?;
    live::report(&source.live_stats(), None);
    for e in source.errors() {
        eprintln!("sipscope: {}", crate::sanitize::terminal(&e));
    }
    if !to_stdout {
        let shown: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "sipscope: wrote {written} frames to {}",
            crate::sanitize::terminal(&shown.join(", "))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_keep_the_extension() {
        let mut n = Names {
            base: PathBuf::from("/tmp/x/trunk.pcap"),
            rotating: true,
            next: 0,
        };
        assert_eq!(n.next(), PathBuf::from("/tmp/x/trunk-00001.pcap"));
        assert_eq!(n.next(), PathBuf::from("/tmp/x/trunk-00002.pcap"));
        let mut plain = Names {
            base: PathBuf::from("out.pcapng"),
            rotating: false,
            next: 0,
        };
        assert_eq!(plain.next(), PathBuf::from("out.pcapng"));
        let mut bare = Names {
            base: PathBuf::from("dump"),
            rotating: true,
            next: 0,
        };
        assert_eq!(bare.next(), PathBuf::from("dump-00001.pcap"));
    }
}
