//! Code contexts: long-lived interpreters (Python, JavaScript, TypeScript, bash) in a sandbox, so that
//! `runCode(code, { context })` keeps variables, imports and loaded data between calls, as a
//! notebook kernel does (E2B's code-interpreter contexts are the model).
//!
//! # Protocol (host ↔ driver)
//! A context is one process started through the provider's ordinary `spawn` (stdin open,
//! stream-only output: the provider keeps nothing, this module caps per cell), running a small
//! driver embedded here (`contexts/driver.{py,js,sh}`, passed as the interpreter's `-c`/`-e`
//! argument: nothing in the sandbox's file system is trusted; a TypeScript context is the
//! JavaScript driver transpiling each cell with the sandbox's `typescript` or `esbuild`).
//!
//! - The driver moves the protocol off the fds user code uses: requests are read from a private
//!   copy of the original stdin, fd 0 is reopened on /dev/null (`input()` cannot eat requests),
//!   and the end of a cell is written to private copies of the original stdout and stderr.
//! - The cell's own output is the process's real fds 1 and 2 (so output of subprocesses the cell
//!   starts is captured at the fd level) and streams through the provider's sink as it arrives.
//! - A request carries a fresh random nonce per cell. When the cell ends, the driver writes the
//!   marker `\x1e<nonce>\x1e` to stderr, then the marker and one JSON line (the cell's results,
//!   its error) to stdout. The host scans both streams for the marker (across chunk boundaries);
//!   what comes before it is the cell's output, the line after it on stdout is the result.
//!   Output between cells (a background thread's) is dropped.
//!
//! This was chosen over a separate result channel because it needs nothing but the process's
//! stdio, which every engine that can spawn with stdin provides (the guest daemon, `docker exec`),
//! and costs two small writes per cell.
//!
//! # Trust
//! Everything in the interpreter is user code's territory. The host never trusts it: each
//! stream's output is capped per cell (`maxOutputBytes`), the result line at
//! [`MAX_RESULT_BYTES`], every cell has a deadline (SIGINT, then after [`INTERRUPT_GRACE`] the
//! process group is killed and the context restarted), a dead interpreter ends the cell with an
//! error and is replaced, and nothing is kept between cells. A cell that learns its nonce (it
//! runs in the driver's process) can forge its own cell's result: forgery affects only that
//! context's results. Contexts are separate processes and cannot see each other's variables.

mod scan;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::{oneshot, Notify};

use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::logs::Source;
use crate::core::process::{OutStream, OutputSink, Spawned};
use crate::core::sandbox::AnySandbox;
use crate::core::types::ExecOptions;
pub use scan::{Kept, MarkerScan, ResultLine};

/// Most contexts one sandbox may have at a time (each is a process holding its memory).
pub const MAX_CONTEXTS: usize = 8;
/// Largest result line (all of a cell's results and its error, as JSON) the host reads.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
/// Default per-stream output cap of one cell (as runCode's).
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// How long a timed-out cell may take to end after SIGINT before its context is restarted.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How long a new interpreter may take to answer its first (empty) cell.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a killed interpreter may take to be reported dead.
const KILL_WAIT: Duration = Duration::from_secs(5);

const DRIVER_PY: &str = include_str!("contexts/driver.py");
const DRIVER_JS: &str = include_str!("contexts/driver.js");
const DRIVER_SH: &str = include_str!("contexts/driver.sh");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
  Python,
  JavaScript,
  /// JavaScript whose cells are transpiled first (types removed, not checked)
  TypeScript,
  Bash,
}

impl Lang {
  /// A language name as runCode accepts it (aliases included).
  pub fn parse(name: &str) -> Result<Lang> {
    match name.to_ascii_lowercase().as_str() {
      "python" | "py" | "python3" => Ok(Lang::Python),
      "javascript" | "js" | "node" | "nodejs" => Ok(Lang::JavaScript),
      "bash" | "sh" | "shell" => Ok(Lang::Bash),
      "typescript" | "ts" => Ok(Lang::TypeScript),
      "go" | "golang" => Err(SandboxError::invalid_argument(
        "code contexts do not support go (it has no interpreter that keeps state); use runCode without `context` for go",
      )),
      other => Err(SandboxError::invalid_argument(format!(
        "language {other:?} is not supported by code contexts; use 'python', 'javascript' or 'bash'"
      ))),
    }
  }

