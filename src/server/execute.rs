//! `POST /sandbox/{id}/execute`: write files, then run shell commands one after another in the
//! sandbox's working directory, each with `/bin/sh -c`. A command that runs a test runner (see
//! [`test_runner`]) goes through the library's `runTests`, so its output is parsed into counts and
//! failures.
//!
//! The request's `timeout` is a budget for all its commands: each gets what is left of it, and a
//! command with nothing left is not run (`skipped`). Each output stream of each command is capped
//! (`truncated: true` past the cap), and all of a request's output together at [`TOTAL_CAPS`]
//! caps, so commands printing without end cost the server no more than that.

use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::core::error::{ErrorCode, SandboxError};
use crate::core::sandbox::AnySandbox;
use crate::core::types::{ExecOptions, ExecResult};
use crate::server::error::ApiError;
use crate::service::code::{run_tests, TestOptions};
use crate::service::testparse::{Framework, TestSummary};

/// Most commands and files in one request.
pub const MAX_COMMANDS: usize = 100;
pub const MAX_FILES: usize = 1000;
/// A command needs at least this much of the budget to be started.
const MIN_SLICE: Duration = Duration::from_millis(20);
/// The output of all commands of a request together is bounded by this many per-stream caps;
/// once it is spent, later commands keep [`MIN_CAP`] bytes per stream.
pub const TOTAL_CAPS: usize = 8;
const MIN_CAP: usize = 4096;

/// The per-stream cap of the next command: `max` while the request's output budget
/// (`TOTAL_CAPS * max`) lasts, then what is left of it split over two streams, at least [`MIN_CAP`].
pub fn next_cap(max: usize, used: usize) -> usize {
  let left = (TOTAL_CAPS * max).saturating_sub(used);
  (left / 2).clamp(MIN_CAP.min(max), max)
}

#[derive(Debug, Clone)]
pub struct Request {
  /// path (relative to the working directory, or absolute) → text
  pub files: Vec<(String, String)>,
  pub commands: Vec<String>,
  pub timeout: Duration,
  pub stop_on_error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
  Completed,
  Failed,
  Timeout,
  Skipped,
}

impl Status {
  pub fn as_str(self) -> &'static str {
    match self {
      Status::Completed => "completed",
      Status::Failed => "failed",
      Status::Timeout => "timeout",
      Status::Skipped => "skipped",
    }
  }
}

#[derive(Debug, Clone)]
pub struct Tests {
  /// None: a custom command whose output no parser recognised
  pub framework: Option<Framework>,
  pub summary: TestSummary,
}

#[derive(Debug, Clone)]
pub struct CommandResult {
  pub command: String,
  pub status: Status,
  /// None when the command was skipped
  pub result: Option<ExecResult>,
  pub tests: Option<Tests>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
  pub files_written: Vec<String>,
  pub results: Vec<CommandResult>,
  pub duration: Duration,
}

impl Outcome {
  /// Every command ran, exited 0, and no test failed.
  pub fn success(&self) -> bool {
    self.results.iter().all(|r| r.status == Status::Completed)
  }
}

// ------------------------------------------------------------------ test runners

/// The simple commands of a shell line: split at `&&`, `||`, `;`, `|`, `&`, newlines and
/// parentheses, then into words (quotes removed). A heuristic for [`test_runner`], not a shell parser.
fn simple_commands(line: &str) -> Vec<Vec<String>> {
  let mut out = Vec::new();
  let mut words: Vec<String> = Vec::new();
  let mut word = String::new();
  let mut quote: Option<char> = None;
  let flush_word = |word: &mut String, words: &mut Vec<String>| {
    if !word.is_empty() {
      words.push(std::mem::take(word));
    }
  };
  for c in line.chars() {
    match (quote, c) {
      (Some(q), c) if c == q => quote = None,
      (Some(_), c) => word.push(c),
      (None, '\'' | '"') => quote = Some(c),
      (None, ';' | '&' | '|' | '\n' | '(' | ')' | '`') => {
        flush_word(&mut word, &mut words);
        if !words.is_empty() {
          out.push(std::mem::take(&mut words));
        }
      }
      (None, c) if c.is_whitespace() => flush_word(&mut word, &mut words),
      (None, c) => word.push(c),
    }
  }
  flush_word(&mut word, &mut words);
  if !words.is_empty() {
    out.push(words);
  }
  out
}

