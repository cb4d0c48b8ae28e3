//! The shim: the guest binary re-executed as `agentic-sandbox-guest --shim <guest pid>` (its
//! stdin a socket to the guest), between the guest and each foreground command.
//!
//! It is a child subreaper: whatever the command leaves behind (a `setsid` daemon, a double-forked
//! orphan, a fork bomb whose leader exited) stays its descendant. When the command has exited, the
//! shim freezes (SIGSTOP) its whole remaining tree, kills it (SIGKILL), reaps it, and only then
//! reports the command's status to the guest, so a foreground `execute` owns everything it started.
//!
//! **Pre-spawned and reused.** Executing a fresh binary per spawn costs about a millisecond of
//! latency and half a millisecond of CPU, more than the whole budget of an `echo`, so the guest
//! keeps idle shims (`Pool`, filled by a thread of its own) that wait for jobs on a socketpair
//! (SOCK_SEQPACKET): a job is the command's argv, env overrides and cwd (inline, or in a memfd
//! when large) with its stdin, stdout, stderr and exec-status pipe attached (SCM_RIGHTS). A shim
//! runs one job at a time; after a clean `Exit` (its tree is empty again) it takes the next one,
//! unless the command changed what the next command would inherit from the shim and a process
//! of the same uid can change without ptrace rights (rlimits, nice, CPU affinity,
//! oom_score_adj): then it exits.
//!
//! The shim answers on the same socket with fixed 16-byte records: `Forked(pid)` (or
//! `Failed(errno)` when it could not fork), then `Exit(status, peak RSS)`. The command's process
//! waits (on a pipe) until `Forked` is on its way, so the command cannot kill the shim before the
//! guest can know its pid. Whether the exec worked the guest learns itself, from the job's fourth
//! fd: the write end of a close-on-exec pipe that only the command's process holds, which ends at
//! the exec or carries the errno of the chdir or exec that failed (the shim does not wait for the
//! exec: every handoff between processes costs a scheduler slice on a busy machine). If the
//! socket ends before `Forked`, no command was started (the job can go to another shim); if it
//! ends later without an `Exit`, the shim died (a hostile command can `kill -9 $PPID`) and the
//! guest cleans up itself (see `process.rs`).
//!
//! The shim sets PR_SET_PDEATHSIG (it dies with the guest; it is spawned from a thread that
//! lives as long as the guest, since the signal follows the parent *thread*), PR_SET_DUMPABLE 0
//! (the command, same uid, cannot open its /proc files or ptrace it), RLIMIT_CORE 0 (restored
//! for the command), and starts the command in its own session (so `Signal` reaches the
//! command's process group and not the shim) with an empty signal mask and default dispositions,
//! holding only fds 0, 1 and 2.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::reaper::{wait4, Reaper, Status};

/// argv[1] of a shim.
pub const MARKER: &str = "--shim";
/// argv[0] of a shim (what `ps` shows).
const ARGV0: &str = "agentic-sandbox-guest";
/// Idle shims the guest keeps ready at least (each holds a pid of the sandbox's pids limit)...
const MIN_IDLE: usize = 1;
/// ...and at most (shims that finished a job come back until there are this many).
const MAX_IDLE: usize = 2;
/// Jobs up to this size travel in the message itself; larger ones in a memfd.
const INLINE_MAX: usize = 32 * 1024;

// ------------------------------------------------------------------ records (shim → guest)

/// One record on the shim's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
  /// the command's process exists (it execs once this record is on its way)
  Forked(i32),
  /// the command's process could not be made (errno of the fork)
  Failed(i32),
  /// the command exited and everything it left behind is gone; the shim takes another job if
  /// `reusable`
  Exit { status: Status, reusable: bool },
}

pub const RECORD_LEN: usize = 16;

impl Record {
  pub fn encode(self) -> [u8; RECORD_LEN] {
    let (tag, flag, a, b): (u8, bool, i32, u64) = match self {
      Record::Forked(pid) => (1, false, pid, 0),
      Record::Failed(errno) => (2, false, errno, 0),
      Record::Exit { status, reusable } => (3, reusable, status.raw, status.max_rss_kb),
    };
    let mut r = [0u8; RECORD_LEN];
    r[0] = tag;
    r[1] = flag as u8;
    r[4..8].copy_from_slice(&a.to_le_bytes());
    r[8..16].copy_from_slice(&b.to_le_bytes());
    r
  }

