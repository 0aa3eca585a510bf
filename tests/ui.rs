//! The terminal UI on the samples, drawn with ratatui's `TestBackend`: every screen is
//! snapshot-tested (insta), and key sequences drive the app as a person would.

use crate::common;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sipscope::capture::{FileSource, FrameSource, MergedSource};
use sipscope::engine::{Engine, EngineConfig};
use sipscope::flow::Call;
use sipscope::ui::{Action, App, Progress, Screen};

/// The samples, merged into one engine as the UI would load them.
fn engine_of(files: &[&str]) -> Engine {
    engine_with(files, {
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    })
}

fn engine_with(files: &[&str], config: EngineConfig) -> Engine {
    engine_indexed(files, config, None)
}

/// [`engine_with`], the files recording where their frames lie in `index` when given.
fn engine_indexed(
    files: &[&str],
    config: EngineConfig,
    index: Option<&sipscope::capture::FrameIndex>,
) -> Engine {
    let sources: Vec<Box<dyn FrameSource + Send>> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut s = FileSource::open(common::samples().join(f).to_str().unwrap(), i).unwrap();
            if let Some(index) = index {
                assert!(s.index_into(index));
            }
            Box::new(s) as Box<dyn FrameSource + Send>
        })
        .collect();
    let mut src = MergedSource::new(sources);
    let mut engine = Engine::new(config);
    engine.run(&mut src);
    engine
}

fn app(engine: &Engine) -> App {
    let mut app = App::new("samples".into(), Default::default());
    app.color = false;
    let calls = engine.calls();
    app.sync(
        &calls,
        engine.now(),
        Progress {
            finished: true,
            ..Default::default()
        },
    );
    app
}

fn draw(app: &mut App, calls: &[&Call], w: u16, h: u16) -> String {
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f, calls)).unwrap();
    t.backend().to_string()
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn press(app: &mut App, calls: &[&Call], keys: &[KeyCode]) -> Action {
    let mut last = Action::None;
    for &k in keys {
        last = app.handle_key(key(k), calls);
    }
    last
}

fn type_text(app: &mut App, calls: &[&Call], text: &str) {
    for c in text.chars() {
        app.handle_key(key(KeyCode::Char(c)), calls);
    }
}

const ALL: &[&str] = &[
    "answered-udp.pcap",
    "busy-486.pcap",
    "cancel-ringing.pcap",
    "missing-ack.pcap",
    "loop-483.pcap",
    "register-401.pcap",
    "glare-491.pcap",
];

/// Selects the call whose first method and outcome match, and opens its ladder.
fn open(app: &mut App, calls: &[&Call], call_filter: &str) {
    app.handle_key(key(KeyCode::Char('/')), calls);
    type_text(app, calls, call_filter);
    press(app, calls, &[KeyCode::Enter, KeyCode::Enter]);
    assert_eq!(app.screen, Screen::Flow, "{call_filter}");
}

#[test]
fn call_list() {
    let engine = engine_of(ALL);
    let calls = engine.calls();
    let mut app = app(&engine);
    assert_eq!(app.list.view.len(), 8);
    insta::assert_snapshot!("list_wide", draw(&mut app, &calls, 200, 14));
    insta::assert_snapshot!("list_narrow", draw(&mut app, &calls, 80, 14));
}

#[test]
fn ladders() {
    let engine = engine_of(ALL);
    let calls = engine.calls();
    for (name, filter) in [
        ("ladder_answered", "outcome:answered anomaly:any"),
        ("ladder_busy", "outcome:busy"),
        ("ladder_cancelled", "outcome:cancelled"),
        ("ladder_missing_ack", "anomaly:missing_ack"),
        ("ladder_loop", "anomaly:too_many_hops"),
    ] {
        let mut app = app(&engine);
        open(&mut app, &calls, filter);
        insta::assert_snapshot!(name, draw(&mut app, &calls, 160, 40));
    }
}

