//! Snapshots on Docker: a sandbox's filesystem saved as an image of the engine, and new
//! sandboxes started from it (README "Snapshots").
//!
//! How a snapshot is made (the decision, and why):
//!
//! 1. The container's filesystem is exported (`docker export`: the image's files with the
//!    container's writable layer on top, without its volumes, tmpfs and bind mounts, so neither
//!    the workspace nor the guest binary) and imported as a one-layer "partial" image (label
//!    `agentic-sandbox.snapshot=partial`). Not `docker commit`: a commit stores the container's
//!    whole configuration in the image's metadata (`ContainerConfig`, shown by `docker image
//!    inspect`), its environment included, which may hold secrets, HOME and the egress
//!    gateway's proxy variables; and the partial image stays as the snapshot's parent. The price:
//!    a snapshot does not share the base image's layers (it is a full copy of the filesystem).
//! 2. The workspace (a tmpfs volume the export does not see) is read with the engine's archive
//!    API from the running container and written with the same API into a temporary container made
//!    from the partial image and never started, so the files land in that container's layer; that
//!    container is committed as the snapshot image, then removed. The commit's config is the
//!    sandbox image's own (`Env`, `Cmd`, `Entrypoint`, `User`, `WorkingDir`, `ExposedPorts`,
//!    `Volumes`, `Healthcheck`, `StopSignal`, its labels), never the sandbox's: no environment of
//!    the sandbox, no guest entrypoint. Images with neither an entrypoint nor a command get
//!    `Cmd ["/bin/sh"]`. The files go to a directory of their own,
//!    `/.agentic-sandbox-snapshot/workspace-<random>` (label `agentic-sandbox.snapshot-workspace`),
//!    not to the workdir: in a snapshot of a snapshot, the workdir of the lower image may hold
//!    files that a tar cannot delete.
//!
//! A sandbox with a read-only root (the default) has nothing of its own in its writable layer:
//! step 1 is skipped, the temporary container is made from the sandbox's image, and the snapshot
//! is that image plus one layer holding the workspace (sharing the image's layers).
//!
//! The partial image stays as the snapshot image's parent (the engine refuses to delete an image
//! with children; `docker images -a` shows it untagged, with a clean config) and goes with it:
//! deleting the snapshot deletes its untagged parents. A partial image whose snapshot never
//! finished (its process died) is removed by the next snapshot taken on this host.
//!
//! The archive streams come from inside the sandbox, so they are hostile: they go from the engine
//! back to the engine without being unpacked on the host; the workspace's is cut at the sandbox's
//! `diskMB` plus [`ARCHIVE_SLACK`] (tar headers of many empty files take room that tmpfs does
//! not; the export's is bounded by its deadline only, as the root filesystem has no size cap), and
//! the engine resolves the archive's paths and symlinks inside the container's root (it tars and
//! untars chrooted there), so a symlink to `/etc/shadow` is copied as a symlink and read as the
//! container's file, never the host's.
//!
//! Starting from a snapshot: the sandbox's image is the snapshot's, and its workspace volume is
//! filled at start from the snapshot's copy, again with the archive API: Docker copies an image's
//! files into an empty named volume when it mounts it, but not into a tmpfs-backed one (it
//! copies, then unmounts the tmpfs, so the files are lost: checked on Docker 20.10).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
  CommitContainerOptions, CreateContainerOptions, DownloadFromContainerOptions, ListImagesOptions,
  RemoveContainerOptions, RemoveImageOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::Value;

use super::sandbox::DockerSandbox;
use super::{hostname, process_start_ticks, LABEL_ID, LABEL_MANAGED, LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_OWNER_START};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::snapshot::{self as snap, SnapshotInfo};

/// Where a snapshot keeps its copy of the workspace: the path of the label.
pub const LABEL_WORKSPACE: &str = "agentic-sandbox.snapshot-workspace";
const WORKSPACE_DIR: &str = "/.agentic-sandbox-snapshot";
/// What the archive of a workspace may exceed its sandbox's `diskMB` by (tar headers).
pub const ARCHIVE_SLACK: u64 = 64 * 1024 * 1024;
/// One quick engine call (inspect, create, remove).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// One commit (the engine writes the layer to disk).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Copying a workspace (up to `diskMB` through the engine twice).
const COPY_TIMEOUT: Duration = Duration::from_secs(600);

