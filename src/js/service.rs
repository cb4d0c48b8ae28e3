//! napi bindings of seeds 002–004's service features: thread sessions, runCode / runTests, logs,
//! status, manager.list, uploadFile / downloadFile. Conversion only; the logic is in `manager`,
//! `code`, `logs`, `status` and `transfer`.

use std::collections::HashMap;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;

use crate::core::error::SandboxError;
use crate::core::{logs, manager};
use crate::service::{code, configure, status, transfer};
use super::{promise, Sandbox, SandboxManager, SandboxPool};

use crate::core::logs::iso;

pub(super) fn env_map(e: Option<HashMap<String, String>>) -> std::collections::BTreeMap<String, String> {
  e.unwrap_or_default().into_iter().collect()
}

// ------------------------------------------------------------------ sessions

#[napi(object, object_to_js = false)]
pub struct SessionOptions<'a> {
  /// Who the conversation belongs to (another user's thread id is refused with PERMISSION_DENIED).
  pub user_id: String,
  /// The conversation: the same thread id gets the same sandbox.
  pub thread_id: String,
  /// Idle minutes before the session's sandbox is destroyed (fractions allowed); default
  /// SESSION_TIMEOUT_MINUTES or 30.
  pub timeout_minutes: Option<f64>,
  /// Recreate the sandbox when an expired session is used (default true); false: SANDBOX_NOT_FOUND.
  pub auto_retry: Option<bool>,
  /// Configuration of a new session's sandbox (over the manager's defaults).
  pub config: Option<Value>,
  /// Take new sessions' sandboxes from this warm pool (they leave it; it refills).
  #[napi(ts_type = "SandboxPool")]
  pub pool: Option<ClassInstance<'a, SandboxPool>>,
}

#[napi(object)]
pub struct SessionEntry {
  pub user_id: String,
  pub thread_id: String,
  pub sandbox_id: String,
  pub timeout_minutes: f64,
  pub auto_retry: bool,
  pub expired: bool,
  pub last_activity: String,
  pub expires_at: Option<String>,
}

fn session_js(s: &crate::core::sandbox::SessionInfo) -> SessionStatus {
  SessionStatus {
    user_id: s.user_id.clone(),
    thread_id: s.thread_id.clone(),
    timeout_minutes: s.idle.as_secs_f64() / 60.0,
    auto_retry: s.auto_retry,
    expired: s.expired,
  }
}

