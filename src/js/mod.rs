//! The napi classes and functions JavaScript sees: argument conversion and error mapping only.
//! The logic lives in the plain Rust modules (`core`, `providers`, `service`, `executor`), which
//! `cargo test` exercises directly.

mod contexts;
mod executor;
mod providers;
mod server;
mod service;
mod snapshot;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi_derive::napi;
use serde_json::Value;

use crate::core::{config, error, manager, pool, sandbox, types};
use crate::providers::{docker, e2b};
use crate::providers::docker::sandbox::{ProgressFn, PullProgress};
use crate::core::process::OutStream;
use crate::core::sandbox::AnySandbox;
use crate::core::error::SandboxError;

// ------------------------------------------------------------------ errors, logging, exit hooks

/// A JS `Error` whose `code` is the stable string code.
fn coded_error(env: &Env, e: &SandboxError) -> Error {
  match env.create_error(Error::new(Status::GenericFailure, e.message.clone())) {
    Ok(mut obj) => {
      let _ = obj.set_named_property("code", e.code_str());
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

/// Silent by default: the library never prints unless asked (see `core::logging`).
fn init_tracing() {
  crate::core::logging::init();
}

const EXIT_HOOK_JS: &str = r#"(function (cleanup) {
  const run = () => { try { cleanup() } catch (_) {} };
  process.on('exit', run);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      // when nobody else handles the signal, keep Node's default: clean up and die by it; a
      // program that handles it (a server's graceful shutdown) exits when it is done, and 'exit'
      // cleans up then
      if (process.listenerCount(sig) === 1) { run(); process.removeListener(sig, onSignal); process.kill(process.pid, sig); }
    };
    process.on(sig, onSignal);
  }
})"#;

