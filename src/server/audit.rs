//! The audit log: one JSON line per command the server runs (the seed's execute commands and
//! `/v1` processes, which carry the remote mode's executes, runCode, runTests and sessions), by
//! tenant and sandbox: time, worker, tenant, sandbox, argv, working directory, the names of the
//! environment variables given (never their values), exit code, signal, timeout, duration, and
//! the error code of a command that could not run.
//!
//! Secrets are replaced by `***` in the arguments: the server's API keys and secret environment
//! (its [`Redactor`]), the values of the command's and the sandbox's variables whose names say
//! they are secret (`*TOKEN*`, `*KEY*`, `*SECRET*`, ...), `NAME=value` and `--name value` /
//! `--name=value` where the name says so, and what follows `Bearer `. A line is one JSON object
//! (control characters and newlines escaped), each argument cut at [`MAX_ARG_CHARS`], and the
//! whole line kept under [`MAX_LINE_BYTES`], so no argument can forge or break a line.
//!
//! Writing never blocks or fails a request: lines go through a bounded queue to one writer
//! thread, which appends them to the file (opened with `O_APPEND`, mode 0600); a full queue or a
//! failed write loses the line, counts it (`agentic_sandbox_audit_lines_dropped_total`) and logs a
//! warning. Lines are also `tracing` events (target [`AUDIT_LOG`], level info), silent unless the
//! library's log is on.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

use prometheus_client::metrics::counter::Counter;
use serde_json::json;

use crate::core::config::is_secret_key;
use crate::core::error::{Result, SandboxError};
use crate::core::sandbox::AnySandbox;
use crate::server::error::{is_secret_name, Redactor, REDACTED};
use crate::server::metrics::Api;
use crate::server::state::AppState;

/// The `tracing` target of the audit events.
pub const AUDIT_LOG: &str = "agentic_sandbox::server::audit";
/// Each argument is cut after this many characters (`…` marks the cut).
pub const MAX_ARG_CHARS: usize = 1024;
/// At most this many arguments are shown; `argc` always tells how many there were.
pub const MAX_ARGS: usize = 64;
/// No line is longer (the newline included).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Lines waiting for the writer; past this they are dropped (and counted).
const QUEUE: usize = 4096;
/// A secret-named variable's value shorter than this is not searched for in the arguments.
const MIN_SECRET_CHARS: usize = 3;

/// One command, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Command<'a> {
  pub api: Api,
  pub tenant: &'a str,
  pub sandbox: &'a str,
  pub argv: Vec<String>,
  /// the variables the request gave the command
  pub env: &'a BTreeMap<String, String>,
  /// the sandbox configuration's variables (their secret ones are redacted in argv too)
  pub sandbox_env: &'a BTreeMap<String, String>,
  pub workdir: Option<&'a str>,
  pub background: bool,
  pub exit_code: Option<i64>,
  pub signal: Option<String>,
  pub timed_out: bool,
  pub duration_ms: f64,
  /// the error code when the command could not run or its run failed
  pub error: Option<String>,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exited {
  pub exit_code: i64,
  pub signal: Option<String>,
  pub timed_out: bool,
  pub duration_ms: f64,
}

impl From<&crate::core::types::ExecResult> for Exited {
  fn from(r: &crate::core::types::ExecResult) -> Self {
    Self { exit_code: r.exit_code, signal: r.signal.clone(), timed_out: r.timed_out, duration_ms: r.duration_ms }
  }
}

impl From<&crate::core::process::ExecOutput> for Exited {
  fn from(r: &crate::core::process::ExecOutput) -> Self {
    Self { exit_code: r.exit_code, signal: r.signal.clone(), timed_out: r.timed_out, duration_ms: r.duration.as_secs_f64() * 1000.0 }
  }
}

