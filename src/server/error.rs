//! The service's errors: one JSON shape, `{ "error": { "code", "message" } }`, and one table from
//! a code to its HTTP status. The library's own codes (`core::error::ErrorCode`) keep their
//! names; the few that only HTTP has (`UNAUTHORIZED`, `NOT_FOUND`, `PAYLOAD_TOO_LARGE`, ...) are
//! listed beside them. Messages go through the server's [`Redactor`] before they leave it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::error::{ErrorCode, SandboxError};

/// An error answer of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
  pub status: StatusCode,
  /// the library's code (`SANDBOX_NOT_FOUND`) or one of [`HTTP_CODES`]
  pub code: String,
  pub message: String,
}

/// Codes that exist only at the HTTP edge, with their statuses.
pub const HTTP_CODES: [(&str, u16); 6] = [
  ("UNAUTHORIZED", 401),
  ("NOT_FOUND", 404),
  ("METHOD_NOT_ALLOWED", 405),
  ("PAYLOAD_TOO_LARGE", 413),
  ("UNSUPPORTED_MEDIA_TYPE", 415),
  ("SHUTTING_DOWN", 503),
];

/// The HTTP status of each of the library's codes: the one table (README "Sandbox service").
pub fn status_of(code: ErrorCode) -> StatusCode {
  use ErrorCode::*;
  let s = match code {
    InvalidArgument | InvalidConfig => 400,
    PermissionDenied => 403,
    SandboxNotFound | FileNotFound | SnapshotNotFound => 404,
    SandboxNotRunning | SandboxDestroyed => 409,
    ExecutionError | MaxTurnsExceeded => 422,
    QuotaExceeded | PoolExhausted => 429,
    NotSupported => 501,
    ProviderError | ModelError => 502,
    ProviderUnavailable | ImageNotFound | InsufficientResources | PoolClosed | Aborted => 503,
    ExecutionTimeout => 504,
  };
  StatusCode::from_u16(s).expect("a valid status")
}

impl ApiError {
  pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
    Self { status, code: code.to_string(), message: message.into() }
  }

  /// One of the library's codes, at its status from [`status_of`].
  pub fn coded(code: ErrorCode, message: impl Into<String>) -> Self {
    Self::new(status_of(code), code.as_str(), message)
  }

  pub fn invalid(message: impl Into<String>) -> Self {
    Self::coded(ErrorCode::InvalidArgument, message)
  }

  pub fn unauthorized(message: impl Into<String>) -> Self {
    Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
  }

  pub fn not_found(id: &str) -> Self {
    Self::coded(
      ErrorCode::SandboxNotFound,
      format!("no sandbox {id:?} for this API key; GET /sandboxes lists yours (a sandbox ends after its timeout, when deleted, or when the server stops)"),
    )
  }

  pub fn quota(message: impl Into<String>) -> Self {
    Self::coded(ErrorCode::QuotaExceeded, message)
  }

  pub fn too_large(limit: usize) -> Self {
    Self::new(
      StatusCode::PAYLOAD_TOO_LARGE,
      "PAYLOAD_TOO_LARGE",
      format!("the request body is larger than this API key's limit of {limit} bytes; send smaller files (or fewer per request)"),
    )
  }

  pub fn shutting_down() -> Self {
    Self::new(StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN", "the server is shutting down; retry against a running server")
  }
}

impl From<SandboxError> for ApiError {
  /// A code a JavaScript provider invented (`ENOENT`) keeps its name, as a provider failure.
  fn from(e: SandboxError) -> Self {
    match &e.foreign_code {
      Some(foreign) => Self::new(StatusCode::BAD_GATEWAY, foreign, e.message),
      None => Self::coded(e.code, e.message),
    }
  }
}

