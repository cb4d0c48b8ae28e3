//! Model API clients for the agent loop: the Anthropic Messages API and OpenAI-compatible chat
//! completions (OpenAI, vLLM, Ollama, llama.cpp, …) over reqwest, behind one provider-neutral
//! conversation shape.
//!
//! - [`ModelConfig::resolve`] fills defaults from the environment through a lookup function (so
//!   tests never touch the process env) and validates: a missing key, an unknown provider, a bad
//!   URL or an out-of-range number is `INVALID_CONFIG` naming the field and how to fix it.
//! - [`ModelClient::complete`] runs one model turn. 429, 500, 502, 503, 504, 529 and transport
//!   failures (refused connections, timeouts) are retried up to `max_retries` times with
//!   exponential backoff (500 ms ×2, equal jitter, capped at 8 s) or the server's `retry-after`
//!   (capped at 30 s). Any other status fails at once. Errors quote the API's own message:
//!   401/403 are `PERMISSION_DENIED`, 429 after retries `QUOTA_EXCEEDED`, the rest `MODEL_ERROR`.
//! - The API key is sent only in a header marked sensitive, never logged, and redacted from the
//!   `Debug` output of [`ModelSettings`], [`ModelConfig`] and [`ModelClient`].
#![forbid(unsafe_code)]

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::core::error::{ErrorCode, Result, SandboxError};

/// Default Anthropic model when neither `model.name` nor `ANTHROPIC_MODEL` is set.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// Default OpenAI model when neither `model.name` nor `OPENAI_MODEL` is set.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// Anthropic base URL when neither `model.baseURL` nor `ANTHROPIC_BASE_URL` is set (no `/v1`).
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// OpenAI base URL when neither `model.baseURL` nor `OPENAI_BASE_URL` is set (includes `/v1`).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default cap on output tokens per turn.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default timeout of one HTTP request (one attempt), in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: f64 = 120.0;
/// The `anthropic-version` header sent with every Anthropic request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(30);
/// How much of an API message or raw body an error message quotes.
const QUOTE_MAX_CHARS: usize = 1000;
const SNIPPET_MAX_CHARS: usize = 300;

// ------------------------------------------------------------------ configuration

/// Which wire protocol a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
  /// Anthropic Messages API: `POST {base}/v1/messages`.
  Anthropic,
  /// OpenAI chat completions and compatible servers: `POST {base}/chat/completions`.
  OpenAi,
}

impl Provider {
  /// The name used in `model.provider`: `"anthropic"` or `"openai"`.
  pub fn as_str(self) -> &'static str {
    match self {
      Provider::Anthropic => "anthropic",
      Provider::OpenAi => "openai",
    }
  }

  fn label(self) -> &'static str {
    match self {
      Provider::Anthropic => "Anthropic API",
      Provider::OpenAi => "OpenAI-compatible API",
    }
  }

  fn env_prefix(self) -> &'static str {
    match self {
      Provider::Anthropic => "ANTHROPIC",
      Provider::OpenAi => "OPENAI",
    }
  }

  fn default_model(self) -> &'static str {
    match self {
      Provider::Anthropic => DEFAULT_ANTHROPIC_MODEL,
      Provider::OpenAi => DEFAULT_OPENAI_MODEL,
    }
  }

  fn default_base_url(self) -> &'static str {
    match self {
      Provider::Anthropic => DEFAULT_ANTHROPIC_BASE_URL,
      Provider::OpenAi => DEFAULT_OPENAI_BASE_URL,
    }
  }
}

impl fmt::Display for Provider {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(self.as_str())
  }
}

impl FromStr for Provider {
  type Err = SandboxError;

  /// Case-insensitive `"anthropic"` or `"openai"`; anything else is `INVALID_CONFIG`.
  fn from_str(s: &str) -> Result<Self> {
    match s.trim().to_ascii_lowercase().as_str() {
      "anthropic" => Ok(Provider::Anthropic),
      "openai" => Ok(Provider::OpenAi),
      _ => Err(SandboxError::invalid_config(format!(
        "unknown model.provider '{s}': expected 'anthropic' or 'openai' (use 'openai' for OpenAI-compatible servers \
         such as vLLM, Ollama or llama.cpp)"
      ))),
    }
  }
}

/// The model options as JS passes them (`model: { provider, name, apiKey, baseURL, maxTokens,
/// temperature, maxRetries, requestTimeoutSeconds }`). Every field is optional; empty strings
/// count as unset. [`ModelConfig::resolve`] fills the defaults.
#[derive(Clone, Default)]
pub struct ModelSettings {
  /// `"anthropic"` or `"openai"`. Default: anthropic if `ANTHROPIC_API_KEY` or
  /// `ANTHROPIC_BASE_URL` is set, else openai if `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set,
  /// else anthropic.
  pub provider: Option<String>,
  /// Model name. Default `ANTHROPIC_MODEL` / `OPENAI_MODEL`, else [`DEFAULT_ANTHROPIC_MODEL`] /
  /// [`DEFAULT_OPENAI_MODEL`].
  pub name: Option<String>,
  /// API key. Default `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`.
  pub api_key: Option<String>,
  /// Base URL. Default `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`, else
  /// [`DEFAULT_ANTHROPIC_BASE_URL`] / [`DEFAULT_OPENAI_BASE_URL`].
  pub base_url: Option<String>,
  /// Output token cap per turn, ≥ 1. Default [`DEFAULT_MAX_TOKENS`].
  pub max_tokens: Option<u32>,
  /// Sampling temperature, 0 to 2. Default: the API's.
  pub temperature: Option<f64>,
  /// Retries after the first attempt. Default [`DEFAULT_MAX_RETRIES`].
  pub max_retries: Option<u32>,
  /// Timeout of one HTTP attempt in seconds, > 0. Default [`DEFAULT_REQUEST_TIMEOUT_SECS`].
  pub request_timeout_seconds: Option<f64>,
}

impl fmt::Debug for ModelSettings {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("ModelSettings")
      .field("provider", &self.provider)
      .field("name", &self.name)
      .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
      .field("base_url", &self.base_url)
      .field("max_tokens", &self.max_tokens)
      .field("temperature", &self.temperature)
      .field("max_retries", &self.max_retries)
      .field("request_timeout_seconds", &self.request_timeout_seconds)
      .finish()
  }
}

/// A validated model configuration with every default filled in.
#[derive(Clone)]
pub struct ModelConfig {
  /// Wire protocol.
  pub provider: Provider,
  /// Model name sent as `model`.
  pub name: String,
  /// `None` only for servers that need no key (a base URL was configured).
  pub api_key: Option<String>,
  /// Without a trailing slash. Anthropic: without `/v1`; OpenAI: with it (as the official SDKs).
  pub base_url: String,
  /// Output token cap per turn (≥ 1).
  pub max_tokens: u32,
  /// Sampling temperature (0 to 2); `None` leaves the API's default.
  pub temperature: Option<f64>,
  /// Retries after the first attempt (so `max_retries + 1` attempts at most).
  pub max_retries: u32,
  /// Timeout of one HTTP attempt (connect, send, read the whole response).
  pub request_timeout: Duration,
}

impl fmt::Debug for ModelConfig {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("ModelConfig")
      .field("provider", &self.provider)
      .field("name", &self.name)
      .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
      .field("base_url", &self.base_url)
      .field("max_tokens", &self.max_tokens)
      .field("temperature", &self.temperature)
      .field("max_retries", &self.max_retries)
      .field("request_timeout", &self.request_timeout)
      .finish()
  }
}