/// The handlers' hook: a command of `tenant` in `sandbox` ended (`Ok`) or could not run or
/// failed (`Err` with its error code): counted in the metrics (a command that ran) and written to
/// the audit log.
#[allow(clippy::too_many_arguments)]
pub fn command(
  state: &AppState,
  api: Api,
  tenant: &str,
  sandbox: &AnySandbox,
  argv: Vec<String>,
  env: &BTreeMap<String, String>,
  workdir: Option<&str>,
  background: bool,
  ran: std::result::Result<Exited, &str>,
) {
  if let Ok(x) = &ran {
    state.metrics.execution(tenant, api, x.duration_ms / 1000.0);
  }
  if !state.audit.wanted() {
    return;
  }
  let config = sandbox.config();
  let (exit_code, signal, timed_out, duration_ms, error) = match ran {
    Ok(x) => (Some(x.exit_code), x.signal, x.timed_out, x.duration_ms, None),
    Err(code) => (None, None, false, 0.0, Some(code.to_string())),
  };
  let cmd = Command {
    api,
    tenant,
    sandbox: sandbox.id(),
    argv,
    env,
    sandbox_env: &config.env,
    workdir,
    background,
    exit_code,
    signal,
    timed_out,
    duration_ms,
    error,
  };
  state.audit.record(&cmd, &state.redactor);
}

enum Msg {
  Line(String),
  Flush(tokio::sync::oneshot::Sender<()>),
}

/// The audit log of a server (a no-op sink when neither a file nor the `tracing` target wants it).
#[derive(Debug)]
pub struct Audit {
  tx: Option<SyncSender<Msg>>,
  path: Option<PathBuf>,
  dropped: Counter,
  worker: String,
}

fn is_secret(name: &str) -> bool {
  is_secret_name(name) || is_secret_key(name)
}

/// `s` cut after `max` characters, `…` marking the cut.
fn cut(s: &str, max: usize) -> String {
  match s.char_indices().nth(max) {
    Some((i, _)) => format!("{}…", &s[..i]),
    None => s.to_string(),
  }
}

/// Secrets in one argument: `NAME=value` with a secret name, `--name=value`, `Bearer <token>`.
fn redact_patterns(arg: &str) -> String {
  let mut out = String::with_capacity(arg.len());
  let mut rest = arg;
  // word by word, so `FOO=1 API_TOKEN=x cmd` (one `sh -c` argument) is handled
  while !rest.is_empty() {
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let (word, tail) = rest.split_at(end);
    let ws_end = tail.find(|c: char| !c.is_whitespace()).unwrap_or(tail.len());
    let (ws, after) = tail.split_at(ws_end);
    match word.split_once('=') {
      Some((name, value)) if !value.is_empty() && is_secret(name.trim_start_matches('-').trim_start_matches(['\'', '"', '$', '{', '('])) => {
        out.push_str(name);
        out.push('=');
        out.push_str(REDACTED);
      }
      _ => out.push_str(word),
    }
    out.push_str(ws);
    // `Bearer <token>`, `-p <secret>` need the next word
    if (word.eq_ignore_ascii_case("bearer") || word.trim_start_matches(['\'', '"']).eq_ignore_ascii_case("bearer")) && !after.is_empty() {
      let next = after.find(|c: char| c.is_whitespace() || c == '"' || c == '\'').unwrap_or(after.len());
      out.push_str(REDACTED);
      rest = &after[next..];
      continue;
    }
    rest = after;
  }
  out
}

/// The arguments as the audit shows them (see the module docs).
pub fn redact_argv(argv: &[String], redactor: &Redactor, env: &BTreeMap<String, String>, sandbox_env: &BTreeMap<String, String>) -> Vec<String> {
  let mut values: Vec<&str> = env
    .iter()
    .chain(sandbox_env.iter())
    .filter(|(k, v)| is_secret(k) && v.trim().chars().count() >= MIN_SECRET_CHARS)
    .map(|(_, v)| v.as_str())
    .collect();
  values.sort_by_key(|v| std::cmp::Reverse(v.len()));
  let mut out = Vec::with_capacity(argv.len());
  let mut hide_next = false;
  for arg in argv {
    if hide_next {
      hide_next = false;
      out.push(REDACTED.to_string());
      continue;
    }
    let mut a = redactor.redact(arg);
    for v in &values {
      if a.contains(v) {
        a = a.replace(v, REDACTED);
      }
    }
    // `--password secret` (a flag alone, then its value)
    if a.starts_with('-') && !a.contains('=') && is_secret(a.trim_start_matches('-')) {
      hide_next = true;
    }
    out.push(redact_patterns(&a));
  }
  out
}

