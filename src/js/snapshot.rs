//! Snapshots at the JS surface (README "Snapshots"): `sandbox.snapshot()`,
//! `manager.listSnapshots()`, `manager.deleteSnapshot()`. Conversion and error mapping only; the
//! logic is in `core::snapshot` and `providers::docker::snapshot`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::{promise, Sandbox, SandboxManager};
use crate::core::config;
use crate::core::error::SandboxError;
use crate::providers::docker;

/// A saved sandbox filesystem (the container's writable layer and the workspace), kept as a
/// Docker image on the engine until `manager.deleteSnapshot(name)`.
#[napi(object)]
pub struct SnapshotInfo {
  pub name: String,
  /// The image's id ('sha256:...'); its tag is `agentic-sandbox-snapshot/<name>:latest`.
  pub image: String,
  /// The sandbox it was taken from.
  pub sandbox_id: String,
  /// Milliseconds since the Unix epoch.
  pub created_at: f64,
  /// The image's size as the engine reports it (its base image included), in bytes.
  pub size_bytes: f64,
  /// Where the workspace files were; sandboxes made from the snapshot default to it.
  pub workdir: String,
  /// The image the snapshot (or the first snapshot of a chain) was taken on.
  pub base_image: String,
}

impl From<crate::core::snapshot::SnapshotInfo> for SnapshotInfo {
  fn from(s: crate::core::snapshot::SnapshotInfo) -> Self {
    Self {
      name: s.name,
      image: s.image,
      sandbox_id: s.sandbox_id,
      created_at: s.created_at,
      size_bytes: s.size_bytes,
      workdir: s.workdir,
      base_image: s.base_image,
    }
  }
}

#[napi(object)]
pub struct SnapshotOptions {
  /// 1–64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit; default:
  /// the sandbox's id and the time. An existing name is INVALID_ARGUMENT.
  pub name: Option<String>,
}

#[napi]
impl Sandbox {
  /// Saves the running sandbox's filesystem (its container's writable layer and its workspace;
  /// not tmpfs mounts such as /tmp, not processes or memory) as a snapshot that
  /// `createSandbox({ fromSnapshot: name })` starts new sandboxes from. Rejects with
  /// INVALID_ARGUMENT (bad or taken name), SANDBOX_NOT_RUNNING, NOT_SUPPORTED (providers other
  /// than docker), INSUFFICIENT_RESOURCES (workspace archive over diskMB) or PROVIDER_ERROR.
  #[napi(ts_args_type = "options?: SnapshotOptions", ts_return_type = "Promise<SnapshotInfo>")]
  pub fn snapshot<'env>(&self, env: &'env Env, options: Option<SnapshotOptions>) -> Result<PromiseRaw<'env, SnapshotInfo>> {
    let inner = self.inner.clone();
    let name = options.and_then(|o| o.name);
    promise(env, async move { inner.snapshot(name).await.map(SnapshotInfo::from) })
  }
}

async fn engine(manager: &crate::core::manager::Manager) -> std::result::Result<::bollard::Docker, SandboxError> {
  let cfg = config::resolve(manager.defaults())?;
  docker::connect(cfg.docker.socket_path.as_deref()).await
}

#[napi]
impl SandboxManager {
  /// The snapshots on this manager's Docker engine (images labelled
  /// `agentic-sandbox.snapshot=true`), oldest first.
  #[napi(ts_return_type = "Promise<Array<SnapshotInfo>>")]
  pub fn list_snapshots<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<SnapshotInfo>>> {
    let inner = self.inner.clone();
    promise(env, async move {
      let d = engine(&inner).await?;
      Ok(docker::snapshot::list(&d).await?.into_iter().map(SnapshotInfo::from).collect())
    })
  }

  /// Deletes a snapshot's image. Rejects with SNAPSHOT_NOT_FOUND for an unknown name, and with
  /// INVALID_ARGUMENT while a sandbox made from it still exists (destroy it first).
  #[napi(ts_return_type = "Promise<void>")]
  pub fn delete_snapshot<'env>(&self, env: &'env Env, name: String) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    promise(env, async move {
      let d = engine(&inner).await?;
      docker::snapshot::delete(&d, &name).await
    })
  }
}
