//! The addon's side of the guest daemon: one connection per sandbox over the container's attached
//! stdio (or over one attached `docker exec` for images that keep their own command).
//!
//! The guest, and everything else inside the sandbox, is untrusted: a command in the sandbox may
//! forge frames, and a frozen guest (`kill -STOP`) answers nothing. So the host checks every byte:
//!
//! - A reader task decodes frames and routes each to the request it names, after checking that
//!   it fits that request (its kind, its order, its size). Anything else (a corrupt frame, JSON
//!   that does not parse, a `Data` frame for a spawn, a second `Started`, more bytes or entries
//!   than were asked for, a kind only the addon sends) fails the whole connection: it is marked
//!   dead with a reason saying what the guest did, and every pending call fails at once.
//!   Frames for requests nobody waits for any more are dropped.
//! - Output is capped on the host at what the caller asked for, and every queue is bounded: when
//!   a caller is slow the reader waits, which stops reading the pipe and so pushes back on the
//!   guest, instead of buffering whatever it sends.
//! - Every call has a deadline, and so has every write to the guest. When one passes, the guest
//!   is declared unresponsive: the connection is marked dead and every pending call fails with
//!   `PROVIDER_ERROR`. A connection whose stream ended (the guest exited, the container stopped)
//!   fails its calls with `SANDBOX_NOT_RUNNING`, as it always has.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::core::process::{Control, ExecOutput, OutStream, OutputSink, Outcome, Spawned};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::providers::docker::protocol::{encode, encode_json, Decoder, Entry, Frame, Kind, ProcessEntry, Reply, Request, CHUNK, VERSION};

/// Where the guest binary is mounted or uploaded inside every sandbox.
pub const GUEST_DIR: &str = "/.agentic-sandbox";
pub const GUEST_PATH: &str = "/.agentic-sandbox/agentic-sandbox-guest";
pub const GUEST_FILE: &str = "agentic-sandbox-guest";

// ------------------------------------------------------------------ limits

/// Most entries a listing asks for (sent as `max_entries`; the guest says `truncated` beyond).
/// A million entries is far more than any caller can use, yet keeps a listing of a runaway tree
/// (or a forged one) from growing the host without bound.
pub const MAX_LIST_ENTRIES: u64 = 1_000_000;
/// Most bytes of JSON one listing may bring, whatever its entry count: entries beyond are dropped
/// and the listing reported truncated. A million real entries are about 150 MiB; this keeps a
/// guest sending a million 4 KiB paths from costing the host gigabytes.
pub const MAX_LIST_BYTES: usize = 256 << 20;
/// Largest data frame (`Stdout`, `Stderr`, `Data`) accepted. The guest sends at most `CHUNK`
/// bytes per frame; the slack covers a spawn's one-frame failure message, which quotes the
/// command and the working directory (each at most `MAX_SPAWN_PATH`, checked before sending).
pub const MAX_DATA_FRAME: usize = CHUNK + 16 * 1024;
/// Longest command name or working directory a spawn sends. The kernel refuses longer paths
/// (PATH_MAX) anyway; refusing them here keeps the guest's failure message within `MAX_DATA_FRAME`.
pub const MAX_SPAWN_PATH: usize = 4096;
/// Bytes of received events that may wait in the host's queues, across all requests of one
/// connection. Beyond it the reader stops reading until callers catch up, which pushes back on
/// the guest through the pipe: the host never buffers more than this (plus one frame of at most
/// `MAX_FRAME` being decoded, and one event larger than the budget, which waits for all of it)
/// beyond what its callers asked for.
pub const CONN_BUFFER_BYTES: usize = 4 << 20;
/// Events that may wait for one request (bounded so no single request can queue without end).
const EVENTS_PER_REQUEST: usize = 64;
/// Frames that may wait for the writer task.
const FRAMES_QUEUED: usize = 64;
/// Largest frame of file content or stdin the host sends.
const WRITE_CHUNK: usize = 256 * 1024;

/// How long the guest has to say hello after it was started.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(15);
/// Calls that touch one thing (stat, mkdir, a non-recursive remove, signal, processes,
/// kill-all): a guest that takes longer than this is stuck, not busy.
pub const CONTROL_DEADLINE: Duration = Duration::from_secs(30);
/// Calls that walk a tree (listings, recursive removes, stats, which sums the workspace like
/// `du`): a big tree on a slow disk takes a while.
pub const TREE_DEADLINE: Duration = Duration::from_secs(120);
/// Base deadline of a file read or write; each byte moved adds time at `SLOW_RATE_BYTES_PER_SEC`.
pub const TRANSFER_DEADLINE: Duration = Duration::from_secs(30);
/// The slowest transfer that still counts as progress. An attached Docker stream moves far more
/// even on a loaded machine; reads and listings get more time with each byte that arrives, so
/// only a guest that stops (or crawls) is declared unresponsive.
pub const SLOW_RATE_BYTES_PER_SEC: u64 = 1 << 20;
/// How long a spawn may take to report `Started` (or why it could not start).
pub const SPAWN_START_DEADLINE: Duration = Duration::from_secs(15);
/// After a spawn's own timeout the guest kills it and reports `Exit`; this is the time allowed
/// for that (plus the time its output takes at `SLOW_RATE_BYTES_PER_SEC`). A spawn without a
/// timeout (a background one) has no deadline.
pub const SPAWN_EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long one write to the guest may wait: a guest that stops reading its input must not
/// block a call (or the process's stdin) forever.
pub const SEND_DEADLINE: Duration = Duration::from_secs(30);

pub type OutputStream = Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;
pub type InputStream = Pin<Box<dyn AsyncWrite + Send>>;

// ------------------------------------------------------------------ connection state

/// What a caller receives for its request, after the reader checked it fits.
#[derive(Debug)]
enum Event {
  Started(u32),
  Out(OutStream, Vec<u8>),
  Data(Vec<u8>),
  Entries(Vec<Entry>),
  /// the final reply: nothing follows
  Reply(Reply),
}

