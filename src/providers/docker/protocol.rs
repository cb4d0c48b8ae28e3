//! The wire protocol between the addon and the guest daemon (`guest/`), shared by both crates
//! (the guest includes this file with `#[path]`). It depends on `serde` and `serde_json` only.
//!
//! The guest speaks over the container's attached stdio: the addon writes frames to the guest's
//! stdin, the guest writes frames to its stdout (its stderr carries its own log lines).
//!
//! A frame is `len: u32 LE` (length of everything after it) `kind: u8` `id: u32 LE` `payload`.
//! `id` names a request (and, for a spawned process, the process). Control messages (`Request`,
//! `Reply`) carry JSON; data frames (`Stdout`, `Stderr`, `Stdin`, `Data`) carry raw bytes, so the
//! protocol is binary-safe and several requests are multiplexed over the one stream.
//!
//! Handshake: the guest's first frame is `Reply::Hello` with id 0. The addon checks `version`
//! and falls back to the `docker exec` engine when it differs.

use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;
/// Largest payload the guest sends in one data frame.
pub const CHUNK: usize = 64 * 1024;
/// Frames larger than this are a protocol error (protects both sides from a corrupt stream).
pub const MAX_FRAME: usize = 8 * 1024 * 1024;
/// Most entries the guest puts in one `Entries`/`List` reply (a few hundred KiB of JSON at most).
pub const LIST_CHUNK: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
  /// addon → guest, JSON `Request`
  Request = 1,
  /// guest → addon, JSON `Reply`
  Reply = 2,
  /// guest → addon, raw bytes of a process's stdout
  Stdout = 3,
  /// guest → addon, raw bytes of a process's stderr
  Stderr = 4,
  /// addon → guest, raw bytes for a process's stdin
  Stdin = 5,
  /// addon → guest, close a process's stdin (empty payload)
  StdinClose = 6,
  /// both ways: file content of a `ReadFile` (guest → addon) or `WriteFile` (addon → guest)
  Data = 7,
}