  pub fn as_str(self) -> &'static str {
    match self {
      Lang::Python => "python",
      Lang::JavaScript => "javascript",
      Lang::TypeScript => "typescript",
      Lang::Bash => "bash",
    }
  }

  /// The program the command policy judges.
  fn shown(self) -> &'static str {
    match self {
      Lang::Python => "python3",
      Lang::JavaScript | Lang::TypeScript => "node",
      Lang::Bash => "bash",
    }
  }

  /// `/bin/sh -c <launcher> <name> <driver>`: finds the interpreter (a clear message when it is
  /// missing) and, for node and bash, which cannot dup fds themselves, moves the protocol to
  /// fds 3 (requests), 4 and 5 (the original stdout and stderr) and fd 0 to /dev/null.
  fn launch(self) -> Vec<String> {
    let (launcher, driver) = match self {
      Lang::Python => (
        r#"if command -v python3 >/dev/null 2>&1; then exec python3 -u -c "$1"; elif command -v python >/dev/null 2>&1; then exec python -u -c "$1"; fi; echo "code context: python3 is not installed in the sandbox's image" >&2; exit 127"#,
        DRIVER_PY,
      ),
      Lang::JavaScript => (
        r#"command -v node >/dev/null 2>&1 || { echo "code context: node is not installed in the sandbox's image" >&2; exit 127; }; exec 3<&0 4>&1 5>&2 0</dev/null; exec node -e "$1""#,
        DRIVER_JS,
      ),
      Lang::TypeScript => (
        r#"command -v node >/dev/null 2>&1 || { echo "code context: node is not installed in the sandbox's image" >&2; exit 127; }; exec 3<&0 4>&1 5>&2 0</dev/null; exec node -e "$1" typescript"#,
        DRIVER_JS,
      ),
      Lang::Bash => (
        r#"command -v bash >/dev/null 2>&1 || { echo "code context: bash is not installed in the sandbox's image" >&2; exit 127; }; exec 3<&0 4>&1 5>&2 0</dev/null; exec bash -c "$1" bash"#,
        DRIVER_SH,
      ),
    };
    vec!["-c".into(), launcher.into(), "agentic-sandbox-context".into(), driver.into()]
  }

  /// The request of one cell, as the driver reads it.
  fn request(self, nonce: &str, code: &str, max: usize) -> Result<Vec<u8>> {
    match self {
      Lang::Bash => {
        if code.contains('\0') {
          return Err(SandboxError::invalid_argument("bash code must not contain NUL bytes"));
        }
        let nl = if code.ends_with('\n') || code.is_empty() { "" } else { "\n" };
        Ok(format!("{nonce}\n{code}{nl}{nonce}\n").into_bytes())
      }
      _ => {
        let mut v = serde_json::to_vec(&serde_json::json!({ "nonce": nonce, "code": code, "max": max })).expect("json");
        v.push(b'\n');
        Ok(v)
      }
    }
  }
}

/// What `createCodeContext` and `listCodeContexts` report.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextInfo {
  pub id: String,
  pub language: Lang,
  /// absolute working directory the interpreter started in
  pub cwd: String,
}

/// One rich output of a cell (Jupyter's MIME bundle, by field).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CellOutput {
  pub text: Option<String>,
  pub json: Option<serde_json::Value>,
  pub html: Option<String>,
  pub png: Option<String>,
  pub jpeg: Option<String>,
  pub svg: Option<String>,
  pub markdown: Option<String>,
  #[serde(default)]
  pub is_main_result: bool,
}

/// Why a cell failed: the exception's class, message and traceback.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct CellError {
  pub name: String,
  pub value: String,
  #[serde(default)]
  pub traceback: String,
}

/// The result line a driver writes after a cell.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
  #[serde(default)]
  results: Vec<CellOutput>,
  error: Option<CellError>,
  /// bash: the cell's status
  exit_code: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct CellRun {
  pub language: Lang,
  pub stdout: Vec<u8>,
  pub stderr: Vec<u8>,
  /// 0 on success; 1 when the cell raised (or timed out); a bash cell's own status
  pub exit_code: i64,
  pub duration_ms: f64,
  pub timed_out: bool,
  pub truncated: bool,
  pub results: Vec<CellOutput>,
  pub error: Option<CellError>,
  /// the interpreter was replaced (its state lost) during or right before this cell
  pub context_restarted: bool,
}

