//! One agent run: a sandbox, the intercepted tools, a driver (the model loop or a JS agent), file
//! capture, stats and cleanup. Plain Rust; the napi layer supplies interceptors and custom agents
//! as closures.
//!
//! Interceptor semantics (one rule set that makes every interceptor of the seed guide behave as its
//! text says):
//! - For a tool call, every interceptor whose `toolName` glob matches the tool runs, in the order
//!   of the `interceptors` array, each with the parameters the previous one left.
//! - A handler's return value decides what happens next:
//!   - `undefined`: go on with the parameters unchanged;
//!   - `null`: the call is blocked; the model gets an error result "blocked by policy"; later
//!     handlers and the built-in tool do not run;
//!   - a string or Buffer, an execution result (an object with a numeric `exitCode`, as
//!     `sandbox.execute` returns), a file operation result (an object with a boolean `success`, as
//!     `sandbox.readFile` returns) or `{ toolResult, isError? }`: that is the tool's result; later
//!     handlers and the built-in tool do not run;
//!   - any other object: the new parameters (validated again) for the next handler and the
//!     built-in tool; returning `params` itself therefore means "go on".
//!   - a throw or a rejected Promise: the call fails with the handler's message as the tool
//!     result (never a crash of the run).
//! - When no handler ended the chain, the built-in tool runs inside the sandbox.
//! - Counters (`metadata`): the built-in tools count commands run, files created (a `Write` to a
//!   path that did not exist) and failed calls, except a counter a handler already changed during
//!   the same call: a handler that counts its own work (as the seed's do) is not counted twice.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globset::{Glob, GlobMatcher};
use serde_json::Value;

use super::capture::{self, CaptureSpec, CapturedFile};
use super::model::{Block, Message, ModelClient, StopReason, ToolResult};
use super::tools::{self, Effect, ToolOutcome, TOOL_NAMES};
use crate::core::sandbox::AnySandbox;
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::manager::Manager;
use crate::core::types::ExecOptions;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What handlers see and may change as `context.metadata`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
  pub agent_name: String,
  /// ms since the Unix epoch
  pub start_time: f64,
  pub commands_executed: i64,
  pub files_created: i64,
  pub errors: i64,
}

pub type SharedMetadata = Arc<Mutex<Metadata>>;

/// A handler's return value, as converted from JS.
#[derive(Debug, Clone, PartialEq)]
pub enum Returned {
  Undefined,
  Null,
  Text(String),
  Bytes(Vec<u8>),
  Json(Value),
}

/// What a handler's return value means (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
  Continue,
  Block,
  Params(Value),
  Result(ToolOutcome),
}

pub fn decide(r: Returned) -> Decision {
  match r {
    Returned::Undefined => Decision::Continue,
    Returned::Null => Decision::Block,
    Returned::Text(s) => Decision::Result(ToolOutcome::ok(s)),
    Returned::Bytes(b) => Decision::Result(match String::from_utf8(b) {
      Ok(s) if !s.contains('\0') => ToolOutcome::ok(s),
      Ok(s) => ToolOutcome::ok(format!("(binary data, {} bytes)", s.len())),
      Err(e) => ToolOutcome::ok(format!("(binary data, {} bytes)", e.as_bytes().len())),
    }),
    Returned::Json(v) => result_of(&v).map(Decision::Result).unwrap_or(Decision::Params(v)),
  }
}

