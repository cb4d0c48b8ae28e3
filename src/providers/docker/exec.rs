//! The `docker exec` engine: one exec per command, through the Docker API (no docker CLI, no host
//! shell). The user's argv is passed verbatim as `"$@"` to a small `/bin/sh` wrapper inside the
//! container, which
//! 1. reports its pid on stderr (runc makes every exec a session and process-group leader, so the
//!    pid is also the process group to kill on timeout),
//! 2. runs the command as a child,
//! 3. when the command returns, stops and kills every process left in its process group (a foreground
//!    `execute` owns its process group, like a CI step runner: background leftovers, fork bombs
//!    included, do not outlive it), then every process that still carries the run's marker in its
//!    environment (`AGENTIC_SANDBOX_RUN=<random token>`: leftovers that left the group with `setsid`
//!    or a double fork), and exits with the command's status. The sweep forks (`grep`); while a
//!    fork bomb's zombies still hold the pids limit, a failed fork makes the shell exit at once, so
//!    an `EXIT` trap keeps the command's status (the group was already reaped without forking).
//!    A timeout or an abort does the same from a second exec. A process that also clears its environment escapes this sweep; the guest
//!    engine does not rely on it (it tracks descendants with a subreaper).
//!
//! The marker variable is visible to the command (`env` lists it); its value is meaningless.
//!
//! The image needs `/bin/sh` (any POSIX shell: BusyBox, dash, bash) and `/proc`.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::core::process::ExecOutput;
use crate::core::process::{signal_name, Control, OutStream, OutputSink, Outcome, Spawned};
use crate::core::error::{ErrorCode, Result, SandboxError};

const MARK: u8 = 0x1e;
const MARK_PREFIX: &[u8] = b"\x1eagentic-sandbox-pid:";

/// Kills every process of process group `$1` except the calling shell (`$2`): stop them all first
/// (a stopped process cannot fork), then kill, twice to catch processes forked during the first scan.
const REAP_GROUP: &str = r#"reap() { for sig in STOP KILL KILL; do for f in /proc/[0-9]*/stat; do p=${f#/proc/}; p=${p%/stat}; [ "$p" = "$2" ] && continue; read -r l 2>/dev/null < "$f" || continue; r=${l##*") "}; set -- $r "$1" "$2"; g=$3; shift $(($# - 2)); [ "$g" = "$1" ] && kill -s $sig "$p" 2>/dev/null; done; done; }"#;

/// Kills every process (but the caller) whose environment holds `AGENTIC_SANDBOX_RUN=$1`: stop them,
/// then kill, a few passes (a leftover may fork while being found). One `grep` over /proc does the
/// search; it runs with the variable emptied so it does not find itself. Not `grep -F`: BusyBox's
/// fixed-string search stops at the first NUL of a line, and environ is NUL-separated (the pattern
/// is letters, digits, `_` and `=`, so it means the same as a regular expression).
const SWEEP_RUN: &str = r#"sweep() { for pass in 1 2 3; do l=$(AGENTIC_SANDBOX_RUN= grep -l "AGENTIC_SANDBOX_RUN=$1" /proc/[0-9]*/environ 2>/dev/null); [ -n "$l" ] || return 0; ps=; for f in $l; do p=${f#/proc/}; p=${p%/environ}; [ "$p" = "$$" ] || ps="$ps $p"; done; [ -n "$ps" ] || return 0; kill -s STOP $ps 2>/dev/null; kill -s KILL $ps 2>/dev/null; done; }"#;

pub fn wrapper_script() -> String {
  format!(
    r#"{REAP_GROUP}
{SWEEP_RUN}
printf '\036agentic-sandbox-pid:%s\036' "$$" >&2
cd -- "$1" || exit 126
mode=$2
tok=$3
shift 3
[ "$mode" = bg ] && exec "$@"
AGENTIC_SANDBOX_RUN=$tok "$@"
rc=$?
trap 'exit $rc' EXIT
reap "$$" "$$"
sweep "$tok"
exit $rc"#
  )
}

