//! agentic-sandbox guest daemon.
//!
//! Runs inside a sandbox (as the container's command, or attached with one `docker exec`) and
//! serves the addon over stdin/stdout with the frame protocol of `src/providers/docker/protocol.rs`.
//! Plain threads, no async runtime: a reader (this main thread) that dispatches frames and spawns
//! processes, one writer thread that owns stdout (a bounded queue, so a slow reader on the host
//! side pushes back on the processes producing output), a reaping thread (`reaper.rs`), a thread
//! that keeps idle shims ready (`shim.rs`), one thread per running process (poll over its pipes
//! and a pidfd or its shim's socket, `process.rs`), one per stdin feeder and one per slow request
//! (file reads, listings, stats). Threads count against the sandbox's pids limit: when one
//! cannot be started the request fails (it does not abort the guest).
//!
//! When stdin ends (the addon went away) every process it started is killed and the guest exits;
//! as the container's command that also stops the container.
//!
//! The same binary has a second mode, `agentic-sandbox-guest gateway --listen <ip> ...`
//! (`gateway/`): it runs in a separate container between a sandbox on an internal network and
//! the outside, as the sandbox's HTTP proxy, SOCKS5 proxy and DNS server, and enforces the
//! egress policy (`egress.rs`, shared with the addon) that the host sends on its stdin,
//! reporting every decision on its stdout. It shares none of the daemon's setup below.
//!
//! Everything inside a sandbox is hostile, the guest included as a target:
//!
//! # The channel
//!
//! The guest's fd 0 and 1 *are* the channel to the host: whoever can write to the guest's stdout
//! can forge frames, whoever can read its stdin sees every request. Nothing else may hold them:
//! every command gets fresh pipes (or /dev/null) as its 0, 1 and 2, and every other fd of the
//! guest is close-on-exec (whatever it inherited beyond 0, 1, 2 is marked so at startup; std opens
//! files, pipes and directories with O_CLOEXEC, the guest's own pipes, socketpairs, memfds,
//! pidfds and its signalfd are CLOEXEC too). A shim holds /dev/null and its socket to the guest,
//! never the channel. As PID 1 the guest is the only process of the sandbox that holds the
//! channel (under Docker's `--init`, docker-init holds the same pipes as /proc/1/fd/*).
//!
//! # Non-dumpable
//!
//! A process of the same uid could still open `/proc/<guest>/fd/1` (that reopens the pipe),
//! `/proc/<guest>/fd/0`, `/proc/<guest>/mem` or `environ`, or ptrace the guest. After
//! `PR_SET_DUMPABLE 0` (the first thing `main` does; shims do it too) all of that needs
//! CAP_SYS_PTRACE, which sandboxes do not have (not even Docker's default capabilities include
//! it). An exec makes a process dumpable again, so commands are as usual.
//!
//! # PID 1
//!
//! When `getpid() == 1` the guest is the container's init: every orphan of the sandbox is
//! reparented to it and must be reaped, without stealing the exit status of a process a
//! supervisor waits for. All `wait4`s of the guest happen under one mutex (`reaper.rs`): a thread
//! woken by SIGCHLD (blocked in every thread, read from a signalfd) reaps whatever is waitable,
//! keeps the status of watched processes and discards the rest; a process is watched from
//! before its spawn returns. As PID 1 the guest has no signal handler at all (it resets the ones
//! std installs): the kernel drops every signal sent from inside the PID namespace to an init
//! without a handler, so sandboxed code cannot kill or stop the guest (Docker still kills it
//! with SIGKILL from outside). SIGCHLD is blocked, and blocked signals are queued, so the
//! signalfd still sees it. Attached with `docker exec` (not PID 1) the guest behaves as before;
//! its reaping thread then only ever sees the guest's own children.
//!
//! # Foreground spawns own everything they start
//!
//! A foreground command runs under a shim (`shim.rs`): the guest binary re-executed from
//! /proc/self/exe with `--shim`, in its own session, non-dumpable, with PR_SET_PDEATHSIG SIGKILL
//! and RLIMIT_CORE 0, and a child subreaper, so whatever the command starts stays its
//! descendant, even after setsid or a double fork. When the command returns (normally, at its
//! timeout, killed by a `Signal`), the shim SIGSTOPs its whole remaining tree (so a fork bomb
//! cannot outrun it), SIGKILLs it, reaps it, and only then reports the command's exit status and
//! peak RSS (wait4's rusage). Shims are started ahead of time (at least one idle, by a thread
//! that lives as long as the guest, since PDEATHSIG follows the parent thread) and reused: a
//! fresh exec per spawn would cost an `echo` about 1 ms of latency and 0.5 ms of CPU. A shim gets
//! its jobs (argv, env, cwd, and the command's stdin/stdout/stderr) over a socketpair, one at a
//! time; it retires when a command changed what the next one would inherit from it (rlimits,
//! nice, affinity, oom_score_adj: a process of the same uid can, without ptrace rights).
//! `Started` carries the command's pid and `Signal` goes to the command's process group, never
//! to the shim.
//!
//! The command can kill or stop its shim (same uid). It cannot do so before the guest knows its
//! pid: its process waits until the shim told the guest. If the shim dies, or sends no report
//! within `SHIM_GRACE` of the command's exit or timeout (it is sent SIGCONT meanwhile), the guest
//! kills the command's process group, the (stopped) shim's tree, the shim, and what is left in
//! the command's session, and reports the command as killed (137, SIGKILL; 124 at a timeout).
//! What a command started in a session of its own and then killed its shim escapes that
//! cleanup; only a live shim catches it. Shims are hidden from `Processes`; `KillAll` kills
//! them too (the pool is refilled). `background: true` spawns have no shim: they keep what they
//! leave behind and are killed as a group only at their timeout.

