//! Processes through envd's `process.Process` service.
//!
//! `spawn` sends `Start` (server-streaming Connect) with the real argv — `cmd` = the command,
//! `args` = its arguments; no shell of ours — and returns once envd reported the pid. A task
//! then reads the stream: output chunks go to the sink and into the capped result, keepalives
//! extend the sandbox's lifetime, the `end` event gives the exit code. Stdin goes through unary
//! `SendInput` / `CloseStdin` (in order, from one task), signals through `SendSignal`.
//!
//! Signals: envd accepts only SIGKILL and SIGTERM. `Control::Signal(9)` sends SIGKILL; every
//! other signal (SIGINT, SIGHUP, SIGUSR1, …) is sent as SIGTERM, the nearest polite ending.
//!
//! Timeout: `Connect-Timeout-Ms` on `Start` makes envd kill the process at the deadline even if
//! this client is gone; at the deadline this client also sends SIGKILL itself (cancelling the
//! request alone would not end it), then reports `timed_out`, exit code 124, signal SIGKILL.
//!
//! A stream cut before the `end` event is re-attached with `process.Process/Connect` by pid
//! (once; again only after the re-attached stream delivered output or a keepalive); if that
//! fails, the result is an EXECUTION_ERROR saying the stream was cut.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::client::{Remote, Retry};
use super::connect::{b64, classify, exit_of, parse_process_event, EndEvent, EnvelopeDecoder, ProcessEvent, RpcError, StreamItem};
use super::sandbox::{E2bSandbox, Shared};
use crate::providers::docker::exec::Capped;
use crate::core::process::{Control, ExecOutput, OutStream, OutputSink, Outcome, Spawned};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::types::ExecOptions;

/// Per-stream output cap when `maxOutputBytes` is not given (the Docker provider's default).
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// After the deadline's SIGKILL, how long the stream may take to end before the task gives up.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Largest stdin piece per `SendInput` call.
const STDIN_CHUNK: usize = 256 * 1024;

/// What the next read of a process stream gave.
#[derive(Debug)]
enum Next {
  Event(ProcessEvent),
  /// the end-of-stream message (with the RPC's error, if any)
  Eos(Option<RpcError>),
  /// the connection broke or the stream was malformed
  Cut(String),
}

/// A `Start` / `Connect` response read envelope by envelope. `next` is cancel-safe: bytes are
/// only taken from the response inside the awaited `chunk()` and buffered at once.
struct ProcStream {
  resp: Response,
  dec: EnvelopeDecoder,
}

impl ProcStream {
  async fn next(&mut self) -> Next {
    loop {
      match self.dec.next_envelope() {
        Err(e) => return Next::Cut(e),
        Ok(Some(env)) => {
          return match classify(env) {
            Err(e) => Next::Cut(e),
            Ok(StreamItem::End(err)) => Next::Eos(err),
            Ok(StreamItem::Message(v)) => match parse_process_event(&v) {
              Ok(ev) => Next::Event(ev),
              Err(e) => Next::Cut(e),
            },
          }
        }
        Ok(None) => match self.resp.chunk().await {
          Ok(Some(bytes)) => self.dec.push(&bytes),
          Ok(None) if self.dec.pending() > 0 => return Next::Cut("the connection closed in the middle of a message".into()),
          Ok(None) => return Next::Cut("the connection closed without an end-of-stream message".into()),
          Err(e) => return Next::Cut(e.to_string()),
        },
      }
    }
  }
}

/// envd's `Signal` enum value for a signal number (see the module docs).
pub fn envd_signal(sig: i32) -> &'static str {
  if sig == 9 {
    "SIGNAL_SIGKILL"
  } else {
    "SIGNAL_SIGTERM"
  }
}

pub(super) async fn send_signal(shared: &Shared, remote: &Remote, pid: u32, sig: i32) -> std::result::Result<(), RpcError> {
  let body = json!({ "process": { "pid": pid }, "signal": envd_signal(sig) });
  shared.client.unary(remote, "process.Process/SendSignal", &body, Retry::Idempotent).await.map(|_| ())
}

/// Writes stdin pieces and the close in order.
async fn input_worker(shared: Arc<Shared>, remote: Arc<Remote>, pid: u32, mut rx: mpsc::UnboundedReceiver<Option<Vec<u8>>>) {
  while let Some(item) = rx.recv().await {
    let r = match item {
      Some(data) => {
        let mut r = Ok(());
        for piece in data.chunks(STDIN_CHUNK) {
          let body = json!({ "process": { "pid": pid }, "input": { "stdin": b64(piece) } });
          r = shared.client.unary(&remote, "process.Process/SendInput", &body, Retry::Once).await.map(|_| ());
          if r.is_err() {
            break;
          }
        }
        r
      }
      None => {
        let body = json!({ "process": { "pid": pid } });
        shared.client.unary(&remote, "process.Process/CloseStdin", &body, Retry::Idempotent).await.map(|_| ())
      }
    };
    if let Err(e) = r {
      tracing::debug!(pid, code = %e.code, error = %e.message, "stdin not delivered");
    }
  }
}

