//! The napi face of the agent executor: `SandboxedAgentExecutor`, the `context` handlers get
//! (`SandboxedAgentContext`, `AgentMetadata`), and `AgentTools` for a JS agent. Conversion only;
//! the logic is in `executor::run`.
//!
//! JS callbacks (interceptor handlers, `config.agent`) are wrapped in a small JS function that
//! awaits them inside try/catch and describes the returned value (`undefined`, `null`, string,
//! bytes, or JSON), so a throwing or rejecting callback becomes a tool error with its message and
//! never reaches Node's uncaught-exception handler; the wrapper is then called from Rust through a
//! ThreadsafeFunction.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use serde_json::Value;

use crate::core::error::{ErrorCode, SandboxError};
use crate::executor::capture::{CaptureSpec, CapturedFile};
use crate::executor::model::{ModelClient, ModelConfig, ModelSettings};
use crate::executor::run::{self, Active, Driver, Executor, HandlerFn, Interceptor, Returned, RunResult, SharedMetadata, ToolRunner};
use crate::executor::tools;
use super::{coded_error, promise, Sandbox, SandboxManager};

const WRAP_JS: &str = r#"(function (fn) {
  if (typeof fn !== 'function') throw new TypeError('expected a function, got ' + typeof fn);
  return async function (...args) {
    try {
      const v = await fn(...args);
      if (v === undefined) return { ok: true, kind: 'undefined' };
      if (v === null) return { ok: true, kind: 'null' };
      if (typeof v === 'string') return { ok: true, kind: 'text', text: v };
      if (v instanceof Uint8Array) return { ok: true, kind: 'bytes', bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
      const json = JSON.stringify(v);
      return { ok: true, kind: 'json', json: json === undefined ? 'null' : json };
    } catch (e) {
      return { ok: false, message: e instanceof Error ? e.message : String(e) };
    }
  };
})"#;

/// What the wrapper resolves with.
#[napi(object, object_to_js = false)]
pub struct CallbackOutcome {
  pub ok: bool,
  pub kind: Option<String>,
  pub text: Option<String>,
  pub bytes: Option<Buffer>,
  pub json: Option<String>,
  pub message: Option<String>,
}

impl CallbackOutcome {
  fn into_returned(self) -> std::result::Result<Returned, String> {
    if !self.ok {
      return Err(self.message.unwrap_or_else(|| "the callback failed".into()));
    }
    Ok(match self.kind.as_deref() {
      Some("null") => Returned::Null,
      Some("text") => Returned::Text(self.text.unwrap_or_default()),
      Some("bytes") => Returned::Bytes(self.bytes.map(|b| b.to_vec()).unwrap_or_default()),
      Some("json") => match serde_json::from_str(self.json.as_deref().unwrap_or("null")) {
        Ok(v) => Returned::Json(v),
        Err(e) => return Err(format!("the callback returned a value that is not JSON: {e}")),
      },
      _ => Returned::Undefined,
    })
  }
}

type HandlerTsfn = ThreadsafeFunction<FnArgs<(Value, SandboxedAgentContext)>, Promise<CallbackOutcome>, FnArgs<(Value, SandboxedAgentContext)>, Status, false>;
type AgentTsfn =
  ThreadsafeFunction<FnArgs<(String, AgentTools, SandboxedAgentContext)>, Promise<CallbackOutcome>, FnArgs<(String, AgentTools, SandboxedAgentContext)>, Status, false>;

/// Wrap a JS function (see the module docs) and make it callable from any thread.
fn wrap<'env, Args: JsValuesTupleIntoVec + 'static>(
  env: &'env Env,
  f: Function<'env, Unknown<'env>, Unknown<'env>>,
) -> Result<ThreadsafeFunction<Args, Promise<CallbackOutcome>, Args, Status, false>> {
  let make: Function<Function<Unknown, Unknown>, Function<Args, Promise<CallbackOutcome>>> = env.run_script(WRAP_JS)?;
  let wrapped = make.call(f)?;
  wrapped.build_threadsafe_function::<Args>().callee_handled::<false>().build()
}

// ------------------------------------------------------------------ JS shapes