fn late(what: &str, limit: Duration) -> SandboxError {
  SandboxError::provider(format!("{what}: no answer from the Docker engine within {} s", limit.as_secs()))
}

async fn call<T>(
  what: &str,
  limit: Duration,
  f: impl std::future::Future<Output = std::result::Result<T, bollard::errors::Error>>,
) -> std::result::Result<T, CallError> {
  match tokio::time::timeout(limit, f).await {
    Ok(Ok(v)) => Ok(v),
    Ok(Err(e)) => Err(CallError::Engine(what.to_string(), e)),
    Err(_) => Err(CallError::Late(late(what, limit))),
  }
}

/// A failed engine call: the engine's answer (to map by status), or no answer in time.
enum CallError {
  Engine(String, bollard::errors::Error),
  Late(SandboxError),
}

impl CallError {
  fn status(&self) -> Option<u16> {
    match self {
      CallError::Engine(_, bollard::errors::Error::DockerResponseServerError { status_code, .. }) => Some(*status_code),
      _ => None,
    }
  }
}

impl From<CallError> for SandboxError {
  fn from(e: CallError) -> Self {
    match e {
      CallError::Engine(what, e) => SandboxError::provider(format!("{what} failed: {e}")),
      CallError::Late(e) => e,
    }
  }
}

fn now_ms() -> f64 {
  crate::core::logs::now_ms()
}

/// Names being snapshotted by this process (two snapshots of one name would overwrite each other's tag).
fn in_progress() -> &'static Mutex<HashSet<String>> {
  static NAMES: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
  NAMES.get_or_init(Default::default)
}

struct NameClaim(String);
impl Drop for NameClaim {
  fn drop(&mut self) {
    in_progress().lock().unwrap().remove(&self.0);
  }
}

fn exists_error(name: &str) -> SandboxError {
  SandboxError::invalid_argument(format!(
    "a snapshot named {name:?} already exists; delete it first (manager.deleteSnapshot({name:?})) or choose another name"
  ))
}

/// `None` when the image is missing.
async fn inspect_image(docker: &Docker, image: &str) -> Result<Option<bollard::models::ImageInspect>> {
  match call(&format!("inspecting image {image}"), CALL_TIMEOUT, docker.inspect_image(image)).await {
    Ok(i) => Ok(Some(i)),
    Err(e) if e.status() == Some(404) => Ok(None),
    Err(e) => Err(e.into()),
  }
}

/// The snapshot's image, or SNAPSHOT_NOT_FOUND (also for an image of that name that is not a snapshot).
pub async fn inspect(docker: &Docker, name: &str) -> Result<(bollard::models::ImageInspect, SnapshotInfo)> {
  let image = inspect_image(docker, &snap::image_ref(name)).await?.ok_or_else(|| snap::not_found(name))?;
  let labels = image.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
  let info = snap::from_labels(&labels, image.id.as_deref().unwrap_or_default(), image.size.unwrap_or(0) as f64)
    .filter(|i| i.name == name)
    .ok_or_else(|| snap::not_found(name))?;
  Ok((image, info))
}