impl ModelConfig {
  /// Validates `s` and fills defaults from `env`, a variable lookup (production passes
  /// `&|k| std::env::var(k).ok()`; tests pass a map). Explicit settings win over the environment.
  pub fn resolve(s: &ModelSettings, env: &dyn Fn(&str) -> Option<String>) -> Result<ModelConfig> {
    let env_var = |k: &str| non_empty(env(k).as_deref());
    let provider = match non_empty(s.provider.as_deref()) {
      Some(p) => p.parse::<Provider>()?,
      None if env_var("ANTHROPIC_API_KEY").is_some() || env_var("ANTHROPIC_BASE_URL").is_some() => Provider::Anthropic,
      None if env_var("OPENAI_API_KEY").is_some() || env_var("OPENAI_BASE_URL").is_some() => Provider::OpenAi,
      None => Provider::Anthropic,
    };
    let prefix = provider.env_prefix();

    let name = non_empty(s.name.as_deref())
      .or_else(|| env_var(&format!("{prefix}_MODEL")))
      .unwrap_or_else(|| provider.default_model().to_string());
    let api_key = non_empty(s.api_key.as_deref()).or_else(|| env_var(&format!("{prefix}_API_KEY")));

    let configured_base = match non_empty(s.base_url.as_deref()) {
      Some(url) => Some(("model.baseURL".to_string(), url)),
      None => env_var(&format!("{prefix}_BASE_URL")).map(|url| (format!("{prefix}_BASE_URL"), url)),
    };
    let base_url = match &configured_base {
      Some((source, url)) => normalize_base_url(url, source)?,
      None => provider.default_base_url().to_string(),
    };

    // A compatible server behind a configured base URL (Ollama, vLLM, a local proxy) may need no
    // key; the official endpoints always do.
    if api_key.is_none() && configured_base.is_none() {
      return Err(SandboxError::invalid_config(match provider {
        Provider::Anthropic => {
          "no Anthropic API key: set ANTHROPIC_API_KEY or model.apiKey (or point ANTHROPIC_BASE_URL at a compatible \
           server)"
        }
        Provider::OpenAi => {
          "no OpenAI API key: set OPENAI_API_KEY or model.apiKey (or point OPENAI_BASE_URL or model.baseURL at a \
           compatible server such as Ollama, vLLM or llama.cpp)"
        }
      }));
    }

    let max_tokens = s.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if max_tokens == 0 {
      return Err(SandboxError::invalid_config("model.maxTokens must be at least 1 (got 0)"));
    }
    if let Some(t) = s.temperature {
      if !(0.0..=2.0).contains(&t) {
        return Err(SandboxError::invalid_config(format!("model.temperature must be between 0 and 2 (got {t})")));
      }
    }
    let timeout_secs = s.request_timeout_seconds.unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS);
    let request_timeout = Duration::try_from_secs_f64(timeout_secs).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
      SandboxError::invalid_config(format!(
        "model.requestTimeoutSeconds must be a positive number of seconds (got {timeout_secs})"
      ))
    })?;

    Ok(ModelConfig {
      provider,
      name,
      api_key,
      base_url,
      max_tokens,
      temperature: s.temperature,
      max_retries: s.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
      request_timeout,
    })
  }

  /// The URL requests go to: `{base}/v1/messages` (Anthropic) or `{base}/chat/completions`.
  pub fn endpoint(&self) -> String {
    let base = self.base_url.trim_end_matches('/');
    match self.provider {
      Provider::Anthropic => format!("{base}/v1/messages"),
      Provider::OpenAi => format!("{base}/chat/completions"),
    }
  }
}

fn non_empty(v: Option<&str>) -> Option<String> {
  v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// Parses an http(s) base URL and drops trailing slashes; `source` names the setting in errors.
fn normalize_base_url(raw: &str, source: &str) -> Result<String> {
  let url = Url::parse(raw).map_err(|e| {
    SandboxError::invalid_config(format!(
      "{source} '{raw}' is not a valid URL ({e}): expected an http(s) URL such as http://localhost:11434/v1"
    ))
  })?;
  if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
    return Err(SandboxError::invalid_config(format!(
      "{source} '{raw}' must be an http:// or https:// URL with a host, such as http://localhost:11434/v1"
    )));
  }
  if url.query().is_some() || url.fragment().is_some() {
    return Err(SandboxError::invalid_config(format!(
      "{source} '{raw}' must not have a query or fragment: give the base URL only"
    )));
  }
  Ok(url.as_str().trim_end_matches('/').to_string())
}

// ------------------------------------------------------------------ conversation

/// A tool the model may call.
#[derive(Debug, Clone)]
pub struct ToolSpec {
  pub name: String,
  pub description: String,
  /// JSON Schema of the tool's input object.
  pub input_schema: Value,
}

/// One piece of an assistant message.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
  Text(String),
  /// A tool call. `input` is a JSON object; OpenAI arguments that are not valid JSON arrive as
  /// `{"_raw": "<the string>"}` so the agent can answer with a tool error.
  ToolUse {
    id: String,
    name: String,
    input: Value,
  },
}

/// The outcome of one tool call, sent back to the model.
#[derive(Debug, Clone)]
pub struct ToolResult {
  pub tool_use_id: String,
  pub content: String,
  pub is_error: bool,
}

/// One conversation entry. The system prompt is passed separately to [`ModelClient::complete`].
#[derive(Debug, Clone)]
pub enum Message {
  User(String),
  Assistant(Vec<Block>),
  ToolResults(Vec<ToolResult>),
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
  /// Finished its answer (Anthropic `end_turn`/`stop_sequence`, OpenAI `stop`).
  EndTurn,
  /// Wants tool results (Anthropic `tool_use`, OpenAI `tool_calls`, or `stop` with tool calls).
  ToolUse,
  /// Hit `max_tokens` (OpenAI `length`).
  MaxTokens,
  /// Anything else, as the API spelled it (`refusal`, `content_filter`, …).
  Other(String),
}

/// One model turn.
#[derive(Debug, Clone)]
pub struct Turn {
  pub blocks: Vec<Block>,
  pub stop: StopReason,
  /// Prompt tokens as the API reports them (0 when it does not).
  pub input_tokens: u64,
  pub output_tokens: u64,
}

// ------------------------------------------------------------------ client

/// A model API client. Cheap to share behind an `Arc`; `complete` takes `&self`.
pub struct ModelClient {
  cfg: ModelConfig,
  http: reqwest::Client,
  endpoint: String,
  headers: HeaderMap,
  backoff_base: Duration,
  backoff_cap: Duration,
  retry_after_cap: Duration,
  /// Ids for tool calls that arrive without one (some local OpenAI-compatible servers).
  next_call_id: AtomicU64,
}

impl fmt::Debug for ModelClient {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("ModelClient").field("cfg", &self.cfg).field("endpoint", &self.endpoint).finish_non_exhaustive()
  }
}

impl ModelClient {
  /// Builds the HTTP client. `INVALID_CONFIG` if the endpoint is not an http(s) URL or the key
  /// cannot be sent in a header (a stray newline).
  pub fn new(cfg: ModelConfig) -> Result<Self> {
    let endpoint = cfg.endpoint();
    // The fields are public, so a hand-built config may not have gone through `resolve`.
    let url =
      Url::parse(&endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| SandboxError::invalid_config(format!("model endpoint '{endpoint}' is not an http(s) URL")))?;

    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(key) = cfg.api_key.as_deref() {
      let (name, value) = match cfg.provider {
        Provider::Anthropic => (HeaderName::from_static("x-api-key"), key.to_string()),
        Provider::OpenAi => (AUTHORIZATION, format!("Bearer {key}")),
      };
      let mut value = HeaderValue::from_str(&value).map_err(|_| {
        SandboxError::invalid_config(
          "model.apiKey contains characters that cannot be sent in an HTTP header (a stray newline or quote?)",
        )
      })?;
      value.set_sensitive(true);
      headers.insert(name, value);
    }
    if cfg.provider == Provider::Anthropic {
      headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(ANTHROPIC_VERSION));
    }

    let mut builder = reqwest::Client::builder()
      .timeout(cfg.request_timeout)
      .connect_timeout(cfg.request_timeout.min(CONNECT_TIMEOUT_CAP))
      .user_agent(concat!("agentic-sandbox/", env!("CARGO_PKG_VERSION")));
    // A local server (Ollama, vLLM) must not be sent through HTTP(S)_PROXY.
    if is_loopback(&url) {
      builder = builder.no_proxy();
    }
    let http = builder
      .build()
      .map_err(|e| SandboxError::new(ErrorCode::ModelError, format!("could not set up the HTTP client: {e}")))?;