/// The JSON line of `cmd` (without its newline), at most [`MAX_LINE_BYTES`] - 1 bytes.
pub fn line(cmd: &Command<'_>, redactor: &Redactor, worker: &str, time_ms: f64) -> String {
  let argv = redact_argv(&cmd.argv, redactor, cmd.env, cmd.sandbox_env);
  let env_names: Vec<&str> = cmd.env.keys().map(|k| k.as_str()).take(MAX_ARGS).collect();
  let mut shown_args = MAX_ARGS;
  let mut arg_chars = MAX_ARG_CHARS;
  loop {
    let shown: Vec<String> = argv.iter().take(shown_args).map(|a| cut(a, arg_chars)).collect();
    let v = json!({
      "time": crate::core::logs::iso(time_ms),
      "worker": cut(worker, 128),
      "tenant": cmd.tenant,
      "sandbox": cut(cmd.sandbox, 128),
      "api": cmd.api.as_str(),
      "argv": shown,
      "argc": argv.len(),
      "truncated": shown_args < argv.len() || argv.iter().any(|a| a.chars().count() > arg_chars),
      "env": env_names,
      "workdir": cmd.workdir.map(|w| cut(&redactor.redact(w), 256)),
      "background": cmd.background,
      "exit_code": cmd.exit_code,
      "signal": cmd.signal,
      "timed_out": cmd.timed_out,
      "duration_ms": (cmd.duration_ms * 10.0).round() / 10.0,
      "error": cmd.error.as_deref().map(|e| cut(e, 64)),
    });
    let text = serde_json::to_string(&v).expect("a JSON value serializes");
    if text.len() < MAX_LINE_BYTES || (shown_args == 0 && arg_chars == 0) {
      return text;
    }
    // too long (escaped control characters take six bytes each): show less
    if arg_chars > 16 {
      arg_chars /= 2;
    } else if shown_args > 0 {
      shown_args /= 2;
    } else {
      arg_chars = 0;
    }
  }
}

impl Audit {
  /// The audit of a server: `path` (appended to, created with mode 0600) or no file.
  /// INVALID_CONFIG when the file cannot be opened.
  pub fn open(path: Option<&Path>, worker: &str, dropped: Counter) -> Result<Self> {
    let Some(path) = path else {
      return Ok(Self { tx: None, path: None, dropped, worker: worker.to_string() });
    };
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let file = o.open(path).map_err(|e| {
      SandboxError::invalid_config(format!("cannot open the audit log {} for appending ({e}); choose a writable file (auditLog, --audit-log, SANDBOX_AUDIT_LOG)", path.display()))
    })?;
    let (tx, rx) = sync_channel::<Msg>(QUEUE);
    let (shown, counter) = (path.display().to_string(), dropped.clone());
    std::thread::Builder::new()
      .name("agentic-sandbox-audit".into())
      .spawn(move || writer(file, rx, shown, counter))
      .map_err(|e| SandboxError::provider(format!("cannot start the audit log's writer thread ({e})")))?;
    Ok(Self { tx: Some(tx), path: Some(path.to_path_buf()), dropped, worker: worker.to_string() })
  }

  pub fn path(&self) -> Option<&Path> {
    self.path.as_deref()
  }

  /// Whether anything reads the lines (a file, or the `tracing` target is on).
  pub fn wanted(&self) -> bool {
    self.tx.is_some() || tracing::enabled!(target: AUDIT_LOG, tracing::Level::INFO)
  }

