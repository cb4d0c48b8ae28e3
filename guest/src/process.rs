//! Processes: spawning (a foreground command under a shim, a background one directly),
//! supervising (output, timeout, exit), listing and killing the sandbox's processes.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{encode, Kind, ProcessEntry, Reply, CHUNK};
use crate::reaper::{Reaper, Status};
use crate::shim::{self, IdleShim, Job, Pool, ReadRecord, Record};
use crate::{errno_text, log, reply, Out};

/// How long output is still collected after a process exited while something it left behind
/// (a background process's daemon, or anything that escaped a dead shim) keeps its pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);
/// How long the guest waits for a shim's report once the command exited (or was killed at its
/// timeout) before it gives up on the shim (stopped, hung) and cleans up itself.
const SHIM_GRACE: Duration = Duration::from_secs(3);
/// How often a silent shim is sent SIGCONT meanwhile (undoes a hostile `kill -STOP $PPID`).
const SHIM_NUDGE: Duration = Duration::from_millis(100);
/// How long a spawn waits for its shim to say whether the command started.
const SHIM_START: Duration = Duration::from_secs(5);

pub struct Proc {
  /// the command's pid (never the shim's)
  pub pid: i32,
  pub stdin: Option<Sender<Vec<u8>>>,
  /// started as a background process (a persistent sandbox keeps those when its host goes away)
  pub background: bool,
}

pub type Procs = Arc<Mutex<HashMap<u32, Proc>>>;

/// What every request handler shares.
pub struct Ctx {
  pub procs: Procs,
  pub reaper: Arc<Reaper>,
  /// idle shims for foreground commands (none when /proc/self/exe cannot be executed)
  pub pool: Option<Arc<Pool>>,
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

fn pidfd_kill(pidfd: &OwnedFd) {
  unsafe {
    libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0);
  }
}

fn kill(pid: i32, sig: i32) {
  unsafe {
    libc::kill(pid, sig);
  }
}

fn pipe_cloexec() -> std::io::Result<(OwnedFd, OwnedFd)> {
  let mut fds = [0 as RawFd; 2];
  if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
    return Err(std::io::Error::last_os_error());
  }
  Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: RawFd) {
  unsafe {
    let fl = libc::fcntl(fd, libc::F_GETFL);
    libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
  }
}

fn poll_in(fd: RawFd, timeout: Duration) -> bool {
  let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
  let end = Instant::now() + timeout;
  loop {
    let left = end.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32;
    let r = unsafe { libc::poll(&mut p, 1, left) };
    if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
      return r > 0;
    }
  }
}

/// Where a spawned process stands, as the supervisor sees it.
enum Watch {
  /// a process the guest spawned itself: a background one (or a foreground one when shims are
  /// unavailable: then its process group is killed when it exits, as before shims)
  Direct { pid: i32, pidfd: Option<OwnedFd>, kill_group: bool },
  /// a foreground command under a shim, which reports on `status`
  Shim { cmd: i32, cmd_pidfd: Option<OwnedFd>, shim: i32, status: OwnedFd },
}

