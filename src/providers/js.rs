//! Providers written in JavaScript (`manager.registerProvider(name, CustomSandbox)`, seed 000
//! FAQ Q25): a class (or a factory function) whose instances implement the seed's `Sandbox`
//! methods. Each call goes through one threadsafe function per registered provider: a small JS
//! dispatcher (`DISPATCH_JS`) that owns the instances, awaits the method, and describes what it
//! returned (or threw) in a shape Rust reads without touching JS objects off the JS thread.
//!
//! What Rust adds: every call has a deadline (a provider that never answers fails the call with
//! PROVIDER_ERROR, or a command with a timeout: exit code 124), the state machine (`start` first,
//! nothing after `destroy`), path resolution against the workdir, output caps, and NOT_SUPPORTED
//! for what the provider does not implement (background processes; `reset` unless it has one,
//! which makes a pool replace its sandboxes instead of reusing them).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::core::config::SandboxConfig;
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::process::{Control, ExecOutput, OutStream, OutputSink, Spawned};
use crate::core::provider::{ProgressFn, Provider, ProviderFactory};
use crate::core::types::{ExecOptions, FileInfo, FileOp, Health, ProcessEntry, State, Stats};

/// Default deadline of every call but `execute` (which has the command's timeout).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long past its timeout an `execute` may take before it counts as timed out.
const EXECUTE_GRACE: Duration = Duration::from_secs(5);
const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// The dispatcher: `(op, handle, argsJson, data) => Promise<Outcome>`. Never rejects.
pub const DISPATCH_JS: &str = r#"(function (name, impl) {
  if (typeof impl !== 'function') throw new TypeError('registerProvider(' + JSON.stringify(name) + ', impl): impl must be a class or a function (config) => sandbox, got ' + typeof impl);
  const isClass = /^class[\s{]/.test(Function.prototype.toString.call(impl));
  const REQUIRED = ['start', 'execute', 'writeFile', 'readFile', 'listFiles', 'deleteFile', 'stop', 'destroy'];
  const instances = new Map();
  let next = 1;
  const bytes = (v) => v === undefined || v === null ? Buffer.alloc(0) : typeof v === 'string' ? Buffer.from(v, 'utf8') : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(String(v), 'utf8');
  const fileOp = (r) => r && typeof r === 'object' && r.success === false ? { success: false, error: String(r.error ?? 'failed') } : { success: true };
  return async function (op, handle, argsJson, data) {
    try {
      const a = argsJson ? JSON.parse(argsJson) : {};
      if (op === 'create') {
        let inst = isClass ? new impl(a.config) : await impl(a.config);
        if (!inst || typeof inst !== 'object') throw new TypeError('provider ' + JSON.stringify(name) + ': the factory returned ' + (inst === null ? 'null' : typeof inst) + ', not a sandbox object');
        const missing = REQUIRED.filter((m) => typeof inst[m] !== 'function');
        if (missing.length) return { ok: false, code: 'INVALID_CONFIG', message: 'provider ' + JSON.stringify(name) + ': the sandbox object lacks ' + missing.map((m) => m + '()').join(', ') + ' (see the CustomSandbox interface)' };
        const h = next++;
        instances.set(h, inst);
        return { ok: true, handle: h };
      }
      const inst = instances.get(handle);
      if (!inst) return { ok: false, code: 'SANDBOX_DESTROYED', message: 'provider ' + JSON.stringify(name) + ': this sandbox was destroyed' };
      const has = (m) => typeof inst[m] === 'function';
      let r;
      switch (op) {
        case 'dispose': instances.delete(handle); return { ok: true };
        case 'start': case 'stop': case 'destroy': await inst[op](); return { ok: true };
        case 'execute': {
          const o = Object.assign({}, a.options);
          if (data) o.stdin = data;
          r = await inst.execute(a.command, a.args, o);
          if (!r || typeof r !== 'object') throw new TypeError('execute() must resolve with { exitCode, stdout, stderr }, got ' + (r === null ? 'null' : typeof r));
          const exitCode = Number.isInteger(r.exitCode) ? r.exitCode : 0;
          return { ok: true, json: JSON.stringify({ exitCode, timedOut: !!r.timedOut, signal: typeof r.signal === 'string' ? r.signal : null, stdout: bytes(r.stdout).toString('base64'), stderr: bytes(r.stderr).toString('base64') }) };
        }
        case 'writeFile': r = await inst.writeFile(a.path, data ?? Buffer.alloc(0)); return { ok: true, json: JSON.stringify(fileOp(r)) };
        case 'deleteFile': r = await inst.deleteFile(a.path, { recursive: !!a.recursive }); return { ok: true, json: JSON.stringify(fileOp(r)) };
        case 'readFile': {
          r = await inst.readFile(a.path);
          if (r && typeof r === 'object' && !(r instanceof Uint8Array)) {
            if (r.success === false) return { ok: true, json: JSON.stringify({ success: false, error: String(r.error ?? 'failed') }) };
            r = r.buffer ?? r.content;
          }
          return { ok: true, json: JSON.stringify({ success: true }), bytes: bytes(r) };
        }
        case 'listFiles': {
          r = await inst.listFiles(a.path, { recursive: !!a.recursive, all: !!a.all });
          if (!Array.isArray(r)) throw new TypeError('listFiles() must resolve with an array of names');
          return { ok: true, json: JSON.stringify(r.map((x) => typeof x === 'string' ? x : String(x && (x.path ?? x.name)))) };
        }
        case 'listFilesDetailed': {
          if (!has('listFilesDetailed')) return { ok: false, code: 'NOT_SUPPORTED', message: 'provider ' + JSON.stringify(name) + ' has no listFilesDetailed()' };
          r = await inst.listFilesDetailed(a.path, { recursive: !!a.recursive, all: !!a.all });
          return { ok: true, json: JSON.stringify(Array.isArray(r) ? r : []) };
        }
        case 'getStats': r = has('getStats') ? await inst.getStats() : {}; return { ok: true, json: JSON.stringify(r ?? {}) };
        case 'healthCheck': r = has('healthCheck') ? await inst.healthCheck() : { healthy: true }; return { ok: true, json: JSON.stringify(r ?? { healthy: true }) };
        case 'reset': case 'killAll': {
          if (!has(op)) return { ok: false, code: 'NOT_SUPPORTED', message: 'provider ' + JSON.stringify(name) + ' has no ' + op + '()' };
          await inst[op](); return { ok: true };
        }
        default: return { ok: false, code: 'NOT_SUPPORTED', message: 'unknown operation ' + op };
      }
    } catch (e) {
      const code = e && typeof e.code === 'string' ? e.code : undefined;
      return { ok: false, code, message: e instanceof Error ? e.message : String(e), thrown: true };
    }
  };
})"#;

