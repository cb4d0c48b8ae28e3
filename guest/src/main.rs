//! agentic-sandbox guest daemon.
//!
//! Runs inside a sandbox (as the container's command, or attached with one `docker exec`) and
//! serves the addon over stdin/stdout with the frame protocol of `src/guest_protocol.rs`.
//! Plain threads, no async runtime: a reader (this main thread) that dispatches frames, one writer
//! thread that owns stdout (a bounded queue, so a slow reader on the host side pushes back on
//! the processes producing output), one thread per running process (poll over its pipes and a
//! pidfd), one per stdin feeder and one per slow request (file reads, listings, stats).
//!
//! When stdin ends (the addon went away) every process it started is killed and the guest exits;
//! as the container's command that also stops the container.
//!
//! Everything inside a sandbox is hostile, the guest included as a target:
//!
//! # The channel
//!
//! The guest's fd 0 and 1 *are* the channel to the host: whoever can write to the guest's stdout
//! can forge frames, whoever can read its stdin sees every request. Nothing else may hold them:
//! every command gets fresh pipes (or /dev/null) as its 0, 1 and 2, and every other fd of the
//! guest is close-on-exec (whatever it inherited beyond 0, 1, 2 is marked so at startup; std opens
//! files, pipes and directories with O_CLOEXEC, pidfds are CLOEXEC too).
//!
//! # Non-dumpable
//!
//! A process of the same uid could still open `/proc/<guest>/fd/1` (that reopens the pipe),
//! `/proc/<guest>/fd/0`, `/proc/<guest>/mem` or `environ`, or ptrace the guest. After
//! `PR_SET_DUMPABLE 0` (the first thing `main` does) all of that needs CAP_SYS_PTRACE, which
//! sandboxes do not have (not even Docker's default capabilities include it). An exec makes a
//! process dumpable again, so commands are as usual.

#[path = "../../src/guest_protocol.rs"]
#[allow(dead_code)]
mod protocol;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::{encode, encode_json, Decoder, Entry, Kind, ProcessEntry, Reply, Request, CHUNK, VERSION};

/// How long output is still collected after a process exited while something it left behind
/// (a daemon that escaped the kill with setsid) keeps its pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

type Out = SyncSender<Vec<u8>>;

struct Proc {
  pid: i32,
  stdin: Option<Sender<Vec<u8>>>,
}

type Procs = Arc<Mutex<HashMap<u32, Proc>>>;

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

fn main() {
  // before anything else: no process of the sandbox may open our /proc files (the channel)
  unsafe {
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
  cloexec_from(3);

  // the writer: the only place that touches stdout
  let (out, out_rx) = mpsc::sync_channel::<Vec<u8>>(256);
  let writer = std::thread::spawn(move || {
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
      if stdout.write_all(&buf).is_err() {
        // nobody reads our frames any more: the addon is gone
        std::process::exit(0);
      }
      buf.clear();
    }
  });

  let me = std::process::id();
  reply(&out, 0, &Reply::Hello { version: VERSION, pid: me, uid: unsafe { libc::getuid() }, gid: unsafe { libc::getgid() } });

  let procs: Procs = Arc::new(Mutex::new(HashMap::new()));
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
        Ok(Some(frame)) => handle_frame(frame, &out, &procs, &mut writes),
        Ok(None) => break,
        Err(e) => {
          log(&format!("protocol error: {e}; exiting"));
          break 'read;
        }
      }
    }
  }
  // the addon went away: nothing we started may outlive it
  for p in procs.lock().unwrap().values() {
    unsafe {
      libc::kill(-p.pid, libc::SIGKILL);
    }
  }
  drop(out);
  let _ = writer.join();
}