/// Once per process: on `exit`, and on SIGINT, SIGTERM and SIGHUP that nothing else handles,
/// synchronously remove every container, volume and network that live sandboxes still own. When
/// the program handles the signal itself (the sandbox service's and the MCP server's graceful
/// shutdowns), the removal waits for its exit, so in-flight calls can finish first.
fn install_exit_hooks(env: &Env) -> Result<()> {
  static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
  if INSTALLED.swap(true, std::sync::atomic::Ordering::SeqCst) {
    return Ok(());
  }
  let cleanup = env.create_function_from_closure::<(), (), _>("agenticSandboxCleanup", |_ctx| {
    docker::cleanup_all_sync();
    e2b::kill_all_sync();
    crate::providers::remote::kill_all_sync();
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
  /// Largest file writeFile / uploadFile / the agent's Write may create, in MB (default 100;
  /// env MAX_FILE_SIZE_MB). Over it: QUOTA_EXCEEDED, nothing written.
  #[napi(js_name = "maxFileSizeMB")]
  pub max_file_size_mb: Option<f64>,
  /// Most files (not directories) the workspace may hold after a write through the file API
  /// (default: no limit; env MAX_TOTAL_FILES).
  pub max_total_files: Option<f64>,
  /// Largest total size of the workspace's files after a write through the file API, in MB
  /// (default: no limit; env MAX_WORKSPACE_SIZE_MB).
  #[napi(js_name = "maxWorkspaceSizeMB")]
  pub max_workspace_size_mb: Option<f64>,
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
  /// User (name or uid[:gid]) of every execute, file operation and the guest. Default: the image's
  /// user unless it is empty or root, else '1000:1000' (with HOME=/tmp unless `env` sets HOME).
  pub user: Option<String>,
  /// tmpfs mounts as 'path:options'.
  pub tmpfs: Option<Vec<String>>,
  /// Keep the image's own entrypoint/command running (default: true when the image EXPOSEs ports,
  /// e.g. postgres; otherwise the guest daemon, or the exec engine's watchdog loop, is the command).
  pub keep_image_command: Option<bool>,
  /// OCI runtime of the container, e.g. 'runsc' (env SANDBOX_DOCKER_RUNTIME); default: the engine's.
  /// An unknown runtime rejects start() with INVALID_CONFIG.
  pub runtime: Option<String>,
  /// IPv4 range the per-sandbox /28 networks of networkMode 'isolated' come from
  /// (env SANDBOX_ISOLATED_SUBNET_POOL). @default '10.213.0.0/16'
  pub isolated_subnet_pool: Option<String>,
  /// Seconds between sweeps of the stale-resource reaper on this engine (default 30; 0: only
  /// the sweep at the first connect; env SANDBOX_REAPER_INTERVAL_SECONDS). Process-wide per
  /// engine, taken from a manager's configuration.
  pub reaper_interval_seconds: Option<f64>,
  /// Names mapped to IPv4 addresses, in the sandbox's /etc/hosts and in its egress gateway's
  /// resolver alike (README "Network"), e.g. `{ 'db.internal': '172.30.0.5' }`.
  pub extra_hosts: Option<HashMap<String, String>>,
  /// The Docker network the egress gateway of a sandbox with `network` rules reaches the outside
  /// through. @default 'bridge'
  pub egress_network: Option<String>,
  /// The user guide's spelling of the top-level `image` (which wins when both are given).
  pub image: Option<String>,
}

/// Sandbox configuration (all optional; see README "Configuration").
#[napi(object)]
pub struct SandboxConfig {
  /// 'docker' (default), 'e2b', 'remote' (a sandbox service: see `remote`), or the name of a
  /// provider registered with `registerProvider`.
  #[napi(ts_type = "'docker' | 'e2b' | 'remote' | (string & {})")]
  pub provider: Option<String>,
  /// Image; default 'node:20-alpine' (env DOCKER_IMAGE).
  pub image: Option<String>,
  pub limits: Option<ResourceLimits>,
  /// 'none': no network at all; 'isolated' (default): a private internal network with no route out
  /// and no access to the host; 'bridge': Docker's default bridge with normal egress.
  /// 'restricted': behind the egress gateway, with the rules of `network` (no rules: nothing out).
  #[napi(ts_type = "'none' | 'isolated' | 'bridge' | 'restricted'")]
  pub network_mode: Option<String>,
  /// Egress rules, enforced outside the sandbox by a gateway (README "Network"): entries are
  /// domains (`*.` wildcards), IPv4 addresses and CIDRs, each optionally with `:port`, or presets
  /// ('npm', 'pypi', 'github', 'crates', 'go', 'debian', 'registries'). An allowOut entry wins
  /// over denyOut; what neither names is allowed, except the fixed deny set (private, loopback,
  /// link-local incl. 169.254.169.254, multicast, the engine host), which only an allowOut entry
  /// naming such an address lifts. Allow only some hosts: `{ allowOut: [...], denyOut: ['0.0.0.0/0'] }`.
  /// Seed 000's `{ policy: 'restricted', allowedHosts }` is the same allow list.
  #[napi(ts_type = "NetworkRules | { policy?: 'restricted' | 'open'; allowedHosts?: string[] }")]
  pub network: Option<Value>,
  pub env: Option<HashMap<String, String>>,
  /// Working directory and workspace mount point; default '/workspace' (with `fromSnapshot`: the
  /// snapshot's).
  pub workdir: Option<String>,
  /// Start from a snapshot taken with `sandbox.snapshot()` (docker provider only): its image, its
  /// workspace files, and its workdir unless `workdir` is given. An `image` or `template` of the
  /// same config is INVALID_CONFIG; an unknown name SNAPSHOT_NOT_FOUND.
  pub from_snapshot: Option<String>,
  /// Request all GPUs (needs the NVIDIA container runtime on the Docker host).
  pub gpu: Option<bool>,
  /// The sandbox outlives the process that made it (not removed at exit) until `lifetimeSeconds`
  /// after its start; any process on the same Docker engine re-attaches it with
  /// `manager.connect(id)`. Docker provider only, without `network` rules. See README
  /// "Persistent sandboxes".
  pub persistent: Option<bool>,
  /// A persistent sandbox's lifetime in seconds (default 3600, at most 30 days); at its end the
  /// sandbox ends and is removed, whether or not a process holds it.
  pub lifetime_seconds: Option<f64>,
  #[napi(ts_type = "Record<string, any>")]
  pub metadata: Option<Value>,
  /// E2B options (see README "The E2B provider"); `region` is informational.
  #[napi(js_name = "e2b", ts_type = "{ apiKey?: string; templateId?: string; region?: string; domain?: string; apiUrl?: string; sandboxUrl?: string }")]
  pub e2b: Option<Value>,
  /// With provider 'remote': the sandbox service (`agentic-sandbox serve`) to run sandboxes on;
  /// `url` defaults to SANDBOX_SERVICE_URL, `apiKey` to SANDBOX_API_KEY, `timeoutSeconds` (each
  /// call's deadline) to 60. See README "Remote mode".
  #[napi(ts_type = "{ url?: string; apiKey?: string; timeoutSeconds?: number }")]
  pub remote: Option<Value>,
  pub docker: Option<DockerOptions>,
  /// Providers to try, in order, when `start()` cannot get a sandbox from `provider` for
  /// availability reasons (e.g. `['docker']` behind `provider: 'e2b'`).
  #[napi(ts_type = "Array<'docker' | 'e2b' | (string & {})>")]
  pub fallback_providers: Option<Vec<String>>,
  /// A display name, shown by getStatus() and manager.list().
  pub name: Option<String>,
  /// 'base' | 'python' | 'node' | 'nodejs' | 'go' | a name from `templates`: picks the image (unless
  /// this same config gives `image`), the package manager of installPackages and runCode's default language.
  pub template: Option<String>,
  /// Overrides or extends the template table: name → image, or { image, packageManager }.
  #[napi(ts_type = "Record<string, string | { image?: string; packageManager?: 'pip' | 'npm' | 'apt' | 'none' }>")]
  pub templates: Option<Value>,
  /// Installed at the first start with the template's package manager (pip: into
  /// `<workdir>/.packages/python`, on PYTHONPATH; npm: `npm install` in the workdir). Needs
  /// networkMode 'bridge' on Docker.
  pub install_packages: Option<Vec<String>>,
  /// A shell script run (/bin/sh -c, in the workdir) at the first start, after installPackages.
  /// A non-zero exit fails start() with EXECUTION_ERROR and destroys the sandbox.
  pub startup_script: Option<String>,
  /// Programs allowed / denied (glob patterns on the program's name), checked before every
  /// command, including each command of a `sh -c` script. Defence in depth, not a security boundary.
  #[napi(ts_type = "{ allow?: string[]; deny?: string[] }")]
  pub command_policy: Option<Value>,
  /// The user guide's spelling of docker.readOnlyRoot / docker.capDrop / docker.securityOpt
  /// (noNewPrivileges: true means securityOpt ['no-new-privileges']); docker.* wins when both are given.
  #[napi(ts_type = "{ readOnlyRoot?: boolean; dropCapabilities?: string[]; noNewPrivileges?: boolean }")]
  pub security: Option<Value>,
  /// true: the library's debug log on stderr from now on (process-wide; manager config only).
  pub debug: Option<bool>,
  /// true: the library's trace log on stderr from now on (process-wide; manager config only).
  pub verbose: Option<bool>,
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
  /// The signal that ended the process ('SIGKILL', ...), when one did. The guest engine knows it
  /// exactly; the exec engine infers it from a shell-style status 129–192.
  pub signal: Option<String>,
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
  /// A stable code when the failure is one a caller may act on: 'QUOTA_EXCEEDED',
  /// 'SANDBOX_NOT_FOUND' (an expired session without autoRetry), 'INVALID_ARGUMENT'.
  pub code: Option<String>,
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

pub(crate) type ChunkFn = ThreadsafeFunction<String, UnknownReturnValue, String, Status, false, true>;

#[napi(object, object_to_js = false)]
pub struct ExecuteOptions<'a> {
  /// Timeout in seconds (default: limits.timeoutSeconds; background processes: none).
  pub timeout: Option<f64>,
  pub env: Option<HashMap<String, String>>,
  /// Working directory; relative paths resolve against the sandbox workdir.
  pub workdir: Option<String>,
  /// Per-stream output cap in bytes (default 16 MiB); output beyond it is dropped and `truncated` set.
  pub max_output_bytes: Option<f64>,
  /// Written to the process's stdin, which is then closed (without it stdin is empty).
  #[napi(ts_type = "string | Buffer | Uint8Array")]
  pub stdin: Option<Either<String, Uint8Array>>,
  /// Called with each chunk of stdout as it arrives (UTF-8; a character is never split). All
  /// chunks are delivered before the Promise resolves. Must not throw.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stdout: Option<ChunkFn>,
  /// Like `onStdout`, for stderr.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stderr: Option<ChunkFn>,
  /// Aborting kills the process group and rejects with `ABORTED`.
  #[napi(ts_type = "AbortSignal")]
  pub signal: Option<Object<'a>>,
  /// Return a `BackgroundProcess` handle at once instead of waiting; its processes are not killed
  /// when it returns and it has no timeout unless `timeout` is given.
  pub background: Option<bool>,
}

/// UTF-8 decoding of a byte stream that arrives in arbitrary chunks.
#[derive(Default)]
struct Utf8Chunks {
  pending: Vec<u8>,
}

impl Utf8Chunks {
  fn push(&mut self, bytes: &[u8]) -> String {
    self.pending.extend_from_slice(bytes);
    let cut = match std::str::from_utf8(&self.pending) {
      Ok(_) => self.pending.len(),
      Err(e) if e.error_len().is_none() => e.valid_up_to(), // an incomplete character at the end
      Err(_) => self.pending.len(),
    };
    let rest = self.pending.split_off(cut);
    let text = String::from_utf8_lossy(&self.pending).into_owned();
    self.pending = rest;
    text
  }
}

/// Streams output chunks to the JS callbacks and lets the caller wait until every chunk queued
/// so far has been delivered (a TSFN queue is FIFO, so counting completions is enough).
pub(crate) struct ChunkSink {
  fns: [Option<Arc<ChunkFn>>; 2],
  decoders: std::sync::Mutex<[Utf8Chunks; 2]>,
  sent: std::sync::atomic::AtomicU64,
  delivered: Arc<(std::sync::atomic::AtomicU64, tokio::sync::Notify)>,
}

impl ChunkSink {
  fn new(on_stdout: Option<ChunkFn>, on_stderr: Option<ChunkFn>) -> Option<Arc<Self>> {
    if on_stdout.is_none() && on_stderr.is_none() {
      return None;
    }
    Some(Arc::new(Self {
      fns: [on_stdout.map(Arc::new), on_stderr.map(Arc::new)],
      decoders: Default::default(),
      sent: Default::default(),
      delivered: Arc::new((Default::default(), tokio::sync::Notify::new())),
    }))
  }

  fn push(&self, stream: OutStream, bytes: &[u8]) {
    let i = if stream == OutStream::Stdout { 0 } else { 1 };
    let Some(f) = &self.fns[i] else { return };
    let text = self.decoders.lock().unwrap()[i].push(bytes);
    if text.is_empty() {
      return;
    }
    self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let delivered = self.delivered.clone();
    let status = f.call_with_return_value(text, ThreadsafeFunctionCallMode::NonBlocking, move |_ret, _env| {
      delivered.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
      delivered.1.notify_waiters();
      Ok(())
    });
    if status != Status::Ok {
      // the environment is shutting down: do not wait for this one
      self.delivered.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
  }

  fn as_output_sink(self: &Arc<Self>) -> crate::core::process::OutputSink {
    let me = self.clone();
    Arc::new(move |s, b| me.push(s, b))
  }

  /// Wait (bounded) until every chunk has reached JS.
  async fn flushed(&self) {
    let target = self.sent.load(std::sync::atomic::Ordering::SeqCst);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
      loop {
        let n = self.delivered.1.notified();
        if self.delivered.0.load(std::sync::atomic::Ordering::SeqCst) >= target {
          return;
        }
        n.await;
      }
    })
    .await;
  }
}

/// A receiver that fires when the AbortSignal `sig` aborts; `Err(ABORTED)` when it already has
/// (`what` was then not started).
fn abort_receiver(env: &Env, sig: Option<Object<'_>>, what: &str) -> Result<std::result::Result<Option<tokio::sync::oneshot::Receiver<()>>, SandboxError>> {
  let Some(sig) = sig else { return Ok(Ok(None)) };
  if sig.get_named_property::<bool>("aborted").unwrap_or(false) {
    return Ok(Err(SandboxError::new(error::ErrorCode::Aborted, format!("{what} was not started: its AbortSignal was already aborted"))));
  }
  let (tx, rx) = tokio::sync::oneshot::channel::<()>();
  let tx = std::cell::RefCell::new(Some(tx));
  let signal = unsafe { AbortSignal::from_napi_value(env.raw(), sig.raw())? };
  signal.on_abort(move || {
    if let Some(tx) = tx.borrow_mut().take() {
      let _ = tx.send(());
    }
  });
  Ok(Ok(Some(rx)))
}

fn result_js(r: types::ExecResult) -> ExecutionResult {
  ExecutionResult {
    exit_code: r.exit_code as i32,
    stdout: lossy(r.stdout),
    stderr: lossy(r.stderr),
    duration_ms: (r.duration_ms * 100.0).round() / 100.0,
    timed_out: r.timed_out,
    truncated: r.truncated,
    signal: r.signal,
  }
}

/// A process in the sandbox (`listProcesses`).
#[napi(object)]
pub struct ProcessInfo {
  pub pid: u32,
  pub ppid: u32,
  /// argv[0] ('' for kernel-less entries)
  pub command: String,
  pub args: Vec<String>,
  /// Linux process state letter: R running, S sleeping, T stopped, ...
  pub state: String,
  #[napi(js_name = "memoryKB")]
  pub memory_kb: f64,
  /// Started with `execute(.., { background: true })` and still running.
  pub background: bool,
}

#[napi(object, js_name = "PoolOptions")]
pub struct PoolOptionsJs {
  /// Seed 000's pool size: the default of both `min` and `max`.
  pub size: Option<f64>,
  /// Sandboxes kept started and idle, ready to hand out (default: env MIN_POOL_SIZE, else 1).
  pub min: Option<f64>,
  /// Most sandboxes the pool holds at once, in use or idle (default: env MAX_POOL_SIZE, else
  /// max(min, initial, 4); at most 1000).
  pub max: Option<f64>,
  /// Sandboxes started by createPool (at least min; default: env POOL_SIZE, else min). Those
  /// above min are destroyed after idleTimeoutSeconds unused.
  pub initial: Option<f64>,
  /// Idle sandboxes above `min` are destroyed after this many seconds (default: env
  /// CONTAINER_IDLE_TIMEOUT_MINUTES × 60, else 300; 0 = never).
  pub idle_timeout_seconds: Option<f64>,
  /// How long `acquire()` waits for a free sandbox before POOL_EXHAUSTED (default 30).
  pub acquire_timeout_seconds: Option<f64>,
}

#[napi(object)]
pub struct AcquireOptions {
  /// Overrides the pool's acquireTimeoutSeconds for this call.
  pub timeout_seconds: Option<f64>,
}

fn pool_options(o: Option<PoolOptionsJs>, defaults: &pool::PoolDefaults) -> std::result::Result<pool::PoolOptions, SandboxError> {
  let req = o
    .map(|o| pool::PoolRequest {
      size: o.size,
      min: o.min,
      max: o.max,
      initial: o.initial,
      idle_timeout_seconds: o.idle_timeout_seconds,
      acquire_timeout_seconds: o.acquire_timeout_seconds,
    })
    .unwrap_or_default();
  pool_limits(&req, defaults)
}

#[napi(object, js_name = "PoolStats")]
pub struct PoolStatsJs {
  pub idle: u32,
  pub in_use: u32,
  pub creating: u32,
  pub waiting: u32,
  pub min: u32,
  pub max: u32,
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
    max_file_size_mb: l.max_file_size_mb,
    max_total_files: l.max_total_files.map(|n| n as f64),
    max_workspace_size_mb: l.max_workspace_size_mb,
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
  FileOperation { path: op.path, content, buffer, success: op.success, error: op.error, code: op.code.map(|c| c.as_str().to_string()) }
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

  /// The effective defaults (built-in < .sandboxrc.json < environment < constructor config),
  /// with secrets (`e2b.apiKey`, `docker.registryAuth.password`, any `*token*`, `*secret*`,
  /// `*password*` or `apiKey` key, also in `env` and `metadata`) replaced by `'***'`.
  #[napi(getter, ts_return_type = "SandboxConfig")]
  pub fn default_config(&self) -> Value {
    config::redacted(self.inner.defaults())
  }

  /// One sentence per configuration key that is accepted but has no effect (an unknown key,
  /// limits on E2B, limits.networkMbps, a seed variable overridden by the library's own, ...),
  /// each once, oldest first; createSandbox configs add theirs when the sandbox is created.
  /// Each is also logged with `tracing` at warn level.
  #[napi(getter)]
  pub fn warnings(&self) -> Vec<String> {
    self.inner.warnings()
  }

  /// Creates a sandbox (does not start it). Rejects with `INVALID_CONFIG` or `PROVIDER_UNAVAILABLE`.
  #[napi(ts_args_type = "config?: SandboxConfig", ts_return_type = "Promise<Sandbox>")]
  pub fn create_sandbox<'env>(&self, env: &'env Env, config: Option<Value>) -> Result<PromiseRaw<'env, Sandbox>> {
    let inner = self.inner.clone();
    promise(env, async move {
      let config = docker::snapshot::prepare_config(inner.defaults(), config).await?;
      inner.create(config.as_ref()).map(|s| Sandbox { inner: s })
    })
  }

  /// Re-attaches to a running persistent sandbox (`persistent: true`) on this manager's Docker
  /// engine, made by this or any other process, like E2B's `Sandbox.connect`. The sandbox comes
  /// back running and joins this manager. Rejects with SANDBOX_NOT_FOUND when there is no such
  /// persistent sandbox (or its lifetime ended).
  #[napi(ts_return_type = "Promise<Sandbox>")]
  pub fn connect<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, Sandbox>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.connect(&id).await.map(|s| Sandbox { inner: s }) })
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

  /// A warm pool of started sandboxes with `config` (filled to `min` before it resolves).
  /// Pools are destroyed with `destroyAll()`.
  #[napi(ts_args_type = "config?: SandboxConfig, options?: PoolOptions", ts_return_type = "Promise<SandboxPool>")]
  pub fn create_pool<'env>(&self, env: &'env Env, config: Option<Value>, options: Option<PoolOptionsJs>) -> Result<PromiseRaw<'env, SandboxPool>> {
    let inner = self.inner.clone();
    let opts = pool_options(options, inner.pool_defaults());
    promise(env, async move { inner.create_pool(config, opts?).await.map(|p| SandboxPool { inner: p }) })
  }

  #[napi(ts_return_type = "Promise<Array<SandboxStatsEntry>>")]
  pub fn get_all_stats<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<SandboxStatsEntry>>> {
    let inner = self.inner.clone();
    promise(env, async move {
      Ok(inner.all_stats().await.into_iter().map(|(id, p, s)| SandboxStatsEntry { id, provider: p, stats: stats_js(s) }).collect())
    })
  }

  #[napi(ts_return_type = "Promise<Array<SandboxHealthEntry>>")]
  pub fn health_check_all<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<SandboxHealthEntry>>> {
    let inner = self.inner.clone();
    promise(env, async move {
      Ok(inner.health_all().await.into_iter().map(|(id, p, h)| SandboxHealthEntry { id, provider: p, health: health_js(h) }).collect())
    })
  }
}

