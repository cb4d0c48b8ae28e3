//! Files through envd: bytes over `GET/POST /files` (binary-safe; uploads as
//! `application/octet-stream`, or `multipart/form-data` for envd older than 0.5.7; envd creates
//! parent directories), listings and removal over `filesystem.Filesystem` (`ListDir`, `Stat`,
//! `Remove`). Writes are not atomic: envd truncates and writes the file in place.

use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use serde_json::json;

use super::client::{transport_rpc, Remote, Retry};
use super::connect::{parse_entry, Entry, RpcError};
use super::sandbox::{E2bSandbox, Shared};
use crate::core::error::Result;
use crate::core::types::{is_hidden, FileInfo, FileOp};

/// Largest file `read_file` returns (as the Docker provider).
pub const MAX_READ: usize = 256 * 1024 * 1024;
/// `ListDir` depth for recursive listings: deeper than any real tree (PATH_MAX allows ~2048).
const RECURSIVE_DEPTH: u32 = 4096;

/// `/files?path=…` (plus `username=user` for envd before 0.4.0, which had no default user).
fn files_url(base: Url, remote: &Remote, path: &str) -> Url {
  let mut url = base;
  url.query_pairs_mut().append_pair("path", path);
  if !remote.envd_at_least((0, 4, 0)) {
    url.query_pairs_mut().append_pair("username", "user");
  }
  url
}

