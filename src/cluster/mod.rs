//! Distributed mode (seed 003): `serve` workers that share one Redis. Redis holds
//!
//! - the worker registry: `{prefix}worker:{id}` (JSON [`WorkerInfo`], expires `ttl` after the
//!   last heartbeat) and the set `{prefix}workers` of ids ever seen (pruned when read);
//! - the sandbox registry: `{prefix}sandbox:{id}` (hash: `worker`, `tenant`) and per tenant the
//!   set `{prefix}tenant:{tenant}:sandboxes`;
//! - sessions: `{prefix}session:{tenant}:{thread}` → sandbox id (a thread belongs to one user: the
//!   owner's manager checks the user, as in local mode);
//! - `{prefix}secret`: the secret workers mark forwarded requests with, when none is configured.
//!
//! A worker is live while its key exists: one that stops heartbeating (killed, partitioned) is
//! dead after `ttl`, and its sandboxes then read as absent (SANDBOX_NOT_FOUND to callers), their
//! entries being removed as they are met. Every call has a deadline; an unreachable Redis is
//! PROVIDER_UNAVAILABLE naming it. The connection is redis-rs's `ConnectionManager`, which
//! reconnects by itself, so a restarted Redis is used again on the next call (the heartbeat then
//! re-registers the worker).

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::core::error::{ErrorCode, Result, SandboxError};

/// Seconds between heartbeats by default; a worker is dead after three missed ones.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(2);
/// Longest any one Redis call may take.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where Redis is: `REDIS_URL`, else seed 003's `REDIS_HOST` (+ `REDIS_PORT`, default 6379);
/// `None` when neither is set (standalone mode).
pub fn redis_url_from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>> {
  let set = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
  if let Some(url) = set("REDIS_URL") {
    return Ok(Some(url));
  }
  let Some(host) = set("REDIS_HOST") else {
    return Ok(None);
  };
  let port = match set("REDIS_PORT") {
    None => 6379,
    Some(p) => p
      .parse::<u16>()
      .ok()
      .filter(|p| *p > 0)
      .ok_or_else(|| SandboxError::invalid_config(format!("REDIS_PORT must be a port number (1-65535), got {p:?}")))?,
  };
  Ok(Some(format!("redis://{host}:{port}/")))
}

/// The URL without a password, for messages and logs.
pub fn shown(url: &str) -> String {
  match (url.find("://"), url.rfind('@')) {
    (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
    _ => url.to_string(),
  }
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
  pub redis_url: String,
  /// This worker's id (`WORKER_ID`); unique in the cluster.
  pub worker_id: String,
  /// Where the other workers reach this one (its service URL).
  pub url: String,
  pub heartbeat: Duration,
  /// How long after its last heartbeat a worker counts as dead (default 3 heartbeats).
  pub ttl: Duration,
  /// Key prefix, so that clusters can share a Redis (default `agentic-sandbox:`).
  pub prefix: String,
  pub call_timeout: Duration,
}

impl ClusterOptions {
  pub fn new(redis_url: impl Into<String>, worker_id: impl Into<String>, url: impl Into<String>) -> Self {
    Self {
      redis_url: redis_url.into(),
      worker_id: worker_id.into(),
      url: url.into(),
      heartbeat: DEFAULT_HEARTBEAT,
      ttl: DEFAULT_HEARTBEAT * 3,
      prefix: "agentic-sandbox:".into(),
      call_timeout: DEFAULT_CALL_TIMEOUT,
    }
  }
}

/// What a worker publishes with each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
  pub id: String,
  pub url: String,
  /// Live sandboxes on the worker: what placement balances.
  pub sandboxes: u64,
  /// Commands running right now.
  pub executions: u64,
  /// ms since the Unix epoch
  pub heartbeat_at: u64,
}

/// Who holds a sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
  pub worker: WorkerInfo,
  pub tenant: String,
}

pub struct Cluster {
  conn: ConnectionManager,
  opts: ClusterOptions,
}