/// The tool result a returned object stands for, or `None` when it is parameters.
fn result_of(v: &Value) -> Option<ToolOutcome> {
  let o = match v {
    Value::Object(o) => o,
    Value::String(s) => return Some(ToolOutcome::ok(s.clone())),
    other => return Some(ToolOutcome::ok(other.to_string())),
  };
  if let Some(r) = o.get("toolResult") {
    let text = match r {
      Value::String(s) => s.clone(),
      other => other.to_string(),
    };
    return Some(if o.get("isError").and_then(Value::as_bool).unwrap_or(false) { ToolOutcome::error(text) } else { ToolOutcome::ok(text) });
  }
  if let Some(code) = o.get("exitCode").and_then(Value::as_f64) {
    let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default().as_bytes().to_vec();
    let r = crate::core::types::ExecResult {
      exit_code: code as i64,
      stdout: text("stdout"),
      stderr: text("stderr"),
      duration_ms: 0.0,
      timed_out: o.get("timedOut").and_then(Value::as_bool).unwrap_or(false),
      truncated: o.get("truncated").and_then(Value::as_bool).unwrap_or(false),
      signal: None,
      max_rss_kb: None,
    };
    let mut out = tools::bash_outcome(&r);
    out.effect = Effect::None;
    return Some(out);
  }
  if let Some(success) = o.get("success").and_then(Value::as_bool) {
    let path = o.get("path").and_then(Value::as_str).unwrap_or_default();
    return Some(if success {
      match o.get("content") {
        Some(Value::String(s)) => ToolOutcome::ok(s.clone()),
        _ => ToolOutcome::ok(format!("ok: {path}")),
      }
    } else {
      ToolOutcome::error(format!("{path}: {}", o.get("error").and_then(Value::as_str).unwrap_or("failed")))
    });
  }
  None
}

pub type HandlerFn = Arc<dyn Fn(Value) -> BoxFuture<std::result::Result<Returned, String>> + Send + Sync>;

pub struct Interceptor {
  pub tool_name: String,
  matcher: GlobMatcher,
  pub handler: HandlerFn,
}

impl Interceptor {
  /// `tool_name` is a glob over tool names (`*`, `B*`, `{Read,Write}`).
  pub fn new(tool_name: &str, handler: HandlerFn) -> Result<Self> {
    let matcher = Glob::new(tool_name)
      .map_err(|e| SandboxError::invalid_config(format!("interceptor toolName {tool_name:?} is not a valid glob: {e}")))?
      .compile_matcher();
    Ok(Self { tool_name: tool_name.to_string(), matcher, handler })
  }
  pub fn matches(&self, tool: &str) -> bool {
    self.matcher.is_match(tool)
  }
}

/// Counts beyond the seed's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallCounts {
  pub tool_calls: u64,
  pub blocked: u64,
}

/// The intercepted tools of one run.
pub struct ToolRunner {
  pub sandbox: Arc<AnySandbox>,
  pub workspace: String,
  pub metadata: SharedMetadata,
  pub interceptors: Vec<Interceptor>,
  counts: Mutex<CallCounts>,
}

impl ToolRunner {
  pub fn new(sandbox: Arc<AnySandbox>, workspace: String, metadata: SharedMetadata, interceptors: Vec<Interceptor>) -> Self {
    Self { sandbox, workspace, metadata, interceptors, counts: Mutex::new(CallCounts::default()) }
  }

  pub fn counts(&self) -> CallCounts {
    *self.counts.lock().unwrap()
  }

  /// One tool call, through the interceptors, then (unless they ended it) the built-in tool.
  pub async fn call(&self, tool: &str, params: Value) -> ToolOutcome {
    self.counts.lock().unwrap().tool_calls += 1;
    let before = self.metadata.lock().unwrap().clone();
    let outcome = self.intercepted(tool, params).await;
    let mut m = self.metadata.lock().unwrap();
    match outcome.effect {
      Effect::Command if m.commands_executed == before.commands_executed => m.commands_executed += 1,
      Effect::FileCreated if m.files_created == before.files_created => m.files_created += 1,
      _ => {}
    }
    if outcome.is_error && m.errors == before.errors {
      m.errors += 1;
    }
    outcome
  }