#[test]
fn panes_sdp_diff_diagnosis_and_help() {
    let engine = engine_of(&["answered-udp.pcap", "missing-ack.pcap"]);
    let calls = engine.calls();
    let mut app = app(&engine);
    open(&mut app, &calls, "anomaly:missing_ack");
    // The INVITE's SDP.
    app.handle_key(key(KeyCode::Char('d')), &calls);
    insta::assert_snapshot!("pane_sdp", draw(&mut app, &calls, 160, 36));
    // Back to raw; compare the INVITE on both hops.
    app.handle_key(key(KeyCode::Char('d')), &calls);
    press(
        &mut app,
        &calls,
        &[
            KeyCode::Char(' '),
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Char(' '),
        ],
    );
    insta::assert_snapshot!("pane_diff", draw(&mut app, &calls, 160, 36));
    // Diagnosis: focus, Enter jumps to the first evidence message (the 2xx).
    press(
        &mut app,
        &calls,
        &[KeyCode::Char(' '), KeyCode::Tab, KeyCode::Enter],
    );
    let f = app.flow.as_ref().unwrap();
    let call = calls[f.call];
    let m = &call.messages()[f.layout.arrows[f.selected].message];
    assert_eq!(m.label(), "200 OK");
    insta::assert_snapshot!("pane_raw_diagnosis", draw(&mut app, &calls, 160, 36));
    // Next flagged message with `n`.
    let before = app.flow.as_ref().unwrap().selected;
    app.handle_key(key(KeyCode::Char('n')), &calls);
    assert!(app.flow.as_ref().unwrap().selected > before);
    app.handle_key(key(KeyCode::Char('?')), &calls);
    insta::assert_snapshot!("help", draw(&mut app, &calls, 120, 34));
}

#[test]
fn filter_prompt_and_stats() {
    let engine = engine_of(ALL);
    let calls = engine.calls();
    let mut app = app(&engine);
    app.handle_key(key(KeyCode::Char('/')), &calls);
    type_text(&mut app, &calls, "status:4xx");
    insta::assert_snapshot!("filter_prompt", draw(&mut app, &calls, 120, 12));
    app.handle_key(key(KeyCode::Enter), &calls);
    // 486, 487 and 483 (the REGISTER ends in 200 after its 401).
    assert_eq!(app.list.view.len(), 3);
    app.handle_key(key(KeyCode::F(5)), &calls);
    assert_eq!(app.list.view.len(), 8);
    app.handle_key(key(KeyCode::Char('i')), &calls);
    let stats = draw(&mut app, &calls, 100, 40);
    // Regression: the screen's line breaks were shown escaped, everything on one line.
    assert!(!stats.contains("\\x0a"), "{stats}");
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("\"│answer-seizure ratio"))
    );
    insta::assert_snapshot!("stats", stats);
}

#[test]
fn small_terminals_and_resizes_do_not_panic() {
    let engine = engine_of(ALL);
    let calls = engine.calls();
    let mut app = app(&engine);
    insta::assert_snapshot!("list_40x10", draw(&mut app, &calls, 40, 10));
    open(&mut app, &calls, "anomaly:too_many_hops");
    insta::assert_snapshot!("ladder_40x10", draw(&mut app, &calls, 40, 10));
    for (w, h) in [
        (1, 1),
        (10, 3),
        (20, 4),
        (41, 11),
        (300, 5),
        (25, 80),
        (500, 200),
    ] {
        draw(&mut app, &calls, w, h);
        app.handle_key(key(KeyCode::End), &calls);
        app.handle_key(key(KeyCode::Char('?')), &calls);
        draw(&mut app, &calls, w, h);
        app.handle_key(key(KeyCode::Esc), &calls);
    }
}