#[napi]
impl SandboxManager {
  /// The running sandbox of a conversation thread: the same one (files persist) for the same
  /// `threadId`, a new one for a new thread, recreated (empty) after it expired. See README "Sessions".
  #[napi(ts_args_type = "options: SessionOptions", ts_return_type = "Promise<Sandbox>")]
  pub fn get_or_create_session<'env>(&self, env: &'env Env, options: SessionOptions) -> Result<PromiseRaw<'env, Sandbox>> {
    let inner = self.inner.clone();
    let o = manager::SessionOptions {
      user_id: options.user_id,
      thread_id: options.thread_id,
      timeout_minutes: options.timeout_minutes,
      auto_retry: options.auto_retry.unwrap_or(true),
      config: options.config,
      pool: options.pool.map(|p| p.inner.clone()),
    };
    promise(env, async move { inner.get_or_create_session(o).await.map(|s| Sandbox { inner: s }) })
  }

  /// Destroys a thread's session sandbox; resolves false when the thread has none.
  #[napi(ts_return_type = "Promise<boolean>")]
  pub fn close_session<'env>(&self, env: &'env Env, thread_id: String) -> Result<PromiseRaw<'env, bool>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.close_session(&thread_id).await })
  }

  #[napi]
  pub fn list_sessions(&self) -> Vec<SessionEntry> {
    self
      .inner
      .sessions()
      .iter()
      .filter_map(|sb| {
        let a = sb.activity();
        let s = a.session?;
        Some(SessionEntry {
          user_id: s.user_id,
          thread_id: s.thread_id,
          sandbox_id: sb.id().to_string(),
          timeout_minutes: s.idle.as_secs_f64() / 60.0,
          auto_retry: s.auto_retry,
          expired: s.expired,
          last_activity: iso(a.last_activity_ms),
          expires_at: sb.expires_at_ms().map(iso),
        })
      })
      .collect()
  }

  /// Summaries of the manager's sandboxes, filtered and sorted (seed 002 `list`).
  #[napi(ts_args_type = "options?: ListOptions", ts_return_type = "Promise<SandboxSummary[]>")]
  pub fn list<'env>(&self, env: &'env Env, options: Option<ListOptions>) -> Result<PromiseRaw<'env, Vec<SandboxSummary>>> {
    let inner = self.inner.clone();
    let o = options.unwrap_or_default();
    let filter = (|| -> std::result::Result<status::ListFilter, SandboxError> {
      let sort_by = match o.sort_by.as_deref() {
        None | Some("createdAt") => status::SortBy::CreatedAt,
        Some("lastActivity") => status::SortBy::LastActivity,
        Some("id") => status::SortBy::Id,
        Some("name") => status::SortBy::Name,
        Some(other) => return Err(SandboxError::invalid_argument(format!("sortBy must be 'createdAt', 'lastActivity', 'id' or 'name', got {other:?}"))),
      };
      let descending = match o.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(SandboxError::invalid_argument(format!("order must be 'asc' or 'desc', got {other:?}"))),
      };
      let limit = match o.limit {
        None => None,
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Some(n.min(1e9) as usize),
        Some(n) => return Err(SandboxError::invalid_argument(format!("limit must be a whole number ≥ 0, got {n}"))),
      };
      const STATES: [&str; 8] = ["all", "created", "starting", "running", "stopping", "stopped", "destroyed", "error"];
      if let Some(s) = &o.status {
        if !STATES.contains(&s.as_str()) {
          return Err(SandboxError::invalid_argument(format!("status must be one of {}, got {s:?}", STATES.join(", "))));
        }
      }
      Ok(status::ListFilter { status: o.status.clone(), template: o.template.clone(), limit, sort_by, descending })
    })();
    let include_detached = o.include_detached.unwrap_or(false);
    promise(env, async move {
      let filter = filter?;
      let detached = if include_detached { inner.detached().await? } else { Vec::new() };
      let mut statuses = inner.list_status(&status::ListFilter { limit: None, ..filter.clone() }).await;
      statuses.extend(detached.into_iter().map(|d| status::detached(&d)));
      Ok(
        status::filter_sort(statuses, &filter)
          .into_iter()
          .map(|s| SandboxSummary {
            id: s.id,
            name: s.name,
            template: s.template,
            provider: s.provider.to_string(),
            status: s.state.as_str().to_string(),
            uptime: s.uptime_s.round(),
            created_at: iso(s.created_ms),
            last_activity: iso(s.last_activity_ms),
            resource_usage: SummaryUsage { cpu_percent: s.stats.cpu_percent, memory_used_mb: s.stats.memory_usage_mb },
            persistent: s.persistent,
            expires_at: s.expires_at_ms.map(iso),
            detached: s.detached,
          })
          .collect(),
      )
    })
  }
}

#[napi(object)]
#[derive(Default)]
pub struct ListOptions {
  /// A state ('running', 'stopped', ...) or 'all' (default).
  pub status: Option<String>,
  pub template: Option<String>,
  pub limit: Option<f64>,
  #[napi(ts_type = "'createdAt' | 'lastActivity' | 'id' | 'name'")]
  pub sort_by: Option<String>,
  #[napi(ts_type = "'asc' | 'desc'")]
  pub order: Option<String>,
  /// Also list the persistent sandboxes on the manager's Docker engine that it does not hold
  /// (made by other processes; `detached: true`), to re-attach with `connect(id)`.
  pub include_detached: Option<bool>,
}

#[napi(object)]
pub struct SummaryUsage {
  pub cpu_percent: f64,
  #[napi(js_name = "memoryUsedMB")]
  pub memory_used_mb: f64,
}

#[napi(object)]
pub struct SandboxSummary {
  pub id: String,
  pub name: Option<String>,
  pub template: Option<String>,
  pub provider: String,
  pub status: String,
  /// seconds since start (0 when not running)
  pub uptime: f64,
  pub created_at: String,
  pub last_activity: String,
  pub resource_usage: SummaryUsage,
  /// made with `persistent: true`
  pub persistent: bool,
  /// when a persistent sandbox's lifetime (or a session's idle time) ends
  pub expires_at: Option<String>,
  /// a persistent sandbox this manager does not hold (`includeDetached`); `connect(id)` attaches it
  pub detached: bool,
}

