//! envd's `process.Process` Connect service (Start and Connect server-streaming, List,
//! SendInput, CloseStdin, SendSignal; Update and StreamInput answer `unimplemented`). See
//! `../shared/reference/e2b-protocol.md` sections 2.5 and 3.
//!
//! Every process is a background process of the sandbox: it outlives the request that started
//! it (a client that goes away does not kill it, as on E2B) and counts against the tenant's
//! background-process limit while it runs. Its output goes through a [`Hub`] that fans it out to
//! the streams watching it (the Start stream and any Connect streams), each with a bounded
//! buffer: a client that does not read is dropped from the process, never the other way round.
//! A finished process's `end` event is kept for [`RETAIN`] so a `Connect` right after the exit
//! still answers `start` + `end`.
//!
//! Streams are HTTP 200 `application/connect+json` bodies of envelopes (`flags u8`, `len u32
//! BE`, JSON), ended by an end-of-stream envelope (flag 0x02, `{}` or `{"error":{…}}`); errors
//! found before the first event travel the same way.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{connect_error, envd_box, envd_user, resolve_path, E2bBox, HOME, USER};
use crate::core::error::{ErrorCode, SandboxError};
use crate::core::process::{ExecOutput, OutStream, OutputSink, Spawned};
use crate::core::types::ExecOptions;
use crate::providers::e2b::connect::{b64, bytes_of, encode_envelope, FLAG_COMPRESSED, FLAG_END_STREAM};
use crate::server::audit::{self, Exited};
use crate::server::metrics::Api;
use crate::server::state::AppState;

/// The media type of Connect streams (JSON codec).
pub const CONNECT_JSON: &str = "application/connect+json";
/// envd reads stdout/stderr in chunks of at most this size: one `data` event each.
pub const CHUNK: usize = 32 * 1024;
/// How long a finished process's `end` event is kept for `Connect`.
pub const RETAIN: Duration = Duration::from_secs(60);
/// envd's keepalive interval when the request has no (valid) `Keepalive-Ping-Interval`.
pub const DEFAULT_KEEPALIVE_S: u64 = 90;
/// Processes a sandbox's table holds, running and recently finished.
pub const MAX_ENTRIES: usize = 1024;
/// Streams watching one process at once.
pub const MAX_SUBSCRIBERS: usize = 32;
/// Envelopes queued for one stream before its client counts as gone (≈ 44 KiB each at most).
const SUB_BUFFER: usize = 128;
/// Output held between the spawn and the `start` event (a few milliseconds' worth).
const MAX_EARLY: usize = 1024 * 1024;
/// The one envelope of a Start/Connect request.
const MAX_REQUEST: usize = 1024 * 1024;
const MAX_ARGS: usize = 4096;
const MAX_ENVS: usize = 1024;
const MAX_TAG: usize = 1024;

// ------------------------------------------------------------------ wire

/// One envelope of `value` (never fails: a `Value` always serializes).
pub fn envelope(flags: u8, value: &Value) -> Bytes {
  Bytes::from(encode_envelope(flags, &serde_json::to_vec(value).unwrap_or_default()))
}

/// The end-of-stream envelope: `{}`, or `{"error":{"code","message"}}`.
pub fn end_stream(error: Option<(&str, &str)>) -> Bytes {
  let v = match error {
    None => json!({}),
    Some((code, message)) => json!({ "error": { "code": code, "message": message } }),
  };
  envelope(FLAG_END_STREAM, &v)
}

/// The message of a request body that must be exactly one uncompressed envelope.
pub fn decode_single(body: &[u8]) -> Result<Value, String> {
  if body.len() < 5 {
    return Err("protocol error: the request body is not a Connect envelope (fewer than 5 bytes)".into());
  }
  let flags = body[0];
  let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
  if flags & FLAG_COMPRESSED != 0 {
    return Err("protocol error: received a compressed message without negotiated compression".into());
  }
  if flags != 0 {
    return Err(format!("protocol error: unexpected envelope flags {flags:#04x}"));
  }
  if body.len() != 5 + len {
    return Err(format!("protocol error: the envelope says {len} bytes, the body holds {} (one message expected)", body.len() - 5));
  }
  let payload = &body[5..];
  if payload.is_empty() {
    return Ok(json!({}));
  }
  serde_json::from_slice(payload).map_err(|e| format!("the request message is not JSON: {e}"))
}

pub fn start_event(pid: u32) -> Value {
  json!({ "event": { "start": { "pid": pid } } })
}

pub fn data_event(stream: OutStream, data: &[u8]) -> Value {
  let key = if stream == OutStream::Stdout { "stdout" } else { "stderr" };
  json!({ "event": { "data": { key: b64(data) } } })
}

pub fn keepalive_event() -> Value {
  json!({ "event": { "keepalive": {} } })
}

/// Go's `ProcessState.String()` name of a signal ("signal: killed").
pub fn go_signal_text(sig: i32) -> String {
  match sig {
    1 => "hangup".into(),
    2 => "interrupt".into(),
    3 => "quit".into(),
    6 => "aborted".into(),
    9 => "killed".into(),
    11 => "segmentation fault".into(),
    13 => "broken pipe".into(),
    14 => "alarm clock".into(),
    15 => "terminated".into(),
    n => format!("signal {n}"),
  }
}

/// The `end` object of a process that ended: exit status N (`exitCode` omitted when 0, `error`
/// only when N ≠ 0), or killed by `signalled` (which this server sent): `exitCode` -1, `exited`
/// false (omitted), "signal: killed". Only a signal we sent counts: `docker exec` reports a
/// death by signal N as exit status 128 + N, just as a shell whose child died of it does.
pub fn end_of(out: &ExecOutput, signalled: Option<i32>) -> Value {
  if let Some(sig) = signalled {
    let by_it = out.exit_code == 128 + sig as i64 || out.signal.as_deref().and_then(crate::core::process::signal_number) == Some(sig);
    if by_it {
      let text = format!("signal: {}", go_signal_text(sig));
      return json!({ "exitCode": -1, "status": text, "error": text });
    }
  }
  let code = out.exit_code.clamp(i32::MIN as i64, i32::MAX as i64);
  if code == 0 {
    json!({ "exited": true, "status": "exit status 0" })
  } else {
    let text = format!("exit status {code}");
    json!({ "exitCode": code, "exited": true, "status": text, "error": text })
  }
}