/// An event in a request's queue; its bytes count against the connection's buffer budget
/// until the caller took it.
struct Delivery {
  ev: Event,
  bytes: usize,
  _permit: OwnedSemaphorePermit,
}

/// What the reader knows about one pending request, to check that what arrives fits it.
#[derive(Debug)]
enum Op {
  Spawn { started: bool, max_output: u64, kept: [u64; 2], dropped: [u64; 2] },
  Read { max_bytes: u64, received: u64 },
  List { max_entries: u64, count: u64, bytes: usize, cut: bool },
  /// Answered by one reply that `fits`, or by an error.
  Single { name: &'static str, fits: fn(&Reply) -> bool },
}

impl Op {
  fn of(req: &Request) -> Op {
    let single = |name, fits| Op::Single { name, fits };
    match req {
      Request::Spawn { max_output, .. } => Op::Spawn { started: false, max_output: *max_output, kept: [0; 2], dropped: [0; 2] },
      Request::ReadFile { max_bytes, .. } => Op::Read { max_bytes: *max_bytes, received: 0 },
      Request::List { max_entries, .. } => Op::List { max_entries: max_entries.unwrap_or(u64::MAX), count: 0, bytes: 0, cut: false },
      Request::WriteFile { .. } => single("writeFile", |r| matches!(r, Reply::Ok)),
      Request::Signal { .. } => single("signal", |r| matches!(r, Reply::Ok)),
      Request::Remove { .. } => single("remove", |r| matches!(r, Reply::Ok)),
      Request::Mkdir { .. } => single("mkdir", |r| matches!(r, Reply::Ok)),
      Request::Stat { .. } => single("stat", |r| matches!(r, Reply::Stat { .. })),
      Request::Stats { .. } => single("stats", |r| matches!(r, Reply::Stats { .. })),
      Request::Processes => single("processes", |r| matches!(r, Reply::Processes { .. })),
      Request::KillAll => single("killAll", |r| matches!(r, Reply::Killed { .. })),
    }
  }

  fn name(&self) -> &'static str {
    match self {
      Op::Spawn { .. } => "spawn",
      Op::Read { .. } => "readFile",
      Op::List { .. } => "list",
      Op::Single { name, .. } => name,
    }
  }
}

struct Slot {
  tx: mpsc::Sender<Delivery>,
  op: Op,
}

#[derive(Debug, Clone)]
struct Dead {
  reason: String,
  code: ErrorCode,
}

/// State shared by the connection, its tasks and its calls.
struct Shared {
  pending: Mutex<HashMap<u32, Slot>>,
  /// `Some` once the connection failed; tasks and calls wait on it to stop at once.
  dead: watch::Sender<Option<Dead>>,
  /// Bytes of events waiting in request queues (`CONN_BUFFER_BYTES` permits).
  budget: Arc<Semaphore>,
  /// the sandbox, for log lines
  what: String,
}

impl Shared {
  fn pending(&self) -> MutexGuard<'_, HashMap<u32, Slot>> {
    // nothing panics while holding it; if something ever did, the map is still consistent
    self.pending.lock().unwrap_or_else(PoisonError::into_inner)
  }

  fn dead(&self) -> Option<Dead> {
    self.dead.borrow().clone()
  }

  /// Mark the connection dead (the first reason wins), fail every pending request and stop the
  /// tasks (they watch `dead`).
  fn fail(&self, reason: String, code: ErrorCode) {
    let mut reason = Some(reason);
    let first = self.dead.send_if_modified(|d| match d {
      Some(_) => false,
      None => {
        *d = Some(Dead { reason: reason.take().unwrap_or_default(), code });
        true
      }
    });
    if !first {
      return;
    }
    let dropped: Vec<Slot> = self.pending().drain().map(|(_, s)| s).collect();
    drop(dropped);
    self.budget.close();
    if let Some(d) = self.dead() {
      if code == ErrorCode::SandboxNotRunning {
        tracing::debug!(guest = %self.what, reason = %d.reason, "guest connection lost");
      } else {
        tracing::warn!(guest = %self.what, reason = %d.reason, "guest connection failed");
      }
    }
  }

  fn violation(&self, what: String) {
    self.fail(
      format!("the sandbox's guest daemon broke the protocol ({what}); its connection was closed and its pending calls failed: restart or destroy the sandbox"),
      ErrorCode::ProviderError,
    );
  }

  /// A deadline passed: the guest is declared unresponsive.
  fn unresponsive(&self, dl: &Deadline) -> SandboxError {
    let secs = dl.allowed().as_secs_f64();
    self.fail(
      format!(
        "the sandbox's guest daemon did not answer {} within {secs:.0} s (it is frozen or overloaded); its connection was closed and its pending calls failed: retry (a guest started beside the image's command is restarted), or restart or destroy the sandbox",
        dl.what
      ),
      ErrorCode::ProviderError,
    );
    self.dead_error()
  }

  /// The error a call on this connection fails with.
  fn dead_error(&self) -> SandboxError {
    match self.dead() {
      Some(d) => SandboxError::new(d.code, d.reason),
      None => lost_error("the guest connection closed"),
    }
  }

  /// The next event of a call, or why there is none: the connection failed, or the deadline
  /// passed (which fails the connection).
  async fn next(&self, rx: &mut mpsc::Receiver<Delivery>, dl: &mut Deadline) -> Result<Event> {
    let mut dead = self.dead.subscribe();
    let wait = async {
      tokio::select! {
        // what arrived before the connection failed is still handed out, in order
        biased;
        d = rx.recv() => d,
        _ = dead.wait_for(Option::is_some) => None,
      }
    };
    let got = match dl.at {
      Some(at) => match tokio::time::timeout_at(at, wait).await {
        Ok(got) => got,
        Err(_) => return Err(self.unresponsive(dl)),
      },
      None => wait.await,
    };
    match got {
      Some(Delivery { ev, bytes, .. }) => {
        dl.progress(bytes);
        Ok(ev)
      }
      None => Err(self.dead_error()),
    }
  }
}

