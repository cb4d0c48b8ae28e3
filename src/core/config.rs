//! Sandbox configuration: defaults, the `SANDBOX_*` / `DOCKER_*` environment variables, the
//! `.sandboxrc.json` file (with `${VAR}` expansion), merging and validation.
//!
//! Precedence, lowest first: built-in defaults < `.sandboxrc.json` < environment < the manager's
//! `defaultConfig` < the `createSandbox(config)` argument. `limits` and `docker` are merged one
//! level deep (the proof of concept merged `limits` only; `docker` is merged too so that a
//! `socketPath` from the file or the environment survives a per-sandbox `docker: { user }`).
//! Every other key replaces the lower layer's value. `null`/`undefined` values do not erase a
//! lower layer (they are treated as "not given").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::core::error::{Result, SandboxError};
use crate::core::templates::PackageManager;

pub const DEFAULT_IMAGE: &str = "node:20-alpine";
pub const DEFAULT_WORKDIR: &str = "/workspace";
/// where pip's `installPackages` go, relative to the workdir
pub const PIP_TARGET: &str = ".packages/python";
pub const RC_FILE: &str = ".sandboxrc.json";
/// The longest time span any option accepts (365 days): longer spans overflow clock arithmetic and
/// mean "no limit" in practice; leave the option out (where allowed) for no limit.
pub const MAX_SECONDS: f64 = 31_536_000.0;

/// Validates a span of seconds from the JS side (`what` names the option in the message).
/// `zero_ok` allows 0 (e.g. "never" or "do not wait").
pub fn seconds(what: &str, v: f64, zero_ok: bool) -> Result<std::time::Duration> {
  let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && v <= MAX_SECONDS;
  if !ok {
    let least = if zero_ok { "0" } else { "more than 0" };
    return Err(SandboxError::invalid_argument(format!(
      "{what} must be a number of seconds from {least} to {MAX_SECONDS} (365 days), got {v}"
    )));
  }
  Ok(std::time::Duration::from_secs_f64(v))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
  Docker,
  E2b,
  /// a sandbox of a sandbox service (`agentic-sandbox serve`), over its `/v1` API
  Remote,
  /// a provider registered from JavaScript with `manager.registerProvider(name, ...)`
  Custom(String),
}

impl ProviderKind {
  pub fn as_str(&self) -> &str {
    match self {
      ProviderKind::Docker => "docker",
      ProviderKind::E2b => "e2b",
      ProviderKind::Remote => "remote",
      ProviderKind::Custom(name) => name,
    }
  }

  /// 'docker', 'e2b', or the name of a provider to be registered (lowercase letters, digits,
  /// '-' and '_', starting with a letter, at most 40 characters).
  pub fn parse(name: &str, field: &str) -> Result<Self> {
    match name {
      "docker" => Ok(ProviderKind::Docker),
      "e2b" => Ok(ProviderKind::E2b),
      "remote" => Ok(ProviderKind::Remote),
      n if valid_provider_name(n) => Ok(ProviderKind::Custom(n.to_string())),
      other => Err(SandboxError::invalid_config(format!(
        "{field} must be 'docker', 'e2b', 'remote' or the name of a provider registered with manager.registerProvider (lowercase letters, digits, '-' and '_', starting with a letter), got {other:?}"
      ))),
    }
  }
}

/// A name `registerProvider` accepts for a custom provider.
pub fn valid_provider_name(n: &str) -> bool {
  let mut chars = n.chars();
  n.len() <= 40
    && chars.next().is_some_and(|c| c.is_ascii_lowercase())
    && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    && n != "docker"
    && n != "e2b"
    && n != "remote"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
  None,
  Isolated,
  Bridge,
}

impl NetworkMode {
  pub fn as_str(self) -> &'static str {
    match self {
      NetworkMode::None => "none",
      NetworkMode::Isolated => "isolated",
      NetworkMode::Bridge => "bridge",
    }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceLimits {
  pub memory_mb: f64,
  pub cpu_cores: f64,
  pub disk_mb: f64,
  pub network_mbps: Option<f64>,
  pub timeout_seconds: f64,
  pub pids_limit: i64,
  /// workspace quotas enforced by the file API (writeFile, uploadFile, the agent's Write/Edit)
  pub max_file_size_mb: Option<f64>,
  pub max_total_files: Option<u64>,
  pub max_workspace_size_mb: Option<f64>,
}

/// `commandPolicy` as given; compiled by `policy::CommandPolicy` (validated in `resolve`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandPolicySpec {
  pub allow: Option<Vec<String>>,
  pub deny: Option<Vec<String>>,
}

#[derive(Clone, PartialEq, Default)]
pub struct RegistryAuth {
  pub username: String,
  pub password: String,
  pub serveraddress: Option<String>,
}

/// Redacts the password.
impl std::fmt::Debug for RegistryAuth {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("RegistryAuth")
      .field("username", &self.username)
      .field("password", &REDACTED)
      .field("serveraddress", &self.serveraddress)
      .finish()
  }
}

/// What secrets are replaced with in `Debug` output and in configuration handed back to JS.
pub const REDACTED: &str = "***";

/// Whether a configuration key names a secret: `apiKey`, `password`, or anything with `token`,
/// `secret`, `password`, `passwd`, `apikey`, `privatekey` or `credential` in it (case, `_`, `-`
/// and `.` ignored), so `e2b.apiKey`, `GITHUB_TOKEN` and `AWS_SECRET_ACCESS_KEY` are.
pub fn is_secret_key(key: &str) -> bool {
  let k: String = key.chars().filter(|c| !matches!(c, '_' | '-' | '.')).flat_map(char::to_lowercase).collect();
  ["token", "secret", "password", "passwd", "apikey", "privatekey", "credential"].iter().any(|s| k.contains(s))
}

/// A copy of a configuration value with every secret (see [`is_secret_key`]) at any depth
/// replaced by `"***"`, for getters that hand configuration back (`defaultConfig`, `getStatus`).
pub fn redacted(v: &Value) -> Value {
  match v {
    Value::Object(m) => Value::Object(
      m.iter()
        .map(|(k, v)| {
          let v = if is_secret_key(k) && !v.is_null() { Value::String(REDACTED.into()) } else { redacted(v) };
          (k.clone(), v)
        })
        .collect(),
    ),
    Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
    other => other.clone(),
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DockerOptions {
  pub socket_path: Option<String>,
  pub registry_auth: Option<RegistryAuth>,
  pub read_only_root: bool,
  pub cap_drop: Vec<String>,
  pub security_opt: Vec<String>,
  pub user: Option<String>,
  pub tmpfs: Vec<String>,
  pub keep_image_command: Option<bool>,
  /// `Guest` (default): the in-sandbox guest daemon, falling back to `Exec` where it cannot run.
  pub exec_engine: ExecEngine,
  /// OCI runtime of the container (HostConfig.Runtime, e.g. `runsc`); `None`: the engine's default.
  pub runtime: Option<String>,
  /// IPv4 range (CIDR) the per-sandbox networks of `networkMode: 'isolated'` take their subnets from.
  pub isolated_subnet_pool: String,
  /// how often the stale-resource reaper sweeps this engine (`docker.reaperIntervalSeconds`,
  /// env `SANDBOX_REAPER_INTERVAL_SECONDS`; zero: never after the first connect; `None`: 30 s).
  /// Process-wide per engine: a manager's setting applies from its construction on.
  pub reaper_interval: Option<std::time::Duration>,
  /// `docker.extraHosts`: names mapped to IPv4 addresses in the sandbox's /etc/hosts and in the
  /// egress gateway's resolver alike (README "Network").
  pub extra_hosts: BTreeMap<String, String>,
  /// `docker.egressNetwork`: the Docker network the egress gateway of a sandbox with `network`
  /// rules reaches the outside through (default `bridge`, Docker's default network).
  pub egress_network: String,
}

/// `network`: a sandbox's egress rules (README "Network"), E2B's shape. Entries are domains
/// (`*.` wildcards), IPv4 addresses and CIDRs, each optionally with `:port`, or preset names
/// (`npm`, `pypi`, `github`, …); validated at config time, kept as given. An entry of `allow_out`
/// wins over `deny_out`; what neither names is allowed, except the fixed deny set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkPolicy {
  pub allow_out: Vec<String>,
  pub deny_out: Vec<String>,
}

impl NetworkPolicy {
  /// The JSON shape users write (`{ allowOut, denyOut }`).
  pub fn to_json(&self) -> Value {
    serde_json::json!({ "allowOut": self.allow_out, "denyOut": self.deny_out })
  }
}

/// Default of `docker.isolatedSubnetPool`: 4096 isolated networks of 16 addresses each.
pub const DEFAULT_ISOLATED_SUBNET_POOL: &str = "10.213.0.0/16";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecEngine {
  Guest,
  Exec,
}

/// A validated, fully defaulted sandbox configuration. `Debug` redacts secrets.
#[derive(Clone, PartialEq)]
pub struct SandboxConfig {
  pub provider: ProviderKind,
  pub image: String,
  pub limits: ResourceLimits,
  pub network_mode: NetworkMode,
  /// `network`: egress rules enforced by a gateway outside the sandbox; `None`: `network_mode`
  /// alone decides
  pub network: Option<NetworkPolicy>,
  pub env: BTreeMap<String, String>,
  pub workdir: String,
  pub gpu: bool,
  pub metadata: Option<Value>,
  pub docker: DockerOptions,
  /// the `e2b` object as given (validated with the environment by the E2B provider)
  pub e2b: Option<Value>,
  /// the `remote` object as given (`{ url, apiKey }`, validated with the environment by the
  /// remote provider)
  pub remote: Option<Value>,
  /// providers tried, in order, when `start` cannot get a sandbox from `provider` for
  /// availability reasons (unreachable, 5xx, capacity or rate limits)
  pub fallback_providers: Vec<ProviderKind>,
  /// a display name (seed 002), shown by getStatus and manager.list
  pub name: Option<String>,
  /// the template name, when the image came from (or was named with) a template
  pub template: Option<String>,
  /// how `installPackages` installs: the template's package manager
  pub package_manager: Option<PackageManager>,
  pub install_packages: Vec<String>,
  pub startup_script: Option<String>,
  pub command_policy: Option<CommandPolicySpec>,
  /// `fromSnapshot`: the snapshot the sandbox starts from (README "Snapshots"); `image` is then
  /// the snapshot's image
  pub from_snapshot: Option<String>,
  /// `persistent: true`: the sandbox outlives the process that made it (not removed at exit) and
  /// can be re-attached with `manager.connect(id)` until `lifetime` ends (README "Persistent
  /// sandboxes")
  pub persistent: bool,
  /// how long a persistent sandbox lives from its start (`lifetimeSeconds`, default
  /// [`DEFAULT_LIFETIME_SECONDS`]); `None` for other sandboxes
  pub lifetime_seconds: Option<f64>,
}

/// A persistent sandbox's lifetime unless `lifetimeSeconds` says otherwise: one hour.
pub const DEFAULT_LIFETIME_SECONDS: f64 = 3600.0;
/// The longest lifetime a persistent sandbox may ask for: 30 days.
pub const MAX_LIFETIME_SECONDS: f64 = 30.0 * 86400.0;

impl std::fmt::Debug for SandboxConfig {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let env: BTreeMap<&str, &str> =
      self.env.iter().map(|(k, v)| (k.as_str(), if is_secret_key(k) { REDACTED } else { v.as_str() })).collect();
    f.debug_struct("SandboxConfig")
      .field("provider", &self.provider)
      .field("image", &self.image)
      .field("limits", &self.limits)
      .field("network_mode", &self.network_mode)
      .field("env", &env)
      .field("workdir", &self.workdir)
      .field("gpu", &self.gpu)
      .field("metadata", &self.metadata.as_ref().map(redacted))
      .field("docker", &self.docker)
      .field("e2b", &self.e2b.as_ref().map(redacted))
      .field("remote", &self.remote.as_ref().map(redacted))
      .field("fallback_providers", &self.fallback_providers)
      .field("name", &self.name)
      .field("template", &self.template)
      .field("package_manager", &self.package_manager)
      .field("install_packages", &self.install_packages)
      .field("startup_script", &self.startup_script)
      .field("command_policy", &self.command_policy)
      .field("from_snapshot", &self.from_snapshot)
      .field("persistent", &self.persistent)
      .field("lifetime_seconds", &self.lifetime_seconds)
      .finish()
  }
}

/// The built-in defaults (the proof of concept's, plus the hardening defaults).
pub fn defaults() -> Value {
  serde_json::json!({
    "provider": "docker",
    "image": DEFAULT_IMAGE,
    "networkMode": "isolated",
    "workdir": DEFAULT_WORKDIR,
    "gpu": false,
    "limits": { "memoryMB": 512, "cpuCores": 1, "diskMB": 1024, "timeoutSeconds": 300, "pidsLimit": 256, "maxFileSizeMB": 100 },
    "docker": {
      "readOnlyRoot": true,
      "capDrop": ["ALL"],
      "securityOpt": ["no-new-privileges"],
      "tmpfs": ["/tmp:rw,noexec,nosuid"]
    }
  })
}