/// A fresh marker for one foreground run (16 hex digits, so no marker is a prefix of another).
pub fn run_token() -> String {
  let bytes: [u8; 8] = rand::random();
  bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Send signal `$2` to process group `$1` (the wrapper and everything it started).
// no `--` before the negative pid: dash (Debian's /bin/sh) rejects it ("Illegal number"), and then only
// the leader would be signalled; with the signal given first, dash, bash and BusyBox all read "-PGID"
// as a process group
pub const SIGNAL_GROUP: &str = r#"kill -"$2" "-$1" 2>/dev/null || kill -"$2" "$1" 2>/dev/null; exit 0"#;

/// Kill a foreground run for good (timeout, abort): its process group, then its marked leftovers
/// (`$1` pgid, `$2` the run's marker).
fn kill_run_script() -> String {
  format!("{SWEEP_RUN}\nkill -9 \"-$1\" 2>/dev/null || kill -9 \"$1\" 2>/dev/null; sweep \"$2\"; exit 0")
}

/// Signal process group `pid` in `container` with a bare exec (no wrapper, output ignored), as
/// `user`: the user that started it (the container's own user may be another one, e.g. the exec
/// engine's root watchdog, without the capability to signal it).
/// A SIGKILL of a foreground run (`token` set) also sweeps its marked leftovers.
async fn signal_group(docker: &Docker, container: &str, user: Option<String>, pid: u32, sig: i32, token: Option<&str>) -> Result<()> {
  let cmd = match token {
    Some(tok) if sig == 9 => vec!["/bin/sh".into(), "-c".into(), kill_run_script(), "kill".into(), pid.to_string(), tok.to_string()],
    _ => vec!["/bin/sh".into(), "-c".into(), SIGNAL_GROUP.into(), "kill".into(), pid.to_string(), sig.to_string()],
  };
  let created = docker
    .create_exec(
      container,
      CreateExecOptions::<String> {
        cmd: Some(cmd),
        user,
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
      },
    )
    .await
    .map_err(|e| map_exec_error(container, e))?;
  if let StartExecResults::Attached { mut output, .. } =
    docker.start_exec(&created.id, None).await.map_err(|e| map_exec_error(container, e))?
  {
    let _ = tokio::time::timeout(Duration::from_secs(10), async { while output.next().await.is_some() {} }).await;
  }
  Ok(())
}

/// Collects one output stream up to a cap, counting what was dropped.
#[derive(Debug, Default)]
pub struct Capped {
  pub data: Vec<u8>,
  pub cap: usize,
  pub dropped: u64,
  /// keeps nothing and passes everything on (a stream-only spawn)
  pub pass: bool,
}

impl Capped {
  pub fn new(cap: usize) -> Self {
    Self { data: Vec::new(), cap, dropped: 0, pass: false }
  }

  /// Keeps nothing, caps nothing: every chunk is handed back whole for the sink.
  pub fn passing() -> Self {
    Self { pass: true, ..Self::new(0) }
  }
  /// Keeps what fits under the cap and returns it (the part a streaming callback may see: it never
  /// gets more than the final result holds).
  pub fn push<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
    if self.pass {
      return bytes;
    }
    let room = self.cap.saturating_sub(self.data.len());
    let take = room.min(bytes.len());
    self.data.extend_from_slice(&bytes[..take]);
    self.dropped += (bytes.len() - take) as u64;
    &bytes[..take]
  }
}

/// Parses the wrapper's pid marker off the front of stderr.
#[derive(Debug, Default)]
pub struct PidMarker {
  pending: Vec<u8>,
  pub pid: Option<u32>,
  done: bool,
}

impl PidMarker {
  /// Feed stderr bytes; returns the bytes that belong to the user's stderr.
  pub fn feed<'a>(&mut self, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    if self.done {
      return bytes.into();
    }
    self.pending.extend_from_slice(bytes);
    let n = self.pending.len().min(MARK_PREFIX.len());
    if self.pending[..n] != MARK_PREFIX[..n] {
      // not our marker (the wrapper never ran): everything is user output
      self.done = true;
      return std::mem::take(&mut self.pending).into();
    }
    if self.pending.len() <= MARK_PREFIX.len() {
      return Vec::new().into();
    }
    match self.pending[MARK_PREFIX.len()..].iter().position(|b| *b == MARK) {
      Some(end) => {
        let digits = &self.pending[MARK_PREFIX.len()..MARK_PREFIX.len() + end];
        self.pid = std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok());
        self.done = true;
        let rest = self.pending.split_off(MARK_PREFIX.len() + end + 1);
        self.pending.clear();
        rest.into()
      }
      None if self.pending.len() > MARK_PREFIX.len() + 12 => {
        self.done = true;
        std::mem::take(&mut self.pending).into()
      }
      None => Vec::new().into(),
    }
  }
}