/// One cell's output so far, fed by the interpreter's sink.
struct CellIo {
  /// which interpreter (generation) the cell runs in; output of an older one is ignored
  generation: u64,
  out: MarkerScan,
  err: MarkerScan,
  stdout: Kept,
  stderr: Kept,
  line: ResultLine,
  sink: Option<OutputSink>,
}

impl CellIo {
  fn complete(&self) -> bool {
    self.out.found && self.err.found && self.line.done
  }

  fn feed(&mut self, stream: OutStream, bytes: &[u8]) {
    let (scan, kept) = match stream {
      OutStream::Stdout => (&mut self.out, &mut self.stdout),
      OutStream::Stderr => (&mut self.err, &mut self.stderr),
    };
    let r = scan.feed(bytes);
    if !r.user.is_empty() {
      let shown = kept.push(&r.user);
      if let (false, Some(sink)) = (shown.is_empty(), &self.sink) {
        sink(stream, shown);
      }
    }
    if let (Some(after), OutStream::Stdout) = (r.after, stream) {
      self.line.feed(&after);
    }
  }
}

/// Where the current interpreter's output goes.
#[derive(Default)]
struct Io {
  cell: Mutex<Option<CellIo>>,
  wake: Notify,
}

/// How a cell's wait ended.
enum Ended {
  Complete,
  /// the interpreter exited (its exit code or signal, for the message)
  Died(String),
  /// it did not end within the deadline and the grace after SIGINT
  Hung,
}

pub struct Context {
  pub info: ContextInfo,
  env: BTreeMap<String, String>,
  /// serialises the cells (and restarts) of this context, in call order
  turns: Turns,
  proc: Mutex<Option<(u64, Spawned)>>,
  generation: std::sync::atomic::AtomicU64,
  io: Arc<Io>,
  /// removed (or its sandbox emptied): it must not start an interpreter again, also from a cell
  /// that was running when it was removed
  removed: std::sync::atomic::AtomicBool,
}

impl Context {
  fn live(&self) -> Option<(u64, Spawned)> {
    self.proc.lock().unwrap().clone().filter(|(_, p)| !p.is_done())
  }

  /// Mark the context gone and kill its interpreter.
  fn close(&self) {
    self.removed.store(true, std::sync::atomic::Ordering::SeqCst);
    self.kill();
  }

  fn is_removed(&self) -> bool {
    self.removed.load(std::sync::atomic::Ordering::SeqCst)
  }

  fn gone(&self) -> SandboxError {
    SandboxError::invalid_argument(format!(
      "code context {} was removed (removeCodeContext, or its sandbox was destroyed, reset or emptied of processes); create a new one with createCodeContext",
      self.info.id
    ))
  }

  /// Kill the interpreter's process group (if any); it is forgotten at once.
  fn kill(&self) {
    if let Some((_, p)) = self.proc.lock().unwrap().take() {
      let _ = p.signal(9);
    }
  }

  /// Kill, wait (bounded) until the engine reports it dead, forget it.
  async fn kill_and_wait(&self) {
    let p = self.proc.lock().unwrap().take();
    if let Some((_, p)) = p {
      let _ = p.signal(9);
      let _ = tokio::time::timeout(KILL_WAIT, p.wait()).await;
    }
  }