// ------------------------------------------------------------------ status

#[napi(object)]
pub struct ResourceUsage {
  pub cpu_percent: f64,
  #[napi(js_name = "memoryUsedMB")]
  pub memory_used_mb: f64,
  #[napi(js_name = "memoryLimitMB")]
  pub memory_limit_mb: f64,
  pub memory_percent: f64,
  #[napi(js_name = "diskUsedMB")]
  pub disk_used_mb: f64,
  #[napi(js_name = "diskLimitMB")]
  pub disk_limit_mb: f64,
  #[napi(js_name = "networkRxMB")]
  pub network_rx_mb: f64,
  #[napi(js_name = "networkTxMB")]
  pub network_tx_mb: f64,
}

#[napi(object)]
pub struct ExecutionCounts {
  pub total: f64,
  pub successful: f64,
  pub failed: f64,
  /// milliseconds
  pub average_duration: f64,
}

#[napi(object)]
pub struct SessionStatus {
  pub user_id: String,
  pub thread_id: String,
  pub timeout_minutes: f64,
  pub auto_retry: bool,
  pub expired: bool,
}

#[napi(object)]
pub struct SandboxStatus {
  pub id: String,
  pub name: Option<String>,
  pub provider: String,
  pub state: String,
  pub template: Option<String>,
  pub image: String,
  pub engine: String,
  pub created_at: String,
  pub started_at: Option<String>,
  /// seconds since start (0 when not running)
  pub uptime: f64,
  pub resource_usage: ResourceUsage,
  pub executions: ExecutionCounts,
  pub last_activity: String,
  /// when an idle session will expire, or a persistent sandbox's lifetime ends
  pub expires_at: Option<String>,
  /// made with `persistent: true` (README "Persistent sandboxes")
  pub persistent: bool,
  #[napi(ts_type = "Record<string, any>")]
  pub metadata: Option<Value>,
  pub session: Option<SessionStatus>,
  /// The egress rules in force and the gateway's counters (sandboxes with `network` rules).
  pub network: Option<NetworkStatus>,
}

/// Egress rules (README "Network"), E2B's shape.
#[napi(object)]
#[derive(Default)]
pub struct NetworkRules {
  pub allow_out: Option<Vec<String>>,
  pub deny_out: Option<Vec<String>>,
}

#[napi(object)]
pub struct NetworkStatus {
  pub allow_out: Vec<String>,
  pub deny_out: Vec<String>,
  /// The gateway's address on the sandbox's network: HTTP(S) proxy on port 3128, SOCKS5 on 1080,
  /// DNS on 53 (HTTP_PROXY, HTTPS_PROXY and ALL_PROXY point there); none on E2B.
  pub gateway: Option<String>,
  /// connections and DNS answers allowed since the start
  pub allowed: f64,
  /// connections and DNS queries denied since the start
  pub denied: f64,
}

// ------------------------------------------------------------------ logs

#[napi(object)]
pub struct LogEntry {
  /// ISO 8601 (left out with includeTimestamps: false)
  pub timestamp: Option<String>,
  #[napi(ts_type = "'error' | 'warn' | 'info' | 'debug'")]
  pub level: String,
  #[napi(ts_type = "'system' | 'execution' | 'stdout' | 'stderr' | 'network'")]
  pub source: String,
  pub message: String,
}

#[napi(object)]
pub struct GetLogsOptions {
  /// The newest `lines` matching entries (default 100).
  pub lines: Option<f64>,
  /// Minimum level: 'error' | 'warn' | 'info' | 'debug' | 'all' (default 'all').
  #[napi(ts_type = "'error' | 'warn' | 'info' | 'debug' | 'all'")]
  pub level: Option<String>,
  /// Default true.
  pub include_timestamps: Option<bool>,
}

#[napi(object)]
pub struct SandboxLogs {
  pub logs: Vec<LogEntry>,
  /// entries kept that match the level (before `lines` cut them)
  pub total_lines: f64,
  /// entries evicted since the sandbox was created (the log keeps the newest 1000)
  pub dropped: f64,
  pub oldest_entry: Option<String>,
}