fn handle_frame(frame: protocol::Frame, out: &Out, procs: &Procs, writes: &mut HashMap<u32, PendingWrite>) {
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
      handle_request(id, req, out, procs, writes);
    }
    Kind::Stdin => {
      if let Some(tx) = procs.lock().unwrap().get(&id).and_then(|p| p.stdin.as_ref()) {
        let _ = tx.send(frame.payload);
      }
    }
    Kind::StdinClose => {
      if let Some(p) = procs.lock().unwrap().get_mut(&id) {
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

fn handle_request(id: u32, req: Request, out: &Out, procs: &Procs, writes: &mut HashMap<u32, PendingWrite>) {
  match req {
    Request::Spawn { argv, env, cwd, timeout_ms, max_output, background, stdin } => {
      spawn(id, argv, env, cwd, timeout_ms, max_output, background, stdin, out, procs)
    }
    Request::Signal { target, signal } => {
      let pid = procs.lock().unwrap().get(&target).map(|p| p.pid);
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
      let out = out.clone();
      let procs = procs.clone();
      std::thread::spawn(move || slow_request(id, other, &out, &procs));
    }
  }
}

fn slow_request(id: u32, req: Request, out: &Out, procs: &Procs) {
  match req {
    Request::ReadFile { path, max_bytes } => read_file(id, &path, max_bytes, out),
    Request::List { path, recursive, all, .. } => {
      let mut entries = Vec::new();
      match list(Path::new(&path), "", recursive, all, &mut entries) {
        Ok(()) => {
          entries.sort_by(|a, b| a.path.cmp(&b.path));
          reply(out, id, &Reply::List { entries, truncated: false })
        }
        Err(e) => error_reply(out, id, &e, &path),
      }
    }
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
      let tracked: HashMap<i32, u32> = procs.lock().unwrap().iter().map(|(k, p)| (p.pid, *k)).collect();
      reply(out, id, &Reply::Processes { processes: processes(&tracked) })
    }
    Request::KillAll => {
      let mut count = 0;
      // stop everything first (a stopped process cannot fork), then kill; twice for stragglers
      for sig in [libc::SIGSTOP, libc::SIGKILL, libc::SIGKILL] {
        for p in processes(&HashMap::new()) {
          unsafe {
            libc::kill(p.pid as i32, sig);
          }
          if sig == libc::SIGKILL {
            count += 1;
          }
        }
      }
      reply(out, id, &Reply::Killed { count })
    }
    Request::Spawn { .. } | Request::Signal { .. } | Request::WriteFile { .. } => unreachable!("handled inline"),
  }
}

// ------------------------------------------------------------------ processes

#[allow(clippy::too_many_arguments)]
fn spawn(
  id: u32,
  argv: Vec<String>,
  env: Vec<(String, String)>,
  cwd: String,
  timeout_ms: Option<u64>,
  max_output: u64,
  background: bool,
  want_stdin: bool,
  out: &Out,
  procs: &Procs,
) {
  let fail = |code: i32, msg: String| {
    let _ = out.send(encode(Kind::Stderr, id, msg.as_bytes()));
    reply(out, id, &Reply::Exit { code, signal: None, timed_out: false, stdout_dropped: 0, stderr_dropped: 0, max_rss_kb: None });
  };
  if argv.is_empty() {
    return reply(out, id, &Reply::Error { message: "empty argv".into(), errno: None });
  }
  if !Path::new(&cwd).is_dir() {
    return fail(126, format!("cd: {cwd}: No such file or directory\n"));
  }
  let mut cmd = Command::new(&argv[0]);
  cmd
    .args(&argv[1..])
    .current_dir(&cwd)
    .envs(env)
    .stdin(if want_stdin { Stdio::piped() } else { Stdio::null() })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
  // its own session and process group: the whole group can be signalled and killed at once,
  // and stop()/KillAll can tell it from the image's own processes
  unsafe {
    cmd.pre_exec(|| {
      if libc::setsid() < 0 {
        return Err(std::io::Error::last_os_error());
      }
      Ok(())
    });
  }
  // hold the table while spawning so a Signal for this id cannot miss it
  let mut table = procs.lock().unwrap();
  let mut child = match cmd.spawn() {
    Ok(c) => c,
    Err(e) => {
      drop(table);
      return match e.kind() {
        std::io::ErrorKind::NotFound => fail(127, format!("{}: command not found\n", argv[0])),
        std::io::ErrorKind::PermissionDenied => fail(126, format!("{}: Permission denied\n", argv[0])),
        _ => fail(126, format!("{}: {}\n", argv[0], errno_text(&e))),
      };
    }
  };
  let pid = child.id() as i32;
  let stdin_tx = child.stdin.take().map(|mut pipe| {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
      for chunk in rx {
        if pipe.write_all(&chunk).is_err() {
          break; // the process closed its stdin; the rest is dropped
        }
      }
    });
    tx
  });
  table.insert(id, Proc { pid, stdin: stdin_tx });
  drop(table);
  reply(out, id, &Reply::Started { pid: pid as u32 });
  let stdout = child.stdout.take().unwrap();
  let stderr = child.stderr.take().unwrap();
  let (out, procs) = (out.clone(), procs.clone());
  // a deadline beyond what the clock can hold means no deadline
  let deadline = timeout_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
  std::thread::spawn(move || {
    let exit = supervise(id, pid, stdout, stderr, deadline, max_output, background, &out);
    procs.lock().unwrap().remove(&id);
    drop(child);
    reply(&out, id, &exit);
  });
}