/// What the dispatcher resolves with.
#[napi(object, object_to_js = false)]
pub struct JsOutcome {
  pub ok: bool,
  pub handle: Option<u32>,
  pub json: Option<String>,
  pub bytes: Option<Buffer>,
  pub code: Option<String>,
  pub message: Option<String>,
  pub thrown: Option<bool>,
}

pub type DispatchArgs = FnArgs<(String, u32, String, Option<Buffer>)>;
/// Weak: a registered provider does not keep Node running.
pub type DispatchFn = ThreadsafeFunction<DispatchArgs, Promise<JsOutcome>, DispatchArgs, Status, false, true>;

/// One registered provider: makes `JsSandbox`es.
pub struct JsFactory {
  pub name: String,
  pub dispatch: Arc<DispatchFn>,
  pub call_timeout: Duration,
}

impl ProviderFactory for JsFactory {
  fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>> {
    let id = id.map(str::to_string).unwrap_or_else(|| format!("{}-{:016x}", self.name, rand::random::<u64>()));
    Ok(Arc::new(JsSandbox {
      id,
      name: self.name.clone(),
      config: config.clone(),
      chan: Arc::new(Channel { name: self.name.clone(), dispatch: self.dispatch.clone(), call_timeout: self.call_timeout }),
      inner: Mutex::new(Inner { state: State::Created, handle: None }),
    }))
  }
}

struct Inner {
  state: State,
  /// the instance in the dispatcher, once `start` constructed it
  handle: Option<u32>,
}