/// When a call stops waiting for the guest, and how to name the call when it does.
struct Deadline {
  start: Instant,
  /// `None`: never
  at: Option<Instant>,
  what: String,
  /// each byte delivered moves `at` later (at `SLOW_RATE_BYTES_PER_SEC`)
  per_byte: bool,
}

impl Deadline {
  fn after(allowed: Duration, what: String) -> Self {
    let start = Instant::now();
    Self { start, at: start.checked_add(allowed), what, per_byte: false }
  }

  fn never(what: String) -> Self {
    Self { start: Instant::now(), at: None, what, per_byte: false }
  }

  fn with_progress(mut self) -> Self {
    self.per_byte = true;
    self
  }

  fn progress(&mut self, bytes: usize) {
    if self.per_byte && bytes > 0 {
      self.at = self.at.and_then(|at| at.checked_add(transfer_time(bytes as u64)));
    }
  }

  fn allowed(&self) -> Duration {
    self.at.map(|at| at.saturating_duration_since(self.start)).unwrap_or(Duration::MAX)
  }
}

/// The time `bytes` take at `SLOW_RATE_BYTES_PER_SEC`.
fn transfer_time(bytes: u64) -> Duration {
  let rate = SLOW_RATE_BYTES_PER_SEC;
  Duration::from_secs(bytes / rate) + Duration::from_nanos((bytes % rate) * 1_000_000_000 / rate)
}

/// A request in flight; dropping it (the caller gave up) forgets the request, so frames that
/// still arrive for it are dropped.
struct Call {
  id: u32,
  rx: mpsc::Receiver<Delivery>,
  shared: Arc<Shared>,
}

impl Drop for Call {
  fn drop(&mut self) {
    self.shared.pending().remove(&self.id);
  }
}

pub struct GuestConn {
  frames: mpsc::Sender<Vec<u8>>,
  shared: Arc<Shared>,
  next_id: AtomicU32,
  pub pid: u32,
  tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for GuestConn {
  fn drop(&mut self) {
    self.shared.fail("the guest connection was closed".into(), ErrorCode::SandboxNotRunning);
    for t in &self.tasks {
      t.abort();
    }
  }
}

/// The static guest binary shipped next to the addon: `AGENTIC_SANDBOX_GUEST` if set, else the
/// directory of the loaded `.node` file, else this source tree's build output.
pub fn binary_path() -> Option<PathBuf> {
  if let Ok(p) = std::env::var("AGENTIC_SANDBOX_GUEST") {
    return Some(PathBuf::from(p)).filter(|p| p.is_file());
  }
  let mut candidates = Vec::new();
  if let Some(dir) = own_library_dir() {
    candidates.push(dir.join(GUEST_FILE));
  }
  let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
  candidates.push(src.join(GUEST_FILE));
  candidates.push(src.join("guest/target/x86_64-unknown-linux-gnu/release").join(GUEST_FILE));
  candidates.into_iter().find(|p| p.is_file())
}

/// The architecture (Docker's name) an ELF binary is built for, from its header's `e_machine`.
pub fn elf_arch(path: &std::path::Path) -> Option<&'static str> {
  use std::io::Read;
  let mut head = [0u8; 20];
  std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
  if &head[..4] != b"\x7fELF" {
    return None;
  }
  // e_machine, little-endian (both targets are)
  match u16::from_le_bytes([head[18], head[19]]) {
    0x3e => Some("amd64"),
    0xb7 => Some("arm64"),
    _ => None,
  }
}

/// Where the addon's own shared library is (the guest ships next to it). Windows has no dladdr:
/// there the guest is looked for elsewhere (and is not shipped: the exec engine is used).
#[cfg(not(unix))]
fn own_library_dir() -> Option<PathBuf> {
  None
}

#[cfg(unix)]
fn own_library_dir() -> Option<PathBuf> {
  let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
  let addr = own_library_dir as *const libc::c_void;
  if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
    return None;
  }
  let path = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
  PathBuf::from(path).canonicalize().ok()?.parent().map(|p| p.to_path_buf())
}

fn lost_error(reason: &str) -> SandboxError {
  SandboxError::new(ErrorCode::SandboxNotRunning, reason.to_string())
}

fn reply_error(r: Reply) -> SandboxError {
  match r {
    Reply::Error { message, errno } => {
      let code = match errno.as_deref() {
        Some("EACCES") | Some("EPERM") | Some("EROFS") => ErrorCode::PermissionDenied,
        Some("ENOSPC") | Some("EDQUOT") => ErrorCode::InsufficientResources,
        _ => ErrorCode::ExecutionError,
      };
      SandboxError::new(code, message)
    }
    other => SandboxError::provider(format!("unexpected reply from the guest: {other:?}")),
  }
}


/// An event the reader never hands to this caller (it checked the request's kind).
fn out_of_place(ev: Event) -> SandboxError {
  SandboxError::provider(format!("internal error: unexpected guest event {ev:?}"))
}

/// A short name for a command in messages.
fn short(s: &str) -> String {
  if s.len() <= 80 {
    return s.to_string();
  }
  let mut end = 80;
  while !s.is_char_boundary(end) {
    end -= 1;
  }
  format!("{}…", &s[..end])
}

