//! The `/v1` process stream, shared by the server (which writes it) and the remote provider
//! (which reads it): NDJSON, one event per line, output chunks in base64 (binary safe).
//!
//! ```text
//! {"type":"started","pid":42,"handle":"p-1"}
//! {"type":"stdout","data":"aGVsbG8K"}
//! {"type":"stderr","data":"..."}
//! {"type":"exit","exitCode":0,"timedOut":false,"truncated":false,"signal":null,"durationMs":12.5,"maxRssKb":null}
//! {"type":"error","code":"EXECUTION_ERROR","message":"..."}
//! ```
//!
//! A chunk line carries at most [`MAX_CHUNK`] bytes of output, so every line stays under
//! [`MAX_LINE`]; a reader refuses longer lines (a hostile or broken peer cannot make it buffer
//! without bound).

use base64::Engine;
use serde_json::{json, Value};

use crate::core::error::{ErrorCode, SandboxError};
use crate::core::process::OutStream;

/// Output bytes per chunk line.
pub const MAX_CHUNK: usize = 48 * 1024;
/// Longest line a reader accepts (a chunk line is about 4/3 of [`MAX_CHUNK`] plus its framing).
pub const MAX_LINE: usize = 256 * 1024;
/// The content type of the stream.
pub const NDJSON: &str = "application/x-ndjson";

#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
  pub exit_code: i64,
  pub timed_out: bool,
  pub truncated: bool,
  pub signal: Option<String>,
  pub duration_ms: f64,
  pub max_rss_kb: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
  Started { pid: u32, handle: String },
  Output(OutStream, Vec<u8>),
  Exit(Exit),
  Error { code: String, message: String },
}

fn b64() -> base64::engine::general_purpose::GeneralPurpose {
  base64::engine::general_purpose::STANDARD
}

/// The lines of one event (an output event longer than [`MAX_CHUNK`] becomes several lines).
pub fn encode(e: &Event) -> Vec<u8> {
  let mut out = Vec::new();
  let mut line = |v: Value| {
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'\n');
  };
  match e {
    Event::Started { pid, handle } => line(json!({ "type": "started", "pid": pid, "handle": handle })),
    Event::Output(s, data) => {
      let kind = if *s == OutStream::Stdout { "stdout" } else { "stderr" };
      for c in data.chunks(MAX_CHUNK) {
        line(json!({ "type": kind, "data": b64().encode(c) }));
      }
    }
    Event::Exit(x) => line(json!({
      "type": "exit",
      "exitCode": x.exit_code,
      "timedOut": x.timed_out,
      "truncated": x.truncated,
      "signal": x.signal,
      "durationMs": x.duration_ms,
      "maxRssKb": x.max_rss_kb,
    })),
    Event::Error { code, message } => line(json!({ "type": "error", "code": code, "message": message })),
  }
  out
}

fn bad(msg: impl Into<String>) -> SandboxError {
  SandboxError::new(ErrorCode::ProviderError, format!("the sandbox service sent a malformed process stream: {}", msg.into()))
}

/// One line (without its newline) as an event.
pub fn decode(line: &[u8]) -> Result<Event, SandboxError> {
  let v: Value = serde_json::from_slice(line).map_err(|e| bad(format!("a line is not JSON ({e})")))?;
  let s = |k: &str| v.get(k).and_then(Value::as_str);
  match s("type") {
    Some("started") => Ok(Event::Started {
      pid: v.get("pid").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok()).ok_or_else(|| bad("started without a pid"))?,
      handle: s("handle").filter(|h| !h.is_empty() && h.len() <= 128).ok_or_else(|| bad("started without a handle"))?.to_string(),
    }),
    Some(kind @ ("stdout" | "stderr")) => {
      let data = b64().decode(s("data").ok_or_else(|| bad("a chunk without data"))?).map_err(|e| bad(format!("a chunk is not base64 ({e})")))?;
      Ok(Event::Output(if kind == "stdout" { OutStream::Stdout } else { OutStream::Stderr }, data))
    }
    Some("exit") => Ok(Event::Exit(Exit {
      exit_code: v.get("exitCode").and_then(Value::as_i64).ok_or_else(|| bad("exit without an exitCode"))?,
      timed_out: v.get("timedOut").and_then(Value::as_bool).unwrap_or(false),
      truncated: v.get("truncated").and_then(Value::as_bool).unwrap_or(false),
      signal: s("signal").map(|x| x.chars().take(32).collect()),
      duration_ms: v.get("durationMs").and_then(Value::as_f64).filter(|d| d.is_finite() && *d >= 0.0).unwrap_or(0.0),
      max_rss_kb: v.get("maxRssKb").and_then(Value::as_u64),
    })),
    Some("error") => Ok(Event::Error {
      code: s("code").unwrap_or("PROVIDER_ERROR").chars().take(64).collect(),
      message: s("message").unwrap_or("the process failed on the server").chars().take(4096).collect(),
    }),
    other => Err(bad(format!("unknown event type {other:?}"))),
  }
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug, Default)]
pub struct Lines {
  buf: Vec<u8>,
  max: usize,
}