pub struct JsSandbox {
  id: String,
  name: String,
  config: SandboxConfig,
  chan: Arc<Channel>,
  inner: Mutex<Inner>,
}

/// The way to the provider's dispatcher.
struct Channel {
  name: String,
  dispatch: Arc<DispatchFn>,
  call_timeout: Duration,
}

/// What a call returned: its JSON (parsed) and bytes.
struct Reply {
  json: Value,
  bytes: Vec<u8>,
  handle: Option<u32>,
}

impl JsSandbox {
  fn state_now(&self) -> State {
    self.inner.lock().unwrap().state
  }

  fn set_state(&self, s: State) {
    self.inner.lock().unwrap().state = s;
  }

  /// The instance, when the sandbox is running (or stopping/stopped for lifecycle calls).
  fn handle(&self, what: &str) -> Result<u32> {
    let i = self.inner.lock().unwrap();
    match (i.state, i.handle) {
      (State::Destroyed, _) => Err(SandboxError::new(ErrorCode::SandboxDestroyed, format!("{what}: sandbox {} was destroyed", self.id))),
      (_, Some(h)) => Ok(h),
      (_, None) => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("{what}: sandbox {} is not started; call start() first", self.id))),
    }
  }

  fn running(&self, what: &str) -> Result<u32> {
    let h = self.handle(what)?;
    match self.state_now() {
      State::Running => Ok(h),
      s => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("{what}: sandbox {} is {}, not running", self.id, s.as_str()))),
    }
  }

  async fn call(&self, op: &str, handle: u32, args: Value, data: Option<Vec<u8>>, limit: Duration) -> Result<Reply> {
    self.chan.call(op, handle, args, data, limit).await
  }

  fn resolve(&self, path: &str) -> Result<String> {
    crate::core::paths::resolve(&self.config.workdir, path)
  }

  fn file_op(&self, path: &str, r: Result<Reply>) -> FileOp {
    match r {
      Ok(rep) if rep.json.get("success").and_then(Value::as_bool) == Some(false) => {
        FileOp::fail(path, rep.json.get("error").and_then(Value::as_str).unwrap_or("failed").to_string())
      }
      Ok(rep) => FileOp::ok(path, Some(rep.bytes)),
      Err(e) => FileOp::failed_with(path, e),
    }
  }

  /// The configuration the JS constructor gets (camelCase, as `SandboxConfig` in JS).
  fn config_json(&self) -> Value {
    let c = &self.config;
    json!({
      "provider": self.name,
      "id": self.id,
      "image": c.image,
      "limits": crate::core::config::limits_to_json(&c.limits),
      "networkMode": c.network_mode.as_str(),
      // a JavaScript provider that cannot enforce egress rules must refuse a config with them
      "network": c.network.as_ref().map(|n| n.to_json()),
      "env": c.env,
      "workdir": c.workdir,
      "metadata": c.metadata,
      "name": c.name,
      "template": c.template,
    })
  }
}

impl Channel {
  /// Calls `op` on the instance within `limit`.
  async fn call(&self, op: &str, handle: u32, args: Value, data: Option<Vec<u8>>, limit: Duration) -> Result<Reply> {
    let what = format!("provider {:?}: {op}()", self.name);
    let fut = async {
      let pending = self
        .dispatch
        .call_async(FnArgs::from((op.to_string(), handle, args.to_string(), data.map(Buffer::from))))
        .await
        .map_err(|e| SandboxError::provider(format!("{what} could not be called (is Node shutting down?): {e}")))?;
      pending.await.map_err(|e| SandboxError::provider(format!("{what} failed: {e}")))
    };
    let out = match tokio::time::timeout(limit, fut).await {
      Ok(r) => r?,
      Err(_) => {
        return Err(SandboxError::provider(format!(
          "{what} did not answer within {} s; the provider must resolve or reject every call (registerProvider's timeoutSeconds sets this limit)",
          limit.as_secs_f64()
        )))
      }
    };
    if !out.ok {
      let message = out.message.unwrap_or_else(|| "failed".into());
      let mut e = match out.code.as_deref().and_then(SandboxError::code_from_str) {
        Some(code) => SandboxError::new(code, message),
        None => SandboxError::new(ErrorCode::ProviderError, message),
      };
      if e.code == ErrorCode::ProviderError {
        if let Some(c) = out.code.filter(|c| SandboxError::code_from_str(c).is_none()) {
          e.foreign_code = Some(c);
        }
      }
      return Err(e);
    }
    let json = match out.json.as_deref() {
      Some(j) => serde_json::from_str(j).map_err(|e| SandboxError::provider(format!("{what} returned something that is not JSON: {e}")))?,
      None => Value::Null,
    };
    Ok(Reply { json, bytes: out.bytes.map(|b| b.to_vec()).unwrap_or_default(), handle: out.handle })
  }

}