impl GuestConn {
  /// Take over an attached stream and wait for the guest's handshake.
  pub async fn connect(output: OutputStream, input: InputStream, what: String) -> Result<Arc<Self>> {
    let shared = Arc::new(Shared {
      pending: Mutex::new(HashMap::new()),
      dead: watch::channel(None).0,
      budget: Arc::new(Semaphore::new(CONN_BUFFER_BYTES)),
      what,
    });
    let (frames_tx, frames_rx) = mpsc::channel::<Vec<u8>>(FRAMES_QUEUED);
    let (hello_tx, hello_rx) = oneshot::channel::<Reply>();
    let writer = tokio::spawn(until_dead(shared.clone(), write_loop(shared.clone(), frames_rx, input)));
    let reader = tokio::spawn(until_dead(shared.clone(), read_loop(shared.clone(), output, hello_tx)));
    // dropped on any early return below, which fails `shared` and stops both tasks
    let mut conn = Self { frames: frames_tx, shared, next_id: AtomicU32::new(1), pid: 0, tasks: vec![reader, writer] };
    let hello = match tokio::time::timeout(HANDSHAKE_DEADLINE, hello_rx).await {
      Ok(Ok(h)) => h,
      Ok(Err(_)) => {
        let why = conn.dead().unwrap_or_default();
        return Err(SandboxError::provider(format!("the guest daemon did not start: {why}")));
      }
      Err(_) => {
        return Err(SandboxError::provider(format!(
          "the guest daemon did not answer within {} s",
          HANDSHAKE_DEADLINE.as_secs()
        )))
      }
    };
    match hello {
      Reply::Hello { version, pid, .. } if version == VERSION => conn.pid = pid,
      Reply::Hello { version, .. } => {
        return Err(SandboxError::provider(format!(
          "the guest daemon speaks protocol {version}, this addon {VERSION}; rebuild both (npm run build)"
        )));
      }
      other => return Err(SandboxError::provider(format!("unexpected handshake {other:?}"))),
    }
    Ok(Arc::new(conn))
  }

  /// `Some(reason)` once the connection is dead: the guest is gone, unresponsive, or broke the
  /// protocol. Every call on a dead connection fails at once.
  pub fn dead(&self) -> Option<String> {
    self.shared.dead().map(|d| d.reason)
  }

  /// Give up on the guest: mark the connection dead with `reason` (unless it already is), fail
  /// every pending call with `PROVIDER_ERROR` and stop the connection's tasks. For callers that
  /// learn by other means that the guest cannot be trusted or reached any more.
  pub fn declare_dead(&self, reason: impl Into<String>) {
    self.shared.fail(reason.into(), ErrorCode::ProviderError);
  }

  fn check_alive(&self) -> Result<()> {
    match self.shared.dead() {
      Some(d) => Err(SandboxError::new(d.code, d.reason)),
      None => Ok(()),
    }
  }

