//! E2B connection settings: the config's `e2b` object over the `E2B_*` environment variables.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::core::error::{Result, SandboxError};

pub const DEFAULT_DOMAIN: &str = "e2b.app";
pub const DEFAULT_TEMPLATE: &str = "base";
/// The official SDKs' per-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach E2B. The API key is never logged: `Debug` redacts it.
#[derive(Clone)]
pub struct E2bOptions {
  /// `e2b_` + hex digits; sent as `X-API-Key`
  pub api_key: String,
  /// template name, alias or id (`base`, `code-interpreter-v1`, `team/alias:tag`)
  pub template_id: String,
  /// accepted for the user guide's configs and logged; E2B picks the region itself
  pub region: Option<String>,
  /// base domain of the API and of sandbox hosts (`e2b.app`)
  pub domain: String,
  /// control plane base URL without a trailing slash (`https://api.e2b.app`)
  pub api_url: String,
  /// envd base URL for every sandbox (a local fake); `None` = `https://49983-<sandboxID>.<domain>`
  pub sandbox_url: Option<String>,
  /// limit for each request, except process output streams (which last as long as the process)
  pub request_timeout: Duration,
}

impl fmt::Debug for E2bOptions {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("E2bOptions")
      .field("api_key", &"<redacted>")
      .field("template_id", &self.template_id)
      .field("region", &self.region)
      .field("domain", &self.domain)
      .field("api_url", &self.api_url)
      .field("sandbox_url", &self.sandbox_url)
      .field("request_timeout", &self.request_timeout)
      .finish()
  }
}

fn non_empty(v: Option<String>) -> Option<String> {
  v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A string field of the `e2b` object; empty strings count as not given (so `"${E2B_API_KEY}"`
/// with the variable unset falls through to the environment).
fn field(obj: Option<&serde_json::Map<String, Value>>, key: &str) -> Result<Option<String>> {
  match obj.and_then(|o| o.get(key)) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) => Ok(non_empty(Some(s.clone()))),
    Some(other) => Err(SandboxError::invalid_config(format!(
      "e2b.{key} must be a string, got {}",
      match other {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        _ => "an object",
      }
    ))),
  }
}

/// Parses an http(s) base URL and drops trailing slashes; `source` names the setting in errors.
fn base_url(raw: &str, source: &str) -> Result<String> {
  let url = Url::parse(raw).map_err(|e| {
    SandboxError::invalid_config(format!("{source} '{raw}' is not a valid URL ({e}): expected an http(s) URL such as https://api.e2b.app"))
  })?;
  if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
    return Err(SandboxError::invalid_config(format!(
      "{source} '{raw}' must be an http:// or https:// URL with a host, such as https://api.e2b.app or http://127.0.0.1:3000"
    )));
  }
  if url.query().is_some() || url.fragment().is_some() {
    return Err(SandboxError::invalid_config(format!("{source} '{raw}' must not have a query or fragment: give the base URL only")));
  }
  Ok(url.as_str().trim_end_matches('/').to_string())
}

