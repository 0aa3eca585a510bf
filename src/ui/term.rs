//! Runs the UI on a real terminal: a loader thread feeds the engine in small batches under a
//! lock (so calls appear while the file is read and the screen never waits on I/O), the UI
//! thread draws and handles crossterm events, and the terminal is restored on exit, on panic
//! and on SIGINT/SIGTERM. Owns the terminal; the app state and drawing live in `app`/`view`.

use super::app::{Action, App, Progress, Screen};
use crate::capture::{CaptureDamage, FrameSource};
use crate::engine::{Engine, EngineConfig};
use crate::export::{diagram, json};
use crate::flow::Call;
use anyhow::{Context, Result};
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the loader shares with the UI thread.
struct Shared {
    engine: Mutex<Engine>,
    progress: Mutex<Progress>,
    damage: Mutex<Vec<CaptureDamage>>,
    /// The UI thread is waiting for the engine: the loader steps aside between batches.
    /// (A plain mutex is not fair: a loader that takes it again at once starved the UI, and
    /// the first calls of a big file took seconds to appear.)
    ui_waiting: AtomicBool,
}

/// The engine, for the UI thread: the loader yields it at the end of its current batch.
fn ui_lock(shared: &Shared) -> std::sync::MutexGuard<'_, Engine> {
    shared.ui_waiting.store(true, Ordering::Release);
    let guard = lock(&shared.engine);
    shared.ui_waiting.store(false, Ordering::Release);
    guard
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        LeaveAlternateScreen,
        DisableMouseCapture,
        ratatui::crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped, whichever way the UI ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The UI ended on a signal (its number): the process should exit with 128 + the number, as
/// a shell reports a command killed by it, so that scripts can tell it from a normal quit.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by signal {0}")]
pub struct Interrupted(pub i32);

/// Opens the UI over `source`, reading it in the background. Returns when the user quits.
pub fn run(
    source: Box<dyn FrameSource + Send>,
    names: Vec<String>,
    raw_source: Option<Arc<dyn crate::flow::message::RawSource>>,
    config: EngineConfig,
    diagnose: crate::diagnose::DiagnoseConfig,
    filter: String,
    hooks: crate::engine::Hooks,
) -> Result<()> {
    match run_ui(source, names, raw_source, config, diagnose, filter, hooks) {
        // Writing to a terminal that hung up fails: that is the end of the session, as if
        // SIGHUP had come first, not an error to report (there is nowhere to report it).
        Err(e) if !e.is::<Interrupted>() && hung_up() => {
            Err(anyhow::Error::new(Interrupted(signal_hook::consts::SIGHUP)))
        }
        r => r,
    }
}

/// True when the terminal on standard output has hung up.
#[cfg(unix)]
fn hung_up() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0
        && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL))
}

#[cfg(not(unix))]
fn hung_up() -> bool {
    false
}