fn num(v: &Value, k: &str) -> f64 {
  v.get(k).and_then(Value::as_f64).filter(|n| n.is_finite()).unwrap_or(0.0)
}

#[async_trait]
impl Provider for JsSandbox {
  fn id(&self) -> &str {
    &self.id
  }
  fn config(&self) -> &SandboxConfig {
    &self.config
  }
  fn state(&self) -> State {
    self.state_now()
  }
  fn engine_name(&self) -> String {
    self.name.clone()
  }

  async fn start(&self, _progress: Option<ProgressFn>) -> Result<()> {
    let handle = {
      let i = self.inner.lock().unwrap();
      if i.state == State::Destroyed {
        return Err(SandboxError::new(ErrorCode::SandboxDestroyed, format!("sandbox {} was destroyed", self.id)));
      }
      if i.state == State::Running {
        return Ok(());
      }
      i.handle
    };
    self.set_state(State::Starting);
    let r = async {
      let h = match handle {
        Some(h) => h,
        None => {
          let rep = self.call("create", 0, json!({ "config": self.config_json() }), None, self.chan.call_timeout).await?;
          let h = rep.handle.ok_or_else(|| SandboxError::provider("the provider's dispatcher returned no handle"))?;
          self.inner.lock().unwrap().handle = Some(h);
          h
        }
      };
      self.call("start", h, Value::Null, None, self.chan.call_timeout).await.map(|_| ())
    }
    .await;
    self.set_state(if r.is_ok() { State::Running } else { State::Error });
    r
  }

  async fn stop(&self) -> Result<()> {
    if self.state_now() != State::Running {
      return Ok(());
    }
    let h = self.handle("stop")?;
    self.set_state(State::Stopping);
    let r = self.call("stop", h, Value::Null, None, self.chan.call_timeout).await.map(|_| ());
    self.set_state(if r.is_ok() { State::Stopped } else { State::Error });
    r
  }

  async fn destroy(&self) -> Result<()> {
    let handle = {
      let mut i = self.inner.lock().unwrap();
      if i.state == State::Destroyed {
        return Ok(());
      }
      i.state = State::Destroyed;
      i.handle.take()
    };
    let Some(h) = handle else { return Ok(()) };
    let r = self.call("destroy", h, Value::Null, None, self.chan.call_timeout).await.map(|_| ());
    let _ = self.call("dispose", h, Value::Null, None, self.chan.call_timeout).await;
    r
  }

  async fn force_remove(&self) -> Result<bool> {
    // the destroy above already forgot the instance; there is nothing of ours to remove
    Ok(false)
  }

