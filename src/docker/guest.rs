//! The addon's side of the guest daemon: one connection per sandbox over the container's attached
//! stdio (or over one attached `docker exec` for images that keep their own command).
//!
//! A reader task decodes frames and routes them to the request they belong to; a writer task
//! owns the input stream. When the stream ends (the guest died, the container stopped) every
//! pending request fails at once with a clear error and the connection is marked dead, so no
//! Promise can hang on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::process::{Control, ExecOutput, OutStream, OutputSink, Outcome, Spawned};
use crate::error::{ErrorCode, Result, SandboxError};
use crate::guest_protocol::{encode, encode_json, Decoder, Entry, Kind, ProcessEntry, Reply, Request, VERSION};

/// Where the guest binary is mounted or uploaded inside every sandbox.
pub const GUEST_DIR: &str = "/.agentic-sandbox";
pub const GUEST_PATH: &str = "/.agentic-sandbox/agentic-sandbox-guest";
pub const GUEST_FILE: &str = "agentic-sandbox-guest";

pub type OutputStream = Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;
pub type InputStream = Pin<Box<dyn AsyncWrite + Send>>;

#[derive(Debug)]
enum Event {
  Started(u32),
  Out(OutStream, Vec<u8>),
  Data(Vec<u8>),
  Reply(Reply),
  Lost(String),
}

type Pending = Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Event>>>>;