/// One sandbox. Get it from `SandboxManager.createSandbox()`.
#[napi]
pub struct Sandbox {
  inner: Arc<AnySandbox>,
}

#[napi]
impl Sandbox {
  /// A sandbox made without a manager (seed 000's `new DockerSandbox(config)`, also
  /// `new Sandbox(config)`): created, not started; call `start()`. It belongs to a process-wide
  /// manager with the defaults of `new SandboxManager()` (`.sandboxrc.json`, environment), so
  /// `config.provider` may be 'docker' or 'e2b' (providers registered on a manager are that
  /// manager's). Throws INVALID_CONFIG (synchronously) for an invalid configuration.
  #[napi(constructor, ts_args_type = "config?: SandboxConfig")]
  pub fn new(env: Env, config: Option<Value>) -> Result<Self> {
    init_tracing();
    install_exit_hooks(&env)?;
    let made = manager::shared().and_then(|m| m.create(config.as_ref()));
    made.map(|inner| Self { inner }).map_err(|e| throw_coded(&env, e))
  }

  /// 'docker-' or 'e2b-' followed by 16 hex digits (for Docker also the container's name). It
  /// never changes: after a provider fallback it keeps the first provider's form.
  #[napi(getter)]
  pub fn id(&self) -> String {
    self.inner.id().to_string()
  }

