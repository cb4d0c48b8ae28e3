//! napi bindings: argument conversion and error mapping only. The logic lives in the plain Rust
//! modules (`config`, `manager`, `docker`), which `cargo test` exercises directly.

#![deny(clippy::all)]

pub mod config;
pub mod docker;
pub mod error;
pub mod manager;
pub mod paths;
pub mod types;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Once};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;

use crate::docker::sandbox::{ProgressFn, PullProgress};
use crate::docker::DockerSandbox;
use crate::error::SandboxError;

// ------------------------------------------------------------------ errors, logging, exit hooks

/// A JS `Error` whose `code` is the stable string code.
fn coded_error(env: &Env, e: &SandboxError) -> Error {
  match env.create_error(Error::new(Status::GenericFailure, e.message.clone())) {
    Ok(mut obj) => {
      let _ = obj.set_named_property("code", e.code.as_str());
      Error::from(obj.to_unknown())
    }
    Err(err) => err,
  }
}

/// Run `fut` on napi's tokio runtime; a `SandboxError` rejects the Promise with `err.code` set.
fn promise<'env, T, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, T>>
where
  T: ToNapiValue + Send + 'static,
  F: Future<Output = std::result::Result<T, SandboxError>> + Send + 'static,
{
  env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, res| res.map_err(|e| coded_error(env, &e)))
}

fn throw_coded(env: &Env, e: SandboxError) -> Error {
  coded_error(env, &e)
}

fn init_tracing() {
  static INIT: Once = Once::new();
  INIT.call_once(|| {
    let filter = match (std::env::var("RUST_LOG"), std::env::var("DEBUG")) {
      (Ok(f), _) if !f.is_empty() => f,
      (_, Ok(d)) if !d.is_empty() && d != "0" && d != "false" => "agentic_sandbox=debug".to_string(),
      _ => return, // silent by default: the library never prints unless asked
    };
    let _ = tracing_subscriber::fmt()
      .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
      .with_writer(std::io::stderr)
      .try_init();
  });
}

const EXIT_HOOK_JS: &str = r#"(function (cleanup) {
  const run = () => { try { cleanup() } catch (_) {} };
  process.on('exit', run);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      run();
      // when nobody else handles the signal, keep Node's default: die by it
      if (process.listenerCount(sig) === 1) { process.removeListener(sig, onSignal); process.kill(process.pid, sig); }
    };
    process.on(sig, onSignal);
  }
})"#;

/// Once per process: on `exit`, SIGINT, SIGTERM and SIGHUP, synchronously remove every container,
/// volume and network that live sandboxes still own.
fn install_exit_hooks(env: &Env) -> Result<()> {
  static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
  if INSTALLED.swap(true, std::sync::atomic::Ordering::SeqCst) {
    return Ok(());
  }
  let cleanup = env.create_function_from_closure::<(), (), _>("agenticSandboxCleanup", |_ctx| {
    docker::cleanup_all_sync();
    Ok(())
  })?;
  let install: Function<Function<(), ()>, ()> = env.run_script(EXIT_HOOK_JS)?;
  install.call(cleanup)
}

// ------------------------------------------------------------------ JS shapes

#[napi(string_enum)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum SandboxState {
  #[napi(value = "created")]
  CREATED,
  #[napi(value = "starting")]
  STARTING,
  #[napi(value = "running")]
  RUNNING,
  #[napi(value = "stopping")]
  STOPPING,
  #[napi(value = "stopped")]
  STOPPED,
  #[napi(value = "destroyed")]
  DESTROYED,
  #[napi(value = "error")]
  ERROR,
}

impl From<types::State> for SandboxState {
  fn from(s: types::State) -> Self {
    match s {
      types::State::Created => SandboxState::CREATED,
      types::State::Starting => SandboxState::STARTING,
      types::State::Running => SandboxState::RUNNING,
      types::State::Stopping => SandboxState::STOPPING,
      types::State::Stopped => SandboxState::STOPPED,
      types::State::Destroyed => SandboxState::DESTROYED,
      types::State::Error => SandboxState::ERROR,
    }
  }
}