#[test]
fn keys_drive_the_app() {
    let engine = engine_of(ALL);
    let calls = engine.calls();
    let mut app = app(&engine);
    // Move down twice and open: the third call's ladder.
    press(
        &mut app,
        &calls,
        &[KeyCode::Down, KeyCode::Char('j'), KeyCode::Enter],
    );
    assert_eq!(app.screen, Screen::Flow);
    let third = app.list.view[2];
    assert_eq!(app.flow.as_ref().unwrap().call, third);
    // Move through the messages, to the end and back to the top.
    press(&mut app, &calls, &[KeyCode::Char('G')]);
    let n = app.flow.as_ref().unwrap().layout.arrows.len();
    assert_eq!(app.flow.as_ref().unwrap().selected, n - 1);
    press(&mut app, &calls, &[KeyCode::Char('g'), KeyCode::Down]);
    assert_eq!(app.flow.as_ref().unwrap().selected, 1);
    // Compress to hosts: every sample runs on 127.0.0.1, so one column.
    press(&mut app, &calls, &[KeyCode::Char('s')]);
    assert_eq!(app.flow.as_ref().unwrap().layout.columns.len(), 1);
    // Back, sort by status, select two calls, save them, quit.
    press(&mut app, &calls, &[KeyCode::Esc]);
    assert_eq!(app.screen, Screen::List);
    press(&mut app, &calls, &[KeyCode::Char('>')]);
    assert!(app.list.sort.is_some());
    press(
        &mut app,
        &calls,
        &[KeyCode::Char('g'), KeyCode::Char(' '), KeyCode::Char(' ')],
    );
    assert_eq!(app.marked.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.json");
    // Regression: the prompt used to be pre-filled, and the typed name was appended to the
    // default one. The default is a placeholder, used when nothing is typed.
    press(&mut app, &calls, &[KeyCode::Char('s')]);
    match app.handle_key(key(KeyCode::Enter), &calls) {
        Action::Save { path, .. } => assert_eq!(path, "sipscope-calls.json"),
        other => panic!("expected a save, got {other:?}"),
    }
    press(&mut app, &calls, &[KeyCode::Char('s')]);
    type_text(&mut app, &calls, path.to_str().unwrap());
    match app.handle_key(key(KeyCode::Enter), &calls) {
        Action::Save {
            path: p,
            calls: chosen,
        } => {
            assert_eq!(p, path.to_str().unwrap());
            assert_eq!(chosen.len(), 2);
        }
        other => panic!("expected a save, got {other:?}"),
    }
    assert_eq!(press(&mut app, &calls, &[KeyCode::Char('q')]), Action::Quit);
    // Ctrl-C quits from anywhere, even a prompt.
    app.handle_key(key(KeyCode::Char('/')), &calls);
    assert_eq!(
        app.handle_key(
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
            &calls
        ),
        Action::Quit
    );
}

#[test]
fn hostile_strings_are_sanitized_on_screen() {
    use sipscope::synth::script::Script;
    let evil = "\u{1b}[2J\u{202e}evil\u{7}";
    let mut s = Script::new();
    let (a, b) = ("203.0.113.1:5060", "203.0.113.2:5060");
    s.udp(
        0,
        a,
        b,
        &format!(
            "INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx\r\nFrom: <sip:{evil}@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: {evil}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    let mut src = sipscope::capture::VecSource::new(s.frames().to_vec());
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    engine.run(&mut src);
    let calls = engine.calls();
    let mut app = app(&engine);
    let list = draw(&mut app, &calls, 200, 8);
    app.handle_key(key(KeyCode::Enter), &calls);
    let ladder = draw(&mut app, &calls, 200, 20);
    for screen in [list, ladder] {
        assert!(
            !screen.contains('\u{1b}') && !screen.contains('\u{202e}') && !screen.contains('\u{7}')
        );
        assert!(screen.contains("\\x1b"), "{screen}");
    }
}

/// Regression: a click on the ladder picks the arrow drawn on that line, also below marker
/// lines (lines and arrows used to be mixed up), and a marker line selects nothing.
#[test]
fn clicks_on_the_ladder_follow_marker_lines() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    use sipscope::ui::app::LadderRow;
    let engine = engine_of(&["proxy-408.pcap"]);
    let calls = engine.calls();
    let mut app = app(&engine);
    press(&mut app, &calls, &[KeyCode::Enter]);
    draw(&mut app, &calls, 160, 40);
    let f = app.flow.as_ref().unwrap();
    let marker = f
        .notes
        .rows
        .iter()
        .position(|r| matches!(r, LadderRow::Missing { .. }))
        .expect("a marker for the unanswered INVITE");
    assert!(marker + 1 < f.notes.rows.len(), "arrows follow the marker");
    let click = |app: &mut App, line: usize| {
        // Title bar, the ladder's border and its header come first.
        app.handle_mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 40,
            row: 3 + line as u16,
            modifiers: KeyModifiers::NONE,
        })
    };
    click(&mut app, marker + 1);
    let f = app.flow.as_ref().unwrap();
    assert_eq!(LadderRow::Arrow(f.selected), f.notes.rows[marker + 1]);
    let before = f.selected;
    click(&mut app, marker);
    assert_eq!(app.flow.as_ref().unwrap().selected, before);
}