  /// Start a fresh interpreter and check that it answers an empty cell. The caller holds `run`.
  async fn start(&self, sb: &AnySandbox) -> Result<()> {
    self.kill_and_wait().await;
    if self.is_removed() {
      return Err(self.gone());
    }
    let generation = self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let io = self.io.clone();
    let sink: OutputSink = Arc::new(move |stream, bytes| {
      let mut g = io.cell.lock().unwrap();
      let Some(cell) = g.as_mut().filter(|c| c.generation == generation) else { return };
      cell.feed(stream, bytes);
      if cell.complete() {
        io.wake.notify_one();
      }
    });
    let lang = self.info.language;
    let opts = ExecOptions { env: self.env.clone(), workdir: Some(self.info.cwd.clone()), ..Default::default() };
    let p = sb.spawn_as((lang.shown(), &[]), "/bin/sh", &lang.launch(), &opts, Some(sink)).await?;
    *self.proc.lock().unwrap() = Some((generation, p.clone()));
    // removed while it started: `close` may have found no process to kill
    if self.is_removed() {
      self.kill();
      return Err(self.gone());
    }
    let (ended, io, _) = self.cell(generation, &p, "", START_DEADLINE, 64 * 1024, None, None).await?;
    match ended {
      Ended::Complete => Ok(()),
      other => {
        self.kill_and_wait().await;
        if lang == Lang::TypeScript && matches!(other, Ended::Died(_)) {
          let said = String::from_utf8_lossy(&io.stderr.data).trim().chars().take(2000).collect::<String>();
          return Err(SandboxError::invalid_argument(format!(
            "a typescript code context needs the 'typescript' or 'esbuild' package resolvable from its cwd, or tsx on PATH ({said}); install one (installPackages: ['typescript'] on a node template) or use a javascript context"
          )));
        }
        let why = match other {
          Ended::Died(how) => format!("exited ({how})"),
          _ => format!("did not answer within {} s", START_DEADLINE.as_secs()),
        };
        let said = String::from_utf8_lossy(&io.stderr.data).trim().chars().take(2000).collect::<String>();
        Err(SandboxError::new(
          ErrorCode::ExecutionError,
          format!(
            "the {} interpreter of code context {} {why}{}; check that the sandbox's image has {} (e.g. agentic-sandbox/debian:12 or agentic-sandbox/devtools:2)",
            lang.as_str(),
            self.info.id,
            if said.is_empty() { String::new() } else { format!(": {said}") },
            lang.shown()
          ),
        ))
      }
    }
  }

  /// Run one cell in interpreter `p` and wait for its end, its interpreter's death, or its
  /// deadline (then SIGINT, and after the grace `Hung`). Returns how it ended, its output, and
  /// whether it was sent SIGINT (its deadline passed or it was aborted).
  #[allow(clippy::too_many_arguments)]
  async fn cell(
    &self,
    generation: u64,
    p: &Spawned,
    code: &str,
    timeout: Duration,
    max_output: usize,
    sink: Option<OutputSink>,
    mut abort: Option<oneshot::Receiver<()>>,
  ) -> Result<(Ended, CellIo, bool)> {
    let nonce = format!("{:032x}", rand::random::<u128>());
    let marker = format!("\x1e{nonce}\x1e");
    let request = self.info.language.request(&nonce, code, MAX_RESULT_BYTES)?;
    *self.io.cell.lock().unwrap() = Some(CellIo {
      generation,
      out: MarkerScan::new(marker.as_bytes()),
      err: MarkerScan::new(marker.as_bytes()),
      stdout: Kept::new(max_output),
      stderr: Kept::new(max_output),
      line: ResultLine::new(MAX_RESULT_BYTES),
      sink,
    });
    let take = || self.io.cell.lock().unwrap().take().expect("the cell's state");
    if p.stdin(request).is_err() {
      return Ok((Ended::Died("it had already exited".into()), take(), false));
    }
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut interrupted = false;
    let ended = loop {
      if self.io.cell.lock().unwrap().as_ref().is_some_and(CellIo::complete) {
        break Ended::Complete;
      }
      let can_abort = abort.is_some() && !interrupted;
      let aborted = async {
        match abort.as_mut() {
          Some(rx) => {
            let _ = rx.await;
          }
          None => std::future::pending::<()>().await,
        }
      };
      tokio::select! {
        _ = self.io.wake.notified() => {}
        r = p.wait() => {
          // everything the process wrote went through the sink before its end was reported
          if self.io.cell.lock().unwrap().as_ref().is_some_and(CellIo::complete) {
            break Ended::Complete;
          }
          break Ended::Died(match r {
            Ok(out) => match out.signal {
              Some(s) => format!("killed by {s}"),
              None => format!("exit code {}", out.exit_code),
            },
            Err(e) => e.message,
          });
        }
        _ = tokio::time::sleep_until(deadline) => {
          if interrupted {
            break Ended::Hung;
          }
          interrupted = true;
          let _ = p.signal(2);
          deadline = tokio::time::Instant::now() + INTERRUPT_GRACE;
        }
        _ = aborted, if can_abort => {
          interrupted = true;
          let _ = p.signal(2);
          deadline = tokio::time::Instant::now() + INTERRUPT_GRACE;
        }
      }
    };
    Ok((ended, take(), interrupted))
  }
}