const DEEP_KEYS: [&str; 3] = ["limits", "docker", "templates"];

/// Merge `over` onto `base` (both JSON objects) with the rules in the module docs. `image` and
/// `template` are decided together by the most specific layer that sets either: a layer with a
/// `template` and no `image` drops the image below it (the template then picks it), and a layer
/// with an `image` and no `template` drops the template below it.
pub fn merge(base: &Value, over: &Value) -> Value {
  let mut out = base.as_object().cloned().unwrap_or_default();
  if let Some(over) = over.as_object() {
    let given = |k: &str| over.get(k).is_some_and(|v| !v.is_null());
    if given("template") && !given("image") {
      out.remove("image");
    }
    if given("image") && !given("template") {
      out.remove("template");
    }
    for (k, v) in over {
      if v.is_null() {
        continue;
      }
      if DEEP_KEYS.contains(&k.as_str()) {
        if let (Some(Value::Object(b)), Value::Object(o)) = (out.get(k), v) {
          let mut m = b.clone();
          for (ik, iv) in o {
            if !iv.is_null() {
              m.insert(ik.clone(), iv.clone());
            }
          }
          out.insert(k.clone(), Value::Object(m));
          continue;
        }
      }
      out.insert(k.clone(), v.clone());
    }
  }
  Value::Object(out)
}

/// Reads the environment variables of the seed's configuration guide into a config layer.
pub fn env_layer(get: &dyn Fn(&str) -> Option<String>) -> Result<Value> {
  env_layer_warned(get).map(|(layer, _)| layer)
}

/// [`env_layer`], with a warning for each seed 003 variable that has no effect because the
/// library's own variable for the same setting is also set (see [`SEED_ALIASES`]).
pub fn env_layer_warned(get: &dyn Fn(&str) -> Option<String>) -> Result<(Value, Vec<String>)> {
  let mut warnings = Vec::new();
  let mut layer = Map::new();
  let mut limits = Map::new();
  let mut docker = Map::new();
  let num = |name: &str, raw: String| -> Result<Value> {
    let n: f64 = raw.trim().parse().map_err(|_| {
      SandboxError::invalid_config(format!("environment variable {name}={raw:?} is not a number; set it to a positive number or unset it"))
    })?;
    serde_json::Number::from_f64(n)
      .map(Value::Number)
      .ok_or_else(|| SandboxError::invalid_config(format!("environment variable {name}={raw:?} is not a finite number")))
  };
  let one_of = |name: &str, key: &str, allowed: &[&str], layer: &mut Map<String, Value>| -> Result<()> {
    if let Some(v) = get(name).filter(|v| !v.is_empty()) {
      if !allowed.contains(&v.as_str()) {
        return Err(SandboxError::invalid_config(format!(
          "environment variable {name}={v:?} is not one of {}; fix or unset it",
          allowed.join(", ")
        )));
      }
      layer.insert(key.into(), Value::String(v));
    }
    Ok(())
  };
  one_of("SANDBOX_PROVIDER", "provider", &["docker", "e2b", "remote"], &mut layer)?;
  one_of("SANDBOX_NETWORK_MODE", "networkMode", &["none", "isolated", "bridge"], &mut layer)?;
  if let Some(v) = get("DOCKER_IMAGE").filter(|v| !v.is_empty()) {
    layer.insert("image".into(), Value::String(v));
  }
  // seed 003's names (`SEED_ALIASES`): used when the library's own variable is not set
  let seed = |own: &str, var: &str, warnings: &mut Vec<String>| -> Option<String> {
    let v = get(var).filter(|v| !v.trim().is_empty())?;
    if get(own).is_some_and(|o| !o.trim().is_empty()) {
      warnings.push(format!("environment variable {var}={v:?} has no effect: {own} is also set, and the library's own variable wins"));
      return None;
    }
    Some(v)
  };
  if let Some(v) = seed("DOCKER_IMAGE", "CONTAINER_IMAGE", &mut warnings) {
    layer.insert("image".into(), Value::String(v.trim().to_string()));
  }
  if let Some(v) = seed("SANDBOX_NETWORK_MODE", "DOCKER_NETWORK_MODE", &mut warnings) {
    layer.insert("networkMode".into(), Value::String(docker_network_mode(&v)?.into()));
  }
  if let Some(v) = get("WORKSPACE_DIR").filter(|v| !v.trim().is_empty()) {
    check_env("WORKSPACE_DIR", &v, serde_json::json!({ "workdir": v.trim() }))?;
    layer.insert("workdir".into(), Value::String(v.trim().to_string()));
  }
  for (var, key) in [
    ("SANDBOX_MEMORY_MB", "memoryMB"),
    ("SANDBOX_CPU_CORES", "cpuCores"),
    ("SANDBOX_TIMEOUT_SECONDS", "timeoutSeconds"),
    ("SANDBOX_DISK_MB", "diskMB"),
    ("SANDBOX_PIDS_LIMIT", "pidsLimit"),
    ("MAX_FILE_SIZE_MB", "maxFileSizeMB"),
    ("MAX_TOTAL_FILES", "maxTotalFiles"),
    ("MAX_WORKSPACE_SIZE_MB", "maxWorkspaceSizeMB"),
  ] {
    if let Some(v) = get(var).filter(|v| !v.is_empty()) {
      limits.insert(key.into(), num(var, v)?);
      check_env(var, get(var).as_deref().unwrap_or_default(), serde_json::json!({ "limits": { key: limits[key] } }))?;
    }
  }
  if let Some(v) = seed("SANDBOX_MEMORY_MB", "MEMORY_LIMIT", &mut warnings) {
    let mb = docker_memory_mb(&v)?;
    limits.insert("memoryMB".into(), serde_json::json!(mb));
    check_env("MEMORY_LIMIT", &v, serde_json::json!({ "limits": { "memoryMB": mb } }))?;
  }
  if let Some(v) = seed("SANDBOX_CPU_CORES", "CPU_QUOTA", &mut warnings) {
    limits.insert("cpuCores".into(), serde_json::json!(docker_cpu_quota_cores(&v)?));
  }
  if let Some(v) = get("DOCKER_SOCKET_PATH").filter(|v| !v.is_empty()) {
    docker.insert("socketPath".into(), Value::String(v));
  }
  if let Some(v) = get("SANDBOX_USER").filter(|v| !v.trim().is_empty()) {
    docker.insert("user".into(), Value::String(v.trim().to_string()));
  }
  if let Some(v) = get("SANDBOX_EXEC_ENGINE").filter(|v| !v.is_empty()) {
    if v != "guest" && v != "exec" {
      return Err(SandboxError::invalid_config(format!(
        "environment variable SANDBOX_EXEC_ENGINE={v:?} is not one of guest, exec; fix or unset it"
      )));
    }
    docker.insert("execEngine".into(), Value::String(v));
  }
  if let Some(v) = get("SANDBOX_DOCKER_RUNTIME").filter(|v| !v.is_empty()) {
    docker.insert("runtime".into(), Value::String(v));
  }
  if let Some(v) = get("SANDBOX_ISOLATED_SUBNET_POOL").filter(|v| !v.is_empty()) {
    docker.insert("isolatedSubnetPool".into(), Value::String(v));
  }
  if let Some(v) = get(crate::providers::docker::reaper::INTERVAL_ENV).filter(|v| !v.is_empty()) {
    docker.insert("reaperIntervalSeconds".into(), num(crate::providers::docker::reaper::INTERVAL_ENV, v)?);
  }
  if let Some(v) = seed(crate::providers::docker::reaper::INTERVAL_ENV, "CLEANUP_INTERVAL_SECONDS", &mut warnings) {
    let n = num("CLEANUP_INTERVAL_SECONDS", v.clone())?;
    check_env("CLEANUP_INTERVAL_SECONDS", &v, serde_json::json!({ "docker": { "reaperIntervalSeconds": n } }))?;
    docker.insert("reaperIntervalSeconds".into(), n);
  }
  if !limits.is_empty() {
    layer.insert("limits".into(), Value::Object(limits));
  }
  if !docker.is_empty() {
    layer.insert("docker".into(), Value::Object(docker));
  }
  Ok((Value::Object(layer), warnings))
}

/// Seed 003's environment variables that set a sandbox configuration key, each with the
/// library's own variable for the same key (which wins when both are set) where it has one.
/// `POOL_SIZE`, `MIN_POOL_SIZE`, `MAX_POOL_SIZE` and `CONTAINER_IDLE_TIMEOUT_MINUTES` are pool
/// defaults (`pool::PoolDefaults`); `MAX_FILE_SIZE_MB`, `MAX_TOTAL_FILES` and
/// `MAX_WORKSPACE_SIZE_MB` are read under their seed names (there is no other).
pub const SEED_ALIASES: [(&str, Option<&str>, &str); 7] = [
  ("CONTAINER_IMAGE", Some("DOCKER_IMAGE"), "image"),
  ("MEMORY_LIMIT", Some("SANDBOX_MEMORY_MB"), "limits.memoryMB"),
  ("CPU_QUOTA", Some("SANDBOX_CPU_CORES"), "limits.cpuCores"),
  ("DOCKER_NETWORK_MODE", Some("SANDBOX_NETWORK_MODE"), "networkMode"),
  ("CLEANUP_INTERVAL_SECONDS", Some("SANDBOX_REAPER_INTERVAL_SECONDS"), "docker.reaperIntervalSeconds"),
  ("SANDBOX_USER", None, "docker.user"),
  ("WORKSPACE_DIR", None, "workdir"),
];

/// An environment variable's value must pass the same checks as the key it sets; the error
/// names the variable and the key.
fn check_env(var: &str, raw: &str, fragment: Value) -> Result<()> {
  resolve(&merge(&defaults(), &fragment)).map(|_| ()).map_err(|e| {
    SandboxError::invalid_config(format!("environment variable {var}={raw:?} is invalid: {}; fix or unset it", e.message))
  })
}

/// Docker's period for `--cpu-quota` (100 ms in µs); `CPU_QUOTA` is read against it.
pub const DOCKER_CPU_PERIOD_US: f64 = 100_000.0;

/// `CPU_QUOTA` (seed 003: "25000 # CPU quota (25% of 1 core)") is Docker's `--cpu-quota`:
/// microseconds of CPU time per 100 ms period, so cores = quota / 100000. Docker's smallest
/// quota is 1000 (1 ms); `-1` (Docker's "no limit") is refused, because a sandbox always has one.
pub fn docker_cpu_quota_cores(raw: &str) -> Result<f64> {
  let t = raw.trim();
  match t.parse::<i64>() {
    Ok(q) if (1000..=1_000_000_000).contains(&q) => Ok(q as f64 / DOCKER_CPU_PERIOD_US),
    Ok(q) if q <= 0 => Err(SandboxError::invalid_config(format!(
      "environment variable CPU_QUOTA={raw:?} is invalid: Docker reads {q} as \"no CPU limit\", and a sandbox always has one; set CPU_QUOTA to microseconds per 100 ms (25000 = a quarter of a core), or SANDBOX_CPU_CORES to a number of cores, or unset it"
    ))),
    _ => Err(SandboxError::invalid_config(format!(
      "environment variable CPU_QUOTA={raw:?} is invalid: it is Docker's CPU quota, a whole number of microseconds of CPU time per 100 ms period from 1000 (25000 = a quarter of a core, 200000 = two cores); fix or unset it, or set SANDBOX_CPU_CORES instead"
    ))),
  }
}

/// `MEMORY_LIMIT` as Docker writes memory sizes (`256m`, `1g`, `1.5g`, `524288k`, `512MiB`):
/// binary units b, k, m, g, t (optionally followed by `b` or `ib`, any case); a number without a
/// unit is bytes, as for `docker run --memory`. Returns megabytes (MiB).
pub fn docker_memory_mb(raw: &str) -> Result<f64> {
  let bad = |why: &str| {
    SandboxError::invalid_config(format!(
      "environment variable MEMORY_LIMIT={raw:?} is invalid: {why}; write a size the way Docker does, such as 512m or 1g, or set SANDBOX_MEMORY_MB instead"
    ))
  };
  let t = raw.trim().to_ascii_lowercase();
  let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
  let (number, unit) = t.split_at(split);
  let n: f64 = number.parse().map_err(|_| bad("it does not start with a number"))?;
  let unit = unit.trim();
  let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(unit);
  let power = match unit {
    "" | "b" => 0,
    "k" => 1,
    "m" => 2,
    "g" => 3,
    "t" => 4,
    _ => return Err(bad("the unit must be one of b, k, m, g, t")),
  };
  let mb = n * 1024f64.powi(power) / (1024.0 * 1024.0);
  if !(mb.is_finite() && mb > 0.0) {
    return Err(bad("it must be more than 0"));
  }
  if mb < 6.0 {
    let hint = if power == 0 { format!(" (a number without a unit is bytes; did you mean \"{}m\"?)", number) } else { String::new() };
    return Err(bad(&format!("Docker's smallest memory limit is 6m{hint}")));
  }
  Ok(mb)
}