/// `SendSignalRequest.signal`: the enum's name or number; SIGKILL and SIGTERM only (envd's set).
pub fn parse_signal(v: Option<&Value>) -> Result<i32, (&'static str, String)> {
  let n = match v {
    None | Some(Value::Null) => 0,
    Some(Value::String(s)) => match s.as_str() {
      "SIGNAL_SIGKILL" => 9,
      "SIGNAL_SIGTERM" => 15,
      "SIGNAL_UNSPECIFIED" => 0,
      other => other.parse::<i64>().map_err(|_| ("invalid_argument", format!("invalid signal: {}", clip(other, 64))))?,
    },
    Some(Value::Number(n)) => n.as_i64().ok_or_else(|| ("invalid_argument", format!("invalid signal: {n}")))?,
    Some(other) => return Err(("invalid_argument", format!("signal must be a Signal name or number, got {}", clip(&other.to_string(), 64)))),
  };
  match n {
    9 => Ok(9),
    15 => Ok(15),
    0 => Err(("unimplemented", "invalid signal: SIGNAL_UNSPECIFIED".into())),
    n => Err(("unimplemented", format!("invalid signal: {n} (SIGNAL_SIGKILL and SIGNAL_SIGTERM only)"))),
  }
}

fn clip(s: &str, max: usize) -> String {
  crate::providers::e2b::connect::truncate(s, max)
}

/// The Connect code of an error of ours.
fn code_of(e: &SandboxError) -> &'static str {
  match e.code {
    ErrorCode::InvalidArgument | ErrorCode::InvalidConfig => "invalid_argument",
    ErrorCode::PermissionDenied => "permission_denied",
    ErrorCode::QuotaExceeded | ErrorCode::InsufficientResources => "resource_exhausted",
    ErrorCode::SandboxNotFound | ErrorCode::SandboxNotRunning | ErrorCode::SandboxDestroyed => "unavailable",
    ErrorCode::NotSupported => "unimplemented",
    ErrorCode::Aborted => "canceled",
    _ => "internal",
  }
}

// ------------------------------------------------------------------ request messages

/// `ProcessSelector`: `{"pid": N}` or `{"tag": "…"}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
  Pid(u32),
  Tag(String),
}

impl std::fmt::Display for Selector {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match self {
      Selector::Pid(p) => write!(f, "process with pid {p}"),
      Selector::Tag(t) => write!(f, "process with tag {t}"),
    }
  }
}

pub fn parse_selector(msg: &Value) -> Result<Selector, String> {
  let Some(sel) = msg.get("process").filter(|v| v.is_object()) else {
    return Err("process must be a ProcessSelector object ({\"pid\": N} or {\"tag\": \"…\"})".into());
  };
  match sel.get("pid") {
    None | Some(Value::Null) => {}
    Some(v) => {
      let pid = crate::providers::e2b::connect::int_of(Some(v)).filter(|p| (0..=u32::MAX as i64).contains(p));
      return pid.map(|p| Selector::Pid(p as u32)).ok_or_else(|| format!("process.pid must be a uint32, got {}", clip(&v.to_string(), 64)));
    }
  }
  match sel.get("tag") {
    Some(Value::String(t)) if t.len() <= MAX_TAG => Ok(Selector::Tag(t.clone())),
    Some(_) => Err(format!("process.tag must be a string of at most {MAX_TAG} bytes")),
    None => Err("process must select a process by pid or tag".into()),
  }
}

/// `StartRequest`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
  pub cmd: String,
  pub args: Vec<String>,
  pub envs: BTreeMap<String, String>,
  pub cwd: Option<String>,
  pub tag: Option<String>,
  pub stdin: bool,
  pub pty: bool,
}

impl StartRequest {
  pub fn parse(msg: &Value) -> Result<Self, String> {
    let p = msg.get("process").and_then(Value::as_object).ok_or("process must be a ProcessConfig object")?;
    let cmd = match p.get("cmd") {
      Some(Value::String(s)) if !s.is_empty() && !s.contains('\0') => s.clone(),
      _ => return Err("process.cmd is required (a non-empty string)".into()),
    };
    let args = match p.get("args") {
      None | Some(Value::Null) => Vec::new(),
      Some(Value::Array(a)) if a.len() <= MAX_ARGS => a
        .iter()
        .enumerate()
        .map(|(i, v)| v.as_str().filter(|s| !s.contains('\0')).map(str::to_string).ok_or_else(|| format!("process.args[{i}] must be a string")))
        .collect::<Result<_, _>>()?,
      Some(_) => return Err(format!("process.args must be a list of at most {MAX_ARGS} strings")),
    };
    let envs = match p.get("envs") {
      None | Some(Value::Null) => BTreeMap::new(),
      Some(Value::Object(m)) if m.len() <= MAX_ENVS => m
        .iter()
        .map(|(k, v)| match v.as_str() {
          Some(s) if !k.is_empty() && !k.contains('=') && !k.contains('\0') && !s.contains('\0') => Ok((k.clone(), s.to_string())),
          _ => Err(format!("process.envs[{}] must be a string under a valid variable name", clip(k, 64))),
        })
        .collect::<Result<_, _>>()?,
      Some(_) => return Err(format!("process.envs must be a map of at most {MAX_ENVS} strings")),
    };
    let cwd = match p.get("cwd") {
      None | Some(Value::Null) => None,
      Some(Value::String(s)) if !s.contains('\0') => Some(s.clone()),
      Some(_) => return Err("process.cwd must be a string".into()),
    };
    let tag = match msg.get("tag") {
      None | Some(Value::Null) => None,
      Some(Value::String(t)) if t.len() <= MAX_TAG => Some(t.clone()),
      Some(_) => return Err(format!("tag must be a string of at most {MAX_TAG} bytes")),
    };
    let stdin = match msg.get("stdin") {
      None | Some(Value::Null) => true,
      Some(Value::Bool(b)) => *b,
      Some(_) => return Err("stdin must be a boolean".into()),
    };
    let pty = !matches!(msg.get("pty"), None | Some(Value::Null));
    Ok(Self { cmd, args, envs, cwd, tag, stdin, pty })
  }

  /// The `ProcessConfig` as List reports it (as the client sent it; empty fields omitted).
  pub fn config(&self) -> Value {
    let mut c = Map::new();
    c.insert("cmd".into(), json!(self.cmd));
    if !self.args.is_empty() {
      c.insert("args".into(), json!(self.args));
    }
    if !self.envs.is_empty() {
      c.insert("envs".into(), json!(self.envs));
    }
    if let Some(cwd) = &self.cwd {
      c.insert("cwd".into(), json!(cwd));
    }
    Value::Object(c)
  }
}

// ------------------------------------------------------------------ fan-out

/// What a stream's channel carries: an envelope, or the last one (end-of-stream).
#[derive(Debug)]
enum Out {
  Frame(Bytes),
  Close(Bytes),
}

