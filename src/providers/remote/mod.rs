//! Provider `remote`: a sandbox of a sandbox service (`agentic-sandbox serve`, `SandboxServer`)
//! reached over its `/v1` API, so that `new SandboxManager({ provider: 'remote', remote: { url,
//! apiKey } })` gives the same `Sandbox`, sessions and executor as local mode: the client's
//! `AnySandbox` (logs, command policy, counters, runCode, runTests, the agent loop) runs here and
//! drives this provider, which forwards each provider call to the server's sandbox.
//!
//! - `wire`: the process stream (NDJSON events), shared with the server;
//! - `client`: options, calls with deadlines, retries of idempotent calls, bounded reads, errors.
//!
//! What the host never trusts: every answer is read up to a bound (file reads to the size asked
//! for, listings to `client::MAX_JSON`, a process's output to its `maxOutputBytes`, stream lines to
//! `wire::MAX_LINE`). The sandbox's config is sent without what the client does itself
//! (installPackages, startupScript, commandPolicy: provisioning and the policy run client-side, as
//! for every provider) and the server bounds it by its own (see `server::v1::sanitize`).

pub mod client;
#[cfg(test)]
pub(crate) mod e2e_tests;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::core::config::SandboxConfig;
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::process::{Control, ExecOutput, OutputSink, Spawned};
use crate::core::provider::{ProgressFn, Provider, ProviderFactory};
use crate::core::types::{ExecOptions, FileInfo, FileOp, Health, ProcessEntry, State, Stats};
pub use client::{Client, RemoteOptions};
use client::{encode, encode_segment, read_limited, Payload, START_TIMEOUT};
use wire::{Capped, Event, Lines};

/// Output kept per stream when a command gives no `maxOutputBytes` (the server may cut sooner).
const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// How long past its timeout a command's stream may run before the client gives up on it.
const STREAM_GRACE: Duration = Duration::from_secs(15);

/// Longest time `kill_all_sync` spends on its requests.
const EXIT_BUDGET: Duration = Duration::from_millis(2500);

/// What an exit hook needs to destroy one server-side sandbox: `DELETE url+path` with the key.
#[derive(Clone)]
struct ExitTarget {
  url: String,
  api_key: Option<String>,
  path: String,
}

/// Server-side sandboxes of this process not destroyed yet, by our sandbox id.
fn live() -> &'static Mutex<std::collections::HashMap<String, ExitTarget>> {
  static LIVE: std::sync::OnceLock<Mutex<std::collections::HashMap<String, ExitTarget>>> = std::sync::OnceLock::new();
  LIVE.get_or_init(Default::default)
}

/// Best-effort synchronous destroy (`DELETE /v1/sandboxes/{id}`, or the session's close) of every
/// server-side sandbox this process made and did not destroy, for the exit hooks: on its own
/// thread and runtime, within ~3 s. The server would otherwise keep them until their lifetime ends.
pub fn kill_all_sync() {
  let targets: Vec<ExitTarget> = live().lock().unwrap().drain().map(|(_, t)| t).collect();
  if targets.is_empty() {
    return;
  }
  let worker = std::thread::spawn(move || {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    rt.block_on(async move {
      let build = |direct: bool| {
        let b = reqwest::Client::builder().timeout(EXIT_BUDGET).connect_timeout(EXIT_BUDGET);
        if direct { b.no_proxy() } else { b }.build().ok()
      };
      let (Some(direct), Some(proxied)) = (build(true), build(false)) else { return };
      let kills = targets.iter().map(|t| {
        let http = if crate::providers::e2b::client::is_loopback(&t.url) { &direct } else { &proxied };
        let mut req = http.delete(format!("{}{}", t.url, t.path));
        if let Some(k) = &t.api_key {
          req = req.bearer_auth(k);
        }
        async move {
          if let Err(e) = req.send().await {
            tracing::warn!(path = %t.path, error = %e, "exit: could not destroy a remote sandbox");
          }
        }
      });
      let _ = tokio::time::timeout(EXIT_BUDGET + Duration::from_millis(300), futures_util::future::join_all(kills)).await;
    });
  });
  let _ = worker.join();
}