/// A limit reached is never silent: the title bar says which, and so does the statistics
/// screen (here the call table was limited to three calls while loading eight).
#[test]
fn limits_reached_show_in_the_title_and_the_stats() {
    let engine = engine_with(ALL, {
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built.max_calls = 3;
        built
    });
    let calls = engine.calls();
    let mut app = app(&engine);
    app.limits = engine.limits_line();
    assert_eq!(app.limits.as_deref(), Some("5 calls_evicted"));
    let screen = draw(&mut app, &calls, 140, 10);
    let title = screen.lines().next().unwrap();
    assert!(title.contains("limits: 5 calls_evicted"), "{title}");
    app.handle_key(key(KeyCode::Char('i')), &calls);
    let stats = draw(&mut app, &calls, 120, 60);
    assert!(
        stats.contains("Limits reached (see the Limits flags in --help): 5 calls_evicted"),
        "{stats}"
    );
}

/// TLS connections that could not be read are never silent: the title bar says how many and
/// what to pass, the statistics screen lists them by server; decrypted, the title is quiet.
#[test]
fn tls_without_keys_shows_in_the_title_and_the_stats() {
    let engine = engine_of(&["tls/tls13-aes128-gcm.pcap"]);
    let calls = engine.calls();
    let mut blind = app(&engine);
    blind.set_tls(&engine);
    let screen = draw(&mut blind, &calls, 140, 10);
    let title = screen.lines().next().unwrap();
    assert!(
        title.contains("TLS: 1 of 1 connection without keys (--tls-keylog)"),
        "{title}"
    );
    blind.handle_key(key(KeyCode::Char('i')), &calls);
    let stats = draw(&mut blind, &calls, 120, 60);
    assert!(
        stats.contains("tls connections       1 (0 decrypted, 1 without keys)"),
        "{stats}"
    );
    assert!(
        stats.contains(
            "127.0.0.1:5061 sip.example.net (TLS 1.3, TLS_AES_128_GCM_SHA256): 1 without keys"
        ),
        "{stats}"
    );

    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    let keys = sipscope::tls::KeyLog::default();
    keys.add_text(
        &std::fs::read_to_string(common::samples().join("tls/tls13-aes128-gcm.keys")).unwrap(),
    );
    engine.set_tls_keys(std::sync::Arc::new(keys));
    let mut src = FileSource::open(
        common::samples()
            .join("tls/tls13-aes128-gcm.pcap")
            .to_str()
            .unwrap(),
        0,
    )
    .unwrap();
    engine.run(&mut src);
    let calls = engine.calls();
    let mut quiet = app(&engine);
    quiet.set_tls(&engine);
    assert_eq!(quiet.tls, None);
    let screen = draw(&mut quiet, &calls, 140, 10);
    assert!(!screen.lines().next().unwrap().contains("TLS"), "{screen}");
}