/// `DOCKER_NETWORK_MODE` (Docker's `network_mode`) as a `networkMode`: `none` and `bridge` mean
/// the same here (`default` is Docker's name for `bridge`), `isolated` is the library's own;
/// `host`, `container:<id>` and named networks are refused.
pub fn docker_network_mode(raw: &str) -> Result<&'static str> {
  match raw.trim() {
    "none" => Ok("none"),
    "bridge" | "default" => Ok("bridge"),
    "isolated" => Ok("isolated"),
    "host" => Err(SandboxError::invalid_config(format!(
      "environment variable DOCKER_NETWORK_MODE={raw:?} is not supported: host networking would give the sandbox the host's network stack; use none, isolated (a private network with no route out) or bridge"
    ))),
    _ => Err(SandboxError::invalid_config(format!(
      "environment variable DOCKER_NETWORK_MODE={raw:?} is not supported: the network modes are none, isolated (a private network with no route out) and bridge (egress through Docker's bridge); fix or unset it"
    ))),
  }
}

/// Expand `${VAR}` and `${VAR:-default}` in a string. Unset variables expand to the default or "".
pub fn expand_vars(s: &str, get: &dyn Fn(&str) -> Option<String>) -> String {
  expand_noting(s, get, &mut Vec::new())
}

/// [`expand_vars`], pushing the name of each unset variable without a default onto `unset`.
fn expand_noting(s: &str, get: &dyn Fn(&str) -> Option<String>, unset: &mut Vec<String>) -> String {
  let mut out = String::with_capacity(s.len());
  let mut rest = s;
  while let Some(start) = rest.find("${") {
    out.push_str(&rest[..start]);
    let after = &rest[start + 2..];
    match after.find('}') {
      Some(end) => {
        let expr = &after[..end];
        let (name, default) = match expr.find(":-") {
          Some(i) => (&expr[..i], Some(&expr[i + 2..])),
          None => (expr, None),
        };
        let value = get(name).filter(|v| !v.is_empty() || default.is_none());
        match (value, default) {
          (Some(v), _) => out.push_str(&v),
          (None, Some(d)) => out.push_str(d),
          (None, None) => {
            if !unset.iter().any(|u| u == name) {
              unset.push(name.to_string());
            }
          }
        }
        rest = &after[end + 1..];
      }
      None => {
        out.push_str(&rest[start..]);
        rest = "";
      }
    }
  }
  out.push_str(rest);
  out
}

/// Keys whose strings are not expanded: `startupScript` is a shell script, where `${VAR}` is the
/// shell's (pass host values in through `env`, e.g. `env: { TOKEN: "${TOKEN}" }`).
const NOT_EXPANDED: [&str; 1] = ["startupScript"];

fn expand_all(v: &mut Value, get: &dyn Fn(&str) -> Option<String>, unset: &mut Vec<String>) {
  match v {
    Value::String(s) => *s = expand_noting(s, get, unset),
    Value::Array(a) => a.iter_mut().for_each(|x| expand_all(x, get, unset)),
    Value::Object(o) => o.values_mut().for_each(|x| expand_all(x, get, unset)),
    _ => {}
  }
}

/// The `security` fields of the user guide's config format and the `docker` keys they mean.
pub const SECURITY_KEYS: [(&str, &str); 3] =
  [("readOnlyRoot", "readOnlyRoot"), ("dropCapabilities", "capDrop"), ("noNewPrivileges", "securityOpt")];

/// Normalise a configuration as the user guide writes it, wherever it comes from (the
/// `.sandboxrc.json` file, `new SandboxManager(config)`, `createSandbox(config)`): `${VAR}` and
/// `${VAR:-default}` are expanded in every string except `startupScript`'s; `docker.image` means
/// `image`; `security.{readOnlyRoot,dropCapabilities,noNewPrivileges}` mean
/// `docker.{readOnlyRoot,capDrop,securityOpt}`. Where both spellings are given in the same config,
/// the library's own (`image`, `docker.*`) wins and the other is reported as a warning, as are
/// unknown `security` fields and unset variables. `origin` names the config in those sentences.
/// A value that is not an object is returned as is (the caller rejects it).
pub fn normalize(mut v: Value, origin: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<(Value, Vec<String>)> {
  let mut warnings = Vec::new();
  let Some(obj) = v.as_object_mut() else { return Ok((v, warnings)) };
  let mut unset = Vec::new();
  for (k, x) in obj.iter_mut() {
    if !NOT_EXPANDED.contains(&k.as_str()) {
      expand_all(x, get, &mut unset);
    }
  }
  for name in unset {
    warnings.push(format!("${{{name}}} in {origin} is not set, so it was replaced by an empty string; set the variable or write ${{{name}:-default}}"));
  }
  apply_from_snapshot(obj, origin)?;
  match obj.get("docker") {
    None | Some(Value::Null) | Some(Value::Object(_)) => {}
    Some(other) => return Err(SandboxError::invalid_config(format!("docker must be an object, got {}", type_name(other)))),
  }
  if let Some(Value::Object(d)) = obj.get_mut("docker") {
    if let Some(img) = d.remove("image").filter(|i| !i.is_null()) {
      if obj.get("image").is_some_and(|i| !i.is_null()) {
        warnings.push(format!("docker.image in {origin} has no effect: image is also given there, and wins"));
      } else {
        obj.insert("image".into(), img);
      }
    }
  }
  match obj.remove("security") {
    None | Some(Value::Null) => {}
    Some(Value::Object(sec)) => {
      let mut docker = match obj.remove("docker") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
      };
      for (k, x) in &sec {
        let Some((_, dk)) = SECURITY_KEYS.iter().find(|(sk, _)| *sk == k.as_str()) else {
          let known: Vec<&str> = SECURITY_KEYS.iter().map(|(k, _)| *k).collect();
          warnings.push(format!("security.{k} in {origin} has no effect: it is not a known security option (known: {})", known.join(", ")));
          continue;
        };
        if x.is_null() {
          continue;
        }
        let value = match k.as_str() {
          "noNewPrivileges" => match x {
            Value::Bool(true) => Value::Array(vec![Value::String("no-new-privileges".into())]),
            Value::Bool(false) => Value::Array(vec![]),
            other => {
              return Err(SandboxError::invalid_config(format!("security.noNewPrivileges must be a boolean, got {}", type_name(other))))
            }
          },
          _ => x.clone(),
        };
        if docker.get(*dk).is_some_and(|d| !d.is_null()) {
          warnings.push(format!("security.{k} in {origin} has no effect: docker.{dk} is also given there, and wins"));
        } else {
          docker.insert(dk.to_string(), value);
        }
      }
      obj.insert("docker".into(), Value::Object(docker));
    }
    Some(other) => {
      return Err(SandboxError::invalid_config(format!(
        "security must be an object {{ readOnlyRoot?, dropCapabilities?, noNewPrivileges? }}, got {}",
        type_name(&other)
      )))
    }
  }
  Ok((v, warnings))
}

/// Parse the text of a `.sandboxrc.json` into a config layer, normalised by [`normalize`] (the
/// user guide's file format is accepted as is).
pub fn rc_layer(text: &str, origin: &Path, get: &dyn Fn(&str) -> Option<String>) -> Result<Value> {
  rc_layer_warned(text, origin, get).map(|(v, _)| v)
}

/// [`rc_layer`] with the normalisation's warnings.
pub fn rc_layer_warned(text: &str, origin: &Path, get: &dyn Fn(&str) -> Option<String>) -> Result<(Value, Vec<String>)> {
  let v: Value = serde_json::from_str(text).map_err(|e| {
    SandboxError::invalid_config(format!("{} is not valid JSON ({e}); fix or remove the file", origin.display()))
  })?;
  if !v.is_object() {
    return Err(SandboxError::invalid_config(format!("{} must contain a JSON object", origin.display())));
  }
  normalize(v, &origin.display().to_string(), get)
}