  async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    crate::core::sandbox::refuse_stream_only(opts, &self.name)?;
    if background {
      return Err(SandboxError::new(
        ErrorCode::NotSupported,
        format!("provider {:?} runs commands to their end only: background processes are not supported", self.name),
      ));
    }
    let h = self.running("execute")?;
    let (timeout, workdir) = crate::core::sandbox::prepare_spawn(&self.config, &self.config.workdir, command, opts, false)?;
    let timeout = timeout.unwrap_or(Duration::from_secs_f64(self.config.limits.timeout_seconds));
    let cap = opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT);
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Control>();
    let (done_tx, done_rx) = watch::channel(None);
    // the sandbox's env applies to every command (as a container's does), the command's own wins
    let mut env = self.config.env.clone();
    env.extend(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let call_args = json!({
      "command": command,
      "args": args,
      "options": { "timeout": timeout.as_secs_f64(), "env": env, "workdir": workdir },
    });
    let chan = self.chan.clone();
    let stdin_given = opts.stdin.clone();
    tokio::spawn(async move {
      let started = Instant::now();
      // stdin: what the options give, else what arrives on the control channel until it closes
      let stdin = match stdin_given {
        Some(d) => Some(d),
        None if open_stdin => {
          let mut buf = Vec::new();
          let collect = async {
            while let Some(c) = control_rx.recv().await {
              match c {
                Control::Stdin(d) => buf.extend_from_slice(&d),
                Control::CloseStdin => return true,
                Control::Signal(_) => return false,
              }
            }
            false
          };
          match tokio::time::timeout(timeout, collect).await {
            Ok(true) => Some(buf),
            _ => {
              let _ = done_tx.send(Some(Ok(killed(started, None))));
              return;
            }
          }
        }
        None => None,
      };
      let run = chan.call("execute", h, call_args, stdin, timeout + EXECUTE_GRACE);
      let killed_by = async {
        while let Some(c) = control_rx.recv().await {
          if let Control::Signal(sig) = c {
            return sig;
          }
        }
        std::future::pending::<i32>().await
      };
      let outcome = tokio::select! {
        r = run => match r {
          Ok(rep) => {
            let j = &rep.json;
            let decode = |k: &str| {
              use base64::Engine;
              base64::engine::general_purpose::STANDARD.decode(j.get(k).and_then(Value::as_str).unwrap_or("")).unwrap_or_default()
            };
            let (mut stdout, mut stderr) = (decode("stdout"), decode("stderr"));
            let truncated = stdout.len() > cap || stderr.len() > cap;
            stdout.truncate(cap);
            stderr.truncate(cap);
            if let Some(s) = &sink {
              if !stdout.is_empty() { s(OutStream::Stdout, &stdout); }
              if !stderr.is_empty() { s(OutStream::Stderr, &stderr); }
            }
            let timed_out = j.get("timedOut").and_then(Value::as_bool).unwrap_or(false);
            Ok(ExecOutput {
              exit_code: if timed_out { 124 } else { j.get("exitCode").and_then(Value::as_i64).unwrap_or(0) },
              stdout,
              stderr,
              duration: started.elapsed(),
              timed_out,
              truncated,
              signal: j.get("signal").and_then(Value::as_str).map(str::to_string),
              max_rss_kb: None,
            })
          }
          // the provider did not answer within the command's timeout: a timed-out command
          Err(e) if e.message.contains("did not answer within") => Ok(ExecOutput { timed_out: true, exit_code: 124, ..killed(started, None) }),
          Err(e) => Err(e),
        },
        sig = killed_by => Ok(killed(started, Some(sig))),
      };
      let _ = done_tx.send(Some(outcome));
    });
    Ok(Spawned { pid: 0, control: control_tx, done: done_rx })
  }

  async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let r = async {
      let h = self.running("writeFile")?;
      let p = self.resolve(path)?;
      Ok((p.clone(), self.call("writeFile", h, json!({ "path": p }), Some(content), self.chan.call_timeout).await))
    }
    .await;
    match r {
      Ok((p, rep)) => FileOp { content: None, ..self.file_op(&p, rep) },
      Err(e) => self.file_op(path, Err(e)),
    }
  }

  async fn read_file(&self, path: &str) -> FileOp {
    self.read_file_max(path, crate::core::sandbox::MAX_READ_BYTES).await
  }

  async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let r = async {
      let h = self.running("readFile")?;
      let p = self.resolve(path)?;
      Ok((p.clone(), self.call("readFile", h, json!({ "path": p }), None, self.chan.call_timeout).await))
    }
    .await;
    match r {
      Ok((p, rep)) => {
        let mut op = self.file_op(&p, rep);
        if let Some(c) = op.content.as_mut() {
          c.truncate(max);
        }
        op
      }
      Err(e) => self.file_op(path, Err(e)),
    }
  }

  async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    let r = async {
      let h = self.running("deleteFile")?;
      let p = self.resolve(path)?;
      Ok((p.clone(), self.call("deleteFile", h, json!({ "path": p, "recursive": recursive }), None, self.chan.call_timeout).await))
    }
    .await;
    match r {
      Ok((p, rep)) => FileOp { content: None, ..self.file_op(&p, rep) },
      Err(e) => self.file_op(path, Err(e)),
    }
  }

  async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    self.list_paths(path, false, all).await
  }

  async fn list_paths(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<String>> {
    let h = self.running("listFiles")?;
    let p = self.resolve(path)?;
    let rep = self.call("listFiles", h, json!({ "path": p, "recursive": recursive, "all": all }), None, self.chan.call_timeout).await?;
    let names: Vec<String> = serde_json::from_value(rep.json).unwrap_or_default();
    Ok(names.into_iter().filter(|n| all || !n.split('/').any(|part| part.starts_with('.'))).collect())
  }

  async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    let h = self.running("listFilesDetailed")?;
    let p = self.resolve(path)?;
    let rep = self.call("listFilesDetailed", h, json!({ "path": p, "recursive": recursive, "all": all }), None, self.chan.call_timeout).await?;
    let list = rep.json.as_array().cloned().unwrap_or_default();
    Ok(list
      .iter()
      .filter_map(|e| {
        let path = e.get("path").or_else(|| e.get("name")).and_then(Value::as_str)?.to_string();
        Some(FileInfo {
          name: path.rsplit('/').next().unwrap_or(&path).to_string(),
          kind: match e.get("type").and_then(Value::as_str) {
            Some("directory") => "directory",
            Some("symlink") => "symlink",
            Some("file") | None => "file",
            Some(_) => "other",
          },
          size: num(e, "size"),
          mtime_ms: num(e, "mtimeMs"),
          permissions: e.get("permissions").and_then(Value::as_str).unwrap_or("644").to_string(),
          path,
        })
      })
      .filter(|f| all || !f.name.starts_with('.'))
      .collect())
  }

  async fn stats(&self) -> Result<Stats> {
    if self.state_now() != State::Running {
      return Ok(Stats { memory_usage_mb: 0.0, cpu_percent: 0.0, disk_usage_mb: 0.0, network_rx_mb: 0.0, network_tx_mb: 0.0 });
    }
    let h = self.running("getStats")?;
    let j = self.call("getStats", h, Value::Null, None, self.chan.call_timeout).await?.json;
    Ok(Stats {
      memory_usage_mb: num(&j, "memoryUsageMB"),
      cpu_percent: num(&j, "cpuPercent"),
      disk_usage_mb: num(&j, "diskUsageMB"),
      network_rx_mb: num(&j, "networkRxMB"),
      network_tx_mb: num(&j, "networkTxMB"),
    })
  }

  async fn health(&self) -> Health {
    let h = match self.running("healthCheck") {
      Ok(h) => h,
      Err(e) => return Health { healthy: false, message: Some(e.message) },
    };
    match self.call("healthCheck", h, Value::Null, None, self.chan.call_timeout).await {
      Ok(rep) => Health {
        healthy: rep.json.get("healthy").and_then(Value::as_bool).unwrap_or(false),
        message: rep.json.get("message").and_then(Value::as_str).map(str::to_string),
      },
      Err(e) => Health { healthy: false, message: Some(e.message) },
    }
  }

  async fn kill_all(&self) -> Result<()> {
    let h = self.handle("killAll")?;
    match self.call("killAll", h, Value::Null, None, self.chan.call_timeout).await {
      // nothing of ours runs between calls: commands only run to their end
      Err(e) if e.code == ErrorCode::NotSupported => Ok(()),
      r => r.map(|_| ()),
    }
  }

  async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    Ok(Vec::new())
  }

  async fn reset(&self) -> Result<()> {
    let h = self.running("reset")?;
    self.call("reset", h, Value::Null, None, self.chan.call_timeout).await.map(|_| ())
  }
}

/// The outcome of a command we stopped waiting for (killed, or its stdin never closed).
fn killed(started: Instant, sig: Option<i32>) -> ExecOutput {
  let sig = sig.unwrap_or(9);
  ExecOutput {
    exit_code: 128 + sig as i64,
    stdout: Vec::new(),
    stderr: Vec::new(),
    duration: started.elapsed(),
    timed_out: false,
    truncated: false,
    signal: Some(crate::core::process::signal_name(sig)),
    max_rss_kb: None,
  }
}
