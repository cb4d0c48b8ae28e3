//! `SandboxServer`: the sandbox service (`crate::server`) for JavaScript. Conversion and error
//! mapping only; the options object is read by `server::options`, so every message names the
//! option the way JavaScript wrote it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use serde_json::Value;

use crate::server::{options::ServerOptions, Server};
use super::{init_tracing, install_exit_hooks, promise, throw_coded};

/// Options of `new SandboxServer(options)`. All optional; limits are per API key (tenant).
#[napi(object)]
#[allow(dead_code)] // the typings' shape; the object itself is read by server::options
pub struct SandboxServerOptions {
  /// Port to listen on (default 8003; 0: any free port).
  pub port: Option<u32>,
  /// Address to listen on (default '127.0.0.1'). Beyond loopback only with API keys.
  pub host: Option<String>,
  /// API keys, each a tenant: a string (at least 16 characters), or `{ key, name?, ...limits }`
  /// with limits of its own. Added to those of `SANDBOX_API_KEYS` and `apiKeysFile`.
  #[napi(ts_type = "Array<string | ApiKeyOptions>")]
  pub api_keys: Option<Vec<Value>>,
  /// A file of API keys: one per line, or `<name> <key>`; `#` starts a comment line.
  pub api_keys_file: Option<String>,
  /// Read `SANDBOX_API_KEYS` (comma-separated keys) from the environment (default true).
  pub read_env: Option<bool>,
  /// The defaults of the server's sandboxes, as `new SandboxManager(config)` takes them.
  #[napi(ts_type = "SandboxConfig")]
  pub config: Option<Value>,
  /// The configuration file (default `$SANDBOX_CONFIG_FILE`, else `./.sandboxrc.json`).
  pub config_file: Option<String>,
  /// Sandboxes a tenant holds at once (default 10; 429 QUOTA_EXCEEDED past it).
  pub max_sandboxes: Option<u32>,
  /// Execute requests a tenant runs at once (default 4; 429 QUOTA_EXCEEDED past it).
  pub max_concurrent_executions: Option<u32>,
  /// Background processes a tenant runs at once over all its sandboxes (default 16; 429 QUOTA_EXCEEDED past it).
  pub max_background_processes: Option<u32>,
  /// Largest request body in bytes (default 10 MiB; 413 past it).
  pub max_body_bytes: Option<u32>,
  /// Lifetime of a sandbox whose create gives no `timeout`, in seconds (default 3600).
  pub default_timeout: Option<f64>,
  /// Longest lifetime (and execute budget) a request may ask for, in seconds (default 7 days).
  pub max_timeout: Option<f64>,
  /// Budget of an execute request that gives no `timeout`, in seconds (default 300).
  pub default_execution_timeout: Option<f64>,
  /// Each output stream of each command is cut here, in bytes (default 1 MiB; `truncated: true`).
  pub max_output_bytes: Option<u32>,
  /// Seconds that in-flight requests may run on after `close()` before they are cancelled (default 10).
  pub shutdown_timeout: Option<f64>,
  /// Log every request through the library's logger (stderr), target `agentic_sandbox::server::access`.
  pub access_log: Option<bool>,
  /// Distributed mode: the Redis the workers share (`redis://host:port/`; default `REDIS_URL`,
  /// else `REDIS_HOST` / `REDIS_PORT`). Without it the server runs alone.
  pub redis_url: Option<String>,
  /// This worker's id in the cluster, also the `worker` label of metrics and audit lines (default
  /// `WORKER_ID`, else `<hostname>-<pid>` in a cluster and the host name alone).
  pub worker_id: Option<String>,
  /// The URL other workers reach this one at (default `WORKER_URL`, else `http://<bound address>`).
  pub advertise_url: Option<String>,
  /// Seconds between heartbeats (default `HEARTBEAT_INTERVAL`, else 2); a worker is dead after three missed ones.
  pub heartbeat_interval: Option<f64>,
  /// The secret that marks requests forwarded between workers (default `SANDBOX_CLUSTER_SECRET`,
  /// else a random one the first worker records in Redis).
  pub cluster_secret: Option<String>,
  /// The audit log: a file to append one JSON line to per command run (tenant, sandbox, argv with
  /// secrets redacted, exit code, duration). Created with mode 0600. Default: none.
  pub audit_log: Option<String>,
  /// Serve `GET /metrics` without any credential (default false: on a server with API keys it
  /// takes `metricsToken`).
  pub metrics_public: Option<bool>,
  /// The bearer token of `GET /metrics` on a server with API keys (at least 16 characters;
  /// default `SANDBOX_METRICS_TOKEN` unless `readEnv: false`). Tenants' keys do not open it.
  pub metrics_token: Option<String>,
}