#[path = "../../src/providers/docker/protocol.rs"]
#[allow(dead_code)]
mod protocol;
#[allow(dead_code)]
mod egress;
mod gateway;
mod process;
mod reaper;
mod shim;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use process::{Ctx, SpawnArgs};
use protocol::{encode, encode_json, Decoder, Entry, Kind, Reply, Request, CHUNK, LIST_CHUNK, VERSION};
use reaper::Reaper;

type Out = SyncSender<Vec<u8>>;

fn log(msg: &str) {
  let _ = writeln!(std::io::stderr(), "agentic-sandbox-guest: {msg}");
}

fn reply(out: &Out, id: u32, r: &Reply) {
  let _ = out.send(encode_json(Kind::Reply, id, r));
}

fn error_reply(out: &Out, id: u32, e: &std::io::Error, what: &str) {
  reply(out, id, &Reply::Error { message: format!("{what}: {}", errno_text(e)), errno: errno_name(e) });
}

fn errno_text(e: &std::io::Error) -> String {
  // "No such file or directory (os error 2)" -> "No such file or directory"
  let s = e.to_string();
  match s.find(" (os error") {
    Some(i) => s[..i].to_string(),
    None => s,
  }
}

fn errno_name(e: &std::io::Error) -> Option<String> {
  let n = e.raw_os_error()?;
  Some(
    match n {
      libc::ENOENT => "ENOENT",
      libc::EISDIR => "EISDIR",
      libc::ENOTDIR => "ENOTDIR",
      libc::EACCES => "EACCES",
      libc::EPERM => "EPERM",
      libc::ENOSPC => "ENOSPC",
      libc::EEXIST => "EEXIST",
      libc::EROFS => "EROFS",
      libc::ENOTEMPTY => "ENOTEMPTY",
      libc::EFBIG => "EFBIG",
      libc::EDQUOT => "EDQUOT",
      _ => return Some(format!("E{n}")),
    }
    .to_string(),
  )
}

/// Start a thread; unlike `std::thread::spawn` a failure is an error, not an abort. Threads count
/// against the sandbox's pids limit, which a fork bomb can exhaust for a while: retried briefly.
fn thread<F: FnOnce() + Send + 'static>(f: F) -> std::io::Result<()> {
  let slot = Arc::new(std::sync::Mutex::new(Some(f)));
  let mut delay = Duration::from_millis(1);
  loop {
    let s = slot.clone();
    match std::thread::Builder::new().spawn(move || {
      let f = s.lock().unwrap_or_else(|e| e.into_inner()).take();
      if let Some(f) = f {
        f()
      }
    }) {
      Ok(_) => return Ok(()),
      Err(e) if delay > Duration::from_millis(100) => return Err(e),
      Err(_) => {
        std::thread::sleep(delay);
        delay *= 2;
      }
    }
  }
}