pub fn spawn(id: u32, a: SpawnArgs, out: &Out, ctx: &Ctx) {
  let fail = |code: i32, msg: String| {
    let _ = out.send(encode(Kind::Stderr, id, msg.as_bytes()));
    reply(out, id, &Reply::Exit { code, signal: None, timed_out: false, stdout_dropped: 0, stderr_dropped: 0, max_rss_kb: None });
  };
  if a.argv.is_empty() {
    return reply(out, id, &Reply::Error { message: "empty argv".into(), errno: None });
  }
  let argv0 = a.argv[0].clone();
  let cwd = a.cwd.clone();
  let spawn_failed = |e: SpawnError| match e {
    SpawnError::Cwd(e) => fail(126, format!("cd: {cwd}: {}\n", errno_text(&e))),
    SpawnError::Start(e) => match e.kind() {
      std::io::ErrorKind::NotFound => fail(127, format!("{argv0}: command not found\n")),
      std::io::ErrorKind::PermissionDenied => fail(126, format!("{argv0}: Permission denied\n")),
      _ => fail(126, format!("{argv0}: {}\n", errno_text(&e))),
    },
  };
  if !Path::new(&a.cwd).is_dir() {
    return fail(126, format!("cd: {}: No such file or directory\n", a.cwd));
  }
  let deadline = a.timeout_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
  let max_output = a.max_output;
  let background = a.background;
  let started = match (&ctx.pool, a.background) {
    (Some(pool), false) => spawn_shimmed(a, pool, ctx),
    _ => spawn_direct(a, ctx).map_err(SpawnError::Start),
  };
  let s = match started {
    Ok(s) => s,
    Err(e) => return spawn_failed(e),
  };
  let (pid, shim_pid) = match s.watch {
    Watch::Direct { pid, .. } => (pid, None),
    Watch::Shim { cmd, shim, .. } => (cmd, Some(shim)),
  };
  // no thread (the sandbox is at its pids limit): the command cannot be supervised, so it must
  // not run
  let cannot = |e: std::io::Error| {
    kill(-pid, libc::SIGKILL);
    kill(pid, libc::SIGKILL);
    match shim_pid {
      Some(shim) => kill(shim, libc::SIGKILL),
      None => ctx.reaper.forget(pid),
    }
    fail(126, format!("{argv0}: cannot start a thread to supervise it: {}\n", errno_text(&e)));
  };
  let stdin_tx = match s.stdin {
    None => None,
    Some(pipe) => {
      let mut pipe = File::from(pipe);
      let (tx, rx) = mpsc::channel::<Vec<u8>>();
      let fed = crate::thread(move || {
        for chunk in rx {
          if pipe.write_all(&chunk).is_err() {
            break; // the process closed its stdin; the rest is dropped
          }
        }
      });
      if let Err(e) = fed {
        return cannot(e);
      }
      Some(tx)
    }
  };
  // the supervisor starts once `Started` is out (its frames must come after it)
  let (go, wait_go) = mpsc::sync_channel::<()>(1);
  let (o, procs, reaper, pool) = (out.clone(), ctx.procs.clone(), ctx.reaper.clone(), ctx.pool.clone());
  let (watch, stdout, stderr) = (s.watch, s.stdout, s.stderr);
  let supervisor = crate::thread(move || {
    if wait_go.recv().is_err() {
      return;
    }
    let exit = supervise(id, watch, stdout, stderr, deadline, max_output, &reaper, pool.as_deref(), &o);
    procs.lock().unwrap().remove(&id);
    reply(&o, id, &exit);
  });
  if let Err(e) = supervisor {
    return cannot(e);
  }
  // (the reader thread is the only one that inserts: a Signal for this id, which comes after
  // this request on the same thread, cannot miss it)
  ctx.procs.lock().unwrap().insert(id, Proc { pid, stdin: stdin_tx, background });
  reply(out, id, &Reply::Started { pid: pid as u32 });
  let _ = go.send(());
}

/// A started process: the guest's ends of its stdio, and how to watch it.
struct Spawned {
  stdin: Option<OwnedFd>,
  stdout: OwnedFd,
  stderr: OwnedFd,
  watch: Watch,
}

/// A process the guest starts itself, in its own session and process group (so the whole group
/// can be signalled and killed at once, and KillAll can tell it from the image's own processes).
fn spawn_direct(a: SpawnArgs, ctx: &Ctx) -> std::io::Result<Spawned> {
  let mut cmd = Command::new(&a.argv[0]);
  cmd
    .args(&a.argv[1..])
    .current_dir(&a.cwd)
    .envs(a.env)
    .stdin(if a.stdin { Stdio::piped() } else { Stdio::null() })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
  unsafe {
    cmd.pre_exec(|| {
      if libc::setsid() < 0 {
        return Err(std::io::Error::last_os_error());
      }
      Ok(())
    });
  }
  // under the reaper's lock: it cannot be reaped before it is watched and has its pidfd
  let mut r = ctx.reaper.lock();
  let mut child = cmd.spawn()?;
  let pid = child.id() as i32;
  r.watch(pid);
  let pidfd = pidfd_open(pid);
  drop(r);
  Ok(Spawned {
    stdin: child.stdin.take().map(OwnedFd::from),
    stdout: child.stdout.take().unwrap().into(),
    stderr: child.stderr.take().unwrap().into(),
    watch: Watch::Direct { pid, pidfd, kill_group: !a.background },
  })
}

