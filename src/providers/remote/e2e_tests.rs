//! Remote mode end to end without an engine: a server (`/v1`, on 127.0.0.1:0) whose manager runs
//! an in-memory provider, and a client `AnySandbox` on provider `remote` talking to it over real
//! HTTP: lifecycle, streamed output, stdin, signals and aborts, a client that goes away, files,
//! errors with their codes, tenancy and the output caps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::core::config::SandboxConfig;
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::manager::Manager;
use crate::core::process::{Control, ExecOutput, OutStream, OutputSink, Spawned};
use crate::core::provider::{ProgressFn, Provider, ProviderFactory};
use crate::core::sandbox::AnySandbox;
use crate::core::types::{ExecOptions, FileInfo, FileOp, Health, ProcessEntry, State, Stats};
use crate::server::error::Redactor;
use crate::server::options::ServerOptions;
use crate::server::state::AppState;

pub(crate) const K1: &str = "k1-0123456789abcdef";
pub(crate) const K2: &str = "k2-0123456789abcdef";
pub(crate) const IMAGE: &str = "fake/image:1";

/// A sandbox in memory: files in a map, a few commands.
struct Fake {
  id: String,
  config: SandboxConfig,
  state: Mutex<State>,
  files: Mutex<HashMap<String, Vec<u8>>>,
  /// signals received by `sleep` processes
  killed: Arc<Mutex<Vec<i32>>>,
}

pub(crate) struct FakeFactory(pub(crate) Arc<Mutex<Vec<i32>>>);

impl ProviderFactory for FakeFactory {
  fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>> {
    Ok(Arc::new(Fake {
      id: id.map(str::to_string).unwrap_or_else(|| format!("fake-{:016x}", rand::random::<u64>())),
      config: config.clone(),
      state: Mutex::new(State::Created),
      files: Mutex::new(HashMap::new()),
      killed: self.0.clone(),
    }))
  }
}

fn out(code: i64, stdout: Vec<u8>, truncated: bool, signal: Option<String>) -> ExecOutput {
  ExecOutput { exit_code: code, stdout, stderr: Vec::new(), duration: Duration::from_millis(1), timed_out: false, truncated, signal, max_rss_kb: None }
}