fn entry_js(e: &logs::LogEntry, timestamps: bool) -> LogEntry {
  LogEntry {
    timestamp: timestamps.then(|| iso(e.time_ms)),
    level: e.level.as_str().to_string(),
    source: e.source.as_str().to_string(),
    message: e.message.clone(),
  }
}

type LogFn = ThreadsafeFunction<LogEntry, napi::threadsafe_function::UnknownReturnValue, LogEntry, Status, false, true>;

/// A `streamLogs` subscription; `stop()` ends it.
#[napi]
pub struct LogStream {
  sandbox: Arc<crate::core::sandbox::AnySandbox>,
  id: u64,
}

#[napi]
impl LogStream {
  /// Stop delivering entries. Idempotent.
  #[napi]
  pub fn stop(&self) {
    self.sandbox.logs.unsubscribe(self.id);
  }
}

// ------------------------------------------------------------------ code, tests, files

#[napi(object, object_to_js = false)]
pub struct RunCodeOptions<'a> {
  /// Default: the template's language (python → python, node → javascript, go → go), else bash.
  #[napi(ts_type = "'python' | 'javascript' | 'typescript' | 'bash' | 'go'")]
  pub language: Option<String>,
  /// Seconds (default limits.timeoutSeconds).
  pub timeout: Option<f64>,
  pub env: Option<HashMap<String, String>>,
  pub workdir: Option<String>,
  /// Per-stream output cap in bytes (default 16 MiB); output beyond it is dropped and `truncated` set.
  pub max_output_bytes: Option<f64>,
  /// Called with each chunk of stdout as it arrives (as for `execute`). Must not throw.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stdout: Option<super::ChunkFn>,
  /// Like `onStdout`, for stderr.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stderr: Option<super::ChunkFn>,
  /// Aborting kills the run and rejects with `ABORTED` (in a context: the cell is interrupted
  /// like a timeout; see README "Code contexts").
  #[napi(ts_type = "AbortSignal")]
  pub signal: Option<Object<'a>>,
  /// Run in this code context (its id, or what `createCodeContext` returned): a long-lived
  /// interpreter whose variables, imports and loaded data persist between calls. Without it,
  /// every call runs in a fresh interpreter.
  #[napi(ts_type = "string | CodeContext")]
  pub context: Option<Either<String, Object<'a>>>,
}

#[napi(object)]
pub struct CodeExecutionResult {
  /// exit code 0 and not timed out
  pub success: bool,
  /// stdout
  pub output: String,
  /// stderr, null when empty
  pub error: Option<String>,
  pub exit_code: i32,
  #[napi(ts_type = "'completed' | 'failed' | 'timeout'")]
  pub status: String,
  pub language: String,
  /// milliseconds
  pub duration: f64,
  pub stdout: String,
  pub stderr: String,
  pub truncated: bool,
  /// Peak memory (resident set) of the code's process tree in MB; the guest engine only
  /// (undefined on the exec engine and E2B).
  #[napi(js_name = "memoryUsedMB")]
  pub memory_used_mb: Option<f64>,
  /// The run hit its timeout.
  pub timed_out: bool,
  /// Code contexts only: the cell's rich outputs (`display(...)`, figures, and last the value of
  /// its final expression, `isMainResult: true`).
  pub results: Option<Vec<super::contexts::CodeResult>>,
  /// Code contexts only: the exception the cell raised (or TimeoutError / ContextRestarted).
  pub exception: Option<super::contexts::CodeCellError>,
  /// Code contexts only: the context's interpreter was replaced during or right before this
  /// cell (timeout past SIGINT, the interpreter exited): its variables are lost.
  pub context_restarted: Option<bool>,
}