struct Sub {
  tx: mpsc::Sender<Out>,
  /// set when the stream was dropped for not reading: it ends with `resource_exhausted`
  lagged: Arc<AtomicBool>,
}

impl Sub {
  /// Queues a frame, keeping two places for the `end` event and the end-of-stream envelope.
  /// False when the stream is gone or full (then it is dropped).
  fn send(&self, frame: Bytes) -> bool {
    if self.tx.capacity() <= 2 {
      self.lagged.store(true, Ordering::SeqCst);
      return false;
    }
    self.tx.try_send(Out::Frame(frame)).is_ok()
  }
}

/// The receiving side of one stream.
struct Subscription {
  rx: mpsc::Receiver<Out>,
  lagged: Arc<AtomicBool>,
}

fn subscription() -> (Sub, Subscription) {
  let (tx, rx) = mpsc::channel(SUB_BUFFER);
  let lagged = Arc::new(AtomicBool::new(false));
  (Sub { tx, lagged: lagged.clone() }, Subscription { rx, lagged })
}

#[derive(Default)]
struct HubState {
  /// the `start` event went out: output goes to the streams, not to `early`
  started: bool,
  early: Vec<(OutStream, Vec<u8>)>,
  early_bytes: usize,
  subs: Vec<Sub>,
  /// envd stops forwarding output once it sent SIGKILL or SIGTERM
  output_cancelled: bool,
  /// the `end` object, once the process ended
  end: Option<Value>,
  ended_at: Option<Instant>,
  /// no more frames: the process ended or its table went
  closed: bool,
}

/// One process's output fan-out.
#[derive(Default)]
struct Hub {
  st: Mutex<HubState>,
}

impl Hub {
  fn output(&self, stream: OutStream, data: &[u8]) {
    let mut st = self.st.lock().unwrap();
    if st.closed || st.output_cancelled || data.is_empty() {
      return;
    }
    if !st.started {
      let room = MAX_EARLY.saturating_sub(st.early_bytes).min(data.len());
      if room > 0 {
        st.early_bytes += room;
        st.early.push((stream, data[..room].to_vec()));
      }
      return;
    }
    for chunk in data.chunks(CHUNK) {
      let frame = envelope(0, &data_event(stream, chunk));
      st.subs.retain(|s| s.send(frame.clone()));
    }
  }

  /// The `start` event to the streams there are (the Start stream), then the output so far.
  fn start(&self, pid: u32) {
    let mut st = self.st.lock().unwrap();
    let frame = envelope(0, &start_event(pid));
    st.subs.retain(|s| s.send(frame.clone()));
    st.started = true;
    for (stream, data) in std::mem::take(&mut st.early) {
      for chunk in data.chunks(CHUNK) {
        let frame = envelope(0, &data_event(stream, chunk));
        st.subs.retain(|s| s.send(frame.clone()));
      }
    }
    st.early_bytes = 0;
  }

  fn add(&self, sub: Sub) {
    self.st.lock().unwrap().subs.push(sub);
  }

  /// A new stream from now on, after a `start` event; or the retained end of a finished process.
  fn connect(&self, pid: u32) -> Result<Subscription, Option<Value>> {
    let mut st = self.st.lock().unwrap();
    if st.closed {
      return Err(st.end.clone());
    }
    st.subs.retain(|s| !s.tx.is_closed());
    if st.subs.len() >= MAX_SUBSCRIBERS {
      return Err(None);
    }
    let (sub, rx) = subscription();
    // before the Start stream's `start` went out, [`Hub::start`] sends this one's too
    if st.started {
      sub.send(envelope(0, &start_event(pid)));
    }
    st.subs.push(sub);
    Ok(rx)
  }

  /// The process ended: `end` to every stream, then the clean end-of-stream.
  fn finish(&self, end: Value) {
    let mut st = self.st.lock().unwrap();
    let frame = envelope(0, &json!({ "event": { "end": end } }));
    for s in st.subs.drain(..) {
      if s.tx.try_send(Out::Frame(frame.clone())).is_ok() {
        let _ = s.tx.try_send(Out::Close(end_stream(None)));
      }
    }
    st.end = Some(end);
    st.ended_at = Some(Instant::now());
    st.closed = true;
  }

  /// Ends every stream with an error (the process's outcome is unknown, or its sandbox went).
  fn fail(&self, code: &str, message: &str, end: Option<Value>) {
    let mut st = self.st.lock().unwrap();
    for s in st.subs.drain(..) {
      let _ = s.tx.try_send(Out::Close(end_stream(Some((code, message)))));
    }
    if !st.closed {
      st.end = end;
      st.ended_at = Some(Instant::now());
      st.closed = true;
    }
  }

  fn running(&self) -> bool {
    !self.st.lock().unwrap().closed
  }

  fn expired(&self, now: Instant) -> bool {
    self.st.lock().unwrap().ended_at.is_some_and(|t| now.duration_since(t) >= RETAIN)
  }
}

// ------------------------------------------------------------------ the table

struct Proc {
  pid: u32,
  tag: Option<String>,
  config: Value,
  spawned: Spawned,
  hub: Arc<Hub>,
  stdin_open: AtomicBool,
  /// the last signal this server sent it (0: none)
  signalled: AtomicI32,
}

impl Proc {
  fn signal(&self, sig: i32) -> Result<(), SandboxError> {
    self.signalled.store(sig, Ordering::SeqCst);
    if sig == 9 || sig == 15 {
      self.hub.st.lock().unwrap().output_cancelled = true;
    }
    self.spawned.signal(sig)
  }
}

#[derive(Default)]
struct Inner {
  procs: HashMap<u32, Arc<Proc>>,
  next_local: u32,
  closed: bool,
}

impl Inner {
  fn prune(&mut self) {
    let now = Instant::now();
    self.procs.retain(|_, p| !p.hub.expired(now));
  }

  /// Room for one more, dropping the oldest finished ones when full.
  fn has_room(&mut self) -> bool {
    self.prune();
    while self.procs.len() >= MAX_ENTRIES {
      let oldest = self
        .procs
        .iter()
        .filter_map(|(pid, p)| p.hub.st.lock().unwrap().ended_at.map(|t| (t, *pid)))
        .min();
      match oldest {
        Some((_, pid)) => {
          self.procs.remove(&pid);
        }
        None => return false,
      }
    }
    true
  }

  /// A pid for a process whose engine could not tell its own: counted from 1 000 000 (above
  /// what Linux hands out by default), never one in the table.
  fn local_pid(&mut self) -> u32 {
    loop {
      self.next_local = self.next_local.wrapping_add(1);
      let pid = 1_000_000u32.wrapping_add(self.next_local % 3_000_000);
      if !self.procs.contains_key(&pid) {
        return pid;
      }
    }
  }

