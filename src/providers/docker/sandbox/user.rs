//! Who runs the sandbox's commands.
//!
//! `docker.user` when given; otherwise the image's configured `User` unless that is empty or root;
//! otherwise [`DEFAULT_USER`] (1000:1000), with `HOME=/tmp` unless the configured `env` sets `HOME`
//! (uid 1000 has no home directory in most images, and the root filesystem is read-only).

/// The user of a sandbox whose image would run as root and whose config names no user.
pub const DEFAULT_USER: &str = "1000:1000";
/// `HOME` given to [`DEFAULT_USER`]: the writable tmpfs.
pub const DEFAULT_HOME: &str = "/tmp";

/// The decision for one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxUser {
  /// `user[:group]` as Docker takes it (name or number)
  pub user: String,
  /// `HOME=...` to add to the environment, if any
  pub home: Option<String>,
}

/// Whether `user[:group]` is root (an empty user means the image's default, root).
pub fn is_root(user: &str) -> bool {
  let name = user.split(':').next().unwrap_or("").trim();
  name.is_empty() || name == "root" || name == "0"
}

pub fn decide(configured: Option<&str>, image_user: Option<&str>, env_has_home: bool) -> SandboxUser {
  if let Some(u) = configured.filter(|u| !u.trim().is_empty()) {
    return SandboxUser { user: u.to_string(), home: None };
  }
  match image_user.filter(|u| !is_root(u)) {
    Some(u) => SandboxUser { user: u.to_string(), home: None },
    None => SandboxUser { user: DEFAULT_USER.into(), home: (!env_has_home).then(|| format!("HOME={DEFAULT_HOME}")) },
  }
}

/// The numeric uid and gid of `uid[:gid]`, for the workspace's ownership (names cannot be resolved
/// outside the image).
pub fn numeric_ids(user: &str) -> (Option<u32>, Option<u32>) {
  let mut parts = user.splitn(2, ':');
  let uid = parts.next().and_then(|u| u.parse().ok());
  let gid = uid.and(parts.next().and_then(|g| g.parse().ok()));
  (uid, gid)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn configured_user_wins() {
    assert_eq!(decide(Some("root"), Some("node"), false), SandboxUser { user: "root".into(), home: None });
    assert_eq!(decide(Some("2000:3000"), None, false).user, "2000:3000");
  }

  #[test]
  fn non_root_image_user_is_kept() {
    assert_eq!(decide(None, Some("node"), false), SandboxUser { user: "node".into(), home: None });
    assert_eq!(decide(None, Some("999:999"), false).user, "999:999");
  }

  #[test]
  fn root_or_empty_image_user_becomes_1000_with_home_in_tmp() {
    for image_user in [None, Some(""), Some("root"), Some("0"), Some("0:0"), Some("root:wheel")] {
      let d = decide(None, image_user, false);
      assert_eq!(d, SandboxUser { user: "1000:1000".into(), home: Some("HOME=/tmp".into()) }, "{image_user:?}");
    }
    assert_eq!(decide(Some(""), Some("root"), true), SandboxUser { user: "1000:1000".into(), home: None });
  }

  #[test]
  fn numeric_ids_only_for_numbers() {
    assert_eq!(numeric_ids("1000:1000"), (Some(1000), Some(1000)));
    assert_eq!(numeric_ids("1000"), (Some(1000), None));
    assert_eq!(numeric_ids("node"), (None, None));
    assert_eq!(numeric_ids("node:1000"), (None, None));
  }
}