fn is_api_key(key: &str) -> bool {
  key.strip_prefix("e2b_").is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl E2bOptions {
  /// From the config's `e2b` object (`{ apiKey, templateId, region?, domain? }`, also `apiUrl`
  /// and `sandboxUrl`; may be `None`) and the environment: `E2B_API_KEY`, `E2B_TEMPLATE_ID`
  /// (default `base`), `E2B_REGION`, `E2B_DOMAIN` (default `e2b.app`), `E2B_API_URL` (default
  /// `https://api.<domain>`), `E2B_SANDBOX_URL` (envd base override; default per sandbox
  /// `https://49983-<sandboxID>.<domain of the create response>`). Config values win over the
  /// environment. A missing key or one not matching `^e2b_[0-9a-f]+$`, a bad domain or URL is
  /// `INVALID_CONFIG` before any request; messages never echo the key.
  pub fn resolve(e2b: Option<&Value>, env: &dyn Fn(&str) -> Option<String>) -> Result<E2bOptions> {
    let obj = match e2b {
      None | Some(Value::Null) => None,
      Some(Value::Object(o)) => Some(o),
      Some(_) => return Err(SandboxError::invalid_config("e2b must be an object such as { apiKey, templateId }")),
    };
    let pick = |key: &str, var: &str| -> Result<Option<(String, String)>> {
      Ok(match field(obj, key)? {
        Some(v) => Some((v, format!("e2b.{key}"))),
        None => non_empty(env(var)).map(|v| (v, var.to_string())),
      })
    };

    let (api_key, key_source) = pick("apiKey", "E2B_API_KEY")?.ok_or_else(|| {
      SandboxError::invalid_config(
        "the e2b provider needs an API key: set the E2B_API_KEY environment variable or e2b.apiKey in the sandbox \
         config (create a key at https://e2b.dev/dashboard?tab=keys)",
      )
    })?;
    if !is_api_key(&api_key) {
      return Err(SandboxError::invalid_config(format!(
        "the E2B API key in {key_source} is malformed ({} characters): E2B keys are 'e2b_' followed by lowercase hex \
         digits. Copy the key again from https://e2b.dev/dashboard?tab=keys into {key_source}",
        api_key.chars().count()
      )));
    }

    let template_id = pick("templateId", "E2B_TEMPLATE_ID")?.map(|(v, _)| v).unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    if template_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
      return Err(SandboxError::invalid_config(format!(
        "e2b.templateId {template_id:?} must not contain spaces or control characters: give a template name, alias or id such as 'base'"
      )));
    }
    let region = pick("region", "E2B_REGION")?.map(|(v, _)| v);

    let (domain, domain_source) = pick("domain", "E2B_DOMAIN")?.unwrap_or_else(|| (DEFAULT_DOMAIN.to_string(), "the default domain".into()));
    let domain_ok = !domain.starts_with('.')
      && !domain.ends_with('.')
      && domain.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
      && Url::parse(&format!("https://api.{domain}")).is_ok();
    if !domain_ok {
      return Err(SandboxError::invalid_config(format!(
        "{domain_source} {domain:?} is not a domain: give a bare domain such as e2b.app (no scheme or path); \
         to use another API endpoint set E2B_API_URL"
      )));
    }

    let api_url = match pick("apiUrl", "E2B_API_URL")? {
      Some((raw, source)) => base_url(&raw, &source)?,
      None => base_url(&format!("https://api.{domain}"), &domain_source)?,
    };
    let sandbox_url = pick("sandboxUrl", "E2B_SANDBOX_URL")?.map(|(raw, source)| base_url(&raw, &source)).transpose()?;
    if let Some(r) = &region {
      tracing::debug!(region = %r, "e2b.region is informational: E2B places sandboxes itself");
    }
    Ok(E2bOptions { api_key, template_id, region, domain, api_url, sandbox_url, request_timeout: DEFAULT_REQUEST_TIMEOUT })
  }
}

#[cfg(test)]
mod tests {
  use serde_json::json;

  use super::*;
  use crate::core::error::ErrorCode;

  const KEY: &str = "e2b_0123456789abcdef0123456789abcdef01234567";

  fn env_of(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    let vars = vars.to_vec();
    move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
  }

  #[test]
  fn defaults_come_from_the_environment() {
    let o = E2bOptions::resolve(None, &env_of(&[("E2B_API_KEY", KEY)])).unwrap();
    assert_eq!(o.api_key, KEY);
    assert_eq!(o.template_id, "base");
    assert_eq!(o.domain, "e2b.app");
    assert_eq!(o.api_url, "https://api.e2b.app");
    assert_eq!(o.sandbox_url, None);
    assert_eq!(o.region, None);
    assert_eq!(o.request_timeout, Duration::from_secs(60));
    assert!(!format!("{o:?}").contains(KEY), "Debug must redact the key");
  }

