//! Processes: spawning, supervising (output, timeout, exit), listing and killing the sandbox's
//! processes.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{encode, Kind, ProcessEntry, Reply, CHUNK};
use crate::reaper::Reaper;
use crate::{errno_text, log, reply, Out};

/// How long output is still collected after a process exited while something it left behind
/// (a daemon that escaped the kill with setsid) keeps its pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

pub struct Proc {
  pub pid: i32,
  pub stdin: Option<Sender<Vec<u8>>>,
}

pub type Procs = Arc<Mutex<HashMap<u32, Proc>>>;

/// What every request handler shares.
pub struct Ctx {
  pub procs: Procs,
  pub reaper: Arc<Reaper>,
}

pub struct SpawnArgs {
  pub argv: Vec<String>,
  pub env: Vec<(String, String)>,
  pub cwd: String,
  pub timeout_ms: Option<u64>,
  pub max_output: u64,
  pub background: bool,
  pub stdin: bool,
}

/// A pidfd (CLOEXEC, as every pidfd); `None` on kernels before 5.3 or under a seccomp filter
/// that forbids it.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
  let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
  (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn kill(pid: i32, sig: i32) {
  unsafe {
    libc::kill(pid, sig);
  }
}

pub fn spawn(id: u32, a: SpawnArgs, out: &Out, ctx: &Ctx) {
  let fail = |code: i32, msg: String| {
    let _ = out.send(encode(Kind::Stderr, id, msg.as_bytes()));
    reply(out, id, &Reply::Exit { code, signal: None, timed_out: false, stdout_dropped: 0, stderr_dropped: 0, max_rss_kb: None });
  };
  if a.argv.is_empty() {
    return reply(out, id, &Reply::Error { message: "empty argv".into(), errno: None });
  }
  if !Path::new(&a.cwd).is_dir() {
    return fail(126, format!("cd: {}: No such file or directory\n", a.cwd));
  }
  let mut cmd = Command::new(&a.argv[0]);
  cmd
    .args(&a.argv[1..])
    .current_dir(&a.cwd)
    .envs(a.env)
    .stdin(if a.stdin { Stdio::piped() } else { Stdio::null() })
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
  let mut table = ctx.procs.lock().unwrap();
  // and the reaper's lock: the process cannot be reaped before it is watched and has its pidfd
  let mut reaped = ctx.reaper.lock();
  let mut child = match cmd.spawn() {
    Ok(c) => c,
    Err(e) => {
      drop(reaped);
      drop(table);
      return match e.kind() {
        std::io::ErrorKind::NotFound => fail(127, format!("{}: command not found\n", a.argv[0])),
        std::io::ErrorKind::PermissionDenied => fail(126, format!("{}: Permission denied\n", a.argv[0])),
        _ => fail(126, format!("{}: {}\n", a.argv[0], errno_text(&e))),
      };
    }
  };
  let pid = child.id() as i32;
  reaped.watch(pid);
  let pidfd = pidfd_open(pid);
  drop(reaped);
  // no thread (the sandbox is at its pids limit): the process cannot be supervised, so it must
  // not run
  let cannot = |e: std::io::Error| {
    kill(-pid, libc::SIGKILL);
    kill(pid, libc::SIGKILL);
    ctx.reaper.forget(pid);
    fail(126, format!("{}: cannot start a thread to supervise it: {}\n", a.argv[0], errno_text(&e)));
  };
  let stdin_tx = match child.stdin.take() {
    None => None,
    Some(mut pipe) => {
      let (tx, rx) = mpsc::channel::<Vec<u8>>();
      let fed = crate::thread(move || {
        for chunk in rx {
          if pipe.write_all(&chunk).is_err() {
            break; // the process closed its stdin; the rest is dropped
          }
        }
      });
      if let Err(e) = fed {
        drop(table);
        return cannot(e);
      }
      Some(tx)
    }
  };
  let stdout = child.stdout.take().unwrap();
  let stderr = child.stderr.take().unwrap();
  // a deadline beyond what the clock can hold means no deadline
  let deadline = a.timeout_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
  let (max_output, background) = (a.max_output, a.background);
  // the supervisor starts once `Started` is out (its frames must come after it)
  let (go, wait_go) = mpsc::sync_channel::<()>(1);
  let (o, procs, reaper) = (out.clone(), ctx.procs.clone(), ctx.reaper.clone());
  let supervisor = crate::thread(move || {
    if wait_go.recv().is_err() {
      return;
    }
    let exit = supervise(id, pid, pidfd, stdout.into(), stderr.into(), deadline, max_output, background, &reaper, &o);
    procs.lock().unwrap().remove(&id);
    reply(&o, id, &exit);
  });
  if let Err(e) = supervisor {
    drop(table);
    return cannot(e);
  }
  table.insert(id, Proc { pid, stdin: stdin_tx });
  drop(table);
  reply(out, id, &Reply::Started { pid: pid as u32 });
  let _ = go.send(());
}

fn set_nonblocking(fd: RawFd) {
  unsafe {
    let fl = libc::fcntl(fd, libc::F_GETFL);
    libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
  }
}

pub fn signal_name(sig: i32) -> String {
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
  pidfd: Option<OwnedFd>,
  stdout: OwnedFd,
  stderr: OwnedFd,
  deadline: Option<Instant>,
  cap: u64,
  background: bool,
  reaper: &Reaper,
  out: &Out,
) -> Reply {
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
    if let (None, Some(fd)) = (status, &pidfd) {
      pfds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    }
    // without a pidfd (old kernel, seccomp) the exit is noticed by polling every 20 ms
    let mut wait_ms: i64 = if status.is_none() && pidfd.is_none() { 20 } else { -1 };
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
      // the reaping thread may have reaped it already: its status waits in the reaper
      if let Some(st) = reaper.take(pid) {
        status = Some(st.raw);
        // wait4's rusage gives the peak memory (runCode's memoryUsedMB)
        max_rss_kb = Some(st.max_rss_kb);
        exited_at = Some(Instant::now());
        if !background {
          // a foreground command owns its process group: nothing it started outlives it
          kill(-pid, libc::SIGKILL);
        }
      } else if let Some(d) = deadline {
        if !timed_out && Instant::now() >= d {
          timed_out = true;
          kill(-pid, libc::SIGKILL);
          kill(pid, libc::SIGKILL);
        }
      }
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

pub struct ProcStat {
  pub state: String,
  pub ppid: u32,
  pub session: i32,
}

pub fn read_stat(pid: i32) -> Option<ProcStat> {
  let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
  let rest = &s[s.rfind(')')? + 2..];
  let f: Vec<&str> = rest.split(' ').collect();
  // state ppid pgrp session
  Some(ProcStat { state: f.first()?.to_string(), ppid: f.get(1)?.parse().ok()?, session: f.get(3)?.parse().ok()? })
}

fn proc_stats() -> Vec<(i32, ProcStat)> {
  let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
  dir
    .flatten()
    .filter_map(|d| d.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
    .filter_map(|pid| Some((pid, read_stat(pid)?)))
    .collect()
}

/// The sandbox's processes: everything except PID 1's session (the init and the image's own
/// command; the guest itself when it is PID 1), the guest, and zombies.
pub fn processes(tracked: &HashMap<i32, u32>) -> Vec<ProcessEntry> {
  let me = std::process::id() as i32;
  let init_session = read_stat(1).map(|s| s.session).unwrap_or(1);
  let mut out = Vec::new();
  for (pid, st) in proc_stats() {
    if pid == 1 || pid == me || st.session == init_session || st.state == "Z" {
      continue;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
      .map(|b| b.split(|c| *c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
      .unwrap_or_default();
    let rss_kb = fs::read_to_string(format!("/proc/{pid}/status"))
      .ok()
      .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
      .unwrap_or(0);
    out.push(ProcessEntry { pid: pid as u32, ppid: st.ppid, state: st.state, cmdline, request: tracked.get(&pid).copied(), rss_kb });
  }
  out.sort_by_key(|p| p.pid);
  out
}

/// SIGKILL everything `Processes` would list; returns how many kills were sent.
pub fn kill_all() -> u32 {
  let mut count = 0;
  // stop everything first (a stopped process cannot fork), then kill; twice for stragglers
  for sig in [libc::SIGSTOP, libc::SIGKILL, libc::SIGKILL] {
    for p in processes(&HashMap::new()) {
      kill(p.pid as i32, sig);
      if sig == libc::SIGKILL {
        count += 1;
      }
    }
  }
  count
}