fn set_nonblocking(fd: RawFd) {
  unsafe {
    let fl = libc::fcntl(fd, libc::F_GETFL);
    libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
  }
}

fn signal_name(sig: i32) -> String {
  match sig {
    libc::SIGHUP => "SIGHUP",
    libc::SIGINT => "SIGINT",
    libc::SIGQUIT => "SIGQUIT",
    libc::SIGILL => "SIGILL",
    libc::SIGABRT => "SIGABRT",
    libc::SIGBUS => "SIGBUS",
    libc::SIGFPE => "SIGFPE",
    libc::SIGKILL => "SIGKILL",
    libc::SIGSEGV => "SIGSEGV",
    libc::SIGPIPE => "SIGPIPE",
    libc::SIGALRM => "SIGALRM",
    libc::SIGTERM => "SIGTERM",
    libc::SIGUSR1 => "SIGUSR1",
    libc::SIGUSR2 => "SIGUSR2",
    libc::SIGXCPU => "SIGXCPU",
    libc::SIGXFSZ => "SIGXFSZ",
    _ => return format!("SIG{sig}"),
  }
  .to_string()
}

/// Pump a process's output until it exited and its pipes closed; enforce the timeout; kill the
/// process group when a foreground process returns.
#[allow(clippy::too_many_arguments)]
fn supervise(
  id: u32,
  pid: i32,
  stdout: std::process::ChildStdout,
  stderr: std::process::ChildStderr,
  deadline: Option<Instant>,
  cap: u64,
  background: bool,
  out: &Out,
) -> Reply {
  let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
  let fds = [stdout.as_raw_fd(), stderr.as_raw_fd()];
  set_nonblocking(fds[0]);
  set_nonblocking(fds[1]);
  let mut open = [true, true];
  let mut sent = [0u64, 0u64];
  let mut dropped = [0u64, 0u64];
  let mut status: Option<i32> = None;
  let mut exited_at: Option<Instant> = None;
  let mut timed_out = false;
  let mut max_rss_kb: Option<u64> = None;
  let mut buf = vec![0u8; CHUNK];
  loop {
    if let Some(t) = exited_at {
      if !open[0] && !open[1] || t.elapsed() >= DRAIN_AFTER_EXIT {
        break;
      }
    }
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(3);
    for i in 0..2 {
      if open[i] {
        pfds.push(libc::pollfd { fd: fds[i], events: libc::POLLIN, revents: 0 });
      }
    }
    let watch_pid = status.is_none() && pidfd >= 0;
    if watch_pid {
      pfds.push(libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 });
    }
    // without a pidfd (old kernel, seccomp) the exit is noticed by polling every 20 ms
    let mut wait_ms: i64 = if status.is_none() && pidfd < 0 { 20 } else { -1 };
    let now = Instant::now();
    if let (Some(d), None) = (deadline, status) {
      let left = d.saturating_duration_since(now).as_millis() as i64;
      wait_ms = if wait_ms < 0 { left } else { wait_ms.min(left) };
    }
    if let Some(t) = exited_at {
      let left = DRAIN_AFTER_EXIT.saturating_sub(t.elapsed()).as_millis() as i64 + 1;
      wait_ms = if wait_ms < 0 { left } else { wait_ms.min(left) };
    }
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, wait_ms.clamp(-1, i32::MAX as i64) as i32) };
    if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
      log("poll failed");
      break;
    }
    for i in 0..2 {
      if !open[i] {
        continue;
      }
      // read until the pipe is empty (bounded, so one stream cannot starve the other)
      for _ in 0..16 {
        let n = unsafe { libc::read(fds[i], buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n == 0 {
          open[i] = false;
          break;
        }
        if n < 0 {
          let err = std::io::Error::last_os_error().raw_os_error();
          if err == Some(libc::EINTR) {
            continue;
          }
          if err != Some(libc::EAGAIN) {
            open[i] = false;
          }
          break;
        }
        let n = n as u64;
        let room = cap.saturating_sub(sent[i]).min(n);
        if room > 0 {
          let kind = if i == 0 { Kind::Stdout } else { Kind::Stderr };
          let _ = out.send(encode(kind, id, &buf[..room as usize]));
          sent[i] += room;
        }
        dropped[i] += n - room;
        if (n as usize) < buf.len() {
          break;
        }
      }
    }
    if status.is_none() {
      let mut st: libc::c_int = 0;
      // wait4, not waitpid: its rusage gives the peak memory (runCode's memoryUsedMB)
      let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
      let r = unsafe { libc::wait4(pid, &mut st, libc::WNOHANG, &mut ru) };
      if r == pid {
        status = Some(st);
        max_rss_kb = Some(ru.ru_maxrss.max(0) as u64);
        exited_at = Some(Instant::now());
        if !background {
          // a foreground command owns its process group: nothing it started outlives it
          unsafe {
            libc::kill(-pid, libc::SIGKILL);
          }
        }
      } else if r < 0 {
        // not our child any more (cannot happen unless someone else reaped it)
        status = Some(0);
        exited_at = Some(Instant::now());
      } else if let Some(d) = deadline {
        if !timed_out && Instant::now() >= d {
          timed_out = true;
          unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
          }
        }
      }
    }
  }
  if pidfd >= 0 {
    unsafe {
      libc::close(pidfd);
    }
  }
  let st = status.unwrap_or(0);
  let (mut code, signal) = if libc::WIFSIGNALED(st) {
    let sig = libc::WTERMSIG(st);
    (128 + sig, Some(signal_name(sig)))
  } else {
    (libc::WEXITSTATUS(st), None)
  };
  if timed_out {
    code = 124;
  }
  Reply::Exit { code, signal, timed_out, stdout_dropped: dropped[0], stderr_dropped: dropped[1], max_rss_kb }
}