  #[test]
  fn config_wins_over_environment() {
    let env = env_of(&[
      ("E2B_API_KEY", "e2b_ffff"),
      ("E2B_TEMPLATE_ID", "from-env"),
      ("E2B_DOMAIN", "e2b.dev"),
      ("E2B_API_URL", "http://127.0.0.1:3000/"),
      ("E2B_SANDBOX_URL", "http://127.0.0.1:49983"),
    ]);
    let cfg = json!({ "apiKey": KEY, "templateId": "node-typescript", "region": "us-east-1", "domain": "e2b.pro" });
    let o = E2bOptions::resolve(Some(&cfg), &env).unwrap();
    assert_eq!(o.api_key, KEY);
    assert_eq!(o.template_id, "node-typescript");
    assert_eq!(o.region.as_deref(), Some("us-east-1"));
    assert_eq!(o.domain, "e2b.pro");
    // explicit URLs are not derived from the domain
    assert_eq!(o.api_url, "http://127.0.0.1:3000");
    assert_eq!(o.sandbox_url.as_deref(), Some("http://127.0.0.1:49983"));
    // the domain shapes the default API URL; an empty config key falls through to the env
    let o = E2bOptions::resolve(Some(&json!({ "apiKey": "", "domain": "e2b.dev" })), &env_of(&[("E2B_API_KEY", KEY)])).unwrap();
    assert_eq!((o.api_key.as_str(), o.api_url.as_str()), (KEY, "https://api.e2b.dev"));
  }

  #[test]
  fn missing_or_malformed_keys_are_invalid_config_without_the_key() {
    let e = E2bOptions::resolve(None, &env_of(&[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(e.message.contains("E2B_API_KEY") && e.message.contains("e2b.apiKey"), "{}", e.message);
    for bad in ["sk-secret-value", "e2b_XYZ123", "E2B_abc", "e2b_abc def", "e2b_0123g"] {
      let e = E2bOptions::resolve(Some(&json!({ "apiKey": bad })), &env_of(&[])).unwrap_err();
      assert_eq!(e.code, ErrorCode::InvalidConfig, "{bad}");
      assert!(!e.message.contains(bad), "the message echoes the key: {}", e.message);
      assert!(e.message.contains("e2b.apiKey") && e.message.contains("e2b_"), "{}", e.message);
    }
    assert_eq!(E2bOptions::resolve(Some(&json!({ "apiKey": "e2b_" })), &env_of(&[])).unwrap_err().code, ErrorCode::InvalidConfig);
    let e = E2bOptions::resolve(None, &env_of(&[("E2B_API_KEY", "nope")])).unwrap_err();
    assert!(e.message.contains("E2B_API_KEY"), "{}", e.message);
  }

  #[test]
  fn bad_urls_domains_and_shapes_are_invalid_config() {
    let env = |extra: &'static str, v: &'static str| env_of(&[("E2B_API_KEY", KEY), (extra, v)]);
    for (var, v) in [
      ("E2B_API_URL", "not a url"),
      ("E2B_API_URL", "ftp://api.e2b.app"),
      ("E2B_API_URL", "https://api.e2b.app/?x=1"),
      ("E2B_SANDBOX_URL", "127.0.0.1:49983"),
      ("E2B_DOMAIN", "https://e2b.app"),
      ("E2B_DOMAIN", "e2b.app/x"),
    ] {
      let e = E2bOptions::resolve(None, &env(var, v)).unwrap_err();
      assert_eq!(e.code, ErrorCode::InvalidConfig, "{var}={v}");
      assert!(e.message.contains(var), "{var}: {}", e.message);
    }
    let e = E2bOptions::resolve(Some(&json!("e2b_abc")), &env_of(&[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    let e = E2bOptions::resolve(Some(&json!({ "apiKey": KEY, "templateId": 5 })), &env_of(&[])).unwrap_err();
    assert!(e.message.contains("e2b.templateId"), "{}", e.message);
    let e = E2bOptions::resolve(Some(&json!({ "apiKey": KEY, "templateId": "a b" })), &env_of(&[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
  }
}
