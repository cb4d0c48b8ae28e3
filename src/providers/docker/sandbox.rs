//! One Docker sandbox: a hardened container with a size-capped workspace volume and (for
//! `networkMode: 'isolated'`) its own internal network.
//!
//! Lifecycle: `start()` pulls the image when missing, creates the volume, the network and the
//! container, and starts it. `stop()` kills every process started in the sandbox and leaves the
//! container running idle (or, for images that keep their own command, freezes it with `docker
//! pause`), keeping the workspace; `start()` after `stop()` resumes it. `destroy()` removes the
//! container, then the volume, then the network. Every engine and guest call of the lifecycle has
//! a deadline (see the constants below); `stop()`, `destroy()` and `reset()` end within
//! [`LIFECYCLE_BUDGET`] whatever runs inside the sandbox.

pub mod gateway;
pub mod subnet;
mod user;
mod watchdog;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
  ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig, Ipam, IpamConfig, Mount, MountTypeEnum, NetworkCreateRequest,
  VolumeCreateOptions,
};
use bollard::query_parameters::{
  AttachContainerOptions, CreateContainerOptions, CreateImageOptions, RemoveContainerOptions, StatsOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::exec::{self, ExecRequest};
use super::guest::{self, GuestConn, GUEST_DIR, GUEST_PATH};
use crate::core::process::{ExecOutput, OutputSink, Spawned};
use super::{labels, persistent, record, remove_owned, Owned};
use watchdog::Watchdog;
use crate::core::config::{ExecEngine, NetworkMode, SandboxConfig};
use crate::providers::docker::protocol::{ProcessEntry, Reply, Request};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::paths;
use crate::core::types::*;

pub use crate::core::process::to_result;

/// The host's architecture as Docker names it.
fn host_arch() -> &'static str {
  match std::env::consts::ARCH {
    "aarch64" => "arm64",
    _ => "amd64",
  }
}
pub use crate::core::provider::{ProgressFn, PullProgress};

const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
const MAX_READ: usize = 256 * 1024 * 1024;

