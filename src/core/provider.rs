//! What a provider implements: one sandbox on some isolation technology (a Docker container, an
//! E2B microVM, a JavaScript class). `AnySandbox` drives a provider through this trait and adds
//! what is the same for every provider (logs, counters, the command policy, sessions' bookkeeping,
//! background processes); the manager makes providers through a [`ProviderFactory`].
//!
//! Contract for implementations: every call has its own deadline (a provider that hangs must not
//! hang its caller forever); `spawn` returns as soon as the process runs, and its `Spawned`
//! delivers the result; file operations report failures in the `FileOp` rather than as errors;
//! `destroy` is idempotent.

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::config::SandboxConfig;
use crate::core::error::Result;
use crate::core::process::{OutputSink, Spawned};
use crate::core::types::{ExecOptions, FileInfo, FileOp, Health, ProcessEntry, State, Stats};

/// Progress of `start` (for Docker: the image pull), reported to `start({ onProgress })`.
#[derive(Debug, Clone)]
pub struct PullProgress {
  pub status: String,
  pub id: Option<String>,
  pub progress: Option<String>,
}

pub type ProgressFn = Arc<dyn Fn(PullProgress) + Send + Sync>;

/// One decision of a sandbox's egress gateway (README "Network"): a connection (or a DNS
/// query) the sandbox made, allowed or denied, and the rule that decided.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkEvent {
  /// `http`, `connect`, `socks` or `dns`
  pub proto: String,
  /// the destination as the sandbox named it (a host name or an address)
  pub dest: String,
  /// the address it resolved to (when it got that far)
  pub ip: Option<String>,
  pub port: u16,
  pub allow: bool,
  pub rule: String,
  /// why a connection failed or was refused
  pub reason: Option<String>,
}

/// Where a provider reports its network decisions (the sandbox's log).
pub type NetworkLog = Arc<dyn Fn(NetworkEvent) + Send + Sync>;

/// The egress policy a sandbox runs with and its counters (`getStatus().network`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkStatus {
  pub policy: crate::core::config::NetworkPolicy,
  /// where the sandbox's HTTP(S) proxy, SOCKS5 endpoint and resolver are (`ip`)
  pub gateway: Option<String>,
  pub allowed: u64,
  pub denied: u64,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
  /// Stable for the sandbox's life.
  fn id(&self) -> &str;
  /// The effective configuration it was made with.
  fn config(&self) -> &SandboxConfig;
  fn state(&self) -> State;
  /// How commands run: 'guest' or 'exec' on Docker, 'e2b', or a JavaScript provider's name.
  fn engine_name(&self) -> String;

  /// Creates the sandbox (or resumes it after `stop`).
  async fn start(&self, progress: Option<ProgressFn>) -> Result<()>;
  /// Ends its processes and freezes it; `start` resumes it.
  async fn stop(&self) -> Result<()>;
  /// Removes it for good; idempotent.
  async fn destroy(&self) -> Result<()>;
  /// Removes its resources directly, past whatever blocks `destroy` (called when a destroy did
  /// not finish in time). `Ok(false)` when there was nothing to remove.
  async fn force_remove(&self) -> Result<bool>;

  /// Starts `command` with `args` (a real argv); the caller checked the command policy.
  async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned>;

  async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp;
  async fn read_file(&self, path: &str) -> FileOp;
  /// At most the first `max` bytes (internal readers that must not load a huge file).
  async fn read_file_max(&self, path: &str, max: usize) -> FileOp;
  async fn delete_file(&self, path: &str, recursive: bool) -> FileOp;
  async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>>;
  async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>>;
  /// Paths under `path` (relative to it): its names, or with `recursive` the whole tree.
  async fn list_paths(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<String>> {
    if recursive {
      Ok(self.list_files_detailed(path, true, all).await?.into_iter().map(|f| f.path).collect())
    } else {
      self.list_files(path, all).await
    }
  }

  async fn stats(&self) -> Result<Stats>;
  async fn health(&self) -> Health;
  /// Kills every process started in the sandbox.
  async fn kill_all(&self) -> Result<()>;
  /// Processes started in the sandbox (not its init or the provider's own machinery).
  async fn processes(&self) -> Result<Vec<ProcessEntry>>;
  /// Back to a clean state for the next user of a pool: processes killed, workspace and
  /// temporary directories emptied.
  async fn reset(&self) -> Result<()>;

  /// Replaces the egress rules of the running sandbox (`network` of the config): takes effect
  /// for new connections. Providers without an egress policy refuse it.
  async fn update_network(&self, _policy: crate::core::config::NetworkPolicy) -> Result<()> {
    Err(crate::core::error::SandboxError::invalid_config(format!(
      "updateNetwork is not supported by this sandbox's provider ({})",
      self.engine_name()
    )))
  }
  /// The egress policy and its counters, for a sandbox created with `network` rules.
  fn network_status(&self) -> Option<NetworkStatus> {
    None
  }
  /// Where to report network decisions; set by the sandbox before `start`.
  fn set_network_log(&self, _log: NetworkLog) {}

  /// Saves the running sandbox's filesystem as a snapshot named `name` (a generated name when
  /// `None`) that `createSandbox({ fromSnapshot })` starts new sandboxes from. Providers that
  /// cannot copy a sandbox's filesystem refuse with NOT_SUPPORTED.
  async fn snapshot(&self, _name: Option<String>) -> Result<crate::core::snapshot::SnapshotInfo> {
    Err(crate::core::error::SandboxError::new(
      crate::core::error::ErrorCode::NotSupported,
      format!(
        "snapshots are not supported by this sandbox's provider ({}); only the docker provider takes them (README \"Snapshots\")",
        self.engine_name()
      ),
    ))
  }

  /// Instead of `start`: re-attach to the running persistent sandbox with this provider
  /// sandbox's id, made by another process (`manager.connect`).
  async fn reconnect(&self) -> Result<()> {
    Err(crate::core::error::SandboxError::new(
      crate::core::error::ErrorCode::NotSupported,
      format!("connect() is not supported by this sandbox's provider ({}); persistent sandboxes are a docker provider feature", self.engine_name()),
    ))
  }
  /// When a persistent sandbox's lifetime ends (Unix milliseconds).
  fn expires_at_ms(&self) -> Option<f64> {
    None
  }
}

/// Makes not-yet-started provider sandboxes. `id`, when given, is the id the sandbox must keep
/// (a session's sandbox recreated after expiry keeps its id, container name and labels).
pub trait ProviderFactory: Send + Sync {
  fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>>;
}
