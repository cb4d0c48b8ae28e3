//! The Connect protocol as envd speaks it (JSON codec): stream envelopes, Connect error bodies,
//! and the proto3-JSON shapes of `process.Process` events and `filesystem.Filesystem` entries.
//!
//! An envelope is `flags: u8` + `length: u32 BE` + payload. Flag 0x02 marks the end-of-stream
//! message (`{}` or `{"error":{"code","message"}}`); flag 0x01 a compressed payload, which never
//! comes because we never advertise `Connect-Accept-Encoding`. Envelope boundaries have nothing to
//! do with HTTP chunk boundaries, so [`EnvelopeDecoder`] buffers and reassembles.

use base64::Engine as _;
use serde_json::Value;

use crate::core::error::{ErrorCode, SandboxError};

/// Flag of the end-of-stream envelope.
pub const FLAG_END_STREAM: u8 = 0x02;
/// Flag of a compressed payload.
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Largest envelope accepted: envd sends output in ≤ 32 KiB chunks (≈ 44 KiB as base64 JSON), so
/// anything near this is a corrupt stream, not data.
pub const MAX_ENVELOPE: usize = 16 * 1024 * 1024;

/// Encode one envelope (`flags`, u32 BE length, payload).
pub fn encode_envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
  let mut out = Vec::with_capacity(5 + payload.len());
  out.push(flags);
  out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
  out.extend_from_slice(payload);
  out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
  pub flags: u8,
  pub payload: Vec<u8>,
}

/// Reassembles envelopes from arbitrary byte chunks.
#[derive(Debug, Default)]
pub struct EnvelopeDecoder {
  buf: Vec<u8>,
}

impl EnvelopeDecoder {
  pub fn push(&mut self, data: &[u8]) {
    self.buf.extend_from_slice(data);
  }

  /// The next complete envelope, `Ok(None)` when more bytes are needed.
  pub fn next_envelope(&mut self) -> Result<Option<Envelope>, String> {
    if self.buf.len() < 5 {
      return Ok(None);
    }
    let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
    if len > MAX_ENVELOPE {
      return Err(format!("a Connect envelope of {len} bytes exceeds the {MAX_ENVELOPE}-byte limit (corrupt stream?)"));
    }
    if self.buf.len() < 5 + len {
      return Ok(None);
    }
    let flags = self.buf[0];
    let payload = self.buf[5..5 + len].to_vec();
    self.buf.drain(..5 + len);
    Ok(Some(Envelope { flags, payload }))
  }

  /// Bytes received that do not form a complete envelope yet.
  pub fn pending(&self) -> usize {
    self.buf.len()
  }
}

/// What one envelope of a server stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
  /// a response message
  Message(Value),
  /// the end-of-stream message: `None` for a clean end, else the RPC's error
  End(Option<RpcError>),
}

/// Interpret an envelope of a server-streaming response.
pub fn classify(env: Envelope) -> Result<StreamItem, String> {
  if env.flags & FLAG_COMPRESSED != 0 {
    return Err("envd sent a compressed envelope although no compression was negotiated".into());
  }
  let value: Value = if env.payload.is_empty() {
    Value::Object(Default::default())
  } else {
    serde_json::from_slice(&env.payload).map_err(|e| format!("envd sent an envelope that is not JSON ({e})"))?
  };
  if env.flags & FLAG_END_STREAM != 0 {
    return Ok(StreamItem::End(value.get("error").filter(|e| !e.is_null()).map(|e| RpcError::from_connect(e, 200))));
  }
  Ok(StreamItem::Message(value))
}

// ------------------------------------------------------------------ errors

/// An error from envd: a Connect error (`{"code":"not_found","message":…}`), an envd REST error
/// (`{"code":404,"message":…}`), an edge-proxy answer (502 when the sandbox is gone), or a
/// transport failure (`http_status` 0).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
  /// Connect code in lower snake case (`not_found`, `unavailable`, …)
  pub code: String,
  pub message: String,
  /// HTTP status of the response (200 for in-stream errors, 0 when no response came)
  pub http_status: u16,
}

impl RpcError {
  pub fn new(code: &str, message: impl Into<String>, http_status: u16) -> Self {
    Self { code: code.to_string(), message: message.into(), http_status }
  }

