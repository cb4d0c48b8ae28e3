//! Path handling inside the sandbox. Paths are resolved lexically (no host filesystem is ever
//! touched): relative paths join the working directory, `.` and `..` are folded, and `..` never
//! climbs above `/`. The container, not this function, is the security boundary: any path the
//! sandbox user may reach inside the container is allowed.

use crate::core::error::{Result, SandboxError};

/// Fold `.`/`..` and duplicate slashes of an absolute path.
pub fn normalize(path: &str) -> String {
  let mut parts: Vec<&str> = Vec::new();
  for seg in path.split('/') {
    match seg {
      "" | "." => {}
      ".." => {
        parts.pop();
      }
      s => parts.push(s),
    }
  }
  format!("/{}", parts.join("/"))
}

/// Resolve a user path against `workdir`.
pub fn resolve(workdir: &str, path: &str) -> Result<String> {
  if path.is_empty() {
    return Err(SandboxError::invalid_argument("path must not be empty"));
  }
  if path.contains('\0') {
    return Err(SandboxError::invalid_argument("path must not contain NUL bytes"));
  }
  Ok(if path.starts_with('/') { normalize(path) } else { normalize(&format!("{workdir}/{path}")) })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn resolves() {
    assert_eq!(resolve("/workspace", "a.txt").unwrap(), "/workspace/a.txt");
    assert_eq!(resolve("/workspace", "./d/../b.txt").unwrap(), "/workspace/b.txt");
    assert_eq!(resolve("/workspace", "/tmp//x/").unwrap(), "/tmp/x");
    assert_eq!(resolve("/workspace", "../../../../etc/passwd").unwrap(), "/etc/passwd");
    assert_eq!(resolve("/workspace", ".").unwrap(), "/workspace");
    assert!(resolve("/workspace", "").is_err());
    assert!(resolve("/workspace", "a\0b").is_err());
  }
}