/// The sandbox's config as sent to the server.
pub fn wire_config(c: &SandboxConfig) -> Value {
  let mut v = json!({
    "limits": crate::core::config::limits_to_json(&c.limits),
    "networkMode": c.network_mode.as_str(),
    "env": c.env,
    "workdir": c.workdir,
    "gpu": c.gpu,
  });
  if let Some(n) = &c.network {
    v["network"] = n.to_json();
  }
  match &c.template {
    Some(t) => v["template"] = json!(t),
    None => v["image"] = json!(c.image),
  }
  if let Some(m) = &c.metadata {
    v["metadata"] = m.clone();
  }
  if let Some(n) = &c.name {
    v["name"] = json!(n);
  }
  v
}

pub struct RemoteFactory;

impl ProviderFactory for RemoteFactory {
  fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>> {
    let opts = RemoteOptions::resolve(config.remote.as_ref(), &|k| std::env::var(k).ok())?;
    let mut s = RemoteSandbox::new(config.clone(), opts)?;
    if let Some(id) = id {
      s.id = id.to_string();
    }
    Ok(Arc::new(s))
  }
}

struct Inner {
  state: State,
  /// the server's id of the sandbox, once created
  server_id: Option<String>,
  engine: String,
  /// the egress rules and counters as the server last described them
  network: Option<crate::core::provider::NetworkStatus>,
}

/// `network` of the server's description of a sandbox (sizes are the host's own: the lists are
/// what this client sent; counters and the gateway address are numbers and an address).
fn network_of(v: &Value) -> Option<crate::core::provider::NetworkStatus> {
  let n = v.get("network").filter(|n| n.is_object())?;
  let list = |k: &str| -> Vec<String> {
    n[k].as_array().map(|a| a.iter().take(1000).filter_map(|x| x.as_str().map(|s| s.chars().take(300).collect())).collect()).unwrap_or_default()
  };
  Some(crate::core::provider::NetworkStatus {
    policy: crate::core::config::NetworkPolicy { allow_out: list("allowOut"), deny_out: list("denyOut") },
    gateway: n["gateway"].as_str().map(|g| g.chars().take(64).collect()),
    allowed: n["allowed"].as_u64().unwrap_or(0),
    denied: n["denied"].as_u64().unwrap_or(0),
  })
}

pub struct RemoteSandbox {
  pub id: String,
  config: SandboxConfig,
  client: Arc<Client>,
  /// a session's thread: destroy closes the session on the server
  session_thread: Option<String>,
  inner: Mutex<Inner>,
}

impl RemoteSandbox {
  pub fn new(config: SandboxConfig, opts: RemoteOptions) -> Result<Self> {
    Ok(Self {
      id: format!("remote-{:016x}", rand::random::<u64>()),
      config,
      client: Arc::new(Client::new(opts)?),
      session_thread: None,
      inner: Mutex::new(Inner { state: State::Created, server_id: None, engine: "remote".into(), network: None }),
    })
  }

  /// A sandbox the server already runs (a session's): running, known by its server id.
  pub fn attached(config: SandboxConfig, client: Arc<Client>, server_id: &str, thread: Option<String>) -> Self {
    let s = Self {
      id: server_id.to_string(),
      config,
      client,
      session_thread: thread,
      inner: Mutex::new(Inner { state: State::Running, server_id: Some(server_id.to_string()), engine: "remote".into(), network: None }),
    };
    s.remember(server_id);
    s
  }

  pub fn server_id(&self) -> Option<String> {
    self.inner.lock().unwrap().server_id.clone()
  }