fn now_ms() -> u64 {
  std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Cluster {
  /// Connects (within `call_timeout`); PROVIDER_UNAVAILABLE when Redis cannot be reached.
  pub async fn connect(opts: ClusterOptions) -> Result<Cluster> {
    if opts.worker_id.is_empty() || opts.worker_id.contains(|c: char| c.is_whitespace() || c == ':') {
      return Err(SandboxError::invalid_config(format!(
        "the worker id must be non-empty, without spaces or ':', got {:?}; set WORKER_ID",
        opts.worker_id
      )));
    }
    let client = redis::Client::open(opts.redis_url.as_str())
      .map_err(|e| SandboxError::invalid_config(format!("bad Redis URL {}: {e}", shown(&opts.redis_url))))?;
    let config = redis::aio::ConnectionManagerConfig::new()
      .set_connection_timeout(Some(opts.call_timeout))
      .set_response_timeout(Some(opts.call_timeout))
      .set_number_of_retries(1);
    let unavailable = |e: String| {
      SandboxError::new(
        ErrorCode::ProviderUnavailable,
        format!("cannot reach Redis at {}: {e}; start it or fix REDIS_URL / REDIS_HOST", shown(&opts.redis_url)),
      )
    };
    let conn = tokio::time::timeout(opts.call_timeout, ConnectionManager::new_with_config(client, config))
      .await
      .map_err(|_| unavailable(format!("no answer within {:?}", opts.call_timeout)))?
      .map_err(|e| unavailable(e.to_string()))?;
    Ok(Cluster { conn, opts })
  }

  pub fn options(&self) -> &ClusterOptions {
    &self.opts
  }

  fn key(&self, parts: &[&str]) -> String {
    format!("{}{}", self.opts.prefix, parts.join(":"))
  }

  /// Runs one Redis call with the deadline, mapping failures to PROVIDER_UNAVAILABLE.
  async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
  where
    F: FnOnce(ConnectionManager) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
  {
    let fail = |e: String| {
      SandboxError::new(ErrorCode::ProviderUnavailable, format!("Redis at {} failed to {what}: {e}", shown(&self.opts.redis_url)))
    };
    match tokio::time::timeout(self.opts.call_timeout, f(self.conn.clone())).await {
      Ok(Ok(v)) => Ok(v),
      Ok(Err(e)) => Err(fail(e.to_string())),
      Err(_) => Err(fail(format!("no answer within {:?}", self.opts.call_timeout))),
    }
  }

  /// Publishes this worker as live with its load, for `ttl`. True when the worker was not
  /// registered before this beat (its first one, or Redis lost its data in a restart, or the
  /// worker's key expired): the caller then records its sandboxes and sessions again.
  pub async fn heartbeat(&self, sandboxes: u64, executions: u64) -> Result<bool> {
    let info = WorkerInfo { id: self.opts.worker_id.clone(), url: self.opts.url.clone(), sandboxes, executions, heartbeat_at: now_ms() };
    let json = serde_json::to_string(&info).unwrap_or_default();
    let (key, set) = (self.key(&["worker", &self.opts.worker_id]), self.key(&["workers"]));
    let ttl = self.opts.ttl.as_millis().max(1) as u64;
    let id = self.opts.worker_id.clone();
    self
      .call("record a heartbeat", |mut c| async move {
        let (old,): (Option<String>,) = redis::pipe()
          .atomic()
          .cmd("SET")
          .arg(&key)
          .arg(json)
          .arg("PX")
          .arg(ttl)
          .arg("GET")
          .sadd(&set, id)
          .ignore()
          .query_async(&mut c)
          .await?;
        Ok(old.is_none())
      })
      .await
  }

  /// The cluster's shared secret: `mine` when Redis has none yet (the first worker's), else the
  /// one recorded. Workers mark forwarded requests with it.
  pub async fn shared_secret(&self, mine: &str) -> Result<String> {
    let key = self.key(&["secret"]);
    let mine = mine.to_string();
    self
      .call("share the cluster secret", |mut c| async move {
        let _: Option<String> = redis::cmd("SET").arg(&key).arg(&mine).arg("NX").query_async(&mut c).await?;
        let v: Option<String> = c.get(&key).await?;
        Ok(v.unwrap_or(mine))
      })
      .await
  }

  /// Removes this worker at once (a clean shutdown), with its sandboxes' entries.
  pub async fn leave(&self) -> Result<()> {
    let id = self.opts.worker_id.clone();
    let (key, set) = (self.key(&["worker", &id]), self.key(&["workers"]));
    self.call("remove the worker", |mut c| async move { redis::pipe().del(&key).ignore().srem(&set, &id).ignore().query_async::<()>(&mut c).await }).await
  }

  /// The live workers, by id.
  pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
    let set = self.key(&["workers"]);
    let ids: Vec<String> = self.call("list the workers", |mut c| async move { c.smembers(&set).await }).await?;
    if ids.is_empty() {
      return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(|id| self.key(&["worker", id])).collect();
    let values: Vec<Option<String>> = self.call("read the workers", |mut c| async move { c.mget(&keys).await }).await?;
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for (id, v) in ids.into_iter().zip(values) {
      match v.and_then(|v| serde_json::from_str::<WorkerInfo>(&v).ok()) {
        Some(w) => live.push(w),
        None => dead.push(id),
      }
    }
    if !dead.is_empty() {
      let set = self.key(&["workers"]);
      let _ = self.call("prune dead workers", |mut c| async move { c.srem::<_, _, ()>(&set, dead).await }).await;
    }
    live.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(live)
  }

  /// The live worker that should get a new sandbox: the fewest sandboxes, then the fewest
  /// running commands, then the smallest id. PROVIDER_UNAVAILABLE when no worker is live.
  pub async fn place(&self) -> Result<WorkerInfo> {
    pick(self.workers().await?).ok_or_else(|| {
      SandboxError::new(ErrorCode::ProviderUnavailable, "no live worker in the cluster; start `agentic-sandbox serve` workers on this Redis")
    })
  }

  /// Records that this worker holds sandbox `id` for `tenant`.
  pub async fn claim(&self, id: &str, tenant: &str) -> Result<()> {
    let key = self.key(&["sandbox", id]);
    let tenant_set = self.key(&["tenant", tenant, "sandboxes"]);
    let (worker, tenant, id) = (self.opts.worker_id.clone(), tenant.to_string(), id.to_string());
    self
      .call("record a sandbox", |mut c| async move {
        redis::pipe()
          .atomic()
          .hset_multiple(&key, &[("worker", worker.as_str()), ("tenant", tenant.as_str())])
          .ignore()
          .sadd(&tenant_set, &id)
          .ignore()
          .query_async::<()>(&mut c)
          .await
      })
      .await
  }

  /// Who holds sandbox `id`: `None` when nobody does, or its worker is dead (the entry is then
  /// removed: the sandbox is gone with its worker).
  pub async fn owner(&self, id: &str) -> Result<Option<Owner>> {
    let key = self.key(&["sandbox", id]);
    let entry: HashMap<String, String> = self.call("look up a sandbox", |mut c| async move { c.hgetall(&key).await }).await?;
    let (Some(worker), Some(tenant)) = (entry.get("worker"), entry.get("tenant")) else {
      return Ok(None);
    };
    let wkey = self.key(&["worker", worker]);
    let info: Option<String> = self.call("look up a worker", |mut c| async move { c.get(&wkey).await }).await?;
    match info.and_then(|v| serde_json::from_str::<WorkerInfo>(&v).ok()) {
      Some(worker) => Ok(Some(Owner { worker, tenant: tenant.clone() })),
      None => {
        self.forget(id, tenant).await?;
        Ok(None)
      }
    }
  }

  /// Removes sandbox `id` from the registry.
  pub async fn forget(&self, id: &str, tenant: &str) -> Result<()> {
    let key = self.key(&["sandbox", id]);
    let tenant_set = self.key(&["tenant", tenant, "sandboxes"]);
    let id = id.to_string();
    self
      .call("remove a sandbox", |mut c| async move { redis::pipe().del(&key).ignore().srem(&tenant_set, &id).ignore().query_async::<()>(&mut c).await })
      .await
  }

  /// The sandboxes of `tenant` whose worker is live, with their owners, by id.
  pub async fn tenant_sandboxes(&self, tenant: &str) -> Result<Vec<(String, Owner)>> {
    let set = self.key(&["tenant", tenant, "sandboxes"]);
    let mut ids: Vec<String> = self.call("list a tenant's sandboxes", |mut c| async move { c.smembers(&set).await }).await?;
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
      match self.owner(&id).await? {
        Some(o) => out.push((id, o)),
        None => {
          let set = self.key(&["tenant", tenant, "sandboxes"]);
          let stale = id.clone();
          self.call("prune a sandbox", |mut c| async move { c.srem::<_, _, ()>(&set, stale).await }).await?;
        }
      }
    }
    Ok(out)
  }

  fn session_key(&self, tenant: &str, thread: &str) -> String {
    // tenant names have no ':' (options check them); the thread id is last, so no choice of it collides
    self.key(&["session", tenant, thread])
  }

  /// The sandbox of a thread's session, if one was recorded.
  pub async fn session(&self, tenant: &str, thread: &str) -> Result<Option<String>> {
    let key = self.session_key(tenant, thread);
    self.call("look up a session", |mut c| async move { c.get(&key).await }).await
  }

  pub async fn set_session(&self, tenant: &str, thread: &str, sandbox_id: &str) -> Result<()> {
    let key = self.session_key(tenant, thread);
    let id = sandbox_id.to_string();
    self.call("record a session", |mut c| async move { c.set::<_, _, ()>(&key, id).await }).await
  }

  pub async fn clear_session(&self, tenant: &str, thread: &str) -> Result<()> {
    let key = self.session_key(tenant, thread);
    self.call("remove a session", |mut c| async move { c.del::<_, ()>(&key).await }).await
  }
}

/// Placement: the fewest sandboxes, then the fewest running commands, then the smallest id.
pub fn pick(workers: Vec<WorkerInfo>) -> Option<WorkerInfo> {
  workers.into_iter().min_by(|a, b| (a.sandboxes, a.executions, &a.id).cmp(&(b.sandboxes, b.executions, &b.id)))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod server_tests;