/// The FIFO queue of a context's calls: tickets in call order, served one at a time.
#[derive(Default)]
struct Turns {
  next: std::sync::atomic::AtomicU64,
  serving: tokio::sync::watch::Sender<u64>,
  /// tickets dropped before their turn (skipped when it comes)
  skipped: Mutex<std::collections::BTreeSet<u64>>,
}

impl Turns {
  /// Serve `from`, or the first ticket after it that was not dropped. Called with `skipped` held.
  fn advance(&self, skipped: &mut std::collections::BTreeSet<u64>, mut from: u64) {
    while skipped.remove(&from) {
      from += 1;
    }
    self.serving.send_replace(from);
  }
}

/// One call's place in its context's queue; its turn passes when it is dropped.
pub struct Turn {
  ctx: Arc<Context>,
  n: u64,
  served: bool,
}

impl Turn {
  fn take(ctx: &Arc<Context>) -> Turn {
    let n = ctx.turns.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Turn { ctx: ctx.clone(), n, served: false }
  }

  /// Wait until the calls made before this one are done.
  async fn wait(&mut self) {
    let mut rx = self.ctx.turns.serving.subscribe();
    let n = self.n;
    let _ = rx.wait_for(|v| *v == n).await;
    self.served = true;
  }
}

impl Drop for Turn {
  fn drop(&mut self) {
    let t = &self.ctx.turns;
    let mut skipped = t.skipped.lock().unwrap();
    if self.served || *t.serving.borrow() == self.n {
      t.advance(&mut skipped, self.n + 1);
    } else {
      skipped.insert(self.n);
    }
  }
}

/// Options of one cell in a context.
#[derive(Default)]
pub struct CellOptions {
  /// seconds (default limits.timeoutSeconds)
  pub timeout: Option<f64>,
  /// per-stream output cap of the cell (default 16 MiB)
  pub max_output_bytes: Option<usize>,
  pub sink: Option<OutputSink>,
  /// interrupts the cell (as a timeout does) and rejects with ABORTED
  pub abort: Option<oneshot::Receiver<()>>,
}

/// A sandbox's contexts.
#[derive(Default)]
pub struct Registry {
  map: Mutex<BTreeMap<String, Arc<Context>>>,
}

impl Registry {
  /// Forget every context and kill its interpreter (the sandbox is destroyed, reset or emptied
  /// of processes).
  pub fn clear(&self) {
    let all = std::mem::take(&mut *self.map.lock().unwrap());
    for c in all.values() {
      c.close();
    }
  }

  /// Forget every context's interpreter (the sandbox stops, which ends its processes): the next
  /// cell of each starts a fresh one and says `contextRestarted`.
  pub fn interpreters_end(&self) {
    for c in self.map.lock().unwrap().values() {
      c.kill();
    }
  }

  pub fn list(&self) -> Vec<ContextInfo> {
    self.map.lock().unwrap().values().map(|c| c.info.clone()).collect()
  }

  /// A place in the queue of context `id`'s calls, taken when the call is made (so that calls
  /// run in the order they were made, not the order their tasks happen to be polled).
  pub fn turn(&self, sandbox: &str, id: &str) -> Result<Turn> {
    Ok(Turn::take(&self.get(sandbox, id)?))
  }

  fn get(&self, sandbox: &str, id: &str) -> Result<Arc<Context>> {
    self.map.lock().unwrap().get(id).cloned().ok_or_else(|| {
      SandboxError::invalid_argument(format!(
        "sandbox {sandbox} has no code context {id:?} (contexts end with removeCodeContext and with their sandbox's destroy, a pool's reset or a session's expiry); create one with createCodeContext"
      ))
    })
  }
}

/// Options of `createCodeContext`.
#[derive(Default, Debug)]
pub struct ContextOptions {
  pub language: Option<String>,
  /// relative to the sandbox's workdir (default: the workdir)
  pub cwd: Option<String>,
  pub env: BTreeMap<String, String>,
}