  /// What the exit hook destroys for this sandbox.
  fn remember(&self, sid: &str) {
    let path = match &self.session_thread {
      Some(t) => format!("/v1/sessions/{}", encode_segment(t)),
      None => self.path(sid, ""),
    };
    let target = ExitTarget { url: self.client.opts.url.clone(), api_key: self.client.opts.api_key.clone(), path };
    live().lock().unwrap().insert(self.id.clone(), target);
  }

  fn set_state(&self, s: State) {
    self.inner.lock().unwrap().state = s;
  }

  fn sid(&self, what: &str) -> Result<String> {
    let i = self.inner.lock().unwrap();
    match (i.state, &i.server_id) {
      (State::Destroyed, _) => Err(SandboxError::new(ErrorCode::SandboxDestroyed, format!("{what}: sandbox {} was destroyed", self.id))),
      (_, Some(id)) => Ok(id.clone()),
      (_, None) => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("{what}: sandbox {} is not started; call start() first", self.id))),
    }
  }

  fn running(&self, what: &str) -> Result<String> {
    let id = self.sid(what)?;
    match self.inner.lock().unwrap().state {
      State::Running => Ok(id),
      s => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("{what}: sandbox {} is {}, not running", self.id, s.as_str()))),
    }
  }

  fn path(&self, sid: &str, tail: &str) -> String {
    format!("/v1/sandboxes/{}{tail}", encode_segment(sid))
  }

  fn resolve(&self, path: &str) -> String {
    crate::core::paths::resolve(&self.config.workdir, path).unwrap_or_else(|_| path.to_string())
  }

  async fn call(&self, method: Method, path: &str, payload: Payload, idempotent: bool) -> Result<Value> {
    self.client.json(method, path, payload, idempotent, self.client.opts.timeout).await
  }

  fn file_op(&self, path: &str, r: Result<Value>) -> FileOp {
    match r {
      Ok(v) => {
        let p = v["path"].as_str().unwrap_or(path).to_string();
        if v["success"].as_bool() == Some(true) {
          FileOp::ok(&p, None)
        } else {
          FileOp {
            path: p,
            content: None,
            success: false,
            error: Some(v["error"].as_str().unwrap_or("failed").chars().take(4096).collect()),
            code: v["code"].as_str().and_then(SandboxError::code_from_str),
          }
        }
      }
      Err(e) => FileOp::failed_with(path, e),
    }
  }
}

fn num(v: &Value, k: &str) -> f64 {
  v.get(k).and_then(Value::as_f64).filter(|n| n.is_finite()).unwrap_or(0.0)
}

#[async_trait]
impl Provider for RemoteSandbox {
  fn id(&self) -> &str {
    &self.id
  }
  fn config(&self) -> &SandboxConfig {
    &self.config
  }
  fn state(&self) -> State {
    self.inner.lock().unwrap().state
  }
  fn engine_name(&self) -> String {
    self.inner.lock().unwrap().engine.clone()
  }

  async fn start(&self, _progress: Option<ProgressFn>) -> Result<()> {
    let sid = {
      let i = self.inner.lock().unwrap();
      match i.state {
        State::Destroyed => return Err(SandboxError::new(ErrorCode::SandboxDestroyed, format!("sandbox {} was destroyed", self.id))),
        State::Running => return Ok(()),
        _ => i.server_id.clone(),
      }
    };
    self.set_state(State::Starting);
    let r = match &sid {
      None => {
        let body = json!({ "config": wire_config(&self.config), "start": true });
        self.client.json(Method::POST, "/v1/sandboxes", Payload::Json(body), false, START_TIMEOUT).await
      }
      Some(sid) => self.client.json(Method::POST, &self.path(sid, "/start"), Payload::None, true, START_TIMEOUT).await,
    };
    match r {
      Ok(v) => {
        let mut i = self.inner.lock().unwrap();
        if let Some(id) = v["id"].as_str() {
          i.server_id = Some(id.to_string());
        }
        if let Some(e) = v["engine"].as_str() {
          i.engine = e.chars().take(40).collect();
        }
        if let Some(n) = network_of(&v) {
          i.network = Some(n);
        }
        i.state = State::Running;
        if let Some(sid) = &i.server_id {
          self.remember(sid);
        }
        Ok(())
      }
      Err(e) => {
        self.set_state(State::Error);
        Err(e)
      }
    }
  }