/// Mark every fd from `first` up close-on-exec (whatever the guest inherited beyond its stdio
/// must not reach the commands).
fn cloexec_from(first: RawFd) {
  const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
  let r = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
  if r == 0 {
    return;
  }
  // before Linux 5.11: one by one
  let fds: Vec<RawFd> = match fs::read_dir("/proc/self/fd") {
    Ok(d) => d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect(),
    Err(_) => (first..1024).collect(),
  };
  for fd in fds.into_iter().filter(|fd| *fd >= first) {
    unsafe {
      let fl = libc::fcntl(fd, libc::F_GETFD);
      if fl >= 0 {
        libc::fcntl(fd, libc::F_SETFD, fl | libc::FD_CLOEXEC);
      }
    }
  }
}

/// `--lifetime-seconds N` (the only option of the daemon mode): a persistent sandbox's lifetime.
fn lifetime_arg(args: &[OsString]) -> Option<Duration> {
  match args {
    [_, flag, n, ..] if flag == "--lifetime-seconds" => n.to_str()?.parse::<u64>().ok().filter(|s| *s > 0).map(Duration::from_secs),
    _ => None,
  }
}

/// As PID 1: no signal handlers at all (std installs SIGSEGV/SIGBUS handlers for its stack
/// overflow message), so that every signal sent from inside the sandbox is dropped.
fn drop_signal_handlers() {
  for sig in 1..libc::SIGRTMAX() {
    if sig == libc::SIGKILL || sig == libc::SIGSTOP {
      continue;
    }
    unsafe {
      let mut old: libc::sigaction = std::mem::zeroed();
      if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
      }
    }
  }
}

fn main() {
  let args: Vec<OsString> = std::env::args_os().collect();
  if args.get(1).map(|a| a == "gateway").unwrap_or(false) {
    gateway::main(args);
  }
  if args.get(1).map(|a| a == shim::MARKER).unwrap_or(false) {
    shim::main(args);
  }
  // before anything else: no process of the sandbox may open our /proc files (the channel)
  unsafe {
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
  cloexec_from(3);
  let me = std::process::id();
  if me == 1 {
    drop_signal_handlers();
  }
  // before any thread starts, so that every thread has it blocked
  reaper::block_sigchld();
  let reaper = Reaper::start();

  // a persistent sandbox's guest (`--lifetime-seconds N`, README "Persistent sandboxes") outlives
  // its host and ends the sandbox at the end of its lifetime: as PID 1 its exit ends every process
  // of the sandbox, which nothing inside can prevent (no signal reaches it, see "PID 1" above)
  let lifetime = lifetime_arg(&args);
  if let Some(l) = lifetime {
    let started = Instant::now();
    let ok = thread(move || {
      while let Some(left) = l.checked_sub(started.elapsed()).filter(|d| !d.is_zero()) {
        std::thread::sleep(left);
      }
      log("the sandbox's lifetime ended");
      std::process::exit(0);
    });
    if ok.is_err() {
      log("cannot start the lifetime thread; exiting");
      std::process::exit(1);
    }
  }
  // after the host went away (persistent sandboxes only): frames are dropped, not written
  let detached = Arc::new(AtomicBool::new(false));

  // the writer: the only place that touches stdout
  let (out, out_rx) = mpsc::sync_channel::<Vec<u8>>(256);
  let writer_detached = detached.clone();
  let writer = std::thread::spawn(move || {
    let detached = writer_detached;
    let mut stdout = unsafe { File::from_raw_fd(1) };
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    while let Ok(frame) = out_rx.recv() {
      buf.extend_from_slice(&frame);
      // batch whatever else is already queued, then write once
      while buf.len() < 1024 * 1024 {
        match out_rx.try_recv() {
          Ok(f) => buf.extend_from_slice(&f),
          Err(_) => break,
        }
      }
      if !detached.load(Ordering::Relaxed) && stdout.write_all(&buf).is_err() {
        // nobody reads our frames any more: the addon is gone
        if lifetime.is_none() {
          std::process::exit(0);
        }
        detached.store(true, Ordering::Relaxed);
      }
      buf.clear();
    }
  });

  reply(&out, 0, &Reply::Hello { version: VERSION, pid: me, uid: unsafe { libc::getuid() }, gid: unsafe { libc::getgid() } });

  let pool = if fs::metadata("/proc/self/exe").is_ok() {
    Some(shim::Pool::start(reaper.clone()))
  } else {
    log("/proc/self/exe is missing: foreground commands run without a shim (what they leave behind in other sessions survives)");
    None
  };
  let ctx = Arc::new(Ctx { procs: Default::default(), reaper, pool });
  let mut writes: HashMap<u32, PendingWrite> = HashMap::new();
  let mut decoder = Decoder::default();
  let mut stdin = unsafe { File::from_raw_fd(0) };
  let mut buf = vec![0u8; 256 * 1024];
  'read: loop {
    let n = match stdin.read(&mut buf) {
      Ok(0) => break,
      Ok(n) => n,
      Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
      Err(_) => break,
    };
    decoder.push(&buf[..n]);
    loop {
      match decoder.next_frame() {
        Ok(Some(frame)) => handle_frame(frame, &out, &ctx, &mut writes),
        Ok(None) => break,
        Err(e) => {
          log(&format!("protocol error: {e}; exiting"));
          break 'read;
        }
      }
    }
  }
  if lifetime.is_some() {
    // a persistent sandbox: its host went away, the sandbox stays until its lifetime ends (the
    // lifetime thread exits). Foreground commands had a caller that is gone: they are killed;
    // background processes go on (servers, contexts). A later host attaches a guest of its own
    // with `docker exec`; this one keeps reaping as PID 1 and drops what it would have sent.
    detached.store(true, Ordering::Relaxed);
    if let Some(pool) = &ctx.pool {
      pool.retire();
    }
    for p in ctx.procs.lock().unwrap().values().filter(|p| !p.background) {
      unsafe {
        libc::kill(-p.pid, libc::SIGKILL);
      }
    }
    loop {
      std::thread::park();
    }
  }
  // the addon went away: nothing we started may outlive it. Kill the commands' groups; give
  // their shims a moment to kill what the commands left behind (they die with us).
  for p in ctx.procs.lock().unwrap().values() {
    unsafe {
      libc::kill(-p.pid, libc::SIGKILL);
    }
  }
  let end = Instant::now() + Duration::from_secs(1);
  while !ctx.procs.lock().unwrap().is_empty() && Instant::now() < end {
    std::thread::sleep(Duration::from_millis(5));
  }
  drop(out);
  let _ = writer.join();
}

