//! Provider-independent values: states, execution results, file operations, stats.

use std::collections::BTreeMap;

/// A process in a sandbox, as every provider lists it (defined with the guest's wire protocol).
pub use crate::providers::docker::protocol::ProcessEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
  Created,
  Starting,
  Running,
  Stopping,
  Stopped,
  Destroyed,
  Error,
}

impl State {
  pub fn as_str(self) -> &'static str {
    match self {
      State::Created => "created",
      State::Starting => "starting",
      State::Running => "running",
      State::Stopping => "stopping",
      State::Stopped => "stopped",
      State::Destroyed => "destroyed",
      State::Error => "error",
    }
  }
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
  /// seconds; `None` uses `limits.timeoutSeconds`
  pub timeout: Option<f64>,
  pub env: BTreeMap<String, String>,
  pub workdir: Option<String>,
  pub max_output_bytes: Option<usize>,
  /// written to the process's stdin, which is then closed
  pub stdin: Option<Vec<u8>>,
  /// Output goes only to the sink: nothing is kept for the result and no lifetime cap applies
  /// (`max_output_bytes` is ignored; the sink's owner caps). For long-lived processes whose
  /// output is consumed piece by piece (code contexts). Providers that cannot do it refuse the
  /// spawn with NOT_SUPPORTED.
  pub stream_only: bool,
}

#[derive(Debug, Clone)]
pub struct ExecResult {
  pub exit_code: i64,
  pub stdout: Vec<u8>,
  pub stderr: Vec<u8>,
  pub duration_ms: f64,
  pub timed_out: bool,
  pub truncated: bool,
  pub signal: Option<String>,
  /// peak RSS of the process tree in KiB, where the engine can tell (the guest engine)
  pub max_rss_kb: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct FileOp {
  pub path: String,
  pub content: Option<Vec<u8>>,
  pub success: bool,
  pub error: Option<String>,
  /// a stable code for failures the caller may act on (QUOTA_EXCEEDED, SANDBOX_NOT_FOUND, ...)
  pub code: Option<crate::core::error::ErrorCode>,
}

impl FileOp {
  pub fn ok(path: &str, content: Option<Vec<u8>>) -> Self {
    Self { path: path.to_string(), content, success: true, error: None, code: None }
  }
  pub fn fail(path: &str, error: impl Into<String>) -> Self {
    Self { path: path.to_string(), content: None, success: false, error: Some(error.into()), code: None }
  }
  pub fn failed_with(path: &str, e: crate::core::error::SandboxError) -> Self {
    Self { path: path.to_string(), content: None, success: false, error: Some(e.message), code: Some(e.code) }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
  /// path relative to the listed directory
  pub path: String,
  pub name: String,
  pub kind: &'static str,
  pub size: f64,
  pub mtime_ms: f64,
  pub permissions: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
  pub memory_usage_mb: f64,
  pub cpu_percent: f64,
  pub disk_usage_mb: f64,
  pub network_rx_mb: f64,
  pub network_tx_mb: f64,
}

#[derive(Debug, Clone)]
pub struct Health {
  pub healthy: bool,
  pub message: Option<String>,
}

/// Parse `find -exec stat -c '%s %Y %a %f %n'` lines (run from inside the listed directory).
pub fn parse_stat_lines(text: &str) -> Vec<FileInfo> {
  let mut out = Vec::new();
  for line in text.lines() {
    let mut it = line.splitn(5, ' ');
    let (Some(size), Some(mtime), Some(perm), Some(raw), Some(name)) = (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
      continue;
    };
    let (Ok(size), Ok(mtime), Ok(raw)) = (size.parse::<f64>(), mtime.parse::<f64>(), u32::from_str_radix(raw, 16)) else {
      continue;
    };
    let kind = match raw & 0o170000 {
      0o100000 => "file",
      0o040000 => "directory",
      0o120000 => "symlink",
      _ => "other",
    };
    let path = name.strip_prefix("./").unwrap_or(name).to_string();
    let base = path.rsplit('/').next().unwrap_or(&path).to_string();
    out.push(FileInfo { path, name: base, kind, size, mtime_ms: mtime * 1000.0, permissions: perm.to_string() });
  }
  out.sort_by(|a, b| a.path.cmp(&b.path));
  out
}

pub fn is_hidden(rel: &str) -> bool {
  rel.split('/').any(|c| c.starts_with('.'))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn stat_lines() {
    let v = parse_stat_lines("12 1700000000 644 81a4 ./a b.txt\n0 1700000001 755 41ed ./d\n7 1 777 a1ff ./d/l\nbroken\n");
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].path, "a b.txt");
    assert_eq!(v[0].kind, "file");
    assert_eq!(v[0].size, 12.0);
    assert_eq!(v[0].mtime_ms, 1_700_000_000_000.0);
    assert_eq!(v[1].kind, "directory");
    assert_eq!(v[2].kind, "symlink");
    assert_eq!(v[2].name, "l");
    assert!(is_hidden(".git/x") && is_hidden("a/.b") && !is_hidden("a/b.c"));
  }
}