  pub fn decode(r: &[u8; RECORD_LEN]) -> Option<Record> {
    let a = i32::from_le_bytes([r[4], r[5], r[6], r[7]]);
    let b = u64::from_le_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]);
    Some(match r[0] {
      1 => Record::Forked(a),
      2 => Record::Failed(a),
      3 => Record::Exit { status: Status { raw: a, max_rss_kb: b }, reusable: r[1] == 1 },
      _ => return None,
    })
  }
}

pub enum ReadRecord {
  Record(Record),
  /// nothing to read yet (non-blocking socket)
  Again,
  /// the socket ended (or carried garbage): the shim is gone
  End,
}

/// Read one record from a shim's socket.
pub fn read_record(fd: RawFd) -> ReadRecord {
  let mut buf = [0u8; RECORD_LEN];
  loop {
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, RECORD_LEN, libc::MSG_DONTWAIT) };
    if n < 0 {
      match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINTR) => continue,
        Some(libc::EAGAIN) => return ReadRecord::Again,
        _ => return ReadRecord::End,
      }
    }
    if n as usize != RECORD_LEN {
      return ReadRecord::End;
    }
    return match Record::decode(&buf) {
      Some(r) => ReadRecord::Record(r),
      None => ReadRecord::End,
    };
  }
}

fn send_record(fd: RawFd, r: Record) -> bool {
  let b = r.encode();
  loop {
    let n = unsafe { libc::send(fd, b.as_ptr() as *const libc::c_void, b.len(), libc::MSG_NOSIGNAL) };
    if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
      continue;
    }
    return n == b.len() as isize;
  }
}

// ------------------------------------------------------------------ jobs (guest → shim)

/// What a shim is to run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Job {
  pub argv: Vec<String>,
  /// applied on top of the environment the shim inherited from the guest
  pub env: Vec<(String, String)>,
  pub cwd: String,
}

impl Job {
  fn encode(&self) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, s: &str) {
      out.extend_from_slice(&(s.len() as u32).to_le_bytes());
      out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(self.argv.len() as u32).to_le_bytes());
    self.argv.iter().for_each(|a| put(&mut out, a));
    out.extend_from_slice(&(self.env.len() as u32).to_le_bytes());
    for (k, v) in &self.env {
      put(&mut out, k);
      put(&mut out, v);
    }
    put(&mut out, &self.cwd);
    out
  }

  fn decode(mut b: &[u8]) -> Option<Job> {
    fn u32_(b: &mut &[u8]) -> Option<usize> {
      let (h, t) = b.split_at_checked(4)?;
      *b = t;
      Some(u32::from_le_bytes(h.try_into().ok()?) as usize)
    }
    fn str_(b: &mut &[u8]) -> Option<String> {
      let n = u32_(b)?;
      let (h, t) = b.split_at_checked(n)?;
      *b = t;
      String::from_utf8(h.to_vec()).ok()
    }
    let mut job = Job::default();
    for _ in 0..u32_(&mut b)? {
      job.argv.push(str_(&mut b)?);
    }
    for _ in 0..u32_(&mut b)? {
      job.env.push((str_(&mut b)?, str_(&mut b)?));
    }
    job.cwd = str_(&mut b)?;
    (b.is_empty() && !job.argv.is_empty()).then_some(job)
  }
}

fn sendmsg_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
  unsafe {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let space = libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    let c = libc::CMSG_FIRSTHDR(&msg);
    (*c).cmsg_level = libc::SOL_SOCKET;
    (*c).cmsg_type = libc::SCM_RIGHTS;
    (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
    std::ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(c), std::mem::size_of_val(fds));
    loop {
      let n = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
      if n >= 0 {
        return Ok(());
      }
      let e = std::io::Error::last_os_error();
      if e.raw_os_error() != Some(libc::EINTR) {
        return Err(e);
      }
    }
  }
}

/// Receive one message with up to 5 fds (CLOEXEC); `None` at the end of the stream.
fn recvmsg_fds(sock: RawFd, buf: &mut [u8]) -> Option<(usize, Vec<OwnedFd>)> {
  unsafe {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let space = libc::CMSG_SPACE(5 * std::mem::size_of::<RawFd>() as u32) as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    let n = loop {
      let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
      if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
        continue;
      }
      break n;
    };
    let mut fds = Vec::new();
    let mut c = libc::CMSG_FIRSTHDR(&msg);
    while !c.is_null() {
      if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
        let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
        let data = libc::CMSG_DATA(c) as *const RawFd;
        for i in 0..count {
          fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
        }
      }
      c = libc::CMSG_NXTHDR(&msg, c);
    }
    if n <= 0 || msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
      return None;
    }
    Some((n as usize, fds))
  }
}