/// Start a new context: its interpreter runs until it is removed or the sandbox ends.
pub async fn create(sb: &AnySandbox, opts: ContextOptions) -> Result<ContextInfo> {
  let config = sb.config();
  let language = match &opts.language {
    Some(l) => Lang::parse(l)?,
    None => Lang::parse(crate::core::templates::default_language(config.template.as_deref()))?,
  };
  let cwd = match &opts.cwd {
    Some(c) => crate::core::paths::resolve(&config.workdir, c)?,
    None => config.workdir.clone(),
  };
  for k in opts.env.keys() {
    if k.is_empty() || k.contains('=') || k.contains('\0') {
      return Err(SandboxError::invalid_argument(format!("env key {k:?} is not a valid variable name")));
    }
  }
  let id = format!("ctx-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
  let ctx = Arc::new(Context {
    info: ContextInfo { id: id.clone(), language, cwd },
    env: opts.env,
    turns: Turns::default(),
    proc: Mutex::new(None),
    generation: Default::default(),
    io: Arc::new(Io::default()),
    removed: Default::default(),
  });
  {
    let mut map = sb.contexts.map.lock().unwrap();
    if map.len() >= MAX_CONTEXTS {
      return Err(SandboxError::new(
        ErrorCode::QuotaExceeded,
        format!(
          "sandbox {} already has {MAX_CONTEXTS} code contexts, the most one sandbox may have; remove one with removeCodeContext(id) (listCodeContexts() lists them) or use another sandbox",
          sb.id()
        ),
      ));
    }
    map.insert(id.clone(), ctx.clone());
  }
  let mut turn = Turn::take(&ctx);
  turn.wait().await;
  if let Err(e) = ctx.start(sb).await {
    sb.contexts.map.lock().unwrap().remove(&id);
    return Err(e);
  }
  sb.logs.info(Source::Execution, format!("Code context {id} started ({}, in {})", language.as_str(), ctx.info.cwd));
  Ok(ctx.info.clone())
}

/// Remove a context and kill its interpreter; false when there was none with that id.
pub fn remove(sb: &AnySandbox, id: &str) -> bool {
  let c = sb.contexts.map.lock().unwrap().remove(id);
  match c {
    Some(c) => {
      c.close();
      sb.logs.info(Source::Execution, format!("Code context {id} removed"));
      true
    }
    None => false,
  }
}

/// Replace a context's interpreter with a fresh one (its state is lost); waits for a running
/// cell to end first.
pub async fn restart(sb: &AnySandbox, mut turn: Turn) -> Result<()> {
  turn.wait().await;
  let ctx = turn.ctx.clone();
  let id = &ctx.info.id;
  if ctx.is_removed() {
    return Err(ctx.gone());
  }
  let _busy = sb.enter().await?;
  ctx.start(sb).await?;
  sb.logs.info(Source::Execution, format!("Code context {id} restarted"));
  Ok(())
}

/// Run `code` as the next cell of context `id`. Cells of one context run one at a time, in call
/// order; the timeout counts from the cell's start.
pub async fn run(sb: &AnySandbox, mut turn: Turn, code: &str, opts: CellOptions) -> Result<CellRun> {
  let ctx = turn.ctx.clone();
  let id = &ctx.info.id;
  let lang = ctx.info.language;
  let timeout = crate::core::config::seconds("timeout", opts.timeout.unwrap_or(sb.limits().timeout_seconds), false)?;
  let max_output = opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT);
  turn.wait().await;
  if ctx.is_removed() {
    return Err(ctx.gone());
  }
  let _busy = sb.enter().await?;
  let started = Instant::now();
  // an interpreter that died since the last cell (killed, exited from a thread) is replaced
  let mut restarted = false;
  let (generation, p) = match ctx.live() {
    Some(lp) => lp,
    None => {
      ctx.start(sb).await?;
      restarted = true;
      ctx.live().ok_or_else(|| SandboxError::new(ErrorCode::ExecutionError, format!("the interpreter of code context {id} exited right after it started")))?
    }
  };
  let aborted = opts.abort.is_some();
  let (abort_tx, abort_rx) = oneshot::channel::<()>();
  let mut abort_fired = None;
  if let Some(rx) = opts.abort {
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    abort_fired = Some(fired.clone());
    tokio::spawn(async move {
      if rx.await.is_ok() {
        fired.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = abort_tx.send(());
      }
    });
  }
  sb.logs.info(Source::Execution, format!("Running: runCode ({}, context {id}, {} bytes)", lang.as_str(), code.len()));
  let (ended, io, interrupted) = ctx.cell(generation, &p, code, timeout, max_output, opts.sink, aborted.then_some(abort_rx)).await?;
  let was_aborted = abort_fired.is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
  let truncated = io.stdout.dropped > 0 || io.stderr.dropped > 0;
  let mut run = CellRun {
    language: lang,
    stdout: io.stdout.data,
    stderr: io.stderr.data,
    exit_code: 0,
    duration_ms: 0.0,
    timed_out: false,
    truncated,
    results: Vec::new(),
    error: None,
    context_restarted: restarted,
  };
  let mut lost = None;
  match ended {
    Ended::Complete => {
      let reply = parse_reply(&io.line);
      run.results = reply.results;
      run.error = reply.error;
      run.exit_code = match (lang, reply.exit_code) {
        (Lang::Bash, Some(c)) => c,
        _ => i64::from(run.error.is_some()),
      };
      if run.error.is_none() && run.exit_code != 0 {
        run.error = Some(CellError {
          name: "NonZeroExitStatus".into(),
          value: format!("the cell's last command exited with status {}", run.exit_code),
          traceback: String::new(),
        });
      }
      // the cell ended after the SIGINT of its deadline
      if interrupted && !was_aborted {
        run.timed_out = true;
        let traceback = run.error.as_ref().map(|e| e.traceback.clone()).unwrap_or_default();
        run.error = Some(CellError {
          name: "TimeoutError".into(),
          value: format!("the cell did not finish within {} s and was interrupted (SIGINT); the context keeps its state", timeout.as_secs_f64()),
          traceback,
        });
        run.exit_code = run.exit_code.max(1);
      }
    }
    Ended::Died(how) => {
      lost = Some(format!("the {} interpreter of the context exited during the cell ({how})", lang.as_str()));
    }
    Ended::Hung => {
      run.timed_out = !was_aborted;
      lost = Some(if was_aborted {
        format!("the cell did not stop within {} s of SIGINT after its AbortSignal", INTERRUPT_GRACE.as_secs())
      } else {
        format!(
          "the cell did not finish within {} s, and did not stop within {} s of SIGINT",
          timeout.as_secs_f64(),
          INTERRUPT_GRACE.as_secs()
        )
      });
    }
  }
  if let Some(why) = lost {
    run.exit_code = 1;
    let restart = ctx.start(sb).await;
    let (name, then) = match (&restart, run.timed_out) {
      (Ok(()), true) => ("TimeoutError", "its process group was killed and the context restarted with a fresh interpreter: its variables are lost".to_string()),
      (Ok(()), false) => ("ContextRestarted", "the context was restarted with a fresh interpreter: its variables are lost".to_string()),
      (Err(_), _) if ctx.is_removed() => ("ContextRemoved", "the context was removed meanwhile".to_string()),
      (Err(e), _) => ("ContextDied", format!("restarting the context failed ({}); the next runCode in it tries again", e.message)),
    };
    run.context_restarted = restart.is_ok();
    run.error = Some(CellError { name: name.into(), value: format!("{why}; {then}"), traceback: String::new() });
  }
  run.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
  if was_aborted {
    return Err(SandboxError::new(
      ErrorCode::Aborted,
      format!(
        "runCode in context {id} was aborted by its AbortSignal; {}",
        if run.context_restarted { "the cell did not stop on SIGINT, so the context was restarted (its state is lost)" } else { "the cell was interrupted and the context keeps its state" }
      ),
    ));
  }
  Ok(run)
}