/// An interceptor: `handler(params, context)` runs before (or instead of) the built-in tool.
#[napi(object, object_to_js = false)]
pub struct ToolCallInterceptor<'a> {
  /// Tool name or glob (`'Bash'`, `'*'`, `'{Read,Write}'`).
  pub tool_name: String,
  #[napi(ts_type = "(params: any, context: SandboxedAgentContext) => any")]
  pub handler: Function<'a, Unknown<'a>, Unknown<'a>>,
}

/// The model an agent talks to. Defaults come from the environment (see the README).
#[napi(object, object_to_js = false)]
pub struct ModelOptions {
  /// 'anthropic' (Messages API) or 'openai' (chat completions; also Ollama, vLLM, llama.cpp server).
  #[napi(ts_type = "'anthropic' | 'openai'")]
  pub provider: Option<String>,
  pub name: Option<String>,
  pub api_key: Option<String>,
  #[napi(js_name = "baseURL")]
  pub base_url: Option<String>,
  pub max_tokens: Option<f64>,
  pub temperature: Option<f64>,
  /// retries on 429, 5xx and connection errors (default 3)
  pub max_retries: Option<f64>,
  pub request_timeout_seconds: Option<f64>,
}

impl ModelOptions {
  /// Counts arrive as JS numbers: a negative or fractional one is a configuration error, not a
  /// wrapped-around u32.
  fn settings(self) -> std::result::Result<ModelSettings, SandboxError> {
    Ok(ModelSettings {
      provider: self.provider,
      name: self.name,
      api_key: self.api_key,
      base_url: self.base_url,
      max_tokens: self.max_tokens.map(|v| count("model.maxTokens", v, 1.0, 1e7)).transpose()?.map(|v| v as u32),
      temperature: self.temperature,
      max_retries: self.max_retries.map(|v| count("model.maxRetries", v, 0.0, 20.0)).transpose()?.map(|v| v as u32),
      request_timeout_seconds: self.request_timeout_seconds,
    })
  }
}

#[napi(object, object_to_js = false)]
pub struct SandboxedAgentConfig<'a> {
  /// Name for logs and `context.metadata.agentName` (default 'agent').
  pub agent_name: Option<String>,
  /// Sent to the model as its system prompt (followed by a note on the sandbox).
  pub system_prompt: Option<String>,
  /// Configuration of the task's sandbox (merged over the manager's defaults).
  #[napi(ts_type = "SandboxConfig")]
  pub sandbox_config: Option<Value>,
  /// Where the tools work (default '/workspace').
  pub workspace_path: Option<String>,
  pub interceptors: Option<Vec<ToolCallInterceptor<'a>>>,
  /// Destroy the sandbox after the run, also after a failure (default true).
  pub auto_cleanup: Option<bool>,
  pub capture_files: Option<bool>,
  /// Globs over workspace-relative paths; no `/` matches the base name at any depth (default: all files).
  pub capture_patterns: Option<Vec<String>>,
  /// Also capture dotfiles and files in dot-directories (default false).
  pub capture_dotfiles: Option<bool>,
  /// Larger files are listed with `skipped` and no content (default 1048576).
  pub capture_max_file_bytes: Option<f64>,
  /// Most files captured (default 1000).
  pub capture_max_files: Option<u32>,
  pub model: Option<ModelOptions>,
  /// Most model turns (default 25).
  pub max_turns: Option<f64>,
  /// Limit for the whole run in seconds (default 600).
  pub timeout_seconds: Option<f64>,
  /// Bring your own agent: drives the same sandboxed, intercepted tools instead of the built-in
  /// model loop; its return value is the run's `output`.
  #[napi(ts_type = "(task: string, tools: AgentTools, context: SandboxedAgentContext) => string | Promise<string>")]
  pub agent: Option<Function<'a, Unknown<'a>, Unknown<'a>>>,
}

#[napi(object, object_to_js = false)]
pub struct AgentTask<'a> {
  pub task: String,
  pub config: SandboxedAgentConfig<'a>,
}

#[napi(object)]
pub struct ParallelOptions {
  /// Most tasks running at once (default 4).
  pub concurrency: Option<u32>,
}

#[napi(object)]
pub struct AgentRunStats {
  pub commands_executed: i64,
  pub files_created: i64,
  /// At the end of the run, from the sandbox's cgroup.
  #[napi(js_name = "memoryUsageMB")]
  pub memory_usage_mb: f64,
  /// Average over the run.
  pub cpu_percent: f64,
  pub errors: i64,
  pub turns: u32,
  pub tool_calls: i64,
  pub blocked_calls: i64,
  pub input_tokens: i64,
  pub output_tokens: i64,
}