    Ok(ModelClient {
      cfg,
      http,
      endpoint,
      headers,
      backoff_base: BACKOFF_BASE,
      backoff_cap: BACKOFF_CAP,
      retry_after_cap: RETRY_AFTER_CAP,
      next_call_id: AtomicU64::new(1),
    })
  }

  /// The configuration this client was built from.
  pub fn config(&self) -> &ModelConfig {
    &self.cfg
  }

  /// Changes the first retry delay (default 500 ms; later ones double, capped at 8 s). Tests use
  /// a millisecond to stay fast.
  #[must_use]
  pub fn with_backoff_base(mut self, base: Duration) -> Self {
    self.backoff_base = base;
    self
  }

  /// Changes the cap on a server's `retry-after` delay (default 30 s).
  #[must_use]
  pub fn with_retry_after_cap(mut self, cap: Duration) -> Self {
    self.retry_after_cap = cap;
    self
  }

  /// One model turn: sends the system prompt, the conversation and the tools, and returns the
  /// reply. Retries 429, 500, 502, 503, 504, 529 and connection errors/timeouts up to
  /// `max_retries` times (exponential backoff from 500 ms, ×2, jitter, capped at 8 s; a
  /// `retry-after` header wins, capped at 30 s). Other statuses fail at once.
  pub async fn complete(&self, system: &str, messages: &[Message], tools: &[ToolSpec]) -> Result<Turn> {
    let body = match self.cfg.provider {
      Provider::Anthropic => anthropic_request(&self.cfg, system, messages, tools),
      Provider::OpenAi => openai_request(&self.cfg, system, messages, tools),
    };
    let body =
      Bytes::from(serde_json::to_vec(&body).map_err(|e| self.error(format!("could not encode the request: {e}")))?);
    let text = self.send(body).await?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
      self.error(format!(
        "{} returned a body that is not JSON ({e}): {}. Check that the base URL points at the API (endpoint {})",
        self.cfg.provider.label(),
        snippet(&text),
        self.endpoint
      ))
    })?;
    match self.cfg.provider {
      Provider::Anthropic => parse_anthropic(&value),
      Provider::OpenAi => parse_openai(&value, &self.next_call_id),
    }
  }

  /// POSTs `body` with retries; the response text of the first 2xx.
  async fn send(&self, body: Bytes) -> Result<String> {
    let provider = self.cfg.provider.as_str();
    let model = self.cfg.name.as_str();
    let max_attempts = self.cfg.max_retries.saturating_add(1);
    let mut attempt = 0u32;
    loop {
      attempt += 1;
      let started = Instant::now();
      let outcome = match self.http.post(&self.endpoint).headers(self.headers.clone()).body(body.clone()).send().await {
        Ok(resp) => {
          let status = resp.status();
          let retry_after = retry_after(resp.headers(), self.retry_after_cap);
          resp.text().await.map(|text| (status, retry_after, text))
        }
        Err(e) => Err(e),
      };
      let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
      match outcome {
        Ok((status, retry_after, text)) => {
          debug!(provider, model, attempt, status = status.as_u16(), duration_ms, "model request");
          if status.is_success() {
            return Ok(text);
          }
          if is_retryable(status) && attempt < max_attempts {
            let delay = retry_after.unwrap_or_else(|| self.backoff(attempt));
            debug!(provider, model, attempt, delay_ms = delay.as_millis() as u64, "model request will be retried");
            tokio::time::sleep(delay).await;
            continue;
          }
          return Err(self.status_error(status, &text, attempt));
        }
        Err(e) => {
          debug!(provider, model, attempt, duration_ms, error = %error_chain(&e), "model request failed");
          if attempt < max_attempts {
            tokio::time::sleep(self.backoff(attempt)).await;
            continue;
          }
          return Err(self.transport_error(&e, attempt));
        }
      }
    }
  }

  /// Delay before retry number `attempt` (1-based): base × 2^(attempt−1), capped, then half of it
  /// fixed and half random, so concurrent agents spread out yet never retry at once.
  fn backoff(&self, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    let full = self.backoff_base.saturating_mul(factor).min(self.backoff_cap);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
  }

  fn error(&self, message: String) -> SandboxError {
    SandboxError::new(ErrorCode::ModelError, message)
  }

  fn status_error(&self, status: StatusCode, body: &str, attempts: u32) -> SandboxError {
    let label = self.cfg.provider.label();
    let prefix = self.cfg.provider.env_prefix();
    let name = &self.cfg.name;
    let api = ApiError::from_body(body);
    let quoted = match &api.message {
      Some(m) => format!("\"{}\"", truncate(m, QUOTE_MAX_CHARS)),
      None if body.trim().is_empty() => "(empty body)".to_string(),
      None => snippet(body),
    };
    let what = match (status.canonical_reason(), &api.kind) {
      (Some(reason), Some(kind)) => format!("{} {reason}, {kind}", status.as_u16()),
      (Some(reason), None) => format!("{} {reason}", status.as_u16()),
      (None, Some(kind)) => format!("{}, {kind}", status.as_u16()),
      (None, None) => status.as_u16().to_string(),
    };
    let tries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
    let (code, message) = match status.as_u16() {
      401 | 403 => (
        ErrorCode::PermissionDenied,
        format!(
          "{label} rejected the credentials ({what}): {quoted}. Check the API key: set {prefix}_API_KEY or model.apiKey \
           (and that it may use model '{name}')"
        ),
      ),
      429 => (
        ErrorCode::QuotaExceeded,
        format!(
          "{label} rate limit or quota exceeded ({what}){tries}: {quoted}. Wait and retry, lower the request rate or \
           raise model.maxRetries; if it persists, check the account's usage limits and billing"
        ),
      ),
      404 => (
        ErrorCode::ModelError,
        format!(
          "{label} returned {what} for {}: {quoted}. Check model.name ('{name}') and model.baseURL / {prefix}_BASE_URL",
          self.endpoint
        ),
      ),
      400 | 413 | 422 => (
        ErrorCode::ModelError,
        format!(
          "{label} rejected the request ({what}): {quoted}. Check model.name ('{name}'), model.maxTokens and the \
           tools' input schemas"
        ),
      ),
      s if s >= 500 => (
        ErrorCode::ModelError,
        format!(
          "{label} failed ({what}){tries}: {quoted}. The service is unavailable or overloaded: retry later or raise \
           model.maxRetries"
        ),
      ),
      _ => (ErrorCode::ModelError, format!("{label} returned {what}: {quoted}")),
    };
    SandboxError::new(code, message)
  }

  fn transport_error(&self, e: &reqwest::Error, attempts: u32) -> SandboxError {
    let label = self.cfg.provider.label();
    let prefix = self.cfg.provider.env_prefix();
    let hint = if e.is_timeout() {
      format!(
        "the request timed out after {}s: raise model.requestTimeoutSeconds or lower model.maxTokens",
        self.cfg.request_timeout.as_secs_f64()
      )
    } else if e.is_connect() {
      format!("check model.baseURL / {prefix}_BASE_URL and that the server is running and reachable")
    } else {
      "check the network and model.baseURL".to_string()
    };
    let attempts = if attempts == 1 { "1 attempt".to_string() } else { format!("{attempts} attempts") };
    // reqwest repeats the URL ("error sending request for url (…)"); the message names it once.
    let mut cause = error_chain(e);
    if let Some(url) = e.url() {
      cause = cause.replace(&format!(" for url ({url})"), "");
    }
    self.error(format!("could not reach the {label} at {} ({attempts}): {cause}; {hint}", self.endpoint))
  }
}

fn is_retryable(status: StatusCode) -> bool {
  matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504 | 529)
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds; HTTP dates are ignored (backoff applies).
fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
  let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
  let delay = match number("retry-after-ms") {
    Some(ms) => Duration::try_from_secs_f64(ms / 1000.0).ok()?,
    None => Duration::try_from_secs_f64(number("retry-after")?).ok()?,
  };
  Some(delay.min(cap))
}

fn is_loopback(url: &Url) -> bool {
  match url.host_str() {
    Some(host) if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") => true,
    Some(host) => host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    None => false,
  }
}

/// The error and its sources, without repeats ("error sending request: tcp connect error: …").
fn error_chain(e: &dyn std::error::Error) -> String {
  let mut parts: Vec<String> = vec![e.to_string()];
  let mut source = e.source();
  while let Some(s) = source {
    let text = s.to_string();
    if !parts.iter().any(|p| p.contains(&text)) {
      parts.push(text);
    }
    source = s.source();
  }
  parts.join(": ")
}

fn truncate(s: &str, max_chars: usize) -> String {
  match s.char_indices().nth(max_chars) {
    Some((i, _)) => format!("{}…", &s[..i]),
    None => s.to_string(),
  }
}