/// Resource limits. Defaults: memoryMB 512, cpuCores 1, diskMB 1024, timeoutSeconds 300, pidsLimit 256.
#[napi(object)]
pub struct ResourceLimits {
  /// Memory limit in MB; swap is limited to the same amount (no extra swap). OOM kills show as exit code 137.
  #[napi(js_name = "memoryMB")]
  pub memory_mb: Option<f64>,
  /// CPU cores, fractions allowed (Docker NanoCpus).
  pub cpu_cores: Option<f64>,
  /// Size cap of the workspace (a tmpfs volume at `workdir`; its pages count toward memoryMB).
  #[napi(js_name = "diskMB")]
  pub disk_mb: Option<f64>,
  /// Accepted for compatibility; not enforced by the docker provider.
  pub network_mbps: Option<f64>,
  /// Default timeout of `execute` in seconds.
  pub timeout_seconds: Option<f64>,
  /// Maximum number of processes in the sandbox (fork-bomb guard).
  pub pids_limit: Option<f64>,
}

#[napi(object)]
pub struct RegistryAuth {
  pub username: String,
  pub password: String,
  pub serveraddress: Option<String>,
}

/// Docker-specific options. Security defaults: readOnlyRoot true, capDrop ['ALL'],
/// securityOpt ['no-new-privileges'], tmpfs ['/tmp:rw,noexec,nosuid,size=100m'].
#[napi(object)]
pub struct DockerOptions {
  /// Engine socket; default: DOCKER_HOST, else /var/run/docker.sock (env DOCKER_SOCKET_PATH).
  pub socket_path: Option<String>,
  /// Credentials used when the image has to be pulled.
  pub registry_auth: Option<RegistryAuth>,
  pub read_only_root: Option<bool>,
  pub cap_drop: Option<Vec<String>>,
  pub security_opt: Option<Vec<String>>,
  /// User (name or uid[:gid]) for the container and every execute.
  pub user: Option<String>,
  /// tmpfs mounts as 'path:options'.
  pub tmpfs: Option<Vec<String>>,
  /// Keep the image's own entrypoint/command running (default: true when the image EXPOSEs ports,
  /// e.g. postgres; otherwise the sandbox idles on `sleep infinity`).
  pub keep_image_command: Option<bool>,
}

/// Sandbox configuration (all optional; see README "Configuration").
#[napi(object)]
pub struct SandboxConfig {
  #[napi(ts_type = "'docker' | 'e2b'")]
  pub provider: Option<String>,
  /// Image; default 'node:20-alpine' (env DOCKER_IMAGE).
  pub image: Option<String>,
  pub limits: Option<ResourceLimits>,
  /// 'none': no network at all; 'isolated' (default): a private internal network with no route out
  /// and no access to the host; 'bridge': Docker's default bridge with normal egress.
  #[napi(ts_type = "'none' | 'isolated' | 'bridge'")]
  pub network_mode: Option<String>,
  pub env: Option<HashMap<String, String>>,
  /// Working directory and workspace mount point; default '/workspace'.
  pub workdir: Option<String>,
  /// Request all GPUs (needs the NVIDIA container runtime on the Docker host).
  pub gpu: Option<bool>,
  #[napi(ts_type = "Record<string, any>")]
  pub metadata: Option<Value>,
  #[napi(ts_type = "{ apiKey?: string; templateId?: string; region?: string }")]
  pub e2b: Option<Value>,
  pub docker: Option<DockerOptions>,
}

#[napi(object)]
pub struct ExecutionResult {
  /// 0 = success; 124 = timed out; 127 = command not found; 137 = killed (e.g. out of memory).
  pub exit_code: i32,
  pub stdout: String,
  pub stderr: String,
  pub duration_ms: f64,
  pub timed_out: bool,
  /// Output beyond `maxOutputBytes` (per stream) was dropped.
  pub truncated: bool,
}

#[napi(object)]
pub struct FileOperation {
  /// The resolved absolute path inside the sandbox.
  pub path: String,
  /// File content (reads): UTF-8 text, or base64 with `{ encoding: 'base64' }`.
  pub content: Option<String>,
  /// File content as bytes, with `{ encoding: 'buffer' }`.
  pub buffer: Option<Buffer>,
  pub success: bool,
  pub error: Option<String>,
}