fn handle_frame(frame: protocol::Frame, out: &Out, ctx: &Arc<Ctx>, writes: &mut HashMap<u32, PendingWrite>) {
  let id = frame.id;
  match frame.kind {
    Kind::Request => {
      let req: Request = match serde_json::from_slice(&frame.payload) {
        Ok(r) => r,
        Err(e) => {
          reply(out, id, &Reply::Error { message: format!("bad request: {e}"), errno: None });
          return;
        }
      };
      handle_request(id, req, out, ctx, writes);
    }
    Kind::Stdin => {
      if let Some(tx) = ctx.procs.lock().unwrap().get(&id).and_then(|p| p.stdin.as_ref()) {
        let _ = tx.send(frame.payload);
      }
    }
    Kind::StdinClose => {
      if let Some(p) = ctx.procs.lock().unwrap().get_mut(&id) {
        p.stdin = None;
      }
    }
    Kind::Data => {
      if let Some(w) = writes.get_mut(&id) {
        w.feed(&frame.payload);
        if w.remaining == 0 {
          let w = writes.remove(&id).unwrap();
          w.finish(out, id);
        }
      }
    }
    Kind::Reply | Kind::Stdout | Kind::Stderr => log("unexpected frame from the addon"),
  }
}

fn handle_request(id: u32, req: Request, out: &Out, ctx: &Arc<Ctx>, writes: &mut HashMap<u32, PendingWrite>) {
  match req {
    Request::Spawn { argv, env, cwd, timeout_ms, max_output, background, stdin } => {
      // on this (long-lived) thread: a shim's PR_SET_PDEATHSIG fires when the thread that
      // spawned it ends
      process::spawn(id, SpawnArgs { argv, env, cwd, timeout_ms, max_output, background, stdin }, out, ctx)
    }
    Request::Signal { target, signal } => {
      let pid = ctx.procs.lock().unwrap().get(&target).map(|p| p.pid);
      match pid {
        Some(pid) => {
          unsafe {
            if libc::kill(-pid, signal) != 0 {
              libc::kill(pid, signal);
            }
          }
          reply(out, id, &Reply::Ok);
        }
        None => reply(out, id, &Reply::Error { message: "no such process (it has exited)".into(), errno: Some("ESRCH".into()) }),
      }
    }
    Request::WriteFile { path, size } => match PendingWrite::open(&path, size) {
      Ok(w) if size == 0 => w.finish(out, id),
      Ok(w) => {
        writes.insert(id, w);
      }
      Err(e) => {
        // still swallow the data frames that follow
        writes.insert(id, PendingWrite::discard(size, e, &path));
        if size == 0 {
          writes.remove(&id).unwrap().finish(out, id);
        }
      }
    },
    other => {
      // everything else may take a while (big files, deep trees): off the reader thread
      let (o, ctx) = (out.clone(), ctx.clone());
      if let Err(e) = thread(move || slow_request(id, other, &o, &ctx)) {
        error_reply(out, id, &e, "cannot start a thread");
      }
    }
  }
}

