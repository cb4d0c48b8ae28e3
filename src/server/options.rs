//! The server's options: where it listens, its API keys (each a tenant) and their limits, the
//! sandboxes' lifetimes, output caps and the shutdown budget. Read from one JSON object (what
//! `new SandboxServer(options)` and the command line pass), the `SANDBOX_API_KEYS` variable and
//! an API keys file. Messages name the option; they never quote a key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::core::error::{Result, SandboxError};

/// What each tenant may use at once. The server-wide values apply to every key that does not
/// set its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
  /// sandboxes held at once (creations in progress count)
  pub max_sandboxes: usize,
  /// execute requests running at once
  pub max_concurrent_executions: usize,
  /// background processes (`/v1` `background: true`) running at once, over all its sandboxes
  pub max_background_processes: usize,
  /// largest request body
  pub max_body_bytes: usize,
}

impl Default for TenantLimits {
  fn default() -> Self {
    Self { max_sandboxes: 10, max_concurrent_executions: 4, max_background_processes: 16, max_body_bytes: 10 * 1024 * 1024 }
  }
}

/// One API key: a tenant.
#[derive(Clone, PartialEq)]
pub struct ApiKey {
  /// shown in the access log and /health instead of the key
  pub name: String,
  pub key: String,
  pub limits: TenantLimits,
}

impl std::fmt::Debug for ApiKey {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ApiKey").field("name", &self.name).field("key", &"***").field("limits", &self.limits).finish()
  }
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
  pub host: String,
  pub port: u16,
  /// no keys: one anonymous tenant, loopback only
  pub keys: Vec<ApiKey>,
  pub limits: TenantLimits,
  /// a sandbox's lifetime when `POST /sandbox/create` gives no `timeout`
  pub default_timeout: Duration,
  pub max_timeout: Duration,
  /// an execute request's budget when it gives no `timeout`
  pub default_exec_timeout: Duration,
  /// each output stream of each command is cut here (`truncated: true`)
  pub max_output_bytes: usize,
  /// how long in-flight requests may run on after close() or a signal before they are cancelled
  pub shutdown_timeout: Duration,
  /// the manager's defaultConfig (`new SandboxManager(config)`)
  pub manager_config: Option<Value>,
  /// the configuration file instead of `$SANDBOX_CONFIG_FILE` / `./.sandboxrc.json`
  pub config_file: Option<PathBuf>,
  /// `tracing` events of every request (target `agentic_sandbox::server::access`)
  pub access_log: bool,
  /// distributed mode: this server is a worker of the cluster on this Redis
  pub cluster: Option<ClusterSettings>,
  /// worker id, audit log, who reads `/metrics` (`server::metrics`)
  pub obs: crate::server::metrics::ObsOptions,
}

/// Distributed mode (README "Distributed mode"): `redisUrl` (or `REDIS_URL`, `REDIS_HOST` /
/// `REDIS_PORT`) makes the server a worker.
#[derive(Clone)]
pub struct ClusterSettings {
  pub redis_url: String,
  /// `WORKER_ID`; default `<hostname>-<pid>`
  pub worker_id: Option<String>,
  /// `WORKER_URL`: where the other workers reach this one; default `http://<bound address>`
  pub advertise_url: Option<String>,
  /// beats this often; a worker is dead after three missed ones
  pub heartbeat: Duration,
  /// `SANDBOX_CLUSTER_SECRET`: marks requests one worker forwards to another; default: a random
  /// one that the first worker records in Redis
  pub secret: Option<String>,
}

impl std::fmt::Debug for ClusterSettings {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ClusterSettings")
      .field("redis_url", &crate::cluster::shown(&self.redis_url))
      .field("worker_id", &self.worker_id)
      .field("advertise_url", &self.advertise_url)
      .field("heartbeat", &self.heartbeat)
      .field("secret", &self.secret.as_ref().map(|_| "***"))
      .finish()
  }
}

pub const DEFAULT_PORT: u16 = 8003;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const MIN_KEY_LEN: usize = 16;
const MAX_KEYS: usize = 10_000;
const WEEK: f64 = 7.0 * 24.0 * 3600.0;