/// One API key with limits of its own (the server's limits where it gives none).
#[napi(object)]
#[allow(dead_code)]
pub struct ApiKeyOptions {
  pub key: String,
  /// The tenant's name in the access log and `/health` (default `key-<n>`).
  pub name: Option<String>,
  pub max_sandboxes: Option<u32>,
  pub max_concurrent_executions: Option<u32>,
  pub max_background_processes: Option<u32>,
  pub max_body_bytes: Option<u32>,
}

#[napi(object)]
pub struct ServerAddress {
  /// the bound address ('127.0.0.1', '::1', '0.0.0.0', ...)
  pub host: String,
  pub port: u32,
  /// `http://<host>:<port>`
  pub url: String,
}

fn address(a: SocketAddr) -> ServerAddress {
  let host = a.ip().to_string();
  let shown = if a.is_ipv6() { format!("[{host}]") } else { host.clone() };
  ServerAddress { url: format!("http://{shown}:{}", a.port()), host, port: a.port() as u32 }
}

/// Held while the server listens: a referenced threadsafe function keeps Node's event loop
/// alive, as a listening `net.Server` does.
type KeepAlive = ThreadsafeFunction<(), (), (), Status, false>;

/// Seed 004's sandbox service over HTTP (see README "Sandbox service"):
/// `const server = new SandboxServer({ port: 0, apiKeys: [key] }); const { url } = await server.listen(); ...; await server.close()`.
#[napi]
pub struct SandboxServer {
  inner: Arc<Server>,
  keepalive: Arc<Mutex<Option<KeepAlive>>>,
}

#[napi]
impl SandboxServer {
  /// Throws INVALID_CONFIG (synchronously) for bad options, keys or sandbox configuration.
  #[napi(constructor, ts_args_type = "options?: SandboxServerOptions")]
  pub fn new(env: Env, options: Option<Value>) -> Result<Self> {
    init_tracing();
    install_exit_hooks(&env)?;
    let opts = ServerOptions::from_json(options.as_ref(), &|k| std::env::var(k).ok(), &|p| std::fs::read_to_string(p))
      .map_err(|e| throw_coded(&env, e))?;
    let inner = Server::new(opts).map_err(|e| throw_coded(&env, e))?;
    Ok(Self { inner: Arc::new(inner), keepalive: Arc::new(Mutex::new(None)) })
  }

  /// Binds and serves; resolves with the bound address (port 0 picks a free port). Rejects with
  /// INVALID_CONFIG when the address cannot be bound, or is beyond loopback without API keys.
  /// While it listens, the server keeps the process alive (until `close()`).
  #[napi(ts_return_type = "Promise<ServerAddress>")]
  pub fn listen<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ServerAddress>> {
    let keep: KeepAlive = env
      .create_function_from_closure::<(), (), _>("agenticSandboxServerKeepAlive", |_| Ok(()))?
      .build_threadsafe_function::<()>()
      .callee_handled::<false>()
      .build()?;
    let (inner, slot) = (self.inner.clone(), self.keepalive.clone());
    promise(env, async move {
      let addr = inner.listen().await?;
      *slot.lock().unwrap() = Some(keep);
      Ok(address(addr))
    })
  }

  /// Stops accepting, lets in-flight requests finish within `shutdownTimeout` (then cancels
  /// them), and destroys every sandbox of the server. Safe to call more than once.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let (inner, slot) = (self.inner.clone(), self.keepalive.clone());
    promise(env, async move {
      let r = inner.close().await;
      slot.lock().unwrap().take();
      r
    })
  }

  /// Distributed mode: this worker's id in the cluster (undefined before `listen()`, or when
  /// the server runs alone).
  #[napi(getter)]
  pub fn worker_id(&self) -> Option<String> {
    self.inner.state().worker.get().map(|w| w.id.clone())
  }

  /// Where it listens (undefined before `listen()`).
  #[napi(getter, ts_return_type = "ServerAddress | undefined")]
  pub fn address(&self) -> Either<ServerAddress, ()> {
    match self.inner.address() {
      Some(a) => Either::A(address(a)),
      None => Either::B(()),
    }
  }
}