  fn find(&self, sel: &Selector, include_ended: bool) -> Option<Arc<Proc>> {
    let ok = |p: &Arc<Proc>| include_ended || p.hub.running();
    match sel {
      Selector::Pid(pid) => self.procs.get(pid).filter(|p| ok(p)).cloned(),
      Selector::Tag(tag) => {
        let mut hits: Vec<&Arc<Proc>> = self.procs.values().filter(|p| p.tag.as_deref() == Some(tag) && ok(p)).collect();
        // a running one first, then the newest
        hits.sort_by_key(|p| (!p.hub.running(), std::cmp::Reverse(p.pid)));
        hits.first().map(|p| (*p).clone())
      }
    }
  }
}

/// A sandbox's envd processes: pid → the process, its tag and config, the streams watching it
/// and, for [`RETAIN`] after it ended, its `end` event. Dropping the table (the sandbox went)
/// kills what still runs and ends its streams with `unavailable`.
#[derive(Default)]
pub struct Table {
  inner: Arc<Mutex<Inner>>,
}

impl Table {
  /// Processes running now.
  pub fn running(&self) -> usize {
    self.inner.lock().unwrap().procs.values().filter(|p| p.hub.running()).count()
  }

  /// The sandbox is going: kill every process, end every stream with `unavailable`, refuse new
  /// processes. Idempotent.
  pub fn shutdown(&self, message: &str) {
    let procs: Vec<Arc<Proc>> = {
      let mut inner = self.inner.lock().unwrap();
      inner.closed = true;
      inner.procs.drain().map(|(_, p)| p).collect()
    };
    for p in procs {
      if p.hub.running() {
        let _ = p.signal(9);
      }
      p.hub.fail("unavailable", message, None);
    }
  }

  fn find(&self, sel: &Selector, include_ended: bool) -> Option<Arc<Proc>> {
    let mut inner = self.inner.lock().unwrap();
    inner.prune();
    inner.find(sel, include_ended)
  }
}

impl Drop for Table {
  fn drop(&mut self) {
    self.shutdown("the sandbox was killed");
  }
}

// ------------------------------------------------------------------ responses