/// Hand `job` to an idle shim, with the command's stdin, stdout, stderr and the write end of its
/// exec-status pipe. Never blocks.
pub fn send_job(sock: RawFd, job: &Job, fds: [RawFd; 4]) -> std::io::Result<()> {
  let data = job.encode();
  if data.len() <= INLINE_MAX {
    let mut msg = vec![b'I'];
    msg.extend_from_slice(&data);
    return sendmsg_fds(sock, &msg, &fds);
  }
  // too big for one message (a long script in argv): in a memfd
  let memfd = unsafe { libc::memfd_create(c"agentic-sandbox-job".as_ptr(), libc::MFD_CLOEXEC) };
  if memfd < 0 {
    return Err(std::io::Error::last_os_error());
  }
  let memfd = unsafe { OwnedFd::from_raw_fd(memfd) };
  std::io::Write::write_all(&mut fs::File::from(memfd.try_clone()?), &data)?;
  let mut msg = vec![b'M'];
  msg.extend_from_slice(&(data.len() as u64).to_le_bytes());
  sendmsg_fds(sock, &msg, &[fds[0], fds[1], fds[2], fds[3], memfd.as_raw_fd()])
}

/// Wait for a job; `None` when the guest is gone or sent something else.
fn recv_job(sock: RawFd) -> Option<(Job, Vec<OwnedFd>)> {
  let mut buf = vec![0u8; INLINE_MAX + 1];
  let (n, mut fds) = recvmsg_fds(sock, &mut buf)?;
  let job = match (buf[0], n, fds.len()) {
    (b'I', _, 4) => Job::decode(&buf[1..n])?,
    (b'M', 9, 5) => {
      let len = u64::from_le_bytes(buf[1..9].try_into().ok()?) as usize;
      let memfd = fds.pop()?;
      let mut data = vec![0u8; len];
      let got = unsafe { libc::pread(memfd.as_raw_fd(), data.as_mut_ptr() as *mut libc::c_void, len, 0) };
      if got != len as isize {
        return None;
      }
      Job::decode(&data)?
    }
    _ => return None,
  };
  Some((job, fds))
}

// ------------------------------------------------------------------ the guest's side

/// An idle shim waiting for its job.
pub struct IdleShim {
  pub pid: i32,
  pub sock: OwnedFd,
}

/// Start an idle shim. Call it from a thread that lives as long as the guest (PDEATHSIG).
pub fn start(reaper: &Reaper) -> std::io::Result<IdleShim> {
  let mut sv = [0 as RawFd; 2];
  if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) } < 0 {
    return Err(std::io::Error::last_os_error());
  }
  let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
  let mut cmd = Command::new("/proc/self/exe");
  // its socket is its stdin: no other fd is inherited, and without a pre_exec closure (or a
  // current_dir: the statically linked std then falls back to fork) std uses posix_spawn
  // (vfork), which costs the guest far less than a fork
  cmd
    .arg0(ARGV0)
    .arg(MARKER)
    .arg(std::process::id().to_string())
    .stdin(Stdio::from(theirs))
    .stdout(Stdio::null())
    .stderr(Stdio::null());
  // under the reaper's lock: it cannot be reaped before it is known as a shim
  let mut r = reaper.lock();
  let child = cmd.spawn()?;
  let pid = child.id() as i32;
  r.add_shim(pid);
  Ok(IdleShim { pid, sock: ours })
}

/// The idle shims, refilled by a thread of their own.
pub struct Pool {
  idle: Mutex<Vec<IdleShim>>,
  wanted: Condvar,
  /// no more idle shims (a persistent sandbox's guest whose host went away)
  retired: std::sync::atomic::AtomicBool,
}

impl Pool {
  pub fn start(reaper: Arc<Reaper>) -> Arc<Pool> {
    let pool = Arc::new(Pool { idle: Mutex::new(Vec::new()), wanted: Condvar::new(), retired: Default::default() });
    let p = pool.clone();
    // this thread never ends (the shims' PDEATHSIG follows it)
    std::thread::spawn(move || loop {
      {
        let mut idle = p.idle.lock().unwrap();
        while idle.len() >= MIN_IDLE || p.retired.load(std::sync::atomic::Ordering::Relaxed) {
          idle = p.wanted.wait(idle).unwrap();
        }
      }
      match start(&reaper) {
        Ok(s) => p.idle.lock().unwrap().push(s),
        // at the pids limit, say: try again later (a spawn starts its own shim meanwhile)
        Err(_) => std::thread::sleep(Duration::from_millis(200)),
      }
    });
    pool
  }