/// Copy the tar of `src_path` in `src` (`<dir>/.`: the directory's contents) into `dst_path` of
/// `dst`, engine to engine, cut after `cap` bytes. The host never unpacks it.
async fn copy_tree(docker: &Docker, src: &str, src_path: &str, dst: &str, dst_path: &str, cap: u64, what: &str) -> Result<()> {
  let seen = Arc::new(AtomicU64::new(0));
  let over = Arc::new(AtomicBool::new(false));
  let read_error: Arc<Mutex<Option<String>>> = Arc::default();
  let (s, o, r) = (seen.clone(), over.clone(), read_error.clone());
  let download = docker.download_from_container(src, Some(DownloadFromContainerOptions { path: src_path.to_string() }));
  let capped = download.map(move |chunk| match chunk {
    Ok(bytes) => {
      let total = s.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
      if total > cap {
        o.store(true, Ordering::Relaxed);
        Err(std::io::Error::other("archive too large"))
      } else {
        Ok(bytes)
      }
    }
    Err(e) => {
      r.lock().unwrap().get_or_insert_with(|| e.to_string());
      Err(std::io::Error::other(e.to_string()))
    }
  });
  let upload = docker.upload_to_container(
    dst,
    Some(UploadToContainerOptions { path: dst_path.to_string(), ..Default::default() }),
    bollard::body_try_stream(capped),
  );
  let result = tokio::time::timeout(COPY_TIMEOUT, upload).await;
  if over.load(Ordering::Relaxed) {
    return Err(SandboxError::new(
      ErrorCode::InsufficientResources,
      format!(
        "{what}: the archive of {src_path} exceeded {} MB (diskMB plus {} MB for tar headers) and was cut; remove files (many small or empty files take room in a tar), or raise limits.diskMB",
        cap / (1024 * 1024),
        ARCHIVE_SLACK / (1024 * 1024)
      ),
    ));
  }
  let read_error = read_error.lock().unwrap().take();
  if let Some(e) = read_error {
    return Err(SandboxError::provider(format!("{what}: could not read {src_path}: {e}")));
  }
  match result {
    Err(_) => Err(late(what, COPY_TIMEOUT)),
    Ok(Err(e)) => {
      let msg = e.to_string();
      if msg.contains("no space left") {
        Err(SandboxError::new(
          ErrorCode::InsufficientResources,
          format!("{what}: the files do not fit ({msg}); give the sandbox a larger limits.diskMB"),
        ))
      } else {
        Err(SandboxError::provider(format!("{what}: {msg}")))
      }
    }
    Ok(Ok(())) => Ok(()),
  }
}

/// `docker rm -f`, failures logged (the reaper removes what is left: the container is labelled).
async fn remove_container(docker: &Docker, id: &str) {
  let r = call(
    "removing the snapshot's temporary container",
    CALL_TIMEOUT,
    docker.remove_container(id, Some(RemoveContainerOptions { force: true, v: true, ..Default::default() })),
  )
  .await;
  if let Err(e) = r {
    if e.status() != Some(404) {
      tracing::warn!(container = %id, error = %SandboxError::from(e), "could not remove a snapshot's temporary container; the reaper will");
    }
  }
}

async fn remove_image(docker: &Docker, id: &str) {
  let r = call("removing an image", CALL_TIMEOUT, docker.remove_image(id, None::<RemoveImageOptions>, None)).await;
  if let Err(e) = r {
    if e.status() != Some(404) {
      tracing::warn!(image = %id, error = %SandboxError::from(e), "could not remove a snapshot's partial image");
    }
  }
}

/// The snapshot's config: the sandbox image's own, with `labels` added to its labels.
fn commit_config(image: &bollard::models::ImageConfig, labels: HashMap<String, String>) -> ContainerConfig {
  let entrypoint = image.entrypoint.clone().unwrap_or_default();
  let mut cmd = image.cmd.clone().unwrap_or_default();
  if entrypoint.is_empty() && cmd.is_empty() {
    cmd = vec!["/bin/sh".into()];
  }
  let user = image.user.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| "0".into());
  let workdir = image.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
  let mut all_labels = image.labels.clone().unwrap_or_default();
  all_labels.extend(labels);
  ContainerConfig {
    env: Some(image.env.clone().unwrap_or_default()),
    entrypoint: Some(entrypoint),
    cmd: Some(cmd),
    user: Some(user),
    working_dir: Some(workdir),
    labels: Some(all_labels),
    exposed_ports: image.exposed_ports.clone(),
    volumes: image.volumes.clone(),
    healthcheck: image.healthcheck.clone(),
    stop_signal: image.stop_signal.clone(),
    ..Default::default()
  }
}