/// A stream response (HTTP 200, `application/connect+json`).
fn stream_body(body: Body) -> Response {
  (StatusCode::OK, [(header::CONTENT_TYPE, CONNECT_JSON), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// A stream that fails before its first message: only the end-of-stream envelope.
pub fn stream_error(code: &str, message: impl AsRef<str>) -> Response {
  stream_body(Body::from(end_stream(Some((code, message.as_ref())))))
}

/// A stream of fixed envelopes.
fn stream_frames(frames: Vec<Bytes>) -> Response {
  stream_body(Body::from(frames.concat()))
}

/// A Connect error of a helper (`envd_user`'s `{"code": "unauthenticated", …}`) moved into the
/// stream, as envd sends it; other answers (the edge's 502, envd's 401) stay as they are.
async fn in_band(res: Response) -> Response {
  let (parts, body) = res.into_parts();
  let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
  let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
  match (v.get("code").and_then(Value::as_str), v.get("message").and_then(Value::as_str)) {
    (Some(code), Some(message)) => stream_error(code, message),
    _ => Response::from_parts(parts, Body::from(bytes)),
  }
}

/// A live stream: what `sub` receives, a keepalive after each `keepalive` without an envelope,
/// and `deadline_exceeded` at `deadline`.
fn live_stream(sub: Subscription, keepalive: Duration, deadline: Option<Instant>) -> Response {
  struct S {
    sub: Subscription,
    keepalive: Duration,
    next_ka: Instant,
    deadline: Option<Instant>,
    done: bool,
  }
  let s = S { sub, keepalive, next_ka: Instant::now() + keepalive, deadline, done: false };
  let stream = futures_util::stream::unfold(s, |mut s| async move {
    if s.done {
      return None;
    }
    let deadline = s.deadline;
    let expiry = async move {
      match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
      }
    };
    let frame = tokio::select! {
      biased;
      _ = expiry => {
        s.done = true;
        end_stream(Some(("deadline_exceeded", "context deadline exceeded")))
      }
      m = s.sub.rx.recv() => match m {
        Some(Out::Frame(b)) => {
          s.next_ka = Instant::now() + s.keepalive;
          b
        }
        Some(Out::Close(b)) => {
          s.done = true;
          b
        }
        None => {
          s.done = true;
          if s.sub.lagged.load(Ordering::SeqCst) {
            end_stream(Some(("resource_exhausted", "this stream fell too far behind the process's output and was dropped from it; the process runs on (Connect to it again)")))
          } else {
            end_stream(Some(("unavailable", "the sandbox was killed")))
          }
        }
      },
      _ = tokio::time::sleep_until(s.next_ka) => {
        s.next_ka = Instant::now() + s.keepalive;
        envelope(0, &keepalive_event())
      }
    };
    Some((Ok::<_, Infallible>(frame), s))
  });
  stream_body(Body::from_stream(stream))
}

// ------------------------------------------------------------------ requests

/// `Keepalive-Ping-Interval` (seconds; default 90, at most an hour).
pub fn keepalive_of(headers: &HeaderMap) -> Duration {
  let s = headers
    .get("keepalive-ping-interval")
    .and_then(|v| v.to_str().ok())
    .and_then(|v| v.trim().parse::<u64>().ok())
    .filter(|s| *s > 0)
    .unwrap_or(DEFAULT_KEEPALIVE_S);
  Duration::from_secs(s.min(3600))
}

/// `Connect-Timeout-Ms`: none when absent or 0; 1 to 10 digits, else `invalid_argument`.
pub fn timeout_of(headers: &HeaderMap) -> Result<Option<Duration>, String> {
  let Some(v) = headers.get("connect-timeout-ms") else { return Ok(None) };
  let s = v.to_str().unwrap_or("").trim();
  if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
    return Err(format!("protocol error: invalid connect timeout value: {}", clip(s, 32)));
  }
  let ms: u64 = s.parse().unwrap_or(0);
  Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

fn media_type(headers: &HeaderMap) -> String {
  let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
  ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn unsupported_media(expected: &'static str) -> Response {
  (StatusCode::UNSUPPORTED_MEDIA_TYPE, [("accept-post", expected)]).into_response()
}

fn protocol_version_error(headers: &HeaderMap) -> Option<String> {
  let v = headers.get("connect-protocol-version")?;
  (v.as_bytes() != b"1").then(|| format!("connect-protocol-version must be \"1\": got {:?}", String::from_utf8_lossy(v.as_bytes())))
}

/// The sandbox, user and message of a streaming call, or the response that ends it.
async fn stream_request(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(Arc<E2bBox>, Value), Response> {
  let b = envd_box(state, headers)?;
  if let Err(r) = envd_user(headers) {
    return Err(in_band(r).await);
  }
  if media_type(headers) != CONNECT_JSON {
    return Err(unsupported_media(CONNECT_JSON));
  }
  if let Some(m) = protocol_version_error(headers) {
    return Err(stream_error("invalid_argument", m));
  }
  let bytes = axum::body::to_bytes(body, MAX_REQUEST + 5)
    .await
    .map_err(|_| stream_error("resource_exhausted", format!("the request message is larger than {MAX_REQUEST} bytes")))?;
  let msg = decode_single(&bytes).map_err(|m| stream_error("invalid_argument", m))?;
  if !msg.is_object() {
    return Err(stream_error("invalid_argument", "the request message must be a JSON object"));
  }
  Ok((b, msg))
}

/// The sandbox and message of a unary call, or its error response.
async fn unary_request(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(Arc<E2bBox>, Value), Response> {
  let b = envd_box(state, headers)?;
  envd_user(headers)?;
  if media_type(headers) != "application/json" {
    return Err(unsupported_media("application/json"));
  }
  if let Some(m) = protocol_version_error(headers) {
    return Err(connect_error("invalid_argument", m));
  }
  let limit = b.entry.tenant.limits.max_body_bytes;
  let bytes = axum::body::to_bytes(body, limit)
    .await
    .map_err(|_| connect_error("resource_exhausted", format!("the request message is larger than {limit} bytes")))?;
  if bytes.is_empty() {
    return Ok((b, json!({})));
  }
  match serde_json::from_slice::<Value>(&bytes) {
    Ok(v) if v.is_object() => Ok((b, v)),
    Ok(_) => Err(connect_error("invalid_argument", "the request message must be a JSON object")),
    Err(e) => Err(connect_error("invalid_argument", format!("the request message is not JSON: {e}"))),
  }
}

type S = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
    .route("/process.Process/Start", post(start))
    .route("/process.Process/Connect", post(connect))
    .route("/process.Process/List", post(list))
    .route("/process.Process/SendInput", post(send_input))
    .route("/process.Process/CloseStdin", post(close_stdin))
    .route("/process.Process/SendSignal", post(send_signal))
    .route("/process.Process/Update", post(update))
    .route("/process.Process/StreamInput", post(stream_input))
}

/// `Start`: spawn, then `start`, output, `end` as they happen (see the module docs).
async fn start(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, msg) = match stream_request(&state, &headers, body).await {
    Ok(x) => x,
    Err(r) => return r,
  };
  let lifetime = match timeout_of(&headers) {
    Ok(t) => t,
    Err(m) => return stream_error("invalid_argument", m),
  };
  let req = match StartRequest::parse(&msg) {
    Ok(r) => r,
    Err(m) => return stream_error("invalid_argument", m),
  };
  if req.pty {
    return stream_error("unimplemented", "PTY is not supported by this server");
  }
  let deadline = lifetime.map(|t| Instant::now() + t);
  let keepalive = keepalive_of(&headers);
  match launch(&state, &b, req, deadline).await {
    Ok(sub) => live_stream(sub, keepalive, deadline),
    Err((code, message)) => stream_error(code, message),
  }
}

/// Starts the process of `req` in `b`: its Start stream's subscription, or a Connect error.
async fn launch(state: &Arc<AppState>, b: &Arc<E2bBox>, req: StartRequest, deadline: Option<Instant>) -> Result<Subscription, (&'static str, String)> {
  let entry = b.entry.clone();
  let tenant = entry.tenant.clone();
  if state.shutting_down.load(Ordering::SeqCst) {
    return Err(("unavailable", "the server is shutting down".into()));
  }
  {
    let mut inner = b.processes.inner.lock().unwrap();
    if inner.closed {
      return Err(("unavailable", "the sandbox was killed".into()));
    }
    if !inner.has_room() {
      return Err(("resource_exhausted", format!("the sandbox already runs {MAX_ENTRIES} processes")));
    }
  }
  let cwd = req.cwd.as_deref().map(resolve_path);
  let quoted = || std::iter::once(req.cmd.as_str()).chain(req.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
  if let Some(dir) = &cwd {
    let check = ExecOptions { timeout: Some(30.0), workdir: Some("/".into()), max_output_bytes: Some(4096), ..Default::default() };
    let args = vec!["-c".to_string(), "test -d \"$1\"".to_string(), "sh".to_string(), dir.clone()];
    match entry.sandbox.execute_as((req.cmd.as_str(), req.args.as_slice()), "envd cwd check", "/bin/sh", &args, check, None, None).await {
      Ok(r) if r.exit_code == 0 => {}
      Ok(_) => return Err(("invalid_argument", format!("cwd '{dir}' does not exist"))),
      Err(e) => return Err((code_of(&e), state.redactor.redact(&format!("error starting process '{}': {}", quoted(), e.message)))),
    }
  }
  let permit = tenant.background.try_acquire().ok_or_else(|| {
    (
      "resource_exhausted",
      format!(
        "this API key already runs {} processes, its limit (maxBackgroundProcesses); kill one (commands.kill) or wait for one to end",
        tenant.background.max()
      ),
    )
  })?;
  let mut env = BTreeMap::new();
  env.insert("HOME".to_string(), HOME.to_string());
  env.insert("USER".to_string(), USER.to_string());
  env.insert("LOGNAME".to_string(), USER.to_string());
  env.extend(b.env_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
  env.extend(req.envs.iter().map(|(k, v)| (k.clone(), v.clone())));
  let opts = ExecOptions { timeout: None, env, workdir: cwd.clone(), max_output_bytes: Some(state.opts.max_output_bytes), stdin: None, stream_only: false };

  let hub = Arc::new(Hub::default());
  let (first, sub) = subscription();
  hub.add(first);
  let sink: OutputSink = {
    let hub = hub.clone();
    Arc::new(move |s: OutStream, d: &[u8]| hub.output(s, d))
  };
  let work = state.work.enter();
  entry.executions.fetch_add(1, Ordering::SeqCst);
  let argv: Vec<String> = std::iter::once(req.cmd.clone()).chain(req.args.iter().cloned()).collect();
  let audited = {
    let (who, sb, env, workdir) = (tenant.name.clone(), entry.sandbox.clone(), opts.env.clone(), cwd.clone());
    move |st: &AppState, ran: Result<Exited, &str>| audit::command(st, Api::E2b, &who, &sb, argv, &env, workdir.as_deref(), true, ran)
  };
  let spawned = match entry.sandbox.spawn(&req.cmd, &req.args, &opts, true, req.stdin, Some(sink)).await {
    Ok(p) => p,
    Err(e) => {
      audited(state, Err(e.code_str()));
      return Err((code_of(&e), state.redactor.redact(&format!("error starting process '{}': {}", quoted(), e.message))));
    }
  };
  let proc = {
    let mut inner = b.processes.inner.lock().unwrap();
    let pid = if spawned.pid != 0 { spawned.pid } else { inner.local_pid() };
    let proc = Arc::new(Proc {
      pid,
      tag: req.tag.clone(),
      config: req.config(),
      spawned: spawned.clone(),
      hub: hub.clone(),
      stdin_open: AtomicBool::new(req.stdin),
      signalled: AtomicI32::new(0),
    });
    if inner.closed {
      drop(inner);
      let _ = proc.signal(9);
      return Err(("unavailable", "the sandbox was killed".into()));
    }
    inner.procs.insert(pid, proc.clone());
    proc
  };
  hub.start(proc.pid);

  let (st, sb) = (state.clone(), entry.sandbox.clone());
  let mut cancel = state.cancel.subscribe();
  tokio::spawn(async move {
    let _work = work;
    let _permit = permit;
    let expiry = async move {
      match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
      }
    };
    let cancelled = async move {
      let _ = cancel.wait_for(|c| *c).await;
    };
    let r = tokio::select! {
      r = proc.spawned.wait() => r,
      _ = expiry => {
        let _ = proc.signal(9);
        proc.spawned.wait().await
      }
      _ = cancelled => {
        let _ = proc.signal(9);
        proc.spawned.wait().await
      }
    };
    if spawned.pid != 0 {
      sb.background_ended(spawned.pid);
    }
    audited(&st, r.as_ref().map(Exited::from).map_err(|e| e.code_str()));
    let signalled = Some(proc.signalled.load(Ordering::SeqCst)).filter(|s| *s != 0);
    match r {
      Ok(out) => proc.hub.finish(end_of(&out, signalled)),
      Err(e) => {
        let message = st.redactor.redact(&e.message);
        let end = json!({ "exitCode": -1, "status": format!("error: {message}"), "error": message });
        proc.hub.fail(code_of(&e), &message, Some(end));
      }
    }
    // the table keeps the end for RETAIN (pruned on later calls)
  });
  Ok(sub)
}

/// `Connect`: `start`, then live output, then `end`; or `start` + the retained `end`.
async fn connect(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, msg) = match stream_request(&state, &headers, body).await {
    Ok(x) => x,
    Err(r) => return r,
  };
  let deadline = match timeout_of(&headers) {
    Ok(t) => t.map(|t| Instant::now() + t),
    Err(m) => return stream_error("invalid_argument", m),
  };
  let sel = match parse_selector(&msg) {
    Ok(s) => s,
    Err(m) => return stream_error("invalid_argument", m),
  };
  let Some(p) = b.processes.find(&sel, true) else {
    return stream_error("not_found", format!("{sel} not found"));
  };
  match p.hub.connect(p.pid) {
    Ok(sub) => live_stream(sub, keepalive_of(&headers), deadline),
    Err(Some(end)) => stream_frames(vec![envelope(0, &start_event(p.pid)), envelope(0, &json!({ "event": { "end": end } })), end_stream(None)]),
    Err(None) if p.hub.running() => stream_error("resource_exhausted", format!("{MAX_SUBSCRIBERS} streams already watch {sel}")),
    Err(None) => stream_error("not_found", format!("{sel} not found")),
  }
}

/// The running process a unary call selects, or `not_found`.
fn selected(b: &E2bBox, msg: &Value) -> Result<Arc<Proc>, (&'static str, String)> {
  let sel = parse_selector(msg).map_err(|m| ("invalid_argument", m))?;
  b.processes.find(&sel, false).ok_or_else(|| ("not_found", format!("{sel} not found")))
}

macro_rules! unary {
  ($state:expr, $headers:expr, $body:expr) => {
    match unary_request(&$state, &$headers, $body).await {
      Ok(x) => x,
      Err(r) => return r,
    }
  };
}

/// `List`: the running processes, by pid.
async fn list(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, _) = unary!(state, headers, body);
  let mut procs: Vec<Arc<Proc>> = {
    let mut inner = b.processes.inner.lock().unwrap();
    inner.prune();
    inner.procs.values().filter(|p| p.hub.running()).cloned().collect()
  };
  procs.sort_by_key(|p| p.pid);
  let processes: Vec<Value> = procs
    .iter()
    .map(|p| {
      let mut v = json!({ "config": p.config, "pid": p.pid });
      if let Some(tag) = &p.tag {
        v["tag"] = json!(tag);
      }
      v
    })
    .collect();
  Json(if processes.is_empty() { json!({}) } else { json!({ "processes": processes }) }).into_response()
}

/// `SendInput` `{ process, input: { stdin: base64 } }`.
async fn send_input(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, msg) = unary!(state, headers, body);
  let p = match selected(&b, &msg) {
    Ok(p) => p,
    Err((code, m)) => return connect_error(code, m),
  };
  let input = msg.get("input");
  if input.and_then(|i| i.get("pty")).is_some_and(|v| !v.is_null()) {
    return connect_error("internal", "error writing to tty: tty not assigned to process — input should be written to the stdin, not the tty");
  }
  let Some(data) = input.and_then(|i| i.get("stdin")).filter(|v| !v.is_null()) else {
    return connect_error("invalid_argument", "input must be {\"stdin\": <base64>}");
  };
  let data = match bytes_of(data) {
    Ok(d) => d,
    Err(m) => return connect_error("invalid_argument", format!("input.stdin: {m}")),
  };
  if !p.stdin_open.load(Ordering::SeqCst) {
    return connect_error("internal", "error writing to stdin: stdin not enabled or closed");
  }
  if !data.is_empty() && p.spawned.stdin(data).is_err() {
    return connect_error("not_found", format!("process with pid {} not found", p.pid));
  }
  Json(json!({})).into_response()
}

/// `CloseStdin` `{ process }`: EOF on the process's stdin (idempotent).
async fn close_stdin(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, msg) = unary!(state, headers, body);
  let p = match selected(&b, &msg) {
    Ok(p) => p,
    Err((code, m)) => return connect_error(code, m),
  };
  if p.stdin_open.swap(false, Ordering::SeqCst) {
    let _ = p.spawned.close_stdin();
  }
  Json(json!({})).into_response()
}