fn slow_request(id: u32, req: Request, out: &Out, ctx: &Ctx) {
  match req {
    Request::ReadFile { path, max_bytes } => read_file(id, &path, max_bytes, out),
    Request::List { path, recursive, all, max_entries } => list(id, &path, recursive, all, max_entries, out),
    Request::Remove { path, recursive } => {
      let r = match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() && recursive => fs::remove_dir_all(&path),
        Ok(m) if m.is_dir() => Err(std::io::Error::from_raw_os_error(libc::EISDIR)),
        Ok(_) => fs::remove_file(&path),
      };
      match r {
        Ok(()) => reply(out, id, &Reply::Ok),
        Err(e) => error_reply(out, id, &e, &format!("cannot remove {path}")),
      }
    }
    Request::Mkdir { path } => match fs::create_dir_all(&path) {
      Ok(()) => reply(out, id, &Reply::Ok),
      Err(e) => error_reply(out, id, &e, &format!("cannot create directory {path}")),
    },
    Request::Stat { path } => match fs::symlink_metadata(&path) {
      Ok(m) => {
        let name = Path::new(&path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        reply(out, id, &Reply::Stat { entry: entry(name, &m) })
      }
      Err(e) => error_reply(out, id, &e, &path),
    },
    Request::Stats { disk_path } => reply(out, id, &stats(&disk_path)),
    Request::Processes => {
      let tracked: HashMap<i32, u32> = ctx.procs.lock().unwrap().iter().map(|(k, p)| (p.pid, *k)).collect();
      reply(out, id, &Reply::Processes { processes: process::processes(&tracked, &ctx.reaper.shims()) })
    }
    Request::KillAll => reply(out, id, &Reply::Killed { count: process::kill_all() }),
    Request::Spawn { .. } | Request::Signal { .. } | Request::WriteFile { .. } => unreachable!("handled inline"),
  }
}

// ------------------------------------------------------------------ files

fn read_file(id: u32, path: &str, max_bytes: u64, out: &Out) {
  let mut f = match File::open(path) {
    Ok(f) => f,
    Err(e) => return error_reply(out, id, &e, path),
  };
  match f.metadata() {
    Ok(m) if m.is_dir() => return error_reply(out, id, &std::io::Error::from_raw_os_error(libc::EISDIR), path),
    Ok(m) if m.len() > max_bytes => {
      return reply(
        out,
        id,
        &Reply::Error { message: format!("{path} is {} bytes, more than the {max_bytes} that can be read at once", m.len()), errno: Some("EFBIG".into()) },
      )
    }
    _ => {}
  }
  let mut total = 0u64;
  let mut buf = vec![0u8; CHUNK];
  loop {
    match f.read(&mut buf) {
      Ok(0) => break,
      Ok(n) => {
        total += n as u64;
        if total > max_bytes {
          return reply(out, id, &Reply::Error { message: format!("{path} grew beyond {max_bytes} bytes while reading"), errno: Some("EFBIG".into()) });
        }
        let _ = out.send(encode(Kind::Data, id, &buf[..n]));
      }
      Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
      Err(e) => return error_reply(out, id, &e, path),
    }
  }
  reply(out, id, &Reply::Read { size: total })
}