/// A short one-line excerpt of a raw body for error messages.
fn snippet(body: &str) -> String {
  format!("'{}'", truncate(&body.split_whitespace().collect::<Vec<_>>().join(" "), SNIPPET_MAX_CHARS))
}

/// The API's own error, from Anthropic `{"type":"error","error":{"type","message"}}`, OpenAI
/// `{"error":{"message","type","code"}}`, or the `{"error":"…"}` / `{"detail":…}` /
/// `{"message":"…"}` shapes of compatible servers.
struct ApiError {
  message: Option<String>,
  kind: Option<String>,
}

impl ApiError {
  fn from_body(body: &str) -> ApiError {
    match serde_json::from_str::<Value>(body) {
      Ok(v) => ApiError::from_value(&v),
      Err(_) => ApiError { message: None, kind: None },
    }
  }

  fn from_value(v: &Value) -> ApiError {
    let text = |v: Option<&Value>| match v {
      Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
      Some(Value::Number(n)) => Some(n.to_string()),
      _ => None,
    };
    match v.get("error") {
      Some(Value::Object(err)) => {
        let mut kinds: Vec<String> = [text(err.get("type")), text(err.get("code"))].into_iter().flatten().collect();
        kinds.dedup();
        ApiError {
          message: text(err.get("message")),
          kind: if kinds.is_empty() { None } else { Some(kinds.join(", ")) },
        }
      }
      Some(Value::String(s)) => ApiError { message: Some(s.clone()), kind: None },
      _ => {
        let message = text(v.get("message")).or_else(|| match v.get("detail") {
          Some(Value::String(s)) => Some(s.clone()),
          Some(d @ (Value::Array(_) | Value::Object(_))) => Some(d.to_string()),
          _ => None,
        });
        ApiError { message, kind: None }
      }
    }
  }
}

fn malformed(provider: Provider, what: &str, v: &Value) -> SandboxError {
  SandboxError::new(
    ErrorCode::ModelError,
    format!("malformed {} response: {what} (got {})", provider.label(), snippet(&v.to_string())),
  )
}

/// A 2xx body that carries an error instead of a reply (some proxies and compatible servers).
fn embedded_error(provider: Provider, v: &Value) -> Option<SandboxError> {
  let is_error = match provider {
    Provider::Anthropic => v.get("type").and_then(Value::as_str) == Some("error"),
    Provider::OpenAi => v.get("error").is_some_and(|e| !e.is_null()) && v.get("choices").is_none(),
  };
  if !is_error {
    return None;
  }
  let api = ApiError::from_value(v);
  let kind = api.kind.map(|k| format!(" ({k})")).unwrap_or_default();
  let message = api.message.unwrap_or_else(|| snippet(&v.to_string()));
  Some(SandboxError::new(
    ErrorCode::ModelError,
    format!("{} returned an error{kind}: \"{}\"", provider.label(), truncate(&message, QUOTE_MAX_CHARS)),
  ))
}

/// Tool input must be a JSON object on the wire.
fn input_object(input: &Value) -> Value {
  match input {
    Value::Object(_) => input.clone(),
    Value::Null => json!({}),
    other => json!({ "_raw": other.to_string() }),
  }
}

fn stop_when_missing(blocks: &[Block]) -> StopReason {
  if blocks.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
    StopReason::ToolUse
  } else {
    StopReason::EndTurn
  }
}

fn usage(v: &Value, input: &str, output: &str) -> (u64, u64) {
  let n = |k: &str| v.get("usage").and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
  (n(input), n(output))
}

// ------------------------------------------------------------------ Anthropic wire format

fn anthropic_request(cfg: &ModelConfig, system: &str, messages: &[Message], tools: &[ToolSpec]) -> Value {
  let mut body = Map::new();
  body.insert("model".into(), json!(cfg.name));
  body.insert("max_tokens".into(), json!(cfg.max_tokens));
  if !system.is_empty() {
    body.insert("system".into(), json!(system));
  }
  body.insert("messages".into(), Value::Array(messages.iter().map(anthropic_message).collect()));
  if !tools.is_empty() {
    let tools = tools
      .iter()
      .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.input_schema }))
      .collect();
    body.insert("tools".into(), Value::Array(tools));
  }
  if let Some(t) = cfg.temperature {
    body.insert("temperature".into(), json!(t));
  }
  Value::Object(body)
}

fn anthropic_message(m: &Message) -> Value {
  match m {
    Message::User(text) => json!({ "role": "user", "content": text }),
    Message::Assistant(blocks) => {
      let mut content: Vec<Value> = blocks
        .iter()
        .filter_map(|b| match b {
          // The API rejects empty text blocks.
          Block::Text(t) if t.is_empty() => None,
          Block::Text(t) => Some(json!({ "type": "text", "text": t })),
          Block::ToolUse { id, name, input } => {
            Some(json!({ "type": "tool_use", "id": id, "name": name, "input": input_object(input) }))
          }
        })
        .collect();
      // ... and empty assistant messages.
      if content.is_empty() {
        content.push(json!({ "type": "text", "text": "(no output)" }));
      }
      json!({ "role": "assistant", "content": content })
    }
    Message::ToolResults(results) => {
      let content: Vec<Value> = results
        .iter()
        .map(|r| json!({ "type": "tool_result", "tool_use_id": r.tool_use_id, "content": r.content, "is_error": r.is_error }))
        .collect();
      json!({ "role": "user", "content": content })
    }
  }
}

fn parse_anthropic(v: &Value) -> Result<Turn> {
  const P: Provider = Provider::Anthropic;
  if let Some(e) = embedded_error(P, v) {
    return Err(e);
  }
  let content = v.get("content").and_then(Value::as_array).ok_or_else(|| malformed(P, "no `content` array", v))?;
  let mut blocks = Vec::with_capacity(content.len());
  for b in content {
    match b.get("type").and_then(Value::as_str) {
      Some("text") => {
        let text =
          b.get("text").and_then(Value::as_str).ok_or_else(|| malformed(P, "a text block without `text`", v))?;
        blocks.push(Block::Text(text.to_string()));
      }
      Some("tool_use") => {
        let field = |k: &str| b.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let id = field("id").ok_or_else(|| malformed(P, "a tool_use block without `id`", v))?;
        let name = field("name").ok_or_else(|| malformed(P, "a tool_use block without `name`", v))?;
        let input = input_object(b.get("input").unwrap_or(&Value::Null));
        blocks.push(Block::ToolUse { id: id.to_string(), name: name.to_string(), input });
      }
      // thinking, redacted_thinking, server tool blocks: not part of the agent's conversation.
      _ => {}
    }
  }
  let stop = match v.get("stop_reason").and_then(Value::as_str) {
    Some("end_turn" | "stop_sequence") => StopReason::EndTurn,
    Some("tool_use") => StopReason::ToolUse,
    Some("max_tokens") => StopReason::MaxTokens,
    Some(other) => StopReason::Other(other.to_string()),
    None => stop_when_missing(&blocks),
  };
  let (input_tokens, output_tokens) = usage(v, "input_tokens", "output_tokens");
  Ok(Turn { blocks, stop, input_tokens, output_tokens })
}

// ------------------------------------------------------------------ OpenAI wire format

/// o-series and gpt-5 models reject `max_tokens` and want `max_completion_tokens`.
fn wants_max_completion_tokens(model: &str) -> bool {
  let m = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
  ["o1", "o3", "o4", "gpt-5"].iter().any(|p| m.starts_with(p))
}