impl Default for ServerOptions {
  fn default() -> Self {
    Self {
      host: DEFAULT_HOST.into(),
      port: DEFAULT_PORT,
      keys: Vec::new(),
      limits: TenantLimits::default(),
      default_timeout: Duration::from_secs(3600),
      max_timeout: Duration::from_secs(WEEK as u64),
      default_exec_timeout: Duration::from_secs(300),
      max_output_bytes: 1024 * 1024,
      shutdown_timeout: Duration::from_secs(10),
      manager_config: None,
      config_file: None,
      access_log: false,
      cluster: None,
      obs: Default::default(),
    }
  }
}

const KNOWN: [&str; 22] = [
  "port",
  "host",
  "apiKeys",
  "apiKeysFile",
  "readEnv",
  "config",
  "configFile",
  "maxSandboxes",
  "maxConcurrentExecutions",
  "maxBackgroundProcesses",
  "maxBodyBytes",
  "defaultTimeout",
  "maxTimeout",
  "defaultExecutionTimeout",
  "maxOutputBytes",
  "shutdownTimeout",
  "accessLog",
  "redisUrl",
  "workerId",
  "advertiseUrl",
  "heartbeatInterval",
  "clusterSecret",
];

fn bad(message: String) -> SandboxError {
  SandboxError::invalid_config(message)
}

fn type_name(v: &Value) -> &'static str {
  match v {
    Value::Null => "null",
    Value::Bool(_) => "a boolean",
    Value::Number(_) => "a number",
    Value::String(_) => "a string",
    Value::Array(_) => "an array",
    Value::Object(_) => "an object",
  }
}

/// A whole number in [min, max] (null or absent: None).
fn whole(o: &Map<String, Value>, field: &str, what: &str, min: u64, max: u64) -> Result<Option<u64>> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Number(n)) => match n.as_f64() {
      Some(f) if f.fract() == 0.0 && f >= min as f64 && f <= max as f64 => Ok(Some(f as u64)),
      _ => Err(bad(format!("{what} must be a whole number from {min} to {max}, got {n}"))),
    },
    Some(v) => Err(bad(format!("{what} must be a whole number from {min} to {max}, got {}", type_name(v)))),
  }
}

/// Seconds in (0, max] (fractions allowed).
fn seconds(o: &Map<String, Value>, field: &str, max: f64) -> Result<Option<Duration>> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Number(n)) => match n.as_f64() {
      Some(f) if f.is_finite() && f > 0.0 && f <= max => Ok(Some(Duration::from_secs_f64(f))),
      _ => Err(bad(format!("{field} must be a number of seconds in (0, {max}], got {n}"))),
    },
    Some(v) => Err(bad(format!("{field} must be a number of seconds, got {}", type_name(v)))),
  }
}

fn string(o: &Map<String, Value>, field: &str) -> Result<Option<String>> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
    Some(v) => Err(bad(format!("{field} must be a non-empty string, got {}", if v.is_string() { "an empty string" } else { type_name(v) }))),
  }
}

fn limits(o: &Map<String, Value>, prefix: &str, base: TenantLimits) -> Result<TenantLimits> {
  let name = |f: &str| if prefix.is_empty() { f.to_string() } else { format!("{prefix}.{f}") };
  Ok(TenantLimits {
    max_sandboxes: whole(o, "maxSandboxes", &name("maxSandboxes"), 1, 100_000)?.map_or(base.max_sandboxes, |v| v as usize),
    max_concurrent_executions: whole(o, "maxConcurrentExecutions", &name("maxConcurrentExecutions"), 1, 100_000)?
      .map_or(base.max_concurrent_executions, |v| v as usize),
    max_background_processes: whole(o, "maxBackgroundProcesses", &name("maxBackgroundProcesses"), 0, 100_000)?
      .map_or(base.max_background_processes, |v| v as usize),
    max_body_bytes: whole(o, "maxBodyBytes", &name("maxBodyBytes"), 1024, 1 << 30)?.map_or(base.max_body_bytes, |v| v as usize),
  })
}