#[async_trait]
impl Provider for Fake {
  fn id(&self) -> &str {
    &self.id
  }
  fn config(&self) -> &SandboxConfig {
    &self.config
  }
  fn state(&self) -> State {
    *self.state.lock().unwrap()
  }
  fn engine_name(&self) -> String {
    "fake".into()
  }
  async fn start(&self, _p: Option<ProgressFn>) -> Result<()> {
    *self.state.lock().unwrap() = State::Running;
    Ok(())
  }
  async fn stop(&self) -> Result<()> {
    *self.state.lock().unwrap() = State::Stopped;
    Ok(())
  }
  async fn destroy(&self) -> Result<()> {
    *self.state.lock().unwrap() = State::Destroyed;
    Ok(())
  }
  async fn force_remove(&self) -> Result<bool> {
    Ok(false)
  }
  async fn spawn(&self, command: &str, args: &[String], opts: &ExecOptions, _bg: bool, _open: bool, sink: Option<OutputSink>) -> Result<Spawned> {
    if self.state() != State::Running {
      return Err(SandboxError::new(ErrorCode::SandboxNotRunning, "not running"));
    }
    let (ctl, mut rx) = mpsc::unbounded_channel::<Control>();
    let (done_tx, done) = watch::channel(None);
    let cap = opts.max_output_bytes.unwrap_or(usize::MAX);
    let emit = move |s: OutStream, d: &[u8], used: &mut usize| {
      let kept = &d[..d.len().min(cap.saturating_sub(*used))];
      *used += kept.len();
      if let (Some(sink), false) = (&sink, kept.is_empty()) {
        sink(s, kept);
      }
      kept.to_vec()
    };
    let (command, args, killed) = (command.to_string(), args.to_vec(), self.killed.clone());
    let stdin_given = opts.stdin.clone();
    tokio::spawn(async move {
      let mut used = 0;
      let r = match command.as_str() {
        "echo" => {
          let o = emit(OutStream::Stdout, format!("{}\n", args.join(" ")).as_bytes(), &mut used);
          out(0, o, false, None)
        }
        "fail" => out(args[0].parse().unwrap(), Vec::new(), false, None),
        // stdout = stdin, until stdin closes
        "cat" => {
          let mut all = stdin_given.map(|d| emit(OutStream::Stdout, &d, &mut used)).unwrap_or_default();
          while let Some(c) = rx.recv().await {
            match c {
              Control::Stdin(d) => all.extend(emit(OutStream::Stdout, &d, &mut used)),
              Control::CloseStdin => break,
              Control::Signal(_) => break,
            }
          }
          out(0, all, false, None)
        }
        // until a signal
        "sleep" => loop {
          match rx.recv().await {
            Some(Control::Signal(s)) => {
              killed.lock().unwrap().push(s);
              break out(128 + s as i64, Vec::new(), false, Some(crate::core::process::signal_name(s)));
            }
            Some(_) => {}
            None => break out(0, Vec::new(), false, None),
          }
        },
        // a flood of output in 10 KiB chunks
        "flood" => {
          let total: usize = args[0].parse().unwrap();
          let mut kept = Vec::new();
          let mut sent = 0;
          while sent < total {
            kept.extend(emit(OutStream::Stdout, &[b'x'; 10240], &mut used));
            sent += 10240;
          }
          out(0, kept, sent > cap, None)
        }
        _ => out(127, Vec::new(), false, None),
      };
      let _ = done_tx.send(Some(Ok(r)));
    });
    Ok(Spawned { pid: 42, control: ctl, done })
  }
  async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let p = crate::core::paths::resolve(&self.config.workdir, path).unwrap();
    self.files.lock().unwrap().insert(p.clone(), content);
    FileOp::ok(&p, None)
  }
  async fn read_file(&self, path: &str) -> FileOp {
    self.read_file_max(path, usize::MAX).await
  }
  async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let p = crate::core::paths::resolve(&self.config.workdir, path).unwrap();
    match self.files.lock().unwrap().get(&p) {
      Some(c) => FileOp::ok(&p, Some(c[..c.len().min(max)].to_vec())),
      None => FileOp::fail(&p, format!("{p}: No such file or directory")),
    }
  }
  async fn delete_file(&self, path: &str, _r: bool) -> FileOp {
    let p = crate::core::paths::resolve(&self.config.workdir, path).unwrap();
    match self.files.lock().unwrap().remove(&p) {
      Some(_) => FileOp::ok(&p, None),
      None => FileOp::fail(&p, "No such file or directory"),
    }
  }
  async fn list_files(&self, _path: &str, _all: bool) -> Result<Vec<String>> {
    let mut v: Vec<String> = self.files.lock().unwrap().keys().map(|k| k.rsplit('/').next().unwrap().to_string()).collect();
    v.sort();
    Ok(v)
  }
  async fn list_files_detailed(&self, _path: &str, _r: bool, _all: bool) -> Result<Vec<FileInfo>> {
    Ok(self
      .files
      .lock()
      .unwrap()
      .iter()
      .map(|(k, v)| {
        let name = k.rsplit('/').next().unwrap().to_string();
        FileInfo { path: name.clone(), name, kind: "file", size: v.len() as f64, mtime_ms: 1.0, permissions: "644".into() }
      })
      .collect())
  }
  async fn stats(&self) -> Result<Stats> {
    Ok(Stats { memory_usage_mb: 12.5, ..Default::default() })
  }
  async fn health(&self) -> Health {
    Health { healthy: true, message: None }
  }
  async fn kill_all(&self) -> Result<()> {
    Ok(())
  }
  async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    Ok(vec![ProcessEntry { pid: 42, ppid: 1, state: "S".into(), cmdline: vec!["sleep".into()], request: None, rss_kb: 100 }])
  }
  async fn reset(&self) -> Result<()> {
    self.files.lock().unwrap().clear();
    Ok(())
  }
}

struct Served {
  url: String,
  state: Arc<AppState>,
  killed: Arc<Mutex<Vec<i32>>>,
  _task: tokio::task::JoinHandle<()>,
}

async fn serve(max_output: usize) -> Served {
  serve_with(json!({ "maxOutputBytes": max_output })).await
}