#[napi(object)]
pub struct FileInfo {
  /// Path relative to the listed directory.
  pub path: String,
  pub name: String,
  #[napi(ts_type = "'file' | 'directory' | 'symlink' | 'other'")]
  pub r#type: String,
  pub size: f64,
  pub mtime_ms: f64,
  /// Octal permission bits, e.g. '644'.
  pub permissions: String,
}

#[napi(object)]
pub struct ResourceStats {
  #[napi(js_name = "memoryUsageMB")]
  pub memory_usage_mb: f64,
  pub cpu_percent: f64,
  #[napi(js_name = "diskUsageMB")]
  pub disk_usage_mb: f64,
  #[napi(js_name = "networkRxMB")]
  pub network_rx_mb: f64,
  #[napi(js_name = "networkTxMB")]
  pub network_tx_mb: f64,
}

#[napi(object)]
pub struct HealthCheckResult {
  pub healthy: bool,
  pub message: Option<String>,
}

#[napi(object)]
pub struct SandboxStatsEntry {
  pub id: String,
  pub provider: String,
  pub stats: ResourceStats,
}

#[napi(object)]
pub struct SandboxHealthEntry {
  pub id: String,
  pub provider: String,
  pub health: HealthCheckResult,
}

#[napi(object)]
pub struct ExecuteOptions {
  /// Timeout in seconds (default: limits.timeoutSeconds).
  pub timeout: Option<f64>,
  pub env: Option<HashMap<String, String>>,
  /// Working directory; relative paths resolve against the sandbox workdir.
  pub workdir: Option<String>,
  /// Per-stream output cap in bytes (default 16 MiB); output beyond it is dropped and `truncated` set.
  pub max_output_bytes: Option<f64>,
}

#[napi(object)]
pub struct ReadFileOptions {
  #[napi(ts_type = "'utf8' | 'base64' | 'buffer'")]
  pub encoding: Option<String>,
}

#[napi(object)]
pub struct ListFilesOptions {
  /// Descend into subdirectories (paths are then relative to the listed directory).
  pub recursive: Option<bool>,
  /// Include dotfiles.
  pub all: Option<bool>,
}

#[napi(object)]
pub struct DeleteFileOptions {
  pub recursive: Option<bool>,
}

#[napi(object)]
pub struct PullProgressEvent {
  pub status: String,
  pub id: Option<String>,
  pub progress: Option<String>,
}

#[napi(object, object_to_js = false)]
pub struct StartOptions {
  /// Image pull progress (only called when the image is missing and gets pulled).
  #[napi(ts_type = "(event: PullProgressEvent) => void")]
  pub on_progress: Option<ThreadsafeFunction<PullProgressEvent, (), PullProgressEvent, Status, false, true>>,
}

fn limits_js(l: &config::ResourceLimits) -> ResourceLimits {
  ResourceLimits {
    memory_mb: Some(l.memory_mb),
    cpu_cores: Some(l.cpu_cores),
    disk_mb: Some(l.disk_mb),
    network_mbps: l.network_mbps,
    timeout_seconds: Some(l.timeout_seconds),
    pids_limit: Some(l.pids_limit as f64),
  }
}

fn stats_js(s: types::Stats) -> ResourceStats {
  ResourceStats {
    memory_usage_mb: s.memory_usage_mb,
    cpu_percent: s.cpu_percent,
    disk_usage_mb: s.disk_usage_mb,
    network_rx_mb: s.network_rx_mb,
    network_tx_mb: s.network_tx_mb,
  }
}

fn health_js(h: types::Health) -> HealthCheckResult {
  HealthCheckResult { healthy: h.healthy, message: h.message }
}

fn file_op_js(op: types::FileOp, encoding: &str) -> FileOperation {
  let (content, buffer) = match (op.content, encoding) {
    (Some(bytes), "buffer") => (None, Some(Buffer::from(bytes))),
    (Some(bytes), "base64") => (Some(base64_encode(&bytes)), None),
    (Some(bytes), _) => (Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())), None),
    (None, _) => (None, None),
  };
  FileOperation { path: op.path, content, buffer, success: op.success, error: op.error }
}