/// The labels that must not come over from the container (the engine merges its labels in):
/// the sandbox's ownership, and a source snapshot's identity.
fn neutral_labels() -> HashMap<String, String> {
  HashMap::from([
    (LABEL_MANAGED.to_string(), "false".to_string()),
    (LABEL_ID.to_string(), String::new()),
    (LABEL_OWNER_PID.to_string(), String::new()),
    (LABEL_OWNER_HOST.to_string(), String::new()),
    (LABEL_OWNER_START.to_string(), String::new()),
    (snap::LABEL_SNAPSHOT.to_string(), "partial".to_string()),
    (snap::LABEL_NAME.to_string(), String::new()),
  ])
}

/// Remove partial images whose snapshot never finished because their process died (this host only).
async fn sweep_partials(docker: &Docker) {
  let filters = HashMap::from([("label".to_string(), vec![format!("{}=partial", snap::LABEL_SNAPSHOT)])]);
  let Ok(images) = call("listing partial snapshot images", CALL_TIMEOUT, docker.list_images(Some(ListImagesOptions { all: false, filters: Some(filters), ..Default::default() }))).await else {
    return;
  };
  let host = hostname();
  for i in images {
    let l = &i.labels;
    if i.containers > 0 || l.get(LABEL_OWNER_HOST) != Some(&host) || host.is_empty() {
      continue;
    }
    let Some(pid) = l.get(LABEL_OWNER_PID).and_then(|p| p.parse::<u32>().ok()) else { continue };
    let alive = process_start_ticks(pid).is_some_and(|t| l.get(LABEL_OWNER_START).is_none_or(|s| s.is_empty() || *s == t));
    if !alive {
      tracing::info!(image = %i.id, pid, "removing the partial image of a snapshot whose process died");
      remove_image(docker, &i.id).await;
    }
  }
}

/// Quote a Dockerfile word (`LABEL "k"="v"`).
fn quoted(s: &str) -> String {
  format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('\n', " "))
}

/// `docker export` of `container` into `docker import`, labelled `labels`: the partial image's id.
async fn export_import(docker: &Docker, container: &str, labels: &HashMap<String, String>) -> Result<String> {
  let read_error: Arc<Mutex<Option<String>>> = Arc::default();
  let r = read_error.clone();
  let export = docker.export_container(container).map(move |chunk| {
    chunk.map_err(|e| {
      r.lock().unwrap().get_or_insert_with(|| e.to_string());
      std::io::Error::other(e.to_string())
    })
  });
  let mut changes: Vec<String> = labels.iter().map(|(k, v)| format!("LABEL {}={}", quoted(k), quoted(v))).collect();
  changes.sort();
  let mut import = docker.create_image(
    Some(bollard::query_parameters::CreateImageOptions { from_src: Some("-".into()), changes, ..Default::default() }),
    Some(bollard::body_try_stream(export)),
    None,
  );
  let imported = tokio::time::timeout(COPY_TIMEOUT, async {
    let mut id = None;
    while let Some(item) = import.next().await {
      match item {
        Ok(info) => {
          if let Some(s) = info.status.filter(|s| s.starts_with("sha256:")) {
            id = Some(s.trim().to_string());
          }
        }
        Err(e) => return Err(SandboxError::provider(format!("importing the sandbox's filesystem failed: {e}"))),
      }
    }
    id.ok_or_else(|| SandboxError::provider("importing the sandbox's filesystem gave no image id"))
  })
  .await
  .unwrap_or_else(|_| Err(late("exporting and importing the sandbox's filesystem", COPY_TIMEOUT)));
  let read_error = read_error.lock().unwrap().take();
  if let Some(e) = read_error {
    if let Ok(id) = &imported {
      remove_image(docker, id).await;
    }
    return Err(SandboxError::provider(format!("exporting the sandbox's filesystem failed: {e}")));
  }
  imported
}