async fn serve_with(extra: serde_json::Value) -> Served {
  let base = json!({ "readEnv": false, "apiKeys": [{ "key": K1, "name": "alice" }, { "key": K2, "name": "bob" }] });
  let opts = ServerOptions::from_json(
    Some(&crate::core::config::merge(&base, &extra)),
    &|_| None,
    &|_| Err(std::io::ErrorKind::NotFound.into()),
  )
  .unwrap();
  let manager = Manager::with_config_file(Some(&json!({ "provider": "fake", "image": IMAGE })), None).unwrap();
  let killed = Arc::new(Mutex::new(Vec::new()));
  manager.providers().register("fake", Arc::new(FakeFactory(killed.clone()))).unwrap();
  let state = AppState::new(Arc::new(manager), opts, Redactor::default());
  let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
  let url = format!("http://{}", listener.local_addr().unwrap());
  let app = crate::server::router(state.clone());
  let task = tokio::spawn(async move {
    let _ = axum::serve(listener, app).await;
  });
  Served { url, state, killed, _task: task }
}

pub(crate) fn client_sandbox(url: &str, key: &str, extra: serde_json::Value) -> Arc<AnySandbox> {
  let base = json!({ "provider": "remote", "remote": { "url": url, "apiKey": key }, "image": IMAGE });
  let c = crate::core::config::merge(&base, &extra);
  let cfg = crate::core::config::resolve(&c).unwrap();
  Arc::new(AnySandbox::new(&cfg, Arc::new(crate::providers::Registry::default())).unwrap())
}

#[tokio::test]
async fn a_client_sandbox_runs_on_the_server() {
  let s = serve(1 << 20).await;
  let sb = client_sandbox(&s.url, K1, json!({ "env": { "A": "1" } }));
  assert!(sb.id().starts_with("remote-"));
  assert_eq!(sb.state(), State::Created);
  sb.start(None).await.unwrap();
  assert_eq!((sb.state(), sb.engine_name().as_str()), (State::Running, "fake"));
  let on_server = s.state.all_entries();
  assert_eq!(on_server.len(), 1);
  assert_eq!(on_server[0].tenant.name, "alice");
  assert_eq!(on_server[0].sandbox.config().env["A"], "1");

  // output, streamed and in the result; exit codes
  let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
  let sink: OutputSink = {
    let seen = seen.clone();
    Arc::new(move |_, d: &[u8]| seen.lock().unwrap().extend_from_slice(d))
  };
  let r = sb.execute_with("echo", &["hi".into(), "there".into()], ExecOptions::default(), Some(sink), None).await.unwrap();
  assert_eq!((r.exit_code, r.stdout.as_slice()), (0, &b"hi there\n"[..]));
  assert_eq!(seen.lock().unwrap().as_slice(), b"hi there\n");
  assert_eq!(sb.execute("fail", &["3".into()], ExecOptions::default()).await.unwrap().exit_code, 3);

  // stdin, binary
  let data = vec![0u8, 1, 2, 255, b'\n'];
  let r = sb.execute("cat", &[], ExecOptions { stdin: Some(data.clone()), ..Default::default() }).await.unwrap();
  assert_eq!(r.stdout, data);

  // abort: the process gets SIGKILL through the server
  let (abort_tx, abort_rx) = tokio::sync::oneshot::channel();
  let run = { let sb = sb.clone(); tokio::spawn(async move { sb.execute_with("sleep", &[], ExecOptions::default(), None, Some(abort_rx)).await }) };
  tokio::time::sleep(Duration::from_millis(200)).await;
  abort_tx.send(()).unwrap();
  let e = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap().unwrap_err();
  assert_eq!(e.code, ErrorCode::Aborted);
  assert_eq!(s.killed.lock().unwrap().as_slice(), &[9]);

  // a background process: stdin through its handle, then its end
  let p = sb.spawn("cat", &[], &ExecOptions::default(), true, true, None).await.unwrap();
  assert_eq!(p.pid, 42);
  p.stdin(b"abc".to_vec()).unwrap();
  p.close_stdin().unwrap();
  let o = tokio::time::timeout(Duration::from_secs(10), p.wait()).await.unwrap().unwrap();
  assert_eq!(o.stdout, b"abc");
  assert_eq!(sb.processes().await.unwrap()[0].pid, 42);

  // files, binary safe; failures keep their messages
  let all: Vec<u8> = (0..=255).collect();
  let w = sb.write_file("d/all.bin", all.clone()).await;
  assert!(w.success, "{:?}", w.error);
  assert_eq!(w.path, "/workspace/d/all.bin");
  let r = sb.read_file("d/all.bin").await;
  assert_eq!(r.content.unwrap(), all);
  assert_eq!(sb.read_file_max("d/all.bin", 10).await.content.unwrap().len(), 10);
  let missing = sb.read_file("nope.txt").await;
  assert!(!missing.success && missing.error.as_deref().unwrap().contains("No such file"), "{missing:?}");
  assert_eq!(missing.code, None);
  assert_eq!(sb.list_files("/workspace", false).await.unwrap(), vec!["all.bin".to_string()]);
  assert_eq!(sb.list_files_detailed("/workspace", true, false).await.unwrap()[0].size, 256.0);
  assert!(sb.delete_file("d/all.bin", false).await.success);
  assert_eq!(sb.stats().await.unwrap().memory_usage_mb, 12.5);
  assert!(sb.health().await.healthy);

  // stop / start / destroy
  sb.stop().await.unwrap();
  assert_eq!(sb.execute("echo", &[], ExecOptions::default()).await.unwrap_err().code, ErrorCode::SandboxNotRunning);
  sb.start(None).await.unwrap();
  sb.destroy().await.unwrap();
  assert!(s.state.all_entries().is_empty());
  sb.destroy().await.unwrap();
}

