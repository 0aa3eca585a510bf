//! Runs the UI on a real terminal: a loader thread feeds the engine in small batches under a
//! lock (so calls appear while the file is read and the screen never waits on I/O), the UI
//! thread draws and handles crossterm events, and the terminal is restored on exit, on panic
//! and on SIGINT/SIGTERM. Owns the terminal; the app state and drawing live in `app`/`view`.

use super::app::{Action, App, Progress, Screen};
use crate::capture::{CaptureDamage, FrameSource};
use crate::engine::{Engine, EngineConfig};
use crate::export::{json, ladder};
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
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, DisableMouseCapture);
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
    mut source: Box<dyn FrameSource + Send>,
    names: Vec<String>,
    config: EngineConfig,
    diagnose: crate::diagnose::DiagnoseConfig,
    filter: String,
) -> Result<()> {
    let title = names.join(" ");
    let shared = Arc::new(Shared {
        engine: Mutex::new(Engine::new(config)),
        progress: Mutex::new(Progress::default()),
        damage: Mutex::new(Vec::new()),
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
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(io::stdout()))?;
    let mut app = App::new(title, diagnose);
    app.list.filter = super::model::Filter { text: filter };
    let mut last_sync = Instant::now() - Duration::from_secs(1);
    let result: Result<()> = loop {
        if signalled.load(Ordering::Relaxed) != 0 {
            break interrupted();
        }
        let progress = lock(&shared.progress).to_owned();
        {
            let engine = lock(&shared.engine);
            // Taking the calls out of a growing model sorts them: only a few times a second,
            // or for every frame while a ladder is open (the list draws from its own rows).
            let due = progress.finished || last_sync.elapsed() >= Duration::from_millis(200);
            let calls = if due || app.screen == Screen::Flow {
                engine.calls()
            } else {
                Vec::new()
            };
            if due {
                app.sync(&calls, engine.now(), progress);
                last_sync = Instant::now();
            } else {
                app.progress = progress;
            }
            terminal.draw(|f| app.draw(f, &calls))?;
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
    app.sync(&calls, engine.now(), progress);
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
    let engine = lock(&shared.engine);
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
        for _ in 0..4096 {
            match source.next_frame() {
                Some(frame) => engine.feed(&frame),
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
        drop(engine);
        let (done, total) = source.progress();
        *lock(&shared.progress) = Progress {
            done,
            total,
            finished: ended,
        };
        if ended {
            *lock(&shared.damage) = (0..sources).map(|i| source.damage(i)).collect();
            return;
        }
    }
}

/// Saves calls (positions among `calls`) by the file name's extension: a JSON document
/// (`.json`), an SVG ladder (`.svg`), Mermaid diagrams (`.mmd`, `.mermaid`) or text ladders
/// (any other name). Returns the status line to show.
fn save(
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
        let file = std::fs::File::create(path).with_context(|| format!("cannot write {path}"))?;
        let mut out = io::BufWriter::new(file);
        if path.ends_with(".json") {
            let stats: Vec<_> = names
                .iter()
                .enumerate()
                .map(|(i, n)| engine.source_stats(i, n, damage.get(i).cloned().unwrap_or_default()))
                .collect();
            let doc = json::Document {
                sources: &stats,
                calls: &picked,
                orphans: engine.orphans(),
                counters: engine.counters(),
                now: engine.now(),
                opts: json::JsonOptions {
                    raw: true,
                    diagnose: app.config,
                },
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        } else {
            let nows = vec![engine.now(); picked.len()];
            let format = ladder::Format::for_path(path);
            ladder::write(&picked, &nows, &app.config, format, &mut out)?;
        }
        out.flush()?;
        Ok(())
    };
    match write() {
        Ok(()) => format!("saved {} calls to {path}", picked.len()),
        Err(e) => format!("not saved: {e:#}"),
    }
}