/// The driver's result line, or an error saying why it cannot be used.
fn parse_reply(line: &ResultLine) -> Reply {
  let bad = |value: String| Reply { error: Some(CellError { name: "ResultError".into(), value, traceback: String::new() }), ..Default::default() };
  if line.over {
    return bad(format!("the cell's results were larger than {MAX_RESULT_BYTES} bytes and were dropped; return or display less (e.g. a summary, or write large data to a file)"));
  }
  match serde_json::from_slice::<Reply>(&line.buf) {
    Ok(r) => r,
    Err(e) => bad(format!("the interpreter's result line does not parse ({e}); something in the context wrote to the driver's protocol")),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn languages_and_refusals() {
    assert_eq!(Lang::parse("py").unwrap(), Lang::Python);
    assert_eq!(Lang::parse("Node").unwrap(), Lang::JavaScript);
    assert_eq!(Lang::parse("sh").unwrap(), Lang::Bash);
    assert_eq!(Lang::parse("ts").unwrap(), Lang::TypeScript);
    assert_eq!(Lang::parse("go").unwrap_err().code, ErrorCode::InvalidArgument);
  }

  #[test]
  fn requests() {
    let r = Lang::Python.request("n1", "x = 1\nx", 10).unwrap();
    assert!(r.ends_with(b"\n") && !r[..r.len() - 1].contains(&b'\n'));
    let v: serde_json::Value = serde_json::from_slice(&r).unwrap();
    assert_eq!(v["code"], "x = 1\nx");
    assert_eq!(Lang::Bash.request("n1", "echo hi", 0).unwrap(), b"n1\necho hi\nn1\n");
    assert_eq!(Lang::Bash.request("n1", "echo hi\n", 0).unwrap(), b"n1\necho hi\nn1\n");
    assert!(Lang::Bash.request("n1", "a\0b", 0).is_err());
  }

  #[test]
  fn replies_parse_and_oversized_ones_are_refused() {
    let mut l = ResultLine::new(1 << 20);
    l.feed(br#"{"results":[{"text":"2","json":2,"isMainResult":true}],"error":null}"#);
    l.feed(b"\n");
    let r = parse_reply(&l);
    assert_eq!(r.results.len(), 1);
    assert!(r.results[0].is_main_result);
    assert_eq!(r.results[0].json, Some(serde_json::json!(2)));
    let mut l = ResultLine::new(4);
    l.feed(b"{\"results\":[]}\n");
    assert_eq!(parse_reply(&l).error.unwrap().name, "ResultError");
    let mut l = ResultLine::new(100);
    l.feed(b"not json\n");
    assert!(parse_reply(&l).error.unwrap().value.contains("does not parse"));
  }

  fn context() -> Arc<Context> {
    Arc::new(Context {
      info: ContextInfo { id: "ctx-t".into(), language: Lang::Bash, cwd: "/w".into() },
      env: BTreeMap::new(),
      turns: Turns::default(),
      proc: Mutex::new(None),
      generation: Default::default(),
      io: Arc::new(Io::default()),
      removed: Default::default(),
    })
  }

  #[tokio::test]
  async fn turns_are_served_in_the_order_they_were_taken_and_dropped_ones_are_skipped() {
    let ctx = context();
    let (a, b, c, d) = (Turn::take(&ctx), Turn::take(&ctx), Turn::take(&ctx), Turn::take(&ctx));
    let order = Arc::new(Mutex::new(Vec::new()));
    let spawn = |mut t: Turn, name: &'static str| {
      let order = order.clone();
      tokio::spawn(async move {
        t.wait().await;
        order.lock().unwrap().push(name);
        tokio::task::yield_now().await;
        drop(t);
      })
    };
    // started in reverse, dropped one never waits
    let hd = spawn(d, "d");
    let hb = spawn(b, "b");
    drop(c);
    let ha = spawn(a, "a");
    for h in [hd, hb, ha] {
      tokio::time::timeout(Duration::from_secs(5), h).await.expect("a turn never came").unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec!["a", "b", "d"]);
    let mut e = Turn::take(&ctx);
    tokio::time::timeout(Duration::from_secs(1), e.wait()).await.expect("the queue is free again");
  }

  #[test]
  fn a_cell_completes_on_both_markers_and_the_line() {
    let m = b"\x1eN\x1e";
    let mut c = CellIo {
      generation: 1,
      out: MarkerScan::new(m),
      err: MarkerScan::new(m),
      stdout: Kept::new(5),
      stderr: Kept::new(100),
      line: ResultLine::new(100),
      sink: None,
    };
    c.feed(OutStream::Stdout, b"hello world\x1eN");
    c.feed(OutStream::Stdout, b"\x1e{\"results\":[]");
    assert!(!c.complete());
    c.feed(OutStream::Stderr, b"warn\x1eN\x1e");
    assert!(!c.complete());
    c.feed(OutStream::Stdout, b"}\n");
    assert!(c.complete());
    assert_eq!(c.stdout.data, b"hello");
    assert_eq!(c.stdout.dropped, 6);
    assert_eq!(c.stderr.data, b"warn");
    assert_eq!(c.line.buf, b"{\"results\":[]}");
  }
}
