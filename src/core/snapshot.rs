//! Sandbox snapshots, the provider-independent part: what a snapshot is (`SnapshotInfo`), how
//! snapshots are named, and the labels that describe one on its image. The Docker provider makes,
//! lists, restores and deletes them (`providers::docker::snapshot`).

use std::collections::HashMap;

use crate::core::error::{ErrorCode, Result, SandboxError};

/// Every snapshot image has it, set to `true` (the partial image of a snapshot in progress has it
/// set to `partial`).
pub const LABEL_SNAPSHOT: &str = "agentic-sandbox.snapshot";
pub const LABEL_NAME: &str = "agentic-sandbox.snapshot-name";
/// The id of the sandbox the snapshot was taken from.
pub const LABEL_SOURCE: &str = "agentic-sandbox.snapshot-source";
/// The source sandbox's workdir (where the workspace files are in the image).
pub const LABEL_WORKDIR: &str = "agentic-sandbox.snapshot-workdir";
/// The image the chain of snapshots started from.
pub const LABEL_BASE: &str = "agentic-sandbox.snapshot-base";
/// Milliseconds since the Unix epoch.
pub const LABEL_CREATED: &str = "agentic-sandbox.snapshot-created";

/// The repository of snapshot images: `agentic-sandbox-snapshot/<name>:latest`.
pub const REPOSITORY_PREFIX: &str = "agentic-sandbox-snapshot/";
pub const TAG: &str = "latest";
pub const MAX_NAME_LEN: usize = 64;

/// One snapshot: a Docker image holding a sandbox's filesystem (its container's writable layer
/// and its workspace).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
  pub name: String,
  /// the image's id (`sha256:...`)
  pub image: String,
  /// the sandbox it was taken from
  pub sandbox_id: String,
  /// milliseconds since the Unix epoch
  pub created_at: f64,
  /// the image's size as the engine reports it (its base image included)
  pub size_bytes: f64,
  /// where the workspace files are; a sandbox made from the snapshot defaults to it
  pub workdir: String,
  /// the image the snapshot (or the first snapshot of a chain) was taken on
  pub base_image: String,
}

/// Checks a snapshot name: 1–64 of lowercase letters, digits, `-`, `_`, `.`, starting with a
/// letter or digit (so `agentic-sandbox-snapshot/<name>` is a valid Docker repository name).
pub fn validate_name(name: &str, field: &str) -> Result<()> {
  let how = "use 1 to 64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit (e.g. 'my-project.v2')";
  if name.is_empty() || name.len() > MAX_NAME_LEN {
    return Err(SandboxError::invalid_argument(format!("{field} {name:?} is not a valid snapshot name: {how}")));
  }
  let first_ok = name.as_bytes()[0].is_ascii_lowercase() || name.as_bytes()[0].is_ascii_digit();
  let all_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
  // Docker's repository grammar: separators ('.', '_', '__', '-'+) sit between alphanumerics
  let ends_ok = name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
  let seps_ok = !name.contains("..") && !name.contains("___") && !name.contains("._") && !name.contains("_.") && !name.contains("-.")
    && !name.contains(".-") && !name.contains("_-") && !name.contains("-_");
  if !(first_ok && all_ok && ends_ok && seps_ok) {
    return Err(SandboxError::invalid_argument(format!(
      "{field} {name:?} is not a valid snapshot name: {how}; it must also end with a letter or digit, and separators may not follow each other (Docker's image name rules)"
    )));
  }
  Ok(())
}

/// The image reference of snapshot `name`.
pub fn image_ref(name: &str) -> String {
  format!("{REPOSITORY_PREFIX}{name}:{TAG}")
}

/// A name for a snapshot taken without one: the sandbox's id and the time (`docker-ab12…-1733338000123`).
pub fn default_name(sandbox_id: &str, now_ms: f64) -> String {
  let id: String = sandbox_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>().to_ascii_lowercase();
  let id = id.trim_matches('-');
  let id = if id.is_empty() { "sandbox" } else { id };
  let mut n = format!("{}-{}", &id[..id.len().min(40)], now_ms.max(0.0) as u64);
  n.truncate(MAX_NAME_LEN);
  n
}