/// Where the config file is looked for: `$SANDBOX_CONFIG_FILE`, else `./.sandboxrc.json`.
pub fn rc_path(get: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> (PathBuf, bool) {
  match get("SANDBOX_CONFIG_FILE").filter(|v| !v.is_empty()) {
    Some(p) => (PathBuf::from(p), true),
    None => (cwd.join(RC_FILE), false),
  }
}

/// Defaults < rc file < environment: the base every manager starts from.
pub fn base_layers(get: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Result<Value> {
  manager_layers(get, cwd, None).map(|l| l.merged)
}

/// The configuration a manager starts from.
#[derive(Debug, Clone)]
pub struct ManagerLayers {
  /// built-in defaults < `.sandboxrc.json` < environment < constructor config
  pub merged: Value,
  /// the same without the built-in defaults: what the user gave, so that warnings are only
  /// about keys somebody set
  pub given: Value,
  /// from reading the layers: normalisation, unset `${VAR}`s, seed variables that lost
  pub warnings: Vec<String>,
}

/// Reads the file and the environment, normalises the file and the constructor's config (see
/// [`normalize`]) and merges them over the defaults. The constructor config must be an object
/// (or absent / null).
pub fn manager_layers(get: &dyn Fn(&str) -> Option<String>, cwd: &Path, ctor: Option<&Value>) -> Result<ManagerLayers> {
  let mut warnings = Vec::new();
  let mut layers = Vec::new();
  let (path, explicit) = rc_path(get, cwd);
  match std::fs::read_to_string(&path) {
    Ok(text) => {
      let (layer, w) = rc_layer_warned(&text, &path, get)?;
      warnings.extend(w);
      layers.push(layer);
    }
    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
    Err(e) => {
      return Err(SandboxError::invalid_config(format!(
        "cannot read config file {} ({e}); fix SANDBOX_CONFIG_FILE or the file's permissions",
        path.display()
      )))
    }
  }
  let (env, w) = env_layer_warned(get)?;
  warnings.extend(w);
  layers.push(env);
  match ctor {
    None | Some(Value::Null) => {}
    Some(v) if v.is_object() => {
      let (layer, w) = normalize(v.clone(), "the SandboxManager config", get)?;
      warnings.extend(w);
      layers.push(layer);
    }
    Some(other) => {
      return Err(SandboxError::invalid_config(format!("defaultConfig must be an object, got {}", type_name(other))))
    }
  }
  let merged = layers.iter().fold(defaults(), |acc, l| merge(&acc, l));
  let given = layers.iter().fold(Value::Object(Map::new()), |acc, l| merge(&acc, l));
  Ok(ManagerLayers { merged, given, warnings })
}

const TOP_KEYS: [&str; 23] = [
  "network",
  "fromSnapshot",
  "name",
  "template",
  "templates",
  "installPackages",
  "startupScript",
  "commandPolicy",
  "provider",
  "image",
  "limits",
  "networkMode",
  "env",
  "workdir",
  "gpu",
  "persistent",
  "lifetimeSeconds",
  "metadata",
  "docker",
  "e2b",
  "remote",
  "autoCleanup",
  "fallbackProviders",
];
// keys some seed examples pass that `resolve` does not read: `debug` / `verbose` are read by the
// manager (`log_level`); `warnings` reports what has no effect
const IGNORED_KEYS: [&str; 2] = ["debug", "verbose"];

fn type_name(v: &Value) -> String {
  match v {
    Value::Null => "null".into(),
    Value::Bool(b) => format!("boolean {b}"),
    Value::Number(n) => format!("number {n}"),
    Value::String(s) => format!("string {s:?}"),
    Value::Array(_) => "an array".into(),
    Value::Object(_) => "an object".into(),
  }
}

fn want_str(v: &Value, field: &str) -> Result<String> {
  // a secret of the wrong type is not repeated in the message
  let got = |v: &Value| if is_secret_key(field) && !v.is_null() { "a value of another type".to_string() } else { type_name(v) };
  v.as_str()
    .map(str::to_owned)
    .ok_or_else(|| SandboxError::invalid_config(format!("{field} must be a string, got {}", got(v))))
}

fn want_bool(v: &Value, field: &str) -> Result<bool> {
  v.as_bool().ok_or_else(|| SandboxError::invalid_config(format!("{field} must be a boolean, got {}", type_name(v))))
}

fn want_positive(v: &Value, field: &str, hint: &str) -> Result<f64> {
  match v.as_f64() {
    Some(n) if n.is_finite() && n > 0.0 => Ok(n),
    _ => Err(SandboxError::invalid_config(format!("{field} must be a positive number{hint}, got {}", type_name(v)))),
  }
}

fn want_str_list(v: &Value, field: &str) -> Result<Vec<String>> {
  match v {
    Value::Array(a) => a.iter().enumerate().map(|(i, x)| want_str(x, &format!("{field}[{i}]"))).collect(),
    _ => Err(SandboxError::invalid_config(format!("{field} must be an array of strings, got {}", type_name(v)))),
  }
}

fn get<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
  o.get(k).filter(|v| !v.is_null())
}

const LIMIT_KEYS: [&str; 9] = [
  "memoryMB",
  "cpuCores",
  "diskMB",
  "networkMbps",
  "timeoutSeconds",
  "pidsLimit",
  "maxFileSizeMB",
  "maxTotalFiles",
  "maxWorkspaceSizeMB",
];

/// `network`: E2B's `{ allowOut?, denyOut? }`, or seed 000's `{ policy: 'restricted', allowedHosts }`
/// (an allow list: `allowedHosts` allowed, everything else denied; `policy: 'open'` with
/// `allowedHosts` only documents them). Every entry is checked now, naming the bad one.
fn parse_network(v: &Value) -> Result<NetworkPolicy> {
  let m = match v {
    Value::Object(m) => m,
    other => {
      return Err(SandboxError::invalid_config(format!(
        "network must be an object {{ allowOut?: string[], denyOut?: string[] }}, got {}",
        type_name(other)
      )))
    }
  };
  for k in m.keys() {
    if !["allowOut", "denyOut", "policy", "allowedHosts"].contains(&k.as_str()) {
      return Err(SandboxError::invalid_config(format!("network.{k} is not known (known: allowOut, denyOut; seed 000's policy, allowedHosts)")));
    }
  }
  let list = |k: &str| get(m, k).map(|v| want_str_list(v, &format!("network.{k}"))).transpose();
  let (allow, deny, hosts) = (list("allowOut")?, list("denyOut")?, list("allowedHosts")?);
  let policy = get(m, "policy").map(|v| want_str(v, "network.policy")).transpose()?;
  let p = if policy.is_some() || hosts.is_some() {
    if allow.is_some() || deny.is_some() {
      return Err(SandboxError::invalid_config(
        "network: give either allowOut/denyOut or seed 000's policy/allowedHosts, not both",
      ));
    }
    match policy.as_deref() {
      None | Some("restricted") => NetworkPolicy { allow_out: hosts.unwrap_or_default(), deny_out: vec!["0.0.0.0/0".into()] },
      Some("open") => NetworkPolicy { allow_out: hosts.unwrap_or_default(), deny_out: Vec::new() },
      Some(other) => {
        return Err(SandboxError::invalid_config(format!(
          "network.policy must be 'restricted' (only allowedHosts) or 'open', got {other:?}"
        )))
      }
    }
  } else {
    NetworkPolicy { allow_out: allow.unwrap_or_default(), deny_out: deny.unwrap_or_default() }
  };
  check_network(&p)?;
  Ok(p)
}

/// Every entry of a policy parses (presets expanded); the error names the list and the entry.
pub fn check_network(p: &NetworkPolicy) -> Result<()> {
  for (field, list) in [("network.allowOut", &p.allow_out), ("network.denyOut", &p.deny_out)] {
    crate::core::egress::expand(list).map_err(|e| SandboxError::invalid_config(format!("{field}: {e}")))?;
  }
  Ok(())
}

fn parse_extra_hosts(v: &Value) -> Result<BTreeMap<String, String>> {
  let Value::Object(m) = v else {
    return Err(SandboxError::invalid_config(format!(
      "docker.extraHosts must be an object {{ name: ipv4 }}, got {}",
      type_name(v)
    )));
  };
  let mut out = BTreeMap::new();
  for (name, ip) in m {
    let ip = want_str(ip, &format!("docker.extraHosts.{name}"))?;
    if ip.parse::<std::net::Ipv4Addr>().is_err() {
      return Err(SandboxError::invalid_config(format!("docker.extraHosts.{name} must be an IPv4 address, got {ip:?}")));
    }
    match crate::core::egress::parse_entry(name) {
      Ok(e) if matches!(e.host, crate::core::egress::Host::Domain { wildcard: false, .. }) && e.port.is_none() => {}
      _ => {
        return Err(SandboxError::invalid_config(format!(
          "docker.extraHosts: {name:?} is not a host name (letters, digits, '-' and '.', no port or wildcard)"
        )))
      }
    }
    out.insert(name.to_ascii_lowercase(), ip);
  }
  Ok(out)
}

/// Validate a merged layer into a typed config. Messages name the offending field.
pub fn resolve(v: &Value) -> Result<SandboxConfig> {
  let o = v
    .as_object()
    .ok_or_else(|| SandboxError::invalid_config(format!("config must be an object, got {}", type_name(v))))?;
  for k in o.keys() {
    if !TOP_KEYS.contains(&k.as_str()) && !IGNORED_KEYS.contains(&k.as_str()) {
      tracing::debug!(key = %k, "unknown sandbox config key ignored (see the manager's warnings)");
    }
  }
  let provider = match get(o, "provider").map(|v| want_str(v, "provider")).transpose()?.as_deref() {
    None => ProviderKind::Docker,
    Some(name) => ProviderKind::parse(name, "provider")?,
  };
  let mode_given = get(o, "networkMode").map(|v| want_str(v, "networkMode")).transpose()?;
  let network_mode = match mode_given.as_deref() {
    // 'restricted' (seed 000): behind the egress gateway, on the sandbox's own internal network
    None | Some("isolated") | Some("restricted") => NetworkMode::Isolated,
    Some("none") => NetworkMode::None,
    Some("bridge") => NetworkMode::Bridge,
    Some(other) => {
      return Err(SandboxError::invalid_config(format!(
        "networkMode must be 'none', 'isolated', 'bridge' or 'restricted', got {other:?}"
      )))
    }
  };
  let mut network = get(o, "network").map(parse_network).transpose()?;
  if mode_given.as_deref() == Some("restricted") && network.is_none() {
    // restricted without rules: nothing goes out (rules can be added with updateNetwork)
    network = Some(NetworkPolicy { allow_out: Vec::new(), deny_out: vec!["0.0.0.0/0".into()] });
  }
  if network.is_some() && network_mode == NetworkMode::None {
    return Err(SandboxError::invalid_config(
      "network rules need a network, but networkMode is 'none'; drop networkMode (the rules put the sandbox behind the egress gateway) or drop network",
    ));
  }
  let template = get(o, "template").map(|v| want_str(v, "template")).transpose()?;
  let tpl = template.as_deref().map(|t| crate::core::templates::lookup(t, get(o, "templates"))).transpose()?;
  let image = match (get(o, "image"), &tpl) {
    (Some(v), _) => want_str(v, "image")?,
    (None, Some(t)) => t.image.clone(),
    (None, None) => DEFAULT_IMAGE.to_string(),
  };
  if image.trim().is_empty() {
    return Err(SandboxError::invalid_config("image must not be empty"));
  }

  let empty = Map::new();
  let lim = match get(o, "limits") {
    Some(Value::Object(m)) => m,
    Some(other) => return Err(SandboxError::invalid_config(format!("limits must be an object, got {}", type_name(other)))),
    None => &empty,
  };
  let num_or = |k: &str, d: f64, hint: &str| -> Result<f64> {
    match get(lim, k) {
      Some(v) => want_positive(v, &format!("limits.{k}"), hint),
      None => Ok(d),
    }
  };
  let memory_mb = num_or("memoryMB", 512.0, " of megabytes (at least 6)")?;
  if memory_mb < 6.0 {
    return Err(SandboxError::invalid_config(format!("limits.memoryMB must be at least 6 (Docker's minimum), got {memory_mb}")));
  }
  let pids = num_or("pidsLimit", 256.0, " (maximum number of processes)")?;
  if pids < 8.0 || pids.fract() != 0.0 {
    return Err(SandboxError::invalid_config(format!("limits.pidsLimit must be a whole number of at least 8, got {pids}")));
  }
  let limits = ResourceLimits {
    memory_mb,
    cpu_cores: num_or("cpuCores", 1.0, " of cores (fractions allowed)")?,
    disk_mb: num_or("diskMB", 1024.0, " of megabytes")?,
    network_mbps: get(lim, "networkMbps").map(|v| want_positive(v, "limits.networkMbps", "")).transpose()?,
    timeout_seconds: num_or("timeoutSeconds", 300.0, " of seconds")?,
    pids_limit: pids as i64,
    max_file_size_mb: get(lim, "maxFileSizeMB").map(|v| want_positive(v, "limits.maxFileSizeMB", " of megabytes")).transpose()?,
    max_total_files: get(lim, "maxTotalFiles")
      .map(|v| match v.as_f64() {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 1e12 => Ok(n as u64),
        _ => Err(SandboxError::invalid_config(format!("limits.maxTotalFiles must be a whole number of at least 1, got {}", type_name(v)))),
      })
      .transpose()?,
    max_workspace_size_mb: get(lim, "maxWorkspaceSizeMB")
      .map(|v| want_positive(v, "limits.maxWorkspaceSizeMB", " of megabytes"))
      .transpose()?,
  };
  if limits.timeout_seconds > MAX_SECONDS {
    return Err(SandboxError::invalid_config(format!(
      "limits.timeoutSeconds must be at most {MAX_SECONDS} (365 days), got {}",
      limits.timeout_seconds
    )));
  }
  for k in lim.keys() {
    if !LIMIT_KEYS.contains(&k.as_str()) {
      return Err(SandboxError::invalid_config(format!(
        "limits.{k} is not a known limit (known: {})",
        LIMIT_KEYS.join(", ")
      )));
    }
  }

  let mut env = BTreeMap::new();
  match get(o, "env") {
    Some(Value::Object(m)) => {
      for (k, v) in m {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
          return Err(SandboxError::invalid_config(format!("env key {k:?} is not a valid variable name")));
        }
        env.insert(k.clone(), want_str(v, &format!("env.{k}"))?);
      }
    }
    Some(other) => return Err(SandboxError::invalid_config(format!("env must be an object of strings, got {}", type_name(other)))),
    None => {}
  }

  let workdir = match get(o, "workdir") {
    Some(v) => want_str(v, "workdir")?,
    None => DEFAULT_WORKDIR.to_string(),
  };
  if !workdir.starts_with('/') || workdir == "/" {
    return Err(SandboxError::invalid_config(format!(
      "workdir must be an absolute path other than '/', got {workdir:?}"
    )));
  }
  let workdir = crate::core::paths::normalize(&workdir);
  if workdir == "/" {
    // '/w/..' and the like: the check above saw the text, this one the directory it names
    return Err(SandboxError::invalid_config(format!("workdir must name a directory other than '/', got {:?}", get(o, "workdir"))));
  }

  let gpu = get(o, "gpu").map(|v| want_bool(v, "gpu")).transpose()?.unwrap_or(false);
  let (persistent, lifetime_seconds) = persistence(o, &provider, network.is_some())?;
  let metadata = get(o, "metadata").cloned();
  if let Some(m) = &metadata {
    if !m.is_object() {
      return Err(SandboxError::invalid_config(format!("metadata must be an object, got {}", type_name(m))));
    }
  }
  if let Some(e) = get(o, "e2b") {
    if !e.is_object() {
      return Err(SandboxError::invalid_config(format!("e2b must be an object, got {}", type_name(e))));
    }
  }

  let d = match get(o, "docker") {
    Some(Value::Object(m)) => m,
    Some(other) => return Err(SandboxError::invalid_config(format!("docker must be an object, got {}", type_name(other)))),
    None => &empty,
  };
  let registry_auth = match get(d, "registryAuth") {
    Some(Value::Object(a)) => Some(RegistryAuth {
      username: get(a, "username").map(|v| want_str(v, "docker.registryAuth.username")).transpose()?.unwrap_or_default(),
      password: get(a, "password").map(|v| want_str(v, "docker.registryAuth.password")).transpose()?.unwrap_or_default(),
      serveraddress: get(a, "serveraddress").map(|v| want_str(v, "docker.registryAuth.serveraddress")).transpose()?,
    }),
    Some(other) => {
      return Err(SandboxError::invalid_config(format!("docker.registryAuth must be an object, got {}", type_name(other))))
    }
    None => None,
  };
  let docker = DockerOptions {
    socket_path: get(d, "socketPath").map(|v| want_str(v, "docker.socketPath")).transpose()?,
    registry_auth,
    read_only_root: get(d, "readOnlyRoot").map(|v| want_bool(v, "docker.readOnlyRoot")).transpose()?.unwrap_or(true),
    cap_drop: get(d, "capDrop").map(|v| want_str_list(v, "docker.capDrop")).transpose()?.unwrap_or_else(|| vec!["ALL".into()]),
    security_opt: get(d, "securityOpt")
      .map(|v| want_str_list(v, "docker.securityOpt"))
      .transpose()?
      .unwrap_or_else(|| vec!["no-new-privileges".into()]),
    user: get(d, "user").map(|v| want_str(v, "docker.user")).transpose()?.filter(|u| !u.is_empty()),
    tmpfs: get(d, "tmpfs").map(|v| want_str_list(v, "docker.tmpfs")).transpose()?.unwrap_or_default(),
    keep_image_command: get(d, "keepImageCommand").map(|v| want_bool(v, "docker.keepImageCommand")).transpose()?,
    exec_engine: match get(d, "execEngine").map(|v| want_str(v, "docker.execEngine")).transpose()?.as_deref() {
      None | Some("guest") => ExecEngine::Guest,
      Some("exec") => ExecEngine::Exec,
      Some(other) => {
        return Err(SandboxError::invalid_config(format!(
          "docker.execEngine must be 'guest' or 'exec', got {other:?}"
        )))
      }
    },
    runtime: get(d, "runtime").map(|v| want_str(v, "docker.runtime")).transpose()?.filter(|r| !r.is_empty()),
    isolated_subnet_pool: match get(d, "isolatedSubnetPool") {
      None => DEFAULT_ISOLATED_SUBNET_POOL.to_string(),
      Some(v) => {
        let pool = want_str(v, "docker.isolatedSubnetPool")?;
        crate::providers::docker::sandbox::subnet::Pool::parse(&pool)
          .map_err(|e| SandboxError::invalid_config(format!("docker.isolatedSubnetPool {e}")))?;
        pool
      }
    },
    reaper_interval: match get(d, "reaperIntervalSeconds") {
      None => None,
      Some(v) => match v.as_f64() {
        Some(n) if n.is_finite() && (0.0..=MAX_SECONDS).contains(&n) => Some(std::time::Duration::from_secs_f64(n)),
        _ => {
          return Err(SandboxError::invalid_config(format!(
            "docker.reaperIntervalSeconds must be a number of seconds from 0 (no periodic sweeps) to {MAX_SECONDS}, got {} (env {})",
            type_name(v),
            crate::providers::docker::reaper::INTERVAL_ENV
          )))
        }
      },
    },
    extra_hosts: get(d, "extraHosts").map(parse_extra_hosts).transpose()?.unwrap_or_default(),
    egress_network: match get(d, "egressNetwork") {
      None => "bridge".to_string(),
      Some(v) => {
        let n = want_str(v, "docker.egressNetwork")?;
        if n.is_empty() || n == "none" || n == "host" || n.starts_with("container:") {
          return Err(SandboxError::invalid_config(format!(
            "docker.egressNetwork must name a Docker network the egress gateway can reach the outside through (default 'bridge'), got {n:?}"
          )));
        }
        n
      }
    },
  };
  for t in &docker.tmpfs {
    if !t.starts_with('/') {
      return Err(SandboxError::invalid_config(format!(
        "docker.tmpfs entries look like '/tmp:rw,size=100m', got {t:?}"
      )));
    }
  }

  let e2b = get(o, "e2b").cloned();
  let remote = get(o, "remote").cloned();
  if let Some(r) = &remote {
    if !r.is_object() {
      return Err(SandboxError::invalid_config(format!("remote must be an object {{ url, apiKey }}, got {}", type_name(r))));
    }
  }
  let mut fallback_providers = Vec::new();
  if let Some(v) = get(o, "fallbackProviders") {
    for p in want_str_list(v, "fallbackProviders")? {
      let kind = ProviderKind::parse(&p, "fallbackProviders entries")?;
      if kind != provider && !fallback_providers.contains(&kind) {
        fallback_providers.push(kind);
      }
    }
  }

  let name = get(o, "name").map(|v| want_str(v, "name")).transpose()?;
  let install_packages = get(o, "installPackages").map(|v| want_str_list(v, "installPackages")).transpose()?.unwrap_or_default();
  let package_manager = tpl.as_ref().and_then(|t| t.package_manager);
  check_install(&install_packages, template.as_deref(), package_manager, &provider, network_mode, network.is_some())
    .map_err(SandboxError::invalid_config)?;
  let startup_script = get(o, "startupScript").map(|v| want_str(v, "startupScript")).transpose()?.filter(|s| !s.trim().is_empty());
  let command_policy = match get(o, "commandPolicy") {
    None => None,
    Some(Value::Object(m)) => {
      for k in m.keys() {
        if k != "allow" && k != "deny" {
          return Err(SandboxError::invalid_config(format!("commandPolicy.{k} is not known (known: allow, deny)")));
        }
      }
      let spec = CommandPolicySpec {
        allow: get(m, "allow").map(|v| want_str_list(v, "commandPolicy.allow")).transpose()?,
        deny: get(m, "deny").map(|v| want_str_list(v, "commandPolicy.deny")).transpose()?,
      };
      crate::core::policy::CommandPolicy::new(spec.allow.clone(), spec.deny.clone())?;
      Some(spec)
    }
    Some(other) => {
      return Err(SandboxError::invalid_config(format!(
        "commandPolicy must be an object {{ allow?: string[], deny?: string[] }}, got {}",
        type_name(other)
      )))
    }
  };
  if let Some(PackageManager::Pip) = package_manager {
    if !install_packages.is_empty() {
      // pip installs into the workspace (the root is read-only); every command sees it
      let dir = format!("{}/{PIP_TARGET}", workdir.trim_end_matches('/'));
      env.entry("PYTHONPATH".into()).or_insert(dir);
    }
  }

  let from_snapshot = get(o, "fromSnapshot").map(|v| want_str(v, "fromSnapshot")).transpose()?;
  let image = match &from_snapshot {
    Some(name) => snapshot_image(name, &provider, &fallback_providers)?,
    None => image,
  };

  Ok(SandboxConfig {
    provider,
    image,
    limits,
    network_mode,
    network,
    env,
    workdir,
    gpu,
    metadata,
    docker,
    e2b,
    remote,
    fallback_providers,
    name,
    template,
    package_manager,
    install_packages,
    startup_script,
    command_policy,
    from_snapshot,
    persistent,
    lifetime_seconds,
  })
}