fn is_assignment(w: &str) -> bool {
  matches!(w.find('='), Some(i) if i > 0 && w[..i].chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
}

/// What one simple command runs: Some(Some(f)) a test runner of framework f, Some(None) a
/// package manager's test script (the framework is detected from the project), None not tests.
fn runner_of(words: &[String]) -> Option<Option<Framework>> {
  let mut i = 0;
  // assignments and wrappers before the program
  while i < words.len() {
    let w = words[i].as_str();
    if is_assignment(w) || ["env", "time", "exec", "command", "nice", "nohup"].contains(&w) || (w.starts_with('-') && i > 0) {
      i += 1;
    } else if w == "timeout" {
      i += 2;
    } else {
      break;
    }
  }
  let program = words.get(i)?.rsplit('/').next().unwrap_or("");
  let rest: Vec<&str> = words[i + 1..].iter().map(String::as_str).collect();
  let first_arg = rest.iter().find(|a| !a.starts_with('-')).copied();
  match program {
    "jest" => Some(Some(Framework::Jest)),
    "vitest" => Some(Some(Framework::Vitest)),
    "pytest" | "py.test" => Some(Some(Framework::Pytest)),
    p if p.starts_with("python") => rest.windows(2).any(|w| w == ["-m", "pytest"]).then_some(Some(Framework::Pytest)),
    "go" => (first_arg == Some("test")).then_some(Some(Framework::Go)),
    "npx" | "bunx" | "pnpx" => match first_arg {
      Some("jest") => Some(Some(Framework::Jest)),
      Some("vitest") => Some(Some(Framework::Vitest)),
      _ => None,
    },
    "npm" | "yarn" | "pnpm" => {
      let script = match first_arg {
        Some("run" | "run-script") => rest.iter().filter(|a| !a.starts_with('-')).nth(1).copied(),
        other => other,
      };
      match script {
        Some("test" | "t" | "tst") => Some(None),
        Some(s) if s.starts_with("test:") => Some(None),
        Some("jest") if program != "npm" => Some(Some(Framework::Jest)),
        Some("vitest") if program != "npm" => Some(Some(Framework::Vitest)),
        Some("exec") => match rest.iter().filter(|a| !a.starts_with('-')).nth(1).copied() {
          Some("jest") => Some(Some(Framework::Jest)),
          Some("vitest") => Some(Some(Framework::Vitest)),
          _ => None,
        },
        _ => None,
      }
    }
    _ => None,
  }
}

/// Whether a shell command line runs tests whose output the library's parsers read (jest,
/// vitest, pytest, `go test`, and `npm|yarn|pnpm test`, whose framework is then detected from the
/// project): the last test-running part of the line decides.
pub fn test_runner(line: &str) -> Option<Option<Framework>> {
  simple_commands(line).iter().rev().find_map(|w| runner_of(w))
}

// ------------------------------------------------------------------ running

/// A oneshot that fires when `cancel` turns true (for `execute_with`'s abort), and the task that
/// forwards it, stopped on drop.
struct AbortLink {
  task: tokio::task::JoinHandle<()>,
}

impl AbortLink {
  fn new(cancel: &watch::Receiver<bool>) -> (Self, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let mut cancel = cancel.clone();
    let task = tokio::spawn(async move {
      if cancel.wait_for(|c| *c).await.is_ok() {
        let _ = tx.send(());
      }
    });
    (Self { task }, rx)
  }
}

impl Drop for AbortLink {
  fn drop(&mut self) {
    self.task.abort();
  }
}

fn cancelled() -> ApiError {
  ApiError::coded(ErrorCode::Aborted, "the server is shutting down: this execution was cancelled and its commands were killed")
}

fn status_of(r: &ExecResult, tests: Option<&Tests>) -> Status {
  if r.timed_out {
    Status::Timeout
  } else if r.exit_code != 0 || tests.is_some_and(|t| t.summary.failed > 0) {
    Status::Failed
  } else {
    Status::Completed
  }
}

/// What [`run`] tells about each command it ran, as it ends (for the metrics and the audit log):
/// its result, or the error that ended the run.
pub type OnCommand<'a> = &'a (dyn Fn(&str, Result<&ExecResult, &SandboxError>) + Send + Sync);

/// Runs `req` in `sb`. Errors are the request's (a file that cannot be written, a sandbox that
/// stopped, the server shutting down: ABORTED); a command that fails is a result.
pub async fn run(sb: &AnySandbox, req: Request, max_output: usize, cancel: watch::Receiver<bool>, on_command: OnCommand<'_>) -> Result<Outcome, ApiError> {
  let t0 = Instant::now();
  let deadline = t0 + req.timeout;
  let mut files_written = Vec::new();
  for (path, text) in req.files {
    if *cancel.borrow() {
      return Err(cancelled());
    }
    let op = sb.write_file(&path, text.into_bytes()).await;
    if !op.success {
      let message = format!("writing {path} failed: {}", op.error.unwrap_or_default());
      return Err(ApiError::coded(op.code.unwrap_or(ErrorCode::ExecutionError), message));
    }
    files_written.push(path);
  }
  let mut results = Vec::new();
  let mut stop = false;
  let mut used = 0usize;
  for command in req.commands {
    if *cancel.borrow() {
      return Err(cancelled());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if stop || left < MIN_SLICE {
      results.push(CommandResult { command, status: Status::Skipped, result: None, tests: None });
      continue;
    }
    let (_link, abort) = AbortLink::new(&cancel);
    let timeout = Some(left.as_secs_f64());
    let cap = next_cap(max_output, used);
    let ran: Result<(ExecResult, Option<Tests>), SandboxError> = match test_runner(&command) {
      Some(framework) => {
        let opts = TestOptions {
          framework: framework.map(|f| f.as_str().to_string()),
          command: Some(command.clone()),
          timeout,
          max_output_bytes: Some(cap),
          abort: Some(abort),
          ..Default::default()
        };
        run_tests(sb, opts).await.map(|t| (t.result, Some(Tests { framework: t.framework, summary: t.summary })))
      }
      None => {
        let opts = ExecOptions { timeout, max_output_bytes: Some(cap), ..Default::default() };
        sb.execute_with("/bin/sh", &["-c".to_string(), command.clone()], opts, None, Some(abort)).await.map(|r| (r, None))
      }
    };
    on_command(&command, ran.as_ref().map(|(r, _)| r));
    let (result, tests) = match ran {
      Ok(r) => r,
      Err(e) if e.code == ErrorCode::Aborted => return Err(cancelled()),
      Err(e) => return Err(e.into()),
    };
    used += result.stdout.len() + result.stderr.len();
    let status = status_of(&result, tests.as_ref());
    stop = req.stop_on_error && status != Status::Completed;
    results.push(CommandResult { command, status, result: Some(result), tests });
  }
  Ok(Outcome { files_written, results, duration: t0.elapsed() })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn test_runners_are_recognised() {
    let cases: [(&str, Option<Option<Framework>>); 24] = [
      ("npm test", Some(None)),
      ("npm install && npm test", Some(None)),
      ("npm t", Some(None)),
      ("npm run test:unit -- --ci", Some(None)),
      ("yarn test", Some(None)),
      ("pnpm run test", Some(None)),
      ("jest", Some(Some(Framework::Jest))),
      ("npx jest --ci", Some(Some(Framework::Jest))),
      ("npx --yes vitest run", Some(Some(Framework::Vitest))),
      ("./node_modules/.bin/vitest run", Some(Some(Framework::Vitest))),
      ("yarn jest", Some(Some(Framework::Jest))),
      ("npm exec vitest", Some(Some(Framework::Vitest))),
      ("pytest -q", Some(Some(Framework::Pytest))),
      ("python3 -m pytest tests/", Some(Some(Framework::Pytest))),
      ("cd app && CI=1 pytest", Some(Some(Framework::Pytest))),
      ("env FOO=1 go test ./...", Some(Some(Framework::Go))),
      ("timeout 60 go test -v ./...", Some(Some(Framework::Go))),
      ("go build ./... && go test ./...", Some(Some(Framework::Go))),
      ("pip install -r requirements.txt; (pytest)", Some(Some(Framework::Pytest))),
      ("node main.js", None),
      ("npm install", None),
      ("go build ./...", None),
      ("echo 'npm test'", None),
      ("python3 main.py", None),
    ];
    for (line, want) in cases {
      assert_eq!(test_runner(line), want, "{line}");
    }
  }

  #[test]
  fn output_budget_of_a_request() {
    let max = 1 << 20;
    assert_eq!(next_cap(max, 0), max);
    assert_eq!(next_cap(max, 6 * max), max, "two full streams still fit");
    assert_eq!(next_cap(max, 7 * max), max / 2);
    assert_eq!(next_cap(max, 8 * max), 4096, "spent: a small cap, never zero");
    assert_eq!(next_cap(max, usize::MAX), 4096);
    assert_eq!(next_cap(1024, 1 << 30), 1024, "never above the per-stream cap");
  }

  #[test]
  fn statuses() {
    let r = |exit_code, timed_out| ExecResult {
      exit_code,
      stdout: vec![],
      stderr: vec![],
      duration_ms: 1.0,
      timed_out,
      truncated: false,
      signal: None,
      max_rss_kb: None,
    };
    assert_eq!(status_of(&r(0, false), None), Status::Completed);
    assert_eq!(status_of(&r(1, false), None), Status::Failed);
    assert_eq!(status_of(&r(124, true), None), Status::Timeout);
    let failing = Tests { framework: Some(Framework::Jest), summary: TestSummary { failed: 1, ..Default::default() } };
    assert_eq!(status_of(&r(0, false), Some(&failing)), Status::Failed, "a failed test fails the command even at exit 0");
  }
}