impl Kind {
  pub fn from_u8(b: u8) -> Option<Kind> {
    Some(match b {
      1 => Kind::Request,
      2 => Kind::Reply,
      3 => Kind::Stdout,
      4 => Kind::Stderr,
      5 => Kind::Stdin,
      6 => Kind::StdinClose,
      7 => Kind::Data,
      _ => return None,
    })
  }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
  /// Start a process in its own session and process group. Replies: `Started`, then output frames,
  /// then `Exit` (or `Error` when it could not be set up).
  Spawn {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    timeout_ms: Option<u64>,
    /// per-stream cap; output beyond it is counted, not sent
    max_output: u64,
    /// a background process keeps the processes it leaves behind; a foreground one runs under a
    /// subreaper shim that kills every descendant (setsid'd and orphaned ones too) when it returns
    background: bool,
    /// keep stdin open for `Stdin` frames (otherwise it is /dev/null)
    stdin: bool,
  },
  /// Send `signal` to the process group of the process started by request `target`.
  Signal { target: u32, signal: i32 },
  /// Replies: `Data` frames, then `Read`.
  ReadFile { path: String, max_bytes: u64 },
  /// Followed by `Data` frames with exactly `size` bytes in total; replies `Ok` once the file is
  /// renamed into place. Parent directories are created.
  WriteFile { path: String, size: u64 },
  /// Replies: zero or more `Entries` chunks (at most `LIST_CHUNK` entries each), then `List` with
  /// the rest. The guest stops after `max_entries` entries and says so with `truncated`.
  List {
    path: String,
    recursive: bool,
    all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_entries: Option<u64>,
  },
  Remove { path: String, recursive: bool },
  Mkdir { path: String },
  Stat { path: String },
  /// Resource usage; `disk_path` is summed like `du`.
  Stats { disk_path: String },
  /// Every process in the sandbox except PID 1 and its session (the init and the image's own
  /// command, or the guest itself when it is PID 1), the guest, and the guest's idle shims.
  Processes,
  /// Kill (SIGKILL) what `Processes` lists, and the shims. Replies `Killed`.
  KillAll,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
  /// relative to the listed directory
  pub path: String,
  pub kind: String,
  pub size: u64,
  pub mtime_ms: f64,
  /// permission bits, e.g. 0o644
  pub mode: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessEntry {
  pub pid: u32,
  pub ppid: u32,
  pub state: String,
  pub cmdline: Vec<String>,
  /// the `Spawn` request that started it (only for processes the guest started itself)
  pub request: Option<u32>,
  pub rss_kb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Reply {
  Hello { version: u32, pid: u32, uid: u32, gid: u32 },
  Ok,
  /// `errno` is the OS error name when there is one (ENOENT, EISDIR, ...)
  Error { message: String, errno: Option<String> },
  Started { pid: u32 },
  Exit {
    /// exit status, or 128 + signal when killed; 124 on timeout
    code: i32,
    signal: Option<String>,
    timed_out: bool,
    stdout_dropped: u64,
    stderr_dropped: u64,
    /// peak resident set size in KiB of the process and the descendants it waited for (wait4)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_rss_kb: Option<u64>,
  },
  Read { size: u64 },
  /// A non-final chunk of a `List` reply.
  Entries { entries: Vec<Entry> },
  /// The final chunk of a listing; `truncated` when `max_entries` stopped it early.
  List {
    entries: Vec<Entry>,
    #[serde(default)]
    truncated: bool,
  },
  Stat { entry: Entry },
  Stats {
    memory_bytes: u64,
    memory_limit: u64,
    cpu_usage_ns: u64,
    pids: u64,
    disk_bytes: u64,
    net_rx_bytes: u64,
    net_tx_bytes: u64,
  },
  Processes { processes: Vec<ProcessEntry> },
  Killed { count: u32 },
}

/// Encode one frame.
pub fn encode(kind: Kind, id: u32, payload: &[u8]) -> Vec<u8> {
  let mut out = Vec::with_capacity(9 + payload.len());
  out.extend_from_slice(&((5 + payload.len()) as u32).to_le_bytes());
  out.push(kind as u8);
  out.extend_from_slice(&id.to_le_bytes());
  out.extend_from_slice(payload);
  out
}

pub fn encode_json<T: Serialize>(kind: Kind, id: u32, value: &T) -> Vec<u8> {
  encode(kind, id, &serde_json::to_vec(value).expect("protocol values serialize"))
}

/// A decoded frame.
#[derive(Debug, PartialEq)]
pub struct Frame {
  pub kind: Kind,
  pub id: u32,
  pub payload: Vec<u8>,
}

/// Incremental decoder: push bytes as they arrive, pop whole frames.
#[derive(Default)]
pub struct Decoder {
  buf: Vec<u8>,
  start: usize,
}

impl Decoder {
  pub fn push(&mut self, bytes: &[u8]) {
    if self.start > 0 && self.start == self.buf.len() {
      self.buf.clear();
      self.start = 0;
    }
    self.buf.extend_from_slice(bytes);
  }

  /// The next whole frame, `Ok(None)` when more bytes are needed, `Err` on a corrupt stream.
  pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
    let avail = &self.buf[self.start..];
    if avail.len() < 4 {
      return Ok(None);
    }
    let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
    if !(5..=MAX_FRAME).contains(&len) {
      return Err(format!("bad frame length {len}"));
    }
    if avail.len() < 4 + len {
      return Ok(None);
    }
    let kind = Kind::from_u8(avail[4]).ok_or_else(|| format!("unknown frame kind {}", avail[4]))?;
    let id = u32::from_le_bytes([avail[5], avail[6], avail[7], avail[8]]);
    let payload = avail[9..4 + len].to_vec();
    self.start += 4 + len;
    if self.start > 1 << 20 {
      self.buf.drain(..self.start);
      self.start = 0;
    }
    Ok(Some(Frame { kind, id, payload }))
  }
}

/// For the addon's property tests (`src/proptests.rs`): bytes held, and where the unconsumed
/// ones start. Test-only, so the wire format and the guest's build are untouched.
#[cfg(test)]
impl Decoder {
  #[allow(dead_code)]
  pub(crate) fn held(&self) -> (usize, usize) {
    (self.buf.len(), self.start)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn frames_round_trip_split_anywhere() {
    let mut wire = encode_json(Kind::Request, 7, &Request::Mkdir { path: "/w/a".into() });
    wire.extend(encode(Kind::Stdout, 9, &[0, 255, 10, 13]));
    wire.extend(encode(Kind::StdinClose, 3, &[]));
    for split in 0..wire.len() {
      let mut d = Decoder::default();
      d.push(&wire[..split]);
      let mut frames = Vec::new();
      while let Some(f) = d.next_frame().unwrap() {
        frames.push(f);
      }
      d.push(&wire[split..]);
      while let Some(f) = d.next_frame().unwrap() {
        frames.push(f);
      }
      assert_eq!(frames.len(), 3, "split at {split}");
      assert_eq!(serde_json::from_slice::<Request>(&frames[0].payload).unwrap(), Request::Mkdir { path: "/w/a".into() });
      assert_eq!((frames[1].kind, frames[1].id, frames[1].payload.as_slice()), (Kind::Stdout, 9, &[0u8, 255, 10, 13][..]));
      assert_eq!((frames[2].kind, frames[2].id, frames[2].payload.len()), (Kind::StdinClose, 3, 0));
    }
  }

  #[test]
  fn corrupt_streams_are_errors() {
    let mut d = Decoder::default();
    d.push(&[1, 0, 0, 0, 1]);
    assert!(d.next_frame().is_err());
    let mut d = Decoder::default();
    d.push(&encode(Kind::Reply, 0, b"{}")[..4]);
    d.push(&[99, 0, 0, 0, 0, b'{', b'}']);
    assert!(d.next_frame().is_err());
  }

  #[test]
  fn json_shapes() {
    let r = Reply::Exit { code: 0, signal: None, timed_out: false, stdout_dropped: 0, stderr_dropped: 0, max_rss_kb: None };
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["type"], "exit");
    let s = serde_json::to_string(&Request::Processes).unwrap();
    assert_eq!(s, r#"{"op":"processes"}"#);
  }
}
