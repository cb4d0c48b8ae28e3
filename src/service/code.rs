//! `runCode` (seed 002: code by language) and `runTests` (seed 004: run a project's tests and
//! read the summary) on top of an ordinary sandbox command.
//!
//! runCode writes the code to a hidden file in the working directory (`.agentic-sandbox-<pid>.<ext>`,
//! removed afterwards) and runs the language's interpreter on it there, so the code sees the
//! workspace as its own directory: Python imports and Node `require('./x')` of workspace files
//! work, and `node_modules` / the pip target of `installPackages` are found. The code travels on
//! the command's stdin, so no size limit of an argument list applies and nothing is quoted.

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use crate::core::process::OutputSink;
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::sandbox::AnySandbox;
use crate::service::testparse::{self, Framework, TestSummary};
use crate::core::types::{ExecOptions, ExecResult};

pub const LANGUAGES: [&str; 5] = ["python", "javascript", "typescript", "bash", "go"];

/// The part of the wrapper script that runs `$f` (the code file) for `language`.
fn runner(language: &str) -> Result<(&'static str, &'static str)> {
  Ok(match language {
    "python" => (
      "py",
      r#"if command -v python3 >/dev/null 2>&1; then py=python3; else py=python; fi; PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$py" "$f""#,
    ),
    "javascript" => ("js", r#"node "$f""#),
    "typescript" => (
      "ts",
      r#"if [ -x node_modules/.bin/tsx ]; then node_modules/.bin/tsx "$f"; elif command -v tsx >/dev/null 2>&1; then tsx "$f"; else echo "runCode: typescript needs tsx in the sandbox (install it with installPackages: ['tsx'] on a node template, or use an image that has it)" >&2; rm -f "$f"; exit 127; fi"#,
    ),
    "bash" => ("sh", r#"if command -v bash >/dev/null 2>&1; then bash "$f"; else sh "$f"; fi"#),
    // /tmp is mounted noexec in the sandbox: `go run` must link and run its binary elsewhere
    "go" => (
      "go",
      // and go skips files whose names start with '.': the code runs as main.go in a hidden directory
      r#"d="${f%.go}-go"; mkdir -p "$d/tmp" && mv "$f" "$d/main.go" && GOTMPDIR="$PWD/$d/tmp" GOCACHE="${GOCACHE:-/tmp/go-cache}" GOPATH="${GOPATH:-/tmp/go}" go run "./$d/main.go"; rc=$?; rm -rf "$d"; (exit $rc)"#,
    ),
    other => {
      return Err(SandboxError::invalid_argument(format!(
        "language {other:?} is not supported; use one of {}",
        LANGUAGES.join(", ")
      )))
    }
  })
}

/// The `sh -c` script of a runCode call: code from stdin into the hidden file `$1`, run it,
/// remove it. Returns the script and the file's extension.
pub fn code_script(language: &str) -> Result<(String, &'static str)> {
  let (ext, run) = runner(language)?;
  Ok((
    format!(
      r#"f="$1"; cat > "$f" || {{ echo "runCode: cannot write $PWD/$f (is the working directory writable?)" >&2; exit 126; }}; {run}; rc=$?; rm -f "$f"; exit $rc"#
    ),
    ext,
  ))
}

#[derive(Debug, Clone)]
pub struct CodeRun {
  pub language: String,
  pub result: ExecResult,
}

#[derive(Debug, Clone)]
pub struct TestRun {
  pub framework: Option<Framework>,
  pub command: String,
  pub result: ExecResult,
  pub summary: TestSummary,
}

#[derive(Default)]
pub struct CodeOptions {
  pub language: Option<String>,
  pub timeout: Option<f64>,
  pub env: BTreeMap<String, String>,
  pub workdir: Option<String>,
  /// per-stream output cap in bytes (default 16 MiB)
  pub max_output_bytes: Option<usize>,
  /// output as it arrives
  pub sink: Option<OutputSink>,
  /// kills the run (ABORTED)
  pub abort: Option<oneshot::Receiver<()>>,
}

pub async fn run_code(sb: &AnySandbox, code: &str, opts: CodeOptions) -> Result<CodeRun> {
  let config = sb.config();
  let language = match opts.language {
    Some(l) => l.to_ascii_lowercase(),
    None => crate::core::templates::default_language(config.template.as_deref()).to_string(),
  };
  let language = match language.as_str() {
    "py" | "python3" => "python".to_string(),
    "js" | "node" | "nodejs" => "javascript".to_string(),
    "ts" => "typescript".to_string(),
    "sh" | "shell" => "bash".to_string(),
    "golang" => "go".to_string(),
    _ => language,
  };
  let (script, ext) = code_script(&language)?;
  // named here, not by the shell, so that a run killed by its timeout can be cleaned up after
  let file = format!(".agentic-sandbox-{:016x}.{ext}", rand::random::<u64>());
  let dir = match &opts.workdir {
    Some(w) => crate::core::paths::resolve(&config.workdir, w)?,
    None => config.workdir.clone(),
  };
  let interpreter = match language.as_str() {
    "python" => "python3",
    "javascript" => "node",
    "typescript" => "tsx",
    "bash" => "bash",
    _ => "go",
  };
  let exec = ExecOptions {
    timeout: opts.timeout,
    env: opts.env,
    workdir: opts.workdir,
    stdin: Some(code.as_bytes().to_vec()),
    max_output_bytes: opts.max_output_bytes,
    ..Default::default()
  };
  let label = format!("runCode ({language}, {} bytes)", code.len());
  let args = ["-c".to_string(), script, format!("runCode-{language}"), file.clone()];
  let result = sb.execute_as((interpreter, &[]), &label, "/bin/sh", &args, exec, opts.sink, opts.abort).await?;
  if result.timed_out || result.signal.is_some() {
    // the wrapper was killed before it could remove the code (and Go's directory)
    let base = format!("{}/{file}", dir.trim_end_matches('/'));
    let _ = sb.delete_file(&base, false).await;
    if language == "go" {
      let _ = sb.delete_file(&format!("{}-go", base.trim_end_matches(".go")), true).await;
    }
  }
  Ok(CodeRun { language, result })
}

#[derive(Default)]
pub struct TestOptions {
  pub framework: Option<String>,
  pub command: Option<String>,
  pub timeout: Option<f64>,
  pub env: BTreeMap<String, String>,
  pub workdir: Option<String>,
  /// per-stream output cap in bytes (default 16 MiB); the summary is parsed from what was kept
  pub max_output_bytes: Option<usize>,
  pub sink: Option<OutputSink>,
  pub abort: Option<oneshot::Receiver<()>>,
}

/// Which framework a project uses, from its top-level files and package.json.
async fn detect(sb: &AnySandbox, dir: &str) -> Result<Option<Framework>> {
  let files = sb.list_files(dir, true).await?;
  let names: Vec<String> = files.iter().map(|f| f.rsplit('/').next().unwrap_or(f).to_string()).collect();
  let package_json = if names.iter().any(|n| n == "package.json") {
    // a package.json is small; a huge one is not worth loading to detect a framework
    let op = sb.read_file_max(&format!("{}/package.json", dir.trim_end_matches('/')), 1 << 20).await;
    op.content.map(|c| String::from_utf8_lossy(&c).into_owned())
  } else {
    None
  };
  Ok(testparse::detect(&names, package_json.as_deref()))
}

pub async fn run_tests(sb: &AnySandbox, opts: TestOptions) -> Result<TestRun> {
  let config = sb.config();
  let dir = match &opts.workdir {
    Some(w) => crate::core::paths::resolve(&config.workdir, w)?,
    None => config.workdir.clone(),
  };
  let framework = match &opts.framework {
    Some(f) => Some(Framework::parse_name(f).ok_or_else(|| {
      SandboxError::invalid_argument(format!("framework {f:?} is not supported; use 'jest', 'vitest', 'pytest' or 'go' (or give a command)"))
    })?),
    None => detect(sb, &dir).await?,
  };
  let command = match (&opts.command, framework) {
    (Some(c), _) if !c.trim().is_empty() => c.clone(),
    (Some(_), _) => return Err(SandboxError::invalid_argument("command must not be empty")),
    (None, Some(f)) => testparse::default_command(f).to_string(),
    (None, None) => {
      return Err(SandboxError::new(
        ErrorCode::InvalidArgument,
        format!("cannot tell which test framework the project in {dir} uses (no package.json naming jest or vitest, no go.mod, no pytest files); pass framework or command"),
      ))
    }
  };
  let mut env: BTreeMap<String, String> =
    // no .pyc: Python reuses a stale one when a fix keeps the size and the second of the mtime
    [("CI", "1"), ("NO_COLOR", "1"), ("FORCE_COLOR", "0"), ("PYTHONDONTWRITEBYTECODE", "1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
  env.extend(opts.env);
  let exec = ExecOptions { timeout: opts.timeout, env, workdir: Some(dir), max_output_bytes: opts.max_output_bytes, ..Default::default() };
  // the policy judges the user's own command, or the framework's program for ours
  let args = ["-c".to_string(), command.clone()];
  let shown: (&str, &[String]) = match (&opts.command, framework) {
    (Some(_), _) | (None, None) => ("/bin/sh", &args),
    (None, Some(f)) => (f.program(), &[]),
  };
  let label = format!("runTests ({})", framework.map(|f| f.as_str()).unwrap_or("custom command"));
  let result = sb.execute_as(shown, &label, "/bin/sh", &args, exec, opts.sink, opts.abort).await?;
  let output = format!("{}\n{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
  let (framework, summary) = match framework {
    Some(f) => (Some(f), testparse::parse(f, &output)),
    // a custom command without a framework: the first parser that recognises the output
    None => [Framework::Jest, Framework::Vitest, Framework::Pytest, Framework::Go]
      .into_iter()
      .map(|f| (Some(f), testparse::parse(f, &output)))
      .find(|(_, s)| s.parsed)
      .unwrap_or((None, TestSummary::default())),
  };
  Ok(TestRun { framework, command, result, summary })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn scripts() {
    for l in LANGUAGES {
      let (s, _) = code_script(l).unwrap();
      assert!(s.contains("cat > \"$f\"") && s.contains("rm -f \"$f\""), "{s}");
    }
    let (go, ext) = code_script("go").unwrap();
    assert!(go.contains("GOTMPDIR") && go.contains("main.go") && ext == "go");
    let e = code_script("cobol").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("python, javascript"));
  }
}
