//! Containers die with their owner. Every container this library starts is bound to the Node
//! process that owns it through an attached stdin that the sandbox holds open for its lifetime:
//! when the owner dies (even by `kill -9`), the engine closes that stdin and the container ends.
//!
//! - guest as the container's command: the guest exits at end of input (`stdin_once`);
//! - exec engine: the container's command is [`STDIN_LOOP`] under Docker's init, running as root
//!   (without capabilities) so the sandbox user can neither signal it nor open its stdin through
//!   `/proc`;
//! - images that keep their own command: one `docker exec` of [`EXEC_WATCHDOG`], restarted by the
//!   sandbox whenever it is found gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;

use crate::providers::docker::guest::{InputStream, OutputStream};

/// The exec engine's container command: returns at end of input, and Docker's init (PID 1) exits
/// with it, which stops the container.
pub const STDIN_LOOP: &str = "while read -r _; do :; done";

/// For images that keep their own command: at end of input, ask Docker's init (PID 1) to stop the
/// image's command (it forwards SIGTERM), then kill whatever this user may still kill. The signal
/// comes first (`-KILL -1`): dash rejects `-s KILL -1`.
pub const EXEC_WATCHDOG: &str = "while read -r _; do :; done; kill -TERM 1 2>/dev/null; sleep 5; kill -KILL -1 2>/dev/null; exit 0";

/// The argv of the watchdog exec (the last word names it in process listings).
pub fn exec_argv() -> Vec<String> {
  vec!["/bin/sh".into(), "-c".into(), EXEC_WATCHDOG.into(), WATCHDOG_NAME.into()]
}

const WATCHDOG_NAME: &str = "agentic-sandbox-watchdog";

/// Whether a listed process is the watchdog exec (hidden from `listProcesses`). Its parent is
/// outside the sandbox (ppid 0, which no process started inside can have), so a process of the
/// sandbox cannot hide itself by copying the command line.
pub fn is_watchdog(p: &crate::providers::docker::protocol::ProcessEntry) -> bool {
  p.ppid == 0 && p.cmdline == exec_argv()
}

/// Holds one attached stdin open and discards what arrives on the attached output (nothing is
/// written to a log, whatever the sandbox prints to the container's stdout).
pub struct Watchdog {
  _input: InputStream,
  drain: tokio::task::JoinHandle<()>,
  ended: Arc<AtomicBool>,
}

impl std::fmt::Debug for Watchdog {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Watchdog").field("ended", &self.ended()).finish()
  }
}

impl Watchdog {
  pub fn hold(mut output: OutputStream, input: InputStream) -> Self {
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    let drain = tokio::spawn(async move {
      while let Some(item) = output.next().await {
        if item.is_err() {
          break;
        }
      }
      flag.store(true, Ordering::Relaxed);
    });
    Self { _input: input, drain, ended }
  }

  /// The watched process is gone (its output ended): nothing watches the owner any more.
  pub fn ended(&self) -> bool {
    self.ended.load(Ordering::Relaxed)
  }
}

impl Drop for Watchdog {
  fn drop(&mut self) {
    self.drain.abort();
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// Both scripts end at end of input with the host's POSIX sh (the sandbox images carry BusyBox
  /// ash or dash; `kill -KILL -1` is checked against both in the vitest suites).
  #[test]
  fn loops_end_at_end_of_input() {
    for script in [STDIN_LOOP, "while read -r _; do :; done; exit 0"] {
      let out = std::process::Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
      assert!(out.status.success());
    }
    assert!(EXEC_WATCHDOG.starts_with(STDIN_LOOP));
  }

  #[test]
  fn only_the_exec_itself_counts_as_the_watchdog() {
    let p = |ppid, cmdline: Vec<String>| crate::providers::docker::protocol::ProcessEntry { pid: 9, ppid, state: "S".into(), cmdline, request: None, rss_kb: 0 };
    assert!(is_watchdog(&p(0, exec_argv())));
    assert!(!is_watchdog(&p(1, exec_argv())), "a copy started inside the sandbox is listed");
    assert!(!is_watchdog(&p(0, vec!["/bin/sh".into()])));
  }
}
