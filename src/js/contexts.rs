//! napi bindings of code contexts (`createCodeContext`, `runCode(code, { context })`,
//! `restartCodeContext`, `listCodeContexts`, `removeCodeContext`). Conversion only; the logic
//! is in `service::contexts`.

use std::collections::HashMap;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::core::error::SandboxError;
use crate::core::sandbox::AnySandbox;
use crate::service::contexts as ctx;
use super::service::{CodeExecutionResult, RunCodeOptions};
use super::{promise, Sandbox};

#[napi(object)]
pub struct CodeContext {
  pub id: String,
  #[napi(ts_type = "'python' | 'javascript' | 'typescript' | 'bash'")]
  pub language: String,
  /// Absolute directory the interpreter started in.
  pub cwd: String,
}

#[napi(object, object_to_js = false)]
pub struct CodeContextOptions {
  /// Default: the template's language as runCode uses it (python → python, node → javascript),
  /// else bash. typescript needs the typescript or esbuild package (or tsx) in the sandbox; go is
  /// refused (INVALID_ARGUMENT).
  #[napi(ts_type = "'python' | 'javascript' | 'typescript' | 'bash'")]
  pub language: Option<String>,
  /// Working directory, relative to the sandbox's workdir (default: the workdir).
  pub cwd: Option<String>,
  /// Environment of the interpreter (over the sandbox's).
  pub env: Option<HashMap<String, String>>,
}

/// One output of a cell, by MIME type (as Jupyter's display data).
#[napi(object)]
pub struct CodeResult {
  /// Plain text (Python `repr`, Node `util.inspect`).
  pub text: Option<String>,
  /// The value as JSON, where it is serialisable.
  #[napi(ts_type = "any")]
  pub json: Option<serde_json::Value>,
  pub html: Option<String>,
  /// Base64 PNG (matplotlib figures, `_repr_png_`).
  pub png: Option<String>,
  /// Base64 JPEG.
  pub jpeg: Option<String>,
  pub svg: Option<String>,
  pub markdown: Option<String>,
  /// The value of the cell's final expression (at most one per cell, and last).
  pub is_main_result: bool,
}

/// The exception a cell raised.
#[napi(object)]
pub struct CodeCellError {
  /// The exception's class (`ZeroDivisionError`, `ReferenceError`), or `TimeoutError`,
  /// `ContextRestarted`, `ContextDied`, `ContextRemoved`, `ResultTooLarge`, `ResultError`,
  /// `NonZeroExitStatus` (bash).
  pub name: String,
  pub value: String,
  pub traceback: String,
}

fn info_js(i: ctx::ContextInfo) -> CodeContext {
  CodeContext { id: i.id, language: i.language.as_str().to_string(), cwd: i.cwd }
}

/// A context given as its id or as the object `createCodeContext` returned.
fn context_id(c: Either<String, Object<'_>>) -> std::result::Result<String, SandboxError> {
  match c {
    Either::A(id) => Ok(id),
    Either::B(o) => o
      .get_named_property::<String>("id")
      .map_err(|_| SandboxError::invalid_argument("context must be a context id (string) or the object createCodeContext returned (with its `id`)")),
  }
}