  async fn stop(&self) -> Result<()> {
    if self.state() != State::Running {
      return Ok(());
    }
    let sid = self.sid("stop")?;
    self.set_state(State::Stopping);
    let r = self.call(Method::POST, &self.path(&sid, "/stop"), Payload::None, true).await.map(|_| ());
    self.set_state(if r.is_ok() { State::Stopped } else { State::Error });
    r
  }

  async fn destroy(&self) -> Result<()> {
    let sid = {
      let mut i = self.inner.lock().unwrap();
      if i.state == State::Destroyed {
        return Ok(());
      }
      i.state = State::Destroyed;
      i.server_id.clone()
    };
    let Some(sid) = sid else { return Ok(()) };
    let path = match &self.session_thread {
      Some(t) => format!("/v1/sessions/{}", encode_segment(t)),
      None => self.path(&sid, ""),
    };
    match self.call(Method::DELETE, &path, Payload::None, true).await {
      Ok(_) => {
        live().lock().unwrap().remove(&self.id);
        Ok(())
      }
      // already gone (its lifetime ended, or a retried delete went through)
      Err(e) if e.code == ErrorCode::SandboxNotFound => {
        live().lock().unwrap().remove(&self.id);
        Ok(())
      }
      Err(e) => {
        self.inner.lock().unwrap().state = State::Error;
        Err(e)
      }
    }
  }

  async fn force_remove(&self) -> Result<bool> {
    let Some(sid) = self.server_id() else { return Ok(false) };
    match self.call(Method::DELETE, &self.path(&sid, ""), Payload::None, true).await {
      Ok(_) => Ok(true),
      Err(e) if e.code == ErrorCode::SandboxNotFound => Ok(false),
      Err(e) => Err(e),
    }
  }