fn run_ui(
    mut source: Box<dyn FrameSource + Send>,
    names: Vec<String>,
    raw_source: Option<Arc<dyn crate::flow::message::RawSource>>,
    config: EngineConfig,
    diagnose: crate::diagnose::DiagnoseConfig,
    filter: String,
    hooks: crate::engine::Hooks,
) -> Result<()> {
    let title = names.join(" ");
    let mut engine = Engine::new(config);
    engine.set_hooks(hooks);
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        progress: Mutex::new(Progress::default()),
        damage: Mutex::new(Vec::new()),
        ui_waiting: AtomicBool::new(false),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop);
        let sources = names.len();
        std::thread::Builder::new()
            .name("sipscope-loader".into())
            .spawn(move || load(source.as_mut(), &shared, &stop, sources))
            .context("cannot start the loader thread")?
    };
    // SIGTERM and SIGINT (from outside: in raw mode Ctrl-C arrives as a key) end the UI cleanly.
    let signalled = Arc::new(AtomicUsize::new(0));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(sig, Arc::clone(&signalled), sig as usize)
            .context("cannot install signal handlers")?;
    }
    #[cfg(unix)]
    {
        let signalled = Arc::clone(&signalled);
        std::thread::Builder::new()
            .name("sipscope-watchdog".into())
            .spawn(move || watchdog(&signalled))
            .context("cannot start the terminal watchdog")?;
    }
    let interrupted = || match signalled.load(Ordering::Relaxed) {
        0 => Ok(()),
        sig => Err(anyhow::Error::new(Interrupted(sig as i32))),
    };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode().context("cannot put the terminal in raw mode")?;
    let _guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
        .context("cannot set up the terminal")?;
    // Never dropped: ratatui's drop shows the cursor with `eprintln!` on failure, which
    // panics when the terminal has hung up. `restore_terminal` shows the cursor instead.
    let mut terminal = std::mem::ManuallyDrop::new(ratatui::Terminal::new(
        ratatui::backend::CrosstermBackend::new(io::stdout()),
    )?);
    let mut app = App::new(title, diagnose);
    app.raw_source = raw_source;
    app.list.filter = super::model::Filter { text: filter };
    let mut last_sync = Instant::now() - Duration::from_secs(1);
    let mut sync_cost = Duration::ZERO;
    let result: Result<()> = loop {
        if signalled.load(Ordering::Relaxed) != 0 {
            break interrupted();
        }
        let progress = lock(&shared.progress).to_owned();
        // Taking the calls out of a growing model sorts them, under the lock the loader needs:
        // every 20 ms until the first calls are on screen, then every 200 ms, or less often
        // when a sync costs more than a fifth of that (a million calls), so that the loader
        // keeps at least four fifths of the time.
        let every = if app.list.rows.is_empty() {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(200).max(sync_cost * 4)
        };
        let due = progress.finished || last_sync.elapsed() >= every;
        let mut drawn = false;
        if due || app.screen == Screen::Flow {
            let engine = ui_lock(&shared);
            let started = Instant::now();
            let calls = engine.calls();
            if due {
                app.list
                    .set_scanners(engine.scanning_sources(progress.finished));
                app.sync(&calls, engine.now(), progress);
                app.limits = engine.limits_line();
                app.set_tls(&engine);
                last_sync = Instant::now();
                sync_cost = started.elapsed();
            }
            // A ladder draws from the calls; the list only from its own rows, so it is drawn
            // after the lock is given back (terminal output never holds up the loader).
            if app.screen == Screen::Flow {
                terminal.draw(|f| app.draw(f, &calls))?;
                drawn = true;
            }
        }
        if !due {
            app.progress = progress;
        }
        if !drawn {
            terminal.draw(|f| app.draw(f, &[]))?;
        }
        if progress.finished {
            break Ok(());
        }
        if poll(&mut app, &shared, &names)? == Some(Action::Quit) {
            stop.store(true, Ordering::Relaxed);
            let _ = loader.join();
            return Ok(());
        }
    };
    if let Err(e) = result {
        stop.store(true, Ordering::Relaxed);
        let _ = loader.join();
        return Err(e);
    }
    let _ = loader.join();
    // Loaded: the engine is the UI thread's alone now; the call list is taken once.
    let (engine, damage) = match Arc::try_unwrap(shared) {
        Ok(s) => (
            s.engine.into_inner().unwrap_or_else(|e| e.into_inner()),
            s.damage.into_inner().unwrap_or_else(|e| e.into_inner()),
        ),
        Err(_) => return Ok(()),
    };
    let calls = engine.calls();
    let progress = Progress {
        finished: true,
        ..app.progress
    };
    app.list.set_scanners(engine.scanning_sources(true));
    app.sync(&calls, engine.now(), progress);
    app.limits = engine.limits_line();
    app.set_tls(&engine);
    loop {
        interrupted()?;
        terminal.draw(|f| app.draw(f, &calls))?;
        if !event::poll(Duration::from_millis(250))? {
            continue;
        }
        let action = match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => app.handle_key(k, &calls),
            Event::Mouse(m) => {
                app.handle_mouse(m);
                Action::None
            }
            _ => Action::None,
        };
        match action {
            Action::Quit => return Ok(()),
            Action::Save {
                path,
                calls: chosen,
            } => {
                app.status = Some(save(&engine, &calls, &chosen, &path, &names, &damage, &app));
            }
            Action::None => {}
        }
    }
}

