//! The broker's own log output as an operator (or a log shipper) sees it: the `odradek` binary
//! run with its output piped, not on a terminal.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A running `odradek serve` whose stdout and stderr are collected.
struct Broker {
    child: Child,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<String>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker and waits for its "listening" line (whose address it reads).
    fn start(extra: &[&str]) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_odradek"));
        cmd.arg("serve")
            .arg("--override")
            .arg("listeners=PLAINTEXT://127.0.0.1:0")
            .arg("--override")
            .arg(format!("log.dirs={}", dir.path().display()))
            .args(["--override", "http.listener="]);
        for e in extra {
            cmd.arg("--override").arg(e);
        }
        let mut child = cmd
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("odradek starts");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening") {
                    let _ = tx.send(line.clone());
                }
                lines.push(line);
            }
            lines
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let line = rx.recv().expect("a listening line before the output ends");
        let addr = listening_address(&line).unwrap_or_else(|| panic!("no address in {line:?}"));
        Broker {
            child,
            stdout,
            stderr,
            addr,
            _dir: dir,
        }
    }

    /// Stops the broker (SIGTERM) and returns everything it wrote: stdout lines, stderr.
    fn stop(mut self) -> (Vec<String>, String) {
        // SAFETY: signalling our own child process by its id.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        // The signal may come before the broker installs its handler; either way it ends.
        self.child.wait().expect("wait");
        (
            self.stdout.join().expect("stdout reader"),
            self.stderr.join().expect("stderr reader"),
        )
    }
}

/// The socket address following `address` in a text or JSON log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("address")? + "address".len()..];
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    let rest = &rest[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn piped_text_output_has_no_colour_codes() {
    let broker = Broker::start(&[]);
    let (stdout, stderr) = broker.stop();
    assert!(stdout.iter().any(|l| l.contains("listening")), "{stdout:?}");
    for line in &stdout {
        assert!(!line.contains('\x1b'), "escape code in {line:?}");
    }
    assert!(!stderr.contains('\x1b'), "escape code in stderr {stderr:?}");
}

#[test]
fn json_format_writes_one_json_object_a_line() {
    let broker = Broker::start(&["log.format=json"]);
    let (stdout, stderr) = broker.stop();
    assert!(stdout.len() >= 2, "{stdout:?}");
    for line in &stdout {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(value.is_object(), "{line:?}");
        assert!(value.get("level").is_some(), "{line:?}");
    }
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

#[test]
fn a_bad_log_format_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args(["serve", "--override", "log.format=xml", "--override"])
        .arg(format!("log.dirs={}", dir.path().display()))
        .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .output()
        .expect("odradek runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log.format"), "{stderr:?}");
    assert!(stderr.contains("xml"), "{stderr:?}");
}

#[test]
fn a_flood_of_bad_connections_writes_a_bounded_number_of_warnings() {
    const CONNECTIONS: usize = 500;
    let broker = Broker::start(&[]);
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(broker.addr).expect("connect");
        // A negative frame size: the broker warns and closes the connection.
        s.write_all(&[0xff, 0xff, 0xff, 0xff]).expect("write");
        // The broker logs before it closes, so once this reads EOF the warning is written.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    let (stdout, _) = broker.stop();
    let warnings = stdout
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("closing connection"))
        .count();
    let summaries: Vec<&String> = stdout
        .iter()
        .filter(|l| l.contains("similar warnings suppressed"))
        .collect();
    assert!(warnings >= 1, "the first bad connection is reported");
    // Five lines an interval of 10 s: 500 connections would need 100 intervals to write them all.
    assert!(
        warnings + summaries.len() < CONNECTIONS / 5,
        "{warnings} warnings, {} summaries",
        summaries.len()
    );
    let total_lines = stdout.len();
    assert!(total_lines < CONNECTIONS / 5, "{total_lines} lines");
}