  /// 'docker', 'e2b', or a registered provider's name.
  #[napi(getter, ts_return_type = "'docker' | 'e2b' | 'remote' | (string & {})")]
  pub fn provider(&self) -> String {
    self.inner.config().provider.as_str().to_string()
  }

  #[napi(getter)]
  pub fn state(&self) -> SandboxState {
    self.inner.state().into()
  }

  #[napi(getter)]
  pub fn limits(&self) -> ResourceLimits {
    limits_js(&self.inner.config().limits)
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
  /// SANDBOX_NOT_RUNNING when the sandbox is not running and ABORTED when `signal` aborts.
  /// With `{ background: true }` it resolves at once with a `BackgroundProcess`.
  #[napi(
    ts_generic_types = "O extends ExecuteOptions = ExecuteOptions",
    ts_args_type = "command: string, args?: string[], options?: O",
    ts_return_type = "Promise<O extends { background: true } ? BackgroundProcess : ExecutionResult>"
  )]
  pub fn execute<'env>(
    &self,
    env: &'env Env,
    command: String,
    args: Option<Vec<String>>,
    options: Option<ExecuteOptions<'env>>,
  ) -> Result<PromiseRaw<'env, Either<ExecutionResult, BackgroundProcess>>> {
    let inner = self.inner.clone();
    let args = args.unwrap_or_default();
    let Some(o) = options else {
      return promise(env, async move { Ok(Either::A(result_js(inner.execute(&command, &args, Default::default()).await?))) });
    };
    let opts = types::ExecOptions {
      timeout: o.timeout,
      env: o.env.unwrap_or_default().into_iter().collect(),
      workdir: o.workdir,
      max_output_bytes: o.max_output_bytes.map(|n| n.max(0.0) as usize),
      stdin: o.stdin.map(|s| match s {
        Either::A(s) => s.into_bytes(),
        Either::B(b) => b.to_vec(),
      }),
      ..Default::default()
    };
    let sink = ChunkSink::new(o.on_stdout, o.on_stderr);
    let abort = match abort_receiver(env, o.signal, &command)? {
      Ok(a) => a,
      Err(e) => return promise(env, async move { Err(e) }),
    };
    if o.background.unwrap_or(false) {
      return promise(env, async move {
        let out_sink = sink.as_ref().map(|s| s.as_output_sink());
        let p = inner.spawn(&command, &args, &opts, true, true, out_sink).await?;
        if let Some(data) = opts.stdin.clone() {
          let _ = p.stdin(data);
        }
        let (sb, watcher, pid) = (inner.clone(), p.clone(), p.pid);
        tokio::spawn(async move {
          let _ = watcher.wait().await;
          sb.background_ended(pid);
        });
        if let Some(abort) = abort {
          let killer = p.clone();
          tokio::spawn(async move {
            if abort.await.is_ok() {
              let _ = killer.signal(9);
            }
          });
        }
        Ok(Either::B(BackgroundProcess { proc: p, command, sink }))
      });
    }
    promise(env, async move {
      let out_sink = sink.as_ref().map(|s| s.as_output_sink());
      let r = inner.execute_with(&command, &args, opts, out_sink, abort).await;
      if let Some(s) = &sink {
        s.flushed().await;
      }
      Ok(Either::A(result_js(r?)))
    })
  }

  /// Processes running in the sandbox (not its init, the image's own command or the guest daemon).
  #[napi(ts_return_type = "Promise<ProcessInfo[]>")]
  pub fn list_processes<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<ProcessInfo>>> {
    let inner = self.inner.clone();
    promise(env, async move {
      Ok(
        inner
          .processes()
          .await?
          .into_iter()
          .map(|p| {
            let mut argv = p.cmdline.into_iter();
            ProcessInfo {
              pid: p.pid,
              ppid: p.ppid,
              command: argv.next().unwrap_or_default(),
              args: argv.collect(),
              state: p.state,
              memory_kb: p.rss_kb as f64,
              background: inner.is_background(p.pid),
            }
          })
          .collect(),
      )
    })
  }

  /// 'guest' (the in-sandbox daemon) or 'exec' (one `docker exec` per call). Known after start().
  #[napi(getter, ts_return_type = "'guest' | 'exec'")]
  pub fn exec_engine(&self) -> String {
    self.inner.engine_name().to_string()
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
      let r = inner.list_paths(&path, recursive, all).await;
      Ok(r.unwrap_or_else(|e| {
        tracing::debug!(sandbox = %inner.id(), error = %e, "listFiles failed");
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

/// A process started with `execute(.., { background: true })`.
#[napi]
pub struct BackgroundProcess {
  proc: crate::core::process::Spawned,
  command: String,
  sink: Option<Arc<ChunkSink>>,
}

#[napi]
impl BackgroundProcess {
  /// pid inside the sandbox.
  #[napi(getter)]
  pub fn pid(&self) -> u32 {
    self.proc.pid
  }

  #[napi(getter)]
  pub fn command(&self) -> String {
    self.command.clone()
  }

  /// false once the process has ended.
  #[napi(getter)]
  pub fn running(&self) -> bool {
    !self.proc.is_done()
  }

  /// Resolves with the result when the process ends (any number of times).
  #[napi(ts_return_type = "Promise<ExecutionResult>")]
  pub fn wait<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ExecutionResult>> {
    let (p, sink) = (self.proc.clone(), self.sink.clone());
    promise(env, async move {
      let out = p.wait().await?;
      if let Some(s) = &sink {
        s.flushed().await;
      }
      Ok(result_js(docker::sandbox::to_result(out)))
    })
  }

  /// Sends a signal (default 'SIGKILL') to the process's whole process group.
  #[napi(ts_args_type = "signal?: string", ts_return_type = "Promise<void>")]
  pub fn kill<'env>(&self, env: &'env Env, signal: Option<String>) -> Result<PromiseRaw<'env, ()>> {
    let p = self.proc.clone();
    let sig = signal.unwrap_or_else(|| "SIGKILL".into());
    promise(env, async move {
      let n = crate::core::process::signal_number(&sig)
        .ok_or_else(|| SandboxError::invalid_argument(format!("unknown signal {sig:?}; use a name like 'SIGTERM' or a number")))?;
      if p.is_done() {
        return Ok(());
      }
      p.signal(n).or(Ok(()))
    })
  }

  /// Writes to the process's stdin.
  #[napi(ts_args_type = "data: string | Buffer | Uint8Array", ts_return_type = "Promise<void>")]
  pub fn send_stdin<'env>(&self, env: &'env Env, data: Either<String, Uint8Array>) -> Result<PromiseRaw<'env, ()>> {
    let p = self.proc.clone();
    let bytes = match data {
      Either::A(s) => s.into_bytes(),
      Either::B(b) => b.to_vec(),
    };
    promise(env, async move {
      if p.is_done() {
        return Err(SandboxError::new(error::ErrorCode::ExecutionError, "the process has already exited; its stdin is closed"));
      }
      p.stdin(bytes)
    })
  }

  /// Closes the process's stdin (end of input).
  #[napi(ts_return_type = "Promise<void>")]
  pub fn close_stdin<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let p = self.proc.clone();
    promise(env, async move { p.close_stdin().or(Ok(())) })
  }
}