  /// An idle shim, if one is ready (the pool thread starts another one when none is left).
  pub fn take(&self) -> Option<IdleShim> {
    let s = self.idle.lock().unwrap().pop();
    self.wanted.notify_one();
    s
  }

  /// A shim that finished its job cleanly and said it can take another one (else it exits when
  /// its socket closes).
  pub fn give_back(&self, shim: IdleShim) {
    let mut idle = self.idle.lock().unwrap();
    if idle.len() < MAX_IDLE && !self.retired.load(std::sync::atomic::Ordering::Relaxed) {
      idle.push(shim);
    }
  }
}

impl Pool {
  /// Keep no idle shims any more: those waiting exit (their sockets close), none are started.
  pub fn retire(&self) {
    self.retired.store(true, std::sync::atomic::Ordering::Relaxed);
    self.idle.lock().unwrap().clear();
  }
}

// ------------------------------------------------------------------ the shim's side

/// The shim's `main`; never returns.
pub fn main(args: Vec<OsString>) -> ! {
  let code = run(args);
  unsafe { libc::_exit(code) }
}

fn run(args: Vec<OsString>) -> i32 {
  // agentic-sandbox-guest --shim <guest pid>, with the socket as stdin
  let Some(guest) = args.get(2).and_then(|s| s.to_str()).and_then(|s| s.parse::<i32>().ok()) else { return 2 };
  let old_core = unsafe {
    // die with the guest; if it is already gone, do nothing at all
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
    if libc::getppid() != guest {
      return 1;
    }
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    libc::setsid();
    let mut old: libc::rlimit = std::mem::zeroed();
    libc::getrlimit(libc::RLIMIT_CORE, &mut old);
    let none = libc::rlimit { rlim_cur: 0, rlim_max: old.rlim_max };
    libc::setrlimit(libc::RLIMIT_CORE, &none);
    old
  };
  crate::cloexec_from(3);
  // the socket moves off fd 0, which the command's stdin takes
  let sock = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
  if sock < 0 {
    return 1;
  }
  let inherited = Inherited::now();
  // one job after the other, as long as the guest hands them out and nothing tainted us
  loop {
    let Some((job, fds)) = recv_job(sock) else { return 0 };
    if !run_job(sock, job, fds, &old_core, &inherited) {
      return 0;
    }
  }
}

/// What a command inherits from its shim and a process of the same uid can change from outside
/// without ptrace rights (prlimit, setpriority, sched_setaffinity, /proc/<pid>/oom_score_adj).
#[derive(PartialEq)]
struct Inherited {
  limits: Vec<(u64, u64)>,
  nice: i32,
  affinity: Vec<u8>,
  oom_score_adj: Option<String>,
}

impl Inherited {
  fn now() -> Inherited {
    unsafe {
      let limits = [
        libc::RLIMIT_CPU,
        libc::RLIMIT_FSIZE,
        libc::RLIMIT_DATA,
        libc::RLIMIT_STACK,
        libc::RLIMIT_CORE,
        libc::RLIMIT_RSS,
        libc::RLIMIT_NPROC,
        libc::RLIMIT_NOFILE,
        libc::RLIMIT_MEMLOCK,
        libc::RLIMIT_AS,
        libc::RLIMIT_LOCKS,
        libc::RLIMIT_SIGPENDING,
        libc::RLIMIT_MSGQUEUE,
        libc::RLIMIT_NICE,
        libc::RLIMIT_RTPRIO,
        libc::RLIMIT_RTTIME,
      ]
      .into_iter()
      .map(|r| {
        let mut l: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(r, &mut l);
        (l.rlim_cur, l.rlim_max)
      })
      .collect();
      *libc::__errno_location() = 0;
      let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
      let mut set: libc::cpu_set_t = std::mem::zeroed();
      libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
      let affinity = std::slice::from_raw_parts(&set as *const libc::cpu_set_t as *const u8, std::mem::size_of::<libc::cpu_set_t>()).to_vec();
      Inherited { limits, nice, affinity, oom_score_adj: fs::read_to_string("/proc/self/oom_score_adj").ok() }
    }
  }
}

