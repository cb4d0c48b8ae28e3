//! One sandbox of any provider. The napi `Sandbox` class, the manager, pools and the agent
//! executor hold an `AnySandbox`; each method dispatches to the provider's implementation, and
//! what is the same for every provider (running a command to its end, the background-process
//! bookkeeping) lives here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::config::{ProviderKind, SandboxConfig};
use crate::docker::process::{OutputSink, Spawned};
use crate::docker::sandbox::{to_result, ProgressFn};
use crate::docker::DockerSandbox;
use crate::e2b::{E2bOptions, E2bSandbox};
use crate::error::{ErrorCode, Result, SandboxError};
use crate::guest_protocol::ProcessEntry;
use crate::types::{ExecOptions, ExecResult, FileInfo, FileOp, Health, State, Stats};

#[derive(Clone)]
pub enum Backend {
  Docker(Arc<DockerSandbox>),
  E2b(Arc<E2bSandbox>),
}

pub struct AnySandbox {
  /// stable for the sandbox's life, also when a fallback provider took over at start
  id: String,
  /// replaced only by a provider fallback in `start`
  backend: RwLock<Backend>,
  /// pids of background processes started through `spawn` (for `listProcesses`)
  background: Mutex<HashSet<u32>>,
}

/// Calls the same method on whichever provider backs the sandbox now.
macro_rules! each {
  ($self:ident, $s:ident => $e:expr) => {
    match $self.backend() {
      Backend::Docker($s) => $e,
      Backend::E2b($s) => $e,
    }
  };
}

/// What every provider checks before starting a command: a command, a valid timeout (foreground
/// calls default to `limits.timeoutSeconds`; background ones have none unless given), the working
/// directory (relative to `workdir`), and valid environment names. Returns (timeout, directory).
pub fn prepare_spawn(
  config: &SandboxConfig,
  workdir: &str,
  command: &str,
  opts: &ExecOptions,
  background: bool,
) -> Result<(Option<Duration>, String)> {
  if command.is_empty() {
    return Err(SandboxError::invalid_argument("command must not be empty"));
  }
  let timeout = if background { opts.timeout } else { Some(opts.timeout.unwrap_or(config.limits.timeout_seconds)) };
  let timeout = timeout.map(|t| crate::config::seconds("timeout", t, false)).transpose()?;
  let dir = match &opts.workdir {
    Some(w) => crate::paths::resolve(workdir, w)?,
    None => workdir.to_string(),
  };
  for k in opts.env.keys() {
    if k.is_empty() || k.contains('=') || k.contains('\0') {
      return Err(SandboxError::invalid_argument(format!("env key {k:?} is not a valid variable name")));
    }
  }
  Ok((timeout, dir))
}

/// Errors that mean "this provider cannot give us a sandbox now", not "the request is wrong".
fn is_availability(e: &SandboxError) -> bool {
  matches!(e.code, ErrorCode::ProviderUnavailable | ErrorCode::ProviderError | ErrorCode::QuotaExceeded)
}

/// A not-yet-started sandbox of `config.provider`.
fn make_backend(config: &SandboxConfig) -> Result<Backend> {
  match config.provider {
    ProviderKind::Docker => Ok(Backend::Docker(Arc::new(DockerSandbox::new(config.clone())))),
    ProviderKind::E2b => {
      let opts = E2bOptions::resolve(config.e2b.as_ref(), &|k| std::env::var(k).ok())?;
      Ok(Backend::E2b(Arc::new(E2bSandbox::new(config.clone(), opts))))
    }
  }
}

impl AnySandbox {
  /// A new, not started sandbox of `config.provider`.
  pub fn new(config: &SandboxConfig) -> Result<Self> {
    let backend = make_backend(config)?;
    let id = match &backend {
      Backend::Docker(s) => s.id.clone(),
      Backend::E2b(s) => s.id.clone(),
    };
    Ok(Self { id, backend: RwLock::new(backend), background: Mutex::new(HashSet::new()) })
  }

  fn backend(&self) -> Backend {
    self.backend.read().unwrap().clone()
  }

  pub fn id(&self) -> &str {
    &self.id
  }

  pub fn config(&self) -> SandboxConfig {
    each!(self, s => s.config.clone())
  }

  pub fn state(&self) -> State {
    each!(self, s => s.state())
  }