/// `SendSignal` `{ process, signal }`: SIGKILL or SIGTERM to the process's group.
async fn send_signal(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, msg) = unary!(state, headers, body);
  let p = match selected(&b, &msg) {
    Ok(p) => p,
    Err((code, m)) => return connect_error(code, m),
  };
  let sig = match parse_signal(msg.get("signal")) {
    Ok(s) => s,
    Err((code, m)) => return connect_error(code, m),
  };
  if p.signal(sig).is_err() {
    return connect_error("not_found", format!("process with pid {} not found", p.pid));
  }
  Json(json!({})).into_response()
}

/// `Update` (PTY resize): no process here has a PTY.
async fn update(State(state): S, headers: HeaderMap, body: Body) -> Response {
  let (b, msg) = unary!(state, headers, body);
  if let Err((code, m)) = selected(&b, &msg) {
    return connect_error(code, m);
  }
  if msg.get("pty").is_some_and(|v| !v.is_null()) {
    return connect_error("unimplemented", "PTY is not supported by this server");
  }
  Json(json!({})).into_response()
}

/// `StreamInput` (client streaming; the SDKs use SendInput instead).
async fn stream_input(State(state): S, headers: HeaderMap) -> Response {
  if let Err(r) = envd_box(&state, &headers) {
    return r;
  }
  stream_error("unimplemented", "StreamInput is not supported by this server: use SendInput")
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod routes_tests;

#[cfg(test)]
mod tests {
  use super::*;

  fn frames(mut body: &[u8]) -> Vec<(u8, Value)> {
    let mut out = Vec::new();
    while !body.is_empty() {
      let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
      out.push((body[0], serde_json::from_slice(&body[5..5 + len]).unwrap()));
      body = &body[5 + len..];
    }
    out
  }

  fn output(code: i64, signal: Option<&str>) -> ExecOutput {
    ExecOutput {
      exit_code: code,
      stdout: vec![],
      stderr: vec![],
      duration: Duration::ZERO,
      timed_out: false,
      truncated: false,
      signal: signal.map(str::to_string),
      max_rss_kb: None,
    }
  }

  #[test]
  fn envelopes_round_trip() {
    let e = envelope(0, &start_event(412));
    assert_eq!(&e[..5], &[0, 0, 0, 0, 31]);
    assert_eq!(&e[5..], br#"{"event":{"start":{"pid":412}}}"#);
    assert_eq!(decode_single(&e).unwrap(), start_event(412));
    assert_eq!(&end_stream(None)[..], &[2, 0, 0, 0, 2, b'{', b'}']);
    let err = end_stream(Some(("not_found", "process with pid 7 not found")));
    assert_eq!(frames(&err), vec![(2, json!({"error":{"code":"not_found","message":"process with pid 7 not found"}}))]);
  }

  #[test]
  fn bad_envelopes_are_refused() {
    assert!(decode_single(b"").is_err());
    assert!(decode_single(&[0, 0, 0]).is_err());
    assert!(decode_single(&[1, 0, 0, 0, 2, b'{', b'}']).is_err(), "compressed");
    assert!(decode_single(&[0, 0, 0, 0, 9, b'{', b'}']).is_err(), "short");
    assert!(decode_single(&[0, 0, 0, 0, 1, b'{', b'}']).is_err(), "trailing bytes");
    assert!(decode_single(&[0, 0xff, 0xff, 0xff, 0xff]).is_err(), "huge length");
    assert!(decode_single(&[0, 0, 0, 0, 2, b'{', b'x']).is_err(), "not JSON");
    assert_eq!(decode_single(&[0, 0, 0, 0, 0]).unwrap(), json!({}));
  }

  #[test]
  fn event_shapes() {
    assert_eq!(data_event(OutStream::Stdout, b"hi\n"), json!({"event":{"data":{"stdout":"aGkK"}}}));
    assert_eq!(data_event(OutStream::Stderr, b"x"), json!({"event":{"data":{"stderr":"eA=="}}}));
    assert_eq!(keepalive_event(), json!({"event":{"keepalive":{}}}));
    assert_eq!(end_of(&output(0, None), None), json!({"exited":true,"status":"exit status 0"}));
    assert_eq!(end_of(&output(3, None), None), json!({"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"}));
    assert_eq!(end_of(&output(137, Some("SIGKILL")), Some(9)), json!({"exitCode":-1,"status":"signal: killed","error":"signal: killed"}));
    assert_eq!(end_of(&output(143, None), Some(15)), json!({"exitCode":-1,"status":"signal: terminated","error":"signal: terminated"}));
    // a death by signal we did not send is the exit status docker exec reports
    assert_eq!(end_of(&output(137, None), None)["exitCode"], 137);
    // signalled, but it exited on its own terms (a trap)
    assert_eq!(end_of(&output(0, None), Some(15)), json!({"exited":true,"status":"exit status 0"}));
  }

  #[test]
  fn signals() {
    assert_eq!(parse_signal(Some(&json!("SIGNAL_SIGKILL"))), Ok(9));
    assert_eq!(parse_signal(Some(&json!("SIGNAL_SIGTERM"))), Ok(15));
    assert_eq!(parse_signal(Some(&json!(9))), Ok(9));
    assert_eq!(parse_signal(Some(&json!(15))), Ok(15));
    assert_eq!(parse_signal(Some(&json!("15"))), Ok(15));
    assert_eq!(parse_signal(None).unwrap_err().0, "unimplemented");
    assert_eq!(parse_signal(Some(&json!("SIGNAL_UNSPECIFIED"))).unwrap_err().0, "unimplemented");
    assert_eq!(parse_signal(Some(&json!(2))).unwrap_err().0, "unimplemented");
    assert_eq!(parse_signal(Some(&json!("SIGHUP"))).unwrap_err().0, "invalid_argument");
    assert_eq!(parse_signal(Some(&json!({}))).unwrap_err().0, "invalid_argument");
    assert_eq!(parse_signal(Some(&json!(1e300))).unwrap_err().0, "invalid_argument");
  }

  #[test]
  fn start_requests() {
    let r = StartRequest::parse(&json!({"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi"]},"stdin":false})).unwrap();
    assert_eq!((r.cmd.as_str(), r.args.len(), r.stdin, r.pty, r.cwd.clone()), ("/bin/bash", 3, false, false, None));
    assert_eq!(r.config(), json!({"cmd":"/bin/bash","args":["-l","-c","echo hi"]}));
    let r = StartRequest::parse(&json!({"process":{"cmd":"sh","envs":{"A":"1"},"cwd":"sub"},"tag":"t","pty":{"size":{"cols":80,"rows":24}}})).unwrap();
    assert!(r.stdin && r.pty);
    assert_eq!(r.tag.as_deref(), Some("t"));
    assert_eq!(r.config(), json!({"cmd":"sh","envs":{"A":"1"},"cwd":"sub"}));
    for bad in [
      json!({}),
      json!({"process":{}}),
      json!({"process":{"cmd":""}}),
      json!({"process":{"cmd":"sh","args":"x"}}),
      json!({"process":{"cmd":"sh","args":[1]}}),
      json!({"process":{"cmd":"sh","envs":{"A=B":"1"}}}),
      json!({"process":{"cmd":"sh","envs":{"A":1}}}),
      json!({"process":{"cmd":"sh","cwd":5}}),
      json!({"process":{"cmd":"sh"},"stdin":"yes"}),
      json!({"process":{"cmd":"sh"},"tag":7}),
    ] {
      assert!(StartRequest::parse(&bad).is_err(), "{bad}");
    }
  }

  #[test]
  fn selectors() {
    assert_eq!(parse_selector(&json!({"process":{"pid":42}})), Ok(Selector::Pid(42)));
    assert_eq!(parse_selector(&json!({"process":{"pid":"42"}})), Ok(Selector::Pid(42)));
    assert_eq!(parse_selector(&json!({"process":{"tag":"web"}})), Ok(Selector::Tag("web".into())));
    assert!(parse_selector(&json!({"process":{"pid":-1}})).is_err());
    assert!(parse_selector(&json!({"process":{"pid":5000000000u64}})).is_err());
    assert!(parse_selector(&json!({"process":{}})).is_err());
    assert!(parse_selector(&json!({})).is_err());
    assert_eq!(Selector::Pid(7).to_string() + " not found", "process with pid 7 not found");
  }

  #[test]
  fn headers() {
    let mut h = HeaderMap::new();
    assert_eq!(keepalive_of(&h), Duration::from_secs(90));
    assert_eq!(timeout_of(&h), Ok(None));
    h.insert("keepalive-ping-interval", "50".parse().unwrap());
    h.insert("connect-timeout-ms", "60000".parse().unwrap());
    assert_eq!(keepalive_of(&h), Duration::from_secs(50));
    assert_eq!(timeout_of(&h), Ok(Some(Duration::from_secs(60))));
    h.insert("keepalive-ping-interval", "nope".parse().unwrap());
    h.insert("connect-timeout-ms", "0".parse().unwrap());
    assert_eq!(keepalive_of(&h), Duration::from_secs(90));
    assert_eq!(timeout_of(&h), Ok(None));
    for bad in ["-1", "12345678901", "1.5", ""] {
      h.insert("connect-timeout-ms", bad.parse().unwrap());
      assert!(timeout_of(&h).is_err(), "{bad}");
    }
  }

  fn drain(sub: &mut Subscription) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(m) = sub.rx.try_recv() {
      match m {
        Out::Frame(b) => out.push(frames(&b)[0].1.clone()),
        Out::Close(b) => out.push(json!({ "close": frames(&b)[0].1 })),
      }
    }
    out
  }

  #[test]
  fn hub_orders_start_before_early_output_and_chunks() {
    let hub = Hub::default();
    let (first, mut sub) = subscription();
    hub.add(first);
    hub.output(OutStream::Stdout, b"early");
    hub.start(9);
    let big = vec![b'a'; CHUNK + 10];
    hub.output(OutStream::Stderr, &big);
    hub.finish(json!({"exited":true,"status":"exit status 0"}));
    let got = drain(&mut sub);
    assert_eq!(got[0], start_event(9));
    assert_eq!(got[1], data_event(OutStream::Stdout, b"early"));
    assert_eq!(got[2], data_event(OutStream::Stderr, &big[..CHUNK]));
    assert_eq!(got[3], data_event(OutStream::Stderr, &big[CHUNK..]));
    assert_eq!(got[4], json!({"event":{"end":{"exited":true,"status":"exit status 0"}}}));
    assert_eq!(got[5], json!({"close":{}}));
    assert_eq!(got.len(), 6);
    // after the end: Connect gets the retained end
    assert_eq!(hub.connect(9).err().flatten(), Some(json!({"exited":true,"status":"exit status 0"})));
  }

  #[test]
  fn a_slow_stream_is_dropped_with_room_for_nothing_else() {
    let hub = Hub::default();
    let (first, mut slow) = subscription();
    hub.add(first);
    hub.start(1);
    let mut fast = hub.connect(1).ok().unwrap();
    for _ in 0..SUB_BUFFER * 2 {
      hub.output(OutStream::Stdout, b"x");
      drain(&mut fast);
    }
    assert_eq!(hub.st.lock().unwrap().subs.len(), 1, "only the reading stream is left");
    assert!(slow.lagged.load(Ordering::SeqCst));
    hub.finish(json!({"exited":true,"status":"exit status 0"}));
    assert_eq!(drain(&mut fast).last(), Some(&json!({"close":{}})));
    let got = drain(&mut slow);
    assert!(got.len() < SUB_BUFFER && got.iter().all(|v| v.get("close").is_none()));
  }

  #[tokio::test]
  async fn dropping_the_table_ends_streams() {
    let hub = Arc::new(Hub::default());
    let (first, sub) = subscription();
    hub.add(first);
    hub.start(5);
    let (control, _rx) = mpsc::unbounded_channel();
    let (_done_tx, done) = tokio::sync::watch::channel(None);
    let table = Table::default();
    let p = Arc::new(Proc {
      pid: 5,
      tag: Some("t".into()),
      config: json!({"cmd":"sh"}),
      spawned: Spawned { pid: 5, control, done },
      hub: hub.clone(),
      stdin_open: AtomicBool::new(true),
      signalled: AtomicI32::new(0),
    });
    table.inner.lock().unwrap().procs.insert(5, p);
    assert_eq!(table.running(), 1);
    assert!(table.find(&Selector::Tag("t".into()), false).is_some());
    let res = live_stream(sub, Duration::from_secs(90), None);
    drop(table);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let got = frames(&body);
    assert_eq!(got[0], (0, start_event(5)));
    assert_eq!(got.last().unwrap(), &(2, json!({"error":{"code":"unavailable","message":"the sandbox was killed"}})));
  }

  #[tokio::test(start_paused = true)]
  async fn keepalives_and_deadline() {
    let (first, sub) = subscription();
    let res = live_stream(sub, Duration::from_secs(1), Some(Instant::now() + Duration::from_millis(2500)));
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    drop(first);
    let got = frames(&body);
    assert_eq!(got, vec![
      (0, keepalive_event()),
      (0, keepalive_event()),
      (2, json!({"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}})),
    ]);
  }
}