/// Run one job: the command with the stdio and exec-status pipe that came with it. True when
/// it ended cleanly and the shim may take another job.
fn run_job(sock: RawFd, job: Job, mut fds: Vec<OwnedFd>, old_core: &libc::rlimit, inherited: &Inherited) -> bool {
  let exec_status = fds.pop().expect("four fds");
  // the command's stdio becomes ours, to be inherited
  for (i, fd) in fds.iter().enumerate() {
    unsafe { libc::dup2(fd.as_raw_fd(), i as RawFd) };
  }
  drop(fds);
  let forked = Prepared::new(&job).and_then(|p| p.fork(old_core, exec_status.as_raw_fd()));
  // let go of the command's stdio: its pipes end when the command and its leftovers are gone
  unsafe {
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
    for i in 0..3 {
      if null >= 0 {
        libc::dup2(null, i);
      } else {
        libc::close(i);
      }
    }
    if null > 2 {
      libc::close(null);
    }
  }
  let (pid, go) = match forked {
    Ok(f) => f,
    Err(errno) => {
      // (before the exec-status pipe ends: the guest reads this record when it does)
      send_record(sock, Record::Failed(errno));
      return false;
    }
  };
  // from now on only the command's process holds the exec-status pipe
  drop(exec_status);
  // the guest can know the pid before the command runs: if we die from here on (the command can
  // kill us), the guest can still kill it
  if !send_record(sock, Record::Forked(pid)) {
    unsafe { libc::kill(pid, libc::SIGKILL) };
    return false;
  }
  unsafe { libc::write(go.as_raw_fd(), [1u8].as_ptr() as *const libc::c_void, 1) };
  drop(go);
  // wait for the command, reaping the orphans that come to us meanwhile
  let st = loop {
    let (r, st) = wait4(-1, 0);
    if r == pid {
      break st;
    }
    if r < 0 {
      break Status { raw: 0, max_rss_kb: 0 };
    }
  };
  kill_and_reap_descendants();
  // taken again only if the command could not change what the next one would inherit from us
  let reusable = *inherited == Inherited::now();
  send_record(sock, Record::Exit { status: st, reusable }) && reusable
}

/// What failed in the command's process before or at its exec, as written (with the errno) to
/// the exec-status pipe.
pub const STAGE_CWD: u32 = 1;
pub const STAGE_EXEC: u32 = 2;

/// A job made ready for `fork` (everything allocated before it).
struct Prepared {
  argv: Vec<CString>,
  env: Vec<(CString, CString)>,
  cwd: CString,
}

impl Prepared {
  fn new(job: &Job) -> Result<Prepared, i32> {
    let c = |s: &str| CString::new(s).map_err(|_| libc::EINVAL);
    Ok(Prepared {
      argv: job.argv.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
      env: job.env.iter().map(|(k, v)| Ok((c(k)?, c(v)?))).collect::<Result<_, i32>>()?,
      cwd: c(&job.cwd)?,
    })
  }

  /// Fork the command's process: in its own session, with an empty signal mask, default
  /// dispositions, the original RLIMIT_CORE, its env and cwd; it waits until a byte arrives on
  /// `go` (and exits if `go` closes first), then execs, searching the PATH of its own env. A
  /// failure is written to `exec_status` as (stage, errno). Returns the pid and `go`.
  /// (The shim is single-threaded: the child may allocate.)
  fn fork(&self, core: &libc::rlimit, exec_status: RawFd) -> Result<(i32, OwnedFd), i32> {
    let pipe = || {
      let mut fds = [0 as RawFd; 2];
      if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO));
      }
      Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    };
    let (go_r, go_w) = pipe()?;
    let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    match unsafe { libc::fork() } {
      -1 => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)),
      0 => unsafe {
        let fail = |stage: u32| -> ! {
          let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
          let mut m = [0u8; 8];
          m[..4].copy_from_slice(&stage.to_le_bytes());
          m[4..].copy_from_slice(&errno.to_le_bytes());
          libc::write(exec_status, m.as_ptr() as *const libc::c_void, m.len());
          libc::_exit(127)
        };
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::setrlimit(libc::RLIMIT_CORE, core);
        libc::setsid();
        for (k, v) in &self.env {
          libc::setenv(k.as_ptr(), v.as_ptr(), 1);
        }
        if libc::chdir(self.cwd.as_ptr()) < 0 {
          fail(STAGE_CWD);
        }
        let mut b = 0u8;
        if libc::read(go_r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1) != 1 {
          libc::_exit(127);
        }
        libc::execvp(argv[0], argv.as_ptr());
        fail(STAGE_EXEC)
      },
      pid => Ok((pid, go_w)),
    }
  }
}