#[napi(object, object_to_js = false)]
pub struct RunTestsOptions<'a> {
  #[napi(ts_type = "'jest' | 'vitest' | 'pytest' | 'go'")]
  pub framework: Option<String>,
  /// A shell command to run instead of the framework's default (its output is still parsed).
  pub command: Option<String>,
  /// Seconds (default limits.timeoutSeconds).
  pub timeout: Option<f64>,
  pub workdir: Option<String>,
  pub env: Option<HashMap<String, String>>,
  /// Called with each chunk of stdout as it arrives (as for `execute`). Must not throw.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stdout: Option<super::ChunkFn>,
  /// Like `onStdout`, for stderr.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stderr: Option<super::ChunkFn>,
  /// Aborting kills the run and rejects with `ABORTED`.
  #[napi(ts_type = "AbortSignal")]
  pub signal: Option<Object<'a>>,
}

#[napi(object)]
pub struct TestFailure {
  pub name: String,
  pub message: String,
}

#[napi(object)]
pub struct TestRunResult {
  /// the framework whose output was parsed (undefined when none recognised it)
  pub framework: Option<String>,
  pub command: String,
  /// exit code 0 and no failed test
  pub success: bool,
  pub exit_code: i32,
  pub timed_out: bool,
  pub total: f64,
  pub passed: f64,
  pub failed: f64,
  pub skipped: f64,
  pub failures: Vec<TestFailure>,
  /// false when no test summary was found in the output (counts are then 0)
  pub parsed: bool,
  /// milliseconds
  pub duration: f64,
  /// stdout and stderr of the run
  pub output: String,
}

#[napi(object, object_to_js = false)]
pub struct ConfigureOptions<'a> {
  /// Added to the environment of every later command (a command's own `env` wins).
  pub env: Option<HashMap<String, String>>,
  /// Installed with the template's package manager (pip or npm), as `installPackages` at start.
  pub install_packages: Option<Vec<String>>,
  /// Shell commands (`/bin/sh -c`, in `workdir`), run in order; the first failure stops the rest.
  pub run_commands: Option<Vec<String>>,
  /// Seconds for each step (default limits.timeoutSeconds).
  pub timeout: Option<f64>,
  /// Where `runCommands` run (default: the sandbox workdir).
  pub workdir: Option<String>,
  /// Called with each chunk of stdout as it arrives (as for `execute`). Must not throw.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stdout: Option<super::ChunkFn>,
  /// Like `onStdout`, for stderr.
  #[napi(ts_type = "(chunk: string) => void")]
  pub on_stderr: Option<super::ChunkFn>,
  /// Aborting kills the run and rejects with `ABORTED`.
  #[napi(ts_type = "AbortSignal")]
  pub signal: Option<Object<'a>>,
}

#[napi(object)]
pub struct ConfigureStep {
  #[napi(ts_type = "'install' | 'command'")]
  pub kind: String,
  /// the command line that ran
  pub command: String,
  pub exit_code: i32,
  pub stdout: String,
  pub stderr: String,
  pub duration_ms: f64,
  pub timed_out: bool,
}

#[napi(object)]
pub struct ConfigureResult {
  /// every step ran and succeeded
  pub success: bool,
  pub env_vars_updated: f64,
  /// packages installed (0 when the install failed)
  pub packages_installed: f64,
  /// `runCommands` that ran, the failing one included
  pub commands_executed: f64,
  /// the install (if any), then each command that ran, in order
  pub steps: Vec<ConfigureStep>,
  pub duration_ms: f64,
}

#[napi(object)]
pub struct UploadResult {
  #[napi(ts_type = "'uploaded'")]
  pub status: String,
  pub filename: String,
  /// absolute path in the sandbox
  pub path: String,
  pub size_bytes: f64,
}

#[napi(object)]
pub struct DownloadOptions {
  /// Replace an existing host file (default false: INVALID_ARGUMENT when it exists).
  pub overwrite: Option<bool>,
}