/// Why a spawn failed.
enum SpawnError {
  /// starting the program (exec, fork, ...)
  Start(std::io::Error),
  /// its working directory
  Cwd(std::io::Error),
}

impl From<std::io::Error> for SpawnError {
  fn from(e: std::io::Error) -> Self {
    SpawnError::Start(e)
  }
}

/// Wait until `fd` is readable (or ends), nudging the shim with SIGCONT (a hostile `kill -STOP`)
/// while it is silent; false when nothing came until `end`.
fn wait_nudging(fd: RawFd, shim: i32, end: Instant) -> bool {
  loop {
    if poll_in(fd, SHIM_NUDGE) {
      return true;
    }
    if Instant::now() >= end {
      return false;
    }
    kill(shim, libc::SIGCONT);
  }
}

/// A foreground command, run by an idle shim of the pool (or a fresh one when none is ready).
fn spawn_shimmed(a: SpawnArgs, pool: &Pool, ctx: &Ctx) -> Result<Spawned, SpawnError> {
  let (stdin_r, stdin_w) = if a.stdin {
    let (r, w) = pipe_cloexec()?;
    (r, Some(w))
  } else {
    (OwnedFd::from(File::open("/dev/null")?), None)
  };
  let (stdout_r, stdout_w) = pipe_cloexec()?;
  let (stderr_r, stderr_w) = pipe_cloexec()?;
  let job = Job { argv: a.argv, env: a.env, cwd: a.cwd };
  // an idle shim may be dead (KillAll, or killed by the sandbox): then the next one
  for attempt in 0..3 {
    let shim = match pool.take() {
      Some(s) if attempt < 2 => s,
      _ => shim::start(&ctx.reaper)?,
    };
    // only the command's process will hold its write end: it ends at the exec, or says why not
    let (exec_r, exec_w) = pipe_cloexec()?;
    // (undo a SIGSTOP from the sandbox)
    kill(shim.pid, libc::SIGCONT);
    let sent = shim::send_job(shim.sock.as_raw_fd(), &job, [stdin_r.as_raw_fd(), stdout_w.as_raw_fd(), stderr_w.as_raw_fd(), exec_w.as_raw_fd()]);
    drop(exec_w);
    if let Err(e) = sent {
      kill(shim.pid, libc::SIGKILL);
      match e.raw_os_error() {
        // the shim is gone
        Some(libc::EPIPE | libc::ECONNRESET | libc::ECONNREFUSED | libc::ENOTCONN) => continue,
        _ => return Err(e.into()),
      }
    }
    if !wait_nudging(exec_r.as_raw_fd(), shim.pid, Instant::now() + SHIM_START) {
      kill(shim.pid, libc::SIGKILL);
      return Err(std::io::Error::other("could not be started (the guest's shim did not answer)").into());
    }
    let mut failure = [0u8; 8];
    let n = unsafe { libc::read(exec_r.as_raw_fd(), failure.as_mut_ptr() as *mut libc::c_void, failure.len()) };
    // `Forked` (or `Failed`) was sent before the pipe could end
    let record = shim::read_record(shim.sock.as_raw_fd());
    if n == failure.len() as isize {
      // the chdir or the exec failed (the shim reaps the process and exits)
      let stage = u32::from_le_bytes(failure[..4].try_into().unwrap());
      let e = std::io::Error::from_raw_os_error(i32::from_le_bytes(failure[4..].try_into().unwrap()));
      return Err(if stage == shim::STAGE_CWD { SpawnError::Cwd(e) } else { SpawnError::Start(e) });
    }
    return match record {
      // the exec worked (or the shim died after the fork, most likely killed by the command
      // itself: then the supervisor finds it gone and kills the command)
      ReadRecord::Record(Record::Forked(cmd)) => {
        Ok(Spawned {
          stdin: stdin_w,
          stdout: stdout_r,
          stderr: stderr_r,
          watch: Watch::Shim { cmd, cmd_pidfd: pidfd_open(cmd), shim: shim.pid, status: shim.sock },
        })
      }
      ReadRecord::Record(Record::Failed(errno)) => Err(std::io::Error::from_raw_os_error(errno).into()),
      _ => {
        // it died before it forked: nothing runs, the job can go to another shim
        kill(shim.pid, libc::SIGKILL);
        continue;
      }
    };
  }
  Err(std::io::Error::other("could not be started (no shim took the job)").into())
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

/// The shim of a foreground command died or stopped answering: kill the command's group, what
/// the (stopped) shim still holds, the shim, and what is left of the command's session.
fn abandon_shim(cmd: i32, cmd_pidfd: &Option<OwnedFd>, shim: i32, reaper: &Reaper, why: &str) {
  log(&format!("the shim of process {cmd} {why}; cleaning up without it"));
  kill(-cmd, libc::SIGKILL);
  if let Some(fd) = cmd_pidfd {
    pidfd_kill(fd);
  }
  {
    // while the shim is not reaped its pid cannot name another process
    let r = reaper.lock();
    if r.has_shim(shim) {
      shim::freeze_and_kill(shim);
      kill(shim, libc::SIGKILL);
    }
  }
  // what escaped a dead shim was reparented away; its session still names it (unless it made
  // its own: that much only a live shim can catch)
  for (pid, st) in proc_stats() {
    if st.session == cmd {
      kill(pid, libc::SIGKILL);
    }
  }
}

fn gone(pid: i32) -> bool {
  read_stat(pid).map(|s| s.state == "Z").unwrap_or(true)
}

/// Pump a process's output until it exited and its pipes closed; enforce the timeout. A shim
/// reports the command's exit after killing what it left behind (and goes back to the pool if it
/// can take another job); a direct foreground process's group is killed when it exits.
#[allow(clippy::too_many_arguments)]
fn supervise(
  id: u32,
  watch: Watch,
  stdout: OwnedFd,
  stderr: OwnedFd,
  deadline: Option<Instant>,
  cap: u64,
  reaper: &Reaper,
  pool: Option<&Pool>,
  out: &Out,
) -> Reply {
  let fds = [stdout.as_raw_fd(), stderr.as_raw_fd()];
  set_nonblocking(fds[0]);
  set_nonblocking(fds[1]);
  let mut open = [true, true];
  let mut sent = [0u64, 0u64];
  let mut dropped = [0u64, 0u64];
  // (raw wait status, peak RSS) once known
  let mut done: Option<(i32, Option<u64>)> = None;
  let mut exited_at: Option<Instant> = None;
  let mut timed_out = false;
  // shim only: the command is gone (or was killed at its timeout) and the shim's report is due
  let mut cmd_exited = false;
  // shim only: it reported cleanly and takes another job
  let mut give_back = false;
  let mut grace_from: Option<Instant> = None;
  let mut last_nudge = Instant::now();
  let mut buf = vec![0u8; CHUNK];
  loop {
    if let Some(t) = exited_at {
      if !open[0] && !open[1] || t.elapsed() >= DRAIN_AFTER_EXIT {
        break;
      }
    }
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(4);
    let mut slot = [usize::MAX; 2];
    for i in 0..2 {
      if open[i] {
        slot[i] = pfds.len();
        pfds.push(libc::pollfd { fd: fds[i], events: libc::POLLIN, revents: 0 });
      }
    }
    let mut wait_ms: i64 = -1;
    let mut at_most = |ms: i64| wait_ms = if wait_ms < 0 { ms.max(0) } else { wait_ms.min(ms.max(0)) };
    let mut cmd_slot = usize::MAX;
    if done.is_none() {
      match &watch {
        Watch::Direct { pidfd, .. } => {
          if let Some(fd) = pidfd {
            pfds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
          } else {
            // without a pidfd (old kernel, seccomp) the exit is noticed by polling every 20 ms
            at_most(20);
          }
        }
        Watch::Shim { cmd_pidfd, status, .. } => {
          pfds.push(libc::pollfd { fd: status.as_raw_fd(), events: libc::POLLIN, revents: 0 });
          if !cmd_exited {
            if let Some(fd) = cmd_pidfd {
              cmd_slot = pfds.len();
              pfds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            } else {
              at_most(100);
            }
          }
          if let Some(g) = grace_from {
            at_most(SHIM_NUDGE.saturating_sub(last_nudge.elapsed()).as_millis() as i64 + 1);
            at_most(SHIM_GRACE.saturating_sub(g.elapsed()).as_millis() as i64 + 1);
          }
        }
      }
      if let (Some(d), false) = (deadline, timed_out) {
        at_most(d.saturating_duration_since(Instant::now()).as_millis().min(i64::MAX as u128) as i64);
      }
    }
    if let Some(t) = exited_at {
      at_most(DRAIN_AFTER_EXIT.saturating_sub(t.elapsed()).as_millis() as i64 + 1);
    }
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, wait_ms.clamp(-1, i32::MAX as i64) as i32) };
    if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
      log("poll failed");
      break;
    }
    for i in 0..2 {
      if !open[i] || (rc > 0 && pfds[slot[i]].revents == 0) {
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
    if done.is_some() {
      continue;
    }
    let past_deadline = !timed_out && deadline.map(|d| Instant::now() >= d).unwrap_or(false);
    match &watch {
      Watch::Direct { pid, kill_group, .. } => {
        if let Some(st) = reaper.take(*pid) {
          // wait4's rusage gives the peak memory (runCode's memoryUsedMB)
          done = Some((st.raw, Some(st.max_rss_kb)));
          exited_at = Some(Instant::now());
          if *kill_group {
            // a foreground command owns its process group: nothing it started outlives it
            kill(-pid, libc::SIGKILL);
          }
        } else if past_deadline {
          timed_out = true;
          kill(-pid, libc::SIGKILL);
          kill(*pid, libc::SIGKILL);
        }
      }
      Watch::Shim { cmd, cmd_pidfd, shim, status } => {
        loop {
          match shim::read_record(status.as_raw_fd()) {
            ReadRecord::Record(Record::Exit { status: Status { raw, max_rss_kb }, reusable }) => {
              done = Some((raw, Some(max_rss_kb)));
              give_back = reusable;
              break;
            }
            ReadRecord::Record(_) => continue,
            ReadRecord::Again => break,
            ReadRecord::End => {
              abandon_shim(*cmd, cmd_pidfd, *shim, reaper, "died");
              done = Some((libc::SIGKILL, None));
              break;
            }
          }
        }
        if done.is_none() {
          let now = Instant::now();
          if !cmd_exited && ((cmd_slot != usize::MAX && rc > 0 && pfds[cmd_slot].revents != 0) || (cmd_pidfd.is_none() && gone(*cmd))) {
            cmd_exited = true;
            grace_from.get_or_insert(now);
          }
          if past_deadline {
            timed_out = true;
            kill(-cmd, libc::SIGKILL);
            if let Some(fd) = cmd_pidfd {
              pidfd_kill(fd);
            }
            grace_from.get_or_insert(now);
          }
          if let Some(g) = grace_from {
            if g.elapsed() >= SHIM_GRACE {
              abandon_shim(*cmd, cmd_pidfd, *shim, reaper, "did not report within the grace period");
              done = Some((libc::SIGKILL, None));
            } else if last_nudge.elapsed() >= SHIM_NUDGE {
              kill(*shim, libc::SIGCONT);
              last_nudge = now;
            }
          }
        }
        if done.is_some() {
          exited_at = Some(Instant::now());
        }
      }
    }
  }
  if let (true, Some(pool), Watch::Shim { shim, status, .. }) = (give_back, pool, watch) {
    pool.give_back(IdleShim { pid: shim, sock: status });
  }
  let (st, max_rss_kb) = done.unwrap_or((0, None));
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
/// command; the guest itself when it is PID 1), the guest, zombies, and the pids in `hidden`
/// (the shims).
pub fn processes(tracked: &HashMap<i32, u32>, hidden: &HashSet<i32>) -> Vec<ProcessEntry> {
  let me = std::process::id() as i32;
  let init_session = read_stat(1).map(|s| s.session).unwrap_or(1);
  let mut out = Vec::new();
  for (pid, st) in proc_stats() {
    if pid == 1 || pid == me || st.session == init_session || st.state == "Z" || hidden.contains(&pid) {
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

/// SIGKILL everything `Processes` would list, shims included; returns how many processes.
pub fn kill_all() -> u32 {
  let none = HashSet::new();
  let mut killed: HashSet<u32> = HashSet::new();
  // stop everything first (a stopped process cannot fork), then kill; twice for stragglers
  for sig in [libc::SIGSTOP, libc::SIGKILL, libc::SIGKILL] {
    for p in processes(&HashMap::new(), &none) {
      kill(p.pid as i32, sig);
      if sig == libc::SIGKILL {
        killed.insert(p.pid);
      }
    }
  }
  killed.len() as u32
}
