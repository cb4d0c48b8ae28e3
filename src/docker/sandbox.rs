//! One Docker sandbox: a hardened container with a size-capped workspace volume and (for
//! `networkMode: 'isolated'`) its own internal network.
//!
//! Lifecycle: `start()` pulls the image when missing, creates the volume, the network and the
//! container, and starts it. `stop()` kills every process started in the sandbox and freezes the
//! container (`docker pause`), keeping the workspace; `start()` after `stop()` thaws it.
//! `destroy()` removes the container, then the volume, then the network.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
  ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig, Mount, MountTypeEnum, NetworkCreateRequest, VolumeCreateOptions,
};
use bollard::query_parameters::{AttachContainerOptions, CreateContainerOptions, CreateImageOptions, StatsOptions, UploadToContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;

use super::exec::{self, ExecRequest};
use super::guest::{self, GuestConn, GUEST_DIR, GUEST_PATH};
use super::process::{ExecOutput, OutputSink, Spawned};
use super::{labels, record, remove_owned, Owned};
use crate::config::{ExecEngine, NetworkMode, SandboxConfig};
use crate::guest_protocol::{ProcessEntry, Reply, Request};
use crate::error::{ErrorCode, Result, SandboxError};
use crate::paths;
use crate::types::*;

/// Image pull progress, reported to `start({ onProgress })`.
#[derive(Debug, Clone)]
pub struct PullProgress {
  pub status: String,
  pub id: Option<String>,
  pub progress: Option<String>,
}

pub type ProgressFn = Arc<dyn Fn(PullProgress) + Send + Sync>;

const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
const MAX_READ: usize = 256 * 1024 * 1024;

const WRITE_SCRIPT: &str = r#"p=$1; d=${p%/*}; [ -n "$d" ] || d=/
[ -d "$p" ] && { echo "$p is a directory" >&2; exit 21; }
mkdir -p -- "$d" || exit 1
t="$d/.agentic-sandbox-write.$$"
cat > "$t" || { rm -f -- "$t"; exit 1; }
mv -f -- "$t" "$p" || { rm -f -- "$t"; exit 1; }"#;
const READ_SCRIPT: &str = r#"[ -d "$1" ] && { echo "$1 is a directory" >&2; exit 21; }; exec cat -- "$1""#;
/// The first $2 bytes of $1 (`cat`, cut by the output cap, where the image has no `head`).
const READ_PREFIX_SCRIPT: &str = r#"[ -d "$1" ] && { echo "$1 is a directory" >&2; exit 21; }
command -v head >/dev/null 2>&1 && exec head -c "$2" -- "$1"; exec cat -- "$1""#;
const LIST_SCRIPT: &str = r#"cd -- "$1" || exit 2
if [ "$2" = all ]; then set -- * .[!.]* ..?*; else set -- *; fi
for f; do [ -e "$f" ] || [ -L "$f" ] || continue; printf '%s\0' "$f"; done"#;
const LIST_DETAILED_SCRIPT: &str = r#"cd -- "$1" || exit 2
if [ "$2" = recursive ]; then find . -mindepth 1 -exec stat -c '%s %Y %a %f %n' {} +
else find . -mindepth 1 -maxdepth 1 -exec stat -c '%s %Y %a %f %n' {} +; fi"#;
/// Kill every process that is not in the session of PID 1 (the init and the image's own service),
/// except this shell. Used by `stop()`.
const KILL_ALL_SCRIPT: &str = r#"read -r l < /proc/1/stat; r=${l##*") "}; set -- $r; s1=$4; me=$$
for sig in STOP KILL KILL; do for f in /proc/[0-9]*/stat; do p=${f#/proc/}; p=${p%/stat}
[ "$p" = 1 ] && continue; [ "$p" = "$me" ] && continue
read -r l < "$f" 2>/dev/null || continue; r=${l##*") "}; set -- $r
[ "$4" = "$s1" ] && continue; kill -s $sig "$p" 2>/dev/null; done; done; exit 0"#;

/// The exec engine's process listing: first line is the shell's own pid, then one record per
/// process: `pid ppid state rssKB` NUL cmdline-with-NULs-as-\x01 newline.
const PROCESSES_SCRIPT: &str = r#"echo $$; read -r l < /proc/1/stat; r=${l##*") "}; set -- $r; s1=$4
for f in /proc/[0-9]*/stat; do p=${f#/proc/}; p=${p%/stat}; [ "$p" = 1 ] && continue
read -r l < "$f" 2>/dev/null || continue; r=${l##*") "}; set -- $r
[ "$4" = "$s1" ] && continue; [ "$1" = Z ] && continue
rss=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' /proc/$p/status 2>/dev/null)
printf '%s %s %s %s\0' "$p" "$2" "$1" "${rss:-0}"; tr '\0\n' '\001\002' < /proc/$p/cmdline 2>/dev/null; echo; done"#;

fn parse_processes(out: &[u8]) -> Vec<ProcessEntry> {
  let mut v = Vec::new();
  for line in out.split(|b| *b == b'\n').skip(1) {
    let Some(nul) = line.iter().position(|b| *b == 0) else { continue };
    let head = String::from_utf8_lossy(&line[..nul]);
    let f: Vec<&str> = head.split(' ').collect();
    let (Some(pid), Some(ppid)) = (f.first().and_then(|x| x.parse().ok()), f.get(1).and_then(|x| x.parse().ok())) else { continue };
    let cmdline = line[nul + 1..].split(|b| *b == 1).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).replace('\u{2}', "\n")).collect();
    v.push(ProcessEntry {
      pid,
      ppid,
      state: f.get(2).unwrap_or(&"").to_string(),
      cmdline,
      request: None,
      rss_kb: f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
    });
  }
  v.sort_by_key(|p| p.pid);
  v
}

pub fn to_result(out: ExecOutput) -> ExecResult {
  ExecResult {
    exit_code: out.exit_code,
    stdout: out.stdout,
    stderr: out.stderr,
    duration_ms: out.duration.as_secs_f64() * 1000.0,
    timed_out: out.timed_out,
    truncated: out.truncated,
    signal: out.signal,
    max_rss_kb: out.max_rss_kb,
  }
}

#[derive(Debug, Default)]
struct Resources {
  docker: Option<Docker>,
  container: Option<String>,
  volume: Option<String>,
  guest_volume: Option<String>,
  network: Option<String>,
}

/// How the guest daemon reaches the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
  /// bind-mount the host's binary (the engine runs on this machine)
  Bind,
  /// upload it into a small volume with put_archive (a remote engine)
  Upload,
}

/// Which engine runs a call.
enum Engine {
  Guest(Arc<GuestConn>),
  Exec(Docker, String),
}

pub struct DockerSandbox {
  pub id: String,
  pub config: SandboxConfig,
  state: Mutex<State>,
  lifecycle: tokio::sync::Mutex<()>,
  res: Mutex<Resources>,
  last_cpu: Mutex<Option<(u64, u64)>>,
  guest: Mutex<Option<Arc<GuestConn>>>,
  /// the guest was attached with `docker exec` (the image keeps its own command), so a dead guest
  /// can be restarted; as the container's command its death stops the container
  guest_by_exec: Mutex<bool>,
  guest_cpu: Mutex<Option<(u64, Instant)>>,
  reattach: tokio::sync::Mutex<()>,
}

fn new_id() -> String {
  let bytes: [u8; 8] = rand::random();
  format!("docker-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn not_running_message(id: &str, state: State) -> String {
  match state {
    State::Destroyed => format!("Sandbox {id} not running: it was destroyed; create a new sandbox"),
    State::Starting => format!("Sandbox {id} not running yet (state: starting); await start() first"),
    State::Error => format!("Sandbox {id} not running (state: error: its start failed or its container stopped); call start() to start it afresh (the workspace is lost) or destroy it"),
    s => format!("Sandbox {id} not running (state: {}); call start() first", s.as_str()),
  }
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
  match e {
    bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
    _ => None,
  }
}

fn split_image(image: &str) -> (String, String) {
  if image.contains('@') {
    return (image.to_string(), String::new());
  }
  let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
  match image[slash..].rfind(':') {
    Some(i) => (image[..slash + i].to_string(), image[slash + i + 1..].to_string()),
    None => (image.to_string(), "latest".to_string()),
  }
}

/// `path:options` → (path, options). tmpfs pages count toward the memory limit, so a mount without
/// an explicit `size=` gets min(100 MB, memoryMB / 2): a full /tmp can then never pin the sandbox at
/// its memory limit.
fn tmpfs_entry(spec: &str, memory_mb: f64) -> (String, String) {
  let (path, opts) = spec.split_once(':').unwrap_or((spec, ""));
  let mut opts = opts.to_string();
  if !opts.split(',').any(|o| o.starts_with("size=")) {
    let size_kb = (memory_mb.min(200.0) / 2.0 * 1024.0) as u64;
    opts = if opts.is_empty() { format!("size={size_kb}k") } else { format!("{opts},size={size_kb}k") };
  }
  (path.to_string(), opts)
}

impl DockerSandbox {
  pub fn new(config: SandboxConfig) -> Self {
    if config.limits.network_mbps.is_some() {
      tracing::warn!("limits.networkMbps is not enforced by the docker provider");
    }
    Self {
      id: new_id(),
      config,
      state: Mutex::new(State::Created),
      lifecycle: tokio::sync::Mutex::new(()),
      res: Mutex::new(Resources::default()),
      last_cpu: Mutex::new(None),
      guest: Mutex::new(None),
      guest_by_exec: Mutex::new(false),
      guest_cpu: Mutex::new(None),
      reattach: tokio::sync::Mutex::new(()),
    }
  }

  pub fn state(&self) -> State {
    *self.state.lock().unwrap()
  }

  fn set_state(&self, s: State) {
    tracing::debug!(sandbox = %self.id, state = s.as_str(), "state");
    *self.state.lock().unwrap() = s;
  }

  fn owned(&self) -> Owned {
    let r = self.res.lock().unwrap();
    Owned {
      socket_path: self.config.docker.socket_path.clone(),
      container: r.container.clone(),
      volume: r.volume.clone(),
      guest_volume: r.guest_volume.clone(),
      network: r.network.clone(),
    }
  }

  fn sync_registry(&self) {
    record(&self.id, self.owned());
  }

  /// The engine client and container of a running sandbox, or SANDBOX_NOT_RUNNING.
  fn running(&self) -> Result<(Docker, String)> {
    let state = self.state();
    if state != State::Running {
      return Err(SandboxError::new(ErrorCode::SandboxNotRunning, not_running_message(&self.id, state)));
    }
    let r = self.res.lock().unwrap();
    match (&r.docker, &r.container) {
      (Some(d), Some(c)) => Ok((d.clone(), c.clone())),
      _ => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("sandbox {} has no container", self.id))),
    }
  }

  // ---------------------------------------------------------------- lifecycle

  pub async fn start(&self, progress: Option<ProgressFn>) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    match self.state() {
      State::Running => return Ok(()),
      State::Destroyed => {
        return Err(SandboxError::new(ErrorCode::SandboxDestroyed, format!("sandbox {} was destroyed; create a new one", self.id)))
      }
      State::Stopped => return self.resume().await,
      // whatever is left of the previous container goes; this start begins afresh
      State::Error => self.release_resources().await?,
      _ => {}
    }
    self.set_state(State::Starting);
    match self.create_and_start(progress).await {
      Ok(()) => {
        self.set_state(State::Running);
        Ok(())
      }
      Err(e) => {
        // roll back whatever was created, so a failed start leaks nothing
        if let Err(ce) = self.release_resources().await {
          tracing::warn!(sandbox = %self.id, error = %ce, "rollback after failed start incomplete");
        }
        self.set_state(State::Error);
        Err(e)
      }
    }
  }

  async fn resume(&self) -> Result<()> {
    let (docker, container) = {
      let r = self.res.lock().unwrap();
      (r.docker.clone(), r.container.clone())
    };
    let (Some(docker), Some(container)) = (docker, container) else {
      return Err(SandboxError::provider("stopped sandbox has no container"));
    };
    self.set_state(State::Starting);
    match docker.unpause_container(&container).await {
      Ok(()) => {
        self.set_state(State::Running);
        Ok(())
      }
      Err(e) => {
        self.set_state(State::Error);
        Err(SandboxError::provider(format!("could not resume sandbox {}: {e}", self.id)))
      }
    }
  }

  async fn create_and_start(&self, progress: Option<ProgressFn>) -> Result<()> {
    let cfg = &self.config;
    let docker = super::connect(cfg.docker.socket_path.as_deref()).await?;
    self.res.lock().unwrap().docker = Some(docker.clone());
    let image = self.ensure_image(&docker, progress).await?;
    let labels = labels(&self.id);
    let guest_plan = self.guest_plan(&image);

    // workspace: a tmpfs-backed volume capped at diskMB
    let volume_name = format!("agentic-sandbox-{}-workspace", self.id);
    let mut tmpfs_opts = format!("size={}k,mode=1777", (cfg.limits.disk_mb * 1024.0).ceil() as u64);
    if let Some(user) = &cfg.docker.user {
      let mut parts = user.splitn(2, ':');
      if let Some(uid) = parts.next().filter(|u| u.parse::<u32>().is_ok()) {
        tmpfs_opts = format!("{tmpfs_opts},uid={uid}");
        if let Some(gid) = parts.next().filter(|g| g.parse::<u32>().is_ok()) {
          tmpfs_opts = format!("{tmpfs_opts},gid={gid}");
        }
      }
    }
    docker
      .create_volume(VolumeCreateOptions {
        name: Some(volume_name.clone()),
        driver: Some("local".into()),
        driver_opts: Some(HashMap::from([
          ("type".to_string(), "tmpfs".to_string()),
          ("device".to_string(), "tmpfs".to_string()),
          ("o".to_string(), tmpfs_opts),
        ])),
        labels: Some(labels.clone()),
        ..Default::default()
      })
      .await
      .map_err(|e| SandboxError::provider(format!("could not create the workspace volume: {e}")))?;
    self.res.lock().unwrap().volume = Some(volume_name.clone());
    self.sync_registry();

    let network_mode = match cfg.network_mode {
      NetworkMode::None => "none".to_string(),
      NetworkMode::Bridge => "bridge".to_string(),
      NetworkMode::Isolated => {
        let name = format!("agentic-sandbox-{}-net", self.id);
        docker
          .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            // no address on the host side of the bridge: the host is not reachable through it either
            options: Some(HashMap::from([("com.docker.network.bridge.inhibit_ipv4".to_string(), "true".to_string())])),
            labels: Some(labels.clone()),
            ..Default::default()
          })
          .await
          .map_err(|e| {
            let msg = e.to_string();
            if msg.contains("address pool") {
              SandboxError::new(
                ErrorCode::InsufficientResources,
                format!("Docker has no free address pool for another isolated network ({msg}); destroy idle sandboxes, use networkMode 'none', or add default-address-pools to the engine's daemon.json"),
              )
            } else {
              SandboxError::provider(format!("could not create the isolated network: {msg}"))
            }
          })?;
        self.res.lock().unwrap().network = Some(name.clone());
        self.sync_registry();
        name
      }
    };

    let mut mounts = vec![Mount {
      target: Some(cfg.workdir.clone()),
      source: Some(volume_name),
      typ: Some(MountTypeEnum::VOLUME),
      ..Default::default()
    }];
    match &guest_plan {
      Some((path, Delivery::Bind)) => mounts.push(Mount {
        target: Some(GUEST_PATH.into()),
        source: Some(path.to_string_lossy().into_owned()),
        typ: Some(MountTypeEnum::BIND),
        read_only: Some(true),
        ..Default::default()
      }),
      Some((_, Delivery::Upload)) => {
        let name = format!("agentic-sandbox-{}-guest", self.id);
        docker
          .create_volume(VolumeCreateOptions { name: Some(name.clone()), labels: Some(labels.clone()), ..Default::default() })
          .await
          .map_err(|e| SandboxError::provider(format!("could not create the guest volume: {e}")))?;
        self.res.lock().unwrap().guest_volume = Some(name.clone());
        self.sync_registry();
        mounts.push(Mount { target: Some(GUEST_DIR.into()), source: Some(name), typ: Some(MountTypeEnum::VOLUME), ..Default::default() });
      }
      None => {}
    }
    let tmpfs: HashMap<String, String> = cfg.docker.tmpfs.iter().map(|t| tmpfs_entry(t, cfg.limits.memory_mb)).collect();
    let mem = (cfg.limits.memory_mb * 1024.0 * 1024.0) as i64;
    let host_config = HostConfig {
      memory: Some(mem),
      memory_swap: Some(mem),
      nano_cpus: Some((cfg.limits.cpu_cores * 1e9) as i64),
      pids_limit: Some(cfg.limits.pids_limit),
      init: Some(true),
      readonly_rootfs: Some(cfg.docker.read_only_root),
      cap_drop: Some(cfg.docker.cap_drop.clone()),
      security_opt: Some(cfg.docker.security_opt.clone()),
      tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
      network_mode: Some(network_mode),
      mounts: Some(mounts),
      device_requests: cfg.gpu.then(|| {
        vec![DeviceRequest {
          driver: Some(String::new()),
          count: Some(-1),
          capabilities: Some(vec![vec!["gpu".to_string()]]),
          ..Default::default()
        }]
      }),
      ..Default::default()
    };
    let keep_command = cfg.docker.keep_image_command.unwrap_or_else(|| {
      image.config.as_ref().and_then(|c| c.exposed_ports.as_ref()).map(|p| !p.is_empty()).unwrap_or(false)
    });
    // the guest is the container's command unless the image's own command must keep running;
    // then it is attached with one `docker exec` after the start
    let guest_is_command = guest_plan.is_some() && !keep_command;
    let mut host_config = host_config;
    if guest_is_command {
      // its stdout carries our frames: nothing to keep in a log file
      host_config.log_config = Some(HostConfigLogConfig { typ: Some("none".into()), config: None });
    }
    let entrypoint = if keep_command {
      None
    } else if guest_is_command {
      Some(vec![GUEST_PATH.to_string()])
    } else {
      Some(vec!["sleep".to_string(), "infinity".to_string()])
    };
    let body = ContainerCreateBody {
      image: Some(cfg.image.clone()),
      entrypoint,
      open_stdin: guest_is_command.then_some(true),
      // when the addon goes away the guest sees end of input and stops the container
      stdin_once: guest_is_command.then_some(true),
      attach_stdin: guest_is_command.then_some(true),
      attach_stdout: guest_is_command.then_some(true),
      attach_stderr: guest_is_command.then_some(true),
      tty: Some(false),
      env: Some(cfg.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
      working_dir: Some(cfg.workdir.clone()),
      user: cfg.docker.user.clone(),
      labels: Some(labels),
      host_config: Some(host_config),
      ..Default::default()
    };
    let created = docker
      .create_container(Some(CreateContainerOptions { name: Some(self.id.clone()), ..Default::default() }), body)
      .await
      .map_err(|e| match status_of(&e) {
        Some(404) => SandboxError::new(ErrorCode::ImageNotFound, format!("image {} not found: {e}", cfg.image)),
        Some(400) => SandboxError::invalid_config(format!("Docker rejected the sandbox configuration: {e}")),
        _ => SandboxError::provider(format!("could not create the container: {e}")),
      })?;
    self.res.lock().unwrap().container = Some(created.id.clone());
    self.sync_registry();
    if let Some((path, Delivery::Upload)) = &guest_plan {
      let data = std::fs::read(path).map_err(|e| SandboxError::provider(format!("cannot read the guest binary {}: {e}", path.display())))?;
      let tar = guest::single_file_tar(guest::GUEST_FILE, &data, 0o755);
      docker
        .upload_to_container(
          &created.id,
          Some(UploadToContainerOptions { path: GUEST_DIR.into(), ..Default::default() }),
          bollard::body_full(bytes::Bytes::from(tar)),
        )
        .await
        .map_err(|e| SandboxError::provider(format!("could not upload the guest daemon: {e}")))?;
    }
    let attached = if guest_is_command {
      let a = docker
        .attach_container(
          &created.id,
          Some(AttachContainerOptions { stdin: true, stdout: true, stderr: true, stream: true, logs: false, detach_keys: None }),
        )
        .await
        .map_err(|e| SandboxError::provider(format!("could not attach to the container: {e}")))?;
      Some(a)
    } else {
      None
    };
    docker.start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>).await.map_err(|e| {
      let msg = e.to_string();
      if msg.contains("NVIDIA") || msg.contains("could not select device driver") {
        SandboxError::new(
          ErrorCode::InsufficientResources,
          format!("gpu: true needs the NVIDIA container runtime on the Docker host ({msg})"),
        )
      } else if msg.contains("Minimum memory limit") || msg.contains("CPUs") {
        SandboxError::new(ErrorCode::InsufficientResources, format!("the engine refused the limits: {msg}"))
      } else {
        SandboxError::provider(format!("could not start the container: {msg}"))
      }
    })?;
    if let Some(a) = attached {
      let conn = GuestConn::connect(a.output, a.input, self.id.clone()).await?;
      *self.guest.lock().unwrap() = Some(conn);
    } else if guest_plan.is_some() {
      let conn = self.attach_guest_by_exec(&docker, &created.id).await?;
      *self.guest.lock().unwrap() = Some(conn);
      *self.guest_by_exec.lock().unwrap() = true;
    }
    tracing::debug!(sandbox = %self.id, engine = self.engine_name(), "started");
    Ok(())
  }

  /// Whether (and how) the guest daemon can run in this sandbox; `None` means the exec engine.
  fn guest_plan(&self, image: &bollard::models::ImageInspect) -> Option<(std::path::PathBuf, Delivery)> {
    if self.config.docker.exec_engine == ExecEngine::Exec {
      return None;
    }
    let Some(path) = guest::binary_path() else {
      tracing::warn!(sandbox = %self.id, "guest daemon binary not found next to the addon (set AGENTIC_SANDBOX_GUEST); using the docker exec engine");
      return None;
    };
    let (os, arch) = (image.os.as_deref().unwrap_or("linux"), image.architecture.as_deref().unwrap_or("amd64"));
    if os != "linux" || arch != "amd64" {
      tracing::warn!(sandbox = %self.id, os, arch, "the guest daemon is built for linux/amd64 only; using the docker exec engine");
      return None;
    }
    let host = self.config.docker.socket_path.clone().or_else(|| std::env::var("DOCKER_HOST").ok()).unwrap_or_default();
    let local = host.is_empty() || host.starts_with('/') || host.starts_with("unix://");
    let delivery = match std::env::var("AGENTIC_SANDBOX_GUEST_DELIVERY").as_deref() {
      Ok("upload") => Delivery::Upload,
      Ok("bind") => Delivery::Bind,
      _ if local => Delivery::Bind,
      _ => Delivery::Upload,
    };
    Some((path, delivery))
  }

  /// Start the guest with one attached `docker exec` (images that keep their own command).
  async fn attach_guest_by_exec(&self, docker: &Docker, container: &str) -> Result<Arc<GuestConn>> {
    let created = docker
      .create_exec(
        container,
        CreateExecOptions::<String> {
          cmd: Some(vec![GUEST_PATH.into()]),
          user: self.config.docker.user.clone(),
          working_dir: Some("/".into()),
          attach_stdin: Some(true),
          attach_stdout: Some(true),
          attach_stderr: Some(true),
          tty: Some(false),
          ..Default::default()
        },
      )
      .await
      .map_err(|e| exec::map_exec_error(container, e))?;
    match docker.start_exec(&created.id, None).await.map_err(|e| exec::map_exec_error(container, e))? {
      StartExecResults::Attached { output, input } => GuestConn::connect(output, input, self.id.clone()).await,
      StartExecResults::Detached => Err(SandboxError::provider("docker exec unexpectedly detached")),
    }
  }

  /// 'guest' or 'exec': the engine that runs this sandbox's calls.
  pub fn engine_name(&self) -> &'static str {
    if self.guest.lock().unwrap().is_some() {
      "guest"
    } else {
      "exec"
    }
  }

  /// The engine for the next call. A dead guest attached by exec is restarted; a dead guest that
  /// was the container's command took the container with it, which is reported.
  async fn engine(&self) -> Result<Engine> {
    let (docker, container) = self.running()?;
    let conn = self.guest.lock().unwrap().clone();
    let Some(conn) = conn else { return Ok(Engine::Exec(docker, container)) };
    let Some(reason) = conn.dead() else { return Ok(Engine::Guest(conn)) };
    if *self.guest_by_exec.lock().unwrap() {
      let _g = self.reattach.lock().await;
      let current = self.guest.lock().unwrap().clone();
      if let Some(c) = current.filter(|c| c.dead().is_none()) {
        return Ok(Engine::Guest(c));
      }
      tracing::warn!(sandbox = %self.id, reason = %reason, "guest daemon lost; restarting it");
      let fresh = self.attach_guest_by_exec(&docker, &container).await?;
      // what the lost guest started can no longer be waited for, streamed or signalled through
      // a handle: kill it rather than leave orphans running (the image's own command is spared)
      if let Err(e) = fresh.request(Request::KillAll).await {
        tracing::warn!(sandbox = %self.id, error = %e, "could not kill the lost guest's processes");
      }
      *self.guest.lock().unwrap() = Some(fresh.clone());
      return Ok(Engine::Guest(fresh));
    }
    self.set_state(State::Error);
    Err(SandboxError::new(
      ErrorCode::SandboxNotRunning,
      format!("sandbox {}: {reason}, and its container stopped with it (was it killed from inside the sandbox?); the workspace is lost: call start() to start afresh, or destroy the sandbox", self.id),
    ))
  }

  async fn ensure_image(&self, docker: &Docker, progress: Option<ProgressFn>) -> Result<bollard::models::ImageInspect> {
    let image = &self.config.image;
    match docker.inspect_image(image).await {
      Ok(i) => return Ok(i),
      Err(e) if status_of(&e) == Some(404) => {}
      Err(e) => return Err(SandboxError::provider(format!("could not inspect image {image}: {e}"))),
    }
    let (repo, tag) = split_image(image);
    tracing::info!(image = %image, "pulling image");
    let creds = self.config.docker.registry_auth.as_ref().map(|a| bollard::auth::DockerCredentials {
      username: Some(a.username.clone()),
      password: Some(a.password.clone()),
      serveraddress: a.serveraddress.clone(),
      ..Default::default()
    });
    let mut stream = docker.create_image(
      Some(CreateImageOptions {
        from_image: Some(if tag.is_empty() { repo } else { format!("{repo}:{tag}") }),
        ..Default::default()
      }),
      None,
      creds,
    );
    while let Some(item) = stream.next().await {
      match item {
        Ok(info) => {
          let p = PullProgress {
            status: info.status.clone().unwrap_or_default(),
            id: info.id.clone(),
            progress: info.progress.clone(),
          };
          tracing::debug!(image = %image, status = %p.status, id = ?p.id, progress = ?p.progress, "pull");
          if let Some(cb) = &progress {
            cb(p);
          }
        }
        Err(e) => {
          return Err(SandboxError::new(
            ErrorCode::ImageNotFound,
            format!("image {image} is not on the Docker engine and could not be pulled ({e}); build or load it locally (see scripts/build-images.sh) or check the name and docker.registryAuth"),
          ))
        }
      }
    }
    docker.inspect_image(image).await.map_err(|e| {
      SandboxError::new(ErrorCode::ImageNotFound, format!("image {image} is still missing after the pull ({e})"))
    })
  }

  pub async fn stop(&self) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    if self.state() != State::Running {
      return Ok(());
    }
    let (docker, container) = self.running()?;
    if let Err(e) = self.kill_all().await {
      tracing::warn!(sandbox = %self.id, error = %e, "could not end the sandbox's processes before pausing");
    }
    self.set_state(State::Stopping);
    match docker.pause_container(&container).await {
      Ok(()) => {
        self.set_state(State::Stopped);
        Ok(())
      }
      Err(e) => {
        self.set_state(State::Error);
        Err(SandboxError::provider(format!("could not stop sandbox {}: {e}", self.id)))
      }
    }
  }

  /// Drop the guest connection and remove container, volumes and network.
  async fn release_resources(&self) -> Result<()> {
    self.guest.lock().unwrap().take();
    *self.guest_by_exec.lock().unwrap() = false;
    let owned = self.owned();
    let docker = self.res.lock().unwrap().docker.clone();
    if let Some(docker) = docker {
      remove_owned(&docker, &owned).await?;
    }
    let mut r = self.res.lock().unwrap();
    r.container = None;
    r.volume = None;
    r.guest_volume = None;
    r.network = None;
    drop(r);
    self.sync_registry();
    Ok(())
  }

  pub async fn destroy(&self) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    self.set_state(State::Destroyed);
    self.release_resources().await?;
    Ok(())
  }

  // ---------------------------------------------------------------- execution

  /// Start a command and return at once (for `background: true` and for foreground calls).
  /// Foreground calls default to `limits.timeoutSeconds`; background ones run until they end,
  /// are killed, or their own `timeout` passes.
  pub async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    let (timeout, workdir) = crate::sandbox::prepare_spawn(&self.config, &self.config.workdir, command, opts, background)?;
    let mut argv = vec![command.to_string()];
    argv.extend(args.iter().cloned());
    let max_output = opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT);
    let p = match self.engine().await? {
      Engine::Guest(conn) => {
        let env = opts.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        conn.spawn(argv, env, workdir, timeout, max_output, background, open_stdin, sink).await?
      }
      Engine::Exec(docker, container) => {
        let req = ExecRequest {
          argv,
          env: opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
          workdir: Some(workdir),
          user: self.config.docker.user.clone(),
          timeout,
          max_output,
          open_stdin,
          wrap: true,
          background,
        };
        exec::spawn(&docker, &container, req, sink).await?
      }
    };
    Ok(p)
  }


  /// Run an internal helper script (not the user's command) as the sandbox user.
  async fn helper(&self, script: &str, args: &[&str], stdin: Option<Vec<u8>>, max_output: usize) -> Result<ExecOutput> {
    let (docker, container) = self.running()?;
    let mut argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string(), "agentic-sandbox".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    exec::run(
      &docker,
      &container,
      ExecRequest {
        argv,
        env: vec![],
        workdir: Some("/".into()),
        user: self.config.docker.user.clone(),
        timeout: Some(Duration::from_secs(120)),
        max_output,
        open_stdin: false,
        wrap: false,
        background: false,
      },
      stdin,
    )
    .await
  }

  fn not_running_op(&self, path: &str) -> Option<FileOp> {
    let state = self.state();
    (state != State::Running).then(|| FileOp::fail(path, not_running_message(&self.id, state)))
  }

  fn failure_text(out: &ExecOutput) -> String {
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if msg.is_empty() {
      format!("exit code {}", out.exit_code)
    } else {
      msg
    }
  }

  pub async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    let engine = match self.engine().await {
      Ok(e) => e,
      Err(e) => return FileOp::fail(&full, e.message),
    };
    if let Engine::Guest(conn) = engine {
      return match conn.write_file(&full, &content).await {
        Ok(()) => FileOp::ok(&full, None),
        Err(e) => FileOp::fail(&full, e.message),
      };
    }
    match self.helper(WRITE_SCRIPT, &[&full], Some(content), 64 * 1024).await {
      Ok(out) if out.exit_code == 0 => FileOp::ok(&full, None),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  pub async fn read_file(&self, path: &str) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    let engine = match self.engine().await {
      Ok(e) => e,
      Err(e) => return FileOp::fail(&full, e.message),
    };
    if let Engine::Guest(conn) = engine {
      return match conn.read_file(&full, MAX_READ as u64).await {
        Ok(data) => FileOp::ok(&full, Some(data)),
        Err(e) => FileOp::fail(&full, e.message),
      };
    }
    match self.helper(READ_SCRIPT, &[&full], None, MAX_READ).await {
      Ok(out) if out.exit_code == 0 && !out.truncated => FileOp::ok(&full, Some(out.stdout)),
      Ok(out) if out.truncated => FileOp::fail(&full, format!("file is larger than {} MB; read it in parts with execute()", MAX_READ >> 20)),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  /// At most `max` bytes of a file (a larger file gives its first `max`), for internal readers.
  /// The guest refuses files over `max` (EFBIG): their first bytes then come from `head -c`.
  pub async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    match self.engine().await {
      Ok(Engine::Guest(conn)) => match conn.read_file(&full, max as u64).await {
        Ok(data) => return FileOp::ok(&full, Some(data)),
        // the guest's EFBIG messages ("... more than the N that can be read at once", "grew beyond N bytes while reading")
        Err(e) if e.message.contains("can be read at once") || e.message.contains("while reading") => {}
        Err(e) => return FileOp::fail(&full, e.message),
      },
      Ok(Engine::Exec(..)) => {}
      Err(e) => return FileOp::fail(&full, e.message),
    }
    match self.helper(READ_PREFIX_SCRIPT, &[&full, &max.to_string()], None, max).await {
      Ok(out) if out.exit_code == 0 || out.truncated => FileOp::ok(&full, Some(out.stdout)),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  pub async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    let full = match paths::resolve(&self.config.workdir, path) {
      Ok(p) => p,
      Err(e) => return FileOp::fail(path, e.message),
    };
    if let Some(op) = self.not_running_op(&full) {
      return op;
    }
    let engine = match self.engine().await {
      Ok(e) => e,
      Err(e) => return FileOp::fail(&full, e.message),
    };
    if let Engine::Guest(conn) = engine {
      return match conn.request(Request::Remove { path: full.clone(), recursive }).await {
        Ok(_) => FileOp::ok(&full, None),
        Err(e) => FileOp::fail(&full, e.message),
      };
    }
    let script = if recursive { r#"exec rm -rf -- "$1""# } else { r#"exec rm -f -- "$1""# };
    match self.helper(script, &[&full], None, 64 * 1024).await {
      Ok(out) if out.exit_code == 0 => FileOp::ok(&full, None),
      Ok(out) => FileOp::fail(&full, Self::failure_text(&out)),
      Err(e) => FileOp::fail(&full, e.message),
    }
  }

  /// Entry names of a directory (like `ls -1`: no dotfiles unless `all`). `[]` on any failure.
  pub async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    let full = paths::resolve(&self.config.workdir, path)?;
    if let Engine::Guest(conn) = self.engine().await? {
      let (entries, truncated) = conn.list(&full, false, all, guest::MAX_LIST_ENTRIES).await?;
      if truncated {
        tracing::warn!(sandbox = %self.id, path = %full, "listing cut short at {} entries", guest::MAX_LIST_ENTRIES);
      }
      let mut names: Vec<String> = entries.into_iter().map(|e| e.path).collect();
      names.sort();
      return Ok(names);
    }
    let out = self.helper(LIST_SCRIPT, &[&full, if all { "all" } else { "" }], None, DEFAULT_MAX_OUTPUT).await?;
    if out.exit_code != 0 {
      return Err(SandboxError::new(ErrorCode::ExecutionError, Self::failure_text(&out)));
    }
    let mut names: Vec<String> =
      out.stdout.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    names.sort();
    Ok(names)
  }

  pub async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    let full = paths::resolve(&self.config.workdir, path)?;
    if let Engine::Guest(conn) = self.engine().await? {
      let (entries, truncated) = conn.list(&full, recursive, all, guest::MAX_LIST_ENTRIES).await?;
      if truncated {
        tracing::warn!(sandbox = %self.id, path = %full, "listing cut short at {} entries", guest::MAX_LIST_ENTRIES);
      }
      return Ok(
        entries
          .into_iter()
          .map(|e| FileInfo {
            name: e.path.rsplit('/').next().unwrap_or(&e.path).to_string(),
            kind: match e.kind.as_str() {
              "file" => "file",
              "directory" => "directory",
              "symlink" => "symlink",
              _ => "other",
            },
            size: e.size as f64,
            mtime_ms: e.mtime_ms,
            permissions: format!("{:o}", e.mode),
            path: e.path,
          })
          .collect(),
      );
    }
    let out = self
      .helper(LIST_DETAILED_SCRIPT, &[&full, if recursive { "recursive" } else { "" }], None, DEFAULT_MAX_OUTPUT)
      .await?;
    if out.exit_code != 0 {
      return Err(SandboxError::new(ErrorCode::ExecutionError, Self::failure_text(&out)));
    }
    let mut v = parse_stat_lines(&String::from_utf8_lossy(&out.stdout));
    if !all {
      v.retain(|f| !is_hidden(&f.path));
    }
    Ok(v)
  }

  // ---------------------------------------------------------------- stats and health

  pub async fn stats(&self) -> Result<Stats> {
    if let Engine::Guest(conn) = self.engine().await? {
      return self.guest_stats(&conn).await;
    }
    let (docker, container) = self.running()?;
    let prev = *self.last_cpu.lock().unwrap();
    let mut stream = docker.stats(&container, Some(StatsOptions { stream: false, one_shot: prev.is_some() }));
    let s = match stream.next().await {
      Some(Ok(s)) => s,
      Some(Err(e)) => return Err(SandboxError::provider(format!("docker stats failed: {e}"))),
      None => return Err(SandboxError::provider("docker stats returned nothing")),
    };
    let mb = |b: u64| (b as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0;
    let memory = s.memory_stats.as_ref().map(|m| {
      let usage = m.usage.unwrap_or(0);
      // like `docker stats`: page cache that can be dropped does not count (v1: total_inactive_file, v2: inactive_file)
      let inactive = m
        .stats
        .as_ref()
        .and_then(|st| st.get("total_inactive_file").or_else(|| st.get("inactive_file")).copied())
        .unwrap_or(0);
      usage.saturating_sub(inactive)
    });
    let cur = s.cpu_stats.as_ref().and_then(|c| Some((c.cpu_usage.as_ref()?.total_usage?, c.system_cpu_usage?)));
    let online = s.cpu_stats.as_ref().and_then(|c| c.online_cpus).unwrap_or(1).max(1) as f64;
    let base = prev.or_else(|| s.precpu_stats.as_ref().and_then(|c| Some((c.cpu_usage.as_ref()?.total_usage?, c.system_cpu_usage?))));
    let cpu = match (cur, base) {
      (Some((c, sys)), Some((pc, psys))) if sys > psys && c >= pc => (c - pc) as f64 / (sys - psys) as f64 * online * 100.0,
      _ => 0.0,
    };
    if let Some(c) = cur {
      *self.last_cpu.lock().unwrap() = Some(c);
    }
    let (rx, tx) = s
      .networks
      .as_ref()
      .map(|n| n.values().fold((0u64, 0u64), |(r, t), v| (r + v.rx_bytes.unwrap_or(0), t + v.tx_bytes.unwrap_or(0))))
      .unwrap_or((0, 0));
    let du = self.helper(r#"du -sk -- "$1""#, &[&self.config.workdir], None, 4096).await?;
    let disk_kb: f64 = String::from_utf8_lossy(&du.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    Ok(Stats {
      memory_usage_mb: mb(memory.unwrap_or(0)),
      cpu_percent: (cpu * 100.0).round() / 100.0,
      disk_usage_mb: (disk_kb / 1024.0 * 100.0).round() / 100.0,
      network_rx_mb: mb(rx),
      network_tx_mb: mb(tx),
    })
  }

  async fn guest_stats(&self, conn: &Arc<GuestConn>) -> Result<Stats> {
    let sample = || async {
      match conn.request(Request::Stats { disk_path: self.config.workdir.clone() }).await? {
        r @ Reply::Stats { .. } => Ok((r, Instant::now())),
        other => Err(SandboxError::provider(format!("unexpected stats reply {other:?}"))),
      }
    };
    let prev = *self.guest_cpu.lock().unwrap();
    let prev = match prev {
      Some(p) => p,
      None => {
        // first call: a short sample so cpuPercent means something
        let (r, at) = sample().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        match r {
          Reply::Stats { cpu_usage_ns, .. } => (cpu_usage_ns, at),
          _ => unreachable!(),
        }
      }
    };
    let (r, at) = sample().await?;
    let Reply::Stats { memory_bytes, cpu_usage_ns, disk_bytes, net_rx_bytes, net_tx_bytes, .. } = r else { unreachable!() };
    *self.guest_cpu.lock().unwrap() = Some((cpu_usage_ns, at));
    let wall = at.duration_since(prev.1).as_nanos() as f64;
    let cpu = if wall > 0.0 { cpu_usage_ns.saturating_sub(prev.0) as f64 / wall * 100.0 } else { 0.0 };
    let mb = |b: u64| (b as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0;
    Ok(Stats {
      memory_usage_mb: mb(memory_bytes),
      cpu_percent: (cpu * 100.0).round() / 100.0,
      disk_usage_mb: mb(disk_bytes),
      network_rx_mb: mb(net_rx_bytes),
      network_tx_mb: mb(net_tx_bytes),
    })
  }

  /// Kill every process started in the sandbox (not the init, the image's own command, or the guest).
  pub async fn kill_all(&self) -> Result<()> {
    match self.engine().await? {
      Engine::Guest(conn) => conn.request(Request::KillAll).await.map(|_| ()),
      Engine::Exec(docker, container) => {
        let kill = ExecRequest {
          argv: vec!["/bin/sh".into(), "-c".into(), KILL_ALL_SCRIPT.into(), "stop".into()],
          env: vec![],
          workdir: Some("/".into()),
          user: None,
          timeout: Some(Duration::from_secs(30)),
          max_output: 4096,
          open_stdin: false,
          wrap: false,
          background: false,
        };
        exec::run(&docker, &container, kill, None).await.map(|_| ())
      }
    }
  }

  /// The sandbox's processes (not the init, the image's own command, or the guest).
  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    match self.engine().await? {
      Engine::Guest(conn) => conn.processes().await,
      Engine::Exec(..) => {
        let out = self.helper(PROCESSES_SCRIPT, &[], None, DEFAULT_MAX_OUTPUT).await?;
        let me = out.stdout.split(|b| *b == b'\n').next().and_then(|l| std::str::from_utf8(l).ok()?.trim().parse::<u32>().ok());
        let all: Vec<ProcessEntry> = parse_processes(&out.stdout).into_iter().filter(|p| Some(p.pid) != me && Some(p.ppid) != me).collect();
        // hide the wrappers of foreground commands (a background command replaces its wrapper,
        // keeping its pid, so the pid a BackgroundProcess reports is the listed one)
        let is_wrapper = |p: &ProcessEntry| p.cmdline.len() >= 4 && p.cmdline[0] == "/bin/sh" && p.cmdline[3] == "agentic-sandbox";
        let wrappers: HashSet<u32> = all.iter().filter(|p| is_wrapper(p)).map(|p| p.pid).collect();
        Ok(all.into_iter().filter(|p| !wrappers.contains(&p.pid)).collect())
      }
    }
  }

  /// Back to a clean sandbox for the next user of a pool: processes killed, workspace and /tmp emptied.
  pub async fn reset(&self) -> Result<()> {
    self.kill_all().await?;
    for dir in [self.config.workdir.clone(), "/tmp".to_string()] {
      for name in self.list_files(&dir, true).await.unwrap_or_default() {
        let op = self.delete_file(&format!("{}/{name}", dir.trim_end_matches('/')), true).await;
        if !op.success {
          return Err(SandboxError::new(ErrorCode::ExecutionError, format!("reset could not clear {dir}/{name}: {}", op.error.unwrap_or_default())));
        }
      }
    }
    *self.guest_cpu.lock().unwrap() = None;
    Ok(())
  }

  pub async fn health(&self) -> Health {
    if self.state() != State::Running {
      return Health { healthy: false, message: Some(format!("Container not running (state: {})", self.state().as_str())) };
    }
    let started = Instant::now();
    match self.engine().await {
      Ok(Engine::Guest(conn)) => {
        return match tokio::time::timeout(Duration::from_secs(5), conn.request(Request::Stat { path: "/".into() })).await {
          Ok(Ok(_)) => Health { healthy: true, message: Some(format!("responded in {} ms", started.elapsed().as_millis())) },
          Ok(Err(e)) => Health { healthy: false, message: Some(e.message) },
          Err(_) => Health { healthy: false, message: Some("no answer within 5 s".into()) },
        }
      }
      Ok(Engine::Exec(..)) => {}
      Err(e) => return Health { healthy: false, message: Some(e.message) },
    }
    let (docker, container) = match self.running() {
      Ok(x) => x,
      Err(e) => return Health { healthy: false, message: Some(e.message) },
    };
    let probe = ExecRequest {
      argv: vec!["echo".into(), "health-check".into()],
      env: vec![],
      workdir: Some("/".into()),
      user: self.config.docker.user.clone(),
      timeout: Some(Duration::from_secs(5)),
      max_output: 4096,
      open_stdin: false,
      wrap: false,
      background: false,
    };
    match exec::run(&docker, &container, probe, None).await {
      Ok(o) if o.exit_code == 0 && String::from_utf8_lossy(&o.stdout).contains("health-check") => Health {
        healthy: true,
        message: Some(format!("responded in {} ms", started.elapsed().as_millis())),
      },
      Ok(o) if o.timed_out => Health { healthy: false, message: Some("no answer within 5 s".into()) },
      Ok(o) => Health { healthy: false, message: Some(format!("probe failed: {}", Self::failure_text(&o))) },
      Err(e) => Health { healthy: false, message: Some(e.message) },
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn ids_are_docker_16_hex() {
    let id = new_id();
    assert!(id.starts_with("docker-"));
    assert_eq!(id.len(), 7 + 16);
    assert!(id[7..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(id, new_id());
  }

  #[test]
  fn tmpfs_size_defaults_to_half_the_memory() {
    assert_eq!(tmpfs_entry("/tmp:rw,noexec", 64.0), ("/tmp".into(), "rw,noexec,size=32768k".into()));
    assert_eq!(tmpfs_entry("/tmp:rw,noexec", 4096.0), ("/tmp".into(), "rw,noexec,size=102400k".into()));
    assert_eq!(tmpfs_entry("/run:size=1m", 64.0), ("/run".into(), "size=1m".into()));
    assert_eq!(tmpfs_entry("/x", 64.0), ("/x".into(), "size=32768k".into()));
  }

  #[test]
  fn image_split() {
    assert_eq!(split_image("node:20-alpine"), ("node".into(), "20-alpine".into()));
    assert_eq!(split_image("agentic-sandbox/busybox"), ("agentic-sandbox/busybox".into(), "latest".into()));
    assert_eq!(split_image("localhost:5000/x/y:2"), ("localhost:5000/x/y".into(), "2".into()));
    assert_eq!(split_image("localhost:5000/x"), ("localhost:5000/x".into(), "latest".into()));
    assert_eq!(split_image("a@sha256:abc").1, "");
  }

  /// The helper scripts are plain POSIX sh: check them against the host's /bin/sh.
  #[test]
  fn scripts_work_in_posix_sh() {
    let dir = std::env::temp_dir().join(format!("sbx-scripts-{}", std::process::id()));
    let target = dir.join("a/b/c.bin");
    let sh = |script: &str, args: &[&str], stdin: &[u8]| {
      use std::io::Write;
      let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("t")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
      child.stdin.take().unwrap().write_all(stdin).unwrap();
      child.wait_with_output().unwrap()
    };
    let data: Vec<u8> = (0..=255u8).collect();
    let w = sh(WRITE_SCRIPT, &[target.to_str().unwrap()], &data);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let r = sh(READ_SCRIPT, &[target.to_str().unwrap()], b"");
    assert_eq!(r.stdout, data);
    std::fs::write(dir.join(".hidden"), "x").unwrap();
    let l = sh(LIST_SCRIPT, &[dir.to_str().unwrap(), ""], b"");
    assert_eq!(l.stdout, b"a\0");
    let l = sh(LIST_SCRIPT, &[dir.to_str().unwrap(), "all"], b"");
    assert_eq!(l.stdout, b"a\0.hidden\0");
    let d = sh(LIST_DETAILED_SCRIPT, &[dir.to_str().unwrap(), "recursive"], b"");
    let v = parse_stat_lines(&String::from_utf8_lossy(&d.stdout));
    assert_eq!(v.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), vec![".hidden", "a", "a/b", "a/b/c.bin"]);
    assert_eq!(v[3].size, 256.0);
    let rd = sh(READ_SCRIPT, &[dir.to_str().unwrap()], b"");
    assert!(!rd.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
