//! The Docker provider (bollard): engine connection, labels, ownership registry and the exit
//! cleanup; the stale-resource reaper is in `reaper`.

pub mod exec;
pub mod persistent;
pub mod guest;
pub mod protocol;
pub mod reaper;
pub mod sandbox;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptions;
use bollard::{Docker, API_DEFAULT_VERSION};

use crate::core::error::{ErrorCode, Result, SandboxError};

pub use sandbox::DockerSandbox;

pub const LABEL_MANAGED: &str = "agentic-sandbox.managed";
pub const LABEL_ID: &str = "agentic-sandbox.sandbox-id";
pub const LABEL_OWNER_PID: &str = "agentic-sandbox.owner-pid";
pub const LABEL_OWNER_HOST: &str = "agentic-sandbox.owner-host";
pub const LABEL_OWNER_START: &str = "agentic-sandbox.owner-start";

/// Labels put on every container, volume and network this library creates.
pub fn labels(sandbox_id: &str) -> HashMap<String, String> {
  HashMap::from([
    (LABEL_MANAGED.to_string(), "true".to_string()),
    (LABEL_ID.to_string(), sandbox_id.to_string()),
    (LABEL_OWNER_PID.to_string(), std::process::id().to_string()),
    (LABEL_OWNER_HOST.to_string(), hostname()),
    (LABEL_OWNER_START.to_string(), process_start_ticks(std::process::id()).unwrap_or_default()),
  ])
}

pub fn hostname() -> String {
  std::fs::read_to_string("/proc/sys/kernel/hostname")
    .map(|s| s.trim().to_string())
    .or_else(|_| std::env::var("HOSTNAME"))
    .unwrap_or_default()
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat); tells a live
/// owner from a recycled pid.
pub fn process_start_ticks(pid: u32) -> Option<String> {
  let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
  let after = &stat[stat.rfind(')')? + 2..];
  after.split(' ').nth(19).map(str::to_string)
}

fn unavailable(target: &str, e: impl std::fmt::Display) -> SandboxError {
  SandboxError::new(
    ErrorCode::ProviderUnavailable,
    format!(
      "cannot reach the Docker engine at {target} ({e}). Start Docker (`sudo systemctl start docker`, \
       Docker Desktop, or `sudo dockerd &`; on Debian `apt-get install docker.io` first), check that your user \
       may use its socket, or set DOCKER_HOST / DOCKER_SOCKET_PATH / docker.socketPath to a running engine. \
       `bash scripts/ensure-docker.sh` in this package does it for you as root on Debian."
    ),
  )
}

/// Connect to an engine (`socket_path`, else DOCKER_HOST, else the default socket) and negotiate
/// the API version. Clients are cached per endpoint for the napi runtime.
pub async fn connect(socket_path: Option<&str>) -> Result<Docker> {
  static CLIENTS: OnceLock<tokio::sync::Mutex<HashMap<Option<String>, Docker>>> = OnceLock::new();
  let key = socket_path.map(str::to_string);
  let mut cache = CLIENTS.get_or_init(Default::default).lock().await;
  if let Some(d) = cache.get(&key) {
    return Ok(d.clone());
  }
  let docker = connect_fresh(socket_path).await?;
  cache.insert(key.clone(), docker.clone());
  drop(cache);
  reaper::start(&docker, key).await;
  Ok(docker)
}

pub async fn connect_fresh(socket_path: Option<&str>) -> Result<Docker> {
  let target = match socket_path {
    Some(p) => format!("unix://{p}"),
    None => std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
  };
  let docker = match socket_path {
    Some(p) => Docker::connect_with_socket(p, 120, API_DEFAULT_VERSION),
    None => Docker::connect_with_defaults(),
  }
  .map_err(|e| unavailable(&target, e))?;
  let docker = tokio::time::timeout(std::time::Duration::from_secs(15), docker.negotiate_version())
    .await
    .map_err(|_| unavailable(&target, "no answer within 15 s"))?
    .map_err(|e| unavailable(&target, e))?;
  Ok(docker)
}

/// What a live sandbox owns on an engine; recorded so an exit hook can remove it synchronously.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owned {
  pub socket_path: Option<String>,
  pub container: Option<String>,
  pub volume: Option<String>,
  /// holds the uploaded guest binary when the engine cannot bind-mount it (remote engines)
  pub guest_volume: Option<String>,
  pub network: Option<String>,
  /// the egress gateway's container, removed before the network it sits on
  pub gateway: Option<String>,
}

fn registry() -> &'static Mutex<HashMap<String, Owned>> {
  static REG: OnceLock<Mutex<HashMap<String, Owned>>> = OnceLock::new();
  REG.get_or_init(Default::default)
}

pub fn record(sandbox_id: &str, owned: Owned) {
  let mut reg = registry().lock().unwrap();
  if owned.container.is_none() && owned.volume.is_none() && owned.guest_volume.is_none() && owned.network.is_none() {
    reg.remove(sandbox_id);
  } else {
    reg.insert(sandbox_id.to_string(), owned);
  }
}