  /// From a Connect error object (the body of a failed unary call or the `error` of an
  /// end-of-stream message).
  pub fn from_connect(v: &Value, http_status: u16) -> Self {
    let code = v.get("code").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| code_for_status(http_status).into());
    let message = v.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    Self { code, message, http_status }
  }

  /// From a non-2xx response: a Connect JSON body when there is one, else the code inferred from
  /// the status and E2B's `{code: <int>, message}` / the raw text as the message.
  pub fn from_response(status: u16, body: &[u8]) -> Self {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(v) = parsed.as_ref().filter(|v| v.get("code").is_some_and(Value::is_string)) {
      return Self::from_connect(v, status);
    }
    let message = match parsed.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str) {
      Some(m) => m.to_string(),
      None => {
        let text = String::from_utf8_lossy(body);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
          format!("HTTP {status}")
        } else {
          truncate(&text, 300)
        }
      }
    };
    Self { code: code_for_status(status).into(), message, http_status: status }
  }

  /// True when the edge proxy says the sandbox is gone (or its envd no longer answers).
  pub fn sandbox_gone(&self) -> bool {
    self.http_status == 502
  }

  /// The error as a `SandboxError`; `what` says what was being done ("ListDir /home/user").
  pub fn to_error(&self, what: &str) -> SandboxError {
    let quoted = if self.message.is_empty() { self.code.clone() } else { format!("{}: \"{}\"", self.code, self.message) };
    if self.sandbox_gone() {
      return SandboxError::new(
        ErrorCode::SandboxNotFound,
        format!(
          "{what} failed: the E2B sandbox is not reachable any more (502 {quoted}); it was killed or its lifetime \
           (limits.timeoutSeconds) ran out. Call start() to create a new one"
        ),
      );
    }
    let code = match self.code.as_str() {
      "unauthenticated" | "permission_denied" => ErrorCode::PermissionDenied,
      "resource_exhausted" => ErrorCode::QuotaExceeded,
      "invalid_argument" | "failed_precondition" | "out_of_range" => ErrorCode::InvalidArgument,
      "deadline_exceeded" => ErrorCode::ExecutionTimeout,
      "not_found" | "already_exists" => ErrorCode::ExecutionError,
      "unavailable" if self.http_status == 0 => ErrorCode::ProviderUnavailable,
      _ => ErrorCode::ProviderError,
    };
    let hint = match code {
      ErrorCode::PermissionDenied => " (the sandbox's envd access token was refused; start the sandbox again)",
      _ => "",
    };
    if self.http_status == 0 {
      return SandboxError::new(code, format!("{what} failed: {}", self.message));
    }
    SandboxError::new(code, format!("{what} failed: envd answered {quoted}{hint}"))
  }
}

/// The Connect code for an HTTP status without a Connect body (the intuitive table of E2B's own
/// Python client rather than the spec's, so a plain 404 reads as `not_found`).
pub fn code_for_status(status: u16) -> &'static str {
  match status {
    400 => "invalid_argument",
    401 => "unauthenticated",
    403 => "permission_denied",
    404 => "not_found",
    409 => "already_exists",
    429 => "resource_exhausted",
    499 => "canceled",
    501 => "unimplemented",
    502..=504 => "unavailable",
    507 => "resource_exhausted",
    _ => "unknown",
  }
}

pub fn truncate(s: &str, max_chars: usize) -> String {
  match s.char_indices().nth(max_chars) {
    Some((i, _)) => format!("{}…", &s[..i]),
    None => s.to_string(),
  }
}

// ------------------------------------------------------------------ proto3 JSON helpers

/// An integer field: a JSON number, or a string (int64/uint64 are strings in proto3 JSON).
pub fn int_of(v: Option<&Value>) -> Option<i64> {
  match v? {
    Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
    Value::String(s) => s.trim().parse().ok(),
    _ => None,
  }
}

/// A `bytes` field: standard base64 with or without padding, or the URL-safe alphabet.
pub fn bytes_of(v: &Value) -> Result<Vec<u8>, String> {
  use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
  use base64::engine::DecodePaddingMode;
  const CFG: GeneralPurposeConfig = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
  const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CFG);
  const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CFG);
  let s = v.as_str().ok_or_else(|| format!("expected a base64 string, got {v}"))?;
  STD.decode(s).or_else(|_| URL.decode(s)).map_err(|e| format!("invalid base64 in an envd event ({e})"))
}

