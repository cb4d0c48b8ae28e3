//! `captureFiles`: the workspace's files that match `capturePatterns`, read back after the run.
//!
//! - The workspace is listed recursively (through the sandbox); each file's path relative to the
//!   workspace is matched with globset. A pattern without `/` matches the base name at any depth
//!   (`*.js` finds `src/a.js`); a pattern with `/` matches the whole relative path (`src/*.js`,
//!   `**/test/*.js`). No patterns: every file. An empty list: no file.
//! - Dotfiles and dot-directories are skipped unless `captureDotfiles` is set.
//! - Text (valid UTF-8 without NUL) comes back as `content` with `encoding: 'utf8'`; anything else
//!   as base64 with `encoding: 'base64'`. A file larger than `captureMaxFileBytes` (default 1 MiB)
//!   is listed with empty content and `skipped` saying why; at most `captureMaxFiles` (default
//!   1000) files are returned.

use std::sync::Arc;

use base64::Engine as _;
use globset::{GlobSet, GlobSetBuilder};

use super::tools;
use crate::core::sandbox::AnySandbox;
use crate::core::error::{Result, SandboxError};

pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;
pub const DEFAULT_MAX_FILES: usize = 1000;

#[derive(Debug, Clone)]
pub struct CaptureSpec {
  /// `None`: every file
  pub patterns: Option<Vec<String>>,
  pub dotfiles: bool,
  pub max_file_bytes: u64,
  pub max_files: usize,
}

impl Default for CaptureSpec {
  fn default() -> Self {
    Self { patterns: None, dotfiles: false, max_file_bytes: DEFAULT_MAX_FILE_BYTES, max_files: DEFAULT_MAX_FILES }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapturedFile {
  /// relative to the workspace
  pub path: String,
  pub content: String,
  /// "utf8" or "base64"
  pub encoding: &'static str,
  pub size: u64,
  pub skipped: Option<String>,
}

/// Compiles the patterns (INVALID_CONFIG naming the bad one).
pub fn matcher(patterns: &[String]) -> Result<GlobSet> {
  let mut b = GlobSetBuilder::new();
  for p in patterns {
    b.add(tools::glob_of(p).map_err(|e| SandboxError::invalid_config(format!("capturePatterns: {e}")))?);
  }
  b.build().map_err(|e| SandboxError::invalid_config(format!("capturePatterns: {e}")))
}

/// How a file's bytes are returned.
pub fn encode(data: &[u8]) -> (String, &'static str) {
  match std::str::from_utf8(data) {
    Ok(s) if !s.contains('\0') => (s.to_string(), "utf8"),
    _ => (base64::engine::general_purpose::STANDARD.encode(data), "base64"),
  }
}

pub async fn capture(sb: &Arc<AnySandbox>, workspace: &str, spec: &CaptureSpec) -> Result<Vec<CapturedFile>> {
  let set = match &spec.patterns {
    Some(p) if p.is_empty() => return Ok(Vec::new()),
    Some(p) => Some(matcher(p)?),
    None => None,
  };
  let entries = sb.list_files_detailed(workspace, true, spec.dotfiles).await?;
  let mut out = Vec::new();
  for e in entries {
    if e.kind != "file" || set.as_ref().is_some_and(|s| !s.is_match(&e.path)) {
      continue;
    }
    if out.len() >= spec.max_files {
      tracing::warn!(max = spec.max_files, "captureMaxFiles reached; later files are not captured");
      break;
    }
    let size = e.size as u64;
    if size > spec.max_file_bytes {
      out.push(CapturedFile {
        path: e.path,
        content: String::new(),
        encoding: "utf8",
        size,
        skipped: Some(format!("larger than captureMaxFileBytes ({} bytes)", spec.max_file_bytes)),
      });
      continue;
    }
    let full = format!("{}/{}", workspace.trim_end_matches('/'), e.path);
    // the file may have grown since the listing: read no more than the cap allows
    let limit = spec.max_file_bytes.min(crate::core::sandbox::MAX_READ_BYTES as u64);
    let op = sb.read_file_max(&full, limit as usize + 1).await;
    match op.content.filter(|_| op.success) {
      Some(data) if data.len() as u64 > limit => out.push(CapturedFile {
        path: e.path,
        content: String::new(),
        encoding: "utf8",
        size,
        skipped: Some(format!("larger than {limit} bytes when it was read (captureMaxFileBytes, at most {} bytes)", crate::core::sandbox::MAX_READ_BYTES)),
      }),
      Some(data) => {
        let (content, encoding) = encode(&data);
        out.push(CapturedFile { path: e.path, content, encoding, size: data.len() as u64, skipped: None });
      }
      None => out.push(CapturedFile {
        path: e.path,
        content: String::new(),
        encoding: "utf8",
        size,
        skipped: Some(format!("could not be read: {}", op.error.unwrap_or_default())),
      }),
    }
  }
  Ok(out)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn patterns_and_encoding() {
    let m = matcher(&["*.js".into(), "docs/*.md".into()]).unwrap();
    assert!(m.is_match("a.js") && m.is_match("src/lib/b.js") && m.is_match("docs/x.md"));
    assert!(!m.is_match("x.md") && !m.is_match("docs/sub/x.md") && !m.is_match("a.json"));
    assert_eq!(matcher(&["a[".into()]).unwrap_err().code, crate::core::error::ErrorCode::InvalidConfig);
    assert_eq!(encode(b"hi\n"), ("hi\n".to_string(), "utf8"));
    assert_eq!(encode(&[0, 1, 255]), ("AAH/".to_string(), "base64"));
  }
}