/// Remove one sandbox's resources: container, then volume, then network. Missing ones are fine.
pub async fn remove_owned(docker: &Docker, owned: &Owned) -> Result<()> {
  let mut errors = Vec::new();
  let gone = |e: &bollard::errors::Error| {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
  };
  if let Some(c) = &owned.container {
    // another removal of the same container may be under way (a destroy racing a forced removal
    // or the exit hook): wait for it to finish rather than report it, or its volume as in use
    for attempt in 0..50 {
      match docker.remove_container(c, Some(RemoveContainerOptions { force: true, v: false, ..Default::default() })).await {
        Ok(()) => break,
        Err(e) if gone(&e) => break,
        Err(e) if attempt < 49 && e.to_string().contains("already in progress") => {
          tokio::time::sleep(std::time::Duration::from_millis(100)).await
        }
        Err(e) => {
          errors.push(format!("container {c}: {e}"));
          break;
        }
      }
    }
  }
  if let Some(g) = &owned.gateway {
    match docker.remove_container(g, Some(RemoveContainerOptions { force: true, v: false, ..Default::default() })).await {
      Ok(()) => {}
      Err(e) if gone(&e) => {}
      Err(e) => errors.push(format!("egress gateway {g}: {e}")),
    }
  }
  for v in owned.volume.iter().chain(owned.guest_volume.iter()) {
    // a just-removed container can hold its volume for a moment
    for attempt in 0..20 {
      match docker.remove_volume(v, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
        Ok(()) => break,
        Err(e) if gone(&e) => break,
        Err(e) if attempt == 19 => errors.push(format!("volume {v}: {e}")),
        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
      }
    }
  }
  if let Some(n) = &owned.network {
    for attempt in 0..20 {
      match docker.remove_network(n).await {
        Ok(()) => break,
        Err(e) if gone(&e) => break,
        Err(e) if attempt == 19 => errors.push(format!("network {n}: {e}")),
        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
      }
    }
  }
  if errors.is_empty() {
    Ok(())
  } else {
    Err(SandboxError::provider(format!("could not remove: {}", errors.join("; "))))
  }
}

/// Remove what the registry says sandbox `sandbox_id` owns, without going through its sandbox
/// object (whose own destroy is stuck, e.g. behind a hung start or stop). False when it owns
/// nothing. The registry entry is dropped only if nothing was recorded meanwhile.
pub async fn force_remove(sandbox_id: &str) -> Result<bool> {
  let owned = registry().lock().unwrap().get(sandbox_id).cloned();
  let Some(owned) = owned else { return Ok(false) };
  let docker = connect(owned.socket_path.as_deref()).await?;
  remove_owned(&docker, &owned).await?;
  let mut reg = registry().lock().unwrap();
  if reg.get(sandbox_id) == Some(&owned) {
    reg.remove(sandbox_id);
  }
  Ok(true)
}

/// Default of [`EXIT_BUDGET_ENV`]: how long the exit cleanup may take for all sandboxes together.
pub const EXIT_BUDGET: Duration = Duration::from_secs(10);
pub const EXIT_BUDGET_ENV: &str = "SANDBOX_EXIT_CLEANUP_SECONDS";

fn exit_budget() -> Duration {
  std::env::var(EXIT_BUDGET_ENV)
    .ok()
    .and_then(|v| v.trim().parse::<f64>().ok())
    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
    .map(Duration::from_secs_f64)
    .unwrap_or(EXIT_BUDGET)
}

/// Synchronously remove everything every sandbox of this process still owns. Used by the process
/// `exit` hook: runs on its own single-threaded runtime with fresh clients, so it works while or
/// after napi's runtime shuts down. All sandboxes are removed concurrently within one budget
/// (`SANDBOX_EXIT_CLEANUP_SECONDS`, default 10 s), so a shutdown grace period (Kubernetes gives
/// 30 s) is not outlasted; what is left then dies with its owner (its guest or watchdog sees
/// stdin close) and the reaper removes it. Returns how many sandboxes were cleaned.
pub fn cleanup_all_sync() -> usize {
  let owned: Vec<(String, Owned)> = registry().lock().unwrap().drain().collect();
  if owned.is_empty() {
    return 0;
  }
  let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return 0 };
  let budget = exit_budget();
  rt.block_on(async {
    let started = std::time::Instant::now();
    let mut endpoints: Vec<Option<String>> = owned.iter().map(|(_, o)| o.socket_path.clone()).collect();
    endpoints.sort();
    endpoints.dedup();
    let connects = futures_util::future::join_all(endpoints.iter().map(|e| async move { (e.clone(), connect_fresh(e.as_deref()).await) }));
    let Ok(clients) = tokio::time::timeout(budget, connects).await else {
      tracing::warn!(sandboxes = owned.len(), "exit cleanup: no engine answered within the budget");
      return 0;
    };
    let clients: HashMap<Option<String>, Docker> = clients
      .into_iter()
      .filter_map(|(e, c)| match c {
        Ok(d) => Some((e, d)),
        Err(err) => {
          tracing::warn!(error = %err, "exit cleanup: engine unavailable");
          None
        }
      })
      .collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let removals = owned.iter().filter_map(|(id, o)| {
      let d = clients.get(&o.socket_path)?;
      let done = &done;
      Some(async move {
        match remove_owned(d, o).await {
          Ok(()) => {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
          }
          Err(e) => tracing::warn!(sandbox = %id, error = %e, "exit cleanup incomplete"),
        }
      })
    });
    let left = budget.saturating_sub(started.elapsed());
    if tokio::time::timeout(left, futures_util::future::join_all(removals)).await.is_err() {
      tracing::warn!(budget_s = budget.as_secs_f64(), "exit cleanup ran out of time; the rest is left to the reaper");
    }
    done.load(std::sync::atomic::Ordering::Relaxed)
  })
}