/// Ends the process when the terminal hangs up or a signal asked the UI to stop and the UI
/// thread did not: crossterm's event reader spins forever on a hung-up terminal, without
/// returning to the loop that checks the signal flag (crossterm-rs/crossterm#793), so an
/// orphaned sipscope would burn a core for ever. Polls the terminal for POLLHUP without
/// reading it (no key is taken from the UI), four times a second.
#[cfg(unix)]
fn watchdog(signalled: &AtomicUsize) {
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if hung_up() {
            let _ = signalled.compare_exchange(
                0,
                signal_hook::consts::SIGHUP as usize,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        let sig = signalled.load(Ordering::Relaxed);
        if sig != 0 {
            // The UI thread normally ends by itself within one poll; this is for when it is
            // stuck.
            std::thread::sleep(Duration::from_millis(750));
            restore_terminal();
            std::process::exit(128 + sig as i32);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means the other thread panicked; its data is still what we have.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One round of input while loading.
fn poll(app: &mut App, shared: &Shared, names: &[String]) -> Result<Option<Action>> {
    if !event::poll(Duration::from_millis(50))? {
        return Ok(None);
    }
    let ev = event::read()?;
    let engine = ui_lock(shared);
    let calls = engine.calls();
    let action = match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => app.handle_key(k, &calls),
        Event::Mouse(m) => {
            app.handle_mouse(m);
            Action::None
        }
        _ => Action::None,
    };
    if let Action::Save {
        path,
        calls: chosen,
    } = &action
    {
        let damage = lock(&shared.damage).clone();
        app.status = Some(save(&engine, &calls, chosen, path, names, &damage, app));
    }
    Ok(Some(action))
}

/// The loader: feeds frames in batches of a few milliseconds, holding the lock only meanwhile.
fn load(source: &mut (dyn FrameSource + Send), shared: &Shared, stop: &AtomicBool, sources: usize) {
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut engine = lock(&shared.engine);
        let started = Instant::now();
        let mut ended = false;
        let mut quiet = false;
        for _ in 0..4096 {
            match source.next_frame() {
                Some(frame) => {
                    engine.feed(&frame);
                    // A live input has nothing more for now: wait outside the lock.
                    if frame.link == crate::capture::LinkType::TICK {
                        quiet = true;
                        break;
                    }
                }
                None => {
                    ended = true;
                    break;
                }
            }
            if started.elapsed() >= Duration::from_millis(8) {
                break;
            }
        }
        if ended {
            engine.finish();
        }
        let counters = engine.counters();
        drop(engine);
        while shared.ui_waiting.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        let (done, total) = source.progress();
        let live = source.live_stats();
        *lock(&shared.progress) = Progress {
            done,
            total,
            finished: ended,
            live: (!live.is_empty()).then(|| crate::ui::app::LiveCounts {
                received: live.iter().map(|s| s.received).sum(),
                dropped_kernel: live.iter().map(|s| s.dropped_kernel).sum(),
                dropped_internal: live.iter().map(|s| s.dropped_internal).sum(),
                forgotten: counters.calls_forgotten,
                evicted: counters.calls_evicted,
            }),
        };
        if quiet {
            std::thread::sleep(Duration::from_millis(10));
        }
        if ended {
            *lock(&shared.damage) = (0..sources).map(|i| source.damage(i)).collect();
            return;
        }
    }
}

/// Saves calls (positions among `calls`) by the file name's extension: a JSON document
/// (`.json`), their original frames (`.pcap`, `.cap`; `.pcapng`), an SVG ladder (`.svg`),
/// Mermaid diagrams (`.mmd`, `.mermaid`) or text ladders (any other name). Returns the status
/// line to show.
/// Saves the calls at positions `chosen` to `path`, the format by its extension (`.json`,
/// `.pcap`/`.pcapng`, `.wav` the first call's audio, `.md` a report per call, `.svg`, `.mmd`,
/// else a text ladder); `names` are the input files (read again for pcap and audio). Returns
/// the line the status bar shows.
pub fn save(
    engine: &Engine,
    calls: &[&Call],
    chosen: &[usize],
    path: &str,
    names: &[String],
    damage: &[CaptureDamage],
    app: &App,
) -> String {
    let picked: Vec<&Call> = chosen
        .iter()
        .filter_map(|&i| calls.get(i).copied())
        .collect();
    let write = || -> Result<()> {
        let lower = path.to_ascii_lowercase();
        if [".pcap", ".pcapng", ".cap"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            // The frames are read again from the input files (the model keeps their
            // numbers only): a pause of about a second per GB read.
            let wanted = crate::export::pcap::wanted_frames(picked.iter().copied());
            if names.iter().any(|n| n == "-") {
                anyhow::bail!("calls read from standard input cannot be saved to pcap");
            }
            let traits = crate::export::pcap::scan_traits(names, &wanted)?;
            let file =
                std::fs::File::create(path).with_context(|| format!("cannot write {path}"))?;
            // Calls over TLS bring their connection's handshake and earlier records.
            let mut tls = crate::export::pcap::TlsConnections::default();
            for call in &picked {
                tls.add(call);
            }
            let mut also = |frame: &crate::capture::Frame<'_>| tls.carries(frame);
            crate::export::pcap::write_frames_with(
                names,
                &wanted,
                Some(traits),
                crate::capture::CaptureFormat::for_path(path),
                io::BufWriter::new(file),
                (!tls.until.is_empty())
                    .then_some(&mut also as &mut dyn FnMut(&crate::capture::Frame<'_>) -> bool),
            )?;
            return Ok(());
        }
        if lower.ends_with(".wav") {
            // The audio is read again from the input files, as for pcap.
            let call = picked.first().context("no call to save the audio of")?;
            if call.media.is_empty() {
                anyhow::bail!("the call has no RTP in this capture");
            }
            let audio = crate::export::audio::decode_call(call, names, engine.config().net)?;
            if audio.decoded == 0 {
                anyhow::bail!(
                    "no stream in a codec sipscope decodes (G.711): {}",
                    audio.undecoded.join("; ")
                );
            }
            let file =
                std::fs::File::create(path).with_context(|| format!("cannot write {path}"))?;
            let mut out = io::BufWriter::new(file);
            audio.mixer.write_wav(&mut out)?;
            out.flush()?;
            return Ok(());
        }
        let file = std::fs::File::create(path).with_context(|| format!("cannot write {path}"))?;
        let mut out = io::BufWriter::new(file);
        if lower.ends_with(".md") {
            let now = engine.now();
            for (i, call) in picked.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                let d = crate::diagnose::diagnose(call, now, &app.config);
                let report = crate::export::diagnosis::Report::new(call, d);
                crate::export::diagnosis::write_call_markdown(
                    call,
                    &report,
                    now,
                    &app.config,
                    &mut out,
                )?;
            }
        } else if path.ends_with(".json") {
            let stats: Vec<_> = names
                .iter()
                .enumerate()
                .map(|(i, n)| engine.source_stats(i, n, damage.get(i).cloned().unwrap_or_default()))
                .collect();
            let opts = json::JsonOptions {
                raw_source: app.raw_source.as_deref(),
                raw: true,
                diagnose: app.config,
                grouping: None,
            };
            let doc = json::Document::of(engine, &stats, &picked, opts);
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        } else {
            let nows = vec![engine.now(); picked.len()];
            let format = diagram::Format::for_path(path);
            diagram::write(&picked, &nows, &app.config, format, &mut out)?;
        }
        out.flush()?;
        Ok(())
    };
    match write() {
        Ok(()) if path.to_ascii_lowercase().ends_with(".wav") => {
            format!("saved the audio of the first call to {path}")
        }
        Ok(()) => match picked.len() {
            1 => format!("saved 1 call to {path}"),
            n => format!("saved {n} calls to {path}"),
        },
        Err(e) => format!("not saved: {e:#}"),
    }
}
