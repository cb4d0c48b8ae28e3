//! The E2B provider: sandboxes in E2B's cloud (Firecracker microVMs) over the real E2B protocol
//! with reqwest — the control plane's REST API for the lifecycle and each sandbox's envd (Connect
//! JSON and `/files`) for processes and files. See `shared/reference/e2b-protocol.md`.
//!
//! Configuration is [`E2bOptions::resolve`] (`e2b` config object over `E2B_*` variables).
//! `E2B_API_URL` and `E2B_SANDBOX_URL` point the provider at a local fake.
//!
//! Differences from the Docker provider, because of what E2B is:
//! - the default workdir `/workspace` maps to `/home/user` (E2B's default user cannot create
//!   directories at `/`); another `workdir` is created at start;
//! - `limits.timeoutSeconds` is also the sandbox's lifetime, extended while it is used (see
//!   `sandbox.rs`); `memoryMB`, `cpuCores`, `diskMB`, `pidsLimit`, `gpu` and the `docker`
//!   options are decided by the E2B template, not by this config;
//! - the network is E2B's (`network.rs`), mapped as follows:
//!   - `networkMode: 'none'` → create with `allow_internet_access: false`;
//!   - `networkMode: 'isolated'` (the default) and `'bridge'` without `network` rules → nothing
//!     sent: E2B's default network, with internet access (so `'isolated'`, on Docker a network
//!     with no route out, is wider here; the config warns when it is set explicitly);
//!   - `network: { allowOut, denyOut }` (and `networkMode: 'restricted'`) → create with
//!     `network: { allowOut, denyOut }`, presets (`npm`, `pypi`, …) expanded to their domains,
//!     entries written canonically (lowercase, `1.2.3.4` for a /32), repeats and empty lists
//!     dropped. E2B's semantics match ours: an `allowOut` entry wins, what no entry names is
//!     allowed, `0.0.0.0/0` is everything. Not ours: the fixed deny set of the Docker egress
//!     gateway (private ranges, cloud metadata) is E2B's business, not part of the rules sent;
//!   - `updateNetwork(policy)` → `PUT /sandboxes/{id}/network` with the same lists (E2B replaces
//!     the whole config: what is left out is cleared); the policy is then what `getStatus()`
//!     reports (`gateway` none, counters 0: E2B reports no decisions). A later `start()` that
//!     has to create a new E2B sandbox (after an error) uses the updated policy;
//!   - refused with `INVALID_CONFIG` before any request, naming the entry, rather than sent
//!     wider: an entry with a `:port` (E2B rules have no ports), a domain or domain preset in
//!     `denyOut` (E2B takes only addresses and CIDRs there), and `updateNetwork` on a sandbox
//!     created with `networkMode: 'none'`;
//! - signals other than SIGKILL reach a process as SIGTERM (envd accepts only those two);
//! - `stop()` pauses the sandbox (E2B persistence), `start()` resumes it;
//! - a foreground command's leftover background children are not killed when it returns.

pub mod client;
pub mod connect;
mod files;
pub mod network;
pub mod options;
pub mod process;
pub mod sandbox;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use options::E2bOptions;
pub use sandbox::E2bSandbox;

/// Longest time `kill_all_sync` spends on its requests.
const EXIT_KILL_BUDGET: Duration = Duration::from_millis(2500);

/// What an exit hook needs to kill one E2B sandbox.
#[derive(Clone)]
pub(crate) struct KillTarget {
  api_url: String,
  api_key: String,
  sandbox_id: String,
}

impl KillTarget {
  pub(crate) fn new(opts: &E2bOptions, sandbox_id: &str) -> Self {
    Self { api_url: opts.api_url.clone(), api_key: opts.api_key.clone(), sandbox_id: sandbox_id.to_string() }
  }
}

/// Live E2B sandboxes of this process, by our sandbox id.
fn registry() -> &'static Mutex<HashMap<String, KillTarget>> {
  static REG: OnceLock<Mutex<HashMap<String, KillTarget>>> = OnceLock::new();
  REG.get_or_init(Default::default)
}

