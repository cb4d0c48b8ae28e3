//! `manager.registerProvider(name, CustomSandbox)` and the TypeScript shape of a provider written
//! in JavaScript (`CustomSandbox`). The provider itself is `providers::js`.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

use super::{throw_coded, SandboxManager};
use crate::core::error::SandboxError;
use crate::providers::js::{DispatchArgs, JsFactory, JsOutcome, DEFAULT_CALL_TIMEOUT, DISPATCH_JS};

/// `DISPATCH_JS`: (name, the user's class or factory) => the dispatcher Rust calls.
type MakeDispatch<'a> = Function<'a, FnArgs<(String, Unknown<'a>)>, Function<'a, DispatchArgs, Promise<JsOutcome>>>;

#[napi(object)]
pub struct RegisterProviderOptions {
  /// Longest any call of the provider but `execute` may take, in seconds (default 60); `execute`
  /// gets its command's timeout plus 5 s. A call past it fails with PROVIDER_ERROR (a command:
  /// timed out, exit code 124).
  pub timeout_seconds: Option<f64>,
}

/// What `execute` of a `CustomSandbox` gets besides the command and its arguments.
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct CustomExecuteOptions {
  /// seconds; the provider should stop the command after it (the library stops waiting 5 s later)
  pub timeout: f64,
  pub env: std::collections::HashMap<String, String>,
  /// absolute working directory (relative paths are resolved against the sandbox workdir)
  pub workdir: String,
  /// the command's stdin, when it has one
  pub stdin: Option<Buffer>,
}

/// What `execute` of a `CustomSandbox` resolves with.
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct CustomExecuteResult {
  pub exit_code: i32,
  #[napi(ts_type = "string | Buffer")]
  pub stdout: Value,
  #[napi(ts_type = "string | Buffer")]
  pub stderr: Value,
  pub timed_out: Option<bool>,
  /// the signal that ended it ('SIGKILL', ...)
  pub signal: Option<String>,
}

/// A sandbox provider written in JavaScript: implement this (seed 000's `Sandbox` interface) and
/// register the class with `manager.registerProvider(name, MySandbox)`. Paths arrive absolute
/// (resolved against the sandbox's workdir). Throwing (or rejecting) fails the call with the
/// error's message; an `err.code` of the library's codes keeps that code, any other code shows
/// as `err.code` too (under PROVIDER_ERROR semantics).
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct CustomSandbox {
  /// informational: the library gives the sandbox its own id ('<provider>-<16 hex digits>')
  pub id: Option<String>,
  #[napi(ts_type = "() => Promise<void>")]
  pub start: Value,
  #[napi(ts_type = "(command: string, args: string[], options: CustomExecuteOptions) => Promise<CustomExecuteResult>")]
  pub execute: Value,
  #[napi(ts_type = "(path: string, content: Buffer) => Promise<void | { success: boolean; error?: string }>")]
  pub write_file: Value,
  #[napi(ts_type = "(path: string) => Promise<string | Buffer | { success?: boolean; content?: string | Buffer; error?: string }>")]
  pub read_file: Value,
  /// names in the directory (relative paths with `recursive`)
  #[napi(ts_type = "(path: string, options: { recursive: boolean; all: boolean }) => Promise<string[]>")]
  pub list_files: Value,
  #[napi(ts_type = "(path: string, options: { recursive: boolean }) => Promise<void | { success: boolean; error?: string }>")]
  pub delete_file: Value,
  #[napi(ts_type = "() => Promise<void>")]
  pub stop: Value,
  #[napi(ts_type = "() => Promise<void>")]
  pub destroy: Value,
  /// optional: zeros without it
  #[napi(ts_type = "() => Promise<Partial<ResourceStats>>")]
  pub get_stats: Option<Value>,
  /// optional: healthy without it
  #[napi(ts_type = "() => Promise<HealthCheckResult>")]
  pub health_check: Option<Value>,
  /// optional: listFilesDetailed, recursive listings with sizes (workspace quotas, the agent's file capture) need it
  #[napi(ts_type = "(path: string, options: { recursive: boolean; all: boolean }) => Promise<Array<Partial<FileInfo> & { path: string }>>")]
  pub list_files_detailed: Option<Value>,
  /// optional: back to a clean state for a pool's next user (without it a pool replaces the sandbox)
  #[napi(ts_type = "() => Promise<void>")]
  pub reset: Option<Value>,
}

#[napi]
impl SandboxManager {
  /// Registers a provider written in JavaScript (seed 000 FAQ Q25): a class implementing
  /// `CustomSandbox` (constructed with the sandbox's effective configuration), or a function
  /// `(config) => sandbox`. Then `createSandbox({ provider: name })` — and sessions, pools,
  /// runCode, runTests, the agent executor — run on it. Registering a name again replaces it for
  /// sandboxes made from then on. Throws INVALID_ARGUMENT for a bad name or implementation.
  #[napi(
    ts_args_type = "name: string, provider: (new (config: SandboxConfig & { id: string }) => CustomSandbox) | ((config: SandboxConfig & { id: string }) => CustomSandbox | Promise<CustomSandbox>), options?: RegisterProviderOptions"
  )]
  pub fn register_provider(&self, env: Env, name: String, provider: Unknown<'_>, options: Option<RegisterProviderOptions>) -> Result<()> {
    let bad = |m: String| throw_coded(&env, SandboxError::invalid_argument(m));
    let call_timeout = match options.and_then(|o| o.timeout_seconds) {
      None => DEFAULT_CALL_TIMEOUT,
      Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Duration::from_secs_f64(s),
      Some(s) => return Err(bad(format!("timeoutSeconds must be a number of seconds in (0, 86400], got {s}"))),
    };
    if provider.get_type()? != ValueType::Function {
      return Err(bad(format!("registerProvider({name:?}, provider): provider must be a class or a function (config) => sandbox")));
    }
    let make: MakeDispatch = env.run_script(DISPATCH_JS)?;
    let dispatch = make.call(FnArgs::from((name.clone(), provider)))?;
    let tsfn = dispatch.build_threadsafe_function::<DispatchArgs>().callee_handled::<false>().weak::<true>().build()?;
    let factory = JsFactory { name: name.clone(), dispatch: Arc::new(tsfn), call_timeout };
    self.inner.providers().register(&name, Arc::new(factory)).map_err(|e| throw_coded(&env, e))
  }
}