#[tokio::test]
async fn background_processes_count_against_their_own_limit() {
  let s = serve_with(json!({ "maxBackgroundProcesses": 1 })).await;
  let sb = client_sandbox(&s.url, K1, json!({}));
  sb.start(None).await.unwrap();
  let first = sb.spawn("sleep", &[], &ExecOptions::default(), true, false, None).await.unwrap();
  let e = match sb.spawn("sleep", &[], &ExecOptions::default(), true, false, None).await {
    Ok(_) => panic!("a second background process is over the limit"),
    Err(e) => e,
  };
  assert_eq!(e.code, ErrorCode::QuotaExceeded);
  assert!(e.message.contains("maxBackgroundProcesses"), "{}", e.message);
  // a foreground command is not a background process: it still runs
  assert_eq!(sb.execute("echo", &["x".into()], ExecOptions::default()).await.unwrap().exit_code, 0);
  // another tenant has its own count
  let other = client_sandbox(&s.url, K2, json!({}));
  other.start(None).await.unwrap();
  let theirs = other.spawn("sleep", &[], &ExecOptions::default(), true, false, None).await.unwrap();
  // the slot comes back when the process ends
  first.signal(9).unwrap();
  tokio::time::timeout(Duration::from_secs(10), first.wait()).await.unwrap().unwrap();
  let mut again = None;
  for _ in 0..100 {
    match sb.spawn("sleep", &[], &ExecOptions::default(), true, false, None).await {
      Ok(p) => {
        again = Some(p);
        break;
      }
      Err(e) if e.code == ErrorCode::QuotaExceeded => tokio::time::sleep(Duration::from_millis(20)).await,
      Err(e) => panic!("{e}"),
    }
  }
  again.expect("a freed slot is available again").signal(9).unwrap();
  theirs.signal(9).unwrap();
  sb.destroy().await.unwrap();
  other.destroy().await.unwrap();
}

#[tokio::test]
async fn a_client_that_goes_away_kills_its_foreground_process() {
  let s = serve(1 << 20).await;
  let sb = client_sandbox(&s.url, K1, json!({}));
  sb.start(None).await.unwrap();
  let p = sb.spawn("sleep", &[], &ExecOptions::default(), false, false, None).await.unwrap();
  // a signal through the handle reaches the process on the server
  p.signal(15).unwrap();
  let o = tokio::time::timeout(Duration::from_secs(10), p.wait()).await.unwrap().unwrap();
  assert_eq!((o.exit_code, o.signal.as_deref()), (143, Some("SIGTERM")));
  // a raw stream dropped mid-way: the server kills the process
  let sid = s.state.all_entries()[0].id.clone();
  let http = reqwest::Client::new();
  let mut res = http
    .post(format!("{}/v1/sandboxes/{sid}/processes", s.url))
    .bearer_auth(K1)
    .json(&json!({ "command": "sleep" }))
    .send()
    .await
    .unwrap();
  let first = res.chunk().await.unwrap().unwrap();
  assert!(String::from_utf8_lossy(&first).contains("\"started\""));
  drop(res);
  let killed = s.killed.clone();
  tokio::time::timeout(Duration::from_secs(10), async move {
    while killed.lock().unwrap().len() < 2 {
      tokio::time::sleep(Duration::from_millis(20)).await;
    }
  })
  .await
  .expect("the server killed the process of the dropped stream");
  assert_eq!(s.killed.lock().unwrap().as_slice(), &[15, 9]);
  sb.destroy().await.unwrap();
}

