//! Templates: a short name (`python`, `node`, `go`, `base`) standing for an image, the package
//! manager `installPackages` uses in it, and the language `runCode` defaults to.
//!
//! The built-in table names public images; the `templates` config key overrides or extends it
//! (`templates: { python: 'my-registry/python:3.12' }`), which is how the tests point every
//! template at the offline-built images.

use serde_json::Value;

use crate::core::error::{Result, SandboxError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
  Pip,
  Npm,
  Apt,
}

impl PackageManager {
  pub fn as_str(self) -> &'static str {
    match self {
      PackageManager::Pip => "pip",
      PackageManager::Npm => "npm",
      PackageManager::Apt => "apt",
    }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
  pub name: String,
  pub image: String,
  pub package_manager: Option<PackageManager>,
}

/// name, image, package manager. `nodejs` is an alias of `node` (seed 002 uses both).
const BUILT_IN: [(&str, &str, Option<PackageManager>); 5] = [
  ("base", "debian:bookworm-slim", Some(PackageManager::Apt)),
  ("python", "python:3.12-slim", Some(PackageManager::Pip)),
  ("node", "node:20-slim", Some(PackageManager::Npm)),
  ("nodejs", "node:20-slim", Some(PackageManager::Npm)),
  ("go", "golang:1.22-bookworm", None),
];

/// The language `runCode` uses when none is given.
pub fn default_language(template: Option<&str>) -> &'static str {
  match template {
    Some("python") => "python",
    Some("node") | Some("nodejs") => "javascript",
    Some("go") => "go",
    _ => "bash",
  }
}

fn parse_manager(v: &str, field: &str) -> Result<Option<PackageManager>> {
  match v {
    "pip" => Ok(Some(PackageManager::Pip)),
    "npm" => Ok(Some(PackageManager::Npm)),
    "apt" => Ok(Some(PackageManager::Apt)),
    "none" => Ok(None),
    other => Err(SandboxError::invalid_config(format!("{field} must be 'pip', 'npm', 'apt' or 'none', got {other:?}"))),
  }
}

/// Look `name` up in `overrides` (the `templates` config object), then in the built-in table.
/// An override given as a string only replaces the image; the package manager stays the
/// built-in one (none for a new name) unless the object form names it.
pub fn lookup(name: &str, overrides: Option<&Value>) -> Result<Template> {
  let built_in = BUILT_IN.iter().find(|(n, _, _)| *n == name);
  let over = match overrides {
    None | Some(Value::Null) => None,
    Some(Value::Object(m)) => m.get(name).filter(|v| !v.is_null()),
    Some(_) => return Err(SandboxError::invalid_config("templates must be an object of name → image (or { image, packageManager })")),
  };
  let field = format!("templates.{name}");
  match (over, built_in) {
    (Some(Value::String(image)), b) if !image.trim().is_empty() => {
      Ok(Template { name: name.into(), image: image.clone(), package_manager: b.and_then(|b| b.2) })
    }
    (Some(Value::Object(o)), b) => {
      let image = match o.get("image") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None if b.is_some() => b.unwrap().1.to_string(),
        _ => return Err(SandboxError::invalid_config(format!("{field}.image must be a non-empty string"))),
      };
      let package_manager = match o.get("packageManager") {
        Some(Value::String(s)) => parse_manager(s, &format!("{field}.packageManager"))?,
        None | Some(Value::Null) => b.and_then(|b| b.2),
        Some(_) => return Err(SandboxError::invalid_config(format!("{field}.packageManager must be a string"))),
      };
      Ok(Template { name: name.into(), image, package_manager })
    }
    (Some(_), _) => Err(SandboxError::invalid_config(format!(
      "{field} must be an image name or {{ image, packageManager }}"
    ))),
    (None, Some((n, image, pm))) => Ok(Template { name: n.to_string(), image: image.to_string(), package_manager: *pm }),
    (None, None) => {
      let mut known: Vec<String> = BUILT_IN.iter().map(|b| b.0.to_string()).collect();
      if let Some(Value::Object(m)) = overrides {
        known.extend(m.keys().filter(|k| !known.contains(k)).cloned().collect::<Vec<_>>());
      }
      Err(SandboxError::invalid_config(format!(
        "template {name:?} is not known (known: {}); add it with templates: {{ {name}: 'image' }} or use image instead",
        known.join(", ")
      )))
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn built_in_and_overrides() {
    let t = lookup("python", None).unwrap();
    assert_eq!((t.image.as_str(), t.package_manager), ("python:3.12-slim", Some(PackageManager::Pip)));
    let o = json!({ "python": "local/py:1", "ml": { "image": "local/ml:1", "packageManager": "pip" }, "node": { "packageManager": "none" } });
    let t = lookup("python", Some(&o)).unwrap();
    assert_eq!((t.image.as_str(), t.package_manager), ("local/py:1", Some(PackageManager::Pip)));
    let t = lookup("ml", Some(&o)).unwrap();
    assert_eq!((t.image.as_str(), t.package_manager), ("local/ml:1", Some(PackageManager::Pip)));
    let t = lookup("node", Some(&o)).unwrap();
    assert_eq!((t.image.as_str(), t.package_manager), ("node:20-slim", None));
    assert_eq!(lookup("nodejs", None).unwrap().package_manager, Some(PackageManager::Npm));
    assert_eq!(lookup("go", None).unwrap().package_manager, None);
  }

  #[test]
  fn unknown_and_bad_entries() {
    let e = lookup("rust", Some(&json!({ "ml": "x" }))).unwrap_err();
    assert!(e.message.contains("base, python, node, nodejs, go, ml"), "{}", e.message);
    assert!(lookup("ml", Some(&json!({ "ml": { "packageManager": "pip" } }))).is_err());
    assert!(lookup("ml", Some(&json!({ "ml": { "image": "x", "packageManager": "cargo" } }))).is_err());
    assert!(lookup("ml", Some(&json!({ "ml": 3 }))).is_err());
    assert!(lookup("ml", Some(&json!([]))).is_err());
  }

  #[test]
  fn languages() {
    assert_eq!(default_language(Some("python")), "python");
    assert_eq!(default_language(Some("nodejs")), "javascript");
    assert_eq!(default_language(None), "bash");
  }
}