/// A warm pool of started sandboxes (`manager.createPool`, or `new SandboxPool(options)`).
#[napi]
pub struct SandboxPool {
  inner: Arc<manager::PoolGroup>,
}

/// The pool options among `new SandboxPool(options)`'s keys; the others are the configuration.
const POOL_KEYS: [&str; 6] = ["size", "min", "max", "initial", "idleTimeoutSeconds", "acquireTimeoutSeconds"];

/// Splits `{ ...config, ...poolOptions }` into the two.
fn split_pool_options(options: Option<Value>, what: &str) -> std::result::Result<(Option<Value>, pool::PoolRequest), SandboxError> {
  let mut config = match options {
    None | Some(Value::Null) => return Ok((None, pool::PoolRequest::default())),
    Some(Value::Object(m)) => m,
    Some(other) => return Err(SandboxError::invalid_argument(format!("{what} must be an object (a SandboxConfig with pool options), got {other}"))),
  };
  let mut number = |key: &str| -> std::result::Result<Option<f64>, SandboxError> {
    match config.remove(key) {
      None | Some(Value::Null) => Ok(None),
      Some(Value::Number(n)) => Ok(n.as_f64()),
      Some(v) => Err(SandboxError::invalid_argument(format!("{what}.{key} must be a number, got {v}"))),
    }
  };
  let req = pool::PoolRequest {
    size: number(POOL_KEYS[0])?,
    min: number(POOL_KEYS[1])?,
    max: number(POOL_KEYS[2])?,
    initial: number(POOL_KEYS[3])?,
    idle_timeout_seconds: number(POOL_KEYS[4])?,
    acquire_timeout_seconds: number(POOL_KEYS[5])?,
  };
  Ok((Some(Value::Object(config)), req))
}