/// A one-part multipart body (part `file`) for envd without octet-stream uploads.
fn multipart(path: &str, content: &[u8]) -> (String, Vec<u8>) {
  let boundary = format!("agentic-sandbox-{:016x}", rand::random::<u64>());
  let name: String = path.rsplit('/').next().unwrap_or("file").chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect();
  let mut body = format!(
    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
  )
  .into_bytes();
  body.extend_from_slice(content);
  body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
  (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Paths of `entries` relative to the listed directory `dir`. envd reports absolute paths under
/// the directory it walked, which is the symlink-resolved one when `dir` is a link: then the
/// common parent of the direct children stands in for `dir`.
fn relative_paths(entries: &[Entry], dir: &str) -> Vec<String> {
  let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
  let parent = |p: &str| p.rsplit_once('/').map(|(a, _)| a.to_string()).unwrap_or_default();
  let walked = entries.iter().map(|e| parent(&e.path)).min_by_key(String::len).map(|p| format!("{p}/"));
  entries
    .iter()
    .map(|e| {
      e.path
        .strip_prefix(&prefix)
        .or_else(|| walked.as_deref().and_then(|w| e.path.strip_prefix(w)))
        .filter(|r| !r.is_empty())
        .unwrap_or(&e.name)
        .to_string()
    })
    .collect()
}

impl E2bSandbox {
  /// The resolved path of a file operation and the running sandbox to send it to, or the failed
  /// `FileOp` to return (file operations never fail with an error).
  fn file_target(&self, path: &str) -> std::result::Result<(String, Arc<Shared>, Arc<Remote>), FileOp> {
    let full = self.resolve_path(path).map_err(|e| FileOp::fail(path, e.message))?;
    let (shared, remote) = self.running().map_err(|e| FileOp::fail(&full, e.message))?;
    Ok((full, shared, remote))
  }

  fn file_error(&self, e: &RpcError, what: &str) -> String {
    if e.http_status == 507 {
      return format!("{what}: not enough disk space in the sandbox: {}", e.message);
    }
    self.rpc_failed(e, what).message
  }

  /// Write `content` (binary-safe) to `path`, creating parent directories. Never fails: errors
  /// come back as `FileOp::fail`.
  pub async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let (full, shared, remote) = match self.file_target(path) {
      Ok(t) => t,
      Err(op) => return op,
    };
    let url = match shared.client.envd_url(&remote, "files") {
      Ok(u) => files_url(u, &remote, &full),
      Err(e) => return FileOp::fail(&full, e.message),
    };
    let (content_type, body) = if remote.envd_at_least((0, 5, 7)) {
      ("application/octet-stream".to_string(), content)
    } else {
      multipart(&full, &content)
    };
    let timeout = self.opts.request_timeout + std::time::Duration::from_secs((body.len() >> 20) as u64);
    let body = bytes::Bytes::from(body);
    let build = || {
      shared.client.envd(&remote, Method::POST, url.clone()).timeout(timeout).header(CONTENT_TYPE, content_type.as_str()).body(body.clone())
    };
    let r = shared.client.exchange("POST envd /files", Retry::Once, 1 << 20, &build).await;
    self.touch();
    match r {
      Ok(ex) if (200..300).contains(&ex.status) => FileOp::ok(&full, None),
      Ok(ex) => FileOp::fail(&full, self.file_error(&RpcError::from_response(ex.status, &ex.body), &format!("write {full}"))),
      Err(t) => FileOp::fail(&full, self.file_error(&transport_rpc(t), &format!("write {full}"))),
    }
  }

  /// The bytes of `path` (up to 256 MB). Never fails: errors come back as `FileOp::fail`.
  pub async fn read_file(&self, path: &str) -> FileOp {
    let (full, shared, remote) = match self.file_target(path) {
      Ok(t) => t,
      Err(op) => return op,
    };
    let url = match shared.client.envd_url(&remote, "files") {
      Ok(u) => files_url(u, &remote, &full),
      Err(e) => return FileOp::fail(&full, e.message),
    };
    let timeout = self.opts.request_timeout.max(std::time::Duration::from_secs(300));
    let build = || shared.client.envd(&remote, Method::GET, url.clone()).timeout(timeout);
    let r = shared.client.exchange("GET envd /files", Retry::Idempotent, MAX_READ, &build).await;
    self.touch();
    match r {
      Ok(ex) if ex.too_large => FileOp::fail(&full, format!("file is larger than {} MB; read it in parts with execute()", MAX_READ >> 20)),
      Ok(ex) if (200..300).contains(&ex.status) => FileOp::ok(&full, Some(ex.body)),
      Ok(ex) => FileOp::fail(&full, self.file_error(&RpcError::from_response(ex.status, &ex.body), &format!("read {full}"))),
      Err(t) => FileOp::fail(&full, self.file_error(&transport_rpc(t), &format!("read {full}"))),
    }
  }

  /// At most `max` bytes of `path`: a longer file gives its first `max` bytes (the body read
  /// stops there). Never fails: errors come back as `FileOp::fail`.
  pub async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let (full, shared, remote) = match self.file_target(path) {
      Ok(t) => t,
      Err(op) => return op,
    };
    let url = match shared.client.envd_url(&remote, "files") {
      Ok(u) => files_url(u, &remote, &full),
      Err(e) => return FileOp::fail(&full, e.message),
    };
    let timeout = self.opts.request_timeout.max(std::time::Duration::from_secs(300));
    let build = || shared.client.envd(&remote, Method::GET, url.clone()).timeout(timeout);
    let r = shared.client.exchange_prefix("GET envd /files", Retry::Idempotent, max.min(MAX_READ), &build).await;
    self.touch();
    match r {
      Ok(ex) if (200..300).contains(&ex.status) => FileOp::ok(&full, Some(ex.body)),
      Ok(ex) => FileOp::fail(&full, self.file_error(&RpcError::from_response(ex.status, &ex.body), &format!("read {full}"))),
      Err(t) => FileOp::fail(&full, self.file_error(&transport_rpc(t), &format!("read {full}"))),
    }
  }

  /// Like `rm -f` (a missing path is a success); directories only with `recursive`.
  pub async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    let (full, shared, remote) = match self.file_target(path) {
      Ok(t) => t,
      Err(op) => return op,
    };
    self.touch();
    match shared.client.unary(&remote, "filesystem.Filesystem/Stat", &json!({ "path": full }), Retry::Idempotent).await {
      Err(e) if e.code == "not_found" => return FileOp::ok(&full, None),
      Err(e) => return FileOp::fail(&full, self.file_error(&e, &format!("delete {full}"))),
      Ok(v) if !recursive && parse_entry(&v["entry"]).kind == "directory" => {
        return FileOp::fail(&full, format!("{full} is a directory; pass recursive: true to remove it"))
      }
      Ok(_) => {}
    }
    match shared.client.unary(&remote, "filesystem.Filesystem/Remove", &json!({ "path": full }), Retry::Idempotent).await {
      Ok(_) => FileOp::ok(&full, None),
      Err(e) if e.code == "not_found" => FileOp::ok(&full, None),
      Err(e) => FileOp::fail(&full, self.file_error(&e, &format!("delete {full}"))),
    }
  }

  async fn list_dir(&self, full: &str, depth: u32) -> Result<Vec<Entry>> {
    let (shared, remote) = self.running()?;
    let v = shared
      .client
      .unary(&remote, "filesystem.Filesystem/ListDir", &json!({ "path": full, "depth": depth }), Retry::Idempotent)
      .await
      .map_err(|e| self.rpc_failed(&e, &format!("list {full}")))?;
    self.touch();
    Ok(v["entries"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(parse_entry).collect())
  }

  /// Entry names of a directory, sorted (like `ls -1`: no dotfiles unless `all`).
  pub async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    let full = self.resolve_path(path)?;
    let mut names: Vec<String> = self.list_dir(&full, 1).await?.into_iter().map(|e| e.name).filter(|n| all || !n.starts_with('.')).collect();
    names.sort();
    Ok(names)
  }

  /// Entries of a directory (of the whole tree with `recursive`) with paths relative to `path`,
  /// sorted by path; no dotfiles (or anything under a dot directory) unless `all`.
  pub async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    let full = self.resolve_path(path)?;
    let entries = self.list_dir(&full, if recursive { RECURSIVE_DEPTH } else { 1 }).await?;
    let rel = relative_paths(&entries, &full);
    let mut out: Vec<FileInfo> = entries
      .into_iter()
      .zip(rel)
      .filter(|(_, r)| all || !is_hidden(r))
      .map(|(e, r)| FileInfo {
        name: r.rsplit('/').next().unwrap_or(&r).to_string(),
        path: r,
        kind: e.kind,
        size: e.size,
        mtime_ms: e.mtime_ms,
        permissions: format!("{:o}", e.mode & 0o7777),
      })
      .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn entry(path: &str) -> Entry {
    Entry { name: path.rsplit('/').next().unwrap().into(), kind: "file", path: path.into(), size: 0.0, mode: 0o644, mtime_ms: 0.0 }
  }

  #[test]
  fn listing_paths_are_relative_to_the_listed_directory() {
    let e = [entry("/home/user/a"), entry("/home/user/d/b")];
    assert_eq!(relative_paths(&e, "/home/user"), vec!["a", "d/b"]);
    // listed through a symlink: envd reports the resolved directory
    let e = [entry("/data/real/a"), entry("/data/real/d"), entry("/data/real/d/b")];
    assert_eq!(relative_paths(&e, "/home/user/link"), vec!["a", "d", "d/b"]);
    assert_eq!(relative_paths(&[entry("/etc")], "/"), vec!["etc"]);
  }

  #[test]
  fn multipart_bodies_carry_one_file_part() {
    let (ct, body) = multipart("/home/user/a\".bin", &[0, 255, 13, 10]);
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n")), "{text}");
    assert!(body.windows(4).any(|w| w == [0, 255, 13, 10]));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
  }
}