/// The image of a sandbox made `fromSnapshot: name`: the snapshot's (only the docker provider
/// keeps snapshots, so other providers, also as fallbacks, are refused).
fn snapshot_image(name: &str, provider: &ProviderKind, fallbacks: &[ProviderKind]) -> Result<String> {
  crate::core::snapshot::validate_name(name, "fromSnapshot").map_err(|e| SandboxError::invalid_config(e.message))?;
  if *provider != ProviderKind::Docker {
    return Err(SandboxError::invalid_config(format!(
      "fromSnapshot needs provider 'docker' (snapshots are Docker images on the engine), but provider is '{}'; drop fromSnapshot, or use provider 'docker'",
      provider.as_str()
    )));
  }
  if let Some(other) = fallbacks.iter().find(|p| **p != ProviderKind::Docker) {
    return Err(SandboxError::invalid_config(format!(
      "fromSnapshot cannot fall back to provider '{}' (it has no snapshots); drop fallbackProviders or fromSnapshot",
      other.as_str()
    )));
  }
  Ok(crate::core::snapshot::image_ref(name))
}

/// `fromSnapshot` in one config layer: it picks the image, so an `image` or `template` of the
/// same layer that says otherwise is INVALID_CONFIG; otherwise the layer's image becomes the
/// snapshot's (which drops a template or image of the layers below, as an explicit image does).
fn apply_from_snapshot(obj: &mut Map<String, Value>, origin: &str) -> Result<()> {
  let Some(name) = obj.get("fromSnapshot").filter(|v| !v.is_null()) else { return Ok(()) };
  let Some(name) = name.as_str() else {
    return Err(SandboxError::invalid_config(format!("fromSnapshot in {origin} must be a snapshot name (a string), got {}", type_name(name))));
  };
  let wanted = crate::core::snapshot::image_ref(name);
  if let Some(img) = obj.get("image").filter(|v| !v.is_null()) {
    if img.as_str() != Some(wanted.as_str()) {
      return Err(SandboxError::invalid_config(format!(
        "fromSnapshot {name:?} and image {img} in {origin} conflict: a sandbox from a snapshot runs the snapshot's image ({wanted}); drop image"
      )));
    }
  }
  if obj.get("template").is_some_and(|v| !v.is_null()) {
    return Err(SandboxError::invalid_config(format!(
      "fromSnapshot and template in {origin} conflict: the snapshot decides the image; drop template"
    )));
  }
  obj.insert("image".into(), Value::String(wanted));
  Ok(())
}

/// `persistent` and `lifetimeSeconds`: Docker sandboxes only, without egress rules (their gateway
/// is bound to the process that made it), the lifetime from 1 s to [`MAX_LIFETIME_SECONDS`].
fn persistence(o: &Map<String, Value>, provider: &ProviderKind, rules: bool) -> Result<(bool, Option<f64>)> {
  let persistent = get(o, "persistent").map(|v| want_bool(v, "persistent")).transpose()?.unwrap_or(false);
  let given = get(o, "lifetimeSeconds");
  if !persistent {
    if given.is_some() {
      return Err(SandboxError::invalid_config(
        "lifetimeSeconds is the lifetime of a persistent sandbox; add persistent: true (other sandboxes end with the process that made them)",
      ));
    }
    return Ok((false, None));
  }
  if *provider != ProviderKind::Docker {
    return Err(SandboxError::invalid_config(format!(
      "persistent: true is supported by the docker provider only, not {:?} (an E2B sandbox lives on E2B's side until its timeout)",
      provider.as_str()
    )));
  }
  if rules {
    return Err(SandboxError::invalid_config(
      "persistent: true cannot be combined with network rules yet (the egress gateway ends with the process that made it); drop network or persistent",
    ));
  }
  let lifetime = match given {
    None => DEFAULT_LIFETIME_SECONDS,
    Some(Value::Number(n)) if n.as_f64().is_some_and(|s| s.is_finite() && (1.0..=MAX_LIFETIME_SECONDS).contains(&s)) => n.as_f64().unwrap(),
    Some(v) => {
      return Err(SandboxError::invalid_config(format!(
        "lifetimeSeconds must be a number of seconds from 1 to {MAX_LIFETIME_SECONDS} (30 days), got {}",
        type_name(v)
      )))
    }
  };
  Ok((true, Some(lifetime)))
}

/// The keys of the `docker` object.
pub const DOCKER_KEYS: [&str; 14] = [
  "extraHosts",
  "egressNetwork",
  "socketPath",
  "registryAuth",
  "readOnlyRoot",
  "capDrop",
  "securityOpt",
  "user",
  "tmpfs",
  "keepImageCommand",
  "execEngine",
  "runtime",
  "isolatedSubnetPool",
  "reaperIntervalSeconds",
];

/// The keys of the `e2b` object (see `providers::e2b::E2bOptions::resolve`).
pub const E2B_KEYS: [&str; 6] = ["apiKey", "templateId", "region", "domain", "apiUrl", "sandboxUrl"];