  async fn intercepted(&self, tool: &str, params: Value) -> ToolOutcome {
    let known = TOOL_NAMES.contains(&tool);
    let mut params = if known {
      match tools::normalize(tool, params, &self.workspace) {
        Ok(p) => p,
        Err(e) => return ToolOutcome::error(e),
      }
    } else {
      params
    };
    for (i, icpt) in self.interceptors.iter().enumerate().filter(|(_, i)| i.matches(tool)) {
      tracing::debug!(tool, interceptor = i, "calling interceptor");
      match (icpt.handler)(params.clone()).await {
        Err(msg) => return ToolOutcome::error(format!("{tool} failed in an interceptor (toolName {:?}): {msg}", icpt.tool_name)),
        Ok(r) => match decide(r) {
          Decision::Continue => {}
          Decision::Block => {
            self.counts.lock().unwrap().blocked += 1;
            return ToolOutcome::error(format!(
              "This {tool} call was blocked by policy (an interceptor refused it). Do not retry it; try another way or report that it is not allowed."
            ));
          }
          Decision::Result(o) => return o,
          Decision::Params(p) => {
            params = if known {
              match tools::normalize(tool, p, &self.workspace) {
                Ok(p) => p,
                Err(e) => return ToolOutcome::error(format!("an interceptor returned invalid parameters: {e}")),
              }
            } else {
              p
            }
          }
        },
      }
    }
    if !known {
      return ToolOutcome::error(format!("unknown tool {tool:?}; the tools are {}", TOOL_NAMES.join(", ")));
    }
    tools::run(&self.sandbox, &self.workspace, tool, &params).await
  }
}

/// A JS agent: `(task, tools, context) => string`, given the run's tool runner.
pub type AgentFn = Arc<dyn Fn(String, Arc<ToolRunner>) -> BoxFuture<Result<String>> + Send + Sync>;
/// Builds the interceptors once the sandbox exists (their JS context holds the sandbox).
pub type InterceptorFactory = Box<dyn FnOnce(&Arc<AnySandbox>, &SharedMetadata, &str) -> Result<Vec<Interceptor>> + Send + Sync>;

pub enum Driver {
  Model(Arc<ModelClient>),
  Agent(AgentFn),
}

pub struct TaskSpec {
  pub task: String,
  pub agent_name: String,
  pub system_prompt: String,
  pub sandbox_config: Option<Value>,
  pub workspace: String,
  pub auto_cleanup: bool,
  pub capture: Option<CaptureSpec>,
  pub max_turns: u32,
  pub timeout: Duration,
  pub driver: Driver,
  pub interceptors: Option<InterceptorFactory>,
}

#[derive(Debug, Clone, Default)]
pub struct RunStats {
  pub commands_executed: i64,
  pub files_created: i64,
  pub errors: i64,
  pub memory_usage_mb: f64,
  pub cpu_percent: f64,
  pub turns: u32,
  pub tool_calls: u64,
  pub blocked_calls: u64,
  pub input_tokens: u64,
  pub output_tokens: u64,
}

#[derive(Debug, Clone)]
pub struct RunResult {
  pub output: String,
  pub exit_code: i32,
  pub duration_ms: f64,
  pub stats: RunStats,
  pub files: Vec<CapturedFile>,
  pub error: Option<SandboxError>,
  pub sandbox_id: Option<String>,
  pub agent_name: String,
}

/// A sandbox an agent is using, or kept after its run (`autoCleanup: false`).
#[derive(Clone)]
pub struct Active {
  pub sandbox: Arc<AnySandbox>,
  pub workspace: String,
  pub metadata: SharedMetadata,
}

pub struct Executor {
  pub manager: Arc<Manager>,
  active: Mutex<HashMap<String, Active>>,
}

struct Progress {
  output: String,
  turns: u32,
  input_tokens: u64,
  output_tokens: u64,
}