#[derive(Debug, Clone)]
pub struct ExecRequest {
  pub argv: Vec<String>,
  pub env: Vec<String>,
  pub workdir: Option<String>,
  pub user: Option<String>,
  /// `None`: no limit (background processes)
  pub timeout: Option<Duration>,
  pub max_output: usize,
  /// attach stdin (data and close come through `Spawned::control`)
  pub open_stdin: bool,
  /// wrap in the process-group wrapper (user commands); internal helper scripts run bare
  pub wrap: bool,
  /// a background process keeps what it leaves behind (the wrapper does not reap its group)
  pub background: bool,
  /// output goes to the sink alone: nothing kept, no cap (`ExecOptions::stream_only`)
  pub stream_only: bool,
}

pub fn map_exec_error(container: &str, e: bollard::errors::Error) -> SandboxError {
  match &e {
    bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => SandboxError::new(
      ErrorCode::SandboxNotRunning,
      format!("the sandbox's container {container} no longer exists (removed outside this library?); destroy and recreate the sandbox"),
    ),
    bollard::errors::Error::DockerResponseServerError { status_code: 409, message } => SandboxError::new(
      ErrorCode::SandboxNotRunning,
      format!("the sandbox's container is not running ({message}); call start() first"),
    ),
    bollard::errors::Error::DockerResponseServerError { .. } => {
      SandboxError::new(ErrorCode::ExecutionError, format!("docker exec failed: {e}"))
    }
    // anything else is the transport: the engine stopped answering (restarted, crashed, socket gone)
    _ => SandboxError::new(
      ErrorCode::ProviderUnavailable,
      format!("lost the connection to the Docker engine during docker exec ({e}); check that the engine runs, then retry (a restarted engine stops the sandbox's container: start() it afresh)"),
    ),
  }
}

/// Run one command through `docker exec`, feed it `stdin` (if any) and collect its output.
pub async fn run(docker: &Docker, container: &str, req: ExecRequest, stdin: Option<Vec<u8>>) -> Result<ExecOutput> {
  let req = ExecRequest { open_stdin: stdin.is_some(), ..req };
  let p = spawn(docker, container, req, None).await?;
  if let Some(data) = stdin {
    let _ = p.stdin(data);
    let _ = p.close_stdin();
  }
  p.wait().await
}