  /// Queue one frame for the writer; waits at most `SEND_DEADLINE` for room (the writer is
  /// stuck when the guest stops reading), after which the guest is declared unresponsive.
  async fn send(&self, frame: Vec<u8>, what: &str) -> Result<()> {
    self.check_alive()?;
    let dl = Deadline::after(SEND_DEADLINE, format!("(did not read its input) while sending {what}"));
    let mut dead = self.shared.dead.subscribe();
    let sending = async {
      tokio::select! {
        r = self.frames.send(frame) => r.is_ok(),
        _ = dead.wait_for(Option::is_some) => false,
      }
    };
    match dl.at {
      Some(at) => match tokio::time::timeout_at(at, sending).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(self.shared.dead_error()),
        Err(_) => Err(self.shared.unresponsive(&dl)),
      },
      None => match sending.await {
        true => Ok(()),
        false => Err(self.shared.dead_error()),
      },
    }
  }

  /// Register a request and send it; its events arrive on the returned call.
  async fn call(&self, req: &Request) -> Result<Call> {
    self.check_alive()?;
    let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
    let (tx, rx) = mpsc::channel(EVENTS_PER_REQUEST);
    self.shared.pending().insert(id, Slot { tx, op: Op::of(req) });
    // from here on, an early return drops the call, which forgets the request
    let call = Call { id, rx, shared: self.shared.clone() };
    self.send(encode_json(Kind::Request, id, req), &describe(req)).await?;
    Ok(call)
  }

  /// One request, one reply: the control calls (stat, mkdir, remove, signal, stats, processes,
  /// kill-all), each with its deadline. Spawns, reads, writes and listings have their own
  /// methods, which stream.
  pub async fn request(&self, req: Request) -> Result<Reply> {
    let allowed = match &req {
      Request::Spawn { .. } | Request::ReadFile { .. } | Request::WriteFile { .. } | Request::List { .. } => {
        return Err(SandboxError::invalid_argument(format!(
          "{} goes through its own GuestConn method, not request()",
          Op::of(&req).name()
        )))
      }
      Request::Remove { recursive: true, .. } | Request::Stats { .. } => TREE_DEADLINE,
      _ => CONTROL_DEADLINE,
    };
    let mut dl = Deadline::after(allowed, describe(&req));
    let mut call = self.call(&req).await?;
    match self.shared.next(&mut call.rx, &mut dl).await? {
      Event::Reply(r @ Reply::Error { .. }) => Err(reply_error(r)),
      Event::Reply(r) => Ok(r),
      other => Err(out_of_place(other)),
    }
  }

  /// A whole file of at most `max_bytes` (the guest refuses a larger one; sending more is a
  /// protocol violation). The deadline grows with each byte that arrives.
  pub async fn read_file(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let req = Request::ReadFile { path: path.into(), max_bytes };
    let mut dl = Deadline::after(TRANSFER_DEADLINE, describe(&req)).with_progress();
    let mut call = self.call(&req).await?;
    let mut data = Vec::new();
    loop {
      match self.shared.next(&mut call.rx, &mut dl).await? {
        Event::Data(d) => data.extend_from_slice(&d),
        Event::Reply(Reply::Read { .. }) => return Ok(data),
        Event::Reply(r) => return Err(reply_error(r)),
        other => return Err(out_of_place(other)),
      }
    }
  }

  /// Write a whole file; the deadline covers sending it at `SLOW_RATE_BYTES_PER_SEC` plus
  /// `TRANSFER_DEADLINE`, so a guest that stops reading fails the call instead of blocking it.
  pub async fn write_file(&self, path: &str, content: &[u8]) -> Result<()> {
    let req = Request::WriteFile { path: path.into(), size: content.len() as u64 };
    let what = describe(&req);
    let mut dl = Deadline::after(TRANSFER_DEADLINE + transfer_time(content.len() as u64), what.clone());
    let sending = async {
      let call = self.call(&req).await?;
      for chunk in content.chunks(WRITE_CHUNK) {
        self.send(encode(Kind::Data, call.id, chunk), &what).await?;
      }
      Ok::<_, SandboxError>(call)
    };
    let mut call = match dl.at {
      Some(at) => match tokio::time::timeout_at(at, sending).await {
        Ok(r) => r?,
        Err(_) => return Err(self.shared.unresponsive(&dl)),
      },
      None => sending.await?,
    };
    match self.shared.next(&mut call.rx, &mut dl).await? {
      Event::Reply(Reply::Ok) => Ok(()),
      Event::Reply(r) => Err(reply_error(r)),
      other => Err(out_of_place(other)),
    }
  }

  /// The entries of a directory (of a tree when `recursive`), at most `max_entries` of them
  /// (pass `MAX_LIST_ENTRIES` for "all"); the flag says the listing was cut short, by
  /// `max_entries` or by `MAX_LIST_BYTES`.
  pub async fn list(&self, path: &str, recursive: bool, all: bool, max_entries: u64) -> Result<(Vec<Entry>, bool)> {
    let req = Request::List { path: path.into(), recursive, all, max_entries: Some(max_entries) };
    let mut dl = Deadline::after(TREE_DEADLINE, describe(&req)).with_progress();
    let mut call = self.call(&req).await?;
    let mut entries = Vec::new();
    loop {
      match self.shared.next(&mut call.rx, &mut dl).await? {
        Event::Entries(chunk) => entries.extend(chunk),
        Event::Reply(Reply::List { entries: last, truncated }) => {
          entries.extend(last);
          // the guest sorts within each directory only (it streams the walk); callers get one order
          entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
          return Ok((entries, truncated));
        }
        Event::Reply(r) => return Err(reply_error(r)),
        other => return Err(out_of_place(other)),
      }
    }
  }

  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    match self.request(Request::Processes).await? {
      Reply::Processes { processes } => Ok(processes),
      other => Err(reply_error(other)),
    }
  }

  /// Start a process; output goes to `sink` as it arrives and into the result, each stream
  /// capped on the host at `max_output` bytes (beyond is counted as dropped and the result is
  /// `truncated`; the sink never sees more than the result keeps). With `stream_only` the
  /// output goes to `sink` alone: nothing is kept and neither the guest nor the host caps it
  /// (a long-lived process whose sink's owner caps per piece, e.g. a code context).
  ///
  /// Deadlines: the guest must report the start within `SPAWN_START_DEADLINE`, and the exit
  /// within `timeout` plus `SPAWN_EXIT_GRACE` (plus time for the output that arrived). Without
  /// a timeout (background processes) the exit has no deadline.
  #[allow(clippy::too_many_arguments)]
  pub async fn spawn(
    self: &Arc<Self>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    timeout: Option<Duration>,
    max_output: usize,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
    stream_only: bool,
  ) -> Result<Spawned> {
    let command = short(argv.first().map(String::as_str).unwrap_or_default());
    if argv.first().is_some_and(|a| a.len() > MAX_SPAWN_PATH) {
      return Err(SandboxError::invalid_argument(format!("the command {command} is longer than {MAX_SPAWN_PATH} bytes")));
    }
    if cwd.len() > MAX_SPAWN_PATH {
      return Err(SandboxError::invalid_argument(format!("the working directory is longer than {MAX_SPAWN_PATH} bytes")));
    }
    let clock = std::time::Instant::now();
    let req = Request::Spawn {
      argv,
      env,
      cwd,
      timeout_ms: timeout.map(|t| t.as_millis().min(u64::MAX as u128) as u64),
      max_output: if stream_only { u64::MAX } else { max_output as u64 },
      background,
      stdin: open_stdin,
    };
    let mut start_dl = Deadline::after(SPAWN_START_DEADLINE, format!("the start of {command}"));
    let mut exit_dl = match timeout {
      Some(t) => Deadline::after(t.saturating_add(SPAWN_EXIT_GRACE), format!("the end of {command} (timeout {} s)", t.as_secs_f64()))
        .with_progress(),
      None => Deadline::never(format!("the end of {command}")),
    };
    let mut call = self.call(&req).await?;
    let (done_tx, done_rx) = watch::channel::<Outcome>(None);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel::<Control>();
    let mut output = Collected { sink, keep: !stream_only, stdout: Vec::new(), stderr: Vec::new() };
    // until Started: a spawn that fails (command not found) ends here with its message
    let pid = loop {
      match self.shared.next(&mut call.rx, &mut start_dl).await? {
        Event::Started(pid) => break pid,
        Event::Out(s, d) => {
          exit_dl.progress(d.len());
          output.push(s, d);
        }
        Event::Reply(exit @ Reply::Exit { .. }) => {
          let _ = done_tx.send(Some(output.finish(exit, clock)));
          return Ok(Spawned { pid: 0, control: ctl_tx, done: done_rx });
        }
        Event::Reply(r) => return Err(reply_error(r)),
        other => return Err(out_of_place(other)),
      }
    };
    tokio::spawn(forward_controls(self.clone(), call.id, ctl_rx, done_rx.clone()));
    let shared = self.shared.clone();
    tokio::spawn(async move {
      let result = loop {
        match shared.next(&mut call.rx, &mut exit_dl).await {
          Ok(Event::Out(s, d)) => output.push(s, d),
          Ok(Event::Reply(exit @ Reply::Exit { .. })) => break output.finish(exit, clock),
          Ok(Event::Reply(r)) => break Err(reply_error(r)),
          Ok(other) => break Err(out_of_place(other)),
          Err(e) => break Err(e),
        }
      };
      drop(call);
      let _ = done_tx.send(Some(result));
    });
    Ok(Spawned { pid, control: ctl_tx, done: done_rx })
  }
}