/// The UI on capture files keeps no raw text and reads it back when a pane shows it: the
/// message and diff panes are the same screens as with the text kept.
#[test]
fn panes_read_back_from_the_file_are_the_panes_kept() {
    let files = ["answered-udp.pcap", "missing-ack.pcap", "answered-tcp.pcap"];
    let kept = engine_of(&files);
    let index = sipscope::capture::FrameIndex::new();
    let config = EngineConfig::default();
    let lean = engine_indexed(&files, config, Some(&index));
    assert!(
        lean.calls()
            .iter()
            .all(|c| c.messages().iter().all(|m| m.raw().is_none()))
    );
    let screens = |engine: &Engine, reader: Option<sipscope::readback::RawReader>| {
        let calls = engine.calls();
        let reader: Option<std::sync::Arc<dyn sipscope::flow::message::RawSource>> =
            reader.map(|r| std::sync::Arc::new(r) as _);
        let mut out = Vec::new();
        for i in 0..calls.len() {
            let mut app = app(engine);
            app.raw_source = reader.clone();
            press(&mut app, &calls, &vec![KeyCode::Down; i]);
            press(&mut app, &calls, &[KeyCode::Enter]);
            assert_eq!(app.screen, Screen::Flow);
            out.push(draw(&mut app, &calls, 160, 36));
            press(
                &mut app,
                &calls,
                &[
                    KeyCode::Char(' '),
                    KeyCode::Down,
                    KeyCode::Down,
                    KeyCode::Char(' '),
                ],
            );
            out.push(draw(&mut app, &calls, 160, 36));
        }
        out
    };
    let want = screens(&kept, None);
    assert!(want[0].contains("INVITE sip:"), "{}", want[0]);
    assert_eq!(
        screens(
            &lean,
            Some(sipscope::readback::RawReader::new(index, config.net))
        ),
        want
    );
    // Without a reader the pane says why there is no text.
    let bare = screens(&lean, None);
    assert!(bare[0].contains("raw text not kept"), "{}", bare[0]);
}

/// The media samples: the list's media column and `media:` filter words, streams in the
/// ladder with their pane, `n` reaching a flagged stream, Enter on a media anomaly jumping to
/// its evidence, and the media screen with its graphs (snapshots), opened from the list and
/// from the ladder and closed back to where it came from.
#[test]
fn media_in_the_list_the_ladder_and_the_media_screen() {
    let engine = engine_of(&[
        "media-two-way.pcap",
        "media-one-way.pcap",
        "media-loss.pcap",
        "answered-udp.pcap",
    ]);
    let calls = engine.calls();
    let mut app = app(&engine);
    insta::assert_snapshot!("list_media", draw(&mut app, &calls, 200, 10));
    let shown = |app: &mut App, filter: &str| {
        app.handle_key(key(KeyCode::F(5)), &calls);
        app.handle_key(key(KeyCode::Char('/')), &calls);
        type_text(app, &calls, filter);
        press(app, &calls, &[KeyCode::Enter]);
        app.list.view.len()
    };
    assert_eq!(shown(&mut app, "media:one_way"), 1);
    assert_eq!(shown(&mut app, "media:loss"), 1);
    assert_eq!(shown(&mut app, "media:jitter"), 1);
    assert_eq!(shown(&mut app, "media:rtp"), 3);
    assert_eq!(shown(&mut app, "media:none"), 2);
    assert_eq!(shown(&mut app, "media:bad"), 2);
    assert_eq!(shown(&mut app, "-media:bad media:rtp"), 1);

    // The ladder of the lossy call: `n` goes to the flagged stream, its pane shows figures.
    let mut app = self::app(&engine);
    open(&mut app, &calls, "media:loss");
    press(&mut app, &calls, &[KeyCode::Char('n')]);
    let flow = app.flow.as_ref().unwrap();
    let a = &flow.layout.arrows[flow.selected];
    assert!(matches!(
        a.kind,
        sipscope::export::ladder::ArrowKind::Stream { .. }
    ));
    insta::assert_snapshot!("ladder_media_loss", draw(&mut app, &calls, 170, 30));
    // A stream is not a message to compare.
    press(&mut app, &calls, &[KeyCode::Char(' ')]);
    assert!(app.flow.as_ref().unwrap().mark.is_none());
    assert!(
        app.status
            .as_deref()
            .unwrap_or("")
            .contains("only SIP messages")
    );
    // From the diagnosis, Enter on the loss anomaly selects its stream.
    press(&mut app, &calls, &[KeyCode::Home, KeyCode::Tab]);
    let d = app.flow.as_ref().unwrap().diagnosis.clone().unwrap();
    let loss = d
        .anomalies
        .iter()
        .position(|x| x.kind.as_str() == "packet_loss")
        .unwrap();
    press(&mut app, &calls, &vec![KeyCode::Down; loss]);
    press(&mut app, &calls, &[KeyCode::Enter]);
    let flow = app.flow.as_ref().unwrap();
    assert_eq!(
        flow.layout.arrows[flow.selected].stream(),
        d.anomalies[loss].streams.first().copied()
    );
    // `m` opens the media screen at that stream; `q` goes back to the ladder.
    let selected_stream = flow.layout.arrows[flow.selected].stream().unwrap();
    press(&mut app, &calls, &[KeyCode::Char('m')]);
    assert_eq!(app.screen, Screen::Media);
    assert_eq!(app.media.as_ref().unwrap().selected, selected_stream);
    insta::assert_snapshot!("media_screen_loss", draw(&mut app, &calls, 120, 40));
    press(&mut app, &calls, &[KeyCode::Down]);
    insta::assert_snapshot!("media_screen_jitter", draw(&mut app, &calls, 120, 40));
    press(&mut app, &calls, &[KeyCode::Char('q')]);
    assert_eq!(app.screen, Screen::Flow);
    press(&mut app, &calls, &[KeyCode::Char('q')]);
    assert_eq!(app.screen, Screen::List);

    // From the list, `m` on a call without RTP says so and stays.
    let mut app = self::app(&engine);
    shown(&mut app, "media:none");
    press(&mut app, &calls, &[KeyCode::Char('m')]);
    assert_eq!(app.screen, Screen::List);
    assert!(app.status.as_deref().unwrap_or("").contains("no RTP"));
    shown(&mut app, "media:one_way");
    press(&mut app, &calls, &[KeyCode::Char('m')]);
    assert_eq!(app.screen, Screen::Media);
    let screen = draw(&mut app, &calls, 100, 30);
    assert!(screen.contains("jitter, ms"), "{screen}");
    // Tiny terminals draw without panicking.
    for (w, h) in [(20, 4), (40, 8), (60, 12), (200, 60)] {
        draw(&mut app, &calls, w, h);
    }
    press(&mut app, &calls, &[KeyCode::Esc]);
    assert_eq!(app.screen, Screen::List);
}