impl Lines {
  pub fn new(max: usize) -> Self {
    Self { buf: Vec::new(), max }
  }

  /// Adds bytes; returns the complete lines (without `\n`, empty lines skipped), or an error
  /// when a line grows past the maximum.
  pub fn push(&mut self, data: &[u8]) -> Result<Vec<Vec<u8>>, SandboxError> {
    let mut out = Vec::new();
    for part in data.split_inclusive(|b| *b == b'\n') {
      let ends = part.last() == Some(&b'\n');
      let body = if ends { &part[..part.len() - 1] } else { part };
      if self.buf.len() + body.len() > self.max {
        return Err(bad(format!("a line is longer than {} bytes", self.max)));
      }
      self.buf.extend_from_slice(body);
      if ends {
        let line = std::mem::take(&mut self.buf);
        if !line.iter().all(u8::is_ascii_whitespace) {
          out.push(line);
        }
      }
    }
    Ok(out)
  }

  /// Bytes of an unfinished line.
  pub fn pending(&self) -> usize {
    self.buf.len()
  }
}

/// Output gathered up to a cap per stream (what the client keeps of a process's output).
#[derive(Debug, Default)]
pub struct Capped {
  pub stdout: Vec<u8>,
  pub stderr: Vec<u8>,
  pub truncated: bool,
  cap: usize,
}

impl Capped {
  pub fn new(cap: usize) -> Self {
    Self { cap, ..Default::default() }
  }

  /// Keeps what fits; returns the part kept (to hand to a sink).
  pub fn add<'a>(&mut self, s: OutStream, data: &'a [u8]) -> &'a [u8] {
    let buf = if s == OutStream::Stdout { &mut self.stdout } else { &mut self.stderr };
    let room = self.cap.saturating_sub(buf.len());
    if data.len() > room {
      self.truncated = true;
    }
    let kept = &data[..data.len().min(room)];
    buf.extend_from_slice(kept);
    kept
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn events_round_trip() {
    let events = [
      Event::Started { pid: 7, handle: "p-1".into() },
      Event::Output(OutStream::Stdout, vec![0, 1, 2, 255, b'\n']),
      Event::Output(OutStream::Stderr, b"err".to_vec()),
      Event::Exit(Exit { exit_code: 3, timed_out: false, truncated: true, signal: Some("SIGKILL".into()), duration_ms: 1.5, max_rss_kb: Some(10) }),
      Event::Error { code: "EXECUTION_ERROR".into(), message: "gone".into() },
    ];
    let mut lines = Lines::new(MAX_LINE);
    let bytes: Vec<u8> = events.iter().flat_map(encode).collect();
    // fed one byte at a time: lines are reassembled across reads
    let mut got = Vec::new();
    for b in &bytes {
      for l in lines.push(std::slice::from_ref(b)).unwrap() {
        got.push(decode(&l).unwrap());
      }
    }
    assert_eq!(got, events);
    assert_eq!(lines.pending(), 0);
  }

  #[test]
  fn big_output_is_split_into_bounded_lines() {
    let data = vec![b'x'; MAX_CHUNK * 3 + 5];
    let bytes = encode(&Event::Output(OutStream::Stdout, data.clone()));
    let mut lines = Lines::new(MAX_LINE);
    let ls = lines.push(&bytes).unwrap();
    assert_eq!(ls.len(), 4);
    assert!(ls.iter().all(|l| l.len() < MAX_LINE));
    let mut back = Vec::new();
    for l in ls {
      if let Event::Output(_, d) = decode(&l).unwrap() {
        back.extend(d);
      }
    }
    assert_eq!(back, data);
  }

  #[test]
  fn hostile_streams_are_refused() {
    let mut lines = Lines::new(100);
    assert!(lines.push(&[b'a'; 60]).unwrap().is_empty());
    assert!(lines.push(&[b'a'; 60]).is_err(), "a line past the maximum");
    for bad in [&b"not json"[..], br#"{"type":"nope"}"#, br#"{"type":"stdout","data":"!!"}"#, br#"{"type":"started"}"#, br#"{"type":"exit"}"#] {
      let e = decode(bad).unwrap_err();
      assert_eq!(e.code, ErrorCode::ProviderError, "{}", String::from_utf8_lossy(bad));
    }
  }

  #[test]
  fn capped_output() {
    let mut c = Capped::new(5);
    assert_eq!(c.add(OutStream::Stdout, b"abc"), b"abc");
    assert_eq!(c.add(OutStream::Stdout, b"defg"), b"de");
    assert_eq!(c.add(OutStream::Stderr, b"12"), b"12");
    assert_eq!((c.stdout.as_slice(), c.stderr.as_slice(), c.truncated), (&b"abcde"[..], &b"12"[..], true));
  }
}