/// A spawn's output so far (each stream already capped by the reader).
struct Collected {
  sink: Option<OutputSink>,
  /// false: stream-only, the sink alone gets the output
  keep: bool,
  stdout: Vec<u8>,
  stderr: Vec<u8>,
}

impl Collected {
  fn push(&mut self, s: OutStream, d: Vec<u8>) {
    if let Some(sink) = &self.sink {
      sink(s, &d);
    }
    if !self.keep {
      return;
    }
    if s == OutStream::Stdout { &mut self.stdout } else { &mut self.stderr }.extend_from_slice(&d);
  }

  fn finish(&mut self, exit: Reply, clock: std::time::Instant) -> Result<ExecOutput> {
    let Reply::Exit { code, signal, timed_out, stdout_dropped, stderr_dropped, max_rss_kb } = exit else {
      return Err(SandboxError::provider(format!("internal error: {exit:?} is not an exit")));
    };
    Ok(ExecOutput {
      exit_code: code as i64,
      stdout: std::mem::take(&mut self.stdout),
      stderr: std::mem::take(&mut self.stderr),
      duration: clock.elapsed(),
      timed_out,
      // the reader added what the host dropped to what the guest dropped
      truncated: stdout_dropped > 0 || stderr_dropped > 0,
      signal,
      max_rss_kb,
    })
  }
}

/// Forward a process's stdin and signals to the guest, in order, until the process ended (or
/// the connection failed, which ends it too). Apart from the output loop, so that a slow write
/// never stops the process's output from being read.
async fn forward_controls(conn: Arc<GuestConn>, id: u32, mut ctl: mpsc::UnboundedReceiver<Control>, mut done: watch::Receiver<Outcome>) {
  loop {
    let next = tokio::select! {
      c = ctl.recv() => c,
      _ = done.wait_for(Option::is_some) => None,
    };
    let sent = match next {
      None => return,
      Some(Control::Stdin(data)) => {
        let mut r = Ok(());
        for chunk in data.chunks(WRITE_CHUNK) {
          r = conn.send(encode(Kind::Stdin, id, chunk), "a process's stdin").await;
          if r.is_err() {
            break;
          }
        }
        r
      }
      Some(Control::CloseStdin) => conn.send(encode(Kind::StdinClose, id, &[]), "a process's stdin").await,
      Some(Control::Signal(signal)) => {
        let conn = conn.clone();
        tokio::spawn(async move {
          if let Err(e) = conn.request(Request::Signal { target: id, signal }).await {
            tracing::debug!(error = %e, "signal not delivered");
          }
        });
        Ok(())
      }
    };
    if let Err(e) = sent {
      tracing::debug!(error = %e, "stdin not delivered");
      return;
    }
  }
}

/// How a request is named in deadline messages.
fn describe(req: &Request) -> String {
  match req {
    Request::Spawn { argv, .. } => format!("spawn {}", short(argv.first().map(String::as_str).unwrap_or_default())),
    Request::Signal { signal, .. } => format!("signal {signal}"),
    Request::ReadFile { path, .. } => format!("readFile {path}"),
    Request::WriteFile { path, size } => format!("writeFile {path} ({size} bytes)"),
    Request::List { path, .. } => format!("list {path}"),
    Request::Remove { path, .. } => format!("remove {path}"),
    Request::Mkdir { path } => format!("mkdir {path}"),
    Request::Stat { path } => format!("stat {path}"),
    Request::Stats { .. } => "stats".into(),
    Request::Processes => "processes".into(),
    Request::KillAll => "killAll".into(),
  }
}

// ------------------------------------------------------------------ tasks

/// Run a connection task until it ends or the connection fails.
async fn until_dead(shared: Arc<Shared>, task: impl std::future::Future<Output = ()>) {
  let mut dead = shared.dead.subscribe();
  tokio::select! {
    _ = task => {}
    _ = dead.wait_for(Option::is_some) => {}
  }
}

async fn write_loop(shared: Arc<Shared>, mut frames: mpsc::Receiver<Vec<u8>>, mut input: InputStream) {
  let written = async {
    while let Some(f) = frames.recv().await {
      input.write_all(&f).await?;
      // batch what is already queued before flushing
      while let Ok(f) = frames.try_recv() {
        input.write_all(&f).await?;
      }
      input.flush().await?;
    }
    Ok::<_, std::io::Error>(())
  };
  match written.await {
    Ok(()) => {
      let _ = input.shutdown().await;
    }
    Err(e) => shared.fail(format!("writing to the sandbox's guest daemon failed ({e})"), ErrorCode::SandboxNotRunning),
  }
}

/// The most of the guest's own log kept for the message of a lost connection.
const LAST_LOG_CHARS: usize = 500;
/// The most of what arrived before the handshake quoted when it was not a frame.
const EARLY_BYTES: usize = 200;

