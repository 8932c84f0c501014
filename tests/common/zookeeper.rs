//! Test harness: a real ZooKeeper (Debian's `zookeeper` package) on 127.0.0.1, one per test,
//! with its own data directory; a three-node ensemble; a TCP proxy that can cut a client off
//! (to make ZooKeeper expire its session); and zkCli.sh for interop checks.
//!
//! Servers are started from one long-lived spawner thread with `PR_SET_PDEATHSIG`, so a test
//! binary that dies (timeout, abort) takes its ZooKeeper processes with it; normally `Drop`
//! kills them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
const START_TIMEOUT: Duration = Duration::from_secs(45);

/// True when Debian's ZooKeeper is installed (`apt-get install -y zookeeper`).
pub fn zookeeper_available() -> bool {
    Path::new(ZOOKEEPER_JAR).exists() && which_java()
}

fn which_java() -> bool {
    Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns children from one thread that lives as long as the test binary, so that
/// `PR_SET_PDEATHSIG` (bound to the spawning thread) fires only when the process ends.
fn spawn(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("zk-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    use std::os::unix::process::CommandExt;
                    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    sender
        .lock()
        .unwrap()
        .send((cmd, tx))
        .expect("spawner alive");
    rx.recv().expect("spawner answers")
}

/// Sends a four-letter word (`ruok`, `srvr`, `stat`, `mntr`...) and returns the answer.
pub fn four_letter(port: u16, word: &str) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// One ZooKeeper server process (standalone, or one member of an ensemble).
pub struct ZkServer {
    /// Client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    /// Owns the directory when this server is standalone.
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
}

impl ZkServer {
    /// Starts a standalone server with a fresh data directory and waits until it serves.
    pub fn start() -> ZkServer {
        Self::start_with(&[])
    }

    /// Same, with extra `zoo.cfg` lines.
    pub fn start_with(extra_config: &[&str]) -> ZkServer {
        let tmp = tempfile::Builder::new()
            .prefix("odradek-zk-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let dir = tmp.path().to_path_buf();
        write_config(&dir, port, extra_config);
        let mut server = ZkServer {
            port,
            dir,
            _tmp: Some(tmp),
            child: None,
        };
        server.launch();
        server.wait_serving(START_TIMEOUT);
        server
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "ZooKeeper already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("zookeeper.log"))
            .expect("log file");
        let mut cmd = Command::new("java");
        cmd.args([
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.admin.enableServer=false",
            "-cp",
            "/usr/share/java/zookeeper.jar:/usr/share/java/*:/etc/zookeeper/conf",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ])
        .arg(self.dir.join("zoo.cfg"))
        .current_dir(&self.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log);
        self.child = Some(spawn(cmd).expect("start java (is the zookeeper package installed?)"));
    }

    /// Waits until the server answers `srvr` with a mode (standalone, leader or follower).
    pub fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(answer) = four_letter(self.port, "srvr") {
                if answer.contains("Mode: ") {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "ZooKeeper exited with {status} before serving:\n{}",
                        self.log_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "ZooKeeper on port {} not serving after {timeout:?}:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("zookeeper.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `127.0.0.1:<port>`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>/<chroot>`.
    pub fn connect_string_with_chroot(&self, chroot: &str) -> String {
        format!("127.0.0.1:{}{}", self.port, chroot)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the server (SIGKILL, like a crash); the data directory stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory, and waits until it serves.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
        self.wait_serving(START_TIMEOUT);
    }

    /// Runs Debian's `zkCli.sh` against this server with one command, e.g.
    /// `["create", "/a", "{...}"]`; returns its output (stdout and stderr) and success.
    pub fn zkcli(&self, command: &[&str]) -> (bool, String) {
        zkcli(&self.connect_string(), command)
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `zkCli.sh -server <connect> <command...>` non-interactively.
pub fn zkcli(connect: &str, command: &[&str]) -> (bool, String) {
    let out = Command::new(ZKCLI)
        .arg("-server")
        .arg(connect)
        .args(command)
        .stdin(Stdio::null())
        .output()
        .expect("run zkCli.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_config(dir: &Path, client_port: u16, extra: &[&str]) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut cfg = format!(
        "tickTime=500\n\
         initLimit=20\n\
         syncLimit=10\n\
         dataDir={}\n\
         clientPort={client_port}\n\
         clientPortAddress=127.0.0.1\n\
         minSessionTimeout=1000\n\
         maxSessionTimeout=60000\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=*\n\
         preAllocSize=1024\n\
         snapCount=1000\n",
        data.display()
    );
    for line in extra {
        cfg.push_str(line);
        cfg.push('\n');
    }
    std::fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
}

/// A three-node (or n-node) ensemble on 127.0.0.1, each node with its own data directory.
pub struct ZkEnsemble {
    pub servers: Vec<ZkServer>,
    _tmp: tempfile::TempDir,
}

impl ZkEnsemble {
    pub fn start(n: usize) -> ZkEnsemble {
        let tmp = tempfile::Builder::new()
            .prefix("odradek-zk-ensemble-")
            .tempdir()
            .expect("tempdir");
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let server_lines: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, election))| format!("server.{}=127.0.0.1:{peer}:{election}", i + 1))
            .collect();
        let lines: Vec<&str> = server_lines.iter().map(String::as_str).collect();
        let mut servers = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let dir = tmp.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).expect("node dir");
            write_config(&dir, *client, &lines);
            std::fs::write(dir.join("data").join("myid"), format!("{}\n", i + 1)).expect("myid");
            let mut server = ZkServer {
                port: *client,
                dir,
                _tmp: None,
                child: None,
            };
            server.launch();
            servers.push(server);
        }
        for s in &mut servers {
            s.wait_serving(START_TIMEOUT);
        }
        ZkEnsemble { servers, _tmp: tmp }
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...`
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(ZkServer::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index of the current leader, if any.
    pub fn leader(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| four_letter(s.port, "srvr").is_some_and(|a| a.contains("Mode: leader")))
    }
}

/// A TCP proxy in front of a server that can be cut (all connections dropped, new ones closed
/// at once) and restored: a client behind it looks dead to ZooKeeper, which then expires its
/// session.
pub struct CutProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on each cut so that open pipes notice and close.
    generation: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Must be called inside a tokio runtime.
    pub async fn start(target_port: u16) -> CutProxy {
        use std::sync::atomic::AtomicU64;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy bind");
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (c, g) = (cut.clone(), generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let my_gen = g.load(Ordering::SeqCst);
                let g = g.clone();
                tokio::spawn(async move {
                    let Ok(outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let pipe = async {
                        tokio::select! {
                            _ = tokio::io::copy(&mut ri, &mut wo) => {},
                            _ = tokio::io::copy(&mut ro, &mut wi) => {},
                        }
                    };
                    let watch_cut = async {
                        while g.load(Ordering::SeqCst) == my_gen {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = pipe => {},
                        _ = watch_cut => {},
                    }
                });
            }
        });
        CutProxy {
            port,
            cut,
            generation,
            task,
        }
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Drops every open connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs a test body with a hard time limit.
pub async fn bounded<F: std::future::Future<Output = ()>>(limit_secs: u64, body: F) {
    tokio::time::timeout(Duration::from_secs(limit_secs), body)
        .await
        .expect("test exceeded its time limit");
}

/// Starts a ZooKeeper server off the async runtime's threads.
pub async fn start_server() -> ZkServer {
    assert!(
        zookeeper_available(),
        "ZooKeeper is not installed: apt-get install -y zookeeper"
    );
    tokio::task::spawn_blocking(ZkServer::start)
        .await
        .expect("start ZooKeeper")
}