/// A key must be at least [`MIN_KEY_LEN`] visible ASCII characters, without commas (the
/// variable's separator). `what` names where it came from; the key itself is never quoted.
pub fn check_key(key: &str, what: &str) -> Result<()> {
  if key.len() < MIN_KEY_LEN {
    return Err(bad(format!(
      "{what} is {} characters long; API keys need at least {MIN_KEY_LEN} (make one with `openssl rand -hex 24`)",
      key.chars().count()
    )));
  }
  if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
    return Err(bad(format!("{what} may only contain visible ASCII characters other than ',' (no spaces)")));
  }
  Ok(())
}

fn check_name(name: &str, what: &str) -> Result<()> {
  if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b)) {
    return Err(bad(format!("{what} must be 1 to 64 letters, digits, '.', '_', '-' or '@', got {name:?}")));
  }
  Ok(())
}

/// Distributed mode's options, each over its environment variable.
fn cluster(o: &Map<String, Value>, get: &dyn Fn(&str) -> Option<String>) -> Result<Option<ClusterSettings>> {
  let env = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
  let redis_url = match string(o, "redisUrl")? {
    Some(u) => Some(u),
    None => crate::cluster::redis_url_from_env(get)?,
  };
  let Some(redis_url) = redis_url else {
    for k in ["advertiseUrl", "heartbeatInterval", "clusterSecret"] {
      if o.get(k).is_some_and(|v| !v.is_null()) {
        return Err(bad(format!("{k} is an option of distributed mode, which needs redisUrl (or REDIS_URL / REDIS_HOST)")));
      }
    }
    return Ok(None);
  };
  if !redis_url.starts_with("redis://") && !redis_url.starts_with("rediss://") {
    return Err(bad(format!("the Redis URL must start with redis:// (or rediss://), got {:?}", crate::cluster::shown(&redis_url))));
  }
  let worker_id = string(o, "workerId")?.or_else(|| env("WORKER_ID"));
  if let Some(id) = &worker_id {
    check_name(id, "the worker id (workerId / WORKER_ID)")?;
  }
  let advertise_url = string(o, "advertiseUrl")?.or_else(|| env("WORKER_URL")).map(|u| u.trim_end_matches('/').to_string());
  if let Some(u) = &advertise_url {
    if !(u.starts_with("http://") || u.starts_with("https://")) || reqwest::Url::parse(u).is_err() {
      return Err(bad(format!("the worker's URL (advertiseUrl / WORKER_URL) must be an http(s) URL, got {u:?}")));
    }
  }
  let heartbeat = match seconds(o, "heartbeatInterval", 3600.0)? {
    Some(d) => d,
    None => match env("HEARTBEAT_INTERVAL") {
      Some(v) => match v.parse::<f64>() {
        Ok(f) if f.is_finite() && (0.05..=3600.0).contains(&f) => Duration::from_secs_f64(f),
        _ => return Err(bad(format!("HEARTBEAT_INTERVAL must be a number of seconds from 0.05 to 3600, got {v:?}"))),
      },
      None => crate::cluster::DEFAULT_HEARTBEAT,
    },
  };
  if heartbeat < Duration::from_millis(50) {
    return Err(bad("heartbeatInterval must be at least 0.05 seconds".into()));
  }
  let secret = string(o, "clusterSecret")?.or_else(|| env("SANDBOX_CLUSTER_SECRET"));
  if let Some(s) = &secret {
    check_key(s, "the cluster secret (clusterSecret / SANDBOX_CLUSTER_SECRET)")?;
  }
  Ok(Some(ClusterSettings { redis_url, worker_id, advertise_url, heartbeat, secret }))
}

/// `SANDBOX_API_KEYS`: comma-separated keys (blanks around them ignored); tenants `env-1`, `env-2`, ...
pub fn keys_from_env(value: &str, limits: TenantLimits) -> Result<Vec<ApiKey>> {
  let mut out = Vec::new();
  for (i, k) in value.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
    check_key(k, &format!("entry {} of SANDBOX_API_KEYS", i + 1))?;
    out.push(ApiKey { name: format!("env-{}", i + 1), key: k.to_string(), limits });
  }
  Ok(out)
}