fn now_ms() -> f64 {
  std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

impl Executor {
  pub fn new(manager: Arc<Manager>) -> Self {
    Self { manager, active: Mutex::new(HashMap::new()) }
  }

  pub fn context(&self, sandbox_id: &str) -> Option<Active> {
    self.active.lock().unwrap().get(sandbox_id).cloned()
  }

  pub fn list_active(&self) -> Vec<Active> {
    let mut v: Vec<Active> = self.active.lock().unwrap().values().cloned().collect();
    v.sort_by(|a, b| a.metadata.lock().unwrap().start_time.total_cmp(&b.metadata.lock().unwrap().start_time));
    v
  }

  /// Destroys every sandbox this executor still holds (running or kept); all are attempted.
  pub async fn cleanup_all(&self) -> Result<()> {
    let all: Vec<String> = self.active.lock().unwrap().drain().map(|(id, _)| id).collect();
    let mut errors = Vec::new();
    for id in all {
      if let Err(e) = self.manager.destroy(&id).await {
        if e.code != ErrorCode::SandboxNotFound {
          errors.push(format!("{id}: {}", e.message));
        }
      }
    }
    if errors.is_empty() {
      Ok(())
    } else {
      Err(SandboxError::provider(format!("cleanupAll could not destroy every sandbox: {}", errors.join("; "))))
    }
  }

  /// Runs one task to its end. Never fails: failures are in the result (`exitCode` ≠ 0, `error`).
  pub async fn execute(&self, mut spec: TaskSpec) -> RunResult {
    let started = Instant::now();
    let metadata: SharedMetadata =
      Arc::new(Mutex::new(Metadata { agent_name: spec.agent_name.clone(), start_time: now_ms(), ..Default::default() }));
    let mut result = RunResult {
      output: String::new(),
      exit_code: 0,
      duration_ms: 0.0,
      stats: RunStats::default(),
      files: Vec::new(),
      error: None,
      sandbox_id: None,
      agent_name: spec.agent_name.clone(),
    };
    let sandbox = match self.start_sandbox(&spec).await {
      Ok(s) => s,
      Err(e) => {
        result.stats.errors = 1;
        return self.fail(result, e, started);
      }
    };
    result.sandbox_id = Some(sandbox.id().to_string());
    self.active.lock().unwrap().insert(
      sandbox.id().to_string(),
      Active { sandbox: sandbox.clone(), workspace: spec.workspace.clone(), metadata: metadata.clone() },
    );
    let _ = sandbox.stats().await; // first CPU sample: the one at the end measures the run
    let interceptors = match spec.interceptors.take() {
      Some(f) => f(&sandbox, &metadata, &spec.workspace),
      None => Ok(Vec::new()),
    };
    let runner = match interceptors {
      Ok(i) => Arc::new(ToolRunner::new(sandbox.clone(), spec.workspace.clone(), metadata.clone(), i)),
      Err(e) => {
        self.active.lock().unwrap().remove(sandbox.id());
        let _ = self.manager.destroy(sandbox.id()).await;
        result.stats.errors = 1;
        return self.fail(result, e, started);
      }
    };
    let limit = spec.timeout;
    let outcome = match tokio::time::timeout(limit, drive(&spec, &runner)).await {
      Ok(r) => r,
      Err(_) => {
        // the run's in-flight commands are killed (the sandbox may be kept for inspection)
        let _ = sandbox.kill_all().await;
        Err((
          SandboxError::new(
            ErrorCode::ExecutionTimeout,
            format!("the agent run did not finish within {} s; raise timeoutSeconds or simplify the task", limit.as_secs_f64()),
          ),
          None,
        ))
      }
    };
    let counts = runner.counts();
    result.stats.tool_calls = counts.tool_calls;
    result.stats.blocked_calls = counts.blocked;
    let (progress, error) = match outcome {
      Ok(p) => (Some(p), None),
      Err((e, p)) => (p, Some(e)),
    };
    if let Some(p) = progress {
      result.output = p.output;
      result.stats.turns = p.turns;
      result.stats.input_tokens = p.input_tokens;
      result.stats.output_tokens = p.output_tokens;
    }
    if let Ok(s) = sandbox.stats().await {
      result.stats.memory_usage_mb = s.memory_usage_mb;
      result.stats.cpu_percent = s.cpu_percent;
    }
    if let Some(c) = &spec.capture {
      match capture::capture(&sandbox, &spec.workspace, c).await {
        Ok(files) => result.files = files,
        Err(e) => {
          tracing::warn!(sandbox = %sandbox.id(), error = %e, "file capture failed");
          if error.is_none() {
            metadata.lock().unwrap().errors += 1;
          }
        }
      }
    }
    {
      let m = metadata.lock().unwrap();
      result.stats.commands_executed = m.commands_executed;
      result.stats.files_created = m.files_created;
      result.stats.errors = m.errors;
    }
    if spec.auto_cleanup {
      self.active.lock().unwrap().remove(sandbox.id());
      if let Err(e) = self.manager.destroy(sandbox.id()).await {
        tracing::warn!(sandbox = %sandbox.id(), error = %e, "could not destroy the agent's sandbox");
      }
    }
    match error {
      Some(e) => {
        result.stats.errors += 1;
        self.fail(result, e, started)
      }
      None => {
        result.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        result
      }
    }
  }

  fn fail(&self, mut result: RunResult, e: SandboxError, started: Instant) -> RunResult {
    result.exit_code = if e.code == ErrorCode::ExecutionTimeout { 124 } else { 1 };
    result.error = Some(e);
    result.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    result
  }

  async fn start_sandbox(&self, spec: &TaskSpec) -> Result<Arc<AnySandbox>> {
    let sandbox = self.manager.create(spec.sandbox_config.as_ref())?;
    let started = async {
      sandbox.start(None).await?;
      // the workspace must exist (it is the sandbox's workdir unless workspacePath says otherwise)
      if spec.workspace != sandbox.config().workdir {
        let r = sandbox
          .execute("mkdir", &["-p".to_string(), "--".to_string(), spec.workspace.clone()], ExecOptions::default())
          .await?;
        if r.exit_code != 0 {
          return Err(SandboxError::invalid_config(format!(
            "workspacePath {}: could not create it in the sandbox: {}",
            spec.workspace,
            String::from_utf8_lossy(&r.stderr).trim()
          )));
        }
      }
      Ok(())
    };
    if let Err(e) = started.await {
      let _ = self.manager.destroy(sandbox.id()).await;
      return Err(e);
    }
    Ok(sandbox)
  }
}

async fn drive(spec: &TaskSpec, runner: &Arc<ToolRunner>) -> std::result::Result<Progress, (SandboxError, Option<Progress>)> {
  match &spec.driver {
    Driver::Agent(agent) => {
      let output = agent(spec.task.clone(), runner.clone()).await.map_err(|e| (e, None))?;
      Ok(Progress { output, turns: 0, input_tokens: 0, output_tokens: 0 })
    }
    Driver::Model(client) => {
      let system = system_prompt(&spec.system_prompt, &spec.workspace);
      model_loop(client, runner, &system, &spec.task, spec.max_turns).await
    }
  }
}

/// The user's system prompt, followed by what the model needs to know about its environment.
pub fn system_prompt(user: &str, workspace: &str) -> String {
  let env = format!(
    "You work inside an isolated Linux sandbox. Your workspace is {workspace}; file paths in tool calls are relative to it. Use the tools to act, then answer with a short summary of what you did."
  );
  if user.trim().is_empty() {
    env
  } else {
    format!("{user}\n\n{env}")
  }
}

async fn model_loop(
  client: &ModelClient,
  runner: &ToolRunner,
  system: &str,
  task: &str,
  max_turns: u32,
) -> std::result::Result<Progress, (SandboxError, Option<Progress>)> {
  let specs = tools::specs();
  let mut messages = vec![Message::User(task.to_string())];
  let mut p = Progress { output: String::new(), turns: 0, input_tokens: 0, output_tokens: 0 };
  loop {
    if p.turns >= max_turns {
      let e = SandboxError::new(
        ErrorCode::MaxTurnsExceeded,
        format!("the agent used all {max_turns} turns (maxTurns) without finishing; raise maxTurns or narrow the task"),
      );
      return Err((e, Some(p)));
    }
    let turn = match client.complete(system, &messages, &specs).await {
      Ok(t) => t,
      Err(e) => return Err((e, Some(p))),
    };
    p.turns += 1;
    p.input_tokens += turn.input_tokens;
    p.output_tokens += turn.output_tokens;
    let text: Vec<&str> = turn.blocks.iter().filter_map(|b| if let Block::Text(t) = b { Some(t.as_str()) } else { None }).collect();
    if !text.is_empty() {
      p.output = text.join("\n");
    }
    let calls: Vec<(String, String, Value)> = turn
      .blocks
      .iter()
      .filter_map(|b| if let Block::ToolUse { id, name, input } = b { Some((id.clone(), name.clone(), input.clone())) } else { None })
      .collect();
    messages.push(Message::Assistant(turn.blocks));
    if calls.is_empty() {
      if turn.stop == StopReason::MaxTokens {
        tracing::warn!("the model's last answer was cut at maxTokens");
      }
      return Ok(p);
    }
    let mut results = Vec::with_capacity(calls.len());
    for (id, name, input) in calls {
      let o = runner.call(&name, input).await;
      results.push(ToolResult { tool_use_id: id, content: o.content, is_error: o.is_error });
    }
    messages.push(Message::ToolResults(results));
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn decisions_follow_the_documented_rules() {
    assert_eq!(decide(Returned::Undefined), Decision::Continue);
    assert_eq!(decide(Returned::Null), Decision::Block);
    assert_eq!(decide(Returned::Text("hi".into())), Decision::Result(ToolOutcome::ok("hi")));
    // the seed's fileLogger returns params: go on with them
    let params = json!({"file": "a.txt", "content": "x"});
    assert_eq!(decide(Returned::Json(params.clone())), Decision::Params(params));
    // the seed's securityFilter returns an execution result
    let blocked = json!({"exitCode": 1, "stdout": "", "stderr": "Error: Command blocked by security policy", "durationMs": 0, "timedOut": false});
    match decide(Returned::Json(blocked)) {
      Decision::Result(o) => {
        assert!(o.is_error);
        assert!(o.content.contains("blocked by security policy"));
        assert_eq!(o.effect, Effect::None);
      }
      d => panic!("{d:?}"),
    }
    // the seed's perfMonitor returns what readFile returned
    let read = json!({"success": true, "path": "/workspace/a", "content": "text"});
    assert_eq!(decide(Returned::Json(read)), Decision::Result(ToolOutcome::ok("text")));
    let failed = json!({"success": false, "path": "/workspace/a", "error": "No such file"});
    assert!(matches!(decide(Returned::Json(failed)), Decision::Result(o) if o.is_error && o.content.contains("No such file")));
    assert_eq!(
      decide(Returned::Json(json!({"toolResult": "custom", "isError": true}))),
      Decision::Result(ToolOutcome::error("custom"))
    );
    assert!(matches!(decide(Returned::Bytes(vec![0xff, 0])), Decision::Result(o) if o.content.contains("binary")));
  }

  #[test]
  fn interceptor_globs() {
    let h: HandlerFn = Arc::new(|_| Box::pin(async { Ok(Returned::Undefined) }));
    assert!(Interceptor::new("*", h.clone()).unwrap().matches("Bash"));
    let i = Interceptor::new("{Read,Write}", h.clone()).unwrap();
    assert!(i.matches("Read") && i.matches("Write") && !i.matches("Bash"));
    assert!(!Interceptor::new("Write", h.clone()).unwrap().matches("Writer"));
    assert_eq!(Interceptor::new("[", h).err().unwrap().code, ErrorCode::InvalidConfig);
  }

  #[test]
  fn system_prompt_keeps_the_users() {
    let s = system_prompt("You are a developer.", "/workspace");
    assert!(s.starts_with("You are a developer.") && s.contains("/workspace"));
  }
}