const WRITE_SCRIPT: &str = r#"p=$1; d=${p%/*}; [ -n "$d" ] || d=/
[ -d "$p" ] && { echo "$p is a directory" >&2; exit 21; }
mkdir -p -- "$d" || exit 1
t="$d/.agentic-sandbox-write.$$"
cat > "$t" || { rm -f -- "$t"; exit 1; }
mv -f -- "$t" "$p" || { rm -f -- "$t"; exit 1; }"#;
const READ_SCRIPT: &str = r#"[ -d "$1" ] && { echo "$1 is a directory" >&2; exit 21; }; exec cat -- "$1""#;
/// The first $2 bytes of $1 (`cat`, cut by the output cap, where the image has no `head`).
const READ_PREFIX_SCRIPT: &str = r#"[ -d "$1" ] && { echo "$1 is a directory" >&2; exit 21; }
command -v head >/dev/null 2>&1 && exec head -c "$2" -- "$1"; exec cat -- "$1""#;
const LIST_SCRIPT: &str = r#"cd -- "$1" || exit 2
if [ "$2" = all ]; then set -- * .[!.]* ..?*; else set -- *; fi
for f; do [ -e "$f" ] || [ -L "$f" ] || continue; printf '%s\0' "$f"; done"#;
const LIST_DETAILED_SCRIPT: &str = r#"cd -- "$1" || exit 2
if [ "$2" = recursive ]; then find . -mindepth 1 -exec stat -c '%s %Y %a %f %n' {} +
else find . -mindepth 1 -maxdepth 1 -exec stat -c '%s %Y %a %f %n' {} +; fi"#;
/// Kill every process that is not in the session of PID 1 (the init and the image's own service),
/// except this shell. Used by `stop()`.
const KILL_ALL_SCRIPT: &str = r#"read -r l < /proc/1/stat; r=${l##*") "}; set -- $r; s1=$4; me=$$
for sig in STOP KILL KILL; do for f in /proc/[0-9]*/stat; do p=${f#/proc/}; p=${p%/stat}
[ "$p" = 1 ] && continue; [ "$p" = "$me" ] && continue
read -r l < "$f" 2>/dev/null || continue; r=${l##*") "}; set -- $r
[ "$4" = "$s1" ] && continue; kill -s $sig "$p" 2>/dev/null; done; done; exit 0"#;

/// Empty every directory given (dotfiles included; a missing one is skipped), then check that each
/// is empty. Used by `reset()` on the exec engine.
const CLEAR_SCRIPT: &str = r#"for d; do [ -d "$d" ] || continue
for f in "$d"/* "$d"/.[!.]* "$d"/..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; rm -rf -- "$f" || exit 1; done
for f in "$d"/* "$d"/.[!.]* "$d"/..?*; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f is still there" >&2; exit 1; fi; done
done"#;

/// The exec engine's process listing: first line is the shell's own pid, then one record per
/// process: `pid ppid state rssKB` NUL cmdline-with-NULs-as-\x01 newline.
const PROCESSES_SCRIPT: &str = r#"echo $$; read -r l < /proc/1/stat; r=${l##*") "}; set -- $r; s1=$4
for f in /proc/[0-9]*/stat; do p=${f#/proc/}; p=${p%/stat}; [ "$p" = 1 ] && continue
read -r l < "$f" 2>/dev/null || continue; r=${l##*") "}; set -- $r
[ "$4" = "$s1" ] && continue; [ "$1" = Z ] && continue
rss=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' /proc/$p/status 2>/dev/null)
printf '%s %s %s %s\0' "$p" "$2" "$1" "${rss:-0}"; tr '\0\n' '\001\002' < /proc/$p/cmdline 2>/dev/null; echo; done"#;

fn parse_processes(out: &[u8]) -> Vec<ProcessEntry> {
  let mut v = Vec::new();
  for line in out.split(|b| *b == b'\n').skip(1) {
    let Some(nul) = line.iter().position(|b| *b == 0) else { continue };
    let head = String::from_utf8_lossy(&line[..nul]);
    let f: Vec<&str> = head.split(' ').collect();
    let (Some(pid), Some(ppid)) = (f.first().and_then(|x| x.parse().ok()), f.get(1).and_then(|x| x.parse().ok())) else { continue };
    let cmdline = line[nul + 1..].split(|b| *b == 1).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).replace('\u{2}', "\n")).collect();
    v.push(ProcessEntry {
      pid,
      ppid,
      state: f.get(2).unwrap_or(&"").to_string(),
      cmdline,
      request: None,
      rss_kb: f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
    });
  }
  v.sort_by_key(|p| p.pid);
  v
}

#[derive(Debug, Default)]
struct Resources {
  docker: Option<Docker>,
  container: Option<String>,
  volume: Option<String>,
  guest_volume: Option<String>,
  network: Option<String>,
  /// the egress gateway's container (sandboxes with `network` rules)
  gateway: Option<String>,
}

/// How the guest daemon reaches the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
  /// bind-mount the host's binary (the engine runs on this machine)
  Bind,
  /// upload it into a small volume with put_archive (a remote engine), mounted read-only
  Upload,
}

/// Which engine runs a call.
enum Engine {
  Guest(Arc<GuestConn>),
  Exec(Docker, String),
}

/// What `start()` decided for this sandbox's container.
#[derive(Debug, Clone, Default)]
struct Plan {
  /// `user[:group]` of every command, helper script and attached guest (see `user.rs`)
  user: Option<String>,
  /// added to the environment of every `docker exec` (HOME, for images that keep their command)
  exec_env: Vec<String>,
  /// the image's own command runs: `stop()` pauses, and a watchdog exec guards the owner
  keep_command: bool,
}

// Deadlines of the lifecycle. Every Docker API call and guest call made by start, stop, destroy,
// kill_all, reset, health and resume has one, so that no lock is held across an unbounded await
// and stop/destroy/reset end within `LIFECYCLE_BUDGET` whatever runs inside the sandbox.

/// One Docker API call that should be quick (inspect, kill, pause, unpause, remove, create a volume,
/// a network or an exec).
const DOCKER_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting to the engine (the first connect also reaps stale resources of dead processes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Creating or starting a container, or uploading the guest binary, on a busy engine.
const DOCKER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// An image pull that reports no progress for this long fails.
const PULL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// One guest call of the lifecycle (kill-all, the health probe, reset's listings and removals).
/// A guest that misses it is treated as dead: calls go to the exec engine, or to a fresh guest.
const GUEST_CALL_TIMEOUT: Duration = Duration::from_secs(4);
/// A helper `docker exec` of the lifecycle (the kill script, the health probe, reset's clearing),
/// creation and start included.
const LIFECYCLE_EXEC_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole health check (the guest restart or exec fallback it may need included).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stop() waits for a `start()` in progress before it gives up.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// How long `destroy()` waits for the engine to remove the sandbox before it resolves and lets
/// the removal go on in the background (under the manager's default destroy bound of 10 s,
/// SANDBOX_DESTROY_TIMEOUT_SECONDS).
const DESTROY_WAIT: Duration = Duration::from_secs(8);
/// The most a removal that `destroy()` left to the background may take.
const BACKGROUND_REMOVAL_TIMEOUT: Duration = Duration::from_secs(300);
/// The most stop(), destroy() and reset() take, whatever runs in the sandbox.
pub const LIFECYCLE_BUDGET: Duration = Duration::from_secs(15);

fn late(what: &str, limit: Duration) -> SandboxError {
  SandboxError::provider(format!("{what}: no answer within {} s", limit.as_secs_f64()))
}

/// `f`, or a ProviderError saying what did not finish within `limit`.
async fn bounded<T>(what: &str, limit: Duration, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
  tokio::time::timeout(limit, f).await.unwrap_or_else(|_| Err(late(what, limit)))
}

/// One Docker API call with a deadline; the engine's error goes through `map`.
pub(super) async fn call<T>(
  what: &str,
  limit: Duration,
  f: impl std::future::Future<Output = std::result::Result<T, bollard::errors::Error>>,
  map: impl FnOnce(bollard::errors::Error) -> SandboxError,
) -> Result<T> {
  match tokio::time::timeout(limit, f).await {
    Ok(r) => r.map_err(map),
    Err(_) => Err(late(what, limit)),
  }
}

fn provider_err(what: &'static str) -> impl FnOnce(bollard::errors::Error) -> SandboxError {
  move |e| SandboxError::provider(format!("{what}: {e}"))
}

pub struct DockerSandbox {
  pub id: String,
  pub config: SandboxConfig,
  state: Mutex<State>,
  lifecycle: tokio::sync::Mutex<()>,
  res: Mutex<Resources>,
  last_cpu: Mutex<Option<(u64, u64)>>,
  guest: Mutex<Option<Arc<GuestConn>>>,
  /// the guest was attached with `docker exec` (the image keeps its own command), so a dead guest
  /// can be restarted; as the container's command its death stops the container
  guest_by_exec: Mutex<bool>,
  /// why the current guest is no longer trusted although its stream is open (it missed a
  /// lifecycle deadline)
  guest_stalled: Mutex<Option<String>>,
  /// calls go to the exec engine: the guest (the container's command) stopped answering while the
  /// container runs on. The connection is kept, because the guest is also the owner watchdog.
  exec_fallback: Mutex<bool>,
  guest_cpu: Mutex<Option<(u64, Instant)>>,
  reattach: tokio::sync::Mutex<()>,
  plan: Mutex<Plan>,
  /// the owner watchdog of the exec engine and of images that keep their command
  watchdog: Mutex<Option<Watchdog>>,
  /// one watchdog restart at a time: replacing a live watchdog closes its stdin, and a watchdog
  /// exec that sees end of input stops the image's command
  watchdog_restart: tokio::sync::Mutex<()>,
  /// the egress gateway of a sandbox with `network` rules, once started
  egress: Mutex<Option<Arc<gateway::Gateway>>>,
  /// where network decisions go (the sandbox's log)
  network_log: Mutex<Option<crate::core::provider::NetworkLog>>,
  /// when a persistent sandbox's lifetime ends (Unix ms), from its record
  expires_at: Mutex<Option<f64>>,
}

fn new_id() -> String {
  let bytes: [u8; 8] = rand::random();
  format!("docker-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn not_running_message(id: &str, state: State) -> String {
  match state {
    State::Destroyed => format!("Sandbox {id} not running: it was destroyed; create a new sandbox"),
    State::Starting => format!("Sandbox {id} not running yet (state: starting); await start() first"),
    State::Error => format!("Sandbox {id} not running (state: error: its start failed or its container stopped); call start() to start it afresh (the workspace is lost) or destroy it"),
    s => format!("Sandbox {id} not running (state: {}); call start() first", s.as_str()),
  }
}

fn destroyed_error(id: &str) -> SandboxError {
  SandboxError::new(ErrorCode::SandboxDestroyed, format!("sandbox {id} was destroyed; create a new one"))
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
  match e {
    bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
    _ => None,
  }
}

fn split_image(image: &str) -> (String, String) {
  if image.contains('@') {
    return (image.to_string(), String::new());
  }
  let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
  match image[slash..].rfind(':') {
    Some(i) => (image[..slash + i].to_string(), image[slash + i + 1..].to_string()),
    None => (image.to_string(), "latest".to_string()),
  }
}

/// `path:options` → (path, options). tmpfs pages count toward the memory limit, so a mount without
/// an explicit `size=` gets min(100 MB, memoryMB / 2): a full /tmp can then never pin the sandbox at
/// its memory limit.
fn tmpfs_entry(spec: &str, memory_mb: f64) -> (String, String) {
  let (path, opts) = spec.split_once(':').unwrap_or((spec, ""));
  let mut opts = opts.to_string();
  if !opts.split(',').any(|o| o.starts_with("size=")) {
    let size_kb = (memory_mb.min(200.0) / 2.0 * 1024.0) as u64;
    opts = if opts.is_empty() { format!("size={size_kb}k") } else { format!("{opts},size={size_kb}k") };
  }
  (path.to_string(), opts)
}

/// The directories `reset()` empties: every writable place a read-only-root sandbox has.
fn writable_dirs(workdir: &str, tmpfs: &[String]) -> Vec<String> {
  let mut dirs = vec![workdir.to_string(), "/dev/shm".to_string(), "/dev/mqueue".to_string()];
  for t in tmpfs {
    let path = paths::normalize(t.split_once(':').map(|(p, _)| p).unwrap_or(t));
    if !dirs.contains(&path) {
      dirs.push(path);
    }
  }
  dirs
}

/// The log driver of every container this library creates: the library never reads engine logs,
/// so nothing the sandbox prints ever lands on the host's disk.
fn no_logs() -> Option<HostConfigLogConfig> {
  Some(HostConfigLogConfig { typ: Some("none".into()), config: None })
}

impl DockerSandbox {
  pub fn new(config: SandboxConfig) -> Self {
    if config.limits.network_mbps.is_some() {
      tracing::warn!("limits.networkMbps is not enforced by the docker provider");
    }
    Self {
      id: new_id(),
      config,
      state: Mutex::new(State::Created),
      lifecycle: tokio::sync::Mutex::new(()),
      res: Mutex::new(Resources::default()),
      last_cpu: Mutex::new(None),
      guest: Mutex::new(None),
      guest_by_exec: Mutex::new(false),
      guest_stalled: Mutex::new(None),
      exec_fallback: Mutex::new(false),
      guest_cpu: Mutex::new(None),
      reattach: tokio::sync::Mutex::new(()),
      plan: Mutex::new(Plan::default()),
      watchdog: Mutex::new(None),
      watchdog_restart: tokio::sync::Mutex::new(()),
      egress: Mutex::new(None),
      network_log: Mutex::new(None),
      expires_at: Mutex::new(None),
    }
  }

  pub fn state(&self) -> State {
    *self.state.lock().unwrap()
  }

  /// `Destroyed` is final: a start() or stop() that finishes after a concurrent destroy() cannot
  /// bring the sandbox back.
  fn set_state(&self, s: State) {
    let mut st = self.state.lock().unwrap();
    if *st == State::Destroyed && s != State::Destroyed {
      return;
    }
    tracing::debug!(sandbox = %self.id, state = s.as_str(), "state");
    *st = s;
  }

  fn check_destroyed(&self) -> Result<()> {
    if self.state() == State::Destroyed {
      return Err(destroyed_error(&self.id));
    }
    Ok(())
  }

  fn owned(&self) -> Owned {
    let r = self.res.lock().unwrap();
    Owned {
      socket_path: self.config.docker.socket_path.clone(),
      container: r.container.clone(),
      volume: r.volume.clone(),
      guest_volume: r.guest_volume.clone(),
      network: r.network.clone(),
      gateway: r.gateway.clone(),
    }
  }

  fn sync_registry(&self) {
    // a persistent sandbox outlives this process once it runs: the exit hook leaves it alone
    if self.config.persistent && matches!(self.state(), State::Running | State::Stopped) {
      record(&self.id, Owned::default());
      return;
    }
    record(&self.id, self.owned());
  }

  /// The engine client and container of a running sandbox, or SANDBOX_NOT_RUNNING.
  pub(crate) fn running(&self) -> Result<(Docker, String)> {
    let state = self.state();
    if state != State::Running {
      return Err(SandboxError::new(ErrorCode::SandboxNotRunning, not_running_message(&self.id, state)));
    }
    self.container()
  }

  /// The engine client and container, whatever the state.
  fn container(&self) -> Result<(Docker, String)> {
    let r = self.res.lock().unwrap();
    match (&r.docker, &r.container) {
      (Some(d), Some(c)) => Ok((d.clone(), c.clone())),
      _ => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("sandbox {} has no container", self.id))),
    }
  }

  /// The user every command runs as (decided at start).
  fn exec_user(&self) -> Option<String> {
    self.plan.lock().unwrap().user.clone()
  }

  fn exec_env(&self) -> Vec<String> {
    self.plan.lock().unwrap().exec_env.clone()
  }

  // ---------------------------------------------------------------- lifecycle

  pub async fn start(&self, progress: Option<ProgressFn>) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    match self.state() {
      State::Running => return Ok(()),
      State::Destroyed => return Err(destroyed_error(&self.id)),
      State::Stopped => return self.resume().await,
      // whatever is left of the previous container goes; this start begins afresh
      State::Error => bounded("removing the failed sandbox's container", LIFECYCLE_BUDGET, self.release_resources()).await?,
      _ => {}
    }
    self.set_state(State::Starting);
    let result = self.create_and_start(progress).await;
    if self.state() == State::Destroyed {
      // destroy() ran meanwhile (it does not wait for a start): remove what this start made since
      if let Err(e) = bounded("removing a sandbox destroyed while starting", LIFECYCLE_BUDGET, self.release_resources()).await {
        tracing::warn!(sandbox = %self.id, error = %e, "cleanup after a destroy during start incomplete");
      }
      return Err(destroyed_error(&self.id));
    }
    match result {
      Ok(()) => {
        self.set_state(State::Running);
        self.sync_registry();
        Ok(())
      }
      Err(e) => {
        // roll back whatever was created, so a failed start leaks nothing
        if let Err(ce) = bounded("rolling back a failed start", LIFECYCLE_BUDGET, self.release_resources()).await {
          tracing::warn!(sandbox = %self.id, error = %ce, "rollback after failed start incomplete");
        }
        self.set_state(State::Error);
        Err(e)
      }
    }
  }

  /// Re-attach this (not started) sandbox object to the running container of the persistent
  /// sandbox with its id, made by another process (`manager.connect`, see persistent.rs): its
  /// volumes and network are found by label, commands run as the user it was made for, through
  /// a guest attached with `docker exec` (or the exec engine when it has no guest binary).
  pub async fn reconnect(&self) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    if self.state() != State::Created {
      return Err(SandboxError::invalid_argument(format!("sandbox {} was started already; connect() re-attaches a fresh sandbox object", self.id)));
    }
    self.set_state(State::Starting);
    let r = self.reattach_existing().await;
    match r {
      Ok(()) => {
        self.set_state(State::Running);
        self.sync_registry();
        Ok(())
      }
      Err(e) => {
        // nothing here is ours to remove: the sandbox stays as it was
        self.guest.lock().unwrap().take();
        self.forget_resources(false);
        self.set_state(State::Error);
        Err(e)
      }
    }
  }

  async fn reattach_existing(&self) -> Result<()> {
    let docker = bounded("connecting to the Docker engine", CONNECT_TIMEOUT, super::connect(self.config.docker.socket_path.as_deref())).await?;
    self.res.lock().unwrap().docker = Some(docker.clone());
    let found = persistent::find(&docker, &self.id).await?;
    let by_label = HashMap::from([("label".to_string(), vec![format!("{}={}", super::LABEL_ID, self.id)])]);
    let volumes = call(
      "listing the sandbox's volumes",
      DOCKER_CALL_TIMEOUT,
      docker.list_volumes(Some(bollard::query_parameters::ListVolumesOptions { filters: Some(by_label.clone()) })),
      provider_err("could not list the sandbox's volumes"),
    )
    .await?;
    let networks = call(
      "listing the sandbox's networks",
      DOCKER_CALL_TIMEOUT,
      docker.list_networks(Some(bollard::query_parameters::ListNetworksOptions { filters: Some(by_label) })),
      provider_err("could not list the sandbox's networks"),
    )
    .await?;
    let workspace = format!("agentic-sandbox-{}-workspace", self.id);
    {
      let mut r = self.res.lock().unwrap();
      r.container = Some(found.container.clone());
      for v in volumes.volumes.unwrap_or_default() {
        if v.name == workspace {
          r.volume = Some(v.name);
        } else {
          r.guest_volume = Some(v.name);
        }
      }
      r.network = networks.into_iter().find_map(|n| n.name);
    }
    *self.plan.lock().unwrap() = Plan { user: Some(found.record.user.clone()), exec_env: Vec::new(), keep_command: false };
    *self.expires_at.lock().unwrap() = Some(found.record.expires_at_ms);
    if found.guest_mounted && self.config.docker.exec_engine != ExecEngine::Exec {
      let conn = self.attach_guest_by_exec(&docker, &found.container).await?;
      self.set_guest(conn, true);
    }
    tracing::debug!(sandbox = %self.id, engine = self.engine_name(), "re-attached");
    Ok(())
  }

  /// `start()` after `stop()`: thaw a paused container (images that keep their command), or check
  /// that the idle container still runs.
  async fn resume(&self) -> Result<()> {
    let (docker, container) = self.container().map_err(|_| SandboxError::provider("stopped sandbox has no container"))?;
    self.set_state(State::Starting);
    let keep_command = self.plan.lock().unwrap().keep_command;
    let resumed = if keep_command {
      call("docker unpause", DOCKER_CALL_TIMEOUT, docker.unpause_container(&container), provider_err("docker unpause failed")).await
    } else {
      match self.container_running(&docker, &container).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(SandboxError::new(
          ErrorCode::SandboxNotRunning,
          format!("the container of sandbox {} stopped while the sandbox was stopped", self.id),
        )),
        Err(e) => Err(e),
      }
    };
    match resumed {
      Ok(()) => {
        self.set_state(State::Running);
        if keep_command {
          self.ensure_watchdog(&docker, &container).await;
        }
        Ok(())
      }
      Err(e) => {
        self.set_state(State::Error);
        Err(SandboxError::new(
          e.code,
          format!("could not resume sandbox {}: {}; call start() again to start it afresh (the workspace is lost) or destroy it", self.id, e.message),
        ))
      }
    }
  }

  /// Whether the container runs (and is not paused), asked with a deadline. A missing container
  /// is not running.
  async fn container_running(&self, docker: &Docker, container: &str) -> Result<bool> {
    let info = tokio::time::timeout(
      DOCKER_CALL_TIMEOUT,
      docker.inspect_container(container, None::<bollard::query_parameters::InspectContainerOptions>),
    )
    .await
    .map_err(|_| late("docker inspect", DOCKER_CALL_TIMEOUT))?;
    match info {
      Ok(i) => Ok(i.state.map(|s| s.running == Some(true) && s.paused != Some(true)).unwrap_or(false)),
      Err(e) if status_of(&e) == Some(404) => Ok(false),
      Err(e) => Err(SandboxError::provider(format!("docker inspect failed: {e}"))),
    }
  }

  async fn create_and_start(&self, progress: Option<ProgressFn>) -> Result<()> {
    let cfg = &self.config;
    let docker = bounded("connecting to the Docker engine", CONNECT_TIMEOUT, super::connect(cfg.docker.socket_path.as_deref())).await?;
    self.res.lock().unwrap().docker = Some(docker.clone());
    if let Some(name) = &cfg.from_snapshot {
      // before ensure_image, which would try to pull a missing snapshot from a registry
      super::snapshot::check_exists(&docker, name).await?;
    }
    let image = self.ensure_image(&docker, progress).await?;
    self.check_destroyed()?;
    let labels = labels(&self.id);
    let guest_plan = self.guest_plan(&image);
    let keep_command = cfg.docker.keep_image_command.unwrap_or_else(|| {
      image.config.as_ref().and_then(|c| c.exposed_ports.as_ref()).map(|p| !p.is_empty()).unwrap_or(false)
    });
    if keep_command && cfg.persistent {
      return Err(SandboxError::invalid_config(format!(
        "persistent: true needs the sandbox's own command, but image {} keeps its command (it exposes ports, or docker.keepImageCommand is set); set docker.keepImageCommand: false",
        cfg.image
      )));
    }
    // the guest is the container's command unless the image's own command must keep running;
    // then it is attached with one `docker exec` after the start
    let guest_is_command = guest_plan.is_some() && !keep_command;
    let who = user::decide(
      cfg.docker.user.as_deref(),
      image.config.as_ref().and_then(|c| c.user.as_deref()),
      cfg.env.contains_key("HOME"),
    );
    // the container's own process: the guest runs as the sandbox user; the exec engine's stdin
    // loop as root without capabilities, out of the sandbox user's reach (see watchdog.rs); an
    // image's own command as configured (docker.user, else the image's user)
    let container_user = if guest_is_command {
      Some(who.user.clone())
    } else if keep_command {
      cfg.docker.user.clone()
    } else {
      Some("0:0".to_string())
    };
    let mut env: Vec<String> = cfg.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut exec_env = Vec::new();
    if let Some(home) = &who.home {
      if keep_command { exec_env.push(home.clone()) } else { env.push(home.clone()) }
    }
    *self.plan.lock().unwrap() = Plan { user: Some(who.user.clone()), exec_env, keep_command };
    let mut container_labels = labels.clone();
    if cfg.persistent {
      let record = persistent::Record::new(cfg, &who.user, crate::core::logs::now_ms());
      *self.expires_at.lock().unwrap() = Some(record.expires_at_ms);
      container_labels.insert(persistent::LABEL_PERSISTENT.to_string(), record.label());
    }

    // workspace: a tmpfs-backed volume capped at diskMB, owned by the sandbox user
    let volume_name = format!("agentic-sandbox-{}-workspace", self.id);
    let mut tmpfs_opts = format!("size={}k,mode=1777", (cfg.limits.disk_mb * 1024.0).ceil() as u64);
    if let (Some(uid), gid) = user::numeric_ids(&who.user) {
      tmpfs_opts = format!("{tmpfs_opts},uid={uid}");
      if let Some(gid) = gid {
        tmpfs_opts = format!("{tmpfs_opts},gid={gid}");
      }
    }
    // recorded before it exists: a create that times out may still happen, and destroy removes by name
    self.res.lock().unwrap().volume = Some(volume_name.clone());
    self.sync_registry();
    call(
      "creating the workspace volume",
      DOCKER_CALL_TIMEOUT,
      docker.create_volume(VolumeCreateOptions {
        name: Some(volume_name.clone()),
        driver: Some("local".into()),
        driver_opts: Some(HashMap::from([
          ("type".to_string(), "tmpfs".to_string()),
          ("device".to_string(), "tmpfs".to_string()),
          ("o".to_string(), tmpfs_opts),
        ])),
        labels: Some(labels.clone()),
        ..Default::default()
      }),
      provider_err("could not create the workspace volume"),
    )
    .await?;
    self.check_destroyed()?;

    // with network rules the sandbox gets its own internal network whatever networkMode says
    // ('none' and rules together are refused by the config): the gateway is its only way out
    let mut gateway_ip = None;
    let network_mode = match (cfg.network_mode, &cfg.network) {
      (NetworkMode::None, _) => "none".to_string(),
      (NetworkMode::Bridge, None) => "bridge".to_string(),
      (NetworkMode::Isolated, _) | (NetworkMode::Bridge, Some(_)) => {
        let name = format!("agentic-sandbox-{}-net", self.id);
        self.res.lock().unwrap().network = Some(name.clone());
        self.sync_registry();
        let sub = self.create_isolated_network(&docker, &name, &labels).await?;
        if cfg.network.is_some() {
          gateway_ip = Some(
            gateway::address_in(&sub)
              .ok_or_else(|| SandboxError::provider(format!("no address for the egress gateway in subnet {sub}")))?,
          );
        }
        name
      }
    };
    self.check_destroyed()?;

    let mut mounts = vec![Mount {
      target: Some(cfg.workdir.clone()),
      source: Some(volume_name),
      typ: Some(MountTypeEnum::VOLUME),
      ..Default::default()
    }];
    match &guest_plan {
      Some((path, Delivery::Bind)) => mounts.push(Mount {
        target: Some(GUEST_PATH.into()),
        source: Some(path.to_string_lossy().into_owned()),
        typ: Some(MountTypeEnum::BIND),
        read_only: Some(true),
        ..Default::default()
      }),
      Some((path, Delivery::Upload)) => {
        let name = self.fill_guest_volume(&docker, path, &labels).await?;
        mounts.push(Mount {
          target: Some(GUEST_DIR.into()),
          source: Some(name),
          typ: Some(MountTypeEnum::VOLUME),
          read_only: Some(true),
          ..Default::default()
        });
      }
      None => {}
    }
    let (gw_labels, gw_network) = (labels.clone(), network_mode.clone());
    let gateway = async {
      if let (Some(ip), Some(policy)) = (gateway_ip, &cfg.network) {
        let gw = self.start_gateway(&docker, &image, &gw_network, ip, policy, guest_plan.as_ref().map(|(_, d)| *d), &gw_labels).await?;
        *self.egress.lock().unwrap() = Some(Arc::new(gw));
      }
      Ok::<(), SandboxError>(())
    };
    if let Some(ip) = gateway_ip {
      env.extend(gateway::proxy_env(ip));
    }
    // the gateway starts alongside the sandbox's container (the sandbox has no way out before
    // its gateway applies the rules; a gateway that fails fails the start)
    let sandbox = async {
      let tmpfs: HashMap<String, String> = cfg.docker.tmpfs.iter().map(|t| tmpfs_entry(t, cfg.limits.memory_mb)).collect();
      let mem = (cfg.limits.memory_mb * 1024.0 * 1024.0) as i64;
      let host_config = HostConfig {
        memory: Some(mem),
        memory_swap: Some(mem),
        nano_cpus: Some((cfg.limits.cpu_cores * 1e9) as i64),
        pids_limit: Some(cfg.limits.pids_limit),
        // the guest as the container's command is PID 1 itself (it reaps orphans and cannot be
        // signalled from inside); the exec engine's loop and an image's own command get Docker's init
        init: Some(!guest_is_command),
        readonly_rootfs: Some(cfg.docker.read_only_root),
        cap_drop: Some(cfg.docker.cap_drop.clone()),
        security_opt: Some(cfg.docker.security_opt.clone()),
        tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
        network_mode: Some(network_mode),
        // names through the gateway's resolver, which answers only what the rules allow
        dns: gateway_ip.map(|ip| vec![ip.to_string()]),
        extra_hosts: (!cfg.docker.extra_hosts.is_empty())
          .then(|| cfg.docker.extra_hosts.iter().map(|(n, ip)| format!("{n}:{ip}")).collect()),
        mounts: Some(mounts),
        log_config: no_logs(),
        runtime: cfg.docker.runtime.clone(),
        device_requests: cfg.gpu.then(|| {
          vec![DeviceRequest {
            driver: Some(String::new()),
            count: Some(-1),
            capabilities: Some(vec![vec!["gpu".to_string()]]),
            ..Default::default()
          }]
        }),
        ..Default::default()
      };
      // a persistent sandbox's command ends at its lifetime, not with its owner (persistent.rs)
      let lifetime = cfg.persistent.then(|| persistent::lifetime_secs(cfg).to_string());
      let entrypoint = match (keep_command, guest_is_command, &lifetime) {
        (true, _, _) => None,
        (_, true, None) => Some(vec![GUEST_PATH.to_string()]),
        (_, true, Some(l)) => Some(vec![GUEST_PATH.to_string(), "--lifetime-seconds".to_string(), l.clone()]),
        (_, false, None) => Some(vec!["/bin/sh".to_string(), "-c".to_string(), watchdog::STDIN_LOOP.to_string()]),
        (_, false, Some(l)) => Some(vec!["/bin/sh".to_string(), "-c".to_string(), r#"exec sleep "$0""#.to_string(), l.clone()]),
      };
      // the container's stdin is the owner watchdog (see watchdog.rs), except for an image's own
      // command and a persistent exec-engine sandbox (bound to its lifetime, not to its owner)
      let attach = !keep_command && (guest_is_command || !cfg.persistent);
      let body = ContainerCreateBody {
        image: Some(cfg.image.clone()),
        entrypoint,
        cmd: (!keep_command).then(Vec::new),
        open_stdin: attach.then_some(true),
        // when the owner goes away the engine closes stdin for good: the guest or the loop ends
        stdin_once: attach.then_some(true),
        attach_stdin: attach.then_some(true),
        attach_stdout: attach.then_some(true),
        attach_stderr: attach.then_some(true),
        tty: Some(false),
        env: Some(env),
        working_dir: Some(cfg.workdir.clone()),
        user: container_user,
        labels: Some(container_labels),
        host_config: Some(host_config),
        ..Default::default()
      };
      self.res.lock().unwrap().container = Some(self.id.clone());
      self.sync_registry();
      let created = call(
        "creating the container",
        DOCKER_START_TIMEOUT,
        docker.create_container(Some(CreateContainerOptions { name: Some(self.id.clone()), ..Default::default() }), body),
        |e| match status_of(&e) {
          Some(404) => SandboxError::new(ErrorCode::ImageNotFound, format!("image {} not found: {e}", cfg.image)),
          Some(400) => SandboxError::invalid_config(format!("Docker rejected the sandbox configuration: {e}")),
          _ => SandboxError::provider(format!("could not create the container: {e}")),
        },
      )
      .await?;
      self.res.lock().unwrap().container = Some(created.id.clone());
      self.sync_registry();
      self.check_destroyed()?;
      let attached = if attach {
        Some(
          call(
            "attaching to the container",
            DOCKER_CALL_TIMEOUT,
            docker.attach_container(
              &created.id,
              Some(AttachContainerOptions { stdin: true, stdout: true, stderr: true, stream: true, logs: false, detach_keys: None }),
            ),
            provider_err("could not attach to the container"),
          )
          .await?,
        )
      } else {
        None
      };
      call(
        "starting the container",
        DOCKER_START_TIMEOUT,
        docker.start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>),
        |e| {
          let msg = e.to_string();
          if msg.contains("NVIDIA") || msg.contains("could not select device driver") {
            SandboxError::new(
              ErrorCode::InsufficientResources,
              format!("gpu: true needs the NVIDIA container runtime on the Docker host ({msg})"),
            )
          } else if msg.contains("Minimum memory limit") || msg.contains("CPUs") {
            SandboxError::new(ErrorCode::InsufficientResources, format!("the engine refused the limits: {msg}"))
          } else if msg.contains("runtime") && status_of(&e) == Some(400) {
            SandboxError::invalid_config(format!("Docker rejected docker.runtime: {msg}"))
          } else {
            SandboxError::provider(format!("could not start the container: {msg}"))
          }
        },
      )
      .await?;
      match attached {
        Some(a) if guest_is_command => {
          let conn = GuestConn::connect(a.output, a.input, self.id.clone()).await?;
          self.set_guest(conn, false);
        }
        Some(a) => *self.watchdog.lock().unwrap() = Some(Watchdog::hold(a.output, a.input)),
        // a persistent exec-engine sandbox: bound to its lifetime, no owner watchdog
        None if !keep_command => {}
        None => {
          self.start_exec_watchdog(&docker, &created.id).await?;
          if guest_plan.is_some() {
            let conn = self.attach_guest_by_exec(&docker, &created.id).await?;
            self.set_guest(conn, true);
          }
        }
      }
      Ok::<(), SandboxError>(())
    };
    let (gw, sb) = tokio::join!(gateway, sandbox);
    sb?;
    gw?;
    self.check_destroyed()?;
    if let Some(name) = &cfg.from_snapshot {
      let (_, container) = self.container()?;
      super::snapshot::restore_workspace(&docker, &self.id, &container, name, &cfg.workdir, cfg.limits.disk_mb).await?;
    }
    tracing::debug!(sandbox = %self.id, engine = self.engine_name(), user = %who.user, "started");
    Ok(())
  }

  fn set_guest(&self, conn: Arc<GuestConn>, by_exec: bool) {
    *self.guest.lock().unwrap() = Some(conn);
    *self.guest_by_exec.lock().unwrap() = by_exec;
    *self.guest_stalled.lock().unwrap() = None;
    *self.exec_fallback.lock().unwrap() = false;
  }

  /// Create this sandbox's network for `networkMode: 'isolated'`: internal (no route out), no
  /// address on the host side, and a /28 of `docker.isolatedSubnetPool`, tried from a random
  /// place on and moving on while Docker reports the subnet taken (other sandboxes and processes
  /// allocate from the same pool).
  async fn create_isolated_network(&self, docker: &Docker, name: &str, labels: &HashMap<String, String>) -> Result<String> {
    let pool_text = &self.config.docker.isolated_subnet_pool;
    let pool = subnet::Pool::parse(pool_text).map_err(|e| SandboxError::invalid_config(format!("docker.isolatedSubnetPool {e}")))?;
    let start = rand::random::<u32>() % pool.count();
    let mut tries = 0;
    let mut last = String::new();
    for sub in pool.candidates(start) {
      self.check_destroyed()?;
      tries += 1;
      let req = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        internal: Some(true),
        // no address on the host side of the bridge: the host is not reachable through it either
        options: Some(HashMap::from([("com.docker.network.bridge.inhibit_ipv4".to_string(), "true".to_string())])),
        ipam: Some(Ipam {
          driver: Some("default".into()),
          config: Some(vec![IpamConfig { subnet: Some(sub.clone()), ..Default::default() }]),
          ..Default::default()
        }),
        labels: Some(labels.clone()),
        ..Default::default()
      };
      match tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.create_network(req)).await {
        Err(_) => return Err(late("creating the isolated network", DOCKER_CALL_TIMEOUT)),
        Ok(Ok(_)) => return Ok(sub),
        Ok(Err(e)) if subnet::is_taken(&e.to_string()) => last = e.to_string(),
        Ok(Err(e)) => return Err(SandboxError::provider(format!("could not create the isolated network: {e}"))),
      }
    }
    Err(SandboxError::new(
      ErrorCode::InsufficientResources,
      format!(
        "no free /{} subnet left in docker.isolatedSubnetPool {pool_text} after {tries} tries ({last}); destroy idle sandboxes, use networkMode 'none', or give a larger range with docker.isolatedSubnetPool / SANDBOX_ISOLATED_SUBNET_POOL",
        subnet::SUBNET_PREFIX
      ),
    ))
  }

  /// Create, attach and start the egress gateway on the sandbox's network at `ip` (and on
  /// `docker.egressNetwork` for its way out), then hand it the first rules (see gateway.rs).
  /// Runs the sandbox's own image (present by now) with the guest binary mounted the way the
  /// sandbox's guest is (or would be), in its `gateway` mode.
  #[allow(clippy::too_many_arguments)]
  async fn start_gateway(
    &self,
    docker: &Docker,
    image: &bollard::models::ImageInspect,
    network: &str,
    ip: std::net::Ipv4Addr,
    policy: &crate::core::config::NetworkPolicy,
    delivery: Option<Delivery>,
    labels: &HashMap<String, String>,
  ) -> Result<gateway::Gateway> {
    let cfg = &self.config;
    let no_binary = || {
      SandboxError::invalid_config(
        "network rules need the egress gateway, which is the guest binary (agentic-sandbox-guest) in its gateway mode, and it was not found next to the addon (set AGENTIC_SANDBOX_GUEST) or does not match the image's platform",
      )
    };
    let path = guest::binary_path().ok_or_else(no_binary)?;
    let guest_arch = guest::elf_arch(&path).unwrap_or(host_arch());
    if image.os.as_deref().unwrap_or("linux") != "linux" || image.architecture.as_deref().unwrap_or(guest_arch) != guest_arch {
      return Err(no_binary());
    }
    let delivery = delivery.unwrap_or_else(|| self.delivery());
    let mount = match delivery {
      Delivery::Bind => Mount {
        target: Some(GUEST_PATH.into()),
        source: Some(path.to_string_lossy().into_owned()),
        typ: Some(MountTypeEnum::BIND),
        read_only: Some(true),
        ..Default::default()
      },
      Delivery::Upload => {
        let existing = self.res.lock().unwrap().guest_volume.clone();
        let name = match existing {
          Some(n) => n,
          None => self.fill_guest_volume(docker, &path, labels).await?,
        };
        Mount { target: Some(GUEST_DIR.into()), source: Some(name), typ: Some(MountTypeEnum::VOLUME), read_only: Some(true), ..Default::default() }
      }
    };
    let name = format!("{}-egress", self.id);
    self.res.lock().unwrap().gateway = Some(name.clone());
    self.sync_registry();
    let body = ContainerCreateBody {
      image: Some(cfg.image.clone()),
      entrypoint: Some(vec![GUEST_PATH.to_string(), "gateway".into(), "--listen".into(), ip.to_string()]),
      cmd: Some(Vec::new()),
      user: Some("65534:65534".into()),
      open_stdin: Some(true),
      stdin_once: Some(true),
      attach_stdin: Some(true),
      attach_stdout: Some(true),
      attach_stderr: Some(true),
      tty: Some(false),
      env: Some(Vec::new()),
      labels: Some(labels.clone()),
      networking_config: Some(bollard::models::NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
          network.to_string(),
          bollard::models::EndpointSettings {
            ipam_config: Some(bollard::models::EndpointIpamConfig { ipv4_address: Some(ip.to_string()), ..Default::default() }),
            ..Default::default()
          },
        )])),
      }),
      host_config: Some(HostConfig {
        network_mode: Some(network.to_string()),
        memory: Some(64 * 1024 * 1024),
        memory_swap: Some(64 * 1024 * 1024),
        nano_cpus: Some(500_000_000),
        pids_limit: Some(600),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        // port 53 as nobody; and no forwarding, so a route through the gateway leads nowhere
        sysctls: Some(HashMap::from([
          ("net.ipv4.ip_unprivileged_port_start".to_string(), "0".to_string()),
          ("net.ipv4.ip_forward".to_string(), "0".to_string()),
        ])),
        mounts: Some(vec![mount]),
        log_config: no_logs(),
        init: Some(false),
        ..Default::default()
      }),
      ..Default::default()
    };
    let created = call(
      "creating the egress gateway",
      DOCKER_START_TIMEOUT,
      docker.create_container(Some(CreateContainerOptions { name: Some(name.clone()), ..Default::default() }), body),
      provider_err("could not create the egress gateway container"),
    )
    .await?;
    self.check_destroyed()?;
    call(
      "connecting the egress gateway to its way out",
      DOCKER_CALL_TIMEOUT,
      docker.connect_network(
        &cfg.docker.egress_network,
        bollard::models::NetworkConnectRequest { container: Some(created.id.clone()), endpoint_config: None },
      ),
      |e| match status_of(&e) {
        Some(404) => SandboxError::invalid_config(format!(
          "docker.egressNetwork {:?} does not exist on the engine: {e}",
          cfg.docker.egress_network
        )),
        _ => SandboxError::provider(format!("could not connect the egress gateway to {}: {e}", cfg.docker.egress_network)),
      },
    )
    .await?;
    let attached = call(
      "attaching to the egress gateway",
      DOCKER_CALL_TIMEOUT,
      docker.attach_container(
        &created.id,
        Some(AttachContainerOptions { stdin: true, stdout: true, stderr: true, stream: true, logs: false, detach_keys: None }),
      ),
      provider_err("could not attach to the egress gateway"),
    )
    .await?;
    call(
      "starting the egress gateway",
      DOCKER_START_TIMEOUT,
      docker.start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>),
      provider_err("could not start the egress gateway"),
    )
    .await?;
    let host_addrs = gateway::host_addresses(docker, &created.id, &cfg.docker.egress_network, DOCKER_CALL_TIMEOUT).await;
    let log = self.network_log.lock().unwrap().clone();
    gateway::Gateway::connect(ip, created.id, attached.output, attached.input, policy.clone(), &cfg.docker.extra_hosts, host_addrs, log).await
  }

  /// Upload delivery: put the guest binary into this sandbox's own volume through a loader
  /// container that is created, never started, and removed, so that the sandbox mounts the
  /// volume read-only. Returns the volume's name.
  async fn fill_guest_volume(&self, docker: &Docker, binary: &std::path::Path, labels: &HashMap<String, String>) -> Result<String> {
    let name = format!("agentic-sandbox-{}-guest", self.id);
    self.res.lock().unwrap().guest_volume = Some(name.clone());
    self.sync_registry();
    call(
      "creating the guest volume",
      DOCKER_CALL_TIMEOUT,
      docker.create_volume(VolumeCreateOptions { name: Some(name.clone()), labels: Some(labels.clone()), ..Default::default() }),
      provider_err("could not create the guest volume"),
    )
    .await?;
    let data = std::fs::read(binary).map_err(|e| SandboxError::provider(format!("cannot read the guest binary {}: {e}", binary.display())))?;
    let tar = guest::single_file_tar(guest::GUEST_FILE, &data, 0o755);
    let loader = format!("{}-guest-loader", self.id);
    let body = ContainerCreateBody {
      image: Some(self.config.image.clone()),
      entrypoint: Some(vec![GUEST_PATH.to_string()]),
      cmd: Some(Vec::new()),
      network_disabled: Some(true),
      labels: Some(labels.clone()),
      host_config: Some(HostConfig {
        mounts: Some(vec![Mount { target: Some(GUEST_DIR.into()), source: Some(name.clone()), typ: Some(MountTypeEnum::VOLUME), ..Default::default() }]),
        network_mode: Some("none".into()),
        log_config: no_logs(),
        ..Default::default()
      }),
      ..Default::default()
    };
    let filled = async {
      call(
        "creating the guest loader container",
        DOCKER_START_TIMEOUT,
        docker.create_container(Some(CreateContainerOptions { name: Some(loader.clone()), ..Default::default() }), body),
        provider_err("could not create the guest loader container"),
      )
      .await?;
      call(
        "uploading the guest daemon",
        DOCKER_START_TIMEOUT,
        docker.upload_to_container(
          &loader,
          Some(UploadToContainerOptions { path: GUEST_DIR.into(), ..Default::default() }),
          bollard::body_full(bytes::Bytes::from(tar)),
        ),
        provider_err("could not upload the guest daemon"),
      )
      .await
    }
    .await;
    let removed = call(
      "removing the guest loader container",
      DOCKER_CALL_TIMEOUT,
      docker.remove_container(&loader, Some(RemoveContainerOptions { force: true, ..Default::default() })),
      provider_err("could not remove the guest loader container"),
    )
    .await;
    filled?;
    removed?;
    Ok(name)
  }

  /// Whether (and how) the guest daemon can run in this sandbox; `None` means the exec engine.
  fn guest_plan(&self, image: &bollard::models::ImageInspect) -> Option<(std::path::PathBuf, Delivery)> {
    if self.config.docker.exec_engine == ExecEngine::Exec {
      return None;
    }
    let Some(path) = guest::binary_path() else {
      tracing::warn!(sandbox = %self.id, "guest daemon binary not found next to the addon (set AGENTIC_SANDBOX_GUEST); using the docker exec engine");
      return None;
    };
    // the guest binary runs where its architecture matches the image's (x64 and arm64 are shipped)
    let guest_arch = guest::elf_arch(&path).unwrap_or(host_arch());
    let (os, arch) = (image.os.as_deref().unwrap_or("linux"), image.architecture.as_deref().unwrap_or(guest_arch));
    if os != "linux" || arch != guest_arch {
      tracing::warn!(sandbox = %self.id, os, arch, guest_arch, "the guest daemon found is built for linux/{guest_arch}, not this image's platform; using the docker exec engine");
      return None;
    }
    Some((path, self.delivery()))
  }

  /// How the guest binary reaches this engine's containers (the sandbox's guest and the egress
  /// gateway alike): bind-mounted on a local engine, uploaded to a remote one;
  /// AGENTIC_SANDBOX_GUEST_DELIVERY=bind|upload overrides.
  fn delivery(&self) -> Delivery {
    let host = self.config.docker.socket_path.clone().or_else(|| std::env::var("DOCKER_HOST").ok()).unwrap_or_default();
    let local = host.is_empty() || host.starts_with('/') || host.starts_with("unix://");
    match std::env::var("AGENTIC_SANDBOX_GUEST_DELIVERY").as_deref() {
      Ok("upload") => Delivery::Upload,
      Ok("bind") => Delivery::Bind,
      _ if local => Delivery::Bind,
      _ => Delivery::Upload,
    }
  }

  /// An attached `docker exec` whose output is handed back as streams.
  async fn attached_exec(
    &self,
    docker: &Docker,
    container: &str,
    opts: CreateExecOptions<String>,
  ) -> Result<(guest::OutputStream, guest::InputStream)> {
    let created = call("creating an exec", DOCKER_CALL_TIMEOUT, docker.create_exec(container, opts), |e| exec::map_exec_error(container, e)).await?;
    match call("starting an exec", DOCKER_CALL_TIMEOUT, docker.start_exec(&created.id, None), |e| exec::map_exec_error(container, e)).await? {
      StartExecResults::Attached { output, input } => Ok((output, input)),
      StartExecResults::Detached => Err(SandboxError::provider("docker exec unexpectedly detached")),
    }
  }

  /// Start the guest with one attached `docker exec` (images that keep their own command).
  async fn attach_guest_by_exec(&self, docker: &Docker, container: &str) -> Result<Arc<GuestConn>> {
    let env = self.exec_env();
    let (output, input) = self
      .attached_exec(
        docker,
        container,
        CreateExecOptions::<String> {
          cmd: Some(vec![GUEST_PATH.into()]),
          user: self.exec_user(),
          env: (!env.is_empty()).then_some(env),
          working_dir: Some("/".into()),
          attach_stdin: Some(true),
          attach_stdout: Some(true),
          attach_stderr: Some(true),
          tty: Some(false),
          ..Default::default()
        },
      )
      .await?;
    GuestConn::connect(output, input, self.id.clone()).await
  }

  /// Images that keep their own command: the owner watchdog is one attached `docker exec`, run as
  /// the container's user (so it may stop the image's command).
  async fn start_exec_watchdog(&self, docker: &Docker, container: &str) -> Result<()> {
    let (output, input) = self
      .attached_exec(
        docker,
        container,
        CreateExecOptions::<String> {
          cmd: Some(watchdog::exec_argv()),
          user: self.config.docker.user.clone(),
          working_dir: Some("/".into()),
          attach_stdin: Some(true),
          attach_stdout: Some(true),
          attach_stderr: Some(true),
          tty: Some(false),
          ..Default::default()
        },
      )
      .await?;
    *self.watchdog.lock().unwrap() = Some(Watchdog::hold(output, input));
    Ok(())
  }

  /// Restart the watchdog exec of an image that keeps its command when it is gone (killed from
  /// inside, or by kill-all). Failures are logged: the stale-resource reaper remains the backstop.
  async fn ensure_watchdog(&self, docker: &Docker, container: &str) {
    let gone = || self.watchdog.lock().unwrap().as_ref().map(|w| w.ended()).unwrap_or(true);
    if !gone() || !self.plan.lock().unwrap().keep_command {
      return;
    }
    let _one = self.watchdog_restart.lock().await;
    if !gone() {
      return;
    }
    tracing::info!(sandbox = %self.id, "owner watchdog exec gone; restarting it");
    if let Err(e) = self.start_exec_watchdog(docker, container).await {
      tracing::warn!(sandbox = %self.id, error = %e, "could not restart the owner watchdog");
    }
  }

  /// 'guest' or 'exec': the engine that runs this sandbox's calls.
  pub fn engine_name(&self) -> &'static str {
    if self.guest.lock().unwrap().is_some() && !*self.exec_fallback.lock().unwrap() {
      "guest"
    } else {
      "exec"
    }
  }

  /// Stop trusting `conn` (it missed a lifecycle deadline), if it is still the current guest.
  fn stall(&self, conn: &Arc<GuestConn>, why: &str) {
    let current = self.guest.lock().unwrap().as_ref().is_some_and(|c| Arc::ptr_eq(c, conn));
    if current {
      tracing::warn!(sandbox = %self.id, reason = why, "guest daemon unresponsive");
      self.guest_stalled.lock().unwrap().get_or_insert_with(|| why.to_string());
    }
  }

  /// One guest request of the lifecycle, with its deadline; a miss stalls the guest.
  async fn guest_call(&self, conn: &Arc<GuestConn>, what: &str, req: Request) -> Result<Reply> {
    match tokio::time::timeout(GUEST_CALL_TIMEOUT, conn.request(req)).await {
      Ok(r) => r,
      Err(_) => {
        let why = format!("the guest daemon did not answer {what} within {} s", GUEST_CALL_TIMEOUT.as_secs());
        self.stall(conn, &why);
        Err(SandboxError::provider(why))
      }
    }
  }

  /// The current guest if it is usable: alive, answering, and not bypassed.
  fn live_guest(&self) -> Option<Arc<GuestConn>> {
    if *self.exec_fallback.lock().unwrap() || self.guest_stalled.lock().unwrap().is_some() {
      return None;
    }
    self.guest.lock().unwrap().clone().filter(|c| c.dead().is_none())
  }

  /// The engine for the next call. A dead guest attached by exec is restarted. A dead guest that
  /// was the container's command: if the container still runs (the guest hangs), calls fall back
  /// to the exec engine; if the container stopped with it, that is reported.
  async fn engine(&self) -> Result<Engine> {
    let (docker, container) = self.running()?;
    if self.plan.lock().unwrap().keep_command {
      self.ensure_watchdog(&docker, &container).await;
    }
    let conn = self.guest.lock().unwrap().clone();
    let Some(conn) = conn else { return Ok(Engine::Exec(docker, container)) };
    if *self.exec_fallback.lock().unwrap() {
      return Ok(Engine::Exec(docker, container));
    }
    let stalled = self.guest_stalled.lock().unwrap().clone();
    let Some(reason) = conn.dead().or(stalled) else { return Ok(Engine::Guest(conn)) };
    if *self.guest_by_exec.lock().unwrap() {
      let _g = self.reattach.lock().await;
      if let Some(c) = self.live_guest() {
        return Ok(Engine::Guest(c));
      }
      tracing::warn!(sandbox = %self.id, reason = %reason, "guest daemon lost; restarting it");
      let fresh = self.attach_guest_by_exec(&docker, &container).await?;
      // what the lost guest started can no longer be waited for, streamed or signalled through
      // a handle: kill it rather than leave orphans running (the image's own command is spared;
      // a hung old guest is killed with them)
      if let Err(e) = self.guest_call(&fresh, "kill-all", Request::KillAll).await {
        tracing::warn!(sandbox = %self.id, error = %e, "could not kill the lost guest's processes");
      }
      self.set_guest(fresh.clone(), true);
      return Ok(Engine::Guest(fresh));
    }
    // the guest was the container's command: it hangs while the container runs on, or the
    // container ended with it (give the engine a moment to notice an exit)
    let mut running = self.container_running(&docker, &container).await?;
    if running && conn.dead().is_some() {
      tokio::time::sleep(Duration::from_millis(300)).await;
      running = self.container_running(&docker, &container).await?;
    }
    if running {
      tracing::warn!(sandbox = %self.id, reason = %reason, "guest daemon unusable while its container runs; using the docker exec engine for this sandbox");
      *self.exec_fallback.lock().unwrap() = true;
      return Ok(Engine::Exec(docker, container));
    }
    self.set_state(State::Error);
    Err(SandboxError::new(
      ErrorCode::SandboxNotRunning,
      format!("sandbox {}: {reason}, and its container stopped with it; the workspace is lost: call start() to start afresh, or destroy the sandbox", self.id),
    ))
  }

  async fn ensure_image(&self, docker: &Docker, progress: Option<ProgressFn>) -> Result<bollard::models::ImageInspect> {
    let image = &self.config.image;
    match tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.inspect_image(image)).await {
      Err(_) => return Err(late("docker image inspect", DOCKER_CALL_TIMEOUT)),
      Ok(Ok(i)) => return Ok(i),
      Ok(Err(e)) if status_of(&e) == Some(404) => {}
      Ok(Err(e)) => return Err(SandboxError::provider(format!("could not inspect image {image}: {e}"))),
    }
    let (repo, tag) = split_image(image);
    tracing::info!(image = %image, "pulling image");
    let creds = self.config.docker.registry_auth.as_ref().map(|a| bollard::auth::DockerCredentials {
      username: Some(a.username.clone()),
      password: Some(a.password.clone()),
      serveraddress: a.serveraddress.clone(),
      ..Default::default()
    });
    let mut stream = docker.create_image(
      Some(CreateImageOptions {
        from_image: Some(if tag.is_empty() { repo } else { format!("{repo}:{tag}") }),
        ..Default::default()
      }),
      None,
      creds,
    );
    loop {
      let item = match tokio::time::timeout(PULL_IDLE_TIMEOUT, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => break,
        Err(_) => {
          return Err(SandboxError::new(
            ErrorCode::ImageNotFound,
            format!("pulling image {image} made no progress for {} s; check the registry, or load the image locally", PULL_IDLE_TIMEOUT.as_secs()),
          ))
        }
      };
      self.check_destroyed()?;
      match item {
        Ok(info) => {
          let p = PullProgress {
            status: info.status.clone().unwrap_or_default(),
            id: info.id.clone(),
            progress: info.progress.clone(),
          };
          tracing::debug!(image = %image, status = %p.status, id = ?p.id, progress = ?p.progress, "pull");
          if let Some(cb) = &progress {
            cb(p);
          }
        }
        Err(e) => {
          return Err(SandboxError::new(
            ErrorCode::ImageNotFound,
            format!("image {image} is not on the Docker engine and could not be pulled ({e}); build or load it locally (see scripts/build-images.sh) or check the name and docker.registryAuth"),
          ))
        }
      }
    }
    call("docker image inspect", DOCKER_CALL_TIMEOUT, docker.inspect_image(image), |e| {
      SandboxError::new(ErrorCode::ImageNotFound, format!("image {image} is still missing after the pull ({e})"))
    })
    .await
  }

  /// The lifecycle lock, waited for at most `LOCK_WAIT`: `None` when a start() still holds it.
  async fn lifecycle_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
    tokio::time::timeout(LOCK_WAIT, self.lifecycle.lock()).await.ok()
  }

  /// Kill every process started in the sandbox, then freeze the container (images that keep their
  /// own command: their service must not run on) or leave it running idle (the guest and the exec
  /// engine's watchdog must stay able to notice their owner's death). Ends within
  /// `LIFECYCLE_BUDGET`; when the processes cannot be killed (e.g. at the pids limit no exec can
  /// start), the container is killed, and `start()` begins afresh.
  pub async fn stop(&self) -> Result<()> {
    match tokio::time::timeout(LIFECYCLE_BUDGET, self.stop_inner()).await {
      Ok(r) => r,
      Err(_) => {
        if self.state() == State::Stopping {
          self.set_state(State::Error);
        }
        Err(late(&format!("stop() of sandbox {}", self.id), LIFECYCLE_BUDGET))
      }
    }
  }

  async fn stop_inner(&self) -> Result<()> {
    let Some(_guard) = self.lifecycle_lock().await else {
      return Err(SandboxError::new(
        ErrorCode::SandboxNotRunning,
        format!("sandbox {} is still starting; await start() before stop()", self.id),
      ));
    };
    if self.state() != State::Running {
      return Ok(());
    }
    let (docker, container) = self.running()?;
    self.set_state(State::Stopping);
    if let Err(e) = self.kill_all_in(&docker, &container).await {
      tracing::warn!(sandbox = %self.id, error = %e, "could not end the sandbox's processes; killing its container");
      let killed = call(
        "docker kill",
        DOCKER_CALL_TIMEOUT,
        docker.kill_container(&container, None::<bollard::query_parameters::KillContainerOptions>),
        provider_err("docker kill failed"),
      )
      .await;
      self.set_state(State::Error);
      return Err(SandboxError::provider(format!(
        "stop(): could not end the processes of sandbox {} ({}); its container was {} (the workspace is lost): call start() to start afresh, or destroy it",
        self.id,
        e.message,
        match killed {
          Ok(()) => "killed".to_string(),
          Err(k) => format!("not even killed: {}", k.message),
        }
      )));
    }
    if !self.plan.lock().unwrap().keep_command {
      self.set_state(State::Stopped);
      return Ok(());
    }
    match call("docker pause", DOCKER_CALL_TIMEOUT, docker.pause_container(&container), provider_err("docker pause failed")).await {
      Ok(()) => {
        self.set_state(State::Stopped);
        Ok(())
      }
      Err(e) => {
        self.set_state(State::Error);
        Err(SandboxError::provider(format!("could not stop sandbox {}: {}", self.id, e.message)))
      }
    }
  }

  /// Drop the guest connection and the watchdog, and remove container, volumes and network.
  async fn release_resources(&self) -> Result<()> {
    self.guest.lock().unwrap().take();
    self.watchdog.lock().unwrap().take();
    self.egress.lock().unwrap().take();
    let owned = self.owned();
    let docker = self.res.lock().unwrap().docker.clone();
    if let Some(docker) = docker {
      remove_owned(&docker, &owned).await?;
    }
    self.forget_resources(true);
    Ok(())
  }

  /// Remove the container (killing whatever runs in it), then the volumes, then the network.
  /// Does not wait for a start() or stop() in progress (a start then removes what it creates
  /// afterwards; `Destroyed` is final), and resolves within `DESTROY_WAIT`: a removal the engine
  /// has not finished by then (e.g. a hundred sandboxes destroyed at once: the engine removes
  /// networks one at a time) goes on in the background, and the exit hook still knows about it.
  pub async fn destroy(&self) -> Result<()> {
    self.set_state(State::Destroyed);
    self.guest.lock().unwrap().take();
    self.watchdog.lock().unwrap().take();
    self.egress.lock().unwrap().take();
    let owned = self.owned();
    let Some(docker) = self.res.lock().unwrap().docker.clone() else { return Ok(()) };
    let mut removal = tokio::spawn({
      let owned = owned.clone();
      async move { bounded("removing a sandbox", BACKGROUND_REMOVAL_TIMEOUT, remove_owned(&docker, &owned)).await }
    });
    let removed = match tokio::time::timeout(DESTROY_WAIT, &mut removal).await {
      Ok(joined) => joined.unwrap_or_else(|e| Err(SandboxError::provider(format!("the removal task failed: {e}")))),
      Err(_) => {
        tracing::warn!(sandbox = %self.id, "the engine is slow to remove the sandbox; the removal goes on in the background");
        let id = self.id.clone();
        tokio::spawn(async move {
          match removal.await {
            // the exit hook no longer needs to know about it
            Ok(Ok(())) => record(&id, Owned { socket_path: owned.socket_path, ..Default::default() }),
            Ok(Err(e)) => tracing::warn!(sandbox = %id, error = %e, "background removal failed"),
            Err(e) => tracing::warn!(sandbox = %id, error = %e, "background removal task failed"),
          }
        });
        self.forget_resources(false);
        return Ok(());
      }
    };
    removed?;
    self.forget_resources(true);
    Ok(())
  }

  /// Forget the removed resources (and, with `sync`, tell the exit hook's registry).
  fn forget_resources(&self, sync: bool) {
    *self.guest_by_exec.lock().unwrap() = false;
    *self.guest_stalled.lock().unwrap() = None;
    *self.exec_fallback.lock().unwrap() = false;
    let mut r = self.res.lock().unwrap();
    r.container = None;
    r.volume = None;
    r.guest_volume = None;
    r.network = None;
    r.gateway = None;
    drop(r);
    if sync {
      self.sync_registry();
    }
  }

  // ---------------------------------------------------------------- execution

  /// Start a command and return at once (for `background: true` and for foreground calls).
  /// Foreground calls default to `limits.timeoutSeconds`; background ones run until they end,
  /// are killed, or their own `timeout` passes.
  pub async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    let (timeout, workdir) = crate::core::sandbox::prepare_spawn(&self.config, &self.config.workdir, command, opts, background)?;
    let mut argv = vec![command.to_string()];
    argv.extend(args.iter().cloned());
    let max_output = opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT);
    let p = match self.engine().await? {
      Engine::Guest(conn) => {
        let env = opts.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        conn.spawn(argv, env, workdir, timeout, max_output, background, open_stdin, sink, opts.stream_only).await?
      }
      Engine::Exec(docker, container) => {
        let mut env = self.exec_env();
        env.extend(opts.env.iter().map(|(k, v)| format!("{k}={v}")));
        let req = ExecRequest {
          argv,
          env,
          workdir: Some(workdir),
          user: self.exec_user(),
          timeout,
          max_output,
          open_stdin,
          wrap: true,
          background,
          stream_only: opts.stream_only,
        };
        exec::spawn(&docker, &container, req, sink).await?
      }
    };
    Ok(p)
  }


  /// Run an internal helper script (not the user's command) as the sandbox user.
  async fn helper(&self, script: &str, args: &[&str], stdin: Option<Vec<u8>>, max_output: usize) -> Result<ExecOutput> {
    let (docker, container) = self.running()?;
    exec::run(&docker, &container, self.helper_request(script, args, max_output, Duration::from_secs(120)), stdin).await
  }

  fn helper_request(&self, script: &str, args: &[&str], max_output: usize, timeout: Duration) -> ExecRequest {
    let mut argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string(), "agentic-sandbox".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    ExecRequest {
      argv,
      env: self.exec_env(),
      workdir: Some("/".into()),
      user: self.exec_user(),
      timeout: Some(timeout),
      max_output,
      open_stdin: false,
      wrap: false,
      background: false,
      stream_only: false,
    }
  }

  /// A helper script of the lifecycle, in `container` whatever the sandbox's state, ended (with
  /// an error) after `LIFECYCLE_EXEC_TIMEOUT`, engine calls included.
  async fn lifecycle_helper(&self, docker: &Docker, container: &str, what: &str, script: &str, args: &[&str]) -> Result<ExecOutput> {
    let req = self.helper_request(script, args, 64 * 1024, LIFECYCLE_EXEC_TIMEOUT);
    let out = bounded(what, LIFECYCLE_EXEC_TIMEOUT, exec::run(docker, container, req, None)).await?;
    if out.exit_code != 0 || out.timed_out {
      return Err(SandboxError::provider(format!("{what} failed: {}", Self::failure_text(&out))));
    }
    Ok(out)
  }


  fn not_running_op(&self, path: &str) -> Option<FileOp> {
    let state = self.state();
    (state != State::Running).then(|| FileOp::fail(path, not_running_message(&self.id, state)))
  }

  fn failure_text(out: &ExecOutput) -> String {
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if msg.is_empty() {
      format!("exit code {}", out.exit_code)
    } else {
      msg
    }
  }

  pub async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    let engine = match self.engine().await {
      Ok(e) => e,
      Err(e) => return FileOp::fail(&full, e.message),
    };
    if let Engine::Guest(conn) = engine {
      return match conn.write_file(&full, &content).await {
        Ok(()) => FileOp::ok(&full, None),
        Err(e) => FileOp::fail(&full, e.message),
      };
    }
    match self.helper(WRITE_SCRIPT, &[&full], Some(content), 64 * 1024).await {
      Ok(out) if out.exit_code == 0 => FileOp::ok(&full, None),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  pub async fn read_file(&self, path: &str) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    let engine = match self.engine().await {
      Ok(e) => e,
      Err(e) => return FileOp::fail(&full, e.message),
    };
    if let Engine::Guest(conn) = engine {
      return match conn.read_file(&full, MAX_READ as u64).await {
        Ok(data) => FileOp::ok(&full, Some(data)),
        Err(e) => FileOp::fail(&full, e.message),
      };
    }
    match self.helper(READ_SCRIPT, &[&full], None, MAX_READ).await {
      Ok(out) if out.exit_code == 0 && !out.truncated => FileOp::ok(&full, Some(out.stdout)),
      Ok(out) if out.truncated => FileOp::fail(&full, format!("file is larger than {} MB; read it in parts with execute()", MAX_READ >> 20)),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  /// At most `max` bytes of a file (a larger file gives its first `max`), for internal readers.
  /// The guest refuses files over `max` (EFBIG): their first bytes then come from `head -c`.
  pub async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    match self.engine().await {
      Ok(Engine::Guest(conn)) => match conn.read_file(&full, max as u64).await {
        Ok(data) => return FileOp::ok(&full, Some(data)),
        // the guest's EFBIG messages ("... more than the N that can be read at once", "grew beyond N bytes while reading")
        Err(e) if e.message.contains("can be read at once") || e.message.contains("while reading") => {}
        Err(e) => return FileOp::fail(&full, e.message),
      },
      Ok(Engine::Exec(..)) => {}
      Err(e) => return FileOp::fail(&full, e.message),
    }
    match self.helper(READ_PREFIX_SCRIPT, &[&full, &max.to_string()], None, max).await {
      Ok(out) if out.exit_code == 0 || out.truncated => FileOp::ok(&full, Some(out.stdout)),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  pub async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    let engine = match self.engine().await {
      Ok(e) => e,
      Err(e) => return FileOp::fail(&full, e.message),
    };
    if let Engine::Guest(conn) = engine {
      return match conn.request(Request::Remove { path: full.clone(), recursive }).await {
        Ok(_) => FileOp::ok(&full, None),
        Err(e) => FileOp::fail(&full, e.message),
      };
    }
    let script = if recursive { r#"exec rm -rf -- "$1""# } else { r#"exec rm -f -- "$1""# };
    match self.helper(script, &[&full], None, 64 * 1024).await {
      Ok(out) if out.exit_code == 0 => FileOp::ok(&full, None),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  /// Entry names of a directory (like `ls -1`: no dotfiles unless `all`). `[]` on any failure.
  pub async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    let full = paths::resolve(&self.config.workdir, path)?;
    if let Engine::Guest(conn) = self.engine().await? {
      let (entries, truncated) = conn.list(&full, false, all, guest::MAX_LIST_ENTRIES).await?;
      if truncated {
        tracing::warn!(sandbox = %self.id, path = %full, "listing cut short at {} entries", guest::MAX_LIST_ENTRIES);
      }
      let mut names: Vec<String> = entries.into_iter().map(|e| e.path).collect();
      names.sort();
      return Ok(names);
    }
    let out = self.helper(LIST_SCRIPT, &[&full, if all { "all" } else { "" }], None, DEFAULT_MAX_OUTPUT).await?;
    if out.exit_code != 0 {
      return Err(SandboxError::new(ErrorCode::ExecutionError, Self::failure_text(&out)));
    }
    let mut names: Vec<String> =
      out.stdout.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    names.sort();
    Ok(names)
  }

  pub async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    let full = paths::resolve(&self.config.workdir, path)?;
    if let Engine::Guest(conn) = self.engine().await? {
      let (entries, truncated) = conn.list(&full, recursive, all, guest::MAX_LIST_ENTRIES).await?;
      if truncated {
        tracing::warn!(sandbox = %self.id, path = %full, "listing cut short at {} entries", guest::MAX_LIST_ENTRIES);
      }
      return Ok(
        entries
          .into_iter()
          .map(|e| FileInfo {
            name: e.path.rsplit('/').next().unwrap_or(&e.path).to_string(),
            kind: match e.kind.as_str() {
              "file" => "file",
              "directory" => "directory",
              "symlink" => "symlink",
              _ => "other",
            },
            size: e.size as f64,
            mtime_ms: e.mtime_ms,
            permissions: format!("{:o}", e.mode),
            path: e.path,
          })
          .collect(),
      );
    }
    let out = self
      .helper(LIST_DETAILED_SCRIPT, &[&full, if recursive { "recursive" } else { "" }], None, DEFAULT_MAX_OUTPUT)
      .await?;
    if out.exit_code != 0 {
      return Err(SandboxError::new(ErrorCode::ExecutionError, Self::failure_text(&out)));
    }
    let mut v = parse_stat_lines(&String::from_utf8_lossy(&out.stdout));
    if !all {
      v.retain(|f| !is_hidden(&f.path));
    }
    Ok(v)
  }

  // ---------------------------------------------------------------- stats and health

  pub async fn stats(&self) -> Result<Stats> {
    if let Engine::Guest(conn) = self.engine().await? {
      return self.guest_stats(&conn).await;
    }
    let (docker, container) = self.running()?;
    let prev = *self.last_cpu.lock().unwrap();
    let mut stream = docker.stats(&container, Some(StatsOptions { stream: false, one_shot: prev.is_some() }));
    let s = match stream.next().await {
      Some(Ok(s)) => s,
      Some(Err(e)) => return Err(SandboxError::provider(format!("docker stats failed: {e}"))),
      None => return Err(SandboxError::provider("docker stats returned nothing")),
    };
    let mb = |b: u64| (b as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0;
    let memory = s.memory_stats.as_ref().map(|m| {
      let usage = m.usage.unwrap_or(0);
      // like `docker stats`: page cache that can be dropped does not count (v1: total_inactive_file, v2: inactive_file)
      let inactive = m
        .stats
        .as_ref()
        .and_then(|st| st.get("total_inactive_file").or_else(|| st.get("inactive_file")).copied())
        .unwrap_or(0);
      usage.saturating_sub(inactive)
    });
    let cur = s.cpu_stats.as_ref().and_then(|c| Some((c.cpu_usage.as_ref()?.total_usage?, c.system_cpu_usage?)));
    let online = s.cpu_stats.as_ref().and_then(|c| c.online_cpus).unwrap_or(1).max(1) as f64;
    let base = prev.or_else(|| s.precpu_stats.as_ref().and_then(|c| Some((c.cpu_usage.as_ref()?.total_usage?, c.system_cpu_usage?))));
    let cpu = match (cur, base) {
      (Some((c, sys)), Some((pc, psys))) if sys > psys && c >= pc => (c - pc) as f64 / (sys - psys) as f64 * online * 100.0,
      _ => 0.0,
    };
    if let Some(c) = cur {
      *self.last_cpu.lock().unwrap() = Some(c);
    }
    let (rx, tx) = s
      .networks
      .as_ref()
      .map(|n| n.values().fold((0u64, 0u64), |(r, t), v| (r + v.rx_bytes.unwrap_or(0), t + v.tx_bytes.unwrap_or(0))))
      .unwrap_or((0, 0));
    let du = self.helper(r#"du -sk -- "$1""#, &[&self.config.workdir], None, 4096).await?;
    let disk_kb: f64 = String::from_utf8_lossy(&du.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    Ok(Stats {
      memory_usage_mb: mb(memory.unwrap_or(0)),
      cpu_percent: (cpu * 100.0).round() / 100.0,
      disk_usage_mb: (disk_kb / 1024.0 * 100.0).round() / 100.0,
      network_rx_mb: mb(rx),
      network_tx_mb: mb(tx),
    })
  }

  async fn guest_stats(&self, conn: &Arc<GuestConn>) -> Result<Stats> {
    let sample = || async {
      match conn.request(Request::Stats { disk_path: self.config.workdir.clone() }).await? {
        r @ Reply::Stats { .. } => Ok((r, Instant::now())),
        other => Err(SandboxError::provider(format!("unexpected stats reply {other:?}"))),
      }
    };
    let prev = *self.guest_cpu.lock().unwrap();
    let prev = match prev {
      Some(p) => p,
      None => {
        // first call: a short sample so cpuPercent means something
        let (r, at) = sample().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        match r {
          Reply::Stats { cpu_usage_ns, .. } => (cpu_usage_ns, at),
          _ => unreachable!(),
        }
      }
    };
    let (r, at) = sample().await?;
    let Reply::Stats { memory_bytes, cpu_usage_ns, disk_bytes, net_rx_bytes, net_tx_bytes, .. } = r else { unreachable!() };
    *self.guest_cpu.lock().unwrap() = Some((cpu_usage_ns, at));
    let wall = at.duration_since(prev.1).as_nanos() as f64;
    let cpu = if wall > 0.0 { cpu_usage_ns.saturating_sub(prev.0) as f64 / wall * 100.0 } else { 0.0 };
    let mb = |b: u64| (b as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0;
    Ok(Stats {
      memory_usage_mb: mb(memory_bytes),
      cpu_percent: (cpu * 100.0).round() / 100.0,
      disk_usage_mb: mb(disk_bytes),
      network_rx_mb: mb(net_rx_bytes),
      network_tx_mb: mb(net_tx_bytes),
    })
  }

  /// Kill every process started in the sandbox (not the init, the image's own command, or the guest).
  pub async fn kill_all(&self) -> Result<()> {
    let (docker, container) = self.running()?;
    let r = self.kill_all_in(&docker, &container).await;
    if self.plan.lock().unwrap().keep_command {
      self.ensure_watchdog(&docker, &container).await;
    }
    r
  }

  /// kill-all through the guest when it answers in time, else with a `docker exec` of the kill
  /// script (which also ends a hung guest attached by exec). Bounded by `GUEST_CALL_TIMEOUT` +
  /// `LIFECYCLE_EXEC_TIMEOUT`.
  async fn kill_all_in(&self, docker: &Docker, container: &str) -> Result<()> {
    if let Some(conn) = self.live_guest() {
      match self.guest_call(&conn, "kill-all", Request::KillAll).await {
        Ok(_) => return Ok(()),
        Err(e) => tracing::warn!(sandbox = %self.id, error = %e, "kill-all through the guest failed; using docker exec"),
      }
    }
    self.lifecycle_helper(docker, container, "the kill-all script", KILL_ALL_SCRIPT, &[]).await.map(|_| ())
  }

  /// The sandbox's processes (not the init, the image's own command, or the guest).
  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    match self.engine().await? {
      Engine::Guest(conn) => Ok(conn.processes().await?.into_iter().filter(|p| !watchdog::is_watchdog(p)).collect()),
      Engine::Exec(..) => {
        let out = self.helper(PROCESSES_SCRIPT, &[], None, DEFAULT_MAX_OUTPUT).await?;
        let me = out.stdout.split(|b| *b == b'\n').next().and_then(|l| std::str::from_utf8(l).ok()?.trim().parse::<u32>().ok());
        let all: Vec<ProcessEntry> = parse_processes(&out.stdout).into_iter().filter(|p| Some(p.pid) != me && Some(p.ppid) != me).collect();
        // hide the wrappers of foreground commands (a background command replaces its wrapper,
        // keeping its pid, so the pid a BackgroundProcess reports is the listed one)
        let is_wrapper = |p: &ProcessEntry| p.cmdline.len() >= 4 && p.cmdline[0] == "/bin/sh" && p.cmdline[3] == "agentic-sandbox";
        let wrappers: HashSet<u32> = all.iter().filter(|p| is_wrapper(p)).map(|p| p.pid).collect();
        Ok(all.into_iter().filter(|p| !wrappers.contains(&p.pid) && !watchdog::is_watchdog(p)).collect())
      }
    }
  }

  /// Back to a clean sandbox for the next user of a pool: every process killed; the workspace,
  /// `/dev/shm`, `/dev/mqueue` and every `docker.tmpfs` mount (`/tmp` by default) emptied,
  /// dotfiles included, and checked empty. A sandbox with a writable root filesystem is not
  /// cleaned but reported not reusable (its user may have written anywhere): the pool then
  /// destroys it and creates a fresh one. Ends within `LIFECYCLE_BUDGET`.
  pub async fn reset(&self) -> Result<()> {
    if !self.config.docker.read_only_root {
      return Err(SandboxError::new(
        ErrorCode::ExecutionError,
        format!(
          "sandbox {} is not reusable: its root filesystem is writable (docker.readOnlyRoot: false), so whatever its user wrote anywhere would reach the next user; it is destroyed instead of reset",
          self.id
        ),
      ));
    }
    // the next user gets the configured egress rules, not the ones this user set with updateNetwork
    let gw = self.egress.lock().unwrap().clone();
    if let (Some(gw), Some(policy)) = (gw, &self.config.network) {
      if gw.status().policy != *policy {
        gw.apply(policy).await?;
      }
    }
    match tokio::time::timeout(LIFECYCLE_BUDGET, self.reset_inner()).await {
      Ok(r) => r,
      Err(_) => Err(late(&format!("reset() of sandbox {}", self.id), LIFECYCLE_BUDGET)),
    }
  }

  async fn reset_inner(&self) -> Result<()> {
    let (docker, container) = self.running()?;
    self.kill_all_in(&docker, &container).await?;
    if !*self.guest_by_exec.lock().unwrap() {
      let conn = self.guest.lock().unwrap().clone();
      if let Some(conn) = conn.filter(|_| self.live_guest().is_none()) {
        let why = conn.dead().or_else(|| self.guest_stalled.lock().unwrap().clone()).unwrap_or_default();
        return Err(SandboxError::provider(format!(
          "sandbox {} is not reusable: its guest daemon (the container's PID 1, which reaps orphans and watches the owner) is unusable ({why}); it is destroyed instead of reset",
          self.id
        )));
      }
    }
    let dirs = writable_dirs(&self.config.workdir, &self.config.docker.tmpfs);
    match self.engine().await? {
      Engine::Guest(conn) => {
        for dir in &dirs {
          self.clear_with_guest(&conn, dir).await?;
        }
      }
      Engine::Exec(docker, container) => {
        let args: Vec<&str> = dirs.iter().map(String::as_str).collect();
        self.lifecycle_helper(&docker, &container, "clearing the sandbox's writable directories", CLEAR_SCRIPT, &args).await?;
      }
    }
    if let Some(name) = &self.config.from_snapshot {
      // the next user of a pool gets the snapshot's workspace, as the first did
      super::snapshot::restore_workspace(&docker, &self.id, &container, name, &self.config.workdir, self.config.limits.disk_mb).await?;
    }
    *self.guest_cpu.lock().unwrap() = None;
    Ok(())
  }

  /// Empty `dir` through the guest (a missing directory is fine) until a listing finds it empty.
  async fn clear_with_guest(&self, conn: &Arc<GuestConn>, dir: &str) -> Result<()> {
    // a listing is capped: a directory with more entries takes more than one round
    for _round in 0..8 {
      let entries = match tokio::time::timeout(GUEST_CALL_TIMEOUT, conn.list(dir, false, true, guest::MAX_LIST_ENTRIES)).await {
        Ok(Ok((entries, _truncated))) => entries,
        Ok(Err(e)) if e.message.contains("No such file") => return Ok(()),
        Ok(Err(e)) => return Err(SandboxError::new(e.code, format!("reset could not list {dir}: {}", e.message))),
        Err(_) => {
          self.stall(conn, "listing a directory to clear");
          return Err(late(&format!("reset listing {dir}"), GUEST_CALL_TIMEOUT));
        }
      };
      if entries.is_empty() {
        return Ok(());
      }
      for e in entries {
        let path = format!("{}/{}", dir.trim_end_matches('/'), e.path);
        if let Err(e) = self.guest_call(conn, "a removal", Request::Remove { path: path.clone(), recursive: true }).await {
          return Err(SandboxError::new(e.code, format!("reset could not remove {path}: {}", e.message)));
        }
      }
    }
    Err(SandboxError::new(ErrorCode::ExecutionError, format!("reset could not empty {dir}: entries keep appearing")))
  }

  /// Healthy when the sandbox answers a trivial call (through the guest, else a `docker exec`)
  /// within `HEALTH_TIMEOUT`.
  pub async fn health(&self) -> Health {
    if self.state() != State::Running {
      return Health { healthy: false, message: Some(format!("Container not running (state: {})", self.state().as_str())) };
    }
    let started = Instant::now();
    let probe = async {
      match self.engine().await? {
        Engine::Guest(conn) => self.guest_call(&conn, "a health probe", Request::Stat { path: "/".into() }).await.map(|_| ()),
        Engine::Exec(docker, container) => {
          let out = self.lifecycle_helper(&docker, &container, "the health probe", "echo health-check", &[]).await?;
          if String::from_utf8_lossy(&out.stdout).contains("health-check") {
            Ok(())
          } else {
            Err(SandboxError::provider(format!("probe failed: {}", Self::failure_text(&out))))
          }
        }
      }
    };
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
      Ok(Ok(())) => Health { healthy: true, message: Some(format!("responded in {} ms", started.elapsed().as_millis())) },
      Ok(Err(e)) => Health { healthy: false, message: Some(e.message) },
      Err(_) => Health { healthy: false, message: Some(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())) },
    }
  }
}

#[async_trait::async_trait]
impl crate::core::provider::Provider for DockerSandbox {
  fn id(&self) -> &str {
    &self.id
  }
  fn config(&self) -> &SandboxConfig {
    &self.config
  }
  fn state(&self) -> State {
    DockerSandbox::state(self)
  }
  fn engine_name(&self) -> String {
    DockerSandbox::engine_name(self).to_string()
  }
  async fn start(&self, progress: Option<ProgressFn>) -> Result<()> {
    DockerSandbox::start(self, progress).await
  }
  async fn stop(&self) -> Result<()> {
    DockerSandbox::stop(self).await
  }
  async fn destroy(&self) -> Result<()> {
    DockerSandbox::destroy(self).await
  }
  async fn force_remove(&self) -> Result<bool> {
    if super::force_remove(&self.id).await? {
      return Ok(true);
    }
    // a running persistent sandbox is not in the exit hook's registry: remove what it holds
    let owned = self.owned();
    let docker = self.res.lock().unwrap().docker.clone();
    match docker {
      Some(d) if self.config.persistent && owned.container.is_some() => {
        remove_owned(&d, &owned).await?;
        self.forget_resources(false);
        Ok(true)
      }
      _ => Ok(false),
    }
  }
  async fn reconnect(&self) -> Result<()> {
    DockerSandbox::reconnect(self).await
  }
  fn expires_at_ms(&self) -> Option<f64> {
    *self.expires_at.lock().unwrap()
  }
  async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    DockerSandbox::spawn(self, command, args, opts, background, open_stdin, sink).await
  }
  async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    DockerSandbox::write_file(self, path, content).await
  }
  async fn read_file(&self, path: &str) -> FileOp {
    DockerSandbox::read_file(self, path).await
  }
  async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    DockerSandbox::read_file_max(self, path, max).await
  }
  async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    DockerSandbox::delete_file(self, path, recursive).await
  }
  async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    DockerSandbox::list_files(self, path, all).await
  }
  async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    DockerSandbox::list_files_detailed(self, path, recursive, all).await
  }
  async fn stats(&self) -> Result<Stats> {
    DockerSandbox::stats(self).await
  }
  async fn health(&self) -> Health {
    DockerSandbox::health(self).await
  }
  async fn kill_all(&self) -> Result<()> {
    DockerSandbox::kill_all(self).await
  }
  async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    DockerSandbox::processes(self).await
  }
  async fn reset(&self) -> Result<()> {
    DockerSandbox::reset(self).await
  }
  async fn update_network(&self, policy: crate::core::config::NetworkPolicy) -> Result<()> {
    self.running()?;
    let gw = self.egress.lock().unwrap().clone();
    match gw {
      Some(gw) => gw.apply(&policy).await,
      None => Err(SandboxError::invalid_config(format!(
        "sandbox {} was created without network rules, so it has no egress gateway to update; create it with network: {{ allowOut, denyOut }} (network: {{}} allows everything but the fixed deny set)",
        self.id
      ))),
    }
  }
  fn network_status(&self) -> Option<crate::core::provider::NetworkStatus> {
    let gw = self.egress.lock().unwrap().clone();
    match gw {
      Some(gw) => Some(gw.status()),
      None => self.config.network.clone().map(|policy| crate::core::provider::NetworkStatus { policy, ..Default::default() }),
    }
  }
  fn set_network_log(&self, log: crate::core::provider::NetworkLog) {
    if let Some(gw) = self.egress.lock().unwrap().as_ref() {
      gw.set_log(log.clone());
    }
    *self.network_log.lock().unwrap() = Some(log);
  }
  async fn snapshot(&self, name: Option<String>) -> Result<crate::core::snapshot::SnapshotInfo> {
    super::snapshot::take(self, name).await
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn ids_are_docker_16_hex() {
    let id = new_id();
    assert!(id.starts_with("docker-"));
    assert_eq!(id.len(), 7 + 16);
    assert!(id[7..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(id, new_id());
  }

  #[test]
  fn tmpfs_size_defaults_to_half_the_memory() {
    assert_eq!(tmpfs_entry("/tmp:rw,noexec", 64.0), ("/tmp".into(), "rw,noexec,size=32768k".into()));
    assert_eq!(tmpfs_entry("/tmp:rw,noexec", 4096.0), ("/tmp".into(), "rw,noexec,size=102400k".into()));
    assert_eq!(tmpfs_entry("/run:size=1m", 64.0), ("/run".into(), "size=1m".into()));
    assert_eq!(tmpfs_entry("/x", 64.0), ("/x".into(), "size=32768k".into()));
  }

  #[test]
  fn image_split() {
    assert_eq!(split_image("node:20-alpine"), ("node".into(), "20-alpine".into()));
    assert_eq!(split_image("agentic-sandbox/busybox"), ("agentic-sandbox/busybox".into(), "latest".into()));
    assert_eq!(split_image("localhost:5000/x/y:2"), ("localhost:5000/x/y".into(), "2".into()));
    assert_eq!(split_image("localhost:5000/x"), ("localhost:5000/x".into(), "latest".into()));
    assert_eq!(split_image("a@sha256:abc").1, "");
  }

  #[test]
  fn reset_clears_every_writable_place_once() {
    let dirs = writable_dirs("/workspace", &["/tmp:rw,noexec".into(), "/run/x/:size=1m".into(), "/dev/shm".into()]);
    assert_eq!(dirs, ["/workspace", "/dev/shm", "/dev/mqueue", "/tmp", "/run/x"]);
  }

  #[test]
  fn clear_script_empties_directories_dotfiles_included() {
    let dir = std::env::temp_dir().join(format!("sbx-clear-{}", std::process::id()));
    let (a, b) = (dir.join("a"), dir.join("b"));
    for d in [&a, &b] {
      std::fs::create_dir_all(d.join(".hidden-dir/sub")).unwrap();
      for f in [".x", "..y", "-n", "plain", "with space"] {
        std::fs::write(d.join(f), "x").unwrap();
      }
    }
    std::os::unix::fs::symlink("/nonexistent", a.join(".dangling")).unwrap();
    let missing = dir.join("missing");
    let out = std::process::Command::new("/bin/sh")
      .args(["-c", CLEAR_SCRIPT, "t", a.to_str().unwrap(), missing.to_str().unwrap(), b.to_str().unwrap()])
      .output()
      .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for d in [&a, &b] {
      assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "{} not empty", d.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
  }

  /// The helper scripts are plain POSIX sh: check them against the host's /bin/sh.
  #[test]
  fn scripts_work_in_posix_sh() {
    let dir = std::env::temp_dir().join(format!("sbx-scripts-{}", std::process::id()));
    let target = dir.join("a/b/c.bin");
    let sh = |script: &str, args: &[&str], stdin: &[u8]| {
      use std::io::Write;
      let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("t")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
      child.stdin.take().unwrap().write_all(stdin).unwrap();
      child.wait_with_output().unwrap()
    };
    let data: Vec<u8> = (0..=255u8).collect();
    let w = sh(WRITE_SCRIPT, &[target.to_str().unwrap()], &data);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let r = sh(READ_SCRIPT, &[target.to_str().unwrap()], b"");
    assert_eq!(r.stdout, data);
    std::fs::write(dir.join(".hidden"), "x").unwrap();
    let l = sh(LIST_SCRIPT, &[dir.to_str().unwrap(), ""], b"");
    assert_eq!(l.stdout, b"a\0");
    let l = sh(LIST_SCRIPT, &[dir.to_str().unwrap(), "all"], b"");
    assert_eq!(l.stdout, b"a\0.hidden\0");
    let d = sh(LIST_DETAILED_SCRIPT, &[dir.to_str().unwrap(), "recursive"], b"");
    let v = parse_stat_lines(&String::from_utf8_lossy(&d.stdout));
    assert_eq!(v.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), vec![".hidden", "a", "a/b", "a/b/c.bin"]);
    assert_eq!(v[3].size, 256.0);
    let rd = sh(READ_SCRIPT, &[dir.to_str().unwrap()], b"");
    assert!(!rd.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