/// A file being written: data goes to a temporary file next to the target, renamed into place
/// when the last byte arrived (readers never see a half-written file).
struct PendingWrite {
  path: PathBuf,
  tmp: PathBuf,
  file: Option<File>,
  mode: Option<u32>,
  remaining: u64,
  error: Option<String>,
  errno: Option<String>,
}

impl PendingWrite {
  fn open(path: &str, size: u64) -> std::io::Result<Self> {
    let p = PathBuf::from(path);
    let existing = fs::metadata(&p).ok();
    if existing.as_ref().map(|m| m.is_dir()).unwrap_or(false) {
      return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    let dir = p.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir)?;
    let name = p.file_name().unwrap_or(OsStr::new("file"));
    let mut tmp_name = b".agentic-sandbox-write.".to_vec();
    tmp_name.extend_from_slice(name.as_bytes());
    tmp_name.extend_from_slice(format!(".{}", rand_suffix()).as_bytes());
    let tmp = dir.join(OsStr::from_bytes(&tmp_name));
    let file = File::create(&tmp)?;
    Ok(Self { path: p, tmp, file: Some(file), mode: existing.map(|m| m.permissions().mode() & 0o7777), remaining: size, error: None, errno: None })
  }

  fn discard(size: u64, e: std::io::Error, path: &str) -> Self {
    Self {
      path: PathBuf::from(path),
      tmp: PathBuf::new(),
      file: None,
      mode: None,
      remaining: size,
      error: Some(format!("cannot write {path}: {}", errno_text(&e))),
      errno: errno_name(&e),
    }
  }

  fn feed(&mut self, data: &[u8]) {
    self.remaining = self.remaining.saturating_sub(data.len() as u64);
    if self.error.is_some() {
      return;
    }
    if let Some(f) = self.file.as_mut() {
      if let Err(e) = f.write_all(data) {
        self.error = Some(format!("cannot write {}: {}", self.path.display(), errno_text(&e)));
        self.errno = errno_name(&e);
      }
    }
  }

  fn finish(mut self, out: &Out, id: u32) {
    drop(self.file.take());
    if self.error.is_none() {
      if let Some(mode) = self.mode {
        let _ = fs::set_permissions(&self.tmp, fs::Permissions::from_mode(mode));
      }
      if let Err(e) = fs::rename(&self.tmp, &self.path) {
        self.error = Some(format!("cannot write {}: {}", self.path.display(), errno_text(&e)));
        self.errno = errno_name(&e);
      }
    }
    match self.error {
      None => reply(out, id, &Reply::Ok),
      Some(message) => {
        if !self.tmp.as_os_str().is_empty() {
          let _ = fs::remove_file(&self.tmp);
        }
        reply(out, id, &Reply::Error { message, errno: self.errno })
      }
    }
  }
}

fn rand_suffix() -> u64 {
  let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
  t ^ (std::process::id() as u64) << 32
}

fn entry(path: String, m: &fs::Metadata) -> Entry {
  let ft = m.file_type();
  let kind = if ft.is_symlink() {
    "symlink"
  } else if ft.is_dir() {
    "directory"
  } else if ft.is_file() {
    "file"
  } else {
    "other"
  };
  Entry { path, kind: kind.into(), size: m.len(), mtime_ms: m.mtime() as f64 * 1000.0 + (m.mtime_nsec() / 1_000_000) as f64, mode: m.mode() & 0o7777 }
}