/// Record (or with `None` forget) the E2B sandbox behind one of ours.
pub(crate) fn record(id: &str, target: Option<KillTarget>) {
  let mut reg = registry().lock().unwrap();
  match target {
    Some(t) => reg.insert(id.to_string(), t),
    None => reg.remove(id),
  };
}

/// Kill the E2B sandbox behind one of ours now (`DELETE /sandboxes/{id}`), without its sandbox
/// object (whose own destroy is stuck). False when none is recorded; 404 counts as killed.
pub async fn force_kill(id: &str) -> crate::core::error::Result<bool> {
  let target = registry().lock().unwrap().get(id).cloned();
  let Some(t) = target else { return Ok(false) };
  let b = reqwest::Client::builder().timeout(EXIT_KILL_BUDGET).connect_timeout(EXIT_KILL_BUDGET);
  let client = if client::is_loopback(&t.api_url) { b.no_proxy() } else { b }
    .build()
    .map_err(|e| crate::core::error::SandboxError::provider(format!("cannot build an HTTP client: {e}")))?;
  let mut key = reqwest::header::HeaderValue::from_str(&t.api_key)
    .map_err(|_| crate::core::error::SandboxError::invalid_config("the E2B API key is not a valid header value"))?;
  key.set_sensitive(true);
  let r = client
    .delete(format!("{}/sandboxes/{}", t.api_url, t.sandbox_id))
    .header("X-API-Key", key)
    .send()
    .await
    .map_err(|e| crate::core::error::SandboxError::provider(format!("could not kill E2B sandbox {}: {e}", t.sandbox_id)))?;
  let status = r.status().as_u16();
  if (200..300).contains(&status) || status == 404 {
    record(id, None);
    Ok(true)
  } else {
    Err(crate::core::error::SandboxError::provider(format!("could not kill E2B sandbox {}: HTTP {status}", t.sandbox_id)))
  }
}

/// Best-effort synchronous kill (`DELETE /sandboxes/{id}`) of every E2B sandbox this process
/// created and did not destroy, paused ones included. For exit hooks: runs on its own thread and
/// runtime (so it works from any thread, inside a runtime or not) and returns within ~3 s.
pub fn kill_all_sync() {
  let targets: Vec<KillTarget> = registry().lock().unwrap().drain().map(|(_, t)| t).collect();
  if targets.is_empty() {
    return;
  }
  let worker = std::thread::spawn(move || {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    rt.block_on(async move {
      let build = |no_proxy: bool| {
        let b = reqwest::Client::builder().timeout(EXIT_KILL_BUDGET).connect_timeout(EXIT_KILL_BUDGET);
        if no_proxy { b.no_proxy() } else { b }.build().ok()
      };
      let (direct, proxied) = (build(true), build(false));
      let kills = targets.iter().filter_map(|t| {
        let client = if client::is_loopback(&t.api_url) { direct.as_ref() } else { proxied.as_ref() }?;
        let mut key = reqwest::header::HeaderValue::from_str(&t.api_key).ok()?;
        key.set_sensitive(true);
        let req = client.delete(format!("{}/sandboxes/{}", t.api_url, t.sandbox_id)).header("X-API-Key", key).send();
        Some(async move {
          match req.await {
            Ok(r) => tracing::debug!(remote = %t.sandbox_id, status = r.status().as_u16(), "exit: e2b sandbox killed"),
            Err(e) => tracing::warn!(remote = %t.sandbox_id, error = %e, "exit: could not kill an e2b sandbox"),
          }
        })
      });
      let all = futures_util::future::join_all(kills);
      if tokio::time::timeout(EXIT_KILL_BUDGET + Duration::from_millis(300), all).await.is_err() {
        tracing::warn!("exit: killing e2b sandboxes timed out");
      }
    });
  });
  let _ = worker.join();
}
