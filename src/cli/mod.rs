//! The command line: parses arguments (clap), opens the inputs, runs the engine and hands the
//! model to an exporter. No analysis happens here.

mod audio;
mod capture;
mod filter;
mod hep_send;
mod limits;
mod live;
mod pcap;

use crate::capture::{FileSource, FrameSource, MergedSource};
use crate::diagnose::thousands;
use crate::engine::{Engine, EngineConfig, SourceStats};
use crate::export::{diagram, json, table};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use filter::Filters;
use std::io::{self, IsTerminal, Write};

const EXAMPLES: &str = "\
Examples:
  sipscope samples/answered-udp.pcap                 calls in a capture (same as `calls`)
  sipscope calls a.pcap b.pcapng.gz --status 4xx     failed calls across two files, merged in time
  sipscope calls trace.pcap --format csv > calls.csv
  sipscope flow trace.pcap --call 1-4242@127.0.0.1   the call as a text ladder
  sipscope flow trace.pcap --status 4xx --format svg -o failed.svg
  sipscope diagnose trace.pcap                       why calls failed, anomalies with evidence
  sipscope stats trace.pcap --format json            counts, answer-seizure ratio, PDD
  sipscope export trace.pcap --format json -o calls.json --raw
  sipscope export trace.pcap --status 486 --format pcap -o busy.pcap   the calls' own frames
  tcpdump -w - port 5060 | sipscope export - --format ndjson
  sudo sipscope -i eth0 -f 'port 5060'                   the live UI on an interface
  sipscope export -i any --format ndjson --duration 60   calls as they end, for a minute
  sipscope --hep-listen udp:0.0.0.0:9060                 a HEP collector (kamailio siptrace, heplify)
  sipscope capture -i eth0 -w trunk.pcap --rotate-size 100
  sipscope diagnose -i eth0 --hep-send udp:homer:9060 --hep-node edge-1";

#[derive(Parser, Debug)]
#[command(
    name = "sipscope",
    version,
    about = "Passive SIP analyzer: calls, transactions, dialogs and ladders from captures",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, sipscope lists calls (like `sipscope calls`).
    #[command(flatten)]
    default: CallsArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One row per call: start, Call-ID, parties, method, messages, outcome, status, timings.
    #[command(after_help = EXAMPLES)]
    Calls(CallsArgs),
    /// Calls as ladders (text, SVG or Mermaid): one column per address:port, one arrow per
    /// message, anomalies flagged where they happen.
    #[command(after_help = EXAMPLES)]
    Flow(FlowArgs),
    /// Call flows as JSON (one document) or NDJSON (one call per line, streamed).
    #[command(after_help = EXAMPLES)]
    Export(ExportArgs),
    /// Why calls failed: a verdict per call, then each anomaly with its evidence.
    #[command(after_help = EXAMPLES)]
    Diagnose(DiagnoseArgs),
    /// Statistics: messages by method and status, outcomes, anomalies, ASR, PDD, setup time.
    #[command(after_help = EXAMPLES)]
    Stats(StatsArgs),
    /// RTP streams, one row each: call, direction, addresses, codec, packets, loss, jitter,
    /// largest gap, estimated MOS, DTMF digits, problems.
    #[command(after_help = EXAMPLES)]
    Media(MediaArgs),
    /// A call's audio as a WAV file: one channel per direction (caller → callee left),
    /// time-aligned, silence where packets were lost; G.711 µ-law and A-law.
    #[command(after_help = EXAMPLES)]
    Audio(AudioArgs),
    /// Write live traffic (interfaces, HEP listeners) to capture files, with rotation.
    #[command(after_help = EXAMPLES)]
    Capture(capture::CaptureArgs),
    /// Shell completions on standard output, generated from these definitions.
    #[command(after_help = "Examples:
  sipscope completions bash > ~/.local/share/bash-completion/completions/sipscope
  sipscope completions zsh > ~/.zfunc/_sipscope
  sipscope completions fish > ~/.config/fish/completions/sipscope.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on standard output, or one page per command into a directory.
    #[command(after_help = "Examples:
  sipscope man | man -l -
  sipscope man --dir /usr/local/share/man/man1")]
    Man {
        /// Write sipscope.1 and a page per command (sipscope-calls.1, …) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
struct InputArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed); `-` reads standard input.
    /// Several files are merged in time order.
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    #[command(flatten)]
    filters: Filters,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Live terminal UI: forget calls this many seconds after they are over (counted in the
    /// status bar), so that memory stays flat on a long run. 0 keeps them all.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    forget_after: f64,
    /// No media analysis: RTP and RTCP are skipped (counted as not SIP), calls have no streams
    /// and no media anomalies.
    #[arg(long)]
    no_media: bool,
    /// NSS key log file (SSLKEYLOGFILE) to decrypt SIP over TLS and secure WebSocket with
    /// (repeatable): TLS 1.2 `CLIENT_RANDOM` and TLS 1.3 traffic secrets.
    #[arg(long = "tls-keylog", value_name = "FILE")]
    tls_keylog: Vec<String>,
    #[command(flatten)]
    thresholds: Thresholds,
    /// Moves the times of one input file by SECONDS (negative: earlier), for a capture point
    /// whose clock was off (repeatable). sipscope estimates the offset between files that saw
    /// the same messages and reports it.
    #[arg(long = "time-offset", value_name = "FILE=SECONDS", value_parser = parse_time_offset)]
    time_offsets: Vec<(String, f64)>,
    #[command(flatten)]
    grouping: GroupArgs,
    #[command(flatten)]
    limits: limits::LimitArgs,
    #[command(flatten)]
    live: live::LiveArgs,
}

/// Thresholds of the anomaly rules (see docs/anomalies.md).
#[derive(Args, Debug, Clone)]
struct Thresholds {
    /// RFC 3261 timer T1 in milliseconds; transactions may wait 64·T1 (Timers B, F, H), and a
    /// call that is over is kept 64·T1 for late retransmissions before it streams out.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=60_000))]
    t1: i64,
    /// Post-dial delay (INVITE to first 18x) above which a call is `slow_setup`, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pdd_threshold: f64,
    /// Setup time (INVITE to 2xx) above which a call is `slow_setup`, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    setup_threshold: f64,
    /// Loss above which an RTP stream has `packet_loss`, percent of its expected packets.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    loss_threshold: f64,
    /// Mean interarrival jitter (RFC 3550 A.8) above which an RTP stream has `high_jitter`,
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30.0)]
    jitter_threshold: f64,
    /// Silence before the end of an answered call after which its RTP has `media_timeout`,
    /// seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    media_timeout: f64,
}