/// How the stream of a process ended.
enum Ending {
  End(EndEvent),
  TimedOut,
  Failed(RpcError),
  Cut(String),
}

struct Run {
  shared: Arc<Shared>,
  remote: Arc<Remote>,
  pid: u32,
  label: String,
  stream: ProcStream,
  early: VecDeque<Next>,
  sink: Option<OutputSink>,
  max_output: usize,
  deadline: Option<tokio::time::Instant>,
  started: Instant,
  ctl: mpsc::UnboundedReceiver<Control>,
  done: watch::Sender<Outcome>,
}

impl Run {
  async fn reattach(&self) -> std::result::Result<ProcStream, RpcError> {
    let body = json!({ "process": { "pid": self.pid } });
    let resp = self.shared.client.open_stream(&self.remote, "process.Process/Connect", &body, None).await?;
    Ok(ProcStream { resp, dec: EnvelopeDecoder::default() })
  }

  async fn run(mut self) {
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let input = tokio::spawn(input_worker(self.shared.clone(), self.remote.clone(), self.pid, in_rx));
    let mut stdout = Capped::new(self.max_output);
    let mut stderr = Capped::new(self.max_output);
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let mut timed_out = false;
    let mut grace: Option<tokio::time::Instant> = None;
    let mut reattached = false;
    // why the first stream was cut, once a re-attached stream replaced it
    let mut cut_reason: Option<String> = None;
    let mut ctl_open = true;
    let ending = loop {
      let next = match self.early.pop_front() {
        Some(n) => n,
        None => tokio::select! {
          n = self.stream.next() => n,
          c = self.ctl.recv(), if ctl_open => {
            match c {
              Some(Control::Stdin(d)) => { let _ = in_tx.send(Some(d)); }
              Some(Control::CloseStdin) => { let _ = in_tx.send(None); }
              Some(Control::Signal(sig)) => self.signal(sig),
              None => ctl_open = false,
            }
            continue;
          }
          _ = tokio::time::sleep_until(grace.or(self.deadline).unwrap_or(far)) => {
            if timed_out {
              tracing::warn!(pid = self.pid, "the stream of a timed-out process did not end within the grace period");
              break Ending::TimedOut;
            }
            tracing::debug!(pid = self.pid, "process timed out; killing it");
            timed_out = true;
            grace = Some(tokio::time::Instant::now() + KILL_GRACE);
            self.signal(9);
            continue;
          }
        },
      };
      if matches!(next, Next::Event(ProcessEvent::Stdout(_) | ProcessEvent::Stderr(_) | ProcessEvent::Keepalive | ProcessEvent::Other)) {
        // a (re-attached) stream that delivers events is healthy: a later cut may re-attach
        // again (long background processes behind proxies that close idle streams)
        (reattached, cut_reason) = (false, None);
      }
      match next {
        Next::Event(ProcessEvent::Stdout(d)) => {
          let kept = stdout.push(&d);
          if let (Some(s), false) = (&self.sink, kept.is_empty()) {
            s(OutStream::Stdout, kept)
          }
          self.shared.touch();
        }
        Next::Event(ProcessEvent::Stderr(d)) => {
          let kept = stderr.push(&d);
          if let (Some(s), false) = (&self.sink, kept.is_empty()) {
            s(OutStream::Stderr, kept)
          }
          self.shared.touch();
        }
        Next::Event(ProcessEvent::End(e)) => break Ending::End(e),
        Next::Event(_) => self.shared.touch(),
        // envd's own deadline (Connect-Timeout-Ms) expired: it killed the process
        Next::Eos(Some(e)) if e.code == "deadline_exceeded" && self.deadline.is_some() => break Ending::TimedOut,
        Next::Eos(Some(e)) => match &cut_reason {
          // the re-attached stream failed (the pid is unknown by now): still a cut stream
          Some(why) => break Ending::Cut(format!("{why}; re-attaching failed: {}: {}", e.code, e.message)),
          None => break Ending::Failed(e),
        },
        _ if timed_out => break Ending::TimedOut,
        Next::Eos(None) | Next::Cut(_) if !reattached && self.pid != 0 => {
          reattached = true;
          let why = match &next {
            Next::Cut(m) => m.clone(),
            _ => "the stream ended without an end event".into(),
          };
          tracing::debug!(pid = self.pid, reason = %why, "process stream cut; re-attaching with Connect");
          match self.reattach().await {
            Ok(s) => {
              self.stream = s;
              cut_reason = Some(why);
            }
            Err(e) => break Ending::Cut(format!("{why}; re-attaching failed: {}: {}", e.code, e.message)),
          }
        }
        Next::Eos(None) => break Ending::Cut("the stream ended without an end event".into()),
        Next::Cut(m) => break Ending::Cut(match &cut_reason {
          Some(why) => format!("{why}; the re-attached stream was cut too: {m}"),
          None => m,
        }),
      }
    };
    input.abort();
    let duration = self.started.elapsed();
    let truncated = stdout.dropped > 0 || stderr.dropped > 0;
    let out = |exit_code: i64, timed_out: bool, signal: Option<String>, stdout: Capped, stderr: Capped| ExecOutput {
      exit_code,
      stdout: stdout.data,
      stderr: stderr.data,
      duration,
      timed_out,
      truncated,
      signal,
      max_rss_kb: None,
    };
    let result = match ending {
      // whatever the stream said after our deadline, the process was killed for it
      _ if timed_out => Ok(out(124, true, Some("SIGKILL".into()), stdout, stderr)),
      Ending::TimedOut => Ok(out(124, true, Some("SIGKILL".into()), stdout, stderr)),
      Ending::End(e) => {
        let (code, signal) = exit_of(&e);
        Ok(out(code, false, signal, stdout, stderr))
      }
      Ending::Failed(e) => Err(e.to_error(&format!("{} (pid {})", self.label, self.pid))),
      Ending::Cut(why) => Err(SandboxError::new(
        ErrorCode::ExecutionError,
        format!(
          "the output stream of {} (pid {}) was cut before the process ended ({why}); it may still be running in the sandbox (see listProcesses())",
          self.label, self.pid
        ),
      )),
    };
    let _ = self.done.send(Some(result));
  }