/// An API keys file: one key per line, or `<name> <key>`; blank lines and lines starting with
/// `#` are skipped. Unnamed keys are tenants `<file name>-<line>`.
pub fn keys_from_file(text: &str, path: &Path, limits: TenantLimits) -> Result<Vec<ApiKey>> {
  let mut out = Vec::new();
  let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
  let stem: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
  for (n, line) in text.lines().enumerate() {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
      continue;
    }
    let what = format!("line {} of {}", n + 1, path.display());
    let words: Vec<&str> = line.split_whitespace().collect();
    let (name, key) = match words.as_slice() {
      [key] => (format!("{stem}-{}", n + 1), *key),
      [name, key] => (name.to_string(), *key),
      _ => return Err(bad(format!("{what} must be a key, or a name and a key separated by a space"))),
    };
    check_name(&name, &format!("the name on {what}"))?;
    check_key(key, &format!("the key on {what}"))?;
    out.push(ApiKey { name, key: key.to_string(), limits });
  }
  Ok(out)
}

/// `apiKeys`: strings, or `{ key, name?, maxSandboxes?, maxConcurrentExecutions?, maxBackgroundProcesses?, maxBodyBytes? }`.
fn keys_from_option(v: &Value, base: TenantLimits) -> Result<Vec<ApiKey>> {
  let Value::Array(items) = v else {
    return Err(bad(format!("apiKeys must be an array of keys (strings or {{ key, name, ...limits }}), got {}", type_name(v))));
  };
  let mut out = Vec::new();
  for (i, item) in items.iter().enumerate() {
    let what = format!("apiKeys[{i}]");
    match item {
      Value::String(k) => {
        check_key(k, &what)?;
        out.push(ApiKey { name: format!("key-{}", i + 1), key: k.clone(), limits: base });
      }
      Value::Object(o) => {
        for k in o.keys() {
          if !["key", "name", "maxSandboxes", "maxConcurrentExecutions", "maxBackgroundProcesses", "maxBodyBytes"].contains(&k.as_str()) {
            return Err(bad(format!(
              "{what}.{k} is not an option of an API key (key, name, maxSandboxes, maxConcurrentExecutions, maxBackgroundProcesses, maxBodyBytes)"
            )));
          }
        }
        let key = match o.get("key") {
          Some(Value::String(k)) => k.clone(),
          Some(other) => return Err(bad(format!("{what}.key must be a string, got {}", type_name(other)))),
          None => return Err(bad(format!("{what}.key is missing"))),
        };
        check_key(&key, &format!("{what}.key"))?;
        let name = match string(o, "name")? {
          Some(n) => {
            check_name(&n, &format!("{what}.name"))?;
            n
          }
          None => format!("key-{}", i + 1),
        };
        out.push(ApiKey { name, key, limits: limits(o, &what, base)? });
      }
      other => return Err(bad(format!("{what} must be a string or {{ key, name, ...limits }}, got {}", type_name(other)))),
    }
  }
  Ok(out)
}

