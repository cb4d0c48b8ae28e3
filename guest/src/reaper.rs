//! Reaping the guest's children, and (as PID 1) every orphan of the sandbox.
//!
//! One thread waits for SIGCHLD (blocked in every thread and read from a signalfd) and then runs
//! `wait4(-1, WNOHANG)` until nothing more is waitable. The status of a *watched* pid (a process
//! whose supervisor wants its exit status) is kept for its supervisor; every other child (an
//! orphan reparented to PID 1, a shim whose report already arrived) is just discarded. The same
//! mutex guards every `wait4` in the guest, so a supervisor that reaps its own pid
//! (`Reaper::take`) and the reaping thread can never steal a status from each other, and a
//! process spawned while the lock is held cannot be reaped before it is watched.
//!
//! The guest runs this thread in both modes: as PID 1 it keeps the sandbox free of zombies; when
//! attached with `docker exec` it only ever sees its own children, so nothing changes there.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
  /// the raw wait status
  pub raw: i32,
  /// peak RSS of the process and the descendants it waited for (wait4's rusage)
  pub max_rss_kb: u64,
}

#[derive(Default)]
pub struct State {
  /// pids whose status a supervisor will `take`
  watched: HashSet<i32>,
  /// statuses of watched pids reaped by the reaping thread, not yet taken
  exited: HashMap<i32, Status>,
  /// shims (hidden from `Processes`) that are still alive or not yet reaped
  shims: HashSet<i32>,
}

impl State {
  /// Watch a pid that was just spawned (call with the lock held since before the spawn).
  pub fn watch(&mut self, pid: i32) {
    self.watched.insert(pid);
    self.exited.remove(&pid);
  }

  /// Remember a shim (until it is reaped) so that `Processes` can hide it.
  pub fn add_shim(&mut self, pid: i32) {
    self.shims.insert(pid);
  }

  /// A shim that is not reaped yet: its pid cannot name another process.
  pub fn has_shim(&self, pid: i32) -> bool {
    self.shims.contains(&pid)
  }

  fn reaped(&mut self, pid: i32, st: Status) -> bool {
    self.shims.remove(&pid);
    if self.watched.contains(&pid) {
      // keep the first status (a reused pid cannot be watched before this one is taken)
      self.exited.entry(pid).or_insert(st);
      true
    } else {
      false
    }
  }
}

pub struct Reaper {
  state: Mutex<State>,
}

/// `wait4` retried on EINTR: (its result, the status and peak RSS). The shim uses it too.
pub(crate) fn wait4(pid: i32, flags: i32) -> (i32, Status) {
  let mut st: libc::c_int = 0;
  let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
  loop {
    let r = unsafe { libc::wait4(pid, &mut st, flags, &mut ru) };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
      continue;
    }
    return (r, Status { raw: st, max_rss_kb: ru.ru_maxrss.max(0) as u64 });
  }
}

/// Block SIGCHLD in the calling thread (and so in every thread it starts afterwards); call it
/// first thing in `main`. Children get an empty mask again (std's `Command` resets it).
pub fn block_sigchld() {
  unsafe {
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigaddset(&mut set, libc::SIGCHLD);
    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
  }
}

impl Reaper {
  /// Start the reaping thread. `block_sigchld` must have been called before any thread started.
  pub fn start() -> Arc<Reaper> {
    let reaper = Arc::new(Reaper { state: Mutex::new(State::default()) });
    let sfd: RawFd = unsafe {
      let mut set: libc::sigset_t = std::mem::zeroed();
      libc::sigemptyset(&mut set);
      libc::sigaddset(&mut set, libc::SIGCHLD);
      libc::signalfd(-1, &set, libc::SFD_CLOEXEC)
    };
    let r = reaper.clone();
    std::thread::spawn(move || {
      let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
      loop {
        if sfd >= 0 {
          let n = unsafe { libc::read(sfd, info.as_mut_ptr() as *mut libc::c_void, info.len()) };
          if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::thread::sleep(Duration::from_millis(50));
          }
        } else {
          // no signalfd (seccomp, very old kernel): look every 50 ms
          std::thread::sleep(Duration::from_millis(50));
        }
        r.reap_all();
      }
    });
    reaper
  }

  /// The lock every `wait4` of the guest happens under; hold it across a spawn and `watch` the
  /// new pid (and open its pidfd) before releasing it.
  pub fn lock(&self) -> MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// Reap everything that is waitable; keep the statuses of watched pids.
  pub fn reap_all(&self) {
    let mut s = self.lock();
    loop {
      let (pid, st) = wait4(-1, libc::WNOHANG);
      if pid <= 0 {
        return;
      }
      s.reaped(pid, st);
    }
  }

  /// The status of watched `pid` once it exited (`None` while it runs). A pid that is not our
  /// child (someone else reaped it, which cannot happen) counts as exited with status 0.
  pub fn take(&self, pid: i32) -> Option<Status> {
    let mut s = self.lock();
    if let Some(st) = s.exited.remove(&pid) {
      s.watched.remove(&pid);
      return Some(st);
    }
    let (r, st) = wait4(pid, libc::WNOHANG);
    if r == 0 {
      return None;
    }
    s.watched.remove(&pid);
    s.shims.remove(&pid);
    Some(if r == pid { st } else { Status { raw: 0, max_rss_kb: 0 } })
  }

  /// Stop watching `pid`: the reaping thread discards its status.
  pub fn forget(&self, pid: i32) {
    let mut s = self.lock();
    s.watched.remove(&pid);
    s.exited.remove(&pid);
  }

  /// Shims that are still alive (or zombies not yet reaped).
  pub fn shims(&self) -> HashSet<i32> {
    self.lock().shims.clone()
  }
}