  fn signal(&self, sig: i32) {
    let (shared, remote, pid) = (self.shared.clone(), self.remote.clone(), self.pid);
    tokio::spawn(async move {
      if let Err(e) = send_signal(&shared, &remote, pid, sig).await {
        tracing::debug!(pid, code = %e.code, error = %e.message, "signal not delivered");
      }
    });
  }
}

impl E2bSandbox {
  /// Start a command and return once envd reported its pid (for `background: true` and for
  /// foreground calls). Foreground calls default to `limits.timeoutSeconds`; background ones run
  /// until they end, are killed, or their own `timeout` passes. A relative `opts.workdir`
  /// resolves against `workdir()`.
  pub async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    crate::core::sandbox::refuse_stream_only(opts, "e2b")?;
    let (timeout, cwd) = crate::core::sandbox::prepare_spawn(&self.config, &self.workdir(), command, opts, background)?;
    let cwd = self.resolve_path(&cwd)?;
    let (shared, remote) = self.running()?;
    let body = json!({
      "process": { "cmd": command, "args": args, "envs": opts.env, "cwd": cwd },
      "stdin": open_stdin,
    });
    let started = Instant::now();
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let timeout_ms = timeout.map(|t| t.as_millis().clamp(1, u64::MAX as u128) as u64);
    let label = command.to_string();
    let resp = shared
      .client
      .open_stream(&remote, "process.Process/Start", &body, timeout_ms)
      .await
      .map_err(|e| self.rpc_failed(&e, &format!("start {label}")))?;
    let mut stream = ProcStream { resp, dec: EnvelopeDecoder::default() };

    // until `start`: anything else that comes first is replayed by the task
    let mut early = VecDeque::new();
    let waited = tokio::time::timeout(self.opts.request_timeout, async {
      loop {
        match stream.next().await {
          Next::Event(ProcessEvent::Start { pid }) => return Ok(pid),
          Next::Event(ProcessEvent::Keepalive | ProcessEvent::Other) => {}
          n @ Next::Event(ProcessEvent::End(_)) => {
            early.push_back(n);
            return Ok(0);
          }
          n @ Next::Event(_) => early.push_back(n),
          Next::Eos(Some(e)) => return Err(self.rpc_failed(&e, &format!("start {label}"))),
          Next::Eos(None) => return Err(SandboxError::new(ErrorCode::ExecutionError, format!("envd ended the Start stream of {label} without starting it"))),
          Next::Cut(m) => return Err(SandboxError::new(ErrorCode::ExecutionError, format!("the Start stream of {label} was cut before it started ({m})"))),
        }
      }
    })
    .await;
    let pid = match waited {
      Ok(r) => r?,
      Err(_) => {
        return Err(SandboxError::provider(format!(
          "envd did not report the start of {label} within {} s",
          self.opts.request_timeout.as_secs()
        )))
      }
    };
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel::<Control>();
    let (done_tx, done_rx) = watch::channel::<Outcome>(None);
    let run = Run {
      shared: shared.clone(),
      remote,
      pid,
      label,
      stream,
      early,
      sink,
      max_output: opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT),
      deadline,
      started,
      ctl: ctl_rx,
      done: done_tx,
    };
    tokio::spawn(run.run());
    shared.touch();
    Ok(Spawned { pid, control: ctl_tx, done: done_rx })
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn only_sigkill_stays_sigkill() {
    assert_eq!(envd_signal(9), "SIGNAL_SIGKILL");
    for sig in [1, 2, 3, 10, 15, 19] {
      assert_eq!(envd_signal(sig), "SIGNAL_SIGTERM");
    }
  }
}