fn read_stat(pid: &str) -> Option<(String, u32, u32)> {
  let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
  let rest = &s[s.rfind(')')? + 2..];
  let f: Vec<&str> = rest.split(' ').collect();
  // state ppid pgrp session
  Some((f.first()?.to_string(), f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

/// The sandbox's processes: everything except PID 1's session (the init and the image's own
/// command), the guest itself, and zombies.
fn processes(tracked: &HashMap<i32, u32>) -> Vec<ProcessEntry> {
  let me = std::process::id();
  let init_session = read_stat("1").map(|s| s.2).unwrap_or(1);
  let mut out = Vec::new();
  let Ok(dir) = fs::read_dir("/proc") else { return out };
  for d in dir.flatten() {
    let name = d.file_name();
    let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
    if pid == 1 || pid == me {
      continue;
    }
    let Some((state, ppid, session)) = read_stat(&pid.to_string()) else { continue };
    if session == init_session || state == "Z" {
      continue;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
      .map(|b| b.split(|c| *c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
      .unwrap_or_default();
    let rss_kb = fs::read_to_string(format!("/proc/{pid}/status"))
      .ok()
      .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
      .unwrap_or(0);
    out.push(ProcessEntry { pid, ppid, state, cmdline, request: tracked.get(&(pid as i32)).copied(), rss_kb });
  }
  out.sort_by_key(|p| p.pid);
  out
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

fn list(dir: &Path, prefix: &str, recursive: bool, all: bool, entries: &mut Vec<Entry>) -> std::io::Result<()> {
  for d in fs::read_dir(dir)? {
    let d = d?;
    let name = d.file_name().to_string_lossy().into_owned();
    if !all && name.starts_with('.') {
      continue;
    }
    let Ok(m) = d.path().symlink_metadata() else { continue };
    let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
    let is_dir = m.is_dir();
    entries.push(entry(rel.clone(), &m));
    if recursive && is_dir {
      // an unreadable subdirectory is listed but not descended into
      let _ = list(&d.path(), &rel, recursive, all, entries);
    }
  }
  Ok(())
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