#[napi]
impl Sandbox {
  /// Runs `code` in a language (seed 002). Resolves for any exit code; rejects only when the
  /// code could not be run (INVALID_ARGUMENT, SANDBOX_NOT_RUNNING, PERMISSION_DENIED, ...).
  #[napi(ts_args_type = "code: string, options?: RunCodeOptions", ts_return_type = "Promise<CodeExecutionResult>")]
  pub fn run_code<'env>(&self, env: &'env Env, code: String, options: Option<RunCodeOptions<'env>>) -> Result<PromiseRaw<'env, CodeExecutionResult>> {
    let inner = self.inner.clone();
    let mut opts = code::CodeOptions::default();
    let mut sink = None;
    if let Some(mut o) = options {
      let abort = match super::abort_receiver(env, o.signal.take(), "runCode")? {
        Ok(a) => a,
        Err(e) => return promise(env, async move { Err(e) }),
      };
      if let Some(c) = o.context.take() {
        return super::contexts::run_in_context(env, inner, code, c, o, abort);
      }
      sink = super::ChunkSink::new(o.on_stdout, o.on_stderr);
      opts = code::CodeOptions {
        language: o.language,
        timeout: o.timeout,
        env: env_map(o.env),
        workdir: o.workdir,
        max_output_bytes: o.max_output_bytes.map(|n| n.max(0.0) as usize),
        sink: sink.as_ref().map(|s| s.as_output_sink()),
        abort,
      };
    }
    promise(env, async move {
      let run = code::run_code(&inner, &code, opts).await;
      if let Some(s) = &sink {
        s.flushed().await;
      }
      let run = run?;
      let r = run.result;
      let stdout = super::lossy(r.stdout);
      let stderr = super::lossy(r.stderr);
      Ok(CodeExecutionResult {
        success: r.exit_code == 0 && !r.timed_out,
        output: stdout.clone(),
        error: if stderr.is_empty() { None } else { Some(stderr.clone()) },
        exit_code: r.exit_code as i32,
        status: if r.timed_out { "timeout" } else if r.exit_code == 0 { "completed" } else { "failed" }.to_string(),
        language: run.language,
        duration: (r.duration_ms * 100.0).round() / 100.0,
        stdout,
        stderr,
        truncated: r.truncated,
        memory_used_mb: r.max_rss_kb.map(|kb| (kb as f64 / 1024.0 * 100.0).round() / 100.0),
        timed_out: r.timed_out,
        results: None,
        exception: None,
        context_restarted: None,
      })
    })
  }

  /// Runs the project's tests and parses the summary (seed 004).
  #[napi(ts_args_type = "options?: RunTestsOptions", ts_return_type = "Promise<TestRunResult>")]
  pub fn run_tests<'env>(&self, env: &'env Env, options: Option<RunTestsOptions<'env>>) -> Result<PromiseRaw<'env, TestRunResult>> {
    let inner = self.inner.clone();
    let mut opts = code::TestOptions::default();
    let mut sink = None;
    if let Some(o) = options {
      let abort = match super::abort_receiver(env, o.signal, "runTests")? {
        Ok(a) => a,
        Err(e) => return promise(env, async move { Err(e) }),
      };
      sink = super::ChunkSink::new(o.on_stdout, o.on_stderr);
      opts = code::TestOptions {
        framework: o.framework,
        command: o.command,
        timeout: o.timeout,
        env: env_map(o.env),
        workdir: o.workdir,
        sink: sink.as_ref().map(|s| s.as_output_sink()),
        abort,
        ..Default::default()
      };
    }
    promise(env, async move {
      let run = code::run_tests(&inner, opts).await;
      if let Some(s) = &sink {
        s.flushed().await;
      }
      let run = run?;
      let (r, s) = (run.result, run.summary);
      let output = format!("{}{}", super::lossy(r.stdout), super::lossy(r.stderr));
      Ok(TestRunResult {
        framework: run.framework.map(|f| f.as_str().to_string()),
        command: run.command,
        success: r.exit_code == 0 && !r.timed_out && s.failed == 0,
        exit_code: r.exit_code as i32,
        timed_out: r.timed_out,
        total: s.total as f64,
        passed: s.passed as f64,
        failed: s.failed as f64,
        skipped: s.skipped as f64,
        failures: s.failures.into_iter().map(|f| TestFailure { name: f.name, message: f.message }).collect(),
        parsed: s.parsed,
        duration: (r.duration_ms * 100.0).round() / 100.0,
        output,
      })
    })
  }