/// Sentences, one per key, about configuration that is accepted but has no effect on a sandbox
/// configured as `cfg`. `given` is what the user set, without the built-in defaults
/// ([`ManagerLayers::given`], with the `createSandbox` config merged over it), so only keys
/// somebody wrote are reported. `sandbox_layer` is the `createSandbox` config itself (`None` for
/// the manager's defaults), for the keys that only a manager's config can set.
///
/// What is reported: unknown top-level keys; `network` (not read yet: `networkMode` chooses the
/// network); `autoCleanup: false` (a manager always destroys its sandboxes at `destroyAll()` and
/// at exit); `limits.networkMbps` (enforced by no provider); with provider `e2b` and no Docker
/// fallback, `image`, `gpu`, `limits.{memoryMB,cpuCores,diskMB,pidsLimit}` and every `docker`
/// option (the E2B template decides them), and `networkMode: 'isolated'` without `network` rules
/// (E2B has no such network: the sandbox gets E2B's, with internet access); the `e2b` object when E2B is neither
/// the provider nor a fallback; `e2b.region` (E2B takes none) and unknown `e2b` keys when E2B is
/// used; unknown `docker` keys; `fallbackProviders` entries naming the provider itself; in a
/// `createSandbox` config, `debug` / `verbose` (logging is process-wide) and
/// `docker.reaperIntervalSeconds` (process-wide per engine).
pub fn warnings(cfg: &SandboxConfig, given: &Value, sandbox_layer: Option<&Value>) -> Vec<String> {
  let mut out = Vec::new();
  let Some(g) = given.as_object() else { return out };
  let set = |o: &Map<String, Value>, k: &str| o.get(k).is_some_and(|v| !v.is_null());
  let object = |o: &Map<String, Value>, k: &str| -> Map<String, Value> {
    match o.get(k) {
      Some(Value::Object(m)) => m.clone(),
      _ => Map::new(),
    }
  };
  let provider = cfg.provider.as_str();
  let only_e2b = cfg.provider == ProviderKind::E2b && !cfg.fallback_providers.contains(&ProviderKind::Docker);
  let uses_e2b = cfg.provider == ProviderKind::E2b || cfg.fallback_providers.contains(&ProviderKind::E2b);

  for k in g.keys() {
    if !TOP_KEYS.contains(&k.as_str()) && !IGNORED_KEYS.contains(&k.as_str()) && set(g, k) {
      out.push(format!("{k} is not a known config key, so it has no effect (known: {})", TOP_KEYS.join(", ")));
    }
  }
  if g.get("autoCleanup") == Some(&Value::Bool(false)) {
    out.push(
      "autoCleanup: false has no effect: a manager destroys its sandboxes at destroyAll() and when the process exits; to keep an agent's sandbox after its run, pass autoCleanup: false to SandboxedAgentExecutor.execute"
        .to_string(),
    );
  }
  let limits = object(g, "limits");
  if set(&limits, "networkMbps") {
    out.push("limits.networkMbps has no effect: no provider enforces a network rate limit yet (README \"Not yet\")".to_string());
  }
  if only_e2b {
    for k in ["memoryMB", "cpuCores", "diskMB", "pidsLimit"] {
      if set(&limits, k) {
        out.push(format!(
          "limits.{k} has no effect with provider 'e2b': the E2B template (e2b.templateId) decides memory, CPU and disk; timeoutSeconds and the workspace quotas do apply"
        ));
      }
    }
    // 'none' maps to E2B's allow_internet_access: false and 'bridge' is what E2B gives anyway;
    // 'isolated' (a private network with no route out on Docker) has no E2B counterpart: without
    // `network` rules the sandbox keeps E2B's default network, with internet access
    if g.get("networkMode").and_then(Value::as_str) == Some("isolated") && cfg.network.is_none() {
      out.push(
        "networkMode 'isolated' has no effect with provider 'e2b': an E2B sandbox gets E2B's network, with internet access; use networkMode 'none' for no network, or network { allowOut, denyOut } rules (denyOut: ['0.0.0.0/0'] blocks everything allowOut does not name)"
          .to_string(),
      );
    }
    if set(g, "gpu") {
      out.push("gpu has no effect with provider 'e2b': the E2B template decides the hardware".to_string());
    }
    if set(g, "image") {
      out.push(
        "image has no effect with provider 'e2b': the sandbox runs the E2B template e2b.templateId (with fallbackProviders: ['docker'] a Docker fallback would use the image)"
          .to_string(),
      );
    }
    for (k, v) in object(g, "docker") {
      if v.is_null() {
        continue;
      }
      let alias = SECURITY_KEYS.iter().find(|(_, dk)| *dk == k.as_str()).map(|(sk, _)| format!(" (or security.{sk})")).unwrap_or_default();
      out.push(format!("docker.{k}{alias} has no effect with provider 'e2b': Docker options apply only to Docker sandboxes"));
    }
  } else {
    for k in object(g, "docker").keys() {
      if !DOCKER_KEYS.contains(&k.as_str()) {
        out.push(format!("docker.{k} is not a known Docker option, so it has no effect (known: {})", DOCKER_KEYS.join(", ")));
      }
    }
  }
  if set(g, "e2b") {
    if !uses_e2b {
      out.push(format!("e2b has no effect: the provider is '{provider}' and fallbackProviders does not name 'e2b'"));
    } else {
      let e2b = object(g, "e2b");
      if set(&e2b, "region") {
        out.push("e2b.region has no effect: E2B's API takes no region (E2B places sandboxes itself)".to_string());
      }
      for k in e2b.keys() {
        if !E2B_KEYS.contains(&k.as_str()) {
          out.push(format!("e2b.{k} is not a known E2B option, so it has no effect (known: {})", E2B_KEYS.join(", ")));
        }
      }
    }
  }
  if let Some(Value::Array(fallbacks)) = g.get("fallbackProviders") {
    if fallbacks.iter().any(|f| f.as_str() == Some(provider)) {
      out.push(format!("fallbackProviders entry '{provider}' has no effect: it is the provider itself"));
    }
  }
  if let Some(Value::Object(layer)) = sandbox_layer {
    for k in ["debug", "verbose"] {
      if set(layer, k) {
        out.push(format!(
          "{k} in a createSandbox config has no effect: logging is process-wide; set {k} in new SandboxManager(config) or .sandboxrc.json, or call logger.setLevel()"
        ));
      }
    }
    if set(&object(layer, "docker"), "reaperIntervalSeconds") {
      out.push(
        "docker.reaperIntervalSeconds in a createSandbox config has no effect: the reaper's interval is process-wide per engine; set it in new SandboxManager(config), .sandboxrc.json or SANDBOX_REAPER_INTERVAL_SECONDS"
          .to_string(),
      );
    }
  }
  out
}

/// The log level a manager's configuration asks for: `verbose: true` → trace, `debug: true` →
/// debug, else none (`false` turns nothing off: use `logger.setLevel`). Not booleans: INVALID_CONFIG.
pub fn log_level(v: &Value) -> Result<Option<crate::core::logging::Level>> {
  let flag = |k: &str| -> Result<bool> {
    match v.get(k) {
      None | Some(Value::Null) => Ok(false),
      Some(Value::Bool(b)) => Ok(*b),
      Some(other) => Err(SandboxError::invalid_config(format!(
        "{k} must be a boolean (true writes the library's {} log to stderr), got {}",
        if k == "verbose" { "trace" } else { "debug" },
        type_name(other)
      ))),
    }
  };
  let (debug, verbose) = (flag("debug")?, flag("verbose")?);
  use crate::core::logging::Level;
  Ok(if verbose { Some(Level::Trace) } else if debug { Some(Level::Debug) } else { None })
}

/// Turn a typed config back into the JS shape (used for `sandbox.limits` and `manager.defaultConfig`).
pub fn limits_to_json(l: &ResourceLimits) -> Value {
  let mut m = serde_json::json!({
    "memoryMB": l.memory_mb, "cpuCores": l.cpu_cores, "diskMB": l.disk_mb,
    "timeoutSeconds": l.timeout_seconds, "pidsLimit": l.pids_limit,
  });
  if let Some(n) = l.network_mbps {
    m["networkMbps"] = serde_json::json!(n);
  }
  if let Some(n) = l.max_file_size_mb {
    m["maxFileSizeMB"] = serde_json::json!(n);
  }
  if let Some(n) = l.max_total_files {
    m["maxTotalFiles"] = serde_json::json!(n);
  }
  if let Some(n) = l.max_workspace_size_mb {
    m["maxWorkspaceSizeMB"] = serde_json::json!(n);
  }
  m
}