#[napi(object)]
pub struct CapturedFileJs {
  /// Relative to the workspace.
  pub path: String,
  pub content: String,
  #[napi(ts_type = "'utf8' | 'base64'")]
  pub encoding: String,
  pub size: f64,
  /// Why the content is empty (too large, unreadable).
  pub skipped: Option<String>,
}

#[napi(object)]
pub struct AgentRunError {
  pub message: String,
  pub code: String,
}

#[napi(object)]
pub struct SandboxedExecutionResult {
  /// The agent's final answer.
  pub output: String,
  /// 0 on success, 124 when the run timed out, 1 for any other failure (see `error`).
  pub exit_code: i32,
  pub duration_ms: f64,
  pub stats: AgentRunStats,
  pub files: Vec<CapturedFileJs>,
  pub error: Option<AgentRunError>,
  pub sandbox_id: Option<String>,
  pub agent_name: String,
}

#[napi(object)]
pub struct ToolCallResult {
  pub content: String,
  pub is_error: bool,
}

#[napi(object)]
pub struct ToolDefinition {
  pub name: String,
  pub description: String,
  pub input_schema: Value,
}

fn result_js(r: RunResult) -> SandboxedExecutionResult {
  SandboxedExecutionResult {
    output: r.output,
    exit_code: r.exit_code,
    duration_ms: r.duration_ms,
    stats: AgentRunStats {
      commands_executed: r.stats.commands_executed,
      files_created: r.stats.files_created,
      memory_usage_mb: r.stats.memory_usage_mb,
      cpu_percent: r.stats.cpu_percent,
      errors: r.stats.errors,
      turns: r.stats.turns,
      tool_calls: r.stats.tool_calls as i64,
      blocked_calls: r.stats.blocked_calls as i64,
      input_tokens: r.stats.input_tokens as i64,
      output_tokens: r.stats.output_tokens as i64,
    },
    files: r.files.into_iter().map(file_js).collect(),
    error: r.error.map(|e| AgentRunError { message: e.message, code: e.code.as_str().to_string() }),
    sandbox_id: r.sandbox_id,
    agent_name: r.agent_name,
  }
}

fn file_js(f: CapturedFile) -> CapturedFileJs {
  CapturedFileJs { path: f.path, content: f.content, encoding: f.encoding.to_string(), size: f.size as f64, skipped: f.skipped }
}

// ------------------------------------------------------------------ context and metadata

/// Counters and facts of one run; handlers may change them (`context.metadata.filesCreated++`).
#[napi]
pub struct AgentMetadata {
  inner: SharedMetadata,
}

#[napi]
impl AgentMetadata {
  #[napi(getter)]
  pub fn agent_name(&self) -> String {
    self.inner.lock().unwrap().agent_name.clone()
  }
  #[napi(setter)]
  pub fn set_agent_name(&self, v: String) {
    self.inner.lock().unwrap().agent_name = v;
  }
  /// ms since the Unix epoch.
  #[napi(getter)]
  pub fn start_time(&self) -> f64 {
    self.inner.lock().unwrap().start_time
  }
  #[napi(getter)]
  pub fn commands_executed(&self) -> i64 {
    self.inner.lock().unwrap().commands_executed
  }
  #[napi(setter)]
  pub fn set_commands_executed(&self, v: f64) {
    self.inner.lock().unwrap().commands_executed = v as i64;
  }
  #[napi(getter)]
  pub fn files_created(&self) -> i64 {
    self.inner.lock().unwrap().files_created
  }
  #[napi(setter)]
  pub fn set_files_created(&self, v: f64) {
    self.inner.lock().unwrap().files_created = v as i64;
  }
  #[napi(getter)]
  pub fn errors(&self) -> i64 {
    self.inner.lock().unwrap().errors
  }
  #[napi(setter)]
  pub fn set_errors(&self, v: f64) {
    self.inner.lock().unwrap().errors = v as i64;
  }
  /// A plain copy (what `JSON.stringify` and `console.log` show).
  #[napi(js_name = "toJSON", ts_return_type = "{ agentName: string; startTime: number; commandsExecuted: number; filesCreated: number; errors: number }")]
  pub fn to_json(&self) -> Value {
    let m = self.inner.lock().unwrap();
    serde_json::json!({
      "agentName": m.agent_name, "startTime": m.start_time, "commandsExecuted": m.commands_executed,
      "filesCreated": m.files_created, "errors": m.errors,
    })
  }
}