async fn read_loop(shared: Arc<Shared>, mut output: OutputStream, hello: oneshot::Sender<Reply>) {
  let mut hello = Some(hello);
  let mut dec = Decoder::default();
  let mut last_log = String::new();
  // what arrived before the handshake: when it is not frames, it is usually an error message
  // (a missing binary, a container being removed), worth quoting
  let mut early = Vec::new();
  let lost = 'read: loop {
    match output.next().await {
      Some(Ok(LogOutput::StdOut { message })) => {
        if hello.is_some() && early.len() < EARLY_BYTES {
          early.extend_from_slice(&message[..message.len().min(EARLY_BYTES - early.len())]);
        }
        dec.push(&message);
        loop {
          let frame = match dec.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if hello.is_some() => {
              let text = String::from_utf8_lossy(&early);
              shared.violation(format!("it wrote {:?} instead of its handshake ({e})", text.trim()));
              return;
            }
            Err(e) => {
              shared.violation(format!("it sent a corrupt frame: {e}"));
              return;
            }
          };
          if let Some(tx) = hello.take() {
            match handshake(&frame) {
              Ok(r) => {
                let _ = tx.send(r);
                continue;
              }
              Err(e) => {
                shared.violation(e);
                return;
              }
            }
          }
          let routed = route(frame, &mut shared.pending());
          match routed {
            Route::Drop => {}
            Route::Violation(e) => {
              shared.violation(e);
              return;
            }
            Route::Deliver { id, tx, ev, bytes } => {
              // wait for room in the connection's budget and the request's queue: this is the
              // backpressure on the guest (it stops being read)
              let cost = bytes.min(CONN_BUFFER_BYTES) as u32;
              let Ok(permit) = shared.budget.clone().acquire_many_owned(cost).await else { return };
              if tx.send(Delivery { ev, bytes, _permit: permit }).await.is_err() {
                // the caller is gone: forget the request
                let mut pending = shared.pending();
                if pending.get(&id).is_some_and(|s| s.tx.same_channel(&tx)) {
                  pending.remove(&id);
                }
              }
            }
          }
        }
      }
      Some(Ok(LogOutput::StdErr { message })) => {
        let text = String::from_utf8_lossy(&message).trim().to_string();
        tracing::debug!(guest = %shared.what, "{text}");
        last_log = text.chars().take(LAST_LOG_CHARS).collect();
      }
      Some(Ok(_)) => {}
      Some(Err(e)) => break 'read format!("the connection to the guest daemon failed ({e})"),
      None => break 'read "the sandbox's guest daemon exited".to_string(),
    }
  };
  let reason = if last_log.is_empty() { lost } else { format!("{lost}; its last message: {last_log}") };
  shared.fail(reason, ErrorCode::SandboxNotRunning);
}

/// The guest's first frame must be its `Hello`, with id 0.
fn handshake(f: &Frame) -> std::result::Result<Reply, String> {
  if f.kind == Kind::Reply && f.id == 0 {
    if let Ok(r @ Reply::Hello { .. }) = serde_json::from_slice::<Reply>(&f.payload) {
      return Ok(r);
    }
  }
  Err(format!("its first frame was a {:?} frame for request {}, not its handshake", f.kind, f.id))
}

// ------------------------------------------------------------------ routing

/// What the reader does with one frame.
#[derive(Debug)]
enum Route {
  /// Hand the event to the request's caller.
  Deliver { id: u32, tx: mpsc::Sender<Delivery>, ev: Event, bytes: usize },
  /// Nobody waits for it (a request that ended or was forgotten, output beyond the cap).
  Drop,
  /// The guest broke the protocol: fail the connection, saying what it did.
  Violation(String),
}

/// Check one frame against the request it names and decide where it goes. Final replies forget
/// their request. Pure apart from `pending`, so the checks are testable without tasks.
fn route(f: Frame, pending: &mut HashMap<u32, Slot>) -> Route {
  let Frame { kind, id, payload } = f;
  let bytes = payload.len();
  match kind {
    Kind::Request | Kind::Stdin | Kind::StdinClose => {
      return Route::Violation(format!("it sent a {kind:?} frame, which only the addon sends"))
    }
    Kind::Stdout | Kind::Stderr | Kind::Data if bytes > MAX_DATA_FRAME => {
      return Route::Violation(format!("it sent a {kind:?} frame of {bytes} bytes; data frames are at most {MAX_DATA_FRAME}"))
    }
    _ => {}
  }
  let reply = if kind == Kind::Reply {
    match serde_json::from_slice::<Reply>(&payload) {
      Ok(Reply::Hello { .. }) => return Route::Violation("it sent a second handshake".into()),
      Ok(r) => Some(r),
      Err(e) => return Route::Violation(format!("it sent a reply that does not parse ({e})")),
    }
  } else {
    None
  };
  let Some(slot) = pending.get_mut(&id) else { return Route::Drop };
  let judged = match reply {
    Some(r) => judge_reply(&mut slot.op, r, bytes),
    None => judge_data(&mut slot.op, kind, payload),
  };
  match judged {
    Err(e) => Route::Violation(format!("{e} (request {id})")),
    Ok(None) => Route::Drop,
    Ok(Some((ev, last))) => {
      let tx = if last { pending.remove(&id).map(|s| s.tx) } else { pending.get(&id).map(|s| s.tx.clone()) };
      match tx {
        Some(tx) => Route::Deliver { id, tx, ev, bytes },
        None => Route::Drop,
      }
    }
  }
}

type Judged = std::result::Result<Option<(Event, bool)>, String>;

fn judge_data(op: &mut Op, kind: Kind, mut payload: Vec<u8>) -> Judged {
  match (op, kind) {
    (Op::Spawn { max_output, kept, dropped, .. }, Kind::Stdout | Kind::Stderr) => {
      let (i, stream) = if kind == Kind::Stdout { (0, OutStream::Stdout) } else { (1, OutStream::Stderr) };
      let len = payload.len() as u64;
      let room = max_output.saturating_sub(kept[i]).min(len);
      kept[i] += room;
      dropped[i] = dropped[i].saturating_add(len - room);
      if room == 0 {
        return Ok(None);
      }
      payload.truncate(room as usize);
      Ok(Some((Event::Out(stream, payload), false)))
    }
    (Op::Read { max_bytes, received }, Kind::Data) => {
      *received = received.saturating_add(payload.len() as u64);
      if *received > *max_bytes {
        return Err(format!("it sent more than the {max_bytes} bytes asked for in a readFile"));
      }
      Ok(Some((Event::Data(payload), false)))
    }
    (op, kind) => Err(format!("it sent a {kind:?} frame for a {} request", op.name())),
  }
}