pub fn b64(data: &[u8]) -> String {
  base64::engine::general_purpose::STANDARD.encode(data)
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (`2026-01-01T00:00:00.123456Z`, or with
/// an offset); `None` when it does not parse.
pub fn rfc3339_ms(s: &str) -> Option<f64> {
  let b = s.as_bytes();
  if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
    return None;
  }
  let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
  let (y, mo, d, h, mi, sec) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
  let mut rest = &s[19..];
  let mut frac: f64 = 0.0;
  if let Some(r) = rest.strip_prefix('.') {
    let digits = r.bytes().take_while(u8::is_ascii_digit).count();
    frac = format!("0.{}", &r[..digits]).parse().ok()?;
    rest = &r[digits..];
  }
  let offset_s = match rest {
    "Z" | "z" => 0,
    o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
      let sign = if o.starts_with('-') { -1 } else { 1 };
      sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
    }
    _ => return None,
  };
  // days from civil (Howard Hinnant's algorithm)
  let y = if mo <= 2 { y - 1 } else { y };
  let era = y.div_euclid(400);
  let yoe = y - era * 400;
  let mp = (mo + 9) % 12;
  let doy = (153 * mp + 2) / 5 + d - 1;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  let days = era * 146_097 + doe - 719_468;
  let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
  Some(secs as f64 * 1000.0 + (frac * 1000.0).round())
}

// ------------------------------------------------------------------ process events

/// The `end` event of a process.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndEvent {
  pub exit_code: i64,
  pub exited: bool,
  pub status: String,
  pub error: Option<String>,
}

/// One `process.Process` stream event (`{"event":{…}}`).
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
  Start { pid: u32 },
  Stdout(Vec<u8>),
  Stderr(Vec<u8>),
  End(EndEvent),
  Keepalive,
  /// an event kind this client does not know (ignored)
  Other,
}

pub fn parse_process_event(v: &Value) -> Result<ProcessEvent, String> {
  let Some(event) = v.get("event").and_then(Value::as_object) else {
    return Err(format!("envd sent a process message without an event: {}", truncate(&v.to_string(), 200)));
  };
  if let Some(start) = event.get("start") {
    let pid = int_of(start.get("pid")).and_then(|p| u32::try_from(p).ok()).ok_or("envd's start event has no pid")?;
    return Ok(ProcessEvent::Start { pid });
  }
  if let Some(data) = event.get("data") {
    if let Some(out) = data.get("stdout") {
      return Ok(ProcessEvent::Stdout(bytes_of(out)?));
    }
    if let Some(err) = data.get("stderr") {
      return Ok(ProcessEvent::Stderr(bytes_of(err)?));
    }
    // a pty chunk (we never ask for a pty) is terminal output: stdout
    if let Some(pty) = data.get("pty") {
      return Ok(ProcessEvent::Stdout(bytes_of(pty)?));
    }
    return Ok(ProcessEvent::Other);
  }
  if let Some(end) = event.get("end") {
    return Ok(ProcessEvent::End(EndEvent {
      exit_code: int_of(end.get("exitCode").or_else(|| end.get("exit_code"))).unwrap_or(0),
      exited: end.get("exited").and_then(Value::as_bool).unwrap_or(false),
      status: end.get("status").and_then(Value::as_str).unwrap_or_default().to_string(),
      error: end.get("error").and_then(Value::as_str).map(str::to_string),
    }));
  }
  if event.contains_key("keepalive") {
    return Ok(ProcessEvent::Keepalive);
  }
  Ok(ProcessEvent::Other)
}

/// Signal number of Go's `ProcessState.String()` text ("signal: killed", "signal: terminated
/// (core dumped)").
pub fn signal_of_status(status: &str) -> Option<i32> {
  let name = status.strip_prefix("signal: ")?;
  let name = name.split(" (").next().unwrap_or(name).trim();
  Some(match name {
    "hangup" => 1,
    "interrupt" => 2,
    "quit" => 3,
    "illegal instruction" => 4,
    "trace/breakpoint trap" => 5,
    "aborted" => 6,
    "bus error" => 7,
    "floating point exception" => 8,
    "killed" => 9,
    "user defined signal 1" => 10,
    "segmentation fault" => 11,
    "user defined signal 2" => 12,
    "broken pipe" => 13,
    "alarm clock" => 14,
    "terminated" => 15,
    other => other.strip_prefix("signal ").and_then(|n| n.parse().ok())?,
  })
}

/// Exit code and signal name of an `end` event, filled like the Docker provider: a death by
/// signal N is exit code 128 + N with `signal` set (envd reports `exited: false`, `exitCode: -1`
/// and "signal: killed"); a shell that reports 128 + N itself (129..=192) is read the same way.
pub fn exit_of(end: &EndEvent) -> (i64, Option<String>) {
  use crate::core::process::signal_name;
  if !end.exited {
    if let Some(sig) = signal_of_status(&end.status).or_else(|| end.error.as_deref().and_then(signal_of_status)) {
      return (128 + sig as i64, Some(signal_name(sig)));
    }
    if end.exit_code >= 0 {
      return (end.exit_code, None);
    }
    // ended without an exit status and without a known signal: report a generic failure
    return (128, None);
  }
  let signal = (129..=192).contains(&end.exit_code).then(|| signal_name((end.exit_code - 128) as i32));
  (end.exit_code, signal)
}

