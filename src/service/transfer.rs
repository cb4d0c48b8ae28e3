//! `uploadFile` / `downloadFile` (seed 003): files between the host and a sandbox's workspace.
//!
//! Host paths are checked before anything moves: an upload reads only an existing regular file
//! (not a directory, device or FIFO, which could block forever), within `limits.maxFileSizeMB`
//! before it is read; a download never overwrites an existing host file unless asked to, and
//! writes through a temporary file in the same directory, so a failed download leaves nothing
//! half-written at the destination.

use std::path::{Path, PathBuf};

use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::sandbox::AnySandbox;

pub struct Uploaded {
  pub filename: String,
  /// the absolute path in the sandbox
  pub path: String,
  pub size: u64,
}

fn basename(p: &str) -> Option<&str> {
  p.trim_end_matches('/').rsplit('/').next().filter(|b| !b.is_empty() && *b != "." && *b != "..")
}

pub async fn upload(sb: &AnySandbox, local: &str, remote: Option<&str>) -> Result<Uploaded> {
  if local.is_empty() || local.contains('\0') {
    return Err(SandboxError::invalid_argument("localPath must be a non-empty host path"));
  }
  let meta = tokio::fs::metadata(local).await.map_err(|e| {
    SandboxError::invalid_argument(format!("cannot upload {local}: {e}; give the path of an existing, readable file on this machine"))
  })?;
  if meta.is_dir() {
    return Err(SandboxError::invalid_argument(format!("cannot upload {local}: it is a directory; upload its files one by one")));
  }
  if !meta.is_file() {
    return Err(SandboxError::invalid_argument(format!("cannot upload {local}: it is not a regular file (a device, FIFO or socket)")));
  }
  let max = sb.limits().max_file_size_mb;
  if let Some(max) = max {
    if meta.len() as f64 > max * 1024.0 * 1024.0 {
      return Err(SandboxError::new(
        ErrorCode::QuotaExceeded,
        format!("{local} is {} bytes, over limits.maxFileSizeMB ({max} MB); upload a smaller file or raise the limit (MAX_FILE_SIZE_MB)", meta.len()),
      ));
    }
  }
  let remote = match remote.filter(|r| !r.is_empty()) {
    Some(r) => r.to_string(),
    None => Path::new(local)
      .file_name()
      .and_then(|n| n.to_str())
      .map(str::to_string)
      .ok_or_else(|| SandboxError::invalid_argument(format!("cannot name the upload of {local}; pass remoteName")))?,
  };
  let content = tokio::fs::read(local)
    .await
    .map_err(|e| SandboxError::invalid_argument(format!("cannot read {local}: {e}")))?;
  let size = content.len() as u64;
  let op = sb.write_file(&remote, content).await;
  if !op.success {
    return Err(SandboxError::new(
      op.code.unwrap_or(ErrorCode::ExecutionError),
      op.error.unwrap_or_else(|| format!("writing {remote} failed")),
    ));
  }
  let filename = basename(&op.path).unwrap_or(&remote).to_string();
  Ok(Uploaded { filename, path: op.path, size })
}

/// Where a download goes: `local` (a file path, or a directory to put the file in), else the
/// current directory; refuses to overwrite unless `overwrite`.
fn target(remote: &str, local: Option<&str>, overwrite: bool) -> Result<PathBuf> {
  let name = basename(remote).ok_or_else(|| SandboxError::invalid_argument(format!("remoteName {remote:?} does not name a file")))?;
  let cwd = std::env::current_dir().map_err(|e| SandboxError::invalid_argument(format!("no current directory ({e}); pass localPath")))?;
  let mut path = match local.filter(|l| !l.is_empty()) {
    Some(l) if l.contains('\0') => return Err(SandboxError::invalid_argument("localPath must not contain NUL bytes")),
    Some(l) => cwd.join(l),
    None => cwd.join(name),
  };
  if path.is_dir() {
    path = path.join(name);
  }
  let parent = path.parent().map(Path::to_path_buf).unwrap_or(cwd);
  if !parent.is_dir() {
    return Err(SandboxError::invalid_argument(format!(
      "cannot download to {}: the directory {} does not exist; create it first",
      path.display(),
      parent.display()
    )));
  }
  if path.exists() && (!overwrite || path.is_dir()) {
    return Err(SandboxError::invalid_argument(format!(
      "{} already exists; pass {{ overwrite: true }} or another localPath",
      path.display()
    )));
  }
  Ok(path)
}

pub async fn download(sb: &AnySandbox, remote: &str, local: Option<&str>, overwrite: bool) -> Result<PathBuf> {
  if remote.is_empty() {
    return Err(SandboxError::invalid_argument("remoteName must not be empty"));
  }
  let path = target(remote, local, overwrite)?;
  let op = sb.read_file(remote).await;
  let content = match (op.success, op.content) {
    (true, Some(c)) => c,
    _ => {
      let msg = op.error.unwrap_or_default();
      let missing = msg.contains("No such file") || msg.contains("not found") || msg.contains("does not exist");
      let code = op.code.unwrap_or(if missing { ErrorCode::FileNotFound } else { ErrorCode::ExecutionError });
      return Err(SandboxError::new(code, format!("cannot download {remote}: {msg}")));
    }
  };
  let tmp = path.with_file_name(format!(
    ".{}.agentic-sandbox-{}.part",
    path.file_name().and_then(|n| n.to_str()).unwrap_or("download"),
    rand::random::<u32>()
  ));
  let write = async {
    tokio::fs::write(&tmp, &content).await?;
    if overwrite {
      tokio::fs::rename(&tmp, &path).await
    } else {
      // a hard link fails if the destination appeared meanwhile: never overwrite by accident
      tokio::fs::hard_link(&tmp, &path).await?;
      tokio::fs::remove_file(&tmp).await
    }
  };
  if let Err(e) = write.await {
    let _ = tokio::fs::remove_file(&tmp).await;
    return Err(SandboxError::invalid_argument(format!("cannot write {}: {e}", path.display())));
  }
  Ok(path)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn targets() {
    let dir = std::env::temp_dir().join(format!("as-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    assert_eq!(target("out/r.csv", Some(d), false).unwrap(), dir.join("r.csv"));
    std::fs::write(dir.join("r.csv"), "x").unwrap();
    let e = target("r.csv", Some(d), false).unwrap_err();
    assert!(e.message.contains("already exists"), "{}", e.message);
    assert!(target("r.csv", Some(d), true).is_ok());
    let e = target("r.csv", Some(&format!("{d}/missing/x.csv")), false).unwrap_err();
    assert!(e.message.contains("does not exist"));
    assert!(target("..", None, false).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