#[tokio::test]
async fn errors_tenancy_and_caps() {
  let s = serve(50_000).await;
  // a wrong key
  let bad = client_sandbox(&s.url, "wrong-key-0000000000", json!({}));
  let e = bad.start(None).await.unwrap_err();
  assert_eq!((e.code, e.code_str()), (ErrorCode::PermissionDenied, "UNAUTHORIZED"));
  // the server refuses an image it does not offer
  let e = client_sandbox(&s.url, K1, json!({ "image": "evil/miner:1" })).start(None).await.unwrap_err();
  assert_eq!(e.code, ErrorCode::PermissionDenied);
  assert!(e.message.contains("evil/miner:1"), "{}", e.message);

  let sb = client_sandbox(&s.url, K1, json!({}));
  sb.start(None).await.unwrap();
  // another tenant: not found, on every route
  let sid = s.state.all_entries()[0].id.clone();
  let http = reqwest::Client::new();
  let res = http.get(format!("{}/v1/sandboxes/{sid}/files?path=x", s.url)).bearer_auth(K2).send().await.unwrap();
  assert_eq!(res.status(), 404);
  assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"]["code"], "SANDBOX_NOT_FOUND");

  // a flood: the client keeps at most its own cap, the server's cap applies when smaller
  let r = sb.execute("flood", &["10000000".into()], ExecOptions { max_output_bytes: Some(20_000), ..Default::default() }).await.unwrap();
  assert!(r.stdout.len() <= 20_000 && r.truncated, "{} bytes", r.stdout.len());
  let r = sb.execute("flood", &["10000000".into()], ExecOptions::default()).await.unwrap();
  assert!(r.stdout.len() <= 50_000 && r.truncated, "{} bytes", r.stdout.len());
  sb.destroy().await.unwrap();
}

#[tokio::test]
async fn sessions_live_in_the_server() {
  let s = serve(1 << 20).await;
  let m = Arc::new(Manager::new(Some(&json!({ "provider": "remote", "remote": { "url": s.url, "apiKey": K1 }, "image": IMAGE }))).unwrap());
  let opts = |user: &str| crate::core::manager::SessionOptions {
    user_id: user.into(),
    thread_id: "t/1".into(),
    timeout_minutes: Some(5.0),
    auto_retry: true,
    config: None,
    pool: None,
  };
  let a = m.get_or_create_session(opts("u1")).await.unwrap();
  assert!(a.id().starts_with("fake-"), "the server's id: {}", a.id());
  assert!(a.write_file("memo", b"kept".to_vec()).await.success);
  let b = m.get_or_create_session(opts("u1")).await.unwrap();
  assert!(Arc::ptr_eq(&a, &b));
  assert_eq!(b.read_file("memo").await.content.unwrap(), b"kept");
  // the server's session table, per tenant
  let sessions = s.state.manager.sessions();
  assert_eq!(sessions.len(), 1);
  assert_eq!(sessions[0].activity().session.unwrap().thread_id, "alice\u{1f}t/1");
  // another user of the thread
  assert_eq!(m.get_or_create_session(opts("u2")).await.err().map(|e| e.code), Some(ErrorCode::PermissionDenied));
  // a second client process sees the same session
  let other = Arc::new(Manager::new(Some(&json!({ "provider": "remote", "remote": { "url": s.url, "apiKey": K1 }, "image": IMAGE }))).unwrap());
  let c = other.get_or_create_session(opts("u1")).await.unwrap();
  assert_eq!(c.id(), a.id());
  assert_eq!(c.read_file("memo").await.content.unwrap(), b"kept");
  assert!(m.close_session("t/1").await.unwrap());
  assert!(s.state.manager.sessions().is_empty());
  assert!(s.state.all_entries().is_empty());
  other.destroy_all().await.unwrap();
}