/// Start one command through `docker exec`. Output is streamed to `sink` and collected (capped)
/// into the result; stdin and signals go through the returned control channel.
pub async fn spawn(docker: &Docker, container: &str, req: ExecRequest, sink: Option<OutputSink>) -> Result<Spawned> {
  let started = Instant::now();
  let token = (req.wrap && !req.background).then(run_token);
  let mut cmd: Vec<String> = Vec::with_capacity(req.argv.len() + 7);
  if req.wrap {
    cmd.push("/bin/sh".into());
    cmd.push("-c".into());
    cmd.push(wrapper_script());
    cmd.push("agentic-sandbox".into());
    cmd.push(req.workdir.clone().unwrap_or_else(|| "/".into()));
    cmd.push(if req.background { "bg" } else { "fg" }.into());
    cmd.push(token.clone().unwrap_or_default());
  }
  cmd.extend(req.argv.iter().cloned());
  let created = docker
    .create_exec(
      container,
      CreateExecOptions::<String> {
        cmd: Some(cmd),
        env: if req.env.is_empty() { None } else { Some(req.env.clone()) },
        // the wrapper changes directory itself, so a missing workdir is reported on stderr
        working_dir: if req.wrap { Some("/".into()) } else { req.workdir.clone() },
        user: req.user.clone(),
        attach_stdin: Some(req.open_stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        ..Default::default()
      },
    )
    .await
    .map_err(|e| map_exec_error(container, e))?;
  let exec_id = created.id;
  let started_exec = docker
    .start_exec(&exec_id, Some(StartExecOptions { detach: false, tty: false, output_capacity: Some(64 * 1024) }))
    .await
    .map_err(|e| map_exec_error(container, e))?;
  let (mut output, input) = match started_exec {
    StartExecResults::Attached { output, input } => (output, input),
    StartExecResults::Detached => return Err(SandboxError::provider("docker exec unexpectedly detached")),
  };
  let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Control>();
  let (done_tx, done_rx) = watch::channel::<Outcome>(None);
  let (pid_tx, pid_rx) = oneshot::channel::<u32>();
  // stdin is written from its own task so a command that does not read it cannot stall output
  let (stdin_tx, mut stdin_rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
  let stdin_task = tokio::spawn(async move {
    let mut input = input;
    while let Some(item) = stdin_rx.recv().await {
      match item {
        Some(data) => {
          if input.write_all(&data).await.is_err() || input.flush().await.is_err() {
            break;
          }
        }
        None => break,
      }
    }
    let _ = input.shutdown().await;
  });
  let docker = docker.clone();
  let container = container.to_string();
  let wrap = req.wrap;
  tokio::spawn(async move {
    let mut pid_tx = Some(pid_tx);
    let capped = || if req.stream_only { Capped::passing() } else { Capped::new(req.max_output) };
    let (mut stdout, mut stderr) = (capped(), capped());
    let mut marker = PidMarker::default();
    if !wrap {
      marker.done_without_marker();
      let _ = pid_tx.take().map(|t| t.send(0));
    }
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let deadline = req.timeout.and_then(|t| tokio::time::Instant::now().checked_add(t)).unwrap_or(far);
    let mut timed_out = false;
    let mut ctl_open = true;
    // after a timeout the output keeps being drained (a flooding process must not stall the engine
    // while the kill runs) until the stream ends or this grace period is over
    let mut grace_until: Option<tokio::time::Instant> = None;
    loop {
      tokio::select! {
        item = output.next() => match item {
          Some(Ok(bollard::container::LogOutput::StdOut { message })) => {
            let kept = stdout.push(&message);
            if let (Some(s), false) = (&sink, kept.is_empty()) { s(OutStream::Stdout, kept) }
          }
          Some(Ok(bollard::container::LogOutput::StdErr { message })) => {
            let m = marker.feed(&message);
            if let Some(pid) = marker.pid { if let Some(t) = pid_tx.take() { let _ = t.send(pid); } }
            let kept = stderr.push(&m);
            if let (Some(s), false) = (&sink, kept.is_empty()) { s(OutStream::Stderr, kept) }
          }
          Some(Ok(_)) => {}
          Some(Err(e)) => { tracing::debug!(error = %e, "exec output stream error"); break }
          None => break,
        },
        ctl = ctl_rx.recv(), if ctl_open => match ctl {
          Some(Control::Stdin(data)) => { let _ = stdin_tx.send(Some(data)); }
          Some(Control::CloseStdin) => { let _ = stdin_tx.send(None); }
          Some(Control::Signal(sig)) => match marker.pid {
            Some(pid) => {
              let (docker, container, token, user) = (docker.clone(), container.clone(), token.clone(), req.user.clone());
              tokio::spawn(async move {
                if let Err(e) = signal_group(&docker, &container, user, pid, sig, token.as_deref()).await {
                  tracing::warn!(error = %e, "could not signal a process group");
                }
              });
            }
            None => tracing::warn!("cannot signal an exec whose pid is unknown"),
          },
          None => ctl_open = false,
        },
        _ = tokio::time::sleep_until(grace_until.unwrap_or(deadline)) => {
          if timed_out {
            tracing::warn!(container, "output of a timed-out exec did not end within the grace period");
            break;
          }
          timed_out = true;
          grace_until = Some(tokio::time::Instant::now() + Duration::from_secs(5));
          match marker.pid {
            Some(pid) => {
              tracing::debug!(pid, container, "exec timed out; killing its process group");
              let (docker, container, token, user) = (docker.clone(), container.clone(), token.clone(), req.user.clone());
              tokio::spawn(async move {
                if let Err(e) = signal_group(&docker, &container, user, pid, 9, token.as_deref()).await {
                  tracing::warn!(error = %e, "could not kill timed-out process group");
                }
              });
            }
            None => tracing::warn!(container, "exec timed out before its wrapper reported a pid; it may keep running"),
          }
        }
      }
    }
    stdin_task.abort();
    drop(pid_tx);
    let duration = started.elapsed();
    let truncated = stdout.dropped > 0 || stderr.dropped > 0;
    let result = if timed_out {
      Ok(ExecOutput { exit_code: 124, stdout: stdout.data, stderr: stderr.data, duration, timed_out, truncated, signal: Some("SIGKILL".into()), max_rss_kb: None })
    } else {
      exit_code_of(&docker, &container, &exec_id).await.map(|exit_code| ExecOutput {
        exit_code,
        stdout: stdout.data,
        stderr: stderr.data,
        duration,
        timed_out: false,
        truncated,
        // shells report a death by signal N as 128 + N; that is all docker exec tells us
        signal: (wrap && (129..=192).contains(&exit_code)).then(|| signal_name((exit_code - 128) as i32)),
        max_rss_kb: None,
      })
    };
    let _ = done_tx.send(Some(result));
  });
  let pid = pid_rx.await.unwrap_or(0);
  Ok(Spawned { pid, control: ctl_tx, done: done_rx })
}

/// The stream ended; the exit code may take a moment to be recorded.
async fn exit_code_of(docker: &Docker, container: &str, exec_id: &str) -> Result<i64> {
  for attempt in 0..50 {
    let info = docker.inspect_exec(exec_id).await.map_err(|e| map_exec_error(container, e))?;
    if info.running != Some(true) {
      if let Some(c) = info.exit_code {
        return Ok(c);
      }
    }
    tokio::time::sleep(Duration::from_millis(if attempt < 10 { 2 } else { 20 })).await;
  }
  Err(SandboxError::provider("docker did not report an exit code for the exec"))
}

impl PidMarker {
  fn done_without_marker(&mut self) {
    self.done = true;
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn capped_counts_dropped() {
    let mut c = Capped::new(5);
    assert_eq!(c.push(b"abc"), b"abc");
    assert_eq!(c.push(b"defg"), b"de");
    assert_eq!(c.push(b"h"), b"");
    assert_eq!(c.data, b"abcde");
    assert_eq!(c.dropped, 3);
  }

  #[test]
  fn passing_keeps_nothing_and_caps_nothing() {
    let mut c = Capped::passing();
    let big = vec![7u8; 1 << 20];
    assert_eq!(c.push(&big).len(), big.len());
    assert!(c.data.is_empty() && c.dropped == 0);
  }

  #[test]
  fn marker_split_across_chunks() {
    let mut m = PidMarker::default();
    assert!(m.feed(b"\x1eagentic-sand").is_empty());
    let rest = m.feed(b"box-pid:4321\x1eerr text");
    assert_eq!(m.pid, Some(4321));
    assert_eq!(&*rest, b"err text");
    assert_eq!(&*m.feed(b"more"), b"more");
  }

  #[test]
  fn no_marker_passes_through() {
    let mut m = PidMarker::default();
    assert_eq!(&*m.feed(b"OCI runtime exec failed"), b"OCI runtime exec failed");
    assert_eq!(m.pid, None);
  }

  #[test]
  fn wrapper_runs_argv_verbatim_and_keeps_status() {
    // run the wrapper with the host's /bin/sh: argv must reach the command unchanged
    let out = std::process::Command::new("/bin/sh")
      .args(["-c", &wrapper_script(), "agentic-sandbox", "/", "fg", "0123456789abcdef", "printf", "%s|", "a b", "$(id)", "x;y"])
      .output()
      .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|$(id)|x;y|");
    assert!(out.stderr.starts_with(MARK_PREFIX));
    let st = std::process::Command::new("/bin/sh")
      .args(["-c", &wrapper_script(), "agentic-sandbox", "/", "fg", "0123456789abcdef", "sh", "-c", "exit 7"])
      .status()
      .unwrap();
    assert_eq!(st.code(), Some(7));
  }

  #[test]
  fn wrapper_kills_background_leftovers() {
    // `sleep 300 &` would outlive the command; the wrapper must kill it before returning
    let started = Instant::now();
    let out = std::process::Command::new("setsid")
      .args(["/bin/sh", "-c", &wrapper_script(), "agentic-sandbox", "/", "fg", "0123456789abcdef", "sh", "-c", "sleep 300 & echo $!"])
      .output()
      .unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(100));
    let alive = unsafe { libc::kill(pid, 0) } == 0
      && std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false);
    assert!(!alive, "background sleep {pid} survived the wrapper");
  }

  fn alive(pid: i32) -> bool {
    (unsafe { libc::kill(pid, 0) }) == 0
      && std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
  }

  #[test]
  fn wrapper_kills_leftovers_that_left_the_group() {
    // setsid and a double fork leave the process group; the run's marker still finds them
    let tok = run_token();
    let out = std::process::Command::new("setsid")
      .args(["/bin/sh", "-c", &wrapper_script(), "agentic-sandbox", "/", "fg", &tok, "sh", "-c", "setsid sleep 301 & echo $!; (sh -c 'sleep 302 & echo $!' &) ; sleep 0.2"])
      .output()
      .unwrap();
    let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{}", String::from_utf8_lossy(&out.stdout));
    std::thread::sleep(Duration::from_millis(100));
    for pid in pids {
      assert!(!alive(pid), "leftover {pid} survived the wrapper");
    }
  }

  #[test]
  fn a_marked_leftover_of_another_run_is_spared() {
    let mine = run_token();
    let mut other = std::process::Command::new("sh")
      .args(["-c", "sleep 303"])
      .env("AGENTIC_SANDBOX_RUN", run_token())
      .spawn()
      .unwrap();
    let st = std::process::Command::new("/bin/sh")
      .args(["-c", &wrapper_script(), "agentic-sandbox", "/", "fg", &mine, "true"])
      .status()
      .unwrap();
    assert!(st.success());
    let pid = other.id() as i32;
    assert!(alive(pid), "another run's process was killed");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = other.wait();
  }
}