/// Take a snapshot of a running Docker sandbox (see the module docs).
pub async fn take(sb: &DockerSandbox, name: Option<String>) -> Result<SnapshotInfo> {
  let (docker, container) = sb.running()?;
  let created_at = now_ms();
  let name = name.unwrap_or_else(|| snap::default_name(&sb.id, created_at));
  snap::validate_name(&name, "snapshot name")?;
  if !in_progress().lock().unwrap().insert(name.clone()) {
    return Err(SandboxError::invalid_argument(format!(
      "a snapshot named {name:?} is being taken right now; wait for it, or choose another name"
    )));
  }
  let _claim = NameClaim(name.clone());
  let tag = snap::image_ref(&name);
  if inspect_image(&docker, &tag).await?.is_some() {
    return Err(exists_error(&name));
  }
  sweep_partials(&docker).await;

  let cfg = &sb.config;
  let base = inspect_image(&docker, &cfg.image)
    .await?
    .ok_or_else(|| SandboxError::new(ErrorCode::ImageNotFound, format!("the sandbox's image {} is no longer on the engine", cfg.image)))?;
  let base_config = base.config.clone().unwrap_or_default();
  let base_labels = base_config.labels.clone().unwrap_or_default();
  // a snapshot of a snapshot names the image the chain began with
  let base_image = match base_labels.get(snap::LABEL_SNAPSHOT).map(String::as_str) {
    Some("true") => base_labels.get(snap::LABEL_BASE).cloned().unwrap_or_else(|| cfg.image.clone()),
    _ => cfg.image.clone(),
  };
  let mut partial_labels = neutral_labels();
  partial_labels.insert(snap::LABEL_SOURCE.into(), sb.id.clone());
  partial_labels.insert(LABEL_OWNER_PID.into(), std::process::id().to_string());
  partial_labels.insert(LABEL_OWNER_HOST.into(), hostname());
  partial_labels.insert(LABEL_OWNER_START.into(), process_start_ticks(std::process::id()).unwrap_or_default());
  // a read-only root has no writable layer of the sandbox's making (only the engine's mount
  // points): the base image stands in for the partial one, and the snapshot shares its layers
  let partial = match cfg.docker.read_only_root {
    true => None,
    false => Some(export_import(&docker, &container, &partial_labels).await?),
  };
  let lower = partial.clone().or_else(|| base.id.clone()).unwrap_or_else(|| cfg.image.clone());

  let workspace = format!("{WORKSPACE_DIR}/workspace-{}", hex(rand::random::<[u8; 8]>()));
  let info = SnapshotInfo {
    name: name.clone(),
    image: String::new(),
    sandbox_id: sb.id.clone(),
    created_at: created_at.floor(),
    size_bytes: 0.0,
    workdir: cfg.workdir.clone(),
    base_image,
  };
  let mut final_labels = neutral_labels();
  final_labels.extend(snap::labels(&info));
  final_labels.insert(LABEL_WORKSPACE.into(), workspace.clone());
  let final_config = commit_config(&base_config, final_labels);

  let temp_name: Mutex<Option<String>> = Mutex::new(None);
  let made = async {
    let temp = lender(&docker, &lower, &sb.id).await?;
    temp_name.lock().unwrap().replace(temp.clone());
    let dir = dirs_tar(&[&WORKSPACE_DIR[1..], &workspace[1..]], 0o755);
    call(
      "creating the snapshot's workspace directory",
      CALL_TIMEOUT,
      docker.upload_to_container(&temp, Some(UploadToContainerOptions { path: "/".into(), ..Default::default() }), bollard::body_full(dir.into())),
    )
    .await?;
    let cap = (cfg.limits.disk_mb.max(0.0) * 1024.0 * 1024.0) as u64 + ARCHIVE_SLACK;
    copy_tree(&docker, &container, &format!("{}/.", cfg.workdir.trim_end_matches('/')), &temp, &workspace, cap, "copying the workspace into the snapshot").await?;
    let image = call(
      "committing the snapshot",
      COMMIT_TIMEOUT,
      docker.commit_container(
        CommitContainerOptions {
          container: Some(temp.clone()),
          repo: Some(format!("{}{name}", snap::REPOSITORY_PREFIX)),
          tag: Some(snap::TAG.into()),
          pause: false,
          comment: Some(format!("agentic-sandbox snapshot {name} of sandbox {}", sb.id)),
          ..Default::default()
        },
        final_config,
      ),
    )
    .await?
    .id;
    Ok::<String, SandboxError>(image)
  }
  .await;
  let temp = temp_name.lock().unwrap().take();
  if let Some(temp) = temp {
    remove_container(&docker, &temp).await;
  }
  let image = match made {
    Ok(i) => i,
    Err(e) => {
      if let Some(partial) = &partial {
        remove_image(&docker, partial).await;
      }
      return Err(SandboxError::new(e.code, format!("snapshot {name:?} of sandbox {} failed: {}", sb.id, e.message)));
    }
  };
  let (_, info) = inspect(&docker, &name).await?;
  debug_assert_eq!(info.image, image);
  Ok(info)
}