fn openai_request(cfg: &ModelConfig, system: &str, messages: &[Message], tools: &[ToolSpec]) -> Value {
  let mut wire = Vec::with_capacity(messages.len() + 1);
  if !system.is_empty() {
    wire.push(json!({ "role": "system", "content": system }));
  }
  for m in messages {
    match m {
      Message::User(text) => wire.push(json!({ "role": "user", "content": text })),
      Message::Assistant(blocks) => {
        let texts: Vec<&str> = blocks
          .iter()
          .filter_map(|b| match b {
            Block::Text(t) if !t.is_empty() => Some(t.as_str()),
            _ => None,
          })
          .collect();
        let calls: Vec<Value> = blocks
          .iter()
          .filter_map(|b| match b {
            Block::ToolUse { id, name, input } => Some(json!({
              "id": id,
              "type": "function",
              "function": { "name": name, "arguments": input_object(input).to_string() },
            })),
            Block::Text(_) => None,
          })
          .collect();
        let content = if texts.is_empty() { Value::Null } else { json!(texts.join("\n")) };
        let mut msg = json!({ "role": "assistant", "content": content });
        if !calls.is_empty() {
          msg["tool_calls"] = Value::Array(calls);
        }
        wire.push(msg);
      }
      Message::ToolResults(results) => {
        for r in results {
          let content = if r.is_error { format!("Error: {}", r.content) } else { r.content.clone() };
          wire.push(json!({ "role": "tool", "tool_call_id": r.tool_use_id, "content": content }));
        }
      }
    }
  }

  let mut body = Map::new();
  body.insert("model".into(), json!(cfg.name));
  body.insert("messages".into(), Value::Array(wire));
  if !tools.is_empty() {
    let tools = tools
      .iter()
      .map(|t| {
        json!({
          "type": "function",
          "function": { "name": t.name, "description": t.description, "parameters": t.input_schema },
        })
      })
      .collect();
    body.insert("tools".into(), Value::Array(tools));
  }
  let max_tokens_key = if wants_max_completion_tokens(&cfg.name) { "max_completion_tokens" } else { "max_tokens" };
  body.insert(max_tokens_key.into(), json!(cfg.max_tokens));
  if let Some(t) = cfg.temperature {
    body.insert("temperature".into(), json!(t));
  }
  Value::Object(body)
}

/// Function arguments arrive as a JSON string; some servers send an object. Unparseable text is
/// kept as `{"_raw": …}` so the agent can report a tool error instead of failing the turn.
fn parse_arguments(arguments: Option<&Value>) -> Value {
  match arguments {
    None | Some(Value::Null) => json!({}),
    Some(Value::String(s)) if s.trim().is_empty() => json!({}),
    Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
      Ok(v @ Value::Object(_)) => v,
      Ok(Value::Null) => json!({}),
      _ => json!({ "_raw": s }),
    },
    Some(v @ Value::Object(_)) => v.clone(),
    Some(other) => json!({ "_raw": other.to_string() }),
  }
}

fn parse_openai(v: &Value, next_call_id: &AtomicU64) -> Result<Turn> {
  const P: Provider = Provider::OpenAi;
  if let Some(e) = embedded_error(P, v) {
    return Err(e);
  }
  let choice = v
    .get("choices")
    .and_then(Value::as_array)
    .and_then(|c| c.first())
    .ok_or_else(|| malformed(P, "no `choices`", v))?;
  let msg =
    choice.get("message").filter(|m| m.is_object()).ok_or_else(|| malformed(P, "choices[0] has no `message`", v))?;

  let mut blocks = Vec::new();
  match msg.get("content") {
    Some(Value::String(s)) if !s.is_empty() => blocks.push(Block::Text(s.clone())),
    // Content parts (some compatible servers): keep the text ones.
    Some(Value::Array(parts)) => {
      let text: String = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
      if !text.is_empty() {
        blocks.push(Block::Text(text));
      }
    }
    _ => {}
  }
  if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
    for call in calls {
      let function = call.get("function").ok_or_else(|| malformed(P, "a tool call without `function`", v))?;
      let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(P, "a tool call without a function name", v))?;
      let id = match call.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => format!("call_{}", next_call_id.fetch_add(1, Ordering::Relaxed)),
      };
      blocks.push(Block::ToolUse { id, name: name.to_string(), input: parse_arguments(function.get("arguments")) });
    }
  }

  let stop = match choice.get("finish_reason").and_then(Value::as_str) {
    // Some local servers say "stop" even when they return tool calls.
    Some("stop") | None => stop_when_missing(&blocks),
    Some("tool_calls" | "function_call") => StopReason::ToolUse,
    Some("length") => StopReason::MaxTokens,
    Some(other) => StopReason::Other(other.to_string()),
  };
  let (input_tokens, output_tokens) = usage(v, "prompt_tokens", "completion_tokens");
  Ok(Turn { blocks, stop, input_tokens, output_tokens })
}

#[cfg(test)]
mod tests {
  use std::collections::HashMap;

  use tokio::net::TcpListener;

  use super::*;
  use crate::testutil::{json_resp, Resp, Server};

  /// A scripted reply with any body (still labelled JSON, as a misbehaving server would).
  fn raw_reply(status: u16, body: &str) -> Resp {
    Resp::Full { status, headers: vec![("content-type", "application/json".into())], body: body.into() }
  }

  // -------------------------------------------------------------- helpers

  fn no_env(_: &str) -> Option<String> {
    None
  }

  fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k: &str| vars.get(k).cloned()
  }

  fn settings(provider: &str, base_url: &str) -> ModelSettings {
    ModelSettings {
      provider: Some(provider.into()),
      name: Some("test-model".into()),
      api_key: Some("sk-test-secret".into()),
      base_url: Some(base_url.into()),
      max_retries: Some(2),
      request_timeout_seconds: Some(5.0),
      ..Default::default()
    }
  }

  fn client(s: &ModelSettings) -> ModelClient {
    ModelClient::new(ModelConfig::resolve(s, &no_env).unwrap()).unwrap().with_backoff_base(Duration::from_millis(1))
  }

  fn anthropic_text(text: &str) -> Value {
    json!({
      "id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
      "content": [{ "type": "text", "text": text }],
      "stop_reason": "end_turn",
      "usage": { "input_tokens": 3, "output_tokens": 2 },
    })
  }

  fn openai_text(text: &str) -> Value {
    json!({
      "id": "chatcmpl-1", "object": "chat.completion",
      "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
      "usage": { "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5 },
    })
  }

  fn shell_tool() -> ToolSpec {
    ToolSpec {
      name: "run".into(),
      description: "Run a shell command".into(),
      input_schema: json!({ "type": "object", "properties": { "cmd": { "type": "string" } }, "required": ["cmd"] }),
    }
  }

  /// A conversation that went through one tool round: user, assistant tool calls, results.
  fn tool_round() -> Vec<Message> {
    vec![
      Message::User("list files".into()),
      Message::Assistant(vec![
        Block::Text("Listing.".into()),
        Block::ToolUse { id: "toolu_1".into(), name: "run".into(), input: json!({ "cmd": "ls" }) },
        Block::ToolUse { id: "toolu_2".into(), name: "run".into(), input: json!({ "cmd": "false" }) },
      ]),
      Message::ToolResults(vec![
        ToolResult { tool_use_id: "toolu_1".into(), content: "a.txt\n".into(), is_error: false },
        ToolResult { tool_use_id: "toolu_2".into(), content: "exit code 1".into(), is_error: true },
      ]),
    ]
  }

  // -------------------------------------------------------------- Anthropic

  #[tokio::test]
  async fn anthropic_request_carries_headers_system_tools_and_tool_results() {
    let api = Server::scripted(vec![json_resp(200, anthropic_text("done"))]).await;
    let mut s = settings("anthropic", &api.url);
    s.temperature = Some(0.5);
    let turn = client(&s).complete("be brief", &tool_round(), &[shell_tool()]).await.unwrap();
    assert_eq!(turn.blocks, vec![Block::Text("done".into())]);

    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.headers["x-api-key"], "sk-test-secret");
    assert_eq!(req.headers["anthropic-version"], ANTHROPIC_VERSION);
    assert_eq!(req.headers["content-type"], "application/json");
    assert!(!req.headers.contains_key("authorization"));
    assert_eq!(
      req.json(),
      json!({
        "model": "test-model",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "be brief",
        "temperature": 0.5,
        "tools": [{
          "name": "run",
          "description": "Run a shell command",
          "input_schema": { "type": "object", "properties": { "cmd": { "type": "string" } }, "required": ["cmd"] },
        }],
        "messages": [
          { "role": "user", "content": "list files" },
          { "role": "assistant", "content": [
            { "type": "text", "text": "Listing." },
            { "type": "tool_use", "id": "toolu_1", "name": "run", "input": { "cmd": "ls" } },
            { "type": "tool_use", "id": "toolu_2", "name": "run", "input": { "cmd": "false" } },
          ]},
          { "role": "user", "content": [
            { "type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\n", "is_error": false },
            { "type": "tool_result", "tool_use_id": "toolu_2", "content": "exit code 1", "is_error": true },
          ]},
        ],
      })
    );
  }

  #[tokio::test]
  async fn anthropic_omits_empty_system_tools_and_temperature() {
    let api = Server::scripted(vec![json_resp(200, anthropic_text("hi"))]).await;
    client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap();
    let body = api.seen()[0].json();
    for key in ["system", "tools", "temperature"] {
      assert!(body.get(key).is_none(), "{key} should be omitted: {body}");
    }
    assert_eq!(body["messages"], json!([{ "role": "user", "content": "hi" }]));
  }

  #[tokio::test]
  async fn anthropic_response_parses_text_tool_use_and_usage() {
    let api = Server::scripted(vec![json_resp(
      200,
      json!({
        "content": [
          { "type": "thinking", "thinking": "hmm", "signature": "x" },
          { "type": "text", "text": "I'll look." },
          { "type": "tool_use", "id": "toolu_9", "name": "run", "input": { "cmd": "ls -la" } },
        ],
        "stop_reason": "tool_use",
        "usage": { "input_tokens": 120, "output_tokens": 33 },
      }),
    )])
    .await;
    let turn = client(&settings("anthropic", &api.url)).complete("", &[Message::User("go".into())], &[]).await.unwrap();
    assert_eq!(
      turn.blocks,
      vec![
        Block::Text("I'll look.".into()),
        Block::ToolUse { id: "toolu_9".into(), name: "run".into(), input: json!({ "cmd": "ls -la" }) },
      ]
    );
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!((turn.input_tokens, turn.output_tokens), (120, 33));
  }

  #[test]
  fn anthropic_stop_reasons_map() {
    let stop = |r: Value| parse_anthropic(&json!({ "content": [], "stop_reason": r })).unwrap().stop;
    assert_eq!(stop(json!("end_turn")), StopReason::EndTurn);
    assert_eq!(stop(json!("stop_sequence")), StopReason::EndTurn);
    assert_eq!(stop(json!("tool_use")), StopReason::ToolUse);
    assert_eq!(stop(json!("max_tokens")), StopReason::MaxTokens);
    assert_eq!(stop(json!("refusal")), StopReason::Other("refusal".into()));
    assert_eq!(stop(Value::Null), StopReason::EndTurn);
  }

  // -------------------------------------------------------------- OpenAI

  #[tokio::test]
  async fn openai_request_carries_bearer_system_tools_and_tool_messages() {
    let api = Server::scripted(vec![json_resp(200, openai_text("done"))]).await;
    let turn = client(&settings("openai", &format!("{}/v1/", api.url)))
      .complete("be brief", &tool_round(), &[shell_tool()])
      .await
      .unwrap();
    assert_eq!(turn.blocks, vec![Block::Text("done".into())]);
    assert_eq!(turn.stop, StopReason::EndTurn);
    assert_eq!((turn.input_tokens, turn.output_tokens), (3, 2));

    let req = &api.seen()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.headers["authorization"], "Bearer sk-test-secret");
    assert!(!req.headers.contains_key("x-api-key"));
    assert!(!req.headers.contains_key("anthropic-version"));
    let args = |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap()).unwrap();
    let mut body = req.json();
    let calls = &body["messages"][2]["tool_calls"];
    assert_eq!(args(&calls[0]["function"]["arguments"]), json!({ "cmd": "ls" }));
    assert_eq!(args(&calls[1]["function"]["arguments"]), json!({ "cmd": "false" }));
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = json!("<checked>");
    body["messages"][2]["tool_calls"][1]["function"]["arguments"] = json!("<checked>");
    assert_eq!(
      body,
      json!({
        "model": "test-model",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "tools": [{ "type": "function", "function": {
          "name": "run",
          "description": "Run a shell command",
          "parameters": { "type": "object", "properties": { "cmd": { "type": "string" } }, "required": ["cmd"] },
        }}],
        "messages": [
          { "role": "system", "content": "be brief" },
          { "role": "user", "content": "list files" },
          { "role": "assistant", "content": "Listing.", "tool_calls": [
            { "id": "toolu_1", "type": "function", "function": { "name": "run", "arguments": "<checked>" } },
            { "id": "toolu_2", "type": "function", "function": { "name": "run", "arguments": "<checked>" } },
          ]},
          { "role": "tool", "tool_call_id": "toolu_1", "content": "a.txt\n" },
          { "role": "tool", "tool_call_id": "toolu_2", "content": "Error: exit code 1" },
        ],
      })
    );
  }

  #[tokio::test]
  async fn openai_local_server_needs_no_key_and_gets_no_authorization() {
    let api = Server::scripted(vec![json_resp(200, openai_text("ok"))]).await;
    let s = ModelSettings {
      provider: Some("openai".into()),
      base_url: Some(format!("{}/v1", api.url)),
      ..Default::default()
    };
    let cfg = ModelConfig::resolve(&s, &no_env).unwrap();
    assert_eq!(cfg.api_key, None);
    assert_eq!(cfg.name, DEFAULT_OPENAI_MODEL);
    ModelClient::new(cfg).unwrap().complete("", &[Message::User("hi".into())], &[]).await.unwrap();
    let req = &api.seen()[0];
    assert!(!req.headers.contains_key("authorization"));
    let body = req.json();
    assert_eq!(body["messages"], json!([{ "role": "user", "content": "hi" }]), "no system message when empty");
    assert!(body.get("tools").is_none() && body.get("temperature").is_none());
  }

  #[tokio::test]
  async fn openai_assistant_without_text_sends_null_content() {
    let api = Server::scripted(vec![json_resp(200, openai_text("ok"))]).await;
    let messages = vec![
      Message::User("go".into()),
      Message::Assistant(vec![Block::ToolUse { id: "c1".into(), name: "run".into(), input: json!({}) }]),
      Message::ToolResults(vec![ToolResult { tool_use_id: "c1".into(), content: "ok".into(), is_error: false }]),
    ];
    client(&settings("openai", &api.url)).complete("", &messages, &[]).await.unwrap();
    let assistant = &api.seen()[0].json()["messages"][1];
    assert_eq!(assistant["content"], Value::Null);
    assert_eq!(assistant["tool_calls"][0]["function"]["arguments"], json!("{}"));
  }

  #[tokio::test]
  async fn openai_response_parses_tool_calls_bad_arguments_and_missing_ids() {
    let api = Server::scripted(vec![json_resp(
      200,
      json!({
        "choices": [{
          "message": {
            "role": "assistant",
            "content": null,
            "tool_calls": [
              { "id": "call_abc", "type": "function", "function": { "name": "run", "arguments": "{\"cmd\":\"ls\"}" } },
              { "type": "function", "function": { "name": "run", "arguments": "{not json" } },
              { "function": { "name": "read", "arguments": { "path": "/tmp" } } },
            ],
          },
          "finish_reason": "tool_calls",
        }],
      }),
    )])
    .await;
    let turn = client(&settings("openai", &api.url)).complete("", &[Message::User("go".into())], &[]).await.unwrap();
    assert_eq!(
      turn.blocks,
      vec![
        Block::ToolUse { id: "call_abc".into(), name: "run".into(), input: json!({ "cmd": "ls" }) },
        Block::ToolUse { id: "call_1".into(), name: "run".into(), input: json!({ "_raw": "{not json" }) },
        Block::ToolUse { id: "call_2".into(), name: "read".into(), input: json!({ "path": "/tmp" }) },
      ]
    );
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!((turn.input_tokens, turn.output_tokens), (0, 0), "usage is optional");
  }

  #[test]
  fn openai_finish_reasons_map() {
    let ids = AtomicU64::new(1);
    let turn = |finish: Value, calls: Value| {
      let v = json!({ "choices": [{ "message": { "content": "x", "tool_calls": calls }, "finish_reason": finish }] });
      parse_openai(&v, &ids).unwrap().stop
    };
    let call = json!([{ "id": "c", "function": { "name": "run", "arguments": "{}" } }]);
    assert_eq!(turn(json!("stop"), Value::Null), StopReason::EndTurn);
    assert_eq!(turn(json!("stop"), call.clone()), StopReason::ToolUse, "local servers say stop with tool calls");
    assert_eq!(turn(json!("tool_calls"), call), StopReason::ToolUse);
    assert_eq!(turn(json!("length"), Value::Null), StopReason::MaxTokens);
    assert_eq!(turn(json!("content_filter"), Value::Null), StopReason::Other("content_filter".into()));
  }

  #[test]
  fn openai_reasoning_models_get_max_completion_tokens() {
    let mut cfg = ModelConfig::resolve(&settings("openai", "http://127.0.0.1:9/v1"), &no_env).unwrap();
    cfg.name = "gpt-5-mini".into();
    let body = openai_request(&cfg, "", &[], &[]);
    assert_eq!(body["max_completion_tokens"], json!(DEFAULT_MAX_TOKENS));
    assert!(body.get("max_tokens").is_none());
    cfg.name = "gpt-4o-mini".into();
    assert_eq!(openai_request(&cfg, "", &[], &[])["max_tokens"], json!(DEFAULT_MAX_TOKENS));
  }

  // -------------------------------------------------------------- retries and errors

  #[tokio::test]
  async fn server_errors_are_retried_until_success() {
    let api = Server::scripted(vec![
      json_resp(500, json!({ "type": "error", "error": { "type": "api_error", "message": "Internal server error" } })),
      json_resp(529, json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })),
      json_resp(200, anthropic_text("finally")),
    ])
    .await;
    let turn = client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap();
    assert_eq!(turn.blocks, vec![Block::Text("finally".into())]);
    assert_eq!(api.seen().len(), 3);
  }

  #[tokio::test]
  async fn server_errors_after_the_last_retry_are_model_errors() {
    let overloaded = || json_resp(503, json!({ "error": { "message": "server busy", "type": "server_error" } }));
    let api = Server::scripted(vec![overloaded(), overloaded(), overloaded()]).await;
    let err = client(&settings("openai", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("\"server busy\"") && err.message.contains("after 3 attempts"), "{}", err.message);
    assert_eq!(api.seen().len(), 3, "max_retries 2 means 3 attempts");
  }

  #[tokio::test]
  async fn rate_limit_honours_retry_after_then_succeeds() {
    let limited = Resp::Full {
      status: 429,
      headers: vec![("content-type", "application/json".into()), ("retry-after", "0.3".into())],
      body: json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "slow down" } })
        .to_string()
        .into_bytes(),
    };
    let api = Server::scripted(vec![limited, json_resp(200, anthropic_text("ok"))]).await;
    let started = Instant::now();
    client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "waited {:?}", started.elapsed());
    assert_eq!(api.seen().len(), 2);
  }

  #[tokio::test]
  async fn rate_limit_after_the_last_retry_is_quota_exceeded() {
    let limited = || {
      json_resp(429, json!({ "error": { "message": "You exceeded your current quota", "type": "insufficient_quota" } }))
    };
    let api = Server::scripted(vec![limited(), limited(), limited()]).await;
    let err = client(&settings("openai", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::QuotaExceeded);
    assert!(err.message.contains("\"You exceeded your current quota\""), "{}", err.message);
    assert!(err.message.contains("insufficient_quota"), "{}", err.message);
    assert_eq!(api.seen().len(), 3);
  }

  #[tokio::test]
  async fn unauthorized_is_permission_denied_quoting_the_api() {
    let api = Server::scripted(vec![json_resp(
      401,
      json!({ "type": "error", "error": { "type": "authentication_error", "message": "invalid x-api-key" } }),
    )])
    .await;
    let err =
      client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied);
    assert!(err.message.contains("\"invalid x-api-key\""), "{}", err.message);
    assert!(err.message.contains("authentication_error"), "{}", err.message);
    assert!(err.message.contains("set ANTHROPIC_API_KEY or model.apiKey"), "{}", err.message);
    assert!(!err.message.contains("sk-test-secret"), "the key must not leak: {}", err.message);
    assert_eq!(api.seen().len(), 1, "401 is not retried");

    let api = Server::scripted(vec![json_resp(
      403,
      json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key" } }),
    )])
    .await;
    let err = client(&settings("openai", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied);
    assert!(err.message.contains("\"Incorrect API key provided\""), "{}", err.message);
    assert!(err.message.contains("invalid_request_error, invalid_api_key"), "{}", err.message);
    assert!(err.message.contains("set OPENAI_API_KEY or model.apiKey"), "{}", err.message);
  }

  #[tokio::test]
  async fn bad_request_fails_at_once_with_model_error() {
    let api = Server::scripted(vec![
      json_resp(
        400,
        json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "max_tokens: too large" } }),
      ),
      json_resp(200, anthropic_text("never reached")),
    ])
    .await;
    let err =
      client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("\"max_tokens: too large\""), "{}", err.message);
    assert!(err.message.contains("400"), "{}", err.message);
    assert_eq!(api.seen().len(), 1);
  }

  #[tokio::test]
  async fn compatible_server_error_shapes_are_quoted() {
    let api =
      Server::scripted(vec![json_resp(404, json!({ "error": "model \"llama9\" not found, try pulling it first" }))])
        .await;
    let err = client(&settings("openai", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("model \"llama9\" not found"), "{}", err.message);
    assert!(err.message.contains("model.name ('test-model')"), "{}", err.message);

    let api = Server::scripted(vec![raw_reply(502, "<html><body>Bad Gateway</body></html>")]).await;
    let mut s = settings("openai", &api.url);
    s.max_retries = Some(0);
    let err = client(&s).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert!(err.message.contains("<html><body>Bad Gateway</body></html>"), "{}", err.message);
  }

  #[tokio::test]
  async fn connection_refused_is_retried_then_model_error() {
    let port = {
      let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
      listener.local_addr().unwrap().port()
    };
    let err = client(&settings("anthropic", &format!("http://127.0.0.1:{port}")))
      .complete("", &[Message::User("hi".into())], &[])
      .await
      .unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("3 attempts"), "{}", err.message);
    assert!(err.message.contains(&format!("127.0.0.1:{port}/v1/messages")), "{}", err.message);
    assert!(err.message.contains("ANTHROPIC_BASE_URL"), "{}", err.message);
  }

  #[tokio::test]
  async fn timeouts_are_retried() {
    let api = Server::scripted(vec![Resp::Hang, json_resp(200, openai_text("late but fine"))]).await;
    let mut s = settings("openai", &api.url);
    s.request_timeout_seconds = Some(0.3);
    let turn = client(&s).complete("", &[Message::User("hi".into())], &[]).await.unwrap();
    assert_eq!(turn.blocks, vec![Block::Text("late but fine".into())]);
    assert_eq!(api.seen().len(), 2);

    let api = Server::scripted(vec![Resp::Hang]).await;
    s.base_url = Some(api.url.clone());
    s.max_retries = Some(0);
    let err = client(&s).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("timed out") && err.message.contains("requestTimeoutSeconds"), "{}", err.message);
  }

  #[tokio::test]
  async fn malformed_responses_are_model_errors() {
    let api = Server::scripted(vec![raw_reply(200, "this is not json")]).await;
    let err =
      client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("not JSON") && err.message.contains("this is not json"), "{}", err.message);
    assert_eq!(api.seen().len(), 1, "a 200 with a bad body is not retried");

    let api =
      Server::scripted(vec![json_resp(200, json!({ "id": "x" })), json_resp(200, json!({ "choices": [] }))]).await;
    let err =
      client(&settings("anthropic", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("malformed Anthropic API response: no `content` array"), "{}", err.message);
    let err = client(&settings("openai", &api.url)).complete("", &[Message::User("hi".into())], &[]).await.unwrap_err();
    assert!(err.message.contains("no `choices`"), "{}", err.message);

    let err = parse_openai(&json!({ "error": { "message": "context too long" } }), &AtomicU64::new(1)).unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelError);
    assert!(err.message.contains("\"context too long\""), "{}", err.message);
  }

  // -------------------------------------------------------------- resolve

  #[test]
  fn resolve_requires_a_key_unless_a_base_url_is_set() {
    let err = ModelConfig::resolve(&ModelSettings::default(), &no_env).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidConfig);
    assert_eq!(
      err.message,
      "no Anthropic API key: set ANTHROPIC_API_KEY or model.apiKey (or point ANTHROPIC_BASE_URL at a compatible server)"
    );
    let openai = ModelSettings { provider: Some("openai".into()), ..Default::default() };
    let err = ModelConfig::resolve(&openai, &no_env).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidConfig);
    assert!(err.message.contains("set OPENAI_API_KEY or model.apiKey"), "{}", err.message);

    let local = ModelSettings { base_url: Some("http://localhost:8080".into()), ..Default::default() };
    let cfg = ModelConfig::resolve(&local, &no_env).unwrap();
    assert_eq!((cfg.provider, cfg.api_key.as_deref()), (Provider::Anthropic, None));
    assert_eq!(cfg.endpoint(), "http://localhost:8080/v1/messages");
    let cfg = ModelConfig::resolve(&openai, &env_of(&[("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/")])).unwrap();
    assert_eq!(cfg.endpoint(), "http://127.0.0.1:11434/v1/chat/completions");
  }

  #[test]
  fn resolve_picks_provider_and_defaults_from_env() {
    let cfg = ModelConfig::resolve(&ModelSettings::default(), &env_of(&[("ANTHROPIC_API_KEY", "ak")])).unwrap();
    assert_eq!(cfg.provider, Provider::Anthropic);
    assert_eq!(cfg.api_key.as_deref(), Some("ak"));
    assert_eq!(cfg.name, DEFAULT_ANTHROPIC_MODEL);
    assert_eq!(cfg.endpoint(), "https://api.anthropic.com/v1/messages");
    assert_eq!((cfg.max_tokens, cfg.max_retries, cfg.temperature), (DEFAULT_MAX_TOKENS, DEFAULT_MAX_RETRIES, None));
    assert_eq!(cfg.request_timeout, Duration::from_secs(120));

    let env = env_of(&[("OPENAI_API_KEY", "ok"), ("OPENAI_MODEL", "gpt-4.1"), ("ANTHROPIC_MODEL", "ignored")]);
    let cfg = ModelConfig::resolve(&ModelSettings::default(), &env).unwrap();
    assert_eq!((cfg.provider, cfg.name.as_str()), (Provider::OpenAi, "gpt-4.1"));
    assert_eq!(cfg.endpoint(), "https://api.openai.com/v1/chat/completions");

    // Both keys: anthropic wins by default; explicit settings win over the environment.
    let env = env_of(&[("OPENAI_API_KEY", "ok"), ("ANTHROPIC_API_KEY", "ak"), ("ANTHROPIC_MODEL", "claude-x")]);
    assert_eq!(ModelConfig::resolve(&ModelSettings::default(), &env).unwrap().name, "claude-x");
    let s = ModelSettings {
      provider: Some("OpenAI".into()),
      name: Some("my-model".into()),
      api_key: Some("explicit".into()),
      max_tokens: Some(100),
      temperature: Some(0.0),
      max_retries: Some(0),
      request_timeout_seconds: Some(2.5),
      ..Default::default()
    };
    let cfg = ModelConfig::resolve(&s, &env).unwrap();
    assert_eq!(
      (cfg.provider, cfg.name.as_str(), cfg.api_key.as_deref()),
      (Provider::OpenAi, "my-model", Some("explicit"))
    );
    assert_eq!((cfg.max_tokens, cfg.temperature, cfg.max_retries), (100, Some(0.0), 0));
    assert_eq!(cfg.request_timeout, Duration::from_millis(2500));

    // Empty strings count as unset.
    let blank = ModelSettings { api_key: Some(" ".into()), name: Some(String::new()), ..Default::default() };
    let cfg = ModelConfig::resolve(&blank, &env_of(&[("ANTHROPIC_API_KEY", "ak")])).unwrap();
    assert_eq!((cfg.api_key.as_deref(), cfg.name.as_str()), (Some("ak"), DEFAULT_ANTHROPIC_MODEL));
  }

  #[test]
  fn resolve_validates_provider_urls_and_numbers() {
    let with = |f: &dyn Fn(&mut ModelSettings)| {
      let mut s = ModelSettings { api_key: Some("k".into()), ..Default::default() };
      f(&mut s);
      ModelConfig::resolve(&s, &no_env)
    };
    let invalid = |r: Result<ModelConfig>, needle: &str| {
      let err = r.unwrap_err();
      assert_eq!(err.code, ErrorCode::InvalidConfig, "{}", err.message);
      assert!(err.message.contains(needle), "{needle:?} not in {:?}", err.message);
    };
    invalid(with(&|s| s.provider = Some("gemini".into())), "unknown model.provider 'gemini'");
    invalid(with(&|s| s.base_url = Some("localhost:11434".into())), "model.baseURL 'localhost:11434'");
    invalid(with(&|s| s.base_url = Some("not a url".into())), "is not a valid URL");
    invalid(with(&|s| s.base_url = Some("ftp://example.com".into())), "http:// or https://");
    invalid(with(&|s| s.base_url = Some("http://h/v1?x=1".into())), "query or fragment");
    invalid(with(&|s| s.max_tokens = Some(0)), "model.maxTokens must be at least 1");
    invalid(with(&|s| s.temperature = Some(2.5)), "model.temperature must be between 0 and 2");
    invalid(with(&|s| s.temperature = Some(-0.1)), "model.temperature");
    invalid(with(&|s| s.temperature = Some(f64::NAN)), "model.temperature");
    invalid(with(&|s| s.request_timeout_seconds = Some(0.0)), "model.requestTimeoutSeconds");
    invalid(with(&|s| s.request_timeout_seconds = Some(-1.0)), "model.requestTimeoutSeconds");
    invalid(with(&|s| s.request_timeout_seconds = Some(f64::INFINITY)), "model.requestTimeoutSeconds");
    let err = ModelConfig::resolve(&ModelSettings::default(), &env_of(&[("ANTHROPIC_BASE_URL", "nope")])).unwrap_err();
    assert!(err.message.contains("ANTHROPIC_BASE_URL 'nope'"), "{}", err.message);

    assert_eq!(with(&|s| s.temperature = Some(2.0)).unwrap().temperature, Some(2.0));
    assert_eq!(
      with(&|s| s.base_url = Some("https://proxy.example/anthropic/".into())).unwrap().base_url,
      "https://proxy.example/anthropic"
    );
  }

  #[test]
  fn new_rejects_a_key_that_cannot_be_a_header() {
    let s = ModelSettings { api_key: Some("sk-abc\ndef".into()), ..Default::default() };
    let err = ModelClient::new(ModelConfig::resolve(&s, &no_env).unwrap()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidConfig);
    assert!(!err.message.contains("sk-abc"), "{}", err.message);
  }

  #[test]
  fn debug_output_redacts_the_api_key() {
    let s = settings("anthropic", "http://127.0.0.1:9");
    let cfg = ModelConfig::resolve(&s, &no_env).unwrap();
    let client = ModelClient::new(cfg.clone()).unwrap();
    for text in [format!("{s:?}"), format!("{cfg:?}"), format!("{client:?}")] {
      assert!(!text.contains("sk-test-secret") && text.contains("<redacted>"), "{text}");
    }
  }

  #[test]
  fn backoff_doubles_with_jitter_and_is_capped() {
    let client =
      ModelClient::new(ModelConfig::resolve(&settings("anthropic", "http://127.0.0.1:9"), &no_env).unwrap()).unwrap();
    for (attempt, full_ms) in [(1u32, 500u64), (2, 1000), (3, 2000), (4, 4000), (5, 8000), (6, 8000), (40, 8000)] {
      let d = client.backoff(attempt);
      assert!(
        d >= Duration::from_millis(full_ms / 2) && d <= Duration::from_millis(full_ms),
        "attempt {attempt}: {d:?}"
      );
    }
  }

  #[test]
  fn retry_after_reads_seconds_or_milliseconds_and_is_capped() {
    let headers = |pairs: &[(&'static str, &str)]| {
      let mut h = HeaderMap::new();
      for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
      }
      h
    };
    let cap = RETRY_AFTER_CAP;
    assert_eq!(retry_after(&headers(&[("retry-after", "7")]), cap), Some(Duration::from_secs(7)));
    assert_eq!(retry_after(&headers(&[("retry-after", "120")]), cap), Some(cap));
    assert_eq!(
      retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "1")]), cap),
      Some(Duration::from_millis(250))
    );
    assert_eq!(retry_after(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]), cap), None);
    assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), cap), None);
    assert_eq!(retry_after(&HeaderMap::new(), cap), None);
  }

  #[test]
  fn loopback_hosts_bypass_the_proxy() {
    let lo = |u: &str| is_loopback(&Url::parse(u).unwrap());
    assert!(lo("http://localhost:11434/v1") && lo("http://127.0.0.1:8000") && lo("http://[::1]:8000"));
    assert!(!lo("https://api.openai.com/v1") && !lo("http://10.0.0.5:8000"));
  }
}