/// The save prompt writes a `.md` report of the shown calls and the `.wav` audio of the call
/// under the cursor (read again from the capture file).
#[test]
fn save_writes_markdown_and_audio() {
    let dir = tempfile::tempdir().unwrap();
    let sample = common::samples().join("media-two-way.pcap");
    let engine = engine_with(&["media-two-way.pcap"], EngineConfig::default());
    let calls = engine.calls();
    let mut app = app(&engine);
    for (name, head) in [("report.md", &b"## Call `"[..]), ("call.wav", &b"RIFF"[..])] {
        let path = dir.path().join(name);
        app.handle_key(key(KeyCode::Char('s')), &calls);
        type_text(&mut app, &calls, path.to_str().unwrap());
        let Action::Save {
            path: to,
            calls: chosen,
        } = app.handle_key(key(KeyCode::Enter), &calls)
        else {
            panic!("Enter in the save prompt saves");
        };
        assert_eq!(chosen, vec![0]);
        // What the runner does with the action.
        let status = sipscope::ui::save(
            &engine,
            &calls,
            &chosen,
            &to,
            &[sample.to_str().unwrap().to_string()],
            &[],
            &app,
        );
        assert!(status.starts_with("saved"), "{status}");
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(head), "{name}");
        if name.ends_with(".md") {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains("```mermaid") && text.contains("-)"), "{text}");
        } else {
            // 8 kHz stereo 16-bit: the call's media span in samples, give or take a packet.
            assert!(bytes.len() > 44 + 4 * 8_000 * 7, "{}", bytes.len());
        }
    }
}

/// `x` on a call through a B2BUA: its other leg merged into the ladder, and the group's
/// verdict (the callee's 503 passed on as 480) above the call's in the diagnosis pane.
#[test]
fn extended_flow_shows_the_group() {
    let engine = engine_of(&["groups/b2bua-3pcc.pcap"]);
    let calls = engine.calls();
    let mut app = app(&engine);
    open(&mut app, &calls, "status:480");
    press(&mut app, &calls, &[KeyCode::Char('x')]);
    let screen = draw(&mut app, &calls, 220, 40);
    assert!(
        screen.contains("Group: 127.0.0.1:5103 answered 503 Service Unavailable"),
        "{screen}"
    );
    assert!(screen.contains("127.0.0.1:5103"), "{screen}");
    insta::assert_snapshot!("ladder_group", screen);
}