pub struct GuestConn {
  frames: mpsc::Sender<Vec<u8>>,
  pending: Pending,
  next_id: AtomicU32,
  dead: Arc<Mutex<Option<String>>>,
  pub pid: u32,
  tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for GuestConn {
  fn drop(&mut self) {
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

impl GuestConn {
  /// Take over an attached stream and wait for the guest's handshake.
  pub async fn connect(mut output: OutputStream, mut input: InputStream, what: String) -> Result<Arc<Self>> {
    let (frames_tx, mut frames_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
      while let Some(f) = frames_rx.recv().await {
        if input.write_all(&f).await.is_err() {
          break;
        }
        // batch what is already queued before flushing
        while let Ok(f) = frames_rx.try_recv() {
          if input.write_all(&f).await.is_err() {
            return;
          }
        }
        if input.flush().await.is_err() {
          break;
        }
      }
      let _ = input.shutdown().await;
    });
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let dead: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (hello_tx, hello_rx) = oneshot::channel::<Reply>();
    let reader = {
      let (pending, dead) = (pending.clone(), dead.clone());
      tokio::spawn(async move {
        let mut hello_tx = Some(hello_tx);
        let mut dec = Decoder::default();
        let mut last_log = String::new();
        let reason = 'read: loop {
          match output.next().await {
            Some(Ok(LogOutput::StdOut { message })) => {
              dec.push(&message);
              loop {
                match dec.next_frame() {
                  Ok(Some(f)) => route(f, &pending, &mut hello_tx),
                  Ok(None) => break,
                  Err(e) => break 'read format!("the guest daemon sent a corrupt frame ({e})"),
                }
              }
            }
            Some(Ok(LogOutput::StdErr { message })) => {
              let text = String::from_utf8_lossy(&message).trim().to_string();
              tracing::debug!(guest = %what, "{text}");
              last_log = text;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("the connection to the guest daemon failed ({e})"),
            None => break "the sandbox's guest daemon exited".to_string(),
          }
        };
        let reason = if last_log.is_empty() { reason } else { format!("{reason}; its last message: {last_log}") };
        tracing::debug!(guest = %what, reason = %reason, "guest connection lost");
        *dead.lock().unwrap() = Some(reason.clone());
        for (_, tx) in pending.lock().unwrap().drain() {
          let _ = tx.send(Event::Lost(reason.clone()));
        }
      })
    };
    let hello = match tokio::time::timeout(Duration::from_secs(15), hello_rx).await {
      Ok(Ok(h)) => h,
      Ok(Err(_)) => {
        let why = dead.lock().unwrap().clone().unwrap_or_default();
        reader.abort();
        writer.abort();
        return Err(SandboxError::provider(format!("the guest daemon did not start: {why}")));
      }
      Err(_) => {
        reader.abort();
        writer.abort();
        return Err(SandboxError::provider("the guest daemon did not answer within 15 s"));
      }
    };
    let pid = match hello {
      Reply::Hello { version, pid, .. } if version == VERSION => pid,
      Reply::Hello { version, .. } => {
        reader.abort();
        writer.abort();
        return Err(SandboxError::provider(format!(
          "the guest daemon speaks protocol {version}, this addon {VERSION}; rebuild both (npm run build)"
        )));
      }
      other => return Err(SandboxError::provider(format!("unexpected handshake {other:?}"))),
    };
    Ok(Arc::new(Self { frames: frames_tx, pending, next_id: AtomicU32::new(1), dead, pid, tasks: vec![reader, writer] }))
  }

  /// `Some(reason)` once the guest is gone.
  pub fn dead(&self) -> Option<String> {
    self.dead.lock().unwrap().clone()
  }

  async fn send(&self, frame: Vec<u8>) -> Result<()> {
    self.frames.send(frame).await.map_err(|_| lost_error(&self.dead().unwrap_or_else(|| "the guest connection is closed".into())))
  }

  /// Register a request and send it; events for it arrive on the returned receiver.
  async fn call(&self, req: &Request) -> Result<(u32, mpsc::UnboundedReceiver<Event>)> {
    if let Some(reason) = self.dead() {
      return Err(lost_error(&reason));
    }
    let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    self.pending.lock().unwrap().insert(id, tx);
    if let Err(e) = self.send(encode_json(Kind::Request, id, req)).await {
      self.pending.lock().unwrap().remove(&id);
      return Err(e);
    }
    Ok((id, rx))
  }

  async fn final_reply(rx: &mut mpsc::UnboundedReceiver<Event>, mut data: Option<&mut Vec<u8>>) -> Result<Reply> {
    while let Some(ev) = rx.recv().await {
      match ev {
        Event::Reply(Reply::Error { message, errno }) => return Err(reply_error(Reply::Error { message, errno })),
        Event::Reply(r) => return Ok(r),
        Event::Data(d) => {
          if let Some(buf) = data.as_mut() {
            buf.extend_from_slice(&d)
          }
        }
        Event::Lost(reason) => return Err(lost_error(&reason)),
        Event::Started(_) | Event::Out(..) => {}
      }
    }
    Err(lost_error("the guest connection closed"))
  }

  /// One request, one reply.
  pub async fn request(&self, req: Request) -> Result<Reply> {
    let (_, mut rx) = self.call(&req).await?;
    Self::final_reply(&mut rx, None).await
  }

  pub async fn read_file(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let (_, mut rx) = self.call(&Request::ReadFile { path: path.into(), max_bytes }).await?;
    let mut data = Vec::new();
    Self::final_reply(&mut rx, Some(&mut data)).await?;
    Ok(data)
  }

  pub async fn write_file(&self, path: &str, content: &[u8]) -> Result<()> {
    let (id, mut rx) = self.call(&Request::WriteFile { path: path.into(), size: content.len() as u64 }).await?;
    for chunk in content.chunks(256 * 1024) {
      self.send(encode(Kind::Data, id, chunk)).await?;
    }
    Self::final_reply(&mut rx, None).await.map(|_| ())
  }

  pub async fn list(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<Entry>> {
    match self.request(Request::List { path: path.into(), recursive, all, max_entries: None }).await? {
      Reply::List { entries, .. } => Ok(entries),
      other => Err(reply_error(other)),
    }
  }

  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    match self.request(Request::Processes).await? {
      Reply::Processes { processes } => Ok(processes),
      other => Err(reply_error(other)),
    }
  }

  /// Start a process; output goes to `sink` as it arrives and into the (capped) result.
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
  ) -> Result<Spawned> {
    let started = Instant::now();
    let req = Request::Spawn {
      argv,
      env,
      cwd,
      timeout_ms: timeout.map(|t| t.as_millis() as u64),
      max_output: max_output as u64,
      background,
      stdin: open_stdin,
    };
    let (id, mut rx) = self.call(&req).await?;
    let (done_tx, done_rx) = watch::channel::<Outcome>(None);
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Control>();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    // until Started: a spawn that fails (command not found) ends here with its message
    let pid = loop {
      match rx.recv().await {
        Some(Event::Started(pid)) => break pid,
        Some(Event::Out(s, d)) => {
          if let Some(sink) = &sink {
            sink(s, &d);
          }
          if s == OutStream::Stdout { &mut stdout } else { &mut stderr }.extend_from_slice(&d);
        }
        Some(Event::Reply(Reply::Exit { code, signal, timed_out, max_rss_kb, .. })) => {
          let out = ExecOutput { exit_code: code as i64, stdout, stderr, duration: started.elapsed(), timed_out, truncated: false, signal, max_rss_kb };
          let _ = done_tx.send(Some(Ok(out)));
          return Ok(Spawned { pid: 0, control: ctl_tx, done: done_rx });
        }
        Some(Event::Reply(r)) => return Err(reply_error(r)),
        Some(Event::Lost(reason)) => return Err(lost_error(&reason)),
        Some(Event::Data(_)) => {}
        None => return Err(lost_error("the guest connection closed")),
      }
    };
    let conn = self.clone();
    tokio::spawn(async move {
      let mut ctl_open = true;
      let result = loop {
        tokio::select! {
          ev = rx.recv() => match ev {
            Some(Event::Out(s, d)) => {
              if let Some(sink) = &sink { sink(s, &d); }
              if s == OutStream::Stdout { &mut stdout } else { &mut stderr }.extend_from_slice(&d);
            }
            Some(Event::Reply(Reply::Exit { code, signal, timed_out, stdout_dropped, stderr_dropped, max_rss_kb })) => {
              break Ok(ExecOutput {
                exit_code: code as i64,
                stdout: std::mem::take(&mut stdout),
                stderr: std::mem::take(&mut stderr),
                duration: started.elapsed(),
                timed_out,
                truncated: stdout_dropped > 0 || stderr_dropped > 0,
                signal,
                max_rss_kb,
              });
            }
            Some(Event::Reply(r)) => break Err(reply_error(r)),
            Some(Event::Lost(reason)) => break Err(lost_error(&reason)),
            Some(_) => {}
            None => break Err(lost_error("the guest connection closed")),
          },
          ctl = ctl_rx.recv(), if ctl_open => match ctl {
            Some(Control::Stdin(data)) => {
              for chunk in data.chunks(256 * 1024) {
                let _ = conn.send(encode(Kind::Stdin, id, chunk)).await;
              }
            }
            Some(Control::CloseStdin) => { let _ = conn.send(encode(Kind::StdinClose, id, &[])).await; }
            Some(Control::Signal(signal)) => {
              let conn = conn.clone();
              tokio::spawn(async move {
                if let Err(e) = conn.request(Request::Signal { target: id, signal }).await {
                  tracing::debug!(error = %e, "signal not delivered");
                }
              });
            }
            None => ctl_open = false,
          },
        }
      };
      let _ = done_tx.send(Some(result));
    });
    Ok(Spawned { pid, control: ctl_tx, done: done_rx })
  }
}

fn route(f: crate::guest_protocol::Frame, pending: &Pending, hello: &mut Option<oneshot::Sender<Reply>>) {
  let ev = match f.kind {
    Kind::Reply => match serde_json::from_slice::<Reply>(&f.payload) {
      Ok(r @ Reply::Hello { .. }) => {
        if let Some(tx) = hello.take() {
          let _ = tx.send(r);
        }
        return;
      }
      Ok(Reply::Started { pid }) => Event::Started(pid),
      Ok(r) => {
        // a final reply: the request is done
        if let Some(tx) = pending.lock().unwrap().remove(&f.id) {
          let _ = tx.send(Event::Reply(r));
        }
        return;
      }
      Err(e) => {
        tracing::warn!(error = %e, "unreadable reply from the guest");
        return;
      }
    },
    Kind::Stdout => Event::Out(OutStream::Stdout, f.payload),
    Kind::Stderr => Event::Out(OutStream::Stderr, f.payload),
    Kind::Data => Event::Data(f.payload),
    _ => return,
  };
  if let Some(tx) = pending.lock().unwrap().get(&f.id) {
    let _ = tx.send(ev);
  }
}

/// A one-file tar archive (for put_archive when the engine cannot bind-mount our file).
pub fn single_file_tar(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
  let mut h = [0u8; 512];
  h[..name.len()].copy_from_slice(name.as_bytes());
  let octal = |buf: &mut [u8], v: u64| {
    let s = format!("{:0w$o}\0", v, w = buf.len() - 1);
    buf.copy_from_slice(s.as_bytes());
  };
  octal(&mut h[100..108], mode as u64);
  octal(&mut h[108..116], 0);
  octal(&mut h[116..124], 0);
  octal(&mut h[124..136], data.len() as u64);
  octal(&mut h[136..148], 0);
  h[148..156].copy_from_slice(b"        ");
  h[156] = b'0';
  h[257..263].copy_from_slice(b"ustar\0");
  h[263..265].copy_from_slice(b"00");
  let sum: u32 = h.iter().map(|b| *b as u32).sum();
  let s = format!("{sum:06o}\0 ");
  h[148..156].copy_from_slice(s.as_bytes());
  let mut out = h.to_vec();
  out.extend_from_slice(data);
  out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
  out
}

#[cfg(test)]
mod tests {
  use super::*;

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