fn base64_encode(bytes: &[u8]) -> String {
  use base64::Engine;
  base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn lossy(bytes: Vec<u8>) -> String {
  String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// ------------------------------------------------------------------ classes

/// Creates, tracks and destroys sandboxes. Configuration precedence: built-in defaults <
/// `.sandboxrc.json` < `SANDBOX_*` environment variables < `defaultConfig` < `createSandbox(config)`.
#[napi]
pub struct SandboxManager {
  inner: Arc<manager::Manager>,
}

#[napi]
impl SandboxManager {
  /// Throws `INVALID_CONFIG` (synchronously) when the merged configuration is invalid.
  #[napi(constructor, ts_args_type = "defaultConfig?: SandboxConfig")]
  pub fn new(env: Env, default_config: Option<Value>) -> Result<Self> {
    init_tracing();
    install_exit_hooks(&env)?;
    let inner = manager::Manager::new(default_config.as_ref()).map_err(|e| throw_coded(&env, e))?;
    Ok(Self { inner: Arc::new(inner) })
  }

  /// The effective defaults (built-in < .sandboxrc.json < environment < constructor config).
  #[napi(getter, ts_return_type = "SandboxConfig")]
  pub fn default_config(&self) -> Value {
    self.inner.defaults().clone()
  }

  /// Creates a sandbox (does not start it). Rejects with `INVALID_CONFIG` or `PROVIDER_UNAVAILABLE`.
  #[napi(ts_args_type = "config?: SandboxConfig", ts_return_type = "Promise<Sandbox>")]
  pub fn create_sandbox<'env>(&self, env: &'env Env, config: Option<Value>) -> Result<PromiseRaw<'env, Sandbox>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.create(config.as_ref()).map(|s| Sandbox { inner: s }) })
  }

  #[napi(ts_return_type = "Sandbox | undefined")]
  pub fn get_sandbox(&self, id: String) -> Either<Sandbox, ()> {
    match self.inner.get(&id) {
      Some(s) => Either::A(Sandbox { inner: s }),
      None => Either::B(()),
    }
  }

  #[napi]
  pub fn list_sandboxes(&self) -> Vec<Sandbox> {
    self.inner.list().into_iter().map(|s| Sandbox { inner: s }).collect()
  }

  /// Destroys one sandbox; an unknown id resolves (nothing to do).
  #[napi(ts_return_type = "Promise<void>")]
  pub fn destroy_sandbox<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.destroy(&id).await })
  }

  /// Destroys every sandbox of this manager (all are attempted; failures are reported together).
  #[napi(ts_return_type = "Promise<void>")]
  pub fn destroy_all<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.destroy_all().await })
  }

  #[napi(ts_return_type = "Promise<Array<SandboxStatsEntry>>")]
  pub fn get_all_stats<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<SandboxStatsEntry>>> {
    let inner = self.inner.clone();
    promise(env, async move {
      Ok(inner.all_stats().await.into_iter().map(|(id, p, s)| SandboxStatsEntry { id, provider: p.into(), stats: stats_js(s) }).collect())
    })
  }

  #[napi(ts_return_type = "Promise<Array<SandboxHealthEntry>>")]
  pub fn health_check_all<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<SandboxHealthEntry>>> {
    let inner = self.inner.clone();
    promise(env, async move {
      Ok(inner.health_all().await.into_iter().map(|(id, p, h)| SandboxHealthEntry { id, provider: p.into(), health: health_js(h) }).collect())
    })
  }
}

/// One sandbox. Get it from `SandboxManager.createSandbox()`.
#[napi]
pub struct Sandbox {
  inner: Arc<DockerSandbox>,
}

#[napi]
impl Sandbox {
  /// 'docker-' followed by 16 hex digits; also the container's name.
  #[napi(getter)]
  pub fn id(&self) -> String {
    self.inner.id.clone()
  }

  #[napi(getter, ts_return_type = "'docker' | 'e2b'")]
  pub fn provider(&self) -> String {
    self.inner.config.provider.as_str().to_string()
  }

  #[napi(getter)]
  pub fn state(&self) -> SandboxState {
    self.inner.state().into()
  }

  #[napi(getter)]
  pub fn limits(&self) -> ResourceLimits {
    limits_js(&self.inner.config.limits)
  }

