//! Persistent sandboxes (README "Persistent sandboxes"): a container that outlives the process
//! that made it, until its lifetime ends, and that any process on the same engine re-attaches
//! with `manager.connect(id)`.
//!
//! What makes one:
//! - its container carries [`LABEL_PERSISTENT`], a JSON [`Record`] of what a later process needs
//!   to rebuild the sandbox's configuration (image, workdir, limits, user, name, metadata, the
//!   names of the env variables the user set — their values are read back from the container)
//!   and when its lifetime ends. Labels are written by the host at creation and cannot be changed
//!   from inside the sandbox; a reader still validates them (the config goes through `resolve`);
//! - the guest, as the container's command, gets `--lifetime-seconds N`: at the end of its input
//!   (the owner went away) it keeps the sandbox and its background processes, and it exits when
//!   the lifetime ends, which ends the container (as PID 1 nothing inside can stop that). On the
//!   exec engine the container's command is a `sleep` of the lifetime, run as root (out of the
//!   sandbox user's reach);
//! - the reaper of any process on the engine removes a persistent container whose lifetime has
//!   ended, in whatever state (`reaper::verdict`), and never one whose lifetime has not, paused or
//!   not; the exit hook of the owner leaves it alone once it runs.
//!
//! Re-attaching starts a guest with one `docker exec` (the guest binary is mounted in the
//! container), or uses the exec engine when the sandbox has no guest. The background processes
//! and code contexts of the previous owner keep running but are not re-attached (their output
//! went to the previous owner's connection).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use bollard::Docker;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::sandbox::call;
use super::{LABEL_ID, LABEL_MANAGED};
use crate::core::config::SandboxConfig;
use crate::core::error::{ErrorCode, Result, SandboxError};

/// The label of a persistent sandbox's container: a JSON [`Record`].
pub const LABEL_PERSISTENT: &str = "agentic-sandbox.persistent";
/// Metadata larger than this is not kept for a later `connect` (labels are no database).
const MAX_METADATA_BYTES: usize = 16 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a later process needs to rebuild a persistent sandbox's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
  /// Unix milliseconds when its lifetime ends
  pub expires_at_ms: f64,
  pub lifetime_seconds: f64,
  pub created_ms: f64,
  /// the user every command runs as (`uid:gid` or a name), decided at the first start
  pub user: String,
  pub image: String,
  pub workdir: String,
  pub limits: Value,
  pub network_mode: String,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub name: Option<String>,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub template: Option<String>,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub metadata: Option<Value>,
  /// the names of the variables of `env` (their values are in the container's environment)
  #[serde(default)]
  pub env_keys: Vec<String>,
}

impl Record {
  pub fn new(cfg: &SandboxConfig, user: &str, now_ms: f64) -> Self {
    let lifetime = cfg.lifetime_seconds.unwrap_or(crate::core::config::DEFAULT_LIFETIME_SECONDS);
    let metadata = cfg.metadata.clone().filter(|m| serde_json::to_string(m).map(|s| s.len() <= MAX_METADATA_BYTES).unwrap_or(false));
    Record {
      expires_at_ms: now_ms + lifetime * 1000.0,
      lifetime_seconds: lifetime,
      created_ms: now_ms,
      user: user.to_string(),
      image: cfg.image.clone(),
      workdir: cfg.workdir.clone(),
      limits: crate::core::config::limits_to_json(&cfg.limits),
      network_mode: cfg.network_mode.as_str().to_string(),
      name: cfg.name.clone(),
      template: cfg.template.clone(),
      metadata,
      env_keys: cfg.env.keys().cloned().collect(),
    }
  }

  pub fn label(&self) -> String {
    serde_json::to_string(self).unwrap_or_default()
  }

  pub fn parse(label: &str) -> Option<Record> {
    serde_json::from_str(label).ok()
  }

  pub fn expired(&self, now_ms: f64) -> bool {
    now_ms >= self.expires_at_ms
  }

  /// The configuration layer of a re-attached sandbox: this record, the env values from the
  /// container's environment (`NAME=value` entries), over the connecting manager's `docker` and
  /// `limits` defaults.
  pub fn config_layer(&self, container_env: &[String]) -> Value {
    let env: BTreeMap<&str, &str> = container_env
      .iter()
      .filter_map(|e| e.split_once('='))
      .filter(|(k, _)| self.env_keys.iter().any(|x| x == k))
      .collect();
    let left = ((self.expires_at_ms - crate::core::logs::now_ms()) / 1000.0).max(1.0);
    json!({
      "provider": "docker",
      "image": self.image,
      "template": self.template,
      "workdir": self.workdir,
      "limits": self.limits,
      "networkMode": self.network_mode,
      "name": self.name,
      "metadata": self.metadata,
      "env": env,
      "persistent": true,
      "lifetimeSeconds": left.min(crate::core::config::MAX_LIFETIME_SECONDS),
    })
  }
}

/// The container command's argv addition of a persistent sandbox: whole seconds, at least 1.
pub fn lifetime_secs(cfg: &SandboxConfig) -> u64 {
  cfg.lifetime_seconds.unwrap_or(crate::core::config::DEFAULT_LIFETIME_SECONDS).ceil().max(1.0) as u64
}

/// A persistent sandbox found on the engine (`manager.list({ includeDetached: true })`).
#[derive(Debug, Clone, PartialEq)]
pub struct Detached {
  pub id: String,
  /// the engine's container state: running, paused, exited, ...
  pub state: String,
  pub record: Record,
}

