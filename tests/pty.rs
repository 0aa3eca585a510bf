//! End to end: the real binary in a pseudo-terminal. Keys go in as a person types them, the
//! screen is read back through a terminal emulator (vt100), and on quitting, on SIGTERM and on
//! SIGINT the terminal must be left as it was found: main screen, cursor shown, no mouse
//! reporting, and cooked mode (read with `stty`).

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROWS: u16 = 32;
const COLS: u16 = 150;

struct Session {
    screen: Arc<Mutex<vt100::Parser>>,
    /// Asks the reader thread to let go of its copy of the pty master at its next read.
    stop: Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
}

fn sample(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

impl Session {
    fn start(args: &[&str]) -> Session {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_sipscope"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        let child = pty.slave.spawn_command(cmd).expect("spawn sipscope");
        drop(pty.slave);
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size(ROWS), size(COLS), 0)));
        let mut reader = pty.master.try_clone_reader().unwrap();
        let feed = Arc::clone(&screen);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                feed.lock().unwrap().process(&buf[..n]);
                if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
        });
        let writer = pty.master.take_writer().unwrap();
        Session {
            screen,
            stop,
            reader: Some(reader),
            writer,
            child,
            master: pty.master,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows every one of `texts`.
    fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = self.contents();
            if texts.iter().all(|t| shown.contains(t)) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {texts:?}; the screen shows:\n{shown}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn keys(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        // Let the UI handle one batch before the next (as a person types).
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Closes the terminal, as when an SSH session drops or a terminal window is closed.
    fn hang_up(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Some output wakes the reader thread, which then drops its copy of the master.
        self.keys("?");
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        drop(std::mem::replace(
            &mut self.writer,
            Box::new(std::io::sink()),
        ));
        let master = native_pty_system()
            .openpty(PtySize::default())
            .unwrap()
            .master;
        drop(std::mem::replace(&mut self.master, master));
    }

    /// Waits for the process to end and returns its exit code.
    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "sipscope did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The terminal is as it was before the UI started.
    fn assert_restored(&self) {
        // Give the reader thread the last bytes written before the exit.
        std::thread::sleep(Duration::from_millis(200));
        let p = self.screen.lock().unwrap();
        let s = p.screen();
        assert!(!s.alternate_screen(), "still on the alternate screen");
        assert!(!s.hide_cursor(), "cursor left hidden");
        assert_eq!(
            s.mouse_protocol_mode(),
            vt100::MouseProtocolMode::None,
            "mouse reporting left on"
        );
        // Cooked mode again: `stty` reads the pty's line discipline.
        let tty = self.master.tty_name().expect("the pty's device");
        let out = std::process::Command::new("stty")
            .arg("-F")
            .arg(&tty)
            .arg("-a")
            .output()
            .expect("run stty");
        let modes = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = modes.split_whitespace().collect();
        assert!(
            words.contains(&"icanon") && words.contains(&"echo"),
            "raw mode left on: {modes}"
        );
    }
}

#[test]
fn list_ladder_and_quit_in_a_real_terminal() {
    let mut s = Session::start(&[&sample("busy-486.pcap"), &sample("missing-ack.pcap")]);
    // The call list, with both calls and their outcomes.
    let list = s.wait_for(&["INVITE", "busy", "answered", "486", "200"]);
    assert!(list.contains("2 calls"), "{list}");
    // Down to the missing-ACK call and open its ladder.
    s.keys("j");
    s.keys("\r");
    let ladder = s.wait_for(&["127.0.0.1:5061", "127.0.0.1:5070", "200 OK", "ACK not seen"]);
    assert!(ladder.contains('►') && ladder.contains('◄'), "{ladder}");
    assert!(ladder.contains("missing_ack"), "{ladder}");
    // Help overlay, closed by any key.
    s.keys("?");
    s.wait_for(&["keys (any key closes)"]);
    s.keys(" ");
    // Back to the list, filter it, then quit.
    s.keys("q");
    s.wait_for(&["busy", "answered"]);
    s.keys("/");
    s.keys("status:486\r");
    let filtered = s.wait_for(&["1 of 2 calls", "busy"]);
    assert!(!filtered.contains("answered"), "{filtered}");
    s.keys("q");
    assert_eq!(s.exit_code(), 0);
    s.assert_restored();
}

#[test]
fn saving_from_the_ui_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.svg");
    let mut s = Session::start(&[&sample("missing-ack.pcap")]);
    s.wait_for(&["answered"]);
    s.keys("s");
    s.keys(&format!("{}\r", path.display()));
    s.wait_for(&["saved 1 call to"]);
    s.keys("q");
    assert_eq!(s.exit_code(), 0);
    s.assert_restored();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(roxmltree::Document::parse(&svg).is_ok());
    assert!(svg.contains("missing_ack"));
}