fn pool_limits(req: &pool::PoolRequest, defaults: &pool::PoolDefaults) -> std::result::Result<pool::PoolOptions, SandboxError> {
  // a stuck reset counts as failed; a destroy is abandoned, then forced (see AnySandbox::destroy_within)
  let destroy_timeout = sandbox::teardown_timeout() + sandbox::FORCE_REMOVE_TIMEOUT + std::time::Duration::from_secs(1);
  pool::options(req, defaults, sandbox::teardown_timeout(), destroy_timeout)
}

#[napi]
impl SandboxPool {
  /// A pool without a manager (seed 000: `new SandboxPool({ size: 5, ...config })`): `size`
  /// sandboxes (min and max; or give `min`/`max`/`initial`/`idleTimeoutSeconds`/
  /// `acquireTimeoutSeconds` as for createPool) with the rest of `options` as their
  /// configuration, on the process-wide manager that `new Sandbox(config)` uses. It starts
  /// filling at once, in the background (a failure there is logged; `acquire` then creates on
  /// demand and rejects with the cause). Throws INVALID_ARGUMENT / INVALID_CONFIG synchronously.
  #[napi(constructor, ts_args_type = "options?: SandboxConfig & PoolOptions")]
  pub fn new(env: Env, options: Option<Value>) -> Result<Self> {
    init_tracing();
    install_exit_hooks(&env)?;
    let made = (|| {
      let (config, req) = split_pool_options(options, "new SandboxPool(options)")?;
      let m = manager::shared()?;
      let opts = pool_limits(&req, m.pool_defaults())?;
      m.pool_group(config, opts)
    })();
    let group = made.map_err(|e| throw_coded(&env, e))?;
    let filling = group.clone();
    napi::bindgen_prelude::spawn(async move {
      if let Err(e) = filling.fill().await {
        tracing::warn!(error = %e, "filling a SandboxPool failed; acquire() creates sandboxes on demand");
      }
    });
    Ok(Self { inner: group })
  }