  /// Records `cmd` (see the module docs). Never blocks and never fails.
  pub fn record(&self, cmd: &Command<'_>, redactor: &Redactor) {
    let traced = tracing::enabled!(target: AUDIT_LOG, tracing::Level::INFO);
    if self.tx.is_none() && !traced {
      return;
    }
    let text = line(cmd, redactor, &self.worker, crate::core::logs::now_ms());
    if traced {
      tracing::info!(target: AUDIT_LOG, line = %text, "command");
    }
    if let Some(tx) = &self.tx {
      match tx.try_send(Msg::Line(text)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
          if self.dropped.inc().is_multiple_of(1000) {
            tracing::warn!(path = ?self.path, "the audit log's writer is behind: audit lines are being dropped");
          }
        }
        Err(TrySendError::Disconnected(_)) => {
          self.dropped.inc();
        }
      }
    }
  }

  /// Waits (at most `limit`) until the lines recorded so far are written.
  pub async fn flush(&self, limit: std::time::Duration) {
    let Some(tx) = &self.tx else { return };
    let (done, wait) = tokio::sync::oneshot::channel();
    let tx = tx.clone();
    // the queue may be full: the flush waits for room off the runtime's threads
    let sent = tokio::task::spawn_blocking(move || tx.send(Msg::Flush(done)).is_ok());
    let flushed = async {
      if sent.await.unwrap_or(false) {
        let _ = wait.await;
      }
    };
    if tokio::time::timeout(limit, flushed).await.is_err() {
      tracing::warn!(path = ?self.path, "the audit log was not flushed within {limit:?}");
    }
  }
}