/// Walk `root` and hand every entry to `emit` (which returns false to stop the walk; then this
/// returns `Ok(true)`). Depth-first, each directory's entries sorted by name; only the names of
/// the directories on the current path are held, never the listing. An unreadable subdirectory
/// is listed but not descended into; an unreadable `root` is an error.
fn walk(root: &Path, recursive: bool, all: bool, emit: &mut dyn FnMut(Entry) -> bool) -> std::io::Result<bool> {
  struct Level {
    dir: PathBuf,
    prefix: String,
    names: std::vec::IntoIter<OsString>,
  }
  let names = |dir: &Path| -> std::io::Result<std::vec::IntoIter<OsString>> {
    let mut v = Vec::new();
    for d in fs::read_dir(dir)? {
      let name = d?.file_name();
      if all || !name.as_bytes().starts_with(b".") {
        v.push(name);
      }
    }
    v.sort_unstable();
    Ok(v.into_iter())
  };
  let mut stack = vec![Level { dir: root.to_path_buf(), prefix: String::new(), names: names(root)? }];
  while let Some(level) = stack.last_mut() {
    let Some(name) = level.names.next() else {
      stack.pop();
      continue;
    };
    let path = level.dir.join(&name);
    let Ok(m) = path.symlink_metadata() else { continue };
    let name = name.to_string_lossy();
    let rel = if level.prefix.is_empty() { name.into_owned() } else { format!("{}/{name}", level.prefix) };
    let descend = recursive && m.is_dir();
    if !emit(entry(rel.clone(), &m)) {
      return Ok(true);
    }
    if descend {
      if let Ok(names) = names(&path) {
        stack.push(Level { dir: path, prefix: rel, names });
      }
    }
  }
  Ok(false)
}

/// A listing, sent as it is walked: `Entries` chunks of at most `LIST_CHUNK` entries (fewer when
/// their paths are long: a chunk stays well below `MAX_FRAME`), then `List` with the rest.
/// Entries are in walk order (see `walk`): sorted within a directory, not across the listing.
/// After `max_entries` entries the walk stops and `List` says `truncated` (if anything was left).
fn list(id: u32, path: &str, recursive: bool, all: bool, max_entries: Option<u64>, out: &Out) {
  const CHUNK_BYTES: usize = 1 << 20;
  let max = max_entries.unwrap_or(u64::MAX);
  let mut chunk: Vec<Entry> = Vec::new();
  let (mut bytes, mut count) = (0usize, 0u64);
  let walked = walk(Path::new(path), recursive, all, &mut |e| {
    if count == max {
      return false;
    }
    count += 1;
    bytes += e.path.len() + 100;
    chunk.push(e);
    if chunk.len() >= LIST_CHUNK || bytes >= CHUNK_BYTES {
      reply(out, id, &Reply::Entries { entries: std::mem::take(&mut chunk) });
      bytes = 0;
    }
    true
  });
  match walked {
    Ok(truncated) => reply(out, id, &Reply::List { entries: chunk, truncated }),
    Err(e) => error_reply(out, id, &e, path),
  }
}

// ------------------------------------------------------------------ stats