  /// Changes the running sandbox (seed 002 `configure`): adds `env` to every later command,
  /// installs `installPackages` with the template's package manager, then runs `runCommands`
  /// in order, stopping at the first failure. Resolves with each step's result (also when one
  /// failed: `success: false`); rejects with INVALID_ARGUMENT (nothing changed),
  /// SANDBOX_NOT_RUNNING or ABORTED.
  #[napi(ts_args_type = "options: ConfigureOptions", ts_return_type = "Promise<ConfigureResult>")]
  pub fn configure<'env>(&self, env: &'env Env, options: ConfigureOptions<'env>) -> Result<PromiseRaw<'env, ConfigureResult>> {
    let inner = self.inner.clone();
    let o = options;
    let abort = match super::abort_receiver(env, o.signal, "configure")? {
      Ok(a) => a,
      Err(e) => return promise(env, async move { Err(e) }),
    };
    let sink = super::ChunkSink::new(o.on_stdout, o.on_stderr);
    let opts = configure::ConfigureOptions {
      env: env_map(o.env),
      install_packages: o.install_packages.unwrap_or_default(),
      run_commands: o.run_commands.unwrap_or_default(),
      timeout: o.timeout,
      workdir: o.workdir,
      sink: sink.as_ref().map(|s| s.as_output_sink()),
      abort,
    };
    promise(env, async move {
      let run = configure::configure(&inner, opts).await;
      if let Some(s) = &sink {
        s.flushed().await;
      }
      let run = run?;
      Ok(ConfigureResult {
        success: run.success,
        env_vars_updated: run.env_vars_updated as f64,
        packages_installed: run.packages_installed as f64,
        commands_executed: run.commands_executed as f64,
        steps: run
          .steps
          .into_iter()
          .map(|s| ConfigureStep {
            kind: s.kind.as_str().to_string(),
            command: s.command,
            exit_code: s.result.exit_code as i32,
            stdout: super::lossy(s.result.stdout),
            stderr: super::lossy(s.result.stderr),
            duration_ms: (s.result.duration_ms * 100.0).round() / 100.0,
            timed_out: s.result.timed_out,
          })
          .collect(),
        duration_ms: (run.duration_ms * 100.0).round() / 100.0,
      })
    })
  }

  /// The sandbox's own log, newest last (seed 002 `getLogs`).
  #[napi(ts_args_type = "options?: GetLogsOptions")]
  pub fn get_logs(&self, env: Env, options: Option<GetLogsOptions>) -> Result<SandboxLogs> {
    let bad = |m: String| super::throw_coded(&env, SandboxError::invalid_argument(m));
    let (lines, level, ts) = match options {
      Some(o) => (o.lines, o.level, o.include_timestamps.unwrap_or(true)),
      None => (None, None, true),
    };
    let lines = match lines {
      None => 100,
      Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => n.min(1e9) as usize,
      Some(n) => return Err(bad(format!("lines must be a whole number ≥ 0, got {n}"))),
    };
    let min = match level.as_deref() {
      None | Some("all") | Some("debug") => logs::Level::Debug,
      Some("info") => logs::Level::Info,
      Some("warn") => logs::Level::Warn,
      Some("error") => logs::Level::Error,
      Some(other) => {
        return Err(bad(format!("level must be 'error', 'warn', 'info', 'debug' or 'all', got {other:?}")))
      }
    };
    let snap = self.inner.logs.snapshot(lines, min);
    Ok(SandboxLogs {
      logs: snap.entries.iter().map(|e| entry_js(e, ts)).collect(),
      total_lines: snap.total as f64,
      dropped: snap.dropped as f64,
      oldest_entry: snap.oldest_ms.map(iso),
    })
  }

  /// Calls `callback` with every new log entry until `stop()` (seed 002 `streamLogs`). The
  /// callback must not throw. It does not keep Node running.
  #[napi(ts_args_type = "callback: (entry: LogEntry) => void")]
  pub fn stream_logs(&self, callback: LogFn) -> LogStream {
    let f = Arc::new(callback);
    let id = self.inner.logs.subscribe(Arc::new(move |e: &logs::LogEntry| {
      f.call(entry_js(e, true), ThreadsafeFunctionCallMode::NonBlocking);
    }));
    LogStream { sandbox: self.inner.clone(), id }
  }