impl ServerOptions {
  /// The options of `new SandboxServer(options)` (camelCase keys; unknown keys are INVALID_CONFIG),
  /// with the keys of `SANDBOX_API_KEYS` (unless `readEnv: false`) and of `apiKeysFile` added.
  /// `get` reads the environment; `read` reads a file.
  pub fn from_json(v: Option<&Value>, get: &dyn Fn(&str) -> Option<String>, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Result<Self> {
    let empty = Map::new();
    let o = match v {
      None | Some(Value::Null) => &empty,
      Some(Value::Object(o)) => o,
      Some(other) => return Err(bad(format!("the SandboxServer options must be an object, got {}", type_name(other)))),
    };
    let obs = &crate::server::metrics::OPTIONS;
    if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str()) && !obs.contains(&k.as_str())) {
      return Err(bad(format!("{k} is not an option of SandboxServer (known: {}, {})", KNOWN.join(", "), obs.join(", "))));
    }
    let mut s = ServerOptions::default();
    if let Some(p) = whole(o, "port", "port", 0, 65535)? {
      s.port = p as u16;
    }
    if let Some(h) = string(o, "host")? {
      s.host = h;
    }
    s.limits = limits(o, "", s.limits)?;
    if let Some(t) = seconds(o, "maxTimeout", WEEK)? {
      s.max_timeout = t;
    }
    if let Some(t) = seconds(o, "defaultTimeout", s.max_timeout.as_secs_f64())? {
      s.default_timeout = t;
    } else if s.default_timeout > s.max_timeout {
      s.default_timeout = s.max_timeout;
    }
    if let Some(t) = seconds(o, "defaultExecutionTimeout", WEEK)? {
      s.default_exec_timeout = t;
    }
    if let Some(b) = whole(o, "maxOutputBytes", "maxOutputBytes", 1024, 256 << 20)? {
      s.max_output_bytes = b as usize;
    }
    if let Some(t) = seconds(o, "shutdownTimeout", 3600.0)? {
      s.shutdown_timeout = t;
    }
    match o.get("accessLog") {
      None | Some(Value::Null) => {}
      Some(Value::Bool(b)) => s.access_log = *b,
      Some(v) => return Err(bad(format!("accessLog must be a boolean, got {}", type_name(v)))),
    }
    let read_env = match o.get("readEnv") {
      None | Some(Value::Null) => true,
      Some(Value::Bool(b)) => *b,
      Some(v) => return Err(bad(format!("readEnv must be a boolean, got {}", type_name(v)))),
    };
    s.manager_config = match o.get("config") {
      None | Some(Value::Null) => None,
      Some(c @ Value::Object(_)) => Some(c.clone()),
      Some(v) => return Err(bad(format!("config must be a SandboxConfig object (use configFile for a file), got {}", type_name(v)))),
    };
    s.config_file = string(o, "configFile")?.map(PathBuf::from);
    s.obs = crate::server::metrics::ObsOptions::from_json(o, read_env, get)?;
    s.cluster = cluster(o, if read_env { get } else { &|_: &str| None })?;
    // one worker id names this server in the cluster, in metrics and in audit lines
    if let Some(c) = &mut s.cluster {
      let id = c.worker_id.get_or_insert_with(|| format!("{}-{}", crate::server::metrics::hostname(), std::process::id()));
      s.obs.worker_id = id.clone();
    } else if o.get("workerId").is_none_or(Value::is_null) {
      if let Some(id) = get("WORKER_ID").filter(|_| read_env).filter(|v| !v.trim().is_empty()) {
        check_name(&id, "the worker id (workerId / WORKER_ID)")?;
        s.obs.worker_id = id;
      }
    }

    // keys: the option, the file, the environment; each key once
    let mut keys: Vec<(String, ApiKey)> = Vec::new();
    if let Some(v) = o.get("apiKeys").filter(|v| !v.is_null()) {
      keys.extend(keys_from_option(v, s.limits)?.into_iter().enumerate().map(|(i, k)| (format!("apiKeys[{i}]"), k)));
    }
    if let Some(path) = string(o, "apiKeysFile")? {
      let path = PathBuf::from(path);
      let text = read(&path).map_err(|e| bad(format!("cannot read the API keys file {} ({e})", path.display())))?;
      let from_file = keys_from_file(&text, &path, s.limits)?;
      if from_file.is_empty() {
        return Err(bad(format!("the API keys file {} has no key", path.display())));
      }
      keys.extend(from_file.into_iter().map(|k| (format!("{} of {}", k.name, path.display()), k)));
    }
    if read_env {
      if let Some(v) = get("SANDBOX_API_KEYS").filter(|v| !v.trim().is_empty()) {
        keys.extend(keys_from_env(&v, s.limits)?.into_iter().map(|k| (format!("{} (SANDBOX_API_KEYS)", k.name), k)));
      }
    }
    if keys.len() > MAX_KEYS {
      return Err(bad(format!("at most {MAX_KEYS} API keys, got {}", keys.len())));
    }
    for (i, (what, k)) in keys.iter().enumerate() {
      if let Some((first, _)) = keys[..i].iter().find(|(_, o)| o.key == k.key) {
        return Err(bad(format!("{what} is the same API key as {first}; give each key once")));
      }
      if let Some((first, _)) = keys[..i].iter().find(|(_, o)| o.name == k.name) {
        return Err(bad(format!("{what} has the tenant name {:?} of {first} too; names must differ", k.name)));
      }
    }
    s.keys = keys.into_iter().map(|(_, k)| k).collect();
    Ok(s)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  const K1: &str = "k1-0123456789abcdef";
  const K2: &str = "k2-0123456789abcdef";

