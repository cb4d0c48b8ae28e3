//! What both execution engines (the guest daemon and `docker exec`) hand back for a started
//! process: its pid, a control channel (stdin, signals) and the final result.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::types::ExecResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutStream {
  Stdout,
  Stderr,
}

/// Receives output chunks as they arrive (before the process ends).
pub type OutputSink = Arc<dyn Fn(OutStream, &[u8]) + Send + Sync>;

#[derive(Debug)]
pub enum Control {
  Stdin(Vec<u8>),
  CloseStdin,
  /// signal the whole process group
  Signal(i32),
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
  pub exit_code: i64,
  pub stdout: Vec<u8>,
  pub stderr: Vec<u8>,
  pub duration: std::time::Duration,
  pub timed_out: bool,
  pub truncated: bool,
  /// set when the process was killed by a signal
  pub signal: Option<String>,
  /// peak RSS of the process tree in KiB (guest engine only)
  pub max_rss_kb: Option<u64>,
}

pub type Outcome = Option<Result<ExecOutput>>;

/// A started process.
#[derive(Clone)]
pub struct Spawned {
  /// pid inside the sandbox (0 when the engine could not learn it)
  pub pid: u32,
  pub control: mpsc::UnboundedSender<Control>,
  pub done: watch::Receiver<Outcome>,
}

impl Spawned {
  /// Wait for the end of the process (any number of callers).
  pub async fn wait(&self) -> Result<ExecOutput> {
    let mut rx = self.done.clone();
    loop {
      if let Some(r) = rx.borrow_and_update().clone() {
        return r;
      }
      if rx.changed().await.is_err() {
        return rx.borrow().clone().unwrap_or_else(|| {
          Err(SandboxError::new(ErrorCode::ExecutionError, "the process's supervisor ended without a result"))
        });
      }
    }
  }

  pub fn is_done(&self) -> bool {
    self.done.borrow().is_some()
  }

  pub fn signal(&self, sig: i32) -> Result<()> {
    self.control.send(Control::Signal(sig)).map_err(|_| gone())
  }

  pub fn stdin(&self, data: Vec<u8>) -> Result<()> {
    self.control.send(Control::Stdin(data)).map_err(|_| gone())
  }

  pub fn close_stdin(&self) -> Result<()> {
    self.control.send(Control::CloseStdin).map_err(|_| gone())
  }
}

fn gone() -> SandboxError {
  SandboxError::new(ErrorCode::ExecutionError, "the process has already exited")
}

/// Signal names accepted by `kill()`; numbers are Linux's.
pub fn signal_number(name: &str) -> Option<i32> {
  let n = name.trim().to_ascii_uppercase();
  let n = n.strip_prefix("SIG").unwrap_or(&n);
  Some(match n {
    "HUP" => 1,
    "INT" => 2,
    "QUIT" => 3,
    "KILL" => 9,
    "USR1" => 10,
    "USR2" => 12,
    "PIPE" => 13,
    "ALRM" => 14,
    "TERM" => 15,
    "CONT" => 18,
    "STOP" => 19,
    _ => return n.parse().ok().filter(|v| (1..=64).contains(v)),
  })
}

pub fn signal_name(sig: i32) -> String {
  match sig {
    1 => "SIGHUP".into(),
    2 => "SIGINT".into(),
    3 => "SIGQUIT".into(),
    6 => "SIGABRT".into(),
    9 => "SIGKILL".into(),
    10 => "SIGUSR1".into(),
    11 => "SIGSEGV".into(),
    12 => "SIGUSR2".into(),
    13 => "SIGPIPE".into(),
    14 => "SIGALRM".into(),
    15 => "SIGTERM".into(),
    n => format!("SIG{n}"),
  }
}

/// The result as the library reports it.
pub fn to_result(out: ExecOutput) -> ExecResult {
  ExecResult {
    exit_code: out.exit_code,
    stdout: out.stdout,
    stderr: out.stderr,
    duration_ms: out.duration.as_secs_f64() * 1000.0,
    timed_out: out.timed_out,
    truncated: out.truncated,
    signal: out.signal,
    max_rss_kb: out.max_rss_kb,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn signals() {
    assert_eq!(signal_number("SIGTERM"), Some(15));
    assert_eq!(signal_number("kill"), Some(9));
    assert_eq!(signal_number("2"), Some(2));
    assert_eq!(signal_number("SIGNOPE"), None);
    assert_eq!(signal_name(9), "SIGKILL");
  }
}