/// Every persistent sandbox on the engine (in any state).
pub async fn list(docker: &Docker) -> Result<Vec<Detached>> {
  let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true"), LABEL_PERSISTENT.to_string()])]);
  let containers = call(
    "listing persistent sandboxes",
    CALL_TIMEOUT,
    docker.list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() })),
    |e| SandboxError::provider(format!("listing persistent sandboxes: {e}")),
  )
  .await?;
  let mut out: Vec<Detached> = containers
    .into_iter()
    .filter_map(|c| {
      let labels = c.labels?;
      let record = Record::parse(labels.get(LABEL_PERSISTENT)?)?;
      Some(Detached { id: labels.get(LABEL_ID)?.clone(), state: c.state.map(|s| s.to_string()).unwrap_or_default(), record })
    })
    .collect();
  out.sort_by(|a, b| a.record.created_ms.total_cmp(&b.record.created_ms));
  Ok(out)
}

/// What `connect` needs of a persistent sandbox's container: its record and environment.
pub struct Found {
  pub record: Record,
  pub env: Vec<String>,
  /// the container's id
  pub container: String,
  /// the guest binary is mounted (the sandbox was made for the guest engine)
  pub guest_mounted: bool,
}

fn not_found(id: &str, why: &str) -> SandboxError {
  SandboxError::new(
    ErrorCode::SandboxNotFound,
    format!("no persistent sandbox {id} on this Docker engine ({why}); manager.list({{ includeDetached: true }}) shows the ones there are"),
  )
}

/// Look up the persistent sandbox `id` (its container is named after it).
pub async fn find(docker: &Docker, id: &str) -> Result<Found> {
  if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
    return Err(SandboxError::invalid_argument(format!("{id:?} is not a sandbox id (ids look like docker-0123456789abcdef)")));
  }
  let info = call(&format!("inspecting {id}"), CALL_TIMEOUT, docker.inspect_container(id, None::<InspectContainerOptions>), |e| match e {
    bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => not_found(id, "no such container"),
    e => SandboxError::provider(format!("inspecting {id}: {e}")),
  })
  .await?;
  let config = info.config.unwrap_or_default();
  let labels = config.labels.unwrap_or_default();
  if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true") || labels.get(LABEL_ID).map(String::as_str) != Some(id) {
    return Err(not_found(id, "that container is not a sandbox of this library"));
  }
  let Some(raw) = labels.get(LABEL_PERSISTENT) else {
    return Err(not_found(id, "it is not persistent: only sandboxes created with persistent: true can be re-attached"));
  };
  let record = Record::parse(raw).ok_or_else(|| not_found(id, "its persistence label does not parse"))?;
  let state = info.state.and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default();
  if record.expired(crate::core::logs::now_ms()) || state != "running" {
    return Err(not_found(id, &format!("its lifetime ended (container {state})")));
  }
  let guest_mounted = info
    .mounts
    .unwrap_or_default()
    .iter()
    .any(|m| matches!(m.destination.as_deref(), Some(super::guest::GUEST_PATH) | Some(super::guest::GUEST_DIR)));
  Ok(Found { record, env: config.env.unwrap_or_default(), container: info.id.unwrap_or_else(|| id.to_string()), guest_mounted })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn cfg() -> SandboxConfig {
    let given = json!({
      "image": "img:1", "persistent": true, "lifetimeSeconds": 120, "env": {"A": "1", "SECRET_TOKEN": "x"},
      "name": "n", "metadata": {"k": "v"}
    });
    crate::core::config::resolve(&crate::core::config::merge(&crate::core::config::defaults(), &given)).unwrap()
  }

  #[test]
  fn record_round_trip_and_layer() {
    let c = cfg();
    let r = Record::new(&c, "1000:1000", 1_000_000.0);
    assert_eq!(r.expires_at_ms, 1_120_000.0);
    let back = Record::parse(&r.label()).unwrap();
    assert_eq!(back, r);
    // values are not in the label
    assert!(!r.label().contains("\"x\""), "{}", r.label());
    assert!(r.expired(1_120_000.0) && !r.expired(1_119_999.0));
    let env = vec!["PATH=/bin".to_string(), "A=1".into(), "SECRET_TOKEN=x".into(), "HOME=/h".into()];
    let mut live = r.clone();
    live.expires_at_ms = crate::core::logs::now_ms() + 60_000.0;
    let layer = live.config_layer(&env);
    assert_eq!(layer["env"], json!({"A": "1", "SECRET_TOKEN": "x"}));
    let back = crate::core::config::resolve(&crate::core::config::merge(&crate::core::config::defaults(), &layer)).unwrap();
    assert_eq!(back.image, "img:1");
    assert!(back.persistent);
    assert!(back.lifetime_seconds.unwrap() <= 60.0 && back.lifetime_seconds.unwrap() > 50.0);
    assert_eq!(back.name.as_deref(), Some("n"));
    assert_eq!(back.limits, c.limits);
  }

  #[test]
  fn garbage_labels_do_not_parse() {
    for bad in ["", "{}", "null", "[1]", "{\"expiresAtMs\": \"soon\"}"] {
      assert!(Record::parse(bad).is_none(), "{bad}");
    }
  }

  #[test]
  fn lifetime_rounds_up() {
    let mut c = cfg();
    c.lifetime_seconds = Some(1.2);
    assert_eq!(lifetime_secs(&c), 2);
  }
}