fn writer(mut file: std::fs::File, rx: std::sync::mpsc::Receiver<Msg>, path: String, dropped: Counter) {
  let mut failing = false;
  for msg in rx {
    match msg {
      Msg::Line(mut text) => {
        text.push('\n');
        // one write per line: with O_APPEND, lines of several servers sharing a file stay whole
        match file.write_all(text.as_bytes()) {
          Ok(()) if failing => {
            failing = false;
            tracing::warn!(%path, "the audit log is written again");
          }
          Ok(()) => {}
          Err(e) => {
            dropped.inc();
            if !failing {
              failing = true;
              tracing::warn!(%path, error = %e, "writing the audit log failed; audit lines are dropped until a write succeeds");
            }
          }
        }
      }
      Msg::Flush(done) => {
        let _ = file.flush();
        let _ = done.send(());
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::Value;

  fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
  }

  fn cmd<'a>(argv: &[&str], e: &'a BTreeMap<String, String>, se: &'a BTreeMap<String, String>) -> Command<'a> {
    Command {
      api: Api::V1,
      tenant: "alice",
      sandbox: "sb-1",
      argv: argv.iter().map(|s| s.to_string()).collect(),
      env: e,
      sandbox_env: se,
      workdir: Some("/workspace"),
      background: false,
      exit_code: Some(0),
      signal: None,
      timed_out: false,
      duration_ms: 12.34,
      error: None,
    }
  }

  #[test]
  fn a_line_names_tenant_sandbox_worker_and_outcome() {
    let (e, se) = (env(&[("MODE", "fast")]), env(&[]));
    let text = line(&cmd(&["python3", "main.py"], &e, &se), &Redactor::default(), "w-1", 0.0);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
    assert_eq!((v["tenant"].as_str(), v["sandbox"].as_str(), v["worker"].as_str()), (Some("alice"), Some("sb-1"), Some("w-1")));
    assert_eq!(v["argv"], json!(["python3", "main.py"]));
    assert_eq!(v["env"], json!(["MODE"]), "names only");
    assert_eq!((v["exit_code"].as_i64(), v["duration_ms"].as_f64(), v["api"].as_str()), (Some(0), Some(12.3), Some("v1")));
    assert!(!text.contains("fast"));
  }

  #[test]
  fn secrets_are_redacted() {
    let r = Redactor::new(["k-0123456789abcdef"], [("SERVER_SECRET".to_string(), "server-secret-value".to_string())]);
    let e = env(&[("API_TOKEN", "sekret"), ("PLAIN", "visible-value")]);
    let se = env(&[("GITHUB_TOKEN", "ghp_abc")]);
    let argv = [
      "sh",
      "-c",
      "curl -H 'Authorization: Bearer tok-123' -d sekret https://x && PASSWORD=hunter2 run --api-key=abc123 ghp_abc k-0123456789abcdef server-secret-value",
      "--password",
      "pw-in-next-arg",
      "visible-value",
    ];
    let text = line(&cmd(&argv, &e, &se), &r, "w", 0.0);
    for s in ["sekret", "tok-123", "hunter2", "abc123", "ghp_abc", "k-0123456789abcdef", "server-secret-value", "pw-in-next-arg"] {
      assert!(!text.contains(s), "{s} in {text}");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["argv"][2], "curl -H 'Authorization: Bearer ***' -d *** https://x && PASSWORD=*** run --api-key=*** *** *** ***");
    assert_eq!(v["argv"][3], "--password");
    assert_eq!(v["argv"][5], "visible-value", "a variable whose name is not secret stays");
    assert_eq!(v["env"], json!(["API_TOKEN", "PLAIN"]));
  }

  #[test]
  fn hostile_arguments_cannot_forge_or_break_lines() {
    let (e, se) = (env(&[]), env(&[]));
    let forged = "x\"}\n{\"tenant\":\"root\",\"argv\":[\"forged\"]}\r\n\u{0}\u{1b}[2J\u{2028}";
    let huge = "A".repeat(1 << 20);
    let ctrl = "\u{1}".repeat(200_000);
    let mut argv = vec![forged, huge.as_str(), ctrl.as_str()];
    let many: Vec<String> = (0..10_000).map(|i| format!("arg{i}")).collect();
    argv.extend(many.iter().map(String::as_str));
    let text = line(&cmd(&argv, &e, &se), &Redactor::default(), "w", 0.0);
    assert!(text.len() < MAX_LINE_BYTES, "{} bytes", text.len());
    assert!(!text.contains('\n') && !text.contains('\r') && !text.contains('\u{0}') && !text.contains('\u{1b}'));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["tenant"], "alice");
    assert_eq!(v["argc"], 10_003);
    assert_eq!(v["truncated"], true);
    assert!(v["argv"][0].as_str().unwrap().starts_with("x\"}\n{\"tenant\""), "kept, escaped");
    // one argument of escapes alone is cut to fit
    let only = vec![ctrl.as_str()];
    let text = line(&cmd(&only, &e, &se), &Redactor::default(), "w", 0.0);
    assert!(text.len() < MAX_LINE_BYTES);
    assert!(serde_json::from_str::<Value>(&text).is_ok());
  }

  #[test]
  fn the_file_gets_one_line_per_command_and_flush_waits_for_them() {
    let dir = std::env::temp_dir().join(format!("agentic-sandbox-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dropped = Counter::default();
    let audit = Audit::open(Some(&path), "w", dropped.clone()).unwrap();
    let (e, se) = (env(&[]), env(&[]));
    for i in 0..5 {
      audit.record(&cmd(&["echo", &i.to_string()], &e, &se), &Redactor::default());
    }
    rt.block_on(audit.flush(std::time::Duration::from_secs(10)));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[4]["argv"], json!(["echo", "4"]));
    assert_eq!(dropped.get(), 0);
    #[cfg(unix)]
    {
      use std::os::unix::fs::PermissionsExt;
      assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let e = Audit::open(Some(Path::new("/nonexistent-dir/audit.jsonl")), "w", Counter::default()).unwrap_err();
    assert!(e.message.contains("cannot open the audit log /nonexistent-dir/audit.jsonl"), "{}", e.message);
  }
}
