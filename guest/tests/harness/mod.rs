//! Drives a guest binary over pipes, as the addon does: frames in on its stdin, frames out of its
//! stdout. Shared by the integration tests (`tests/guest.rs`) and the latency example
//! (`examples/exec_latency.rs`).
#![allow(dead_code, unused_imports)]

#[path = "../../../src/providers/docker/protocol.rs"]
#[allow(dead_code)]
pub mod protocol;

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub use protocol::{encode, encode_json, Decoder, Entry, Frame, Kind, ProcessEntry, Reply, Request};

/// How the guest is started.
#[derive(Default, Clone)]
pub struct Opts {
  /// run it as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`)
  pub pid1: bool,
  /// move it into this cgroup v1 pids directory first
  pub cgroup: Option<String>,
  /// run it with an empty capability bounding set (like `--cap-drop ALL`)
  pub drop_caps: bool,
}

pub struct Guest {
  child: Child,
  stdin: Option<ChildStdin>,
  frames: Receiver<Frame>,
  queued: HashMap<u32, VecDeque<Frame>>,
  next_id: u32,
  /// the guest's pid as it reports it (1 in PID 1 mode)
  pub pid: u32,
  pid1: bool,
}

pub struct Exec {
  pub pid: u32,
  pub stdout: Vec<u8>,
  pub stderr: Vec<u8>,
  pub exit: Reply,
}

impl Exec {
  pub fn code(&self) -> i32 {
    match self.exit {
      Reply::Exit { code, .. } => code,
      _ => panic!("not an exit: {:?}", self.exit),
    }
  }
  pub fn out(&self) -> String {
    String::from_utf8_lossy(&self.stdout).into_owned()
  }
}

pub fn spawn_req(argv: &[&str]) -> Request {
  Request::Spawn {
    argv: argv.iter().map(|s| s.to_string()).collect(),
    env: vec![],
    cwd: "/".into(),
    timeout_ms: Some(30_000),
    max_output: 1 << 20,
    background: false,
    stdin: false,
  }
}