/// Whether `packages` can be installed in a sandbox with this template, package manager, provider
/// and network (the rules of `installPackages`, also used by `Sandbox.configure`).
pub fn check_install(
  packages: &[String],
  template: Option<&str>,
  package_manager: Option<PackageManager>,
  provider: &ProviderKind,
  network_mode: NetworkMode,
  has_network_rules: bool,
) -> std::result::Result<(), String> {
  for (i, p) in packages.iter().enumerate() {
    if p.trim().is_empty() || p.starts_with('-') || p.chars().any(|c| c.is_whitespace() || c == '\0') {
      return Err(format!(
        "installPackages[{i}] must be a package name or spec like 'pandas' or 'express@4', without spaces or a leading '-', got {p:?}"
      ));
    }
  }
  if packages.is_empty() {
    return Ok(());
  }
  match package_manager {
    None => {
      return Err(match template {
        Some(t) => format!("installPackages needs a package manager, and template {t:?} has none; give the template one with templates: {{ {t}: {{ image, packageManager: 'pip' | 'npm' }} }}"),
        None => "installPackages needs a template that says which package manager to use (template: 'python' for pip, 'node' for npm)".to_string(),
      })
    }
    Some(PackageManager::Apt) => {
      return Err(
        "installPackages with apt is not supported: apt needs root and a writable root filesystem, which the sandbox's hardening removes; bake system packages into the image, or use a template with pip or npm".to_string(),
      )
    }
    Some(_) => {}
  }
  // with network rules the egress gateway decides (the registries must be allowed, e.g. the 'registries' preset)
  if *provider == ProviderKind::Docker && network_mode != NetworkMode::Bridge && !has_network_rules {
    return Err(format!(
      "installPackages downloads packages, so the sandbox needs network access, but networkMode is '{}'; set networkMode: 'bridge', or network: {{ allowOut: ['registries'], denyOut: ['0.0.0.0/0'] }} (and point pip/npm at your index with env PIP_INDEX_URL / npm_config_registry if needed), or bake the packages into the image",
      network_mode.as_str()
    ));
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  fn no_env(_: &str) -> Option<String> {
    None
  }

  #[test]
  fn defaults_resolve() {
    let c = resolve(&defaults()).unwrap();
    assert_eq!(c.provider, ProviderKind::Docker);
    assert_eq!(c.network_mode, NetworkMode::Isolated);
    assert_eq!(c.limits.memory_mb, 512.0);
    assert_eq!(c.limits.pids_limit, 256);
    assert_eq!(c.image, "node:20-alpine");
    assert!(c.docker.read_only_root);
    assert_eq!(c.docker.cap_drop, vec!["ALL"]);
  }

  #[test]
  fn limits_and_docker_merge_one_level_env_replaces() {
    let base = merge(&defaults(), &json!({"limits": {"memoryMB": 256}, "env": {"A": "1"}, "docker": {"socketPath": "/s"}}));
    let m = merge(&base, &json!({"limits": {"timeoutSeconds": 60}, "env": {"B": "2"}, "docker": {"user": "1000"}}));
    let c = resolve(&m).unwrap();
    assert_eq!(c.limits.memory_mb, 256.0);
    assert_eq!(c.limits.timeout_seconds, 60.0);
    assert_eq!(c.limits.cpu_cores, 1.0);
    assert_eq!(c.env.len(), 1);
    assert_eq!(c.env["B"], "2");
    assert_eq!(c.docker.socket_path.as_deref(), Some("/s"));
    assert_eq!(c.docker.user.as_deref(), Some("1000"));
  }

  #[test]
  fn null_does_not_erase() {
    let m = merge(&defaults(), &json!({"image": null, "limits": {"memoryMB": null}}));
    let c = resolve(&m).unwrap();
    assert_eq!(c.image, DEFAULT_IMAGE);
    assert_eq!(c.limits.memory_mb, 512.0);
  }

  #[test]
  fn invalid_values_name_the_field() {
    let cases = [
      (json!({"limits": {"memoryMB": -5}}), "limits.memoryMB"),
      (json!({"limits": {"memoryMB": "lots"}}), "limits.memoryMB"),
      (json!({"provider": "LXC containers"}), "provider"),
      (json!({"networkMode": "host"}), "networkMode"),
      (json!({"env": {"A": 1}}), "env.A"),
      (json!({"limits": {"memory": 5}}), "limits.memory"),
      (json!({"workdir": "rel/dir"}), "workdir"),
      (json!({"workdir": "/w/../.."}), "workdir"),
      (json!({"docker": {"capDrop": "ALL"}}), "docker.capDrop"),
      (json!({"limits": {"pidsLimit": 2.5}}), "limits.pidsLimit"),
      (json!({"gpu": "yes"}), "gpu"),
    ];
    for (v, field) in cases {
      let e = resolve(&merge(&defaults(), &v)).unwrap_err();
      assert_eq!(e.code.as_str(), "INVALID_CONFIG");
      assert!(e.message.contains(field), "{field} not in {:?}", e.message);
    }
  }

  #[test]
  fn env_layer_reads_seed_variables() {
    let vars = [
      ("SANDBOX_PROVIDER", "docker"),
      ("SANDBOX_MEMORY_MB", "300"),
      ("SANDBOX_CPU_CORES", "0.5"),
      ("SANDBOX_TIMEOUT_SECONDS", "42"),
      ("SANDBOX_DISK_MB", "64"),
      ("SANDBOX_NETWORK_MODE", "none"),
      ("DOCKER_SOCKET_PATH", "/tmp/d.sock"),
      ("DOCKER_IMAGE", "busybox:1"),
    ];
    let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    let c = resolve(&merge(&defaults(), &env_layer(&get).unwrap())).unwrap();
    assert_eq!(c.limits.memory_mb, 300.0);
    assert_eq!(c.limits.cpu_cores, 0.5);
    assert_eq!(c.limits.timeout_seconds, 42.0);
    assert_eq!(c.limits.disk_mb, 64.0);
    assert_eq!(c.network_mode, NetworkMode::None);
    assert_eq!(c.docker.socket_path.as_deref(), Some("/tmp/d.sock"));
    assert_eq!(c.image, "busybox:1");
  }

  #[test]
  fn env_layer_rejects_bad_values_naming_the_variable() {
    let get = |k: &str| (k == "SANDBOX_MEMORY_MB").then(|| "abc".to_string());
    assert!(env_layer(&get).unwrap_err().message.contains("SANDBOX_MEMORY_MB"));
    let get = |k: &str| (k == "SANDBOX_NETWORK_MODE").then(|| "wormhole".to_string());
    assert!(env_layer(&get).unwrap_err().message.contains("SANDBOX_NETWORK_MODE"));
  }

  #[test]
  fn expansion() {
    let get = |k: &str| (k == "KEY").then(|| "secret".to_string());
    assert_eq!(expand_vars("a-${KEY}-b", &get), "a-secret-b");
    assert_eq!(expand_vars("${MISSING:-dflt}", &get), "dflt");
    assert_eq!(expand_vars("${MISSING}", &get), "");
    assert_eq!(expand_vars("no ${ close", &get), "no ${ close");
  }

  #[test]
  fn rc_file_of_the_seed_guide() {
    let text = r#"{
      "provider": "docker",
      "limits": { "memoryMB": 512, "cpuCores": 1, "diskMB": 1024, "timeoutSeconds": 300 },
      "networkMode": "isolated",
      "autoCleanup": true,
      "docker": { "image": "node:20-alpine", "socketPath": "/var/run/docker.sock" },
      "e2b": { "apiKey": "${E2B_API_KEY}", "templateId": "node-typescript", "region": "us-east-1" },
      "security": { "readOnlyRoot": true, "dropCapabilities": ["ALL"], "noNewPrivileges": true }
    }"#;
    let get = |k: &str| (k == "E2B_API_KEY").then(|| "k-123".to_string());
    let layer = rc_layer(text, Path::new(".sandboxrc.json"), &get).unwrap();
    assert_eq!(layer["e2b"]["apiKey"], "k-123");
    assert_eq!(layer["image"], "node:20-alpine");
    assert_eq!(layer["docker"]["capDrop"], json!(["ALL"]));
    let c = resolve(&merge(&defaults(), &layer)).unwrap();
    assert_eq!(c.docker.security_opt, vec!["no-new-privileges"]);
  }

  #[test]
  fn rc_file_bad_json_names_file() {
    let e = rc_layer("{ nope", Path::new("/x/.sandboxrc.json"), &no_env).unwrap_err();
    assert!(e.message.contains("/x/.sandboxrc.json"));
  }

  #[test]
  fn precedence_explicit_env_file_defaults() {
    let dir = std::env::temp_dir().join(format!("sbx-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(RC_FILE), r#"{"limits":{"memoryMB":100,"cpuCores":0.25,"diskMB":50}}"#).unwrap();
    let get = |k: &str| (k == "SANDBOX_MEMORY_MB").then(|| "200".to_string());
    let base = base_layers(&get, &dir).unwrap();
    let c = resolve(&merge(&base, &json!({"limits": {"cpuCores": 2}}))).unwrap();
    assert_eq!(c.limits.memory_mb, 200.0); // env beats file
    assert_eq!(c.limits.cpu_cores, 2.0); // explicit beats file
    assert_eq!(c.limits.disk_mb, 50.0); // file beats defaults
    assert_eq!(c.limits.timeout_seconds, 300.0); // defaults
    std::fs::remove_dir_all(dir).unwrap();
  }

  #[test]
  fn template_and_image_most_specific_layer_decides() {
    let base = merge(&defaults(), &json!({ "templates": { "python": "local/py:1" } }));
    // a template without an image: the template picks it
    let c = resolve(&merge(&base, &json!({ "template": "python" }))).unwrap();
    assert_eq!((c.image.as_str(), c.template.as_deref()), ("local/py:1", Some("python")));
    assert_eq!(c.package_manager, Some(PackageManager::Pip));
    // both in one layer: the image wins, the template stays (package manager, language)
    let c = resolve(&merge(&base, &json!({ "template": "python", "image": "x:1" }))).unwrap();
    assert_eq!((c.image.as_str(), c.template.as_deref()), ("x:1", Some("python")));
    // an image over a default template drops the template
    let with_tpl = merge(&base, &json!({ "template": "python" }));
    let c = resolve(&merge(&with_tpl, &json!({ "image": "busybox" }))).unwrap();
    assert_eq!((c.image.as_str(), c.template.as_deref()), ("busybox", None));
    // a template over an image from the environment layer picks its own image
    let env_image = merge(&base, &json!({ "image": "from-env:1" }));
    let c = resolve(&merge(&env_image, &json!({ "template": "python" }))).unwrap();
    assert_eq!(c.image, "local/py:1");
    // templates merge per name across layers
    let more = merge(&base, &json!({ "templates": { "ml": "local/ml:1" } }));
    assert_eq!(resolve(&merge(&more, &json!({ "template": "python" }))).unwrap().image, "local/py:1");
    assert_eq!(resolve(&merge(&more, &json!({ "template": "ml" }))).unwrap().image, "local/ml:1");
    let e = resolve(&merge(&base, &json!({ "template": "cobol" }))).unwrap_err();
    assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig);
    assert!(e.message.contains("cobol") && e.message.contains("python"), "{}", e.message);
  }

  #[test]
  fn install_packages_rules() {
    let ok = resolve(&merge(&defaults(), &json!({ "template": "python", "networkMode": "bridge", "installPackages": ["pandas", "requests==2.31"] }))).unwrap();
    assert_eq!(ok.install_packages, vec!["pandas", "requests==2.31"]);
    assert_eq!(ok.env.get("PYTHONPATH").map(String::as_str), Some("/workspace/.packages/python"));
    let bad = |v: Value, needle: &str| {
      let e = resolve(&merge(&defaults(), &v)).unwrap_err();
      assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig);
      assert!(e.message.contains(needle), "{needle:?} not in {}", e.message);
    };
    bad(json!({ "template": "python", "installPackages": ["pandas"] }), "networkMode: 'bridge'");
    bad(json!({ "template": "base", "networkMode": "bridge", "installPackages": ["curl"] }), "apt is not supported");
    bad(json!({ "template": "go", "networkMode": "bridge", "installPackages": ["x"] }), "has none");
    bad(json!({ "networkMode": "bridge", "installPackages": ["x"] }), "needs a template");
    bad(json!({ "template": "python", "networkMode": "bridge", "installPackages": ["--index-url=http://evil"] }), "leading '-'");
    bad(json!({ "template": "python", "networkMode": "bridge", "installPackages": ["a b"] }), "without spaces");
    bad(json!({ "template": "python", "networkMode": "bridge", "installPackages": "pandas" }), "array of strings");
    bad(json!({ "startupScript": 3 }), "startupScript must be a string");
    // no packages: nothing is required of the network
    assert!(resolve(&merge(&defaults(), &json!({ "template": "python", "installPackages": [] }))).is_ok());
  }

  #[test]
  fn quotas_and_policy() {
    let c = resolve(&defaults()).unwrap();
    assert_eq!((c.limits.max_file_size_mb, c.limits.max_total_files, c.limits.max_workspace_size_mb), (Some(100.0), None, None));
    let c = resolve(&merge(&defaults(), &json!({ "limits": { "maxTotalFiles": 3, "maxWorkspaceSizeMB": 0.5 } }))).unwrap();
    assert_eq!((c.limits.max_total_files, c.limits.max_workspace_size_mb), (Some(3), Some(0.5)));
    for bad in [json!({ "maxTotalFiles": 0 }), json!({ "maxTotalFiles": 1.5 }), json!({ "maxFileSizeMB": -1 }), json!({ "maxWorkspaceSizeMB": "1" })] {
      let e = resolve(&merge(&defaults(), &json!({ "limits": bad }))).unwrap_err();
      assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig, "{bad}");
    }
    let env = |k: &str| match k {
      "MAX_FILE_SIZE_MB" => Some("2".to_string()),
      "MAX_TOTAL_FILES" => Some("10".to_string()),
      "MAX_WORKSPACE_SIZE_MB" => Some("5".to_string()),
      _ => None,
    };
    let c = resolve(&merge(&defaults(), &env_layer(&env).unwrap())).unwrap();
    assert_eq!((c.limits.max_file_size_mb, c.limits.max_total_files, c.limits.max_workspace_size_mb), (Some(2.0), Some(10), Some(5.0)));
    assert!(env_layer(&|k: &str| (k == "MAX_TOTAL_FILES").then(|| "many".to_string())).is_err());

    let c = resolve(&merge(&defaults(), &json!({ "commandPolicy": { "deny": ["rm", "curl*"] } }))).unwrap();
    assert_eq!(c.command_policy.unwrap().deny.unwrap(), vec!["rm", "curl*"]);
    assert!(resolve(&merge(&defaults(), &json!({ "commandPolicy": { "block": ["rm"] } }))).is_err());
    assert!(resolve(&merge(&defaults(), &json!({ "commandPolicy": ["rm"] }))).is_err());
    assert!(resolve(&merge(&defaults(), &json!({ "commandPolicy": { "allow": [""] } }))).is_err());
  }

  #[test]
  fn secrets_are_redacted_in_debug_and_handed_back_config() {
    let given = json!({
      "e2b": { "apiKey": "e2b_0123456789abcdef", "templateId": "base" },
      "docker": { "registryAuth": { "username": "bob", "password": "hunter2-registry" } },
      "env": { "GITHUB_TOKEN": "ghp_secret_value", "AWS_SECRET_ACCESS_KEY": "aws-secret-value", "PATH_EXTRA": "/opt/bin" },
      "metadata": { "owner": "team-a", "db": { "password": "pg-secret-value", "apiKey": null } },
    });
    let c = resolve(&merge(&defaults(), &given)).unwrap();
    let dbg = format!("{c:?} {:?} {:?}", c.docker, c.docker.registry_auth);
    for secret in ["e2b_0123456789abcdef", "hunter2-registry", "ghp_secret_value", "aws-secret-value", "pg-secret-value"] {
      assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
    }
    assert!(dbg.contains("bob") && dbg.contains("/opt/bin") && dbg.contains("team-a") && dbg.contains(REDACTED), "{dbg}");

    let shown = redacted(&merge(&defaults(), &given));
    assert_eq!(shown["e2b"]["apiKey"], REDACTED);
    assert_eq!(shown["e2b"]["templateId"], "base");
    assert_eq!(shown["docker"]["registryAuth"]["password"], REDACTED);
    assert_eq!(shown["docker"]["registryAuth"]["username"], "bob");
    assert_eq!(shown["env"]["GITHUB_TOKEN"], REDACTED);
    assert_eq!(shown["env"]["PATH_EXTRA"], "/opt/bin");
    assert_eq!(shown["metadata"]["db"]["password"], REDACTED);
    assert_eq!(shown["metadata"]["db"]["apiKey"], Value::Null, "an unset secret stays unset");
    assert_eq!(shown["limits"], defaults()["limits"]);
    for k in ["apiKey", "api_key", "OPENAI_API_KEY", "password", "dbPassword", "x-auth-token", "clientSecret", "privateKey", "credentials"] {
      assert!(is_secret_key(k), "{k}");
    }
    for k in ["username", "templateId", "keepImageCommand", "PATH", "monkey", "socketPath"] {
      assert!(!is_secret_key(k), "{k}");
    }
    // a secret of the wrong type is not echoed in the error either
    let e = resolve(&merge(&defaults(), &json!({ "docker": { "registryAuth": { "password": 918273645 } } }))).unwrap_err();
    assert!(!e.message.contains("918273645"), "{}", e.message);
  }

  #[test]
  fn reaper_interval_from_config_and_environment() {
    assert_eq!(resolve(&defaults()).unwrap().docker.reaper_interval, None);
    let c = resolve(&merge(&defaults(), &json!({ "docker": { "reaperIntervalSeconds": 0 } }))).unwrap();
    assert_eq!(c.docker.reaper_interval, Some(std::time::Duration::ZERO));
    let env = |k: &str| (k == "SANDBOX_REAPER_INTERVAL_SECONDS").then(|| "2.5".to_string());
    let c = resolve(&merge(&defaults(), &env_layer(&env).unwrap())).unwrap();
    assert_eq!(c.docker.reaper_interval, Some(std::time::Duration::from_millis(2500)));
    for bad in [json!(-1), json!("30"), json!(1e12)] {
      let e = resolve(&merge(&defaults(), &json!({ "docker": { "reaperIntervalSeconds": bad } }))).unwrap_err();
      assert!(e.message.contains("docker.reaperIntervalSeconds"), "{}", e.message);
    }
    let bad_env = |k: &str| (k == "SANDBOX_REAPER_INTERVAL_SECONDS").then(|| "often".to_string());
    assert!(env_layer(&bad_env).unwrap_err().message.contains("SANDBOX_REAPER_INTERVAL_SECONDS"));
  }

  fn env_of(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    let vars = vars.to_vec();
    move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
  }

  fn resolved_env(vars: &[(&'static str, &'static str)]) -> (SandboxConfig, Vec<String>) {
    let (layer, warnings) = env_layer_warned(&env_of(vars)).unwrap();
    (resolve(&merge(&defaults(), &layer)).unwrap(), warnings)
  }

  #[test]
  fn seed_003_variables_map_to_the_config() {
    let (c, w) = resolved_env(&[
      ("CONTAINER_IMAGE", "sandbox-secure:latest"),
      ("MEMORY_LIMIT", "256m"),
      ("CPU_QUOTA", "25000"),
      ("SANDBOX_USER", "sandboxuser"),
      ("WORKSPACE_DIR", "/workspace/"),
      ("DOCKER_NETWORK_MODE", "none"),
      ("MAX_TOTAL_FILES", "1000"),
      ("MAX_WORKSPACE_SIZE_MB", "500"),
      ("CLEANUP_INTERVAL_SECONDS", "300"),
    ]);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.image, "sandbox-secure:latest");
    assert_eq!(c.limits.memory_mb, 256.0);
    assert_eq!(c.limits.cpu_cores, 0.25);
    assert_eq!(c.docker.user.as_deref(), Some("sandboxuser"));
    assert_eq!(c.workdir, "/workspace");
    assert_eq!(c.network_mode, NetworkMode::None);
    assert_eq!(c.limits.max_total_files, Some(1000));
    assert_eq!(c.limits.max_workspace_size_mb, Some(500.0));
    assert_eq!(c.docker.reaper_interval, Some(std::time::Duration::from_secs(300)));
  }

  #[test]
  fn the_librarys_own_variables_win_over_seed_003s() {
    let (c, w) = resolved_env(&[
      ("CONTAINER_IMAGE", "sandbox-secure:latest"),
      ("DOCKER_IMAGE", "busybox:1"),
      ("MEMORY_LIMIT", "256m"),
      ("SANDBOX_MEMORY_MB", "300"),
      ("CPU_QUOTA", "25000"),
      ("SANDBOX_CPU_CORES", "2"),
      ("DOCKER_NETWORK_MODE", "none"),
      ("SANDBOX_NETWORK_MODE", "bridge"),
      ("CLEANUP_INTERVAL_SECONDS", "300"),
      ("SANDBOX_REAPER_INTERVAL_SECONDS", "5"),
    ]);
    assert_eq!(c.image, "busybox:1");
    assert_eq!(c.limits.memory_mb, 300.0);
    assert_eq!(c.limits.cpu_cores, 2.0);
    assert_eq!(c.network_mode, NetworkMode::Bridge);
    assert_eq!(c.docker.reaper_interval, Some(std::time::Duration::from_secs(5)));
    for (seed, own, _) in SEED_ALIASES.iter().filter(|(_, own, _)| own.is_some()) {
      let own = own.unwrap();
      assert!(w.iter().any(|x| x.starts_with(&format!("environment variable {seed}=")) && x.contains(own)), "{seed}/{own}: {w:?}");
    }
    assert_eq!(w.len(), 5, "{w:?}");
    // a loser is not even parsed
    let (c, _) = resolved_env(&[("MEMORY_LIMIT", "lots"), ("SANDBOX_MEMORY_MB", "64")]);
    assert_eq!(c.limits.memory_mb, 64.0);
  }

  #[test]
  fn docker_sizes_quotas_and_network_modes() {
    for (raw, mb) in [("512m", 512.0), ("1g", 1024.0), ("1G", 1024.0), ("1.5g", 1536.0), ("524288k", 512.0), ("512MiB", 512.0), ("512mb", 512.0), ("268435456", 256.0), ("64 m", 64.0)] {
      assert_eq!(docker_memory_mb(raw).unwrap(), mb, "{raw}");
    }
    for raw in ["512", "lots", "12x", "-1g", "0m", "1k"] {
      let e = docker_memory_mb(raw).unwrap_err();
      assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig);
      assert!(e.message.contains("MEMORY_LIMIT"), "{}", e.message);
    }
    assert!(docker_memory_mb("512").unwrap_err().message.contains("did you mean \"512m\""));
    assert_eq!(docker_cpu_quota_cores("25000").unwrap(), 0.25);
    assert_eq!(docker_cpu_quota_cores("200000").unwrap(), 2.0);
    for raw in ["-1", "0", "999", "2.5", "quarter"] {
      let e = docker_cpu_quota_cores(raw).unwrap_err();
      assert!(e.message.contains("CPU_QUOTA") && e.message.contains("SANDBOX_CPU_CORES"), "{}", e.message);
    }
    assert_eq!(docker_network_mode("none").unwrap(), "none");
    assert_eq!(docker_network_mode("default").unwrap(), "bridge");
    assert_eq!(docker_network_mode("isolated").unwrap(), "isolated");
    assert!(docker_network_mode("host").unwrap_err().message.contains("host's network"));
    assert!(docker_network_mode("container:abc").unwrap_err().message.contains("DOCKER_NETWORK_MODE"));
  }

  #[test]
  fn bad_environment_values_name_the_variable() {
    for (var, raw) in [
      ("MEMORY_LIMIT", "512"),
      ("CPU_QUOTA", "-1"),
      ("DOCKER_NETWORK_MODE", "host"),
      ("WORKSPACE_DIR", "relative/dir"),
      ("MAX_TOTAL_FILES", "1.5"),
      ("MAX_WORKSPACE_SIZE_MB", "-3"),
      ("CLEANUP_INTERVAL_SECONDS", "often"),
      ("CLEANUP_INTERVAL_SECONDS", "-5"),
      ("SANDBOX_MEMORY_MB", "3"),
      ("SANDBOX_PIDS_LIMIT", "2"),
    ] {
      let e = env_layer(&env_of(&[(var, raw)])).unwrap_err();
      assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig, "{var}");
      assert!(e.message.contains(var), "{var} not in {}", e.message);
    }
    // the key's own rule is quoted too
    let e = env_layer(&env_of(&[("MAX_TOTAL_FILES", "1.5")])).unwrap_err();
    assert!(e.message.contains("limits.maxTotalFiles must be a whole number"), "{}", e.message);
  }

  #[test]
  fn normalize_applies_the_file_rules_to_any_config() {
    let get = env_of(&[("KEY", "e2b_abc"), ("IMG", "busybox:1")]);
    let given = json!({
      "docker": { "image": "${IMG}", "socketPath": "/s" },
      "e2b": { "apiKey": "${KEY}" },
      "security": { "readOnlyRoot": false, "dropCapabilities": ["NET_RAW"], "noNewPrivileges": false },
      "startupScript": "echo ${HOME}",
      "env": { "A": "${MISSING}", "B": "${MISSING:-dflt}" },
    });
    let (v, w) = normalize(given, "the SandboxManager config", &get).unwrap();
    assert_eq!(v["image"], "busybox:1");
    assert!(v["docker"].get("image").is_none());
    assert_eq!(v["e2b"]["apiKey"], "e2b_abc");
    assert_eq!(v["docker"]["readOnlyRoot"], false);
    assert_eq!(v["docker"]["capDrop"], json!(["NET_RAW"]));
    assert_eq!(v["docker"]["securityOpt"], json!([]));
    assert_eq!(v["docker"]["socketPath"], "/s");
    assert_eq!(v["startupScript"], "echo ${HOME}", "a shell script keeps its own variables");
    assert_eq!(v["env"]["A"], "");
    assert_eq!(v["env"]["B"], "dflt");
    assert!(v.get("security").is_none());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("${MISSING}") && w[0].contains("the SandboxManager config"), "{w:?}");
    let c = resolve(&merge(&defaults(), &v)).unwrap();
    assert!(!c.docker.read_only_root && c.docker.security_opt.is_empty());

    // both spellings in one config: the library's wins, the other is reported
    let (v, w) = normalize(
      json!({ "image": "a:1", "docker": { "image": "b:1", "capDrop": ["ALL"] }, "security": { "dropCapabilities": [], "sandboxing": "max" } }),
      "X",
      &no_env,
    )
    .unwrap();
    assert_eq!((v["image"].as_str(), &v["docker"]["capDrop"]), (Some("a:1"), &json!(["ALL"])));
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().any(|x| x.starts_with("docker.image in X has no effect")));
    assert!(w.iter().any(|x| x.starts_with("security.dropCapabilities in X has no effect") && x.contains("docker.capDrop")));
    assert!(w.iter().any(|x| x.starts_with("security.sandboxing in X has no effect")));

    for bad in [json!({ "security": { "noNewPrivileges": "yes" } }), json!({ "security": true }), json!({ "security": {}, "docker": "x" })] {
      let e = normalize(bad.clone(), "X", &no_env).unwrap_err();
      assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig, "{bad}");
    }
  }

  #[test]
  fn manager_layers_normalise_the_constructor_config_and_keep_what_was_given() {
    let dir = std::env::temp_dir().join(format!("sbx-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(RC_FILE), r#"{ "limits": { "diskMB": 50 }, "e2b": { "apiKey": "${NOPE}" } }"#).unwrap();
    let get = env_of(&[("SANDBOX_MEMORY_MB", "200"), ("CONTAINER_IMAGE", "x:1"), ("DOCKER_IMAGE", "y:1")]);
    let ctor = json!({ "docker": { "image": "z:1" }, "security": { "noNewPrivileges": true }, "debug": true });
    let l = manager_layers(&get, &dir, Some(&ctor)).unwrap();
    let c = resolve(&l.merged).unwrap();
    assert_eq!((c.image.as_str(), c.limits.memory_mb, c.limits.disk_mb), ("z:1", 200.0, 50.0));
    assert_eq!(l.given["limits"], json!({ "diskMB": 50, "memoryMB": 200.0 }));
    assert!(l.given.get("networkMode").is_none(), "defaults are not 'given'");
    assert_eq!(log_level(&l.merged).unwrap(), Some(crate::core::logging::Level::Debug));
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("${NOPE}") && l.warnings[0].contains(RC_FILE));
    assert!(l.warnings[1].contains("CONTAINER_IMAGE"));
    assert!(manager_layers(&get, &dir, Some(&json!([1]))).is_err());
    std::fs::remove_dir_all(dir).unwrap();
  }

  fn warned(given: Value, layer: Option<Value>) -> Vec<String> {
    let given = match &layer {
      Some(l) => merge(&given, l),
      None => given,
    };
    let cfg = resolve(&merge(&defaults(), &given)).unwrap();
    warnings(&cfg, &given, layer.as_ref())
  }

  #[test]
  fn warnings_for_keys_without_effect() {
    assert!(warned(json!({}), None).is_empty());
    assert!(warned(json!({ "limits": { "memoryMB": 256 }, "networkMode": "none", "docker": { "user": "1000" } }), None).is_empty());
    // the user guide's file, as it is, with the docker provider
    let seed_rc = json!({
      "provider": "docker",
      "limits": { "memoryMB": 512, "cpuCores": 1, "diskMB": 1024, "timeoutSeconds": 300 },
      "networkMode": "isolated", "autoCleanup": true,
      "image": "node:20-alpine", "docker": { "socketPath": "/var/run/docker.sock", "readOnlyRoot": true },
      "e2b": { "apiKey": "e2b_00", "templateId": "node-typescript", "region": "us-east-1" },
    });
    assert_eq!(warned(seed_rc.clone(), None), vec!["e2b has no effect: the provider is 'docker' and fallbackProviders does not name 'e2b'"]);
    // ... and switched to E2B
    let w = warned(merge(&seed_rc, &json!({ "provider": "e2b" })), None);
    for key in ["limits.memoryMB", "limits.cpuCores", "limits.diskMB", "networkMode 'isolated'", "image", "docker.socketPath", "docker.readOnlyRoot (or security.readOnlyRoot)", "e2b.region"] {
      assert!(w.iter().any(|x| x.starts_with(&format!("{key} has no effect"))), "{key}: {w:#?}");
    }
    assert!(!w.iter().any(|x| x.contains("timeoutSeconds has")), "{w:#?}");
    assert_eq!(w.len(), 8, "{w:#?}");
    // E2B maps 'none' (no internet) and network rules; 'bridge' is E2B's own network
    let e2b = json!({ "provider": "e2b", "e2b": { "apiKey": "e2b_00" } });
    for extra in [
      json!({ "networkMode": "none" }),
      json!({ "networkMode": "bridge" }),
      json!({ "networkMode": "restricted" }),
      json!({ "networkMode": "isolated", "network": { "allowOut": ["npm"], "denyOut": ["0.0.0.0/0"] } }),
    ] {
      assert!(warned(merge(&e2b, &extra), None).is_empty(), "{extra}");
    }
    // with a Docker fallback, the Docker settings count
    let w = warned(merge(&seed_rc, &json!({ "provider": "e2b", "fallbackProviders": ["docker", "e2b"] })), None);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with("e2b.region") && w[1].starts_with("fallbackProviders entry 'e2b'"), "{w:#?}");

    let w = warned(json!({ "debug": true, "verbose": true, "autoCleanup": false, "colour": "blue", "limits": { "networkMbps": 10 }, "docker": { "capdrop": ["ALL"] } }), None);
    assert_eq!(w.len(), 4, "{w:#?}");
    for start in ["colour is not a known config key", "autoCleanup: false has no effect", "limits.networkMbps has no effect", "docker.capdrop is not a known Docker option"] {
      assert!(w.iter().any(|x| x.starts_with(start)), "{start}: {w:#?}");
    }
    let w = warned(json!({ "provider": "e2b", "e2b": { "apiKey": "e2b_00", "template": "base" } }), None);
    assert_eq!(w, vec!["e2b.template is not a known E2B option, so it has no effect (known: apiKey, templateId, region, domain, apiUrl, sandboxUrl)"]);
    // manager-only keys in a createSandbox config
    let w = warned(json!({}), Some(json!({ "debug": true, "docker": { "reaperIntervalSeconds": 5 } })));
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with("debug in a createSandbox config has no effect") && w[1].starts_with("docker.reaperIntervalSeconds in a createSandbox"));
  }

  #[test]
  fn debug_and_verbose_must_be_booleans() {
    use crate::core::logging::Level;
    assert_eq!(log_level(&json!({})).unwrap(), None);
    assert_eq!(log_level(&json!({ "debug": false })).unwrap(), None);
    assert_eq!(log_level(&json!({ "debug": true })).unwrap(), Some(Level::Debug));
    assert_eq!(log_level(&json!({ "debug": true, "verbose": true })).unwrap(), Some(Level::Trace));
    let e = log_level(&json!({ "verbose": "yes" })).unwrap_err();
    assert!(e.message.starts_with("verbose must be a boolean"), "{}", e.message);
  }
}