fn read_u64(path: &str) -> Option<u64> {
  fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(path: &str, key: &str) -> Option<u64> {
  let s = fs::read_to_string(path).ok()?;
  s.lines().find_map(|l| {
    let mut it = l.split_whitespace();
    (it.next()? == key).then(|| it.next()?.parse().ok())?
  })
}

fn du(path: &Path) -> u64 {
  let Ok(m) = path.symlink_metadata() else { return 0 };
  let mut total = m.blocks() * 512;
  if m.is_dir() {
    if let Ok(rd) = fs::read_dir(path) {
      for d in rd.flatten() {
        total += du(&d.path());
      }
    }
  }
  total
}

fn stats(disk_path: &str) -> Reply {
  // cgroup v2 first, then v1
  let (memory_bytes, memory_limit) = if let Some(cur) = read_u64("/sys/fs/cgroup/memory.current") {
    let inactive = stat_field("/sys/fs/cgroup/memory.stat", "inactive_file").unwrap_or(0);
    (cur.saturating_sub(inactive), read_u64("/sys/fs/cgroup/memory.max").unwrap_or(0))
  } else {
    let cur = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0);
    let inactive = stat_field("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file").unwrap_or(0);
    (cur.saturating_sub(inactive), read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes").unwrap_or(0))
  };
  let cpu_usage_ns = stat_field("/sys/fs/cgroup/cpu.stat", "usage_usec")
    .map(|u| u * 1000)
    .or_else(|| read_u64("/sys/fs/cgroup/cpuacct/cpuacct.usage"))
    .or_else(|| read_u64("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"))
    .unwrap_or(0);
  let pids = read_u64("/sys/fs/cgroup/pids.current").or_else(|| read_u64("/sys/fs/cgroup/pids/pids.current")).unwrap_or(0);
  let (mut rx, mut tx) = (0u64, 0u64);
  if let Ok(s) = fs::read_to_string("/proc/net/dev") {
    for l in s.lines().skip(2) {
      let Some((iface, rest)) = l.split_once(':') else { continue };
      if iface.trim() == "lo" {
        continue;
      }
      let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
      rx += f.first().copied().unwrap_or(0);
      tx += f.get(8).copied().unwrap_or(0);
    }
  }
  Reply::Stats { memory_bytes, memory_limit, cpu_usage_ns, pids, disk_bytes: du(Path::new(disk_path)), net_rx_bytes: rx, net_tx_bytes: tx }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// The replies of a `List` request: chunk sizes, all entries, `truncated`.
  fn listing(path: &Path, recursive: bool, max_entries: Option<u64>) -> (Vec<usize>, Vec<Entry>, bool) {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(2);
    let path = path.to_str().unwrap().to_owned();
    let walker = std::thread::spawn(move || list(7, &path, recursive, true, max_entries, &tx));
    let (mut chunks, mut all) = (Vec::new(), Vec::new());
    let mut d = Decoder::default();
    for frame in rx {
      d.push(&frame);
      while let Some(f) = d.next_frame().unwrap() {
        assert_eq!((f.kind, f.id), (Kind::Reply, 7));
        assert!(f.payload.len() < protocol::MAX_FRAME);
        match serde_json::from_slice(&f.payload).unwrap() {
          Reply::Entries { entries } => {
            chunks.push(entries.len());
            all.extend(entries);
          }
          Reply::List { entries, truncated } => {
            chunks.push(entries.len());
            all.extend(entries);
            walker.join().unwrap();
            return (chunks, all, truncated);
          }
          other => panic!("{other:?}"),
        }
      }
    }
    panic!("no final List");
  }

  fn tmp(name: &str) -> PathBuf {
    // (tmpfs when there is one: 100,000 files are quicker there)
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = base.join(format!("agentic-guest-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
  }

  #[test]
  fn a_listing_of_100000_files_comes_in_chunks() {
    let dir = tmp("list100k");
    for i in 0..100_000 {
      File::create(dir.join(format!("f{i:06}"))).unwrap();
    }
    let (chunks, all, truncated) = listing(&dir, true, None);
    assert!(!truncated);
    assert_eq!(all.len(), 100_000);
    assert_eq!(chunks.len(), 51);
    assert!(chunks[..50].iter().all(|n| *n == LIST_CHUNK) && chunks[50] == 0, "{chunks:?}");
    // one directory: its entries come sorted
    assert!(all.windows(2).all(|w| w[0].path < w[1].path));
    // max_entries stops the walk
    let (chunks, all, truncated) = listing(&dir, true, Some(4500));
    assert_eq!((chunks, all.len(), truncated), (vec![2000, 2000, 500], 4500, true));
    fs::remove_dir_all(&dir).unwrap();
  }

  #[test]
  fn long_paths_make_smaller_chunks_and_the_walk_is_depth_first() {
    let dir = tmp("listlong");
    // paths of ~500 bytes: 2000 of them would make a chunk of more than 1 MiB
    let long = "x".repeat(250);
    let c = format!("a/{}", "c".repeat(240));
    for d in ["b", "a", &c] {
      fs::create_dir(dir.join(d)).unwrap();
    }
    for i in 0..6000 {
      File::create(dir.join(&c).join(format!("{long}{i:04}"))).unwrap();
    }
    File::create(dir.join("a.txt")).unwrap();
    File::create(dir.join(".hidden")).unwrap();
    let (chunks, all, truncated) = listing(&dir, true, None);
    assert!(!truncated);
    assert_eq!(all.len(), 6005);
    assert!(chunks.iter().all(|n| *n < LIST_CHUNK), "{chunks:?}");
    let paths: Vec<&str> = all.iter().map(|e| e.path.as_str()).collect();
    // depth-first, sorted within each directory ("a.txt" sorts after "a", but comes after all of a/)
    assert_eq!(&paths[..3], [".hidden", "a", &c]);
    assert_eq!(paths[6002], format!("{c}/{long}5999"));
    assert_eq!(&paths[6003..], ["a.txt", "b"]);
    // not recursive: the top level only
    let (_, all, _) = listing(&dir, false, None);
    assert_eq!(all.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), [".hidden", "a", "a.txt", "b"]);
    fs::remove_dir_all(&dir).unwrap();
  }
}