/// `runCode(code, { context })`: the options other than `context` and `signal` (already taken).
pub(super) fn run_in_context<'env>(
  env: &'env Env,
  inner: Arc<AnySandbox>,
  code: String,
  context: Either<String, Object<'env>>,
  o: RunCodeOptions<'env>,
  abort: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<PromiseRaw<'env, CodeExecutionResult>> {
  let refuse = |e: SandboxError| promise(env, async move { Err::<CodeExecutionResult, _>(e) });
  let id = match context_id(context) {
    Ok(id) => id,
    Err(e) => return refuse(e),
  };
  if o.workdir.is_some() || o.env.as_ref().is_some_and(|e| !e.is_empty()) {
    return refuse(SandboxError::invalid_argument(
      "runCode in a code context takes no workdir or env: the context keeps its own (change directory or environment in a cell, or give cwd/env to createCodeContext)",
    ));
  }
  // the call's place in the context's queue, taken now: calls run in the order they are made
  let turn = match inner.contexts.turn(inner.id(), &id) {
    Ok(t) => t,
    Err(e) => return refuse(e),
  };
  let sink = super::ChunkSink::new(o.on_stdout, o.on_stderr);
  let language = o.language;
  let opts = ctx::CellOptions {
    timeout: o.timeout,
    max_output_bytes: o.max_output_bytes.map(|n| n.max(0.0) as usize),
    sink: sink.as_ref().map(|s| s.as_output_sink()),
    abort,
  };
  promise(env, async move {
    if let Some(l) = &language {
      let want = ctx::Lang::parse(l)?;
      let have = inner.contexts.list().into_iter().find(|c| c.id == id).map(|c| c.language);
      if have.is_some_and(|h| h != want) {
        return Err(SandboxError::invalid_argument(format!(
          "code context {id} runs {}, not {}; leave out language, or use a context of that language",
          have.map(|h| h.as_str()).unwrap_or_default(),
          want.as_str()
        )));
      }
    }
    let run = ctx::run(&inner, turn, &code, opts).await;
    if let Some(s) = &sink {
      s.flushed().await;
    }
    let r = run?;
    let stdout = super::lossy(r.stdout);
    let stderr = super::lossy(r.stderr);
    let ok = r.exit_code == 0 && !r.timed_out && r.error.is_none();
    Ok(CodeExecutionResult {
      success: ok,
      output: stdout.clone(),
      error: if stderr.is_empty() { None } else { Some(stderr.clone()) },
      exit_code: r.exit_code as i32,
      status: if r.timed_out { "timeout" } else if ok { "completed" } else { "failed" }.to_string(),
      language: r.language.as_str().to_string(),
      duration: (r.duration_ms * 100.0).round() / 100.0,
      stdout,
      stderr,
      truncated: r.truncated,
      memory_used_mb: None,
      timed_out: r.timed_out,
      results: Some(
        r.results
          .into_iter()
          .map(|o| CodeResult {
            text: o.text,
            json: o.json,
            html: o.html,
            png: o.png,
            jpeg: o.jpeg,
            svg: o.svg,
            markdown: o.markdown,
            is_main_result: o.is_main_result,
          })
          .collect(),
      ),
      exception: r.error.map(|e| CodeCellError { name: e.name, value: e.value, traceback: e.traceback }),
      context_restarted: Some(r.context_restarted),
    })
  })
}

#[napi]
impl Sandbox {
  /// Starts a code context: a long-lived interpreter (python, javascript or bash) in the sandbox.
  /// `runCode(code, { context })` runs cells in it; variables, imports and loaded data persist.
  /// At most 8 per sandbox (QUOTA_EXCEEDED); they end with the sandbox. See README "Code contexts".
  #[napi(ts_args_type = "options?: CodeContextOptions", ts_return_type = "Promise<CodeContext>")]
  pub fn create_code_context<'env>(&self, env: &'env Env, options: Option<CodeContextOptions>) -> Result<PromiseRaw<'env, CodeContext>> {
    let inner = self.inner.clone();
    let opts = match options {
      Some(o) => ctx::ContextOptions { language: o.language, cwd: o.cwd, env: super::service::env_map(o.env) },
      None => Default::default(),
    };
    promise(env, async move { Ok(info_js(ctx::create(&inner, opts).await?)) })
  }

  /// Replaces the context's interpreter with a fresh one (its state is lost); waits for a
  /// running cell first.
  #[napi(ts_args_type = "context: string | CodeContext", ts_return_type = "Promise<void>")]
  pub fn restart_code_context<'env>(&self, env: &'env Env, context: Either<String, Object<'env>>) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    let turn = context_id(context).and_then(|id| inner.contexts.turn(inner.id(), &id));
    promise(env, async move { ctx::restart(&inner, turn?).await })
  }

  /// The sandbox's code contexts.
  #[napi(ts_return_type = "Promise<CodeContext[]>")]
  pub fn list_code_contexts<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<CodeContext>>> {
    let inner = self.inner.clone();
    promise(env, async move { Ok(inner.contexts.list().into_iter().map(info_js).collect()) })
  }

  /// Removes a context and kills its interpreter. Resolves false when there was no such context.
  #[napi(ts_args_type = "context: string | CodeContext", ts_return_type = "Promise<boolean>")]
  pub fn remove_code_context<'env>(&self, env: &'env Env, context: Either<String, Object<'env>>) -> Result<PromiseRaw<'env, bool>> {
    let inner = self.inner.clone();
    let id = context_id(context);
    promise(env, async move { Ok(ctx::remove(&inner, &id?)) })
  }
}