/// What an interceptor or a JS agent gets as `context`, and what `getContext()` returns.
#[napi]
pub struct SandboxedAgentContext {
  active: Active,
}

#[napi]
impl SandboxedAgentContext {
  /// The task's live sandbox: its methods may be called from inside a handler.
  #[napi(getter)]
  pub fn sandbox(&self) -> Sandbox {
    Sandbox { inner: self.active.sandbox.clone() }
  }
  #[napi(getter)]
  pub fn workspace_path(&self) -> String {
    self.active.workspace.clone()
  }
  #[napi(getter)]
  pub fn metadata(&self) -> AgentMetadata {
    AgentMetadata { inner: self.active.metadata.clone() }
  }
}

// ------------------------------------------------------------------ tools for a JS agent

/// The sandboxed, intercepted tools, for an agent written in JS (`config.agent`). Each method
/// runs the same tool the built-in model loop would, through the interceptors, and resolves with
/// what the model would see (it never rejects for a tool failure: see `isError`).
#[napi]
pub struct AgentTools {
  runner: Arc<ToolRunner>,
}

#[napi]
impl AgentTools {
  /// The tools' names, descriptions and JSON schemas (to declare them to another agent framework).
  #[napi(getter)]
  pub fn definitions(&self) -> Vec<ToolDefinition> {
    tools::specs().into_iter().map(|s| ToolDefinition { name: s.name, description: s.description, input_schema: s.input_schema }).collect()
  }

  /// Calls a tool by name (`'Bash'`, `'Read'`, `'Write'`, `'Edit'`, `'Glob'`, `'Grep'`, `'LS'`).
  #[napi(ts_args_type = "name: string, params: Record<string, any>", ts_return_type = "Promise<ToolCallResult>")]
  pub fn call<'env>(&self, env: &'env Env, name: String, params: Value) -> Result<PromiseRaw<'env, ToolCallResult>> {
    let runner = self.runner.clone();
    promise(env, async move {
      let o = runner.call(&name, params).await;
      Ok(ToolCallResult { content: o.content, is_error: o.is_error })
    })
  }
}

// ------------------------------------------------------------------ the executor

/// Runs agents whose tools execute inside sandboxes. `execute` and `executeParallel` never reject
/// for a failed task: the result has `exitCode` ≠ 0 and `error`.
#[napi]
pub struct SandboxedAgentExecutor {
  inner: Arc<Executor>,
}

fn count(what: &str, v: f64, min: f64, max: f64) -> std::result::Result<u64, SandboxError> {
  if v.is_finite() && v.fract() == 0.0 && v >= min && v <= max {
    Ok(v as u64)
  } else {
    Err(SandboxError::invalid_config(format!("{what} must be a whole number from {min} to {max}, got {v}")))
  }
}