/// The snapshot an image's labels describe, or `None` for an image that is not a (finished) snapshot.
pub fn from_labels(labels: &HashMap<String, String>, image_id: &str, size_bytes: f64) -> Option<SnapshotInfo> {
  if labels.get(LABEL_SNAPSHOT).map(String::as_str) != Some("true") {
    return None;
  }
  let name = labels.get(LABEL_NAME).filter(|n| validate_name(n, "").is_ok())?.clone();
  let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
  Some(SnapshotInfo {
    name,
    image: image_id.to_string(),
    sandbox_id: get(LABEL_SOURCE),
    created_at: labels.get(LABEL_CREATED).and_then(|c| c.parse::<f64>().ok()).filter(|c| c.is_finite()).unwrap_or(0.0),
    size_bytes,
    workdir: labels.get(LABEL_WORKDIR).filter(|w| w.starts_with('/')).cloned().unwrap_or_else(|| "/workspace".into()),
    base_image: get(LABEL_BASE),
  })
}

/// The labels of a finished snapshot image.
pub fn labels(info: &SnapshotInfo) -> HashMap<String, String> {
  HashMap::from([
    (LABEL_SNAPSHOT.to_string(), "true".to_string()),
    (LABEL_NAME.to_string(), info.name.clone()),
    (LABEL_SOURCE.to_string(), info.sandbox_id.clone()),
    (LABEL_WORKDIR.to_string(), info.workdir.clone()),
    (LABEL_BASE.to_string(), info.base_image.clone()),
    (LABEL_CREATED.to_string(), format!("{}", info.created_at as u64)),
  ])
}

/// SNAPSHOT_NOT_FOUND for `name`.
pub fn not_found(name: &str) -> SandboxError {
  SandboxError::new(
    ErrorCode::SnapshotNotFound,
    format!("snapshot {name:?} not found on the Docker engine (image {}); manager.listSnapshots() lists the snapshots there", image_ref(name)),
  )
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn good_names_pass() {
    for n in ["a", "0", "my-project", "proj_1.v2", "a-b-c", "a__b", &"x".repeat(64)] {
      assert!(validate_name(n, "name").is_ok(), "{n}");
    }
  }

  #[test]
  fn bad_names_say_how() {
    for n in ["", "A", "-a", ".a", "_a", "a-", "a.", "with space", "a/b", "a:b", "ünïcode", "a..b", "a._b", "a-.b", &"x".repeat(65)] {
      let e = validate_name(n, "name").unwrap_err();
      assert_eq!(e.code, ErrorCode::InvalidArgument, "{n}");
      assert!(e.message.contains("lowercase letters, digits"), "{}", e.message);
    }
  }

  #[test]
  fn default_names_are_valid_and_unique_per_time() {
    let a = default_name("docker-0123456789abcdef", 1_733_338_000_123.0);
    assert_eq!(a, "docker-0123456789abcdef-1733338000123");
    assert!(validate_name(&a, "name").is_ok());
    assert_ne!(a, default_name("docker-0123456789abcdef", 1_733_338_000_124.0));
    let odd = default_name("--My_Box!!--", 5.0);
    assert!(validate_name(&odd, "name").is_ok(), "{odd}");
    assert!(validate_name(&default_name(&"z".repeat(200), 1e15), "name").is_ok());
  }

  #[test]
  fn labels_round_trip() {
    let info = SnapshotInfo {
      name: "proj.v1".into(),
      image: "sha256:abc".into(),
      sandbox_id: "docker-00".into(),
      created_at: 1_733_338_000_123.0,
      size_bytes: 42.0,
      workdir: "/home/agent/work".into(),
      base_image: "agentic-sandbox/debian:12".into(),
    };
    assert_eq!(from_labels(&labels(&info), "sha256:abc", 42.0), Some(info));
  }

  #[test]
  fn partial_and_foreign_images_are_not_snapshots() {
    let mut l = HashMap::from([(LABEL_SNAPSHOT.to_string(), "partial".to_string()), (LABEL_NAME.to_string(), "x".to_string())]);
    assert_eq!(from_labels(&l, "id", 0.0), None);
    l.insert(LABEL_SNAPSHOT.into(), "true".into());
    l.insert(LABEL_NAME.into(), "Bad Name".into());
    assert_eq!(from_labels(&l, "id", 0.0), None);
    l.insert(LABEL_NAME.into(), "ok".into());
    let s = from_labels(&l, "id", 0.0).unwrap();
    assert_eq!((s.workdir.as_str(), s.created_at), ("/workspace", 0.0));
    assert_eq!(from_labels(&HashMap::new(), "id", 0.0), None);
  }
}