/// A tar of empty directories (root-owned, `mode`), parents first.
fn dirs_tar(names: &[&str], mode: u32) -> Vec<u8> {
  let mut out = Vec::new();
  for name in names {
    out.extend_from_slice(&super::guest::tar_header(&format!("{}/", name.trim_end_matches('/')), 0, mode, b'5'));
  }
  out.resize(out.len() + 1024, 0);
  out
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
  bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SNAPSHOT_NOT_FOUND unless snapshot `name` is on the engine (checked before a start, which
/// would otherwise try to pull the snapshot's image from a registry).
pub async fn check_exists(docker: &Docker, name: &str) -> Result<()> {
  inspect(docker, name).await.map(|_| ())
}

/// A container of `image` that is never started (it only lends its filesystem to the archive
/// API), labelled as a resource of sandbox `<sandbox_id>-snapshot` so the reaper removes it if
/// this process dies before it does.
async fn lender(docker: &Docker, image: &str, sandbox_id: &str) -> Result<String> {
  let name = format!("{sandbox_id}-snapshot-{}", hex(rand::random::<[u8; 4]>()));
  let body = ContainerCreateBody {
    image: Some(image.to_string()),
    // never run; the engine wants a command to create a container
    cmd: Some(vec!["/bin/sh".into()]),
    entrypoint: Some(vec![]),
    labels: Some(super::labels(&format!("{sandbox_id}-snapshot"))),
    network_disabled: Some(true),
    host_config: Some(HostConfig {
      network_mode: Some("none".into()),
      log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
      ..Default::default()
    }),
    ..Default::default()
  };
  call(
    "creating a snapshot's temporary container",
    CALL_TIMEOUT,
    docker.create_container(Some(CreateContainerOptions { name: Some(name.clone()), ..Default::default() }), body),
  )
  .await?;
  Ok(name)
}

/// Fill the workspace (`workdir`) of sandbox `sandbox_id`'s freshly started `container` from the
/// copy in snapshot `name`. The copy is read from a temporary container of the snapshot's image:
/// the engine locks a container for an archive read, so it cannot write into the same one meanwhile.
pub async fn restore_workspace(docker: &Docker, sandbox_id: &str, container: &str, name: &str, workdir: &str, disk_mb: f64) -> Result<()> {
  let (image, _) = inspect(docker, name).await?;
  let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
  let Some(src) = labels.get(LABEL_WORKSPACE).filter(|p| p.starts_with(WORKSPACE_DIR)) else {
    return Err(SandboxError::provider(format!("image of snapshot {name:?} has no workspace copy (label {LABEL_WORKSPACE}); it was not made by this library")));
  };
  let temp = lender(docker, image.id.as_deref().unwrap_or(&snap::image_ref(name)), sandbox_id).await?;
  let cap = (disk_mb.max(0.0) * 1024.0 * 1024.0) as u64 + ARCHIVE_SLACK;
  let copied = copy_tree(docker, &temp, &format!("{src}/."), container, workdir, cap, &format!("filling the workspace from snapshot {name:?}")).await;
  remove_container(docker, &temp).await;
  copied
}

/// The snapshots on the engine, oldest first.
pub async fn list(docker: &Docker) -> Result<Vec<SnapshotInfo>> {
  let filters = HashMap::from([("label".to_string(), vec![format!("{}=true", snap::LABEL_SNAPSHOT)])]);
  let images = call("listing snapshot images", CALL_TIMEOUT, docker.list_images(Some(ListImagesOptions { filters: Some(filters), ..Default::default() }))).await?;
  // the image must still carry the tag of the name on its label (a snapshot's image retagged
  // by hand under another name is not listed twice)
  let mut out: Vec<SnapshotInfo> = images
    .into_iter()
    .filter_map(|i| snap::from_labels(&i.labels, &i.id, i.size as f64).filter(|s| i.repo_tags.contains(&snap::image_ref(&s.name))))
    .collect();
  out.sort_by(|a, b| a.created_at.total_cmp(&b.created_at).then_with(|| a.name.cmp(&b.name)));
  Ok(out)
}

/// Delete snapshot `name`: its image (and the partial image below it). SNAPSHOT_NOT_FOUND when
/// there is none; a snapshot a sandbox's container still uses is refused.
pub async fn delete(docker: &Docker, name: &str) -> Result<()> {
  snap::validate_name(name, "snapshot name")?;
  inspect(docker, name).await?;
  let tag = snap::image_ref(name);
  match call(&format!("deleting snapshot {name:?}"), CALL_TIMEOUT, docker.remove_image(&tag, None::<RemoveImageOptions>, None)).await {
    Ok(_) => Ok(()),
    Err(e) if e.status() == Some(404) => Err(snap::not_found(name)),
    Err(CallError::Engine(_, e)) if matches!(&e, bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
      Err(SandboxError::invalid_argument(format!(
        "snapshot {name:?} is in use: a sandbox's container was made from it ({e}); destroy the sandboxes started from it, then delete it"
      )))
    }
    Err(e) => Err(e.into()),
  }
}

/// `createSandbox({ fromSnapshot })`: the workdir defaults to the snapshot's (when the config
/// does not give one), and an unknown snapshot is SNAPSHOT_NOT_FOUND now rather than at start.
/// `defaults` is the manager's merged defaults. Other configs are returned as they are.
pub async fn prepare_config(defaults: &Value, config: Option<Value>) -> Result<Option<Value>> {
  let Some(Value::Object(mut layer)) = config else { return Ok(config) };
  let name = match layer.get("fromSnapshot") {
    Some(Value::String(n)) if !n.contains('$') => n.clone(),
    _ => return Ok(Some(Value::Object(layer))),
  };
  let merged = crate::core::config::merge(defaults, &Value::Object(layer.clone()));
  if merged.get("provider").and_then(Value::as_str).is_some_and(|p| p != "docker") || snap::validate_name(&name, "fromSnapshot").is_err() {
    // the config's validation reports it
    return Ok(Some(Value::Object(layer)));
  }
  let socket = merged.get("docker").and_then(|d| d.get("socketPath")).and_then(Value::as_str).map(str::to_string);
  let docker = tokio::time::timeout(Duration::from_secs(60), super::connect(socket.as_deref()))
    .await
    .map_err(|_| late("connecting to the Docker engine", Duration::from_secs(60)))??;
  let (_, info) = inspect(&docker, &name).await?;
  if layer.get("workdir").is_none_or(Value::is_null) {
    layer.insert("workdir".into(), Value::String(info.workdir));
  }
  Ok(Some(Value::Object(layer)))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn quoting_keeps_dockerfile_words_whole() {
    assert_eq!(quoted("a b"), "\"a b\"");
    assert_eq!(quoted(r#"x"$y\z"#), r#""x\"\$y\\z""#);
  }

  #[test]
  fn commit_config_resets_the_command_and_keeps_no_container_entrypoint() {
    let bare = bollard::models::ImageConfig::default();
    let c = commit_config(&bare, HashMap::new());
    assert_eq!(c.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(c.entrypoint, Some(vec![]));
    assert_eq!((c.user.as_deref(), c.working_dir.as_deref()), (Some("0"), Some("/")));
    let img = bollard::models::ImageConfig {
      cmd: Some(vec!["/bin/bash".into()]),
      user: Some("node".into()),
      working_dir: Some("/app".into()),
      labels: Some(HashMap::from([("a".to_string(), "1".to_string())])),
      ..Default::default()
    };
    let c = commit_config(&img, HashMap::from([("b".to_string(), "2".to_string())]));
    assert_eq!(c.cmd, Some(vec!["/bin/bash".to_string()]));
    assert_eq!((c.user.as_deref(), c.working_dir.as_deref()), (Some("node"), Some("/app")));
    assert_eq!(c.labels.unwrap().len(), 2);
  }
}