impl SandboxedAgentExecutor {
  /// Turns a JS config into a task. Configuration errors are returned (they become a failed
  /// result, not a rejection); a callback that cannot be wrapped is a JS error.
  fn spec(env: &Env, task: String, c: SandboxedAgentConfig) -> Result<std::result::Result<run::TaskSpec, (String, SandboxError)>> {
    let agent_name = c.agent_name.clone().unwrap_or_else(|| "agent".into());
    let mut interceptor_fns = Vec::new();
    for i in c.interceptors.unwrap_or_default() {
      interceptor_fns.push((i.tool_name, wrap::<FnArgs<(Value, SandboxedAgentContext)>>(env, i.handler)?));
    }
    let agent = c.agent.map(|f| wrap::<FnArgs<(String, AgentTools, SandboxedAgentContext)>>(env, f)).transpose()?;
    let model = c.model.map(ModelOptions::settings);
    let build = move || -> std::result::Result<run::TaskSpec, SandboxError> {
      let driver = match agent {
        Some(f) => Driver::Agent(agent_fn(Arc::new(f))),
        None => {
          let model = model.transpose()?.unwrap_or_default();
          let cfg = ModelConfig::resolve(&model, &|k| std::env::var(k).ok())?;
          Driver::Model(Arc::new(ModelClient::new(cfg)?))
        }
      };
      let workspace = match c.workspace_path.as_deref() {
        None => crate::core::config::DEFAULT_WORKDIR.to_string(),
        Some(w) if w.starts_with('/') && !w.contains('\0') => crate::core::paths::normalize(w),
        Some(w) => return Err(SandboxError::invalid_config(format!("workspacePath must be an absolute path inside the sandbox, got {w:?}"))),
      };
      let capture = if c.capture_files.unwrap_or(false) {
        if let Some(p) = &c.capture_patterns {
          crate::executor::capture::matcher(p)?;
        }
        Some(CaptureSpec {
          patterns: c.capture_patterns,
          dotfiles: c.capture_dotfiles.unwrap_or(false),
          max_file_bytes: c.capture_max_file_bytes.map(|v| count("captureMaxFileBytes", v, 0.0, 1e9)).transpose()?.unwrap_or(crate::executor::capture::DEFAULT_MAX_FILE_BYTES),
          max_files: c.capture_max_files.map(|v| v as usize).unwrap_or(crate::executor::capture::DEFAULT_MAX_FILES),
        })
      } else {
        None
      };
      let max_turns = c.max_turns.map(|v| count("maxTurns", v, 1.0, 1000.0)).transpose()?.unwrap_or(25) as u32;
      let timeout = match c.timeout_seconds {
        Some(t) => crate::core::config::seconds("timeoutSeconds", t, false).map_err(|e| SandboxError::invalid_config(e.message))?,
        None => std::time::Duration::from_secs(600),
      };
      let mut interceptors: Vec<(String, Arc<HandlerTsfn>)> = Vec::new();
      for (name, f) in interceptor_fns {
        interceptors.push((name, Arc::new(f)));
      }
      // validate the globs now, so a typo fails before a sandbox starts
      for (name, _) in &interceptors {
        let noop: HandlerFn = Arc::new(|_| Box::pin(async { Ok(Returned::Undefined) }));
        Interceptor::new(name, noop)?;
      }
      let factory: run::InterceptorFactory = Box::new(move |sandbox, metadata, workspace| {
        interceptors
          .into_iter()
          .map(|(name, f)| {
            let active = Active { sandbox: sandbox.clone(), workspace: workspace.to_string(), metadata: metadata.clone() };
            let handler: HandlerFn = Arc::new(move |params: Value| {
              let (f, ctx) = (f.clone(), SandboxedAgentContext { active: active.clone() });
              Box::pin(async move { call(&f, FnArgs::from((params, ctx))).await })
            });
            Interceptor::new(&name, handler)
          })
          .collect()
      });
      Ok(run::TaskSpec {
        task,
        agent_name: c.agent_name.unwrap_or_else(|| "agent".into()),
        system_prompt: c.system_prompt.unwrap_or_default(),
        sandbox_config: c.sandbox_config,
        workspace,
        auto_cleanup: c.auto_cleanup.unwrap_or(true),
        capture,
        max_turns,
        timeout,
        driver,
        interceptors: Some(factory),
      })
    };
    Ok(build().map_err(|e| (agent_name, e)))
  }
}

/// Calls a wrapped callback and reads what it returned.
async fn call<Args: JsValuesTupleIntoVec + Send + 'static>(
  f: &ThreadsafeFunction<Args, Promise<CallbackOutcome>, Args, Status, false>,
  args: Args,
) -> std::result::Result<Returned, String> {
  let pending = f.call_async_catch(args).await.map_err(|e| format!("could not call the JS callback: {e}"))?;
  let outcome = pending.await.map_err(|e| format!("the JS callback failed: {e}"))?;
  outcome.into_returned()
}

