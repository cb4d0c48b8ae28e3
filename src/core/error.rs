//! One error type with stable string codes. JS sees them as `err.code`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
  SandboxNotFound,
  SandboxNotRunning,
  SandboxDestroyed,
  ExecutionTimeout,
  ExecutionError,
  InsufficientResources,
  PermissionDenied,
  QuotaExceeded,
  InvalidConfig,
  InvalidArgument,
  ProviderUnavailable,
  ImageNotFound,
  ProviderError,
  /// every sandbox of a pool is in use and none was released within the acquire timeout
  PoolExhausted,
  /// the pool (or its manager) was destroyed
  PoolClosed,
  /// the operation was cancelled through an AbortSignal
  Aborted,
  /// a model API (Anthropic, OpenAI-compatible) failed: HTTP error after retries, bad response
  ModelError,
  /// an agent run used `maxTurns` model turns without finishing
  MaxTurnsExceeded,
  /// a file asked for (downloadFile) does not exist in the sandbox
  FileNotFound,
  /// the sandbox's provider cannot do this (e.g. background processes on a JavaScript provider)
  NotSupported,
  /// no snapshot of that name on the engine (`deleteSnapshot`, `fromSnapshot`)
  SnapshotNotFound,
}

impl ErrorCode {
  pub fn as_str(self) -> &'static str {
    match self {
      ErrorCode::SandboxNotFound => "SANDBOX_NOT_FOUND",
      ErrorCode::SandboxNotRunning => "SANDBOX_NOT_RUNNING",
      ErrorCode::SandboxDestroyed => "SANDBOX_DESTROYED",
      ErrorCode::ExecutionTimeout => "EXECUTION_TIMEOUT",
      ErrorCode::ExecutionError => "EXECUTION_ERROR",
      ErrorCode::InsufficientResources => "INSUFFICIENT_RESOURCES",
      ErrorCode::PermissionDenied => "PERMISSION_DENIED",
      ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
      ErrorCode::InvalidConfig => "INVALID_CONFIG",
      ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
      ErrorCode::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
      ErrorCode::ImageNotFound => "IMAGE_NOT_FOUND",
      ErrorCode::ProviderError => "PROVIDER_ERROR",
      ErrorCode::PoolExhausted => "POOL_EXHAUSTED",
      ErrorCode::PoolClosed => "POOL_CLOSED",
      ErrorCode::Aborted => "ABORTED",
      ErrorCode::ModelError => "MODEL_ERROR",
      ErrorCode::MaxTurnsExceeded => "MAX_TURNS_EXCEEDED",
      ErrorCode::FileNotFound => "FILE_NOT_FOUND",
      ErrorCode::NotSupported => "NOT_SUPPORTED",
      ErrorCode::SnapshotNotFound => "SNAPSHOT_NOT_FOUND",
    }
  }
}

#[derive(Debug, Clone)]
pub struct SandboxError {
  pub code: ErrorCode,
  pub message: String,
  /// A code a JavaScript provider gave its error that is not one of ours (`'ENOENT'`, ...):
  /// `err.code` shows it instead of `code`, so the provider's errors keep their code.
  pub foreign_code: Option<String>,
}

impl SandboxError {
  pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
    Self { code, message: message.into(), foreign_code: None }
  }

  /// The code as JS sees it (`err.code`).
  pub fn code_str(&self) -> &str {
    self.foreign_code.as_deref().unwrap_or(self.code.as_str())
  }

  /// The code named `name` (`"SANDBOX_NOT_FOUND"`), if it is one of ours.
  pub fn code_from_str(name: &str) -> Option<ErrorCode> {
    use ErrorCode::*;
    [
      SandboxNotFound, SandboxNotRunning, SandboxDestroyed, ExecutionTimeout, ExecutionError, InsufficientResources, PermissionDenied,
      QuotaExceeded, InvalidConfig, InvalidArgument, ProviderUnavailable, ImageNotFound, ProviderError, PoolExhausted, PoolClosed, Aborted,
      ModelError, MaxTurnsExceeded, FileNotFound, NotSupported, SnapshotNotFound,
    ]
    .into_iter()
    .find(|c| c.as_str() == name)
  }
  pub fn invalid_config(message: impl Into<String>) -> Self {
    Self::new(ErrorCode::InvalidConfig, message)
  }
  pub fn invalid_argument(message: impl Into<String>) -> Self {
    Self::new(ErrorCode::InvalidArgument, message)
  }
  pub fn provider(message: impl Into<String>) -> Self {
    Self::new(ErrorCode::ProviderError, message)
  }
}

impl fmt::Display for SandboxError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{}: {}", self.code.as_str(), self.message)
  }
}

impl std::error::Error for SandboxError {}

pub type Result<T> = std::result::Result<T, SandboxError>;