  /// State, template, uptime, resource use against the limits, execution counters and activity.
  #[napi(ts_return_type = "Promise<SandboxStatus>")]
  pub fn get_status<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, SandboxStatus>> {
    let inner = self.inner.clone();
    promise(env, async move {
      let s = status::status(&inner).await;
      let mem = s.stats.memory_usage_mb;
      Ok(SandboxStatus {
        id: s.id,
        name: s.name,
        provider: s.provider.to_string(),
        state: s.state.as_str().to_string(),
        template: s.template,
        image: s.image,
        engine: s.engine.to_string(),
        created_at: iso(s.created_ms),
        started_at: s.started_ms.map(iso),
        uptime: (s.uptime_s * 10.0).round() / 10.0,
        resource_usage: ResourceUsage {
          cpu_percent: s.stats.cpu_percent,
          memory_used_mb: mem,
          memory_limit_mb: s.memory_limit_mb,
          memory_percent: if s.memory_limit_mb > 0.0 { (mem / s.memory_limit_mb * 1000.0).round() / 10.0 } else { 0.0 },
          disk_used_mb: s.stats.disk_usage_mb,
          disk_limit_mb: s.disk_limit_mb,
          network_rx_mb: s.stats.network_rx_mb,
          network_tx_mb: s.stats.network_tx_mb,
        },
        executions: ExecutionCounts {
          total: s.executions as f64,
          successful: s.successful as f64,
          failed: s.failed as f64,
          average_duration: (s.average_duration_ms * 100.0).round() / 100.0,
        },
        last_activity: iso(s.last_activity_ms),
        expires_at: s.expires_at_ms.map(iso),
        persistent: s.persistent,
        metadata: s.metadata,
        session: s.session.as_ref().map(session_js),
        network: s.network.map(|n| NetworkStatus {
          allow_out: n.policy.allow_out,
          deny_out: n.policy.deny_out,
          gateway: n.gateway,
          allowed: n.allowed as f64,
          denied: n.denied as f64,
        }),
      })
    })
  }

  /// Replace the egress rules of the running sandbox (E2B's `updateNetwork`): new connections
  /// follow them at once, open ones are not cut. Omitted lists are cleared. Needs a sandbox
  /// created with `network` rules (or networkMode 'restricted'); bad entries reject with
  /// INVALID_CONFIG and change nothing.
  #[napi(ts_args_type = "rules: NetworkRules", ts_return_type = "Promise<void>")]
  pub fn update_network<'env>(&self, env: &'env Env, rules: NetworkRules) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move {
      inner
        .update_network(crate::core::config::NetworkPolicy {
          allow_out: rules.allow_out.unwrap_or_default(),
          deny_out: rules.deny_out.unwrap_or_default(),
        })
        .await
    })
  }

  /// Copies a host file into the workspace (seed 003). `remoteName` defaults to the file's name.
  #[napi(ts_args_type = "localPath: string, remoteName?: string", ts_return_type = "Promise<UploadResult>")]
  pub fn upload_file<'env>(&self, env: &'env Env, local_path: String, remote_name: Option<String>) -> Result<PromiseRaw<'env, UploadResult>> {
    let inner = self.inner.clone();
    promise(env, async move {
      let u = transfer::upload(&inner, &local_path, remote_name.as_deref()).await?;
      Ok(UploadResult { status: "uploaded".into(), filename: u.filename, path: u.path, size_bytes: u.size as f64 })
    })
  }

  /// Copies a workspace file to the host; resolves with the absolute host path written.
  #[napi(ts_args_type = "remoteName: string, localPath?: string, options?: DownloadOptions", ts_return_type = "Promise<string>")]
  pub fn download_file<'env>(
    &self,
    env: &'env Env,
    remote_name: String,
    local_path: Option<String>,
    options: Option<DownloadOptions>,
  ) -> Result<PromiseRaw<'env, String>> {
    let inner = self.inner.clone();
    let overwrite = options.and_then(|o| o.overwrite).unwrap_or(false);
    promise(env, async move {
      let p = transfer::download(&inner, &remote_name, local_path.as_deref(), overwrite).await?;
      Ok(p.to_string_lossy().into_owned())
    })
  }
}

#[cfg(test)]
mod tests {
  #[test]
  fn iso_dates() {
    assert_eq!(super::iso(0.0), "1970-01-01T00:00:00.000Z");
    assert_eq!(super::iso(1_733_842_823_456.0), "2024-12-10T15:00:23.456Z");
    assert_eq!(super::iso(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
  }
}