  /// A started sandbox: an idle one at once, a new one while below `max`, else waits for a
  /// release (POOL_EXHAUSTED after the acquire timeout). POOL_CLOSED after destroy(). With
  /// configuration keys (seed 000: `pool.acquire(config)`), it comes from this pool's pool of
  /// that configuration merged over the pool's own, made on first use without warm sandboxes;
  /// `timeoutSeconds` overrides the pool's acquireTimeoutSeconds for this call.
  #[napi(ts_args_type = "options?: SandboxConfig & AcquireOptions", ts_return_type = "Promise<Sandbox>")]
  pub fn acquire<'env>(&self, env: &'env Env, options: Option<Value>) -> Result<PromiseRaw<'env, Sandbox>> {
    let pool = self.inner.clone();
    let parsed = (|| {
      let mut config = match options {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(Value::Object(m)) => m,
        Some(v) => return Err(SandboxError::invalid_argument(format!("acquire(options) takes an object, got {v}"))),
      };
      let timeout = match config.remove("timeoutSeconds") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(config::seconds("acquire timeoutSeconds", n.as_f64().unwrap_or(f64::NAN), true)?),
        Some(v) => return Err(SandboxError::invalid_argument(format!("acquire timeoutSeconds must be a number, got {v}"))),
      };
      Ok((Some(Value::Object(config)), timeout))
    })();
    promise(env, async move {
      let (config, timeout) = parsed?;
      pool.acquire(config, timeout).await.map(|s| Sandbox { inner: s })
    })
  }

  /// Gives a sandbox back: its processes are killed and its workspace and /tmp emptied, then it
  /// is reused; when that reset fails it is destroyed and replaced instead.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn release<'env>(&self, env: &'env Env, sandbox: &Sandbox) -> Result<PromiseRaw<'env, ()>> {
    let (pool, sb) = (self.inner.clone(), sandbox.inner.clone());
    promise(env, async move { pool.release(sb).await })
  }

  /// Destroys every sandbox of the pool, idle or in use.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn destroy<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let pool = self.inner.clone();
    promise(env, async move { pool.destroy().await })
  }

  #[napi(getter)]
  pub fn stats(&self) -> PoolStatsJs {
    let s = self.inner.stats();
    PoolStatsJs {
      idle: s.idle as u32,
      in_use: s.in_use as u32,
      creating: s.creating as u32,
      waiting: s.waiting as u32,
      min: s.min as u32,
      max: s.max as u32,
    }
  }
}