fn agent_fn(f: Arc<AgentTsfn>) -> run::AgentFn {
  Arc::new(move |task: String, runner: Arc<ToolRunner>| {
    let f = f.clone();
    Box::pin(async move {
      let ctx = SandboxedAgentContext {
        active: Active { sandbox: runner.sandbox.clone(), workspace: runner.workspace.clone(), metadata: runner.metadata.clone() },
      };
      let tools = AgentTools { runner };
      match call(&f, FnArgs::from((task, tools, ctx))).await {
        Ok(Returned::Text(s)) => Ok(s),
        Ok(Returned::Undefined) | Ok(Returned::Null) => Ok(String::new()),
        Ok(Returned::Json(v)) => Ok(v.to_string()),
        Ok(Returned::Bytes(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(msg) => Err(SandboxError::new(ErrorCode::ExecutionError, format!("the agent function failed: {msg}"))),
      }
    })
  })
}

fn failed(agent_name: String, e: SandboxError) -> SandboxedExecutionResult {
  result_js(RunResult {
    output: String::new(),
    exit_code: 1,
    duration_ms: 0.0,
    stats: run::RunStats { errors: 1, ..Default::default() },
    files: Vec::new(),
    error: Some(e),
    sandbox_id: None,
    agent_name,
  })
}

#[napi]
impl SandboxedAgentExecutor {
  /// Uses `sandboxManager` for the tasks' sandboxes, or a new `SandboxManager()` (defaults from
  /// `.sandboxrc.json` and the environment).
  #[napi(constructor)]
  pub fn new(env: Env, sandbox_manager: Option<&SandboxManager>) -> Result<Self> {
    let manager = match sandbox_manager {
      Some(m) => m.inner.clone(),
      None => SandboxManager::new(env, None)?.inner,
    };
    Ok(Self { inner: Arc::new(Executor::new(manager)) })
  }

  /// Runs one agent task in a new sandbox. Resolves with the result also when the task fails.
  #[napi(ts_return_type = "Promise<SandboxedExecutionResult>")]
  pub fn execute<'env>(&self, env: &'env Env, task: String, config: SandboxedAgentConfig<'env>) -> Result<PromiseRaw<'env, SandboxedExecutionResult>> {
    let spec = Self::spec(env, task, config)?;
    let inner = self.inner.clone();
    promise(env, async move {
      Ok(match spec {
        Ok(spec) => result_js(inner.execute(spec).await),
        Err((name, e)) => failed(name, e),
      })
    })
  }

  /// Runs tasks in parallel sandboxes, at most `concurrency` (default 4) at once; results come in
  /// input order, and one failure does not stop the others.
  #[napi(ts_return_type = "Promise<Array<SandboxedExecutionResult>>")]
  pub fn execute_parallel<'env>(
    &self,
    env: &'env Env,
    tasks: Vec<AgentTask<'env>>,
    options: Option<ParallelOptions>,
  ) -> Result<PromiseRaw<'env, Vec<SandboxedExecutionResult>>> {
    let concurrency = options.and_then(|o| o.concurrency).unwrap_or(4);
    if !(1..=64).contains(&concurrency) {
      return Err(coded_error(env, &SandboxError::invalid_argument(format!("concurrency must be from 1 to 64, got {concurrency}"))));
    }
    let mut specs = Vec::with_capacity(tasks.len());
    for t in tasks {
      specs.push(Self::spec(env, t.task, t.config)?);
    }
    let inner = self.inner.clone();
    promise(env, async move {
      let gate = Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
      let handles: Vec<_> = specs
        .into_iter()
        .map(|spec| {
          let (inner, gate) = (inner.clone(), gate.clone());
          tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            match spec {
              Ok(spec) => result_js(inner.execute(spec).await),
              Err((name, e)) => failed(name, e),
            }
          })
        })
        .collect();
      let mut out = Vec::with_capacity(handles.len());
      for h in handles {
        out.push(h.await.unwrap_or_else(|e| failed("agent".into(), SandboxError::provider(format!("the task panicked: {e}")))));
      }
      Ok(out)
    })
  }

  /// Destroys every sandbox this executor holds: running tasks' and those kept by `autoCleanup: false`.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn cleanup_all<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move { inner.cleanup_all().await })
  }

  /// The context of a running task (or of a kept sandbox), by sandbox id; `undefined` if none.
  #[napi(ts_return_type = "SandboxedAgentContext | undefined")]
  pub fn get_context(&self, sandbox_id: String) -> Either<SandboxedAgentContext, ()> {
    match self.inner.context(&sandbox_id) {
      Some(active) => Either::A(SandboxedAgentContext { active }),
      None => Either::B(()),
    }
  }

  /// Contexts of the running tasks and kept sandboxes, oldest first.
  #[napi]
  pub fn list_active(&self) -> Vec<SandboxedAgentContext> {
    self.inner.list_active().into_iter().map(|active| SandboxedAgentContext { active }).collect()
  }
}