/// Kill every descendant of this process and reap them; returns when it has no children left.
/// (As a subreaper, nothing that descends from us can leave the tree except by dying: orphans
/// are reparented to us.)
fn kill_and_reap_descendants() {
  let me = unsafe { libc::getpid() };
  loop {
    loop {
      match wait4(-1, libc::WNOHANG).0 {
        0 => break,
        r if r > 0 => continue,
        _ => return, // ECHILD: nothing left
      }
    }
    if freeze_and_kill(me) == 0 {
      // a child we could not see in /proc yet
      std::thread::sleep(Duration::from_millis(5));
      continue;
    }
    // at least one of our children was killed: wait for it
    wait4(-1, 0);
  }
}

/// Every process and its parent, from /proc.
fn proc_table() -> Vec<(i32, i32)> {
  let mut out = Vec::new();
  let Ok(dir) = fs::read_dir("/proc") else { return out };
  for d in dir.flatten() {
    let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
    let Some(close) = s.rfind(')') else { continue };
    if let Some(ppid) = s[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
      out.push((pid, ppid));
    }
  }
  out
}

/// SIGSTOP every descendant of `root` (again and again until no new one shows up: a stopped
/// process cannot fork, so a fork bomb cannot outrun this), then SIGKILL them all. Returns how
/// many were killed. `root` itself is left alone.
pub fn freeze_and_kill(root: i32) -> usize {
  let mut frozen: HashSet<i32> = HashSet::new();
  let mut order: Vec<i32> = Vec::new();
  loop {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, ppid) in proc_table() {
      children.entry(ppid).or_default().push(pid);
    }
    let mut fresh = Vec::new();
    let mut seen: HashSet<i32> = HashSet::from([root]);
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
      for &c in children.get(&p).map(|v| v.as_slice()).unwrap_or(&[]) {
        // (a set, not trust in /proc: the table is not one snapshot)
        if seen.insert(c) {
          if !frozen.contains(&c) {
            fresh.push(c);
          }
          todo.push(c);
        }
      }
    }
    if fresh.is_empty() {
      break;
    }
    for p in fresh {
      unsafe { libc::kill(p, libc::SIGSTOP) };
      frozen.insert(p);
      order.push(p);
    }
  }
  for &p in &order {
    unsafe { libc::kill(p, libc::SIGKILL) };
  }
  order.len()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn records_round_trip() {
    for r in [
      Record::Forked(42),
      Record::Failed(libc::EAGAIN),
      Record::Exit { status: Status { raw: 9, max_rss_kb: 1 << 40 }, reusable: true },
      Record::Exit { status: Status { raw: 0, max_rss_kb: 0 }, reusable: false },
    ] {
      assert_eq!(Record::decode(&r.encode()), Some(r));
    }
    assert_eq!(Record::decode(&[9; RECORD_LEN]), None);
  }

  #[test]
  fn jobs_round_trip_inline_and_in_a_memfd() {
    let small = Job { argv: vec!["sh".into(), "-c".into(), "echo ü".into()], env: vec![("A".into(), "1=2".into())], cwd: "/w".into() };
    let big = Job { argv: vec!["sh".into(), "-c".into(), "x".repeat(3 * INLINE_MAX)], env: vec![], cwd: "/".into() };
    assert_eq!(Job::decode(&small.encode()), Some(small.clone()));
    assert_eq!(Job::decode(&small.encode()[1..]), None);
    assert_eq!(Job::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None, "an empty argv is no job");
    for job in [small, big] {
      let mut sv = [0 as RawFd; 2];
      assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) }, 0);
      let (a, b) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
      let null = fs::File::open("/dev/null").unwrap();
      send_job(a.as_raw_fd(), &job, [null.as_raw_fd(); 4]).unwrap();
      let (got, fds) = recv_job(b.as_raw_fd()).unwrap();
      assert_eq!(got, job);
      assert_eq!(fds.len(), 4);
      for fd in &fds {
        assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) } & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
      }
      drop(a);
      assert!(recv_job(b.as_raw_fd()).is_none(), "the end of the stream");
    }
  }
}