  /// How commands run: 'guest' or 'exec' for Docker.
  pub fn engine_name(&self) -> &'static str {
    match self.backend() {
      Backend::Docker(s) => s.engine_name(),
      Backend::E2b(_) => "e2b",
    }
  }

  /// Starts the sandbox. When the provider cannot provide one for availability reasons (its
  /// service unreachable, 5xx, capacity or rate limits) on the first start, the configured
  /// `fallbackProviders` are tried in order; the sandbox keeps its id, and `provider` then names
  /// the provider that runs it.
  pub async fn start(&self, progress: Option<ProgressFn>) -> Result<()> {
    let first_start = self.state() == State::Created;
    let err = match self.start_backend(progress.clone()).await {
      Ok(()) => return Ok(()),
      Err(e) => e,
    };
    let config = self.config();
    if !first_start || config.fallback_providers.is_empty() || !is_availability(&err) {
      return Err(err);
    }
    let mut tried = vec![format!("{}: {}", config.provider.as_str(), err.message)];
    for kind in &config.fallback_providers {
      tracing::warn!(sandbox = %self.id, from = config.provider.as_str(), to = kind.as_str(), error = %err, "provider unavailable; trying a fallback provider");
      let _ = self.destroy().await;
      let backend = match make_backend(&SandboxConfig { provider: *kind, ..config.clone() }) {
        Ok(b) => b,
        Err(e) => {
          tried.push(format!("{}: {}", kind.as_str(), e.message));
          continue;
        }
      };
      *self.backend.write().unwrap() = backend;
      match self.start_backend(progress.clone()).await {
        Ok(()) => return Ok(()),
        Err(e) => tried.push(format!("{}: {}", kind.as_str(), e.message)),
      }
    }
    Err(SandboxError::new(err.code, format!("no provider could start the sandbox ({})", tried.join("; "))))
  }

  async fn start_backend(&self, progress: Option<ProgressFn>) -> Result<()> {
    match self.backend() {
      Backend::Docker(s) => s.start(progress).await,
      Backend::E2b(s) => s.start().await,
    }
  }

  pub async fn stop(&self) -> Result<()> {
    each!(self, s => s.stop().await)
  }

  pub async fn destroy(&self) -> Result<()> {
    each!(self, s => s.destroy().await)
  }

  pub async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    let p = each!(self, s => s.spawn(command, args, opts, background, open_stdin, sink).await)?;
    if background && p.pid != 0 {
      self.background.lock().unwrap().insert(p.pid);
    }
    Ok(p)
  }

  pub async fn execute(&self, command: &str, args: &[String], opts: ExecOptions) -> Result<ExecResult> {
    self.execute_with(command, args, opts, None, None).await
  }

  /// Run a command to its end, streaming output to `sink`; `abort` kills its process group and
  /// rejects with ABORTED.
  pub async fn execute_with(
    &self,
    command: &str,
    args: &[String],
    mut opts: ExecOptions,
    sink: Option<OutputSink>,
    abort: Option<tokio::sync::oneshot::Receiver<()>>,
  ) -> Result<ExecResult> {
    let stdin = opts.stdin.take();
    let p = self.spawn(command, args, &opts, false, stdin.is_some(), sink).await?;
    if let Some(data) = stdin {
      let _ = p.stdin(data);
      let _ = p.close_stdin();
    }
    let out = match abort {
      None => p.wait().await?,
      Some(abort) => {
        tokio::select! {
          r = p.wait() => r?,
          Ok(()) = abort => {
            let _ = p.signal(9);
            let _ = tokio::time::timeout(Duration::from_secs(10), p.wait()).await;
            return Err(SandboxError::new(ErrorCode::Aborted, format!("{command} was aborted by its AbortSignal; its process group was killed")));
          }
        }
      }
    };
    Ok(to_result(out))
  }

  /// Forget a background process once it ended (for `listProcesses`).
  pub fn background_ended(&self, pid: u32) {
    self.background.lock().unwrap().remove(&pid);
  }

  pub fn is_background(&self, pid: u32) -> bool {
    self.background.lock().unwrap().contains(&pid)
  }

  pub async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    each!(self, s => s.write_file(path, content).await)
  }

  pub async fn read_file(&self, path: &str) -> FileOp {
    each!(self, s => s.read_file(path).await)
  }

  pub async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    each!(self, s => s.delete_file(path, recursive).await)
  }

  pub async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    each!(self, s => s.list_files(path, all).await)
  }

  pub async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    each!(self, s => s.list_files_detailed(path, recursive, all).await)
  }

  pub async fn stats(&self) -> Result<Stats> {
    each!(self, s => s.stats().await)
  }

  pub async fn health(&self) -> Health {
    each!(self, s => s.health().await)
  }

  /// Kill every process started in the sandbox.
  pub async fn kill_all(&self) -> Result<()> {
    self.background.lock().unwrap().clear();
    each!(self, s => s.kill_all().await)
  }

  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    each!(self, s => s.processes().await)
  }

  /// Back to a clean sandbox for the next user of a pool: processes killed, workspace and /tmp emptied.
  pub async fn reset(&self) -> Result<()> {
    self.background.lock().unwrap().clear();
    each!(self, s => s.reset().await)
  }
}