impl Thresholds {
    fn config(&self) -> crate::diagnose::DiagnoseConfig {
        crate::diagnose::DiagnoseConfig {
            t1: crate::time::Interval::from_millis(self.t1),
            pdd_threshold: self.pdd_threshold,
            setup_threshold: self.setup_threshold,
            loss_threshold: self.loss_threshold,
            jitter_threshold: self.jitter_threshold,
            media_timeout: self.media_timeout,
            ..Default::default()
        }
    }
}

fn parse_time_offset(s: &str) -> std::result::Result<(String, f64), String> {
    let (file, secs) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}` is not FILE=SECONDS"))?;
    let secs: f64 = secs
        .trim()
        .parse()
        .map_err(|_| format!("`{secs}` is not a number of seconds"))?;
    if !secs.is_finite() || secs.abs() > 86_400.0 * 366.0 {
        return Err(format!("`{secs}` seconds is out of range"));
    }
    Ok((file.to_string(), secs))
}

/// How the legs of one call are grouped across B2BUAs (see docs/grouping.md).
#[derive(Args, Debug, Clone)]
struct GroupArgs {
    /// Score from which two legs are linked without a header naming one from the other
    /// (explicit evidence scores 100; addresses, numbers and timing add at most 40).
    #[arg(long, value_name = "SCORE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1000))]
    group_threshold: u32,
    /// Kamailio topoh `mask_key` to unmask Call-IDs with (repeatable; Kamailio's default key
    /// is always tried).
    #[arg(long = "topoh-key", value_name = "KEY")]
    topoh_keys: Vec<String>,
}

impl GroupArgs {
    fn config(&self) -> crate::group::GroupConfig {
        let mut c = crate::group::GroupConfig {
            threshold: self.group_threshold,
            ..Default::default()
        };
        c.topoh_keys.extend(self.topoh_keys.iter().cloned());
        c
    }
}

#[derive(Args, Debug, Clone)]
struct DiagnoseArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// List clean calls too (by default they are only counted).
    #[arg(long)]
    all: bool,
}

#[derive(Args, Debug, Clone)]
struct StatsArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Count call groups too (the legs of one call across B2BUAs counted once).
    #[arg(long)]
    by_group: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ReportFormat {
    Text,
    Json,
    /// One self-contained report per call (diagnose only): verdict, anomalies with evidence,
    /// the ladder as Mermaid, the media table.
    Markdown,
}

#[derive(Args, Debug, Clone)]
struct CallsArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    format: TableFormat,
    /// Without a subcommand: print the call table even when stdout is a terminal.
    #[arg(long)]
    no_ui: bool,
    /// Group the legs of each call across B2BUAs, SBCs and transfers: each row gets its group,
    /// and the groups follow the table with their evidence and verdict (docs/grouping.md).
    #[arg(long)]
    by_group: bool,
}

#[derive(Args, Debug, Clone)]
struct MediaArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format (JSON: every figure, RTCP reports and DTMF events).
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    format: TableFormat,
}

#[derive(Args, Debug, Clone)]
struct AudioArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Write to this file (default call.wav).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum TableFormat {
    Table,
    Csv,
    Json,
}

#[derive(Args, Debug, Clone)]
struct FlowArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format: text, a standalone SVG file, or Mermaid sequence diagrams.
    #[arg(long, value_enum, default_value_t = FlowFormat::Text)]
    format: FlowFormat,
    /// Draw each call with its other legs (its group across B2BUAs, SBCs and transfers: see
    /// docs/grouping.md), merged in time order, one diagram per group. Keeps every call of the
    /// input until the end.
    #[arg(long)]
    legs: bool,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum FlowFormat {
    Text,
    Svg,
    Mermaid,
}

#[derive(Args, Debug, Clone)]
struct ExportArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<String>,
    /// Include each message's raw text.
    #[arg(long)]
    raw: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Json,
    Ndjson,
    /// The original frames of the selected calls (pcap; pcapng when `-o` ends in .pcapng or
    /// the frames have several link types).
    Pcap,
}

/// A bad command line: one line on stderr and status 2 (help and version print as usual).
fn usage_error(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return std::process::ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("sipscope: {first} (try `sipscope --help`)");
    std::process::ExitCode::from(2)
}

/// Entry point used by `main.rs`. Returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Ended by a signal: exit as a shell reports it (128 + signal), with no message.
            #[cfg(feature = "tui")]
            if let Some(crate::ui::Interrupted(sig)) = e.downcast_ref() {
                return std::process::ExitCode::from(128u8.saturating_add(*sig as u8));
            }
            // A closed pipe (`sipscope ... | head`) is not an error for the user.
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return std::process::ExitCode::SUCCESS;
            }
            let msg = format!("{e:#}").replace('\n', " ");
            let _ = writeln!(io::stderr(), "sipscope: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Calls(args)) => calls(args),
        Some(Command::Flow(args)) => flow(args),
        Some(Command::Export(args)) => export(args),
        Some(Command::Diagnose(args)) => diagnose(args),
        Some(Command::Stats(args)) => stats(args),
        Some(Command::Media(args)) => media(args),
        Some(Command::Audio(args)) => audio::run(&args.input, args.output.as_deref()),
        Some(Command::Capture(args)) => capture::run(args),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "sipscope", &mut io::stdout());
            Ok(())
        }
        Some(Command::Man { dir }) => {
            let command = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => clap_mangen::generate_to(command, &dir)
                    .with_context(|| format!("cannot write manual pages to {}", dir.display())),
                None => {
                    clap_mangen::Man::new(command).render(&mut io::stdout())?;
                    Ok(())
                }
            }
        }
        // A person at a terminal gets the UI; a pipe or a file gets the call table.
        #[cfg(feature = "tui")]
        None if io::stdout().is_terminal() && !cli.default.no_ui => ui(cli.default),
        None => calls(cli.default),
    }
}

#[cfg(feature = "tui")]
fn ui(args: CallsArgs) -> Result<()> {
    // The UI's loader holds the engine's lock while it reads: a live source must not wait.
    let index = crate::capture::FrameIndex::new();
    let mut inputs = open_waiting(&args.input, std::time::Duration::ZERO, false, Some(&index))?;
    // Capture files that can be read at an offset: the engine keeps no raw text, the ladder's
    // message pane reads it back when it is shown. Standard input, gzip files and live inputs
    // cannot be read again, so their messages keep their bytes.
    // Messages decrypted from TLS cannot be read again frame by frame (a record needs the
    // connection's state before it): with a key log, the text is kept instead.
    let read_back = inputs.indexed && !inputs.live && inputs.tls_keys.is_none();
    let mut config = config(&args.input, !read_back, false);
    config.max_memory.get_or_insert(limits::DEFAULT_LIVE_MEMORY);
    // A long live run keeps memory flat: calls that are over are forgotten after a while.
    if inputs.live && args.input.forget_after > 0.0 {
        config.forget_finished = true;
        config.linger =
            crate::time::Interval::from_millis((args.input.forget_after * 1000.0) as i64)
                .max(config.linger);
    }
    let (filter, dropped) = args.input.filters.ui_filter();
    if dropped {
        anyhow::bail!(
            "--since and --until are not supported by the terminal UI yet; use `sipscope calls`"
        );
    }
    let raw_source: Option<std::sync::Arc<dyn crate::flow::message::RawSource>> = read_back
        .then(|| std::sync::Arc::new(crate::readback::RawReader::new(index, config.net)) as _);
    crate::ui::run(
        inputs.source,
        inputs.names,
        raw_source,
        config,
        args.input.thresholds.config(),
        filter,
        crate::engine::Hooks {
            tap: inputs.tap.take(),
            reporter: inputs.reporter.take(),
            tls_keys: inputs.tls_keys.take(),
        },
    )
}

/// The key log files given with `--tls-keylog` and the secrets the capture files carry
/// (pcapng Decryption Secrets Blocks), read into one key log (`None` without any). The files
/// are followed as they grow (read again when a connection's secrets are not there yet), so
/// a live capture can use the key log an SBC is still writing; only then may they be empty.
fn key_logs(
    files: &[String],
    captures: &[String],
    live: bool,
) -> Result<Option<std::sync::Arc<crate::tls::KeyLog>>> {
    let keys = crate::tls::KeyLog::default();
    for c in captures {
        keys.add_text(&String::from_utf8_lossy(&crate::capture::tls_secrets(c)));
    }
    if files.is_empty() {
        return Ok((!keys.is_empty()).then(|| std::sync::Arc::new(keys)));
    }
    let mut followed = KeyLogFiles::default();
    for f in files {
        let file = std::fs::File::open(f).with_context(|| format!("cannot read key log {f}"))?;
        keys.add_text(&followed.add(file));
    }
    if keys.is_empty() && !live {
        anyhow::bail!(
            "no TLS secret in {} (an NSS key log has CLIENT_RANDOM or *_TRAFFIC_SECRET lines)",
            files.join(", ")
        );
    }
    // Lines that are not key log lines are skipped, and said once.
    if keys.junk_lines() > 0 {
        eprintln!(
            "sipscope: {}: {} lines that are not NSS key log lines were skipped",
            crate::sanitize::terminal(&files.join(", ")),
            keys.junk_lines()
        );
    }
    keys.follow(Box::new(move || followed.appended()));
    Ok(Some(std::sync::Arc::new(keys)))
}

/// Key log files read up to their last whole line, and what they gained since. The files stay
/// open: a live capture run as root drops its privileges once its sockets are open, and a key
/// log is usually readable by root alone.
#[derive(Default)]
struct KeyLogFiles {
    /// Each file, and the offset its whole lines were read to.
    open: Vec<(std::fs::File, u64)>,
}

/// Bytes read from a key log at once at most (a million connections' lines fit).
const MAX_KEY_LOG_READ: u64 = 1 << 28;

/// The whole lines of `file` from `offset` on, and the offset they end at.
fn whole_lines(file: &mut std::fs::File, offset: u64) -> (String, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_ok() {
        let _ = Read::take(&mut *file, MAX_KEY_LOG_READ).read_to_end(&mut bytes);
    }
    // A line still being written is left for the next read.
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(whole);
    (
        String::from_utf8_lossy(&bytes).into_owned(),
        offset + whole as u64,
    )
}

impl KeyLogFiles {
    /// Reads a key log file's whole lines and keeps it open to follow.
    fn add(&mut self, mut file: std::fs::File) -> String {
        let (text, end) = whole_lines(&mut file, 0);
        self.open.push((file, end));
        text
    }

    /// What the files gained since they were last read (a file that shrank was rewritten:
    /// read from its start).
    fn appended(&mut self) -> String {
        let mut text = String::new();
        for (file, offset) in &mut self.open {
            let len = file.metadata().map_or(0, |m| m.len());
            let from = if len < *offset { 0 } else { *offset };
            if len == from {
                continue;
            }
            let (more, end) = whole_lines(file, from);
            *offset = end;
            text.push_str(&more);
        }
        text
    }
}

/// The opened inputs and their names.
struct Inputs {
    source: Box<dyn FrameSource + Send>,
    /// Files, then live inputs: one per source index.
    names: Vec<String>,
    /// Live inputs are read (until Ctrl-C or --duration).
    live: bool,
    /// Every file records where its frames lie (asked for, and none is standard input or
    /// compressed).
    #[cfg_attr(not(feature = "tui"), allow(dead_code))]
    indexed: bool,
    /// The HEP sender's tap and reporter, taken by the engine that runs.
    tap: Option<crate::engine::Tap>,
    reporter: Option<Box<dyn crate::engine::Reporter>>,
    /// The key logs given (`--tls-keylog`, and pcapng secrets), until the engine takes them.
    tls_keys: Option<std::sync::Arc<crate::tls::KeyLog>>,
    /// TLS is decrypted (a key log was given or found).
    decrypting: bool,
    sender: Option<std::sync::Arc<hep_send::SenderCounters>>,
}

fn open(input: &InputArgs) -> Result<Inputs> {
    open_waiting(input, std::time::Duration::from_millis(20), true, None)
}

/// Opens files and live inputs; a live source waits `wait` for a frame before a tick, and
/// stops on Ctrl-C when `signals` (the terminal UI handles its signals itself). With `index`,
/// the files record where their frames lie in it.
fn open_waiting(
    input: &InputArgs,
    wait: std::time::Duration,
    signals: bool,
    index: Option<&crate::capture::FrameIndex>,
) -> Result<Inputs> {
    if input.files.is_empty() && !input.live.any() {
        anyhow::bail!("no capture file or live input given (try `sipscope --help`)");
    }
    if input.files.iter().filter(|f| *f == "-").count() > 1 {
        anyhow::bail!("standard input (`-`) can be read only once");
    }
    let mut sources: Vec<Box<dyn FrameSource + Send>> = Vec::new();
    let mut indexed = index.is_some();
    for (name, _) in &input.time_offsets {
        if !input.files.iter().any(|f| f == name) {
            anyhow::bail!("--time-offset names {name}, which is not an input file");
        }
    }
    for (i, f) in input.files.iter().enumerate() {
        let mut file = FileSource::open(f, i)?;
        if let Some((_, secs)) = input.time_offsets.iter().rev().find(|(name, _)| name == f) {
            file.shift(crate::time::Interval::from_nanos(
                (secs * 1e9).round() as i64
            ));
        }
        if let Some(index) = index {
            indexed &= file.index_into(index);
        }
        sources.push(Box::new(file));
    }
    let mut names = input.files.clone();
    let files: Option<Box<dyn FrameSource + Send>> = match sources.len() {
        0 => None,
        1 => sources.pop(),
        _ => Some(Box::new(MergedSource::new(sources))),
    };
    let sender = input.live.sender()?;
    let counters = sender.as_ref().map(|s| std::sync::Arc::clone(&s.counters));
    let reporter = sender
        .clone()
        .map(|s| s.into_reporter(input.thresholds.config()));
    let tls_keys = key_logs(&input.tls_keylog, &input.files, input.live.any())?;
    let tap = sender.map(hep_send::HepSender::into_tap);
    let source: Box<dyn FrameSource + Send> = if input.live.any() {
        let stop = if signals {
            live::stop_on_signals()?
        } else {
            std::sync::Arc::default()
        };
        let (live_source, live_names) = input.live.open(names.len(), stop, wait)?;
        names.extend(live_names);
        match files {
            Some(f) => Box::new(crate::capture::ChainSource::new(vec![
                f,
                Box::new(live_source),
            ])),
            None => Box::new(live_source),
        }
    } else {
        files.context("no input")?
    };
    Ok(Inputs {
        source,
        names,
        live: input.live.any(),
        indexed,
        tap,
        reporter,
        decrypting: tls_keys.is_some(),
        tls_keys,
        sender: counters,
    })
}

fn config(input: &InputArgs, keep_raw: bool, streaming: bool) -> EngineConfig {
    let mut c = EngineConfig {
        keep_raw,
        streaming,
        ..EngineConfig::default()
    };
    input.limits.apply(&mut c);
    c.media = !input.no_media;
    if input.live.any() {
        c.max_memory.get_or_insert(limits::DEFAULT_LIVE_MEMORY);
    }
    // A call that is over is kept 64·T1 for late retransmissions before it is handed out.
    c.linger = crate::time::Interval::from_millis(input.thresholds.t1).saturating_mul(64);
    c
}

/// Runs the engine over the inputs (reading and correlating on two threads), calling `each`
/// after every batch of messages (for streaming output).
fn analyse(
    input: &InputArgs,
    inputs: &mut Inputs,
    config: EngineConfig,
    mut each: impl FnMut(&mut Engine) -> Result<()>,
) -> Result<Engine> {
    let progress = progress_bar(input, inputs.source.progress().1);
    let mut engine = Engine::new(config);
    if let Some(tap) = inputs.tap.take() {
        engine.set_tap(tap);
    }
    if let Some(reporter) = inputs.reporter.take() {
        engine.set_reporter(reporter);
    }
    if let Some(keys) = inputs.tls_keys.take() {
        engine.set_tls_keys(keys);
    }
    let engine =
        crate::engine::run_pipelined_with(inputs.source.as_mut(), engine, |engine, done| {
            if let Some(p) = &progress {
                p.set_position(done);
            }
            each(engine)
        })?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    Ok(engine)
}

/// Streams the inputs through the engine and hands each call that matches the filters to
/// `keep` as soon as it is over; the engine forgets it then, so memory follows the calls in
/// progress, not the size of the capture.
fn stream_matching(
    input: &InputArgs,
    inputs: &mut Inputs,
    matcher: &filter::Matcher,
    keep_raw: bool,
    mut keep: impl FnMut(crate::flow::Call, crate::time::Timestamp) -> Result<()>,
) -> Result<Engine> {
    let keep = move |call: Box<crate::flow::Call>, now| keep(*call, now);
    stream_calls(input, inputs, matcher, config(input, keep_raw, true), keep)
}

/// [`stream_matching`] with an engine configuration of the caller's (streaming).
fn stream_calls(
    input: &InputArgs,
    inputs: &mut Inputs,
    matcher: &filter::Matcher,
    config: EngineConfig,
    mut keep: impl FnMut(Box<crate::flow::Call>, crate::time::Timestamp) -> Result<()>,
) -> Result<Engine> {
    analyse(input, inputs, config, |engine| {
        let now = engine.now();
        for call in engine.take_finished() {
            if matcher.matches(&call, now) {
                keep(call, now)?;
            }
        }
        Ok(())
    })
}

fn progress_bar(input: &InputArgs, total: Option<u64>) -> Option<indicatif::ProgressBar> {
    // Only for people: a terminal on stderr, a known size, and a file worth waiting for.
    let total = total?;
    if input.no_progress || !io::stderr().is_terminal() || total < (16 << 20) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {elapsed} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn sources(engine: &Engine, inputs: &Inputs) -> Vec<SourceStats> {
    inputs
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| engine.source_stats(i, name, inputs.source.damage(i)))
        .collect()
}

/// Damage and limits are reported on stderr in one line per source, never silently.
fn report(stats: &[SourceStats], engine: &Engine, inputs: &Inputs) {
    if inputs.live || inputs.sender.is_some() {
        live::report(&inputs.source.live_stats(), inputs.sender.as_deref());
    }
    let mut err = io::stderr();
    for s in stats {
        let mut notes = Vec::new();
        if s.damage.damaged_records > 0 {
            notes.push(format!(
                "{} damaged records skipped",
                s.damage.damaged_records
            ));
        }
        if s.damage.truncated_file {
            notes.push("file ends in the middle of a record".to_string());
        }
        if let Some(why) = &s.damage.stopped_early {
            notes.push(format!("stopped early: {why}"));
        }
        if s.malformed > 0 {
            notes.push(format!("{} malformed SIP messages", s.malformed));
        }
        if !notes.is_empty() {
            let _ = writeln!(
                err,
                "sipscope: {}: {}",
                crate::sanitize::terminal(&s.name),
                notes.join("; ")
            );
        }
    }
    if let Some(line) = engine.limits_line() {
        let _ = writeln!(
            err,
            "sipscope: limits reached: {line} (see the Limits flags in --help)"
        );
    }
    for line in tls_lines(stats, engine.tls_summary(), inputs.decrypting) {
        let _ = writeln!(err, "sipscope: {line}");
    }
    for line in capture_point_lines(&engine.capture_points(), &inputs.names) {
        let _ = writeln!(err, "sipscope: {line}");
    }
}

/// "b.pcap is 2.500 s ahead of a.pcap (21 messages seen at both, 0.009 ms apart in transit);
/// --time-offset b.pcap=-2.500 aligns it": one line per pair of capture points that saw the
/// same messages.
fn capture_point_lines(
    estimates: &[crate::flow::points::OffsetEstimate],
    names: &[String],
) -> Vec<String> {
    let name = |p: crate::flow::points::Point| {
        let file = names.get(p.source).map_or_else(
            || format!("input {}", p.source),
            |n| crate::sanitize::terminal(n).into_owned(),
        );
        match p.capture_id {
            Some(id) => format!("{file} (HEP capture id {id})"),
            None => file,
        }
    };
    estimates
        .iter()
        .map(|e| {
            let transit = match e.one_way_delay {
                Some(d) => format!("{:.3} ms apart in transit", d * 1e3),
                None => "one way only: the offset includes the transit".to_string(),
            };
            let fix = if e.offset.abs() >= 0.001 && e.b.capture_id.is_none() {
                format!("; --time-offset {}={:.3} aligns it", name(e.b), -e.offset)
            } else {
                String::new()
            };
            format!(
                "{} is {:.3} s {} {} ({} messages seen at both, {transit}){fix}",
                name(e.b),
                e.offset.abs(),
                if e.offset >= 0.0 {
                    "ahead of"
                } else {
                    "behind"
                },
                name(e.a),
                e.sightings
            )
        })
        .collect()
}

/// What the summary says of TLS: the connections not read and why (without keys: to which
/// servers, with the flag that reads them), and TLS packets of connections not followed.
fn tls_lines(
    stats: &[SourceStats],
    s: crate::net::tcp::tls::TlsSummary,
    decrypting: bool,
) -> Vec<String> {
    use crate::net::tcp::tls::TlsKeys;
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut out = Vec::new();
    if s.without_keys > 0 {
        out.push(format!(
            "{} without keys{}{}: not read{}",
            plural(s.without_keys, "TLS connection", "TLS connections"),
            if decrypting { " in the key log" } else { "" },
            tls_servers(&s, TlsKeys::WithoutKeys),
            if decrypting {
                ""
            } else {
                " \u{2014} pass --tls-keylog FILE"
            }
        ));
    }
    if s.wrong_keys > 0 {
        out.push(format!(
            "{} whose key log secrets did not authenticate their first record (a key log of other connections?){}: not read",
            plural(s.wrong_keys, "TLS connection", "TLS connections"),
            tls_servers(&s, TlsKeys::WrongKeys)
        ));
    }
    if s.unsupported > 0 {
        out.push(format!(
            "{} in a TLS version or cipher suite sipscope does not decrypt{}",
            plural(s.unsupported, "TLS connection", "TLS connections"),
            tls_servers(&s, TlsKeys::Unsupported)
        ));
    }
    if s.no_handshake > 0 {
        out.push(format!(
            "{} begun before the capture (no hellos to find their keys by): not read",
            plural(s.no_handshake, "TLS connection", "TLS connections")
        ));
    }
    if s.renegotiated > 0 {
        out.push(format!(
            "{} renegotiated (TLS 1.2): read up to the renegotiation, not after it",
            plural(s.renegotiated, "TLS connection", "TLS connections")
        ));
    }
    if s.damaged_records > 0 {
        out.push(format!(
            "{} failed authentication after others of their connection had passed (damaged capture)",
            plural(s.damaged_records, "TLS record", "TLS records")
        ));
    }
    if s.unreported > 0 {
        out.push(format!(
            "{} TLS connections past the first {} are not in this summary",
            s.unreported,
            crate::net::tcp::tls::MAX_REPORTED
        ));
    }
    // TLS records outside any connection followed: the capture holds no hello for them.
    let skipped: u64 = stats
        .iter()
        .map(|st| st.skipped.get(crate::net::SkipReason::Tls))
        .sum();
    if skipped > 0 {
        out.push(format!(
            "{} of connections whose TLS hellos the capture does not hold: not read",
            plural(skipped, "TLS packet", "TLS packets")
        ));
    }
    out
}

/// ", 12 to sip.example.net (192.0.2.1:5061), 2 to 192.0.2.7:5061": the servers of the
/// connections with this outcome, the first three.
fn tls_servers(
    s: &crate::net::tcp::tls::TlsSummary,
    keys: crate::net::tcp::tls::TlsKeys,
) -> String {
    let rows: Vec<String> = s
        .servers
        .iter()
        .filter(|r| r.keys == keys)
        .take(3)
        .map(|r| {
            let addr = r.address.map_or_else(|| "?".to_string(), |a| a.to_string());
            let to = match &r.sni {
                Some(name) => format!("{} ({addr})", crate::sanitize::terminal(name)),
                None => addr,
            };
            format!("{} to {to}", r.connections)
        })
        .collect();
    if rows.is_empty() {
        String::new()
    } else {
        format!(", {}", rows.join(", "))
    }
}

fn stdout_writer() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

/// Standard output, or the file given with `-o`.
fn output(path: Option<&str>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {path}"))?,
        )),
        None => Box::new(stdout_writer()),
    })
}

fn calls(args: CallsArgs) -> Result<()> {
    let matcher = args.input.filters.compile()?;
    let mut inputs = open(&args.input)?;
    // Streaming: each call becomes a row as soon as it is over and its messages are
    // forgotten, so memory follows the calls in progress, not the size of the capture.
    let mut rows = table::CallRows::default();
    // The table reads only each call's summary: lean records (`EngineConfig::keep_detail`).
    let mut config = config(&args.input, false, true);
    // Grouping reads the SDP origin, which lean records do not keep.
    config.keep_detail = args.by_group;
    let mut legs: Vec<(u64, crate::group::Leg)> = Vec::new();
    let engine = stream_calls(&args.input, &mut inputs, &matcher, config, |call, now| {
        rows.push(call.seq, table::CallRow::new(0, &call, now));
        if args.by_group {
            legs.push((call.seq, crate::group::Leg::of(&call, now)));
        }
        Ok(())
    })?;
    let mut rows = rows.into_rows();
    // In the rows' order (by `seq`), so that leg i is row i.
    legs.sort_by_key(|(seq, _)| *seq);
    let legs: Vec<crate::group::Leg> = legs.into_iter().map(|(_, l)| l).collect();
    let grouping = args
        .by_group
        .then(|| crate::group::correlate(&legs, &args.input.grouping.config()));
    if let Some(g) = &grouping {
        for (row, group) in rows.iter_mut().zip(&g.group_of) {
            row.group = *group;
        }
    }
    let scanners = engine.scanners();
    table::CallRow::mark_scanners(&mut rows, &scanners);
    let stats = sources(&engine, &inputs);
    let mut out = stdout_writer();
    match args.format {
        TableFormat::Table => {
            table::write_text(&rows, &mut out)?;
            if let Some(g) = &grouping {
                table::write_groups(&rows, &legs, g, &mut out)?;
            }
        }
        TableFormat::Csv => table::write_csv(&rows, args.by_group, &mut out)?,
        TableFormat::Json => {
            let mut doc = serde_json::json!({
                "version": json::VERSION,
                "generator": json::generator(),
                "sources": stats,
                "scanners": json::scanners(&scanners),
                "calls": rows,
            });
            if let (Some(g), Some(map)) = (&grouping, doc.as_object_mut()) {
                map.insert("groups".into(), json::groups_json(&legs, g));
                map.insert("grouping".into(), json::grouping_json(g));
            }
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    report(&stats, &engine, &inputs);
    Ok(())
}

fn media(args: MediaArgs) -> Result<()> {
    if args.input.no_media {
        anyhow::bail!("`sipscope media` needs the media analysis: leave out --no-media");
    }
    let matcher = args.input.filters.compile()?;
    let mut inputs = open(&args.input)?;
    let diagnose = args.input.thresholds.config();
    // Streaming: each call's streams become rows as soon as the call is over.
    let mut rows: Vec<(u64, Vec<crate::export::media::StreamRow>)> = Vec::new();
    let mut json_calls: Vec<(u64, serde_json::Value)> = Vec::new();
    let mut config = config(&args.input, false, true);
    config.keep_detail = false;
    let format = args.format;
    let engine = stream_calls(&args.input, &mut inputs, &matcher, config, |call, now| {
        if call.media.is_empty() {
            return Ok(());
        }
        let d = crate::diagnose::diagnose(&call, now, &diagnose);
        let problems = |i: usize| -> Vec<&str> {
            let mut v: Vec<&str> = d
                .anomalies
                .iter()
                .filter(|a| a.streams.contains(&i))
                .map(|a| a.kind.as_str())
                .collect();
            v.dedup();
            v
        };
        match format {
            TableFormat::Json => {
                let streams: Vec<serde_json::Value> = call
                    .media
                    .iter()
                    .map(crate::export::media::stream_json)
                    .collect();
                let anomalies: Vec<&crate::diagnose::Anomaly> =
                    d.anomalies.iter().filter(|a| a.kind.is_media()).collect();
                json_calls.push((
                    call.seq,
                    serde_json::json!({
                        "call_id": crate::sanitize::terminal(&call.call_id),
                        "start": call.start().to_rfc3339(),
                        "verdict": d.verdict.summary,
                        "media": streams,
                        "anomalies": anomalies,
                    }),
                ));
            }
            _ => rows.push((
                call.seq,
                call.media
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        crate::export::media::StreamRow::new(Some(&call.call_id), s, problems(i))
                    })
                    .collect(),
            )),
        }
        Ok(())
    })?;
    rows.sort_by_key(|r| r.0);
    json_calls.sort_by_key(|r| r.0);
    let mut all: Vec<crate::export::media::StreamRow> =
        rows.into_iter().flat_map(|(_, r)| r).collect();
    all.extend(
        engine
            .untied_media()
            .iter()
            .map(|s| crate::export::media::StreamRow::new(None, s, Vec::new())),
    );
    let stats = sources(&engine, &inputs);
    let mut out = stdout_writer();
    match format {
        TableFormat::Table => {
            crate::export::media::write_table(&all, &mut out)?;
            if all.is_empty() {
                writeln!(out, "(no RTP streams in this capture)")?;
            }
        }
        TableFormat::Csv => crate::export::media::write_csv(&all, &mut out)?,
        TableFormat::Json => {
            let doc = serde_json::json!({
                "version": json::VERSION,
                "schema_version": json::SCHEMA_VERSION,
                "generator": json::generator(),
                "sources": stats,
                "calls": json_calls.into_iter().map(|c| c.1).collect::<Vec<_>>(),
                "media": engine.untied_media().iter().map(crate::export::media::stream_json).collect::<Vec<_>>(),
                "media_stats": engine.media_counters(),
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    report(&stats, &engine, &inputs);
    Ok(())
}

fn flow(args: FlowArgs) -> Result<()> {
    let matcher = args.input.filters.compile()?;
    let mut inputs = open(&args.input)?;
    let diagnose = args.input.thresholds.config();
    // Streaming: only the calls that match are kept, each diagnosed when it ends; with
    // `--legs`, every call, since a leg need not match.
    let mut kept: Vec<(crate::flow::Call, crate::time::Timestamp, bool)> = Vec::new();
    let every = filter::Matcher::default();
    let keep_from = if args.legs { &every } else { &matcher };
    let engine = stream_matching(&args.input, &mut inputs, keep_from, false, |call, now| {
        // Without `--legs` only matching calls come here (tested already).
        let wanted = !args.legs || matcher.matches(&call, now);
        kept.push((call, now, wanted));
        Ok(())
    })?;
    kept.sort_by_key(|c| c.0.seq);
    let all: Vec<&crate::flow::Call> = kept.iter().map(|c| &c.0).collect();
    let grouping = args.legs.then(|| {
        crate::export::ladder::group_calls(&all, engine.now(), &args.input.grouping.config()).1
    });
    let mut groups: Vec<Vec<&crate::flow::Call>> = Vec::new();
    let mut nows = Vec::new();
    let mut drawn = std::collections::HashSet::new();
    for (i, (call, now, wanted)) in kept.iter().enumerate() {
        // A group is drawn once, from its first matching leg.
        if !wanted || drawn.contains(&i) {
            continue;
        }
        let mut group = vec![call];
        if let Some(grouping) = &grouping {
            let others = grouping.others(i);
            drawn.extend(others.iter().copied());
            group.extend(others.into_iter().filter_map(|j| all.get(j).copied()));
        }
        groups.push(group);
        nows.push(*now);
    }
    if groups.is_empty() {
        anyhow::bail!("no call matches (list them with `sipscope calls`)");
    }
    // Opened only now: a run that finds nothing leaves no empty file behind.
    let mut out = output(args.output.as_deref())?;
    let format = match args.format {
        FlowFormat::Text => diagram::Format::Text,
        FlowFormat::Svg => diagram::Format::Svg,
        FlowFormat::Mermaid => diagram::Format::Mermaid,
    };
    diagram::write_legs(&groups, &nows, &diagnose, format, &mut out)?;
    out.flush()?;
    report(&sources(&engine, &inputs), &engine, &inputs);
    Ok(())
}

fn export(args: ExportArgs) -> Result<()> {
    if args.format == ExportFormat::Pcap {
        return pcap::export(&args.input, args.output.as_deref());
    }
    let matcher = args.input.filters.compile()?;
    let mut inputs = open(&args.input)?;
    let mut out = output(args.output.as_deref())?;
    let grouping = args.input.grouping.config();
    let opts = json::JsonOptions {
        raw_source: None,
        raw: args.raw,
        diagnose: args.input.thresholds.config(),
        grouping: Some(&grouping),
    };
    match args.format {
        ExportFormat::Json => {
            let engine = analyse(
                &args.input,
                &mut inputs,
                config(&args.input, args.raw, false),
                |_| Ok(()),
            )?;
            let now = engine.now();
            let stats = sources(&engine, &inputs);
            let calls: Vec<_> = engine
                .calls()
                .into_iter()
                .filter(|c| matcher.matches(c, now))
                .collect();
            let doc = json::Document::of(&engine, &stats, &calls, opts);
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
            out.flush()?;
            report(&stats, &engine, &inputs);
        }
        ExportFormat::Pcap => {} // written by pcap::export, above
        ExportFormat::Ndjson => {
            // Streaming: each call is written as soon as it is over, then forgotten; live, each
            // line is flushed at once so that a reader of the pipe sees the call when it ends.
            let live = inputs.live;
            // The calls' sources tallied as they end, as the engine does: a call is marked
            // `scanner` once its source has been found scanning (the calls before cannot be).
            let mut scanners = crate::flow::scanner::ScannerTable::default();
            let engine =
                stream_matching(&args.input, &mut inputs, &matcher, args.raw, |call, now| {
                    scanners.add(&call);
                    serde_json::to_writer(
                        &mut out,
                        &json::CallView {
                            call: &call,
                            now,
                            opts,
                            scanner: scanners.marks(&call),
                            group: None,
                        },
                    )?;
                    writeln!(out)?;
                    if live {
                        out.flush()?;
                    }
                    Ok(())
                })?;
            out.flush()?;
            report(&sources(&engine, &inputs), &engine, &inputs);
        }
    }
    Ok(())
}

fn diagnose(args: DiagnoseArgs) -> Result<()> {
    use crate::diagnose::diagnose as run_rules;
    let matcher = args.input.filters.compile()?;
    let mut inputs = open(&args.input)?;
    let rules = args.input.thresholds.config();
    // Streaming: each call is diagnosed when it is over, and only its report is kept.
    let mut reports: Vec<(u64, crate::export::diagnosis::Report)> = Vec::new();
    // Markdown: each report written as its call ends (the ladder needs the call).
    let mut markdown: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut clean = 0u64;
    let engine = stream_matching(&args.input, &mut inputs, &matcher, false, |call, now| {
        let d = run_rules(&call, now, &rules);
        if d.is_clean() && !args.all {
            clean += 1;
        } else {
            clean += u64::from(d.is_clean());
            let report = crate::export::diagnosis::Report::new(&call, d);
            if args.format == ReportFormat::Markdown {
                let mut md = Vec::new();
                crate::export::diagnosis::write_call_markdown(
                    &call, &report, now, &rules, &mut md,
                )?;
                markdown.push((call.seq, md));
            }
            reports.push((call.seq, report));
        }
        Ok(())
    })?;
    markdown.sort_by_key(|(seq, _)| *seq);
    reports.sort_by_key(|(seq, _)| *seq);
    let scanners = engine.scanners();
    for (_, r) in &mut reports {
        r.scanner = r.originator.is_some_and(|ip| scanners.is_scanner(ip));
    }
    let stats = sources(&engine, &inputs);
    let mut out = stdout_writer();
    match args.format {
        ReportFormat::Text => {
            // A scanner's thousands of refused probes would bury the calls that matter: they
            // are counted, and listed with --all.
            let mut hidden = 0u64;
            for (_, r) in &reports {
                if r.scanner && !args.all {
                    hidden += 1;
                    continue;
                }
                r.write_text(&mut out)?;
                writeln!(out)?;
            }
            let total = reports.len() as u64 + if args.all { 0 } else { clean };
            writeln!(
                out,
                "{} call{} clean, {} with a failure or an anomaly",
                thousands(clean),
                if clean == 1 { "" } else { "s" },
                thousands(total - clean)
            )?;
            if hidden > 0 {
                writeln!(
                    out,
                    "{} of them begun by scanners and not shown ({} scanning source{}, listed by \
                     `sipscope stats`; --all shows their calls)",
                    thousands(hidden),
                    scanners.scanners().len(),
                    if scanners.scanners().len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                )?;
            }
        }
        ReportFormat::Markdown => {
            for (seq, md) in &markdown {
                let scanner = reports
                    .iter()
                    .find(|(s, _)| s == seq)
                    .is_some_and(|(_, r)| r.scanner);
                if !scanner || args.all {
                    out.write_all(md)?;
                }
            }
            writeln!(
                out,
                "{} call{} clean, {} with a failure or an anomaly.",
                thousands(clean),
                if clean == 1 { "" } else { "s" },
                thousands(reports.len() as u64 + if args.all { 0 } else { clean } - clean)
            )?;
        }
        ReportFormat::Json => {
            let calls: Vec<&crate::export::diagnosis::Report> =
                reports.iter().map(|(_, r)| r).collect();
            let doc = serde_json::json!({
                "version": json::VERSION,
                "generator": json::generator(),
                "sources": stats,
                "calls": calls,
                "clean_calls": clean,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    report(&stats, &engine, &inputs);
    Ok(())
}

fn stats(args: StatsArgs) -> Result<()> {
    let matcher = args.input.filters.compile()?;
    let mut inputs = open(&args.input)?;
    let rules = args.input.thresholds.config();
    let mut totals = crate::diagnose::stats::Stats::default();
    let mut legs: Vec<(u64, crate::group::Leg)> = Vec::new();
    let engine = stream_matching(&args.input, &mut inputs, &matcher, false, |call, now| {
        let d = crate::diagnose::diagnose(&call, now, &rules);
        totals.add(&call, &d);
        if args.by_group {
            legs.push((call.seq, crate::group::Leg::of(&call, now)));
        }
        Ok(())
    })?;
    legs.sort_by_key(|(seq, _)| *seq);
    let legs: Vec<crate::group::Leg> = legs.into_iter().map(|(_, l)| l).collect();
    let groups = args.by_group.then(|| {
        let grouping = crate::group::correlate(&legs, &args.input.grouping.config());
        crate::diagnose::group::group_stats(&legs, &grouping)
    });
    totals.add_untied(engine.untied_media());
    let stats = sources(&engine, &inputs);
    let scanners = engine.scanners();
    let mut out = stdout_writer();
    match args.format {
        ReportFormat::Text => {
            crate::export::diagnosis::write_stats(&totals.report(), &mut out)?;
            if let Some(g) = &groups {
                crate::export::diagnosis::write_group_stats(g, &mut out)?;
            }
            crate::export::diagnosis::write_scanners(&scanners.scanners(), &mut out)?;
            crate::export::diagnosis::write_tls(&engine.tls_summary(), &mut out)?;
        }
        // For a ticket: the text in a block that keeps its columns.
        ReportFormat::Markdown => {
            let mut text = Vec::new();
            crate::export::diagnosis::write_stats(&totals.report(), &mut text)?;
            if let Some(g) = &groups {
                crate::export::diagnosis::write_group_stats(g, &mut text)?;
            }
            crate::export::diagnosis::write_scanners(&scanners.scanners(), &mut text)?;
            crate::export::diagnosis::write_tls(&engine.tls_summary(), &mut text)?;
            writeln!(out, "```text\n{}```", String::from_utf8_lossy(&text))?;
        }
        ReportFormat::Json => {
            let mut doc = serde_json::json!({
                "version": json::VERSION,
                "generator": json::generator(),
                "sources": stats,
                "stats": totals.report(),
                "scanners": json::scanners(&scanners),
            });
            if let (Some(g), Some(map)) = (&groups, doc.as_object_mut()) {
                map.insert("groups".into(), serde_json::to_value(g)?);
            }
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    report(&stats, &engine, &inputs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key log being written: each read takes the whole lines added, never half a line, and
    /// a file rewritten from its start is read again from there.
    #[test]
    fn time_offsets_are_parsed_or_refused_in_one_line() {
        assert_eq!(
            parse_time_offset("b.pcap=-2.5"),
            Ok(("b.pcap".to_string(), -2.5))
        );
        // The last `=` splits: a file name may hold one.
        assert_eq!(
            parse_time_offset("a=b.pcap=1"),
            Ok(("a=b.pcap".to_string(), 1.0))
        );
        for bad in [
            "b.pcap",
            "b.pcap=",
            "b.pcap=x",
            "b.pcap=NaN",
            "b.pcap=inf",
            "b.pcap=1e12",
        ] {
            let err = parse_time_offset(bad).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn key_log_files_are_followed_by_whole_lines() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let line = |n: u8| {
            format!(
                "CLIENT_RANDOM {} {}\n",
                format!("{n:02x}").repeat(32),
                "11".repeat(48)
            )
        };
        let mut w = std::fs::File::create(&path).unwrap();
        let first = line(1);
        write!(w, "{first}{}", &line(2)[..20]).unwrap();
        w.flush().unwrap();
        let mut files = KeyLogFiles::default();
        assert_eq!(files.add(std::fs::File::open(&path).unwrap()), first);
        assert_eq!(files.appended(), "", "half a line waits");
        write!(w, "{}", &line(2)[20..]).unwrap();
        w.flush().unwrap();
        assert_eq!(files.appended(), line(2));
        assert_eq!(files.appended(), "");
        std::fs::write(&path, line(3)).unwrap();
        assert_eq!(files.appended(), line(3), "rewritten: read from the start");
    }
}