// ------------------------------------------------------------------ prune

#[napi(object)]
pub struct PruneOptions {
  /// List what would be removed; remove nothing.
  pub dry_run: Option<bool>,
  /// Remove every labelled resource, including running sandboxes of live processes.
  pub all: Option<bool>,
  /// Engine socket; default DOCKER_HOST, else /var/run/docker.sock.
  pub socket_path: Option<String>,
}

#[napi(object)]
pub struct PrunedResource {
  #[napi(ts_type = "'container' | 'volume' | 'network'")]
  pub kind: String,
  /// Container id, volume name or network id.
  pub id: String,
  pub name: String,
  pub sandbox_id: Option<String>,
  /// Why it is removed (the reaper's rule, or '--all').
  pub reason: String,
  /// Removed (false in a dry run and when the engine refused).
  pub removed: bool,
  /// The engine's refusal.
  pub error: Option<String>,
}

#[napi(object)]
pub struct PruneResult {
  pub dry_run: bool,
  pub containers: Vec<PrunedResource>,
  pub volumes: Vec<PrunedResource>,
  pub networks: Vec<PrunedResource>,
}

/// Removes what sandboxes of dead processes left on the Docker engine: the stale-resource
/// reaper's rules with a 10 s grace period (see README "Cleanup"). `{ dryRun: true }` lists it;
/// `{ all: true }` removes every resource labelled `agentic-sandbox.managed=true`, live sandboxes
/// of other processes included. `npx agentic-sandbox prune` calls this.
#[napi(ts_args_type = "options?: PruneOptions", ts_return_type = "Promise<PruneResult>")]
pub fn prune_resources(env: &Env, options: Option<PruneOptions>) -> Result<PromiseRaw<'_, PruneResult>> {
  init_tracing();
  let (dry_run, all, socket) = match options {
    Some(o) => (o.dry_run.unwrap_or(false), o.all.unwrap_or(false), o.socket_path),
    None => (false, false, None),
  };
  promise(env, async move {
    let docker = docker::connect_fresh(socket.as_deref()).await?;
    let done = docker::reaper::sweep(&docker, &docker::reaper::SweepOptions::prune(dry_run, all))
      .await
      .map_err(|e| SandboxError::provider(format!("pruning failed: the engine refused a listing ({e})")))?;
    let mut r = PruneResult { dry_run, containers: Vec::new(), volumes: Vec::new(), networks: Vec::new() };
    for p in done {
      let item = PrunedResource {
        kind: p.kind.as_str().to_string(),
        id: p.id,
        name: p.name,
        sandbox_id: p.sandbox_id,
        reason: p.reason,
        removed: !dry_run && p.error.is_none(),
        error: p.error,
      };
      match p.kind {
        docker::reaper::Kind::Container => r.containers.push(item),
        docker::reaper::Kind::Volume => r.volumes.push(item),
        docker::reaper::Kind::Network => r.networks.push(item),
      }
    }
    Ok(r)
  })
}

// ------------------------------------------------------------------ logger

/// The library's log output on stderr (the user guide's `logger.setLevel('debug')`). Silent by
/// default; `RUST_LOG` / `DEBUG` set the level at start-up, `debug: true` / `verbose: true` in a
/// manager's config raise it to debug / trace, `setLevel` sets it. Process-wide.
#[napi]
pub mod logger {
  use super::*;

  /// Sets the level of the library's log output on stderr from now on ('off': nothing). Replaces
  /// a RUST_LOG filter. Another value throws INVALID_ARGUMENT.
  #[napi(ts_args_type = "level: 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'off'")]
  pub fn set_level(env: Env, level: String) -> Result<()> {
    let level = crate::core::logging::Level::parse(&level).map_err(|e| throw_coded(&env, e))?;
    crate::core::logging::set_level(level);
    Ok(())
  }

  /// The level in effect: one of setLevel's, or the RUST_LOG filter as given.
  #[napi]
  pub fn get_level() -> String {
    crate::core::logging::current().describe()
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