impl Guest {
  pub fn start(bin: &str, opts: Opts) -> Guest {
    let mut argv: Vec<String> = Vec::new();
    if opts.pid1 {
      argv.extend(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"].map(String::from));
    }
    if opts.drop_caps {
      argv.extend(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"].map(String::from));
    }
    argv.push(bin.to_string());
    let mut cmd = match &opts.cgroup {
      Some(cg) => {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("echo $$ > {cg}/cgroup.procs && exec \"$@\"")).arg("sh").args(&argv);
        c
      }
      None => {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
      }
    };
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the guest");
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
      let mut d = Decoder::default();
      let mut buf = vec![0u8; 256 * 1024];
      loop {
        let n = match stdout.read(&mut buf) {
          Ok(0) | Err(_) => return,
          Ok(n) => n,
        };
        d.push(&buf[..n]);
        while let Some(f) = d.next_frame().expect("a well-formed stream") {
          if tx.send(f).is_err() {
            return;
          }
        }
      }
    });
    let mut g = Guest { child, stdin, frames: rx, queued: HashMap::new(), next_id: 1, pid: 0, pid1: opts.pid1 };
    let hello = g.next(0, Duration::from_secs(10)).expect("hello");
    match serde_json::from_slice::<Reply>(&hello.payload).unwrap() {
      Reply::Hello { pid, .. } => g.pid = pid,
      other => panic!("expected hello, got {other:?}"),
    }
    g
  }

  /// The pid of the process we started (unshare in PID 1 mode).
  pub fn os_pid(&self) -> u32 {
    self.child.id()
  }

  pub fn send_frame(&mut self, kind: Kind, id: u32, payload: &[u8]) {
    self.stdin.as_mut().unwrap().write_all(&encode(kind, id, payload)).unwrap();
  }

  pub fn send(&mut self, req: &Request) -> u32 {
    // outside a PID namespace "every process of the sandbox" is every process of this machine
    assert!(self.pid1 || !matches!(req, Request::KillAll), "KillAll only in PID 1 mode");
    let id = self.next_id;
    self.next_id += 1;
    self.stdin.as_mut().unwrap().write_all(&encode_json(Kind::Request, id, req)).unwrap();
    id
  }

  pub fn close_stdin(&mut self) {
    self.stdin = None;
  }

  /// The next frame for request `id`; others are queued for later.
  pub fn next(&mut self, id: u32, timeout: Duration) -> Option<Frame> {
    if let Some(f) = self.queued.get_mut(&id).and_then(|q| q.pop_front()) {
      return Some(f);
    }
    let end = Instant::now() + timeout;
    loop {
      match self.frames.recv_timeout(end.saturating_duration_since(Instant::now())) {
        Ok(f) if f.id == id => return Some(f),
        Ok(f) => self.queued.entry(f.id).or_default().push_back(f),
        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
      }
    }
  }

  pub fn next_reply(&mut self, id: u32, timeout: Duration) -> Reply {
    loop {
      let f = self.next(id, timeout).unwrap_or_else(|| panic!("no reply for {id} within {timeout:?}"));
      if f.kind == Kind::Reply {
        return serde_json::from_slice(&f.payload).unwrap();
      }
    }
  }

  pub fn request(&mut self, req: &Request) -> Reply {
    let id = self.send(req);
    self.next_reply(id, Duration::from_secs(30))
  }

  /// Waits for `Started` of spawn `id` (panics on anything else but output).
  pub fn started(&mut self, id: u32) -> u32 {
    loop {
      let f = self.next(id, Duration::from_secs(10)).expect("started");
      if f.kind == Kind::Reply {
        match serde_json::from_slice(&f.payload).unwrap() {
          Reply::Started { pid } => return pid,
          other => panic!("expected started, got {other:?}"),
        }
      }
    }
  }

  /// Collects the output and the `Exit` of spawn `id` after `Started`.
  pub fn finish(&mut self, id: u32, pid: u32, timeout: Duration) -> Exec {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    loop {
      let f = self.next(id, timeout).unwrap_or_else(|| panic!("no exit for {id} within {timeout:?}"));
      match f.kind {
        Kind::Stdout => stdout.extend(f.payload),
        Kind::Stderr => stderr.extend(f.payload),
        Kind::Reply => {
          let r: Reply = serde_json::from_slice(&f.payload).unwrap();
          match r {
            Reply::Exit { .. } => return Exec { pid, stdout, stderr, exit: r },
            other => panic!("unexpected {other:?}"),
          }
        }
        k => panic!("unexpected frame {k:?}"),
      }
    }
  }

  pub fn exec_req(&mut self, req: &Request) -> Exec {
    let id = self.send(req);
    let (mut stdout, mut stderr, mut pid) = (Vec::new(), Vec::new(), 0);
    loop {
      let f = self.next(id, Duration::from_secs(60)).expect("exec reply");
      match f.kind {
        Kind::Stdout => stdout.extend(f.payload),
        Kind::Stderr => stderr.extend(f.payload),
        Kind::Reply => match serde_json::from_slice(&f.payload).unwrap() {
          Reply::Started { pid: p } => pid = p,
          r @ Reply::Exit { .. } => return Exec { pid, stdout, stderr, exit: r },
          r => return Exec { pid, stdout, stderr, exit: r },
        },
        k => panic!("unexpected frame {k:?}"),
      }
    }
  }

  pub fn exec(&mut self, argv: &[&str]) -> Exec {
    self.exec_req(&spawn_req(argv))
  }

  pub fn sh(&mut self, script: &str) -> Exec {
    self.exec(&["sh", "-c", script])
  }
}

impl Drop for Guest {
  fn drop(&mut self) {
    self.stdin = None;
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
      if let Ok(Some(_)) = self.child.try_wait() {
        return;
      }
      std::thread::sleep(Duration::from_millis(10));
    }
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

/// A cgroup v1 pids directory with `pids.max`, removed on drop (once empty). `None` when the
/// pids controller is not mounted writable here.
pub struct PidsCgroup {
  pub path: String,
}

impl PidsCgroup {
  pub fn new(max: u32) -> Option<PidsCgroup> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = format!("/sys/fs/cgroup/pids/agentic-guest-test-{}-{n}", std::process::id());
    std::fs::create_dir(&path).ok()?;
    let cg = PidsCgroup { path };
    std::fs::write(format!("{}/pids.max", cg.path), max.to_string()).ok()?;
    Some(cg)
  }

  pub fn current(&self) -> u32 {
    std::fs::read_to_string(format!("{}/pids.current", self.path)).unwrap().trim().parse().unwrap()
  }
}

impl Drop for PidsCgroup {
  fn drop(&mut self) {
    let end = Instant::now() + Duration::from_secs(10);
    while std::fs::remove_dir(&self.path).is_err() && Instant::now() < end {
      std::thread::sleep(Duration::from_millis(50));
    }
  }
}