  /// Starts the sandbox (pulls the image if missing, creates volume, network and container), or
  /// resumes it after `stop()`. Rejects with PROVIDER_UNAVAILABLE, IMAGE_NOT_FOUND, INVALID_CONFIG,
  /// INSUFFICIENT_RESOURCES or PROVIDER_ERROR; nothing is left behind when it fails.
  #[napi(ts_args_type = "options?: StartOptions", ts_return_type = "Promise<void>")]
  pub fn start<'env>(&self, env: &'env Env, options: Option<StartOptions>) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    let progress: Option<ProgressFn> = options.and_then(|o| o.on_progress).map(|tsfn| {
      let tsfn = Arc::new(tsfn);
      Arc::new(move |p: PullProgress| {
        tsfn.call(
          PullProgressEvent { status: p.status, id: p.id, progress: p.progress },
          ThreadsafeFunctionCallMode::NonBlocking,
        );
      }) as ProgressFn
    });
    promise(env, async move { inner.start(progress).await })
  }

  /// Runs `command` with `args` as a real argv (no shell). Resolves with the result also for
  /// non-zero exits and timeouts (`timedOut: true`, exit code 124); rejects with
  /// SANDBOX_NOT_RUNNING when the sandbox is not running.
  #[napi(ts_args_type = "command: string, args?: string[], options?: ExecuteOptions", ts_return_type = "Promise<ExecutionResult>")]
  pub fn execute<'env>(
    &self,
    env: &'env Env,
    command: String,
    args: Option<Vec<String>>,
    options: Option<ExecuteOptions>,
  ) -> Result<PromiseRaw<'env, ExecutionResult>> {
    let inner = self.inner.clone();
    let opts = options.map(|o| types::ExecOptions {
      timeout: o.timeout,
      env: o.env.unwrap_or_default().into_iter().collect(),
      workdir: o.workdir,
      max_output_bytes: o.max_output_bytes.map(|n| n.max(0.0) as usize),
    });
    promise(env, async move {
      let r = inner.execute(&command, &args.unwrap_or_default(), opts.unwrap_or_default()).await?;
      Ok(ExecutionResult {
        exit_code: r.exit_code as i32,
        stdout: lossy(r.stdout),
        stderr: lossy(r.stderr),
        duration_ms: (r.duration_ms * 100.0).round() / 100.0,
        timed_out: r.timed_out,
        truncated: r.truncated,
      })
    })
  }

  /// Writes a file (string or Buffer), creating parent directories; atomic (temp file + rename).
  /// Never throws: failures come back as `{ success: false, error }`.
  #[napi(ts_args_type = "path: string, content: string | Buffer | Uint8Array", ts_return_type = "Promise<FileOperation>")]
  pub fn write_file<'env>(&self, env: &'env Env, path: String, content: Either<String, Uint8Array>) -> Result<PromiseRaw<'env, FileOperation>> {
    let inner = self.inner.clone();
    let bytes = match content {
      Either::A(s) => s.into_bytes(),
      Either::B(b) => b.to_vec(),
    };
    promise(env, async move { Ok(file_op_js(inner.write_file(&path, bytes).await, "utf8")) })
  }

  /// Reads a file. `content` is UTF-8 text by default; `{ encoding: 'base64' }` or
  /// `{ encoding: 'buffer' }` (fills `buffer`) for binary files.
  #[napi(ts_args_type = "path: string, options?: ReadFileOptions", ts_return_type = "Promise<FileOperation>")]
  pub fn read_file<'env>(&self, env: &'env Env, path: String, options: Option<ReadFileOptions>) -> Result<PromiseRaw<'env, FileOperation>> {
    let inner = self.inner.clone();
    let encoding = options.and_then(|o| o.encoding).unwrap_or_else(|| "utf8".into());
    if !["utf8", "utf-8", "base64", "buffer"].contains(&encoding.as_str()) {
      return Err(throw_coded(
        env,
        SandboxError::invalid_argument(format!("encoding must be 'utf8', 'base64' or 'buffer', got {encoding:?}")),
      ));
    }
    promise(env, async move { Ok(file_op_js(inner.read_file(&path).await, &encoding)) })
  }

  /// Names in a directory (default: the workdir), like `ls -1`: no dotfiles unless `{ all: true }`;
  /// `{ recursive: true }` lists relative paths of the whole tree. `[]` when the sandbox is not
  /// running or the directory cannot be read.
  #[napi(ts_args_type = "path?: string, options?: ListFilesOptions", ts_return_type = "Promise<string[]>")]
  pub fn list_files<'env>(&self, env: &'env Env, path: Option<String>, options: Option<ListFilesOptions>) -> Result<PromiseRaw<'env, Vec<String>>> {
    let inner = self.inner.clone();
    let recursive = options.as_ref().and_then(|o| o.recursive).unwrap_or(false);
    let all = options.as_ref().and_then(|o| o.all).unwrap_or(false);
    let path = path.unwrap_or_else(|| ".".into());
    promise(env, async move {
      let r = if recursive {
        inner.list_files_detailed(&path, true, all).await.map(|v| v.into_iter().map(|f| f.path).collect())
      } else {
        inner.list_files(&path, all).await
      };
      Ok(r.unwrap_or_else(|e| {
        tracing::debug!(sandbox = %inner.id, error = %e, "listFiles failed");
        Vec::new()
      }))
    })
  }

  /// Entries with type, size, mtime and permissions (`{ recursive, all }` as for listFiles).
  /// Rejects (unlike listFiles) when the directory cannot be listed.
  #[napi(ts_args_type = "path?: string, options?: ListFilesOptions", ts_return_type = "Promise<FileInfo[]>")]
  pub fn list_files_detailed<'env>(&self, env: &'env Env, path: Option<String>, options: Option<ListFilesOptions>) -> Result<PromiseRaw<'env, Vec<FileInfo>>> {
    let inner = self.inner.clone();
    let recursive = options.as_ref().and_then(|o| o.recursive).unwrap_or(false);
    let all = options.as_ref().and_then(|o| o.all).unwrap_or(false);
    let path = path.unwrap_or_else(|| ".".into());
    promise(env, async move {
      let v = inner.list_files_detailed(&path, recursive, all).await?;
      Ok(
        v.into_iter()
          .map(|f| FileInfo { path: f.path, name: f.name, r#type: f.kind.into(), size: f.size, mtime_ms: f.mtime_ms, permissions: f.permissions })
          .collect(),
      )
    })
  }

  /// Deletes a file (`rm -f`; a missing file is a success). `{ recursive: true }` removes directories.
  #[napi(ts_args_type = "path: string, options?: DeleteFileOptions", ts_return_type = "Promise<FileOperation>")]
  pub fn delete_file<'env>(&self, env: &'env Env, path: String, options: Option<DeleteFileOptions>) -> Result<PromiseRaw<'env, FileOperation>> {
    let inner = self.inner.clone();
    let recursive = options.and_then(|o| o.recursive).unwrap_or(false);
    promise(env, async move { Ok(file_op_js(inner.delete_file(&path, recursive).await, "utf8")) })
  }

  /// Ends every process started in the sandbox and freezes it; the workspace is kept and
  /// `start()` resumes it. No-op unless running.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn stop<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.stop().await })
  }

  /// Removes the container, then the workspace volume, then the network.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn destroy<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.destroy().await })
  }

  /// Memory (MB, without reclaimable page cache), CPU % (of one core, since the previous call),
  /// workspace disk usage (MB) and network rx/tx (MB). Zeros when not running.
  #[napi(ts_return_type = "Promise<ResourceStats>")]
  pub fn get_stats<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ResourceStats>> {
    let inner = self.inner.clone();
    promise(env, async move {
      if inner.state() != types::State::Running {
        return Ok(stats_js(types::Stats::default()));
      }
      inner.stats().await.map(stats_js)
    })
  }

  /// Runs a probe command in the sandbox; `{ healthy: false, message }` when it is not running or does not answer.
  #[napi(ts_return_type = "Promise<HealthCheckResult>")]
  pub fn health_check<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, HealthCheckResult>> {
    let inner = self.inner.clone();
    promise(env, async move { Ok(health_js(inner.health().await)) })
  }
}

#[cfg(test)]
mod tests {
  #[test]
  fn base64() {
    assert_eq!(super::base64_encode(b""), "");
    assert_eq!(super::base64_encode(b"f"), "Zg==");
    assert_eq!(super::base64_encode(b"fo"), "Zm8=");
    assert_eq!(super::base64_encode(b"foobar"), "Zm9vYmFy");
  }
}