/// The media keys in a real terminal: `m` from the list opens the media screen with its
/// graphs, `q` goes back; in the ladder `n` reaches the flagged stream and `m` opens its
/// graphs; the save prompt writes the call's audio to `.wav`.
#[test]
fn media_screen_and_audio_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("call.wav");
    let mut s = Session::start(&[&sample("media-loss.pcap")]);
    s.wait_for(&["answered", "packet_loss"]);
    s.keys("m");
    let media = s.wait_for(&["2 streams", "jitter, ms", "loss, %", "longest gap"]);
    assert!(media.contains("PCMA"), "{media}");
    s.keys("q");
    s.wait_for(&["Enter ladder"]);
    s.keys("\r");
    s.wait_for(&["RTP PCMA"]);
    s.keys("n");
    s.keys("m");
    s.wait_for(&["jitter, ms", "8.1%"]);
    s.keys("q");
    s.wait_for(&["m media"]);
    s.keys("q");
    s.keys("s");
    s.keys(&format!("{}\r", wav.display()));
    s.wait_for(&["saved the audio"]);
    s.keys("q");
    assert_eq!(s.exit_code(), 0);
    s.assert_restored();
    let bytes = std::fs::read(&wav).unwrap();
    assert!(bytes.starts_with(b"RIFF") && bytes.len() > 44 + 4 * 8_000 * 7);
}

#[test]
fn signals_restore_the_terminal() {
    for (signal, number) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let mut s = Session::start(&[&sample("busy-486.pcap")]);
        s.wait_for(&["busy"]);
        let pid = s.child.process_id().expect("child pid");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // As a shell reports a command ended by a signal, so scripts can tell.
        assert_eq!(s.exit_code(), 128 + number, "SIG{signal}");
        s.assert_restored();
    }
}

/// Regression: calls saved as JSON once loading had finished lost the capture's damage
/// counters (a file cut short said `truncated_file: false`).
#[test]
fn saved_json_keeps_the_damage_counters() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample("busy-486.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let out = dir.path().join("calls.json");
    let mut s = Session::start(&[cut.to_str().unwrap()]);
    s.wait_for(&["busy"]);
    s.keys("s");
    s.keys(&format!("{}\r", out.display()));
    s.wait_for(&["saved 1 call to"]);
    s.keys("q");
    assert_eq!(s.exit_code(), 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["sources"][0]["damage"]["truncated_file"], true, "{doc}");
}

/// Saving to a `.pcap` name writes the calls' original frames; with two inputs, the frames
/// of both, in time order.
#[test]
fn saves_calls_to_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calls.pcap");
    let (a, b) = (sample("busy-486.pcap"), sample("answered-udp.pcap"));
    let mut s = Session::start(&[&a, &b]);
    s.wait_for(&["busy", "answered"]);
    s.keys("s");
    s.keys(&format!("{}\r", out.display()));
    s.wait_for(&["saved 3 calls to"]);
    s.keys("q");
    assert_eq!(s.exit_code(), 0);
    // The same bytes as the command line's export of the same calls.
    let cli = dir.path().join("cli.pcap");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args([
            "export",
            &a,
            &b,
            "--format",
            "pcap",
            "-o",
            cli.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let saved = std::fs::read(&out).unwrap();
    assert!(saved.len() > 24, "frames were written");
    assert_eq!(saved, std::fs::read(&cli).unwrap());
}

/// The UI on a live input: a HEP listener. Calls appear as packets arrive, the title bar says
/// what was received and dropped, and `q` ends the capture and the UI.
#[test]
fn the_ui_shows_live_hep_calls() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("udp:127.0.0.1:{port}");
    let mut s = Session::start(&["--hep-listen", &spec]);
    s.wait_for(&["live 0 packets"]);
    let config = {
        let mut built = sipscope::engine::EngineConfig::default();
        built.keep_raw = true;
        built
    };
    let path = std::path::PathBuf::from(sample("busy-486.pcap"));
    let mut src = sipscope::capture::FileSource::open(path.to_str().unwrap(), 0).unwrap();
    let mut engine = sipscope::engine::Engine::new(config);
    engine.run(&mut src);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sipscope::hep::SenderIdentity::default();
    let mut n = 0;
    for c in engine.calls() {
        for m in c.messages() {
            let p = sipscope::hep::encode(m.src, m.dst, 17, m.time.0, m.raw().unwrap(), None, &me)
                .unwrap();
            sock.send_to(&p, ("127.0.0.1", port)).unwrap();
            n += 1;
        }
    }
    s.wait_for(&[
        "busy",
        "486",
        &format!("live {n} packets"),
        "dropped 0 kernel, 0 sipscope",
    ]);
    s.keys("q");
    assert_eq!(s.exit_code(), 0);
}

/// Regression: when its terminal went away, the UI never exited and spun a core at 100%:
/// crossterm's event reader loops for ever on a hung-up terminal (crossterm-rs/crossterm#793)
/// and never returned to the loop that checks for SIGHUP. A watchdog now ends the process.
#[test]
fn a_hung_up_terminal_ends_the_ui() {
    let mut s = Session::start(&[&sample("busy-486.pcap")]);
    s.wait_for(&["busy"]);
    s.hang_up();
    assert_eq!(s.exit_code(), 128 + 1, "ends as on SIGHUP");
}

impl Drop for Session {
    /// A failed test must not leave sipscope running.
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