  async fn spawn(&self, command: &str, args: &[String], opts: &ExecOptions, background: bool, open_stdin: bool, sink: Option<OutputSink>) -> Result<Spawned> {
    crate::core::sandbox::refuse_stream_only(opts, "remote")?;
    let sid = self.running("execute")?;
    let (timeout, _) = crate::core::sandbox::prepare_spawn(&self.config, &self.config.workdir, command, opts, background)?;
    let cap = opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT);
    let mut options = json!({ "env": opts.env, "maxOutputBytes": cap });
    if let Some(t) = opts.timeout {
      options["timeout"] = json!(t);
    }
    if let Some(w) = &opts.workdir {
      options["workdir"] = json!(w);
    }
    if let Some(s) = &opts.stdin {
      use base64::Engine;
      options["stdin"] = json!(base64::engine::general_purpose::STANDARD.encode(s));
    }
    let body = json!({ "command": command, "args": args, "options": options, "background": background, "openStdin": open_stdin });
    let path = self.path(&sid, "/processes");
    let limit = self.client.opts.timeout;
    let mut res = self.client.send(Method::POST, &path, Payload::Json(body), false, limit).await?;
    // the first event is `started`; what came with it is handed to the reader
    let mut lines = Lines::new(wire::MAX_LINE);
    let mut pending: Vec<Event> = Vec::new();
    let first = async {
      loop {
        let chunk = res
          .chunk()
          .await
          .map_err(|e| SandboxError::new(ErrorCode::ProviderUnavailable, format!("the sandbox service's process stream broke ({e})")))?
          .ok_or_else(|| SandboxError::provider("the sandbox service's process stream ended before the process started"))?;
        for l in lines.push(&chunk)? {
          pending.push(wire::decode(&l)?);
        }
        if let Some(pos) = pending.iter().position(|e| matches!(e, Event::Started { .. })) {
          if let Event::Started { pid, handle } = pending.remove(pos) {
            return Ok::<_, SandboxError>((pid, handle));
          }
        }
        if let Some(Event::Error { code, message }) = pending.iter().find(|e| matches!(e, Event::Error { .. })) {
          return Err(coded(code, message));
        }
      }
    };
    let (pid, handle) = tokio::time::timeout(limit, first)
      .await
      .map_err(|_| SandboxError::new(ErrorCode::ProviderUnavailable, format!("the sandbox service did not start {command} within {} s", limit.as_secs_f64())))??;
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Control>();
    let (done_tx, done_rx) = watch::channel(None);
    let started = Instant::now();
    // the reader: output to the sink (capped), the exit to `done`
    let deadline = timeout.map(|t| t + STREAM_GRACE);
    tokio::spawn(async move {
      let mut out = Capped::new(cap);
      let feed = |ev: Event, out: &mut Capped| -> Option<Result<ExecOutput>> {
        match ev {
          Event::Output(s, d) => {
            let kept = out.add(s, &d);
            if let (Some(sink), false) = (&sink, kept.is_empty()) {
              sink(s, kept);
            }
            None
          }
          Event::Exit(x) => Some(Ok(ExecOutput {
            exit_code: x.exit_code,
            stdout: std::mem::take(&mut out.stdout),
            stderr: std::mem::take(&mut out.stderr),
            duration: Duration::from_secs_f64(x.duration_ms / 1000.0),
            timed_out: x.timed_out,
            truncated: x.truncated || out.truncated,
            signal: x.signal,
            max_rss_kb: x.max_rss_kb,
          })),
          Event::Error { code, message } => Some(Err(coded(&code, &message))),
          Event::Started { .. } => None,
        }
      };
      let read = async {
        for ev in pending {
          if let Some(r) = feed(ev, &mut out) {
            return r;
          }
        }
        loop {
          let chunk = match res.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(SandboxError::provider("the sandbox service's process stream ended before the process's exit")),
            Err(e) => return Err(SandboxError::new(ErrorCode::ProviderUnavailable, format!("the sandbox service's process stream broke ({e})"))),
          };
          let ls = lines.push(&chunk)?;
          for l in ls {
            if let Some(r) = feed(wire::decode(&l)?, &mut out) {
              return r;
            }
          }
        }
      };
      let r = match deadline {
        None => read.await,
        Some(d) => match tokio::time::timeout(d, read).await {
          Ok(r) => r,
          // dropping the stream kills the process on the server
          Err(_) => Ok(ExecOutput {
            exit_code: 124,
            stdout: Vec::new(),
            stderr: Vec::new(),
            duration: started.elapsed(),
            timed_out: true,
            truncated: false,
            signal: Some("SIGKILL".into()),
            max_rss_kb: None,
          }),
        },
      };
      let _ = done_tx.send(Some(r));
    });
    // the controller: stdin, close-stdin and signals, in order, until the process ends
    let client = self.client.clone();
    let base = format!("{path}/{}", encode_segment(&handle));
    let mut ended = done_rx.clone();
    tokio::spawn(async move {
      loop {
        let c = tokio::select! {
          c = control_rx.recv() => match c { Some(c) => c, None => return },
          _ = ended.wait_for(|d| d.is_some()) => return,
        };
        let limit = client.opts.timeout;
        let r = match c {
          Control::Stdin(d) => client.send(Method::POST, &format!("{base}/stdin"), Payload::Bytes(d.into()), false, limit).await,
          Control::CloseStdin => client.send(Method::POST, &format!("{base}/close-stdin"), Payload::None, true, limit).await,
          Control::Signal(s) => client.send(Method::POST, &format!("{base}/kill"), Payload::Json(json!({ "signal": s })), true, limit).await,
        };
        if let Err(e) = r {
          tracing::debug!(error = %e, "provider 'remote': a process control call failed");
        }
      }
    });
    Ok(Spawned { pid, control: control_tx, done: done_rx })
  }

  async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let sid = match self.running("writeFile") {
      Ok(s) => s,
      Err(e) => return FileOp::failed_with(&self.resolve(path), e),
    };
    let url = format!("{}?path={}", self.path(&sid, "/files"), encode(path));
    let r = self.call(Method::PUT, &url, Payload::Bytes(content.into()), true).await;
    self.file_op(&self.resolve(path), r)
  }

  async fn read_file(&self, path: &str) -> FileOp {
    self.read_file_max(path, crate::core::sandbox::MAX_READ_BYTES).await
  }

  async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let resolved = self.resolve(path);
    let sid = match self.running("readFile") {
      Ok(s) => s,
      Err(e) => return FileOp::failed_with(&resolved, e),
    };
    let url = format!("{}?path={}&max={max}", self.path(&sid, "/files"), encode(path));
    let limit = self.client.opts.timeout.max(Duration::from_secs(60));
    let r = async {
      let res = self.client.send(Method::GET, &url, Payload::None, true, limit).await?;
      let p = res.headers().get("x-sandbox-path").and_then(|v| v.to_str().ok()).map(str::to_string);
      let mut body = read_limited(res, max, limit).await?;
      body.truncate(max);
      Ok::<_, SandboxError>((p, body))
    }
    .await;
    match r {
      Ok((p, body)) => FileOp::ok(p.as_deref().unwrap_or(&resolved), Some(body)),
      Err(e) => {
        let mut op = FileOp::failed_with(&resolved, e.clone());
        if e.foreign_code.as_deref() == Some("FILE_ERROR") {
          op.code = None;
        }
        op.error = op.error.map(|m| m.split_once(": ").map_or(m.clone(), |(_, rest)| rest.to_string()));
        op
      }
    }
  }

  async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    let sid = match self.running("deleteFile") {
      Ok(s) => s,
      Err(e) => return FileOp::failed_with(&self.resolve(path), e),
    };
    let url = format!("{}?path={}&recursive={}", self.path(&sid, "/files"), encode(path), recursive);
    let r = self.call(Method::DELETE, &url, Payload::None, true).await;
    self.file_op(&self.resolve(path), r)
  }

  async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    self.list_paths(path, false, all).await
  }

  async fn list_paths(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<String>> {
    let sid = self.running("listFiles")?;
    let url = format!("{}?path={}&all={all}&recursive={recursive}", self.path(&sid, "/files/list"), encode(path));
    let v = self.call(Method::GET, &url, Payload::None, true).await?;
    Ok(v["names"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()).unwrap_or_default())
  }

  async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    let sid = self.running("listFilesDetailed")?;
    let url = format!("{}?path={}&all={all}&recursive={recursive}&detailed=true", self.path(&sid, "/files/list"), encode(path));
    let v = self.call(Method::GET, &url, Payload::None, true).await?;
    let list = v["files"].as_array().cloned().unwrap_or_default();
    Ok(list
      .iter()
      .filter_map(|e| {
        let path = e.get("path").and_then(Value::as_str)?.to_string();
        Some(FileInfo {
          name: e.get("name").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| path.rsplit('/').next().unwrap_or(&path).to_string()),
          kind: match e.get("type").and_then(Value::as_str) {
            Some("directory") => "directory",
            Some("symlink") => "symlink",
            Some("file") => "file",
            _ => "other",
          },
          size: num(e, "size"),
          mtime_ms: num(e, "mtimeMs"),
          permissions: e.get("permissions").and_then(Value::as_str).unwrap_or("").chars().take(8).collect(),
          path,
        })
      })
      .collect())
  }

  async fn stats(&self) -> Result<Stats> {
    if self.state() != State::Running {
      return Ok(Stats::default());
    }
    let sid = self.running("getStats")?;
    let j = self.call(Method::GET, &self.path(&sid, "/stats"), Payload::None, true).await?;
    Ok(Stats {
      memory_usage_mb: num(&j, "memoryUsageMB"),
      cpu_percent: num(&j, "cpuPercent"),
      disk_usage_mb: num(&j, "diskUsageMB"),
      network_rx_mb: num(&j, "networkRxMB"),
      network_tx_mb: num(&j, "networkTxMB"),
    })
  }

  async fn health(&self) -> Health {
    let sid = match self.running("healthCheck") {
      Ok(s) => s,
      Err(e) => return Health { healthy: false, message: Some(e.message) },
    };
    match self.call(Method::GET, &self.path(&sid, "/health"), Payload::None, true).await {
      Ok(v) => Health { healthy: v["healthy"].as_bool().unwrap_or(false), message: v["message"].as_str().map(|m| m.chars().take(4096).collect()) },
      Err(e) => Health { healthy: false, message: Some(e.message) },
    }
  }

  async fn kill_all(&self) -> Result<()> {
    let sid = self.sid("killAll")?;
    self.call(Method::DELETE, &self.path(&sid, "/processes"), Payload::None, true).await.map(|_| ())
  }

  async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    let sid = self.running("listProcesses")?;
    let v = self.call(Method::GET, &self.path(&sid, "/processes"), Payload::None, true).await?;
    Ok(v["processes"]
      .as_array()
      .map(|a| {
        a.iter()
          .filter_map(|p| {
            Some(ProcessEntry {
              pid: u32::try_from(p["pid"].as_u64()?).ok()?,
              ppid: p["ppid"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
              state: p["state"].as_str().unwrap_or("?").chars().take(16).collect(),
              cmdline: p["cmdline"].as_array().map(|c| c.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default(),
              request: None,
              rss_kb: p["rssKb"].as_u64().unwrap_or(0),
            })
          })
          .collect()
      })
      .unwrap_or_default())
  }

  async fn reset(&self) -> Result<()> {
    let sid = self.running("reset")?;
    self.call(Method::POST, &self.path(&sid, "/reset"), Payload::None, true).await.map(|_| ())
  }

  async fn update_network(&self, policy: crate::core::config::NetworkPolicy) -> Result<()> {
    let sid = self.running("updateNetwork")?;
    let v = self.call(Method::PUT, &self.path(&sid, "/network"), Payload::Json(policy.to_json()), true).await?;
    self.inner.lock().unwrap().network = network_of(&v).or(Some(crate::core::provider::NetworkStatus { policy, ..Default::default() }));
    Ok(())
  }

  fn network_status(&self) -> Option<crate::core::provider::NetworkStatus> {
    let known = self.inner.lock().unwrap().network.clone();
    known.or_else(|| self.config.network.clone().map(|policy| crate::core::provider::NetworkStatus { policy, ..Default::default() }))
  }
}

/// An error event's code and message as the library's error.
fn coded(code: &str, message: &str) -> SandboxError {
  match SandboxError::code_from_str(code) {
    Some(c) => SandboxError::new(c, message),
    None => SandboxError { code: ErrorCode::ProviderError, message: message.to_string(), foreign_code: Some(code.to_string()) },
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_config_sent_leaves_out_what_the_client_does() {
    let c = crate::core::config::resolve(&json!({
      "provider": "remote", "remote": { "url": "http://127.0.0.1:1", "apiKey": "k-secret-000000" },
      "image": "agentic-sandbox/busybox:1", "env": { "A": "1" }, "commandPolicy": { "deny": ["rm"] }, "startupScript": "echo hi",
    }))
    .unwrap();
    let v = wire_config(&c);
    assert_eq!(v["image"], "agentic-sandbox/busybox:1");
    assert_eq!(v["env"]["A"], "1");
    for k in ["commandPolicy", "startupScript", "installPackages", "remote", "provider", "docker"] {
      assert!(v.get(k).is_none(), "{k}");
    }
    assert!(!v.to_string().contains("k-secret"));
  }
}