// ------------------------------------------------------------------ filesystem entries

/// One `EntryInfo` of `filesystem.Filesystem`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
  pub name: String,
  /// "file", "directory", "symlink" or "other"
  pub kind: &'static str,
  pub path: String,
  pub size: f64,
  pub mode: u32,
  pub mtime_ms: f64,
}

pub fn parse_entry(v: &Value) -> Entry {
  let kind = match &v["type"] {
    Value::String(s) => match s.as_str() {
      "FILE_TYPE_FILE" => "file",
      "FILE_TYPE_DIRECTORY" => "directory",
      "FILE_TYPE_SYMLINK" => "symlink",
      _ => "other",
    },
    Value::Number(n) => match n.as_i64() {
      Some(1) => "file",
      Some(2) => "directory",
      Some(3) => "symlink",
      _ => "other",
    },
    _ => "other",
  };
  Entry {
    name: v["name"].as_str().unwrap_or_default().to_string(),
    kind,
    path: v["path"].as_str().unwrap_or_default().to_string(),
    size: int_of(v.get("size")).unwrap_or(0) as f64,
    mode: int_of(v.get("mode")).and_then(|m| u32::try_from(m).ok()).unwrap_or(0),
    mtime_ms: v["modifiedTime"].as_str().and_then(rfc3339_ms).unwrap_or(0.0),
  }
}

#[cfg(test)]
mod tests {
  use serde_json::json;

  use super::*;