impl IntoResponse for ApiError {
  fn into_response(self) -> Response {
    let body = json!({ "error": { "code": &self.code, "message": self.message } });
    let mut res = (self.status, axum::Json(body)).into_response();
    res.extensions_mut().insert(crate::server::metrics::ErrorTag(self.code));
    if self.status == StatusCode::UNAUTHORIZED {
      res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
  }
}

/// Replaces secrets in text that leaves the server (error messages, the access log): the API
/// keys, and the values of the process's environment variables whose names say they are secret
/// (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`). Short values (under 6
/// characters) are left alone: they would match ordinary words.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
  secrets: Vec<String>,
}

pub const REDACTED: &str = "***";
const MIN_SECRET_LEN: usize = 6;

pub fn is_secret_name(name: &str) -> bool {
  let n = name.to_ascii_uppercase();
  ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"].iter().any(|w| n.contains(w))
}

impl Redactor {
  pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>, env: impl IntoIterator<Item = (String, String)>) -> Self {
    let mut secrets: Vec<String> = keys.into_iter().map(str::to_string).collect();
    secrets.extend(env.into_iter().filter(|(k, _)| is_secret_name(k)).map(|(_, v)| v));
    secrets.retain(|s| s.trim().len() >= MIN_SECRET_LEN);
    // longest first, so a secret that contains another is replaced whole
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    Self { secrets }
  }

  pub fn redact(&self, text: &str) -> String {
    let mut out = text.to_string();
    for s in &self.secrets {
      if out.contains(s.as_str()) {
        out = out.replace(s.as_str(), REDACTED);
      }
    }
    out
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn every_library_code_has_a_status() {
    use ErrorCode::*;
    let all = [
      SandboxNotFound, SandboxNotRunning, SandboxDestroyed, ExecutionTimeout, ExecutionError, InsufficientResources, PermissionDenied,
      QuotaExceeded, InvalidConfig, InvalidArgument, ProviderUnavailable, ImageNotFound, ProviderError, PoolExhausted, PoolClosed, Aborted,
      ModelError, MaxTurnsExceeded, FileNotFound, NotSupported,
    ];
    for c in all {
      let s = status_of(c).as_u16();
      assert!((400..600).contains(&s), "{c:?} → {s}");
    }
    assert_eq!(status_of(QuotaExceeded), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status_of(SandboxNotFound), StatusCode::NOT_FOUND);
    assert_eq!(status_of(InvalidArgument), StatusCode::BAD_REQUEST);
    assert_eq!(status_of(ProviderUnavailable), StatusCode::SERVICE_UNAVAILABLE);
  }

  #[test]
  fn library_errors_keep_their_codes() {
    let e: ApiError = SandboxError::new(ErrorCode::SandboxNotRunning, "stopped").into();
    assert_eq!((e.status.as_u16(), e.code.as_str()), (409, "SANDBOX_NOT_RUNNING"));
    let mut foreign = SandboxError::provider("no such file");
    foreign.foreign_code = Some("ENOENT".into());
    let e: ApiError = foreign.into();
    assert_eq!((e.status.as_u16(), e.code.as_str()), (502, "ENOENT"));
    for (code, status) in HTTP_CODES {
      assert!(SandboxError::code_from_str(code).is_none(), "{code} is an HTTP-only code");
      assert!((400..600).contains(&status));
    }
  }

  #[test]
  fn redaction() {
    let r = Redactor::new(
      ["k-0123456789abcdef"],
      [("E2B_API_KEY".to_string(), "e2b_secretvalue".to_string()), ("HOME".to_string(), "/root".to_string()), ("MY_TOKEN".to_string(), "abc".to_string())],
    );
    assert_eq!(r.redact("key k-0123456789abcdef and e2b_secretvalue in /root"), "key *** and *** in /root");
    assert_eq!(r.redact("abc stays: too short to be told from text"), "abc stays: too short to be told from text");
    assert!(is_secret_name("ANTHROPIC_API_KEY") && is_secret_name("github_token") && !is_secret_name("PATH"));
  }
}