fn judge_reply(op: &mut Op, r: Reply, bytes: usize) -> Judged {
  match (op, r) {
    (_, r @ Reply::Error { .. }) => Ok(Some((Event::Reply(r), true))),
    (Op::Spawn { started, .. }, Reply::Started { pid }) => {
      if *started {
        return Err("it sent a second Started for one spawn".into());
      }
      *started = true;
      Ok(Some((Event::Started(pid), false)))
    }
    (Op::Spawn { dropped, .. }, Reply::Exit { code, signal, timed_out, stdout_dropped, stderr_dropped, max_rss_kb }) => {
      let exit = Reply::Exit {
        code,
        signal,
        timed_out,
        stdout_dropped: stdout_dropped.saturating_add(dropped[0]),
        stderr_dropped: stderr_dropped.saturating_add(dropped[1]),
        max_rss_kb,
      };
      Ok(Some((Event::Reply(exit), true)))
    }
    (Op::Read { received, .. }, Reply::Read { size }) => {
      if size != *received {
        return Err(format!("it said a readFile sent {size} bytes after sending {received}"));
      }
      Ok(Some((Event::Reply(Reply::Read { size }), true)))
    }
    (op @ Op::List { .. }, Reply::Entries { entries }) => {
      let entries = take_entries(op, entries, bytes)?;
      if entries.is_empty() {
        return Ok(None);
      }
      Ok(Some((Event::Entries(entries), false)))
    }
    (op @ Op::List { .. }, Reply::List { entries, truncated }) => {
      let entries = take_entries(op, entries, bytes)?;
      let cut = matches!(op, Op::List { cut: true, .. });
      Ok(Some((Event::Reply(Reply::List { entries, truncated: truncated || cut }), true)))
    }
    (Op::Single { fits, .. }, r) if fits(&r) => Ok(Some((Event::Reply(r), true))),
    (op, r) => Err(format!("it answered a {} request with {}", op.name(), reply_name(&r))),
  }
}

/// Count a chunk of a listing: more entries than asked for is a violation; beyond
/// `MAX_LIST_BYTES` of JSON the rest is dropped and the listing marked cut.
fn take_entries(op: &mut Op, entries: Vec<Entry>, bytes: usize) -> std::result::Result<Vec<Entry>, String> {
  let Op::List { max_entries, count, bytes: seen, cut } = op else { return Ok(entries) };
  *count = count.saturating_add(entries.len() as u64);
  if *count > *max_entries {
    return Err(format!("it sent more than the {max_entries} entries asked for in a listing"));
  }
  *seen = seen.saturating_add(bytes);
  if *seen > MAX_LIST_BYTES {
    *cut = true;
  }
  Ok(if *cut { Vec::new() } else { entries })
}

fn reply_name(r: &Reply) -> &'static str {
  match r {
    Reply::Hello { .. } => "Hello",
    Reply::Ok => "Ok",
    Reply::Error { .. } => "Error",
    Reply::Started { .. } => "Started",
    Reply::Exit { .. } => "Exit",
    Reply::Read { .. } => "Read",
    Reply::Entries { .. } => "Entries",
    Reply::List { .. } => "List",
    Reply::Stat { .. } => "Stat",
    Reply::Stats { .. } => "Stats",
    Reply::Processes { .. } => "Processes",
    Reply::Killed { .. } => "Killed",
  }
}

/// One ustar header: `kind` b'0' a file of `size` bytes, b'5' a directory; root-owned, `mode`.
/// `name` is ours and short (the name field holds 100 bytes).
pub fn tar_header(name: &str, size: u64, mode: u32, kind: u8) -> [u8; 512] {
  assert!(name.len() < 100, "tar entry name too long: {name}");
  let mut h = [0u8; 512];
  h[..name.len()].copy_from_slice(name.as_bytes());
  let octal = |buf: &mut [u8], v: u64| {
    let s = format!("{:0w$o}\0", v, w = buf.len() - 1);
    buf.copy_from_slice(s.as_bytes());
  };
  octal(&mut h[100..108], mode as u64);
  octal(&mut h[108..116], 0);
  octal(&mut h[116..124], 0);
  octal(&mut h[124..136], size);
  octal(&mut h[136..148], 0);
  h[148..156].copy_from_slice(b"        ");
  h[156] = kind;
  h[257..263].copy_from_slice(b"ustar\0");
  h[263..265].copy_from_slice(b"00");
  let sum: u32 = h.iter().map(|b| *b as u32).sum();
  h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
  h
}

/// A one-file tar archive (for put_archive when the engine cannot bind-mount our file).
pub fn single_file_tar(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
  let mut out = tar_header(name, data.len() as u64, mode, b'0').to_vec();
  out.extend_from_slice(data);
  out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
  out
}

#[cfg(test)]
mod conn_tests;

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn elf_arch_reads_the_machine_of_a_binary() {
    let dir = std::env::temp_dir().join(format!("sbx-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut head = vec![0u8; 64];
    head[..4].copy_from_slice(b"\x7fELF");
    for (machine, want) in [(0x3eu16, Some("amd64")), (0xb7, Some("arm64")), (0x28, None)] {
      head[18..20].copy_from_slice(&machine.to_le_bytes());
      std::fs::write(dir.join("bin"), &head).unwrap();
      assert_eq!(elf_arch(&dir.join("bin")), want);
    }
    std::fs::write(dir.join("bin"), b"#!/bin/sh\n").unwrap();
    assert_eq!(elf_arch(&dir.join("bin")), None);
    // the guest this build uses is an x86-64 binary
    if let Some(p) = binary_path() {
      assert_eq!(elf_arch(&p), Some("amd64"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
  }

  #[test]
  fn tar_is_readable_by_tar() {
    let dir = std::env::temp_dir().join(format!("sbx-tar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = single_file_tar("hello.bin", &[1, 2, 3, 255], 0o755);
    std::fs::write(dir.join("a.tar"), &tar).unwrap();
    let st = std::process::Command::new("tar").arg("-xf").arg("a.tar").current_dir(&dir).status().unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(dir.join("hello.bin")).unwrap(), vec![1, 2, 3, 255]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("hello.bin")).unwrap().permissions().mode() & 0o777, 0o755);
    std::fs::remove_dir_all(&dir).unwrap();
  }

  #[test]
  fn finds_the_built_guest_or_nothing() {
    // either the built binary is found, or None; never a path that does not exist
    if let Some(p) = binary_path() {
      assert!(p.is_file());
    }
  }
}