  #[test]
  fn envelopes_round_trip_through_split_reads() {
    let mut wire = encode_envelope(0, br#"{"event":{"start":{"pid":412}}}"#);
    wire.extend(encode_envelope(0, br#"{"event":{"keepalive":{}}}"#));
    wire.extend(encode_envelope(FLAG_END_STREAM, b"{}"));
    assert_eq!(&wire[..5], &[0, 0, 0, 0, 31]);
    let mut d = EnvelopeDecoder::default();
    let mut got = Vec::new();
    for b in &wire {
      d.push(std::slice::from_ref(b));
      while let Some(e) = d.next_envelope().unwrap() {
        got.push(classify(e).unwrap());
      }
    }
    assert_eq!(d.pending(), 0);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], StreamItem::Message(json!({"event":{"start":{"pid":412}}})));
    assert_eq!(parse_process_event(match &got[1] { StreamItem::Message(v) => v, _ => panic!() }).unwrap(), ProcessEvent::Keepalive);
    assert_eq!(got[2], StreamItem::End(None));
  }

  #[test]
  fn end_of_stream_carries_the_error() {
    let e = encode_envelope(FLAG_END_STREAM, br#"{"error":{"code":"deadline_exceeded","message":"deadline exceeded"},"metadata":{"a":["b"]}}"#);
    let mut d = EnvelopeDecoder::default();
    d.push(&e[..3]);
    assert_eq!(d.next_envelope().unwrap(), None);
    d.push(&e[3..]);
    let item = classify(d.next_envelope().unwrap().unwrap()).unwrap();
    assert_eq!(item, StreamItem::End(Some(RpcError::new("deadline_exceeded", "deadline exceeded", 200))));
    // an empty end-of-stream payload is a clean end too
    assert_eq!(classify(Envelope { flags: FLAG_END_STREAM, payload: vec![] }).unwrap(), StreamItem::End(None));
    assert!(classify(Envelope { flags: FLAG_COMPRESSED, payload: b"x".to_vec() }).is_err());
  }

  #[test]
  fn oversized_envelopes_are_rejected() {
    let mut d = EnvelopeDecoder::default();
    d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
    assert!(d.next_envelope().is_err());
  }

  #[test]
  fn process_events_parse_with_base64_and_int64_strings() {
    let start = parse_process_event(&json!({"event":{"start":{"pid":"412"}}})).unwrap();
    assert_eq!(start, ProcessEvent::Start { pid: 412 });
    assert_eq!(parse_process_event(&json!({"event":{"data":{"stdout":"aGkK"}}})).unwrap(), ProcessEvent::Stdout(b"hi\n".to_vec()));
    // unpadded and URL-safe base64 are accepted too
    assert_eq!(parse_process_event(&json!({"event":{"data":{"stderr":"_-8"}}})).unwrap(), ProcessEvent::Stderr(vec![0xff, 0xef]));
    assert_eq!(parse_process_event(&json!({"event":{"data":{"stdout":"aGk"}}})).unwrap(), ProcessEvent::Stdout(b"hi".to_vec()));
    let ok = parse_process_event(&json!({"event":{"end":{"exited":true,"status":"exit status 0"}}})).unwrap();
    let ProcessEvent::End(ok) = ok else { panic!() };
    assert_eq!((ok.exit_code, ok.exited), (0, true));
    assert_eq!(exit_of(&ok), (0, None));
    let ProcessEvent::End(fail) =
      parse_process_event(&json!({"event":{"end":{"exitCode":"3","exited":true,"status":"exit status 3","error":"exit status 3"}}})).unwrap()
    else {
      panic!()
    };
    assert_eq!(exit_of(&fail), (3, None));
    let ProcessEvent::End(killed) =
      parse_process_event(&json!({"event":{"end":{"exitCode":-1,"status":"signal: killed","error":"signal: killed"}}})).unwrap()
    else {
      panic!()
    };
    assert_eq!(exit_of(&killed), (137, Some("SIGKILL".to_string())));
    assert_eq!(exit_of(&EndEvent { exit_code: 143, exited: true, ..Default::default() }), (143, Some("SIGTERM".into())));
    assert_eq!(signal_of_status("signal: segmentation fault (core dumped)"), Some(11));
    assert_eq!(parse_process_event(&json!({"event":{"somethingNew":{}}})).unwrap(), ProcessEvent::Other);
    assert!(parse_process_event(&json!({"nope":1})).is_err());
    assert!(parse_process_event(&json!({"event":{"start":{}}})).is_err());
  }

  #[test]
  fn connect_errors_map_to_codes() {
    let e = RpcError::from_response(404, br#"{"code":"not_found","message":"path not found"}"#);
    assert_eq!((e.code.as_str(), e.message.as_str()), ("not_found", "path not found"));
    assert_eq!(e.to_error("Stat").code, ErrorCode::ExecutionError);
    let e = RpcError::from_response(401, br#"{"code":401,"message":"unauthorized access"}"#);
    assert_eq!(e.code, "unauthenticated");
    assert_eq!(e.to_error("ListDir").code, ErrorCode::PermissionDenied);
    let gone = RpcError::from_response(502, br#"{"sandboxId":"abc","message":"The sandbox was not found","code":502}"#);
    let err = gone.to_error("Start");
    assert_eq!(err.code, ErrorCode::SandboxNotFound);
    assert!(err.message.contains("The sandbox was not found"), "{}", err.message);
    assert_eq!(RpcError::from_response(429, b"").to_error("x").code, ErrorCode::QuotaExceeded);
    assert_eq!(RpcError::from_response(400, b"bad cwd").to_error("x").code, ErrorCode::InvalidArgument);
    assert_eq!(RpcError::from_response(500, b"<html>oops</html>").message, "<html>oops</html>");
    assert_eq!(RpcError::from_response(503, b"").message, "HTTP 503");
    assert_eq!(RpcError::new("unavailable", "refused", 0).to_error("x").code, ErrorCode::ProviderUnavailable);
    assert_eq!(RpcError::new("deadline_exceeded", "", 200).to_error("x").code, ErrorCode::ExecutionTimeout);
  }

  #[test]
  fn entries_and_timestamps_parse() {
    let e = parse_entry(&json!({"name":"a.txt","type":"FILE_TYPE_FILE","path":"/home/user/a.txt","size":"3","mode":420,
      "permissions":"-rw-r--r--","owner":"user","group":"user","modifiedTime":"2026-01-01T00:00:00.123456Z"}));
    assert_eq!((e.kind, e.size, e.mode, e.path.as_str()), ("file", 3.0, 0o644, "/home/user/a.txt"));
    assert_eq!(e.mtime_ms, 1_767_225_600_123.0);
    assert_eq!(parse_entry(&json!({"type":"FILE_TYPE_DIRECTORY"})).kind, "directory");
    assert_eq!(parse_entry(&json!({"type":3})).kind, "symlink");
    assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0.0));
    assert_eq!(rfc3339_ms("2000-02-29T12:00:00.5Z"), Some(951_825_600_500.0));
    assert_eq!(rfc3339_ms("yesterday"), None);
  }
}