  fn no_env(_: &str) -> Option<String> {
    None
  }
  fn no_file(p: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} not found", p.display())))
  }
  fn parse(v: Value) -> Result<ServerOptions> {
    ServerOptions::from_json(Some(&v), &no_env, &no_file)
  }

  #[test]
  fn defaults() {
    let s = ServerOptions::from_json(None, &no_env, &no_file).unwrap();
    assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8003));
    assert!(s.keys.is_empty());
    assert_eq!(s.limits, TenantLimits::default());
    assert_eq!(s.default_timeout, Duration::from_secs(3600));
    assert!(!s.access_log);
  }

  #[test]
  fn keys_from_every_source_with_their_limits() {
    let env = |k: &str| (k == "SANDBOX_API_KEYS").then(|| format!(" {K2} , ,"));
    let file = |_: &Path| Ok("# team keys\n\nalice k3-0123456789abcdef\nk4-0123456789abcdef\n".to_string());
    let v = json!({ "apiKeys": [K1, { "key": "k5-0123456789abcdef", "name": "ci", "maxSandboxes": 1 }], "apiKeysFile": "/etc/keys.txt", "maxConcurrentExecutions": 2 });
    let s = ServerOptions::from_json(Some(&v), &env, &file).unwrap();
    let names: Vec<&str> = s.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["key-1", "ci", "alice", "keys-4", "env-1"]);
    assert_eq!(s.keys[1].limits.max_sandboxes, 1);
    assert_eq!(s.keys[1].limits.max_concurrent_executions, 2, "a key's own limits start from the server's");
    assert_eq!(s.keys[4].key, K2);
    let off = ServerOptions::from_json(Some(&json!({ "readEnv": false })), &env, &no_file).unwrap();
    assert!(off.keys.is_empty());
  }

  #[test]
  fn bad_options_name_the_field_and_never_the_key() {
    let cases = [
      (json!({ "prot": 1 }), "prot is not an option"),
      (json!({ "port": 70000 }), "port must be a whole number from 0 to 65535"),
      (json!({ "port": "80" }), "port must be a whole number"),
      (json!({ "apiKeys": "abc" }), "apiKeys must be an array"),
      (json!({ "apiKeys": ["short"] }), "apiKeys[0] is 5 characters long"),
      (json!({ "apiKeys": [K1, K1] }), "apiKeys[1] is the same API key as apiKeys[0]"),
      (json!({ "apiKeys": [{ "key": K1, "name": "a b" }] }), "apiKeys[0].name must be"),
      (json!({ "apiKeys": [{ "key": K1, "maxSandboxes": 0 }] }), "apiKeys[0].maxSandboxes must be a whole number from 1"),
      (json!({ "apiKeys": [{ "key": K1, "admin": true }] }), "apiKeys[0].admin is not an option"),
      (json!({ "apiKeys": [format!("{K1} x")] }), "no spaces"),
      (json!({ "maxBodyBytes": 10 }), "maxBodyBytes must be a whole number from 1024"),
      (json!({ "defaultTimeout": 0 }), "defaultTimeout must be a number of seconds"),
      (json!({ "maxTimeout": 60, "defaultTimeout": 120 }), "defaultTimeout must be a number of seconds in (0, 60]"),
      (json!({ "config": "x.json" }), "use configFile"),
      (json!({ "apiKeysFile": "/nope" }), "cannot read the API keys file /nope"),
    ];
    for (v, want) in cases {
      let e = parse(v.clone()).unwrap_err();
      assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig);
      assert!(e.message.contains(want), "{v}: {}", e.message);
      assert!(!e.message.contains(K1), "{v} quotes the key: {}", e.message);
    }
    let env = |k: &str| (k == "SANDBOX_API_KEYS").then(|| "tiny".to_string());
    let e = ServerOptions::from_json(None, &env, &no_file).unwrap_err();
    assert!(e.message.contains("entry 1 of SANDBOX_API_KEYS") && !e.message.contains("tiny"), "{}", e.message);
    let file = |_: &Path| Ok("a b c\n".to_string());
    let e = ServerOptions::from_json(Some(&json!({ "apiKeysFile": "k" })), &no_env, &file).unwrap_err();
    assert!(e.message.contains("line 1 of k must be a key"), "{}", e.message);
    let empty = |_: &Path| Ok("# nothing\n".to_string());
    assert!(ServerOptions::from_json(Some(&json!({ "apiKeysFile": "k" })), &no_env, &empty).unwrap_err().message.contains("has no key"));
  }

  #[test]
  fn distributed_mode_options_and_their_variables() {
    assert!(parse(json!({})).unwrap().cluster.is_none());
    let env = |k: &str| match k {
      "REDIS_HOST" => Some("127.0.0.1".to_string()),
      "REDIS_PORT" => Some("7001".to_string()),
      "WORKER_ID" => Some("w-1".to_string()),
      "HEARTBEAT_INTERVAL" => Some("0.5".to_string()),
      _ => None,
    };
    let c = ServerOptions::from_json(None, &env, &no_file).unwrap().cluster.unwrap();
    assert_eq!((c.redis_url.as_str(), c.worker_id.as_deref(), c.heartbeat), ("redis://127.0.0.1:7001/", Some("w-1"), Duration::from_millis(500)));
    let c = ServerOptions::from_json(Some(&json!({ "redisUrl": "redis://h:1/", "workerId": "a", "advertiseUrl": "http://10.0.0.1:8003/", "clusterSecret": K2 })), &env, &no_file)
      .unwrap()
      .cluster
      .unwrap();
    assert_eq!((c.redis_url.as_str(), c.worker_id.as_deref(), c.advertise_url.as_deref()), ("redis://h:1/", Some("a"), Some("http://10.0.0.1:8003")));
    assert!(!format!("{c:?}").contains(K2));
    assert!(ServerOptions::from_json(Some(&json!({ "readEnv": false })), &env, &no_file).unwrap().cluster.is_none());
    // one worker id: the cluster's is also the metrics' and the audit's; alone, workerId labels them
    assert_eq!(parse(json!({ "redisUrl": "redis://h:1/", "workerId": "w7" })).unwrap().obs.worker_id, "w7");
    let alone = ServerOptions::from_json(Some(&json!({ "readEnv": false, "workerId": "solo" })), &env, &no_file).unwrap();
    assert_eq!((alone.cluster.is_none(), alone.obs.worker_id.as_str()), (true, "solo"));
    let defaulted = parse(json!({ "redisUrl": "redis://h:1/" })).unwrap();
    assert_eq!(Some(defaulted.obs.worker_id.as_str()), defaulted.cluster.as_ref().unwrap().worker_id.as_deref());
    for (v, want) in [
      (json!({ "advertiseUrl": "http://h:1" }), "needs redisUrl"),
      (json!({ "redisUrl": "http://h" }), "must start with redis://"),
      (json!({ "redisUrl": "redis://h", "workerId": "a:b" }), "the worker id"),
      (json!({ "redisUrl": "redis://h", "advertiseUrl": "h:1" }), "must be an http(s) URL"),
      (json!({ "redisUrl": "redis://h", "clusterSecret": "short" }), "the cluster secret"),
      (json!({ "redisUrl": "redis://h", "heartbeatInterval": 0.001 }), "at least 0.05"),
    ] {
      let e = parse(v.clone()).unwrap_err();
      assert!(e.message.contains(want), "{v}: {}", e.message);
    }
  }

  #[test]
  fn debug_output_hides_keys() {
    let s = parse(json!({ "apiKeys": [K1] })).unwrap();
    assert!(!format!("{s:?}").contains(K1));
  }
}
