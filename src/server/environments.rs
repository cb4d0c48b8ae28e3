//! Seed 004's environment names and the library's templates they stand for.
//!
//! The seed names a language and a version (`nodejs-18`); the library names a template whose image
//! the `templates` configuration decides (README "Templates"). The version in the seed's name is
//! part of the name, not a promise: `nodejs-18` runs the `node` template's image, whatever Node it
//! has. Template names themselves (`python`, `node`, `go`, `base`, and any name the `templates`
//! configuration adds) are accepted as environments too.

use serde_json::Value;

use crate::core::templates;
use crate::server::error::ApiError;

/// seed 004 name → template
pub const SEED_ENVIRONMENTS: [(&str, &str); 3] = [("nodejs-18", "node"), ("python-3.11", "python"), ("go-1.21", "go")];

/// The template an environment name stands for, checked against the template table (`templates`
/// is the manager's `templates` configuration). INVALID_ARGUMENT naming `environment` otherwise.
pub fn template_for(environment: &str, templates_config: Option<&Value>) -> Result<String, ApiError> {
  let name = environment.trim().to_ascii_lowercase();
  let template = SEED_ENVIRONMENTS.iter().find(|(seed, _)| *seed == name).map(|(_, t)| t.to_string()).unwrap_or(name);
  match templates::lookup(&template, templates_config) {
    Ok(t) => Ok(t.name),
    Err(_) => {
      let mut known: Vec<String> = SEED_ENVIRONMENTS.iter().map(|(s, _)| s.to_string()).collect();
      known.extend(["base", "python", "node", "nodejs", "go"].map(String::from));
      if let Some(Value::Object(m)) = templates_config {
        known.extend(m.keys().filter(|k| !known.contains(k)).cloned().collect::<Vec<_>>());
      }
      Err(ApiError::invalid(format!("environment {environment:?} is not known; use one of {}", known.join(", "))))
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn seed_names_map_to_templates() {
    assert_eq!(template_for("nodejs-18", None).unwrap(), "node");
    assert_eq!(template_for("python-3.11", None).unwrap(), "python");
    assert_eq!(template_for("go-1.21", None).unwrap(), "go");
    assert_eq!(template_for(" Python-3.11 ", None).unwrap(), "python");
  }

  #[test]
  fn template_names_and_configured_ones_are_environments_too() {
    for t in ["base", "python", "node", "nodejs", "go"] {
      assert_eq!(template_for(t, None).unwrap(), t);
    }
    let custom = json!({ "rust": "local/rust:1" });
    assert_eq!(template_for("rust", Some(&custom)).unwrap(), "rust");
    let e = template_for("rust-1.70", Some(&custom)).unwrap_err();
    assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "INVALID_ARGUMENT"));
    assert!(e.message.contains("environment \"rust-1.70\"") && e.message.contains("nodejs-18") && e.message.contains("rust"), "{}", e.message);
  }
}
