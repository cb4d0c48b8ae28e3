//! The stale-resource reaper and `prune`: remove what sandboxes of dead owners left on an engine.
//!
//! Ownership does not depend on host names or pids: every sandbox container ends by itself when
//! the process that owns it dies (the guest daemon, the container's command, exits when its
//! attached stdin closes; exec-engine containers run a stdin watchdog as their command). So a
//! container that is no longer running has no live owner worth keeping it for, and a running one
//! is its owner's business. The rules, for resources labelled `agentic-sandbox.managed=true`:
//!
//! - containers `exited` or `dead`: removed, whoever owned them (a live owner's sandbox is dead
//!   anyway, and its later `destroy()` tolerates the missing container);
//! - containers `created` (never started) for longer than [`CREATED_GRACE`];
//! - containers `paused` (a stopped sandbox: frozen, so it cannot notice its owner's death) only
//!   when the owner label names this host and that owner process is gone (pid and start time).
//!   Gap: a paused sandbox whose owner ran under another host name (another container or pod)
//!   stays until `npx agentic-sandbox prune --all` or a `docker rm -f`;
//! - containers `running`, `restarting`, `removing`: never;
//! - volumes and networks whose sandbox has no container any more, once older than
//!   [`ORPHAN_GRACE`] by the engine's creation time (a start in progress creates them a moment
//!   before its container, and must not be raced).
//!
//! - persistent sandboxes (`persistent.rs`): removed in any state once their lifetime ended,
//!   never paused before that.
//!
//! On top of that, a `created` container, a volume or a network whose owner label names this
//! host and a process that is alive (same pid and start time) is kept whatever its age: that
//! check can only spare resources, never condemn them, so it is safe where pids are ambiguous.
//!
//! Images are never removed, snapshot images (`agentic-sandbox.snapshot=true`, README
//! "Snapshots") included: they are the user's until `manager.deleteSnapshot`. The temporary
//! container of a snapshot is labelled like a sandbox's and falls under the rules above.
//!
//! The reaper runs once at the first connect to an engine and then every
//! [`DEFAULT_INTERVAL`] (`SANDBOX_REAPER_INTERVAL_SECONDS`, `docker.reaperIntervalSeconds`; 0
//! stops the periodic runs) on a tokio task of napi's runtime, which never keeps Node alive. It
//! never fails a caller: errors are traced.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions};
use bollard::Docker;

use super::{hostname, process_start_ticks, LABEL_ID, LABEL_MANAGED, LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_OWNER_START};

/// How often the periodic reaper runs unless configured otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// How old an orphaned volume or network must be before it is removed.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(60);
/// How long a container may stay `created` (never started) before it is removed.
pub const CREATED_GRACE: Duration = Duration::from_secs(120);
/// The grace periods of `prune` (a start in progress needs milliseconds between its volume and its container).
pub const PRUNE_GRACE: Duration = Duration::from_secs(10);
pub const INTERVAL_ENV: &str = "SANDBOX_REAPER_INTERVAL_SECONDS";
/// Overrides [`ORPHAN_GRACE`] (and sets [`CREATED_GRACE`] to twice it); for tests and operators.
pub const GRACE_ENV: &str = "SANDBOX_REAPER_GRACE_SECONDS";
/// Longest the sweep at the first connect may delay that connect.
const FIRST_SWEEP_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
  Container,
  Volume,
  Network,
}

impl Kind {
  pub fn as_str(self) -> &'static str {
    match self {
      Kind::Container => "container",
      Kind::Volume => "volume",
      Kind::Network => "network",
    }
  }
}

/// Everything the rules look at besides the resource itself.
pub struct Rules<'a> {
  /// seconds since the Unix epoch
  pub now: i64,
  pub orphan_grace: Duration,
  pub created_grace: Duration,
  /// sandbox ids that still have a container (in any state)
  pub with_container: &'a HashSet<String>,
  /// this machine's host name (what `agentic-sandbox.owner-host` says for local owners)
  pub host: &'a str,
  /// start time of a local process, `None` when there is no such process
  pub process_start: &'a (dyn Fn(u32) -> Option<String> + Sync),
}

/// Why the reaper removes a resource of `kind` in `state` (containers only), created at `created`
/// (Unix seconds; `None` when unknown: kept), with `labels`; `None` keeps it.
pub fn verdict(kind: Kind, state: Option<&str>, created: Option<i64>, labels: &HashMap<String, String>, r: &Rules) -> Option<String> {
  let age = created.map(|c| r.now.saturating_sub(c));
  let older_than = |grace: Duration| age.is_some_and(|a| a >= grace.as_secs() as i64);
  // a persistent sandbox lives until its lifetime ends, whoever owns it, and not longer
  let lifetime = labels.get(super::persistent::LABEL_PERSISTENT).and_then(|l| super::persistent::Record::parse(l));
  if let (Kind::Container, Some(rec)) = (kind, &lifetime) {
    if rec.expired(r.now as f64 * 1000.0) {
      return Some(format!("its lifetime ended ({} s)", rec.lifetime_seconds));
    }
    if state == Some("paused") {
      return None;
    }
  }
  match kind {
    Kind::Container => match state.unwrap_or("") {
      s @ ("exited" | "dead") => Some(format!("container {s}")),
      "created" if older_than(r.created_grace) && !local_owner_alive(labels, r) => {
        Some(format!("never started ({} s old)", age.unwrap_or_default()))
      }
      "paused" => local_owner_gone(labels, r).map(|why| format!("paused and {why}")),
      _ => None,
    },
    Kind::Volume | Kind::Network => {
      let id = labels.get(LABEL_ID).filter(|id| !id.is_empty())?;
      if r.with_container.contains(id) || !older_than(r.orphan_grace) || local_owner_alive(labels, r) {
        return None;
      }
      Some(format!("its sandbox {id} has no container ({} s old)", age.unwrap_or_default()))
    }
  }
}

/// The labels name a process of this host that runs (same pid and start time).
fn local_owner_alive(labels: &HashMap<String, String>, r: &Rules) -> bool {
  if labels.get(LABEL_OWNER_HOST).map(String::as_str) != Some(r.host) || r.host.is_empty() {
    return false;
  }
  let Some(pid) = labels.get(LABEL_OWNER_PID).and_then(|p| p.parse::<u32>().ok()) else { return false };
  match (r.process_start)(pid) {
    None => false,
    Some(ticks) => labels.get(LABEL_OWNER_START).is_none_or(|s| s.is_empty() || *s == ticks),
  }
}

/// "its owner (pid N on this host) is gone" when the labels name a process of this host that no
/// longer runs (or whose pid now belongs to a later process).
fn local_owner_gone(labels: &HashMap<String, String>, r: &Rules) -> Option<String> {
  if labels.get(LABEL_OWNER_HOST).map(String::as_str) != Some(r.host) || r.host.is_empty() {
    return None;
  }
  let pid = labels.get(LABEL_OWNER_PID)?.parse::<u32>().ok()?;
  let gone = match (r.process_start)(pid) {
    None => true,
    Some(ticks) => labels.get(LABEL_OWNER_START).is_some_and(|s| !s.is_empty() && *s != ticks),
  };
  gone.then(|| format!("its owner (pid {pid} on this host) is gone"))
}

/// Unix seconds of an RFC 3339 time as the engine writes it (`2024-05-01T10:00:00.123456789Z`,
/// `2024-05-01T12:00:00+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
  let s = s.trim();
  let num = |a: usize, b: usize| -> Option<i64> { s.get(a..b).filter(|t| t.bytes().all(|c| c.is_ascii_digit())).and_then(|t| t.parse().ok()) };
  if s.len() < 20 || s.as_bytes()[4] != b'-' || s.as_bytes()[10] != b'T' {
    return None;
  }
  let (y, mo, d, h, mi, sec) = (num(0, 4)?, num(5, 7)?, num(8, 10)?, num(11, 13)?, num(14, 16)?, num(17, 19)?);
  let mut rest = &s[19..];
  if let Some(frac) = rest.strip_prefix('.') {
    let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
    rest = &frac[digits..];
  }
  let offset = match rest {
    "Z" | "z" => 0,
    tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
      let (oh, om): (i64, i64) = (tz[1..3].parse().ok()?, tz[4..6].parse().ok()?);
      let o = oh * 3600 + om * 60;
      if tz.starts_with('-') { -o } else { o }
    }
    _ => return None,
  };
  if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
    return None;
  }
  // days from civil (Howard Hinnant's algorithm)
  let y = if mo <= 2 { y - 1 } else { y };
  let era = y.div_euclid(400);
  let yoe = y - era * 400;
  let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  let days = era * 146_097 + doe - 719_468;
  Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

fn now_unix() -> i64 {
  std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// One resource the reaper or `prune` removed, would remove (dry run), or failed to remove.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
  pub kind: Kind,
  /// container id, volume name, network id
  pub id: String,
  pub name: String,
  pub sandbox_id: Option<String>,
  pub reason: String,
  /// the engine refused (the resource is still there)
  pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SweepOptions {
  /// list only
  pub dry_run: bool,
  /// every labelled resource, whatever its state or owner
  pub all: bool,
  pub orphan_grace: Duration,
  pub created_grace: Duration,
}

impl SweepOptions {
  /// The periodic reaper's: the grace periods above, or `SANDBOX_REAPER_GRACE_SECONDS`.
  pub fn reaper() -> Self {
    let orphan = std::env::var(GRACE_ENV).ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0);
    let (orphan_grace, created_grace) = match orphan {
      Some(s) => (Duration::from_secs_f64(s), Duration::from_secs_f64(2.0 * s)),
      None => (ORPHAN_GRACE, CREATED_GRACE),
    };
    Self { dry_run: false, all: false, orphan_grace, created_grace }
  }

  /// `prune`'s: the reaper's rules with [`PRUNE_GRACE`].
  pub fn prune(dry_run: bool, all: bool) -> Self {
    Self { dry_run, all, orphan_grace: PRUNE_GRACE, created_grace: PRUNE_GRACE }
  }
}

fn managed_filter() -> HashMap<String, Vec<String>> {
  HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true")])])
}

fn conflict_or_gone(e: &bollard::errors::Error) -> Option<u16> {
  match e {
    bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
    _ => None,
  }
}

/// Creation times of resources the engine gave none for, by first sighting in this process.
fn first_seen(key: String, now: i64) -> i64 {
  static SEEN: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
  let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
  if seen.len() > 10_000 {
    seen.clear();
  }
  *seen.entry(key).or_insert(now)
}

/// Apply the rules (or, with `all`, take everything) to every labelled resource of the engine:
/// containers first, then volumes and networks (an orphan of a container removed in this sweep is
/// an orphan now). Returns what was removed or, in a dry run, would be.
///
/// Volumes and networks are listed before the containers, and an orphan's sandbox is checked
/// for a container once more right before the removal: a start creates its volume and network a
/// moment before its container, and a listing that fell in between must not take them away.
pub async fn sweep(docker: &Docker, o: &SweepOptions) -> std::result::Result<Vec<Pruned>, bollard::errors::Error> {
  let now = now_unix();
  let host = hostname();
  let start = |pid: u32| process_start_ticks(pid);
  let volumes = docker.list_volumes(Some(ListVolumesOptions { filters: Some(managed_filter()) })).await?;
  let networks = docker.list_networks(Some(ListNetworksOptions { filters: Some(managed_filter()) })).await?;
  let containers =
    docker.list_containers(Some(ListContainersOptions { all: true, filters: Some(managed_filter()), ..Default::default() })).await?;
  let mut with_container: HashSet<String> = containers.iter().filter_map(|c| c.labels.as_ref()?.get(LABEL_ID).cloned()).collect();
  let mut out = Vec::new();
  let mut decided = Vec::new();
  // sandboxes whose container this sweep removed (or, dry, would remove)
  let mut swept = HashSet::new();
  {
    let rules = Rules { now, orphan_grace: o.orphan_grace, created_grace: o.created_grace, with_container: &with_container, host: &host, process_start: &start };
    for c in containers {
      let labels = c.labels.clone().unwrap_or_default();
      let state = c.state.map(|s| s.to_string());
      let reason = if o.all { Some(format!("--all (state {})", state.as_deref().unwrap_or("unknown"))) } else { verdict(Kind::Container, state.as_deref(), c.created, &labels, &rules) };
      let (Some(reason), Some(id)) = (reason, c.id) else { continue };
      let name = c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
      decided.push(Pruned { kind: Kind::Container, id, name, sandbox_id: labels.get(LABEL_ID).cloned(), reason, error: None });
    }
  }
  for mut p in decided {
    if !o.dry_run {
      if let Err(e) = docker.remove_container(&p.id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await {
        if conflict_or_gone(&e) != Some(404) {
          p.error = Some(e.to_string());
        }
      }
    }
    if p.error.is_none() {
      if let Some(sid) = &p.sandbox_id {
        with_container.remove(sid);
        swept.insert(sid.clone());
      }
    }
    out.push(p);
  }
  // a container removed above may still have had a sibling of its sandbox (e.g. a second start)
  let rules = Rules { now, orphan_grace: o.orphan_grace, created_grace: o.created_grace, with_container: &with_container, host: &host, process_start: &start };
  for v in volumes.volumes.unwrap_or_default() {
    let created = v.created_at.as_deref().and_then(parse_rfc3339).or_else(|| Some(first_seen(format!("volume {}", v.name), now)));
    let reason = if o.all { Some("--all".to_string()) } else { verdict(Kind::Volume, None, created, &v.labels, &rules) };
    let Some(reason) = reason else { continue };
    let mut p = Pruned { kind: Kind::Volume, id: v.name.clone(), name: v.name.clone(), sandbox_id: v.labels.get(LABEL_ID).cloned(), reason, error: None };
    if !o.all && !p.sandbox_id.as_ref().is_some_and(|id| swept.contains(id)) && has_container_now(docker, p.sandbox_id.as_deref()).await {
      continue;
    }
    if !o.dry_run {
      p.error = remove_retrying(|| docker.remove_volume(&v.name, None::<bollard::query_parameters::RemoveVolumeOptions>)).await;
    }
    out.push(p);
  }
  for n in networks {
    let labels = n.labels.clone().unwrap_or_default();
    let (Some(id), name) = (n.id.clone(), n.name.clone().unwrap_or_default()) else { continue };
    let created = n.created.as_deref().and_then(parse_rfc3339).or_else(|| Some(first_seen(format!("network {id}"), now)));
    let reason = if o.all { Some("--all".to_string()) } else { verdict(Kind::Network, None, created, &labels, &rules) };
    let Some(reason) = reason else { continue };
    let mut p = Pruned { kind: Kind::Network, id: id.clone(), name, sandbox_id: labels.get(LABEL_ID).cloned(), reason, error: None };
    if !o.all && !p.sandbox_id.as_ref().is_some_and(|id| swept.contains(id)) && has_container_now(docker, p.sandbox_id.as_deref()).await {
      continue;
    }
    if !o.dry_run {
      p.error = remove_retrying(|| docker.remove_network(&id)).await;
    }
    out.push(p);
  }
  Ok(out)
}

/// Whether sandbox `id` has a container at this moment (also true when the engine cannot say).
async fn has_container_now(docker: &Docker, id: Option<&str>) -> bool {
  let Some(id) = id else { return true };
  let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true"), format!("{LABEL_ID}={id}")])]);
  match docker.list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() })).await {
    Ok(list) => !list.is_empty(),
    Err(_) => true,
  }
}

/// Remove, retrying briefly while the engine still holds the resource for a just-removed
/// container (409); a resource already gone counts as removed. The error text, if it stayed.
async fn remove_retrying<F, Fut>(remove: F) -> Option<String>
where
  F: Fn() -> Fut,
  Fut: std::future::Future<Output = std::result::Result<(), bollard::errors::Error>>,
{
  for attempt in 0..10 {
    match remove().await {
      Ok(()) => return None,
      Err(e) if conflict_or_gone(&e) == Some(404) => return None,
      Err(e) if attempt == 9 || conflict_or_gone(&e) != Some(409) => return Some(e.to_string()),
      Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
    }
  }
  None
}

// ------------------------------------------------------------------ the periodic reaper

fn intervals() -> &'static Mutex<HashMap<Option<String>, Duration>> {
  static I: OnceLock<Mutex<HashMap<Option<String>, Duration>>> = OnceLock::new();
  I.get_or_init(Default::default)
}

/// Record the configured interval (`docker.reaperIntervalSeconds`) for the engine at
/// `socket_path` (`None`: DOCKER_HOST or the default socket). The latest setting wins; a running
/// reaper picks it up after its current sleep.
pub fn set_interval(socket_path: Option<&str>, every: Duration) {
  intervals().lock().unwrap_or_else(|p| p.into_inner()).insert(socket_path.map(str::to_string), every);
}

/// The configured interval, else `SANDBOX_REAPER_INTERVAL_SECONDS`, else [`DEFAULT_INTERVAL`].
pub fn interval_for(key: &Option<String>) -> Duration {
  if let Some(d) = intervals().lock().unwrap_or_else(|p| p.into_inner()).get(key) {
    return *d;
  }
  match std::env::var(INTERVAL_ENV).ok().filter(|v| !v.trim().is_empty()) {
    None => DEFAULT_INTERVAL,
    Some(v) => match v.trim().parse::<f64>() {
      Ok(s) if s.is_finite() && (0.0..=crate::core::config::MAX_SECONDS).contains(&s) => Duration::from_secs_f64(s),
      _ => {
        tracing::warn!(value = %v, "{INTERVAL_ENV} is not a number of seconds; using 30");
        DEFAULT_INTERVAL
      }
    },
  }
}

async fn sweep_logged(docker: &Docker, when: &str) {
  match sweep(docker, &SweepOptions::reaper()).await {
    Ok(done) => {
      for p in &done {
        match &p.error {
          None => tracing::info!(kind = p.kind.as_str(), id = %p.id, name = %p.name, reason = %p.reason, "reaper removed a stale sandbox resource"),
          Some(e) => tracing::debug!(kind = p.kind.as_str(), id = %p.id, error = %e, "reaper could not remove a stale sandbox resource"),
        }
      }
    }
    Err(e) => tracing::warn!(error = %e, when, "stale sandbox reaper failed"),
  }
}

/// Once per process and engine endpoint (`key`, the socket path or `None`): sweep now (bounded,
/// so a slow engine delays the first connect by at most 10 s), then every `interval_for(key)` on
/// a background task. Never fails; the task ends when the interval is 0.
pub async fn start(docker: &Docker, key: Option<String>) {
  static STARTED: Mutex<Vec<Option<String>>> = Mutex::new(Vec::new());
  {
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    if started.len() > 16 || started.contains(&key) {
      return;
    }
    started.push(key.clone());
  }
  if tokio::time::timeout(FIRST_SWEEP_LIMIT, sweep_logged(docker, "first connect")).await.is_err() {
    tracing::warn!("stale sandbox reaper: the first sweep took longer than 10 s; it goes on in the background");
  }
  let docker = docker.clone();
  tokio::spawn(async move {
    loop {
      let every = interval_for(&key);
      if every.is_zero() {
        tracing::debug!("periodic stale sandbox reaper disabled (interval 0)");
        return;
      }
      tokio::time::sleep(every).await;
      sweep_logged(&docker, "periodic").await;
    }
  });
}

#[cfg(test)]
mod tests {
  use super::*;

  fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
  }

  const NOW: i64 = 1_700_000_000;

  /// The rules for a host "here" where pid 10 runs since tick 555 and no other process exists.
  fn check(kind: Kind, state: Option<&str>, age: Option<i64>, l: &HashMap<String, String>, with: &[&str]) -> Option<String> {
    let with_container: HashSet<String> = with.iter().map(|s| s.to_string()).collect();
    let start = |pid: u32| (pid == 10).then(|| "555".to_string());
    let rules = Rules {
      now: NOW,
      orphan_grace: ORPHAN_GRACE,
      created_grace: CREATED_GRACE,
      with_container: &with_container,
      host: "here",
      process_start: &start,
    };
    verdict(kind, state, age.map(|a| NOW - a), l, &rules)
  }

  #[test]
  fn stopped_containers_go_whoever_owned_them() {
    let live_local = labels(&[(LABEL_ID, "docker-1"), (LABEL_OWNER_HOST, "here"), (LABEL_OWNER_PID, "10"), (LABEL_OWNER_START, "555")]);
    let elsewhere = labels(&[(LABEL_ID, "docker-2"), (LABEL_OWNER_HOST, "pod-7f9c"), (LABEL_OWNER_PID, "1")]);
    for l in [&live_local, &elsewhere, &HashMap::new()] {
      assert_eq!(check(Kind::Container, Some("exited"), Some(1), l, &[]).as_deref(), Some("container exited"));
      assert_eq!(check(Kind::Container, Some("dead"), Some(1), l, &[]).as_deref(), Some("container dead"));
    }
  }

  #[test]
  fn persistent_sandboxes_live_until_their_lifetime_ends() {
    let record = |expires_s: i64| super::super::persistent::Record {
      expires_at_ms: expires_s as f64 * 1000.0,
      lifetime_seconds: 60.0,
      created_ms: 0.0,
      user: "1000".into(),
      image: "i".into(),
      workdir: "/w".into(),
      limits: serde_json::json!({}),
      network_mode: "isolated".into(),
      name: None,
      template: None,
      metadata: None,
      env_keys: vec![],
    };
    let dead_owner = |expires_s: i64| {
      let mut l = labels(&[(LABEL_ID, "docker-9"), (LABEL_OWNER_HOST, "here"), (LABEL_OWNER_PID, "11")]);
      l.insert(super::super::persistent::LABEL_PERSISTENT.into(), record(expires_s).label());
      l
    };
    let live = dead_owner(NOW + 10);
    for state in ["running", "paused"] {
      assert_eq!(check(Kind::Container, Some(state), Some(86_400), &live, &[]), None, "{state}");
    }
    let over = dead_owner(NOW);
    for state in ["running", "paused", "exited", "created"] {
      assert!(check(Kind::Container, Some(state), Some(1), &over, &[]).is_some_and(|r| r.contains("lifetime ended")), "{state}");
    }
    // a label that does not parse is no persistence: the usual rules
    let mut junk = labels(&[(LABEL_ID, "docker-9"), (LABEL_OWNER_HOST, "here"), (LABEL_OWNER_PID, "11")]);
    junk.insert(super::super::persistent::LABEL_PERSISTENT.into(), "{not json".into());
    assert_eq!(check(Kind::Container, Some("running"), Some(1), &junk, &[]), None);
    assert!(check(Kind::Container, Some("paused"), Some(1), &junk, &[]).is_some());
  }

  #[test]
  fn running_containers_are_never_touched() {
    let dead_local = labels(&[(LABEL_OWNER_HOST, "here"), (LABEL_OWNER_PID, "11")]);
    for state in ["running", "restarting", "removing", ""] {
      assert_eq!(check(Kind::Container, Some(state), Some(86_400), &dead_local, &[]), None, "{state}");
    }
    assert_eq!(check(Kind::Container, None, Some(86_400), &dead_local, &[]), None);
  }

  #[test]
  fn created_containers_go_after_their_grace() {
    let l = HashMap::new();
    assert_eq!(check(Kind::Container, Some("created"), Some(119), &l, &[]), None);
    assert!(check(Kind::Container, Some("created"), Some(120), &l, &[]).unwrap().contains("never started"));
    assert_eq!(check(Kind::Container, Some("created"), None, &l, &[]), None, "unknown age: kept");
  }

  #[test]
  fn paused_containers_go_only_when_their_local_owner_is_gone() {
    let owner = |host: &str, pid: &str, start: &str| labels(&[(LABEL_OWNER_HOST, host), (LABEL_OWNER_PID, pid), (LABEL_OWNER_START, start)]);
    let paused = |l: &HashMap<String, String>| check(Kind::Container, Some("paused"), Some(3600), l, &[]);
    assert_eq!(paused(&owner("here", "10", "555")), None, "live owner");
    assert_eq!(paused(&owner("here", "10", "")), None, "live owner, no start label");
    assert!(paused(&owner("here", "11", "555")).unwrap().contains("pid 11 on this host"), "no such process");
    assert!(paused(&owner("here", "10", "999")).is_some(), "pid recycled by a later process");
    assert_eq!(paused(&owner("pod-7f9c", "11", "1")), None, "another host: not ours to judge");
    assert_eq!(paused(&labels(&[(LABEL_OWNER_HOST, "here")])), None, "no pid label");
  }

  #[test]
  fn a_live_local_owner_spares_what_is_not_stopped() {
    let live = labels(&[(LABEL_ID, "docker-1"), (LABEL_OWNER_HOST, "here"), (LABEL_OWNER_PID, "10"), (LABEL_OWNER_START, "555")]);
    let recycled = labels(&[(LABEL_ID, "docker-1"), (LABEL_OWNER_HOST, "here"), (LABEL_OWNER_PID, "10"), (LABEL_OWNER_START, "1")]);
    let same_pid_elsewhere = labels(&[(LABEL_ID, "docker-1"), (LABEL_OWNER_HOST, "pod-7f9c"), (LABEL_OWNER_PID, "10")]);
    for kind in [Kind::Volume, Kind::Network] {
      assert_eq!(check(kind, None, Some(3600), &live, &[]), None, "a start in progress of a live owner is never raced");
      assert!(check(kind, None, Some(3600), &recycled, &[]).is_some());
      assert!(check(kind, None, Some(3600), &same_pid_elsewhere, &[]).is_some(), "another host's pid proves nothing");
    }
    assert_eq!(check(Kind::Container, Some("created"), Some(3600), &live, &[]), None);
    assert!(check(Kind::Container, Some("created"), Some(3600), &same_pid_elsewhere, &[]).is_some());
    assert!(check(Kind::Container, Some("exited"), Some(1), &live, &[]).is_some(), "a stopped container goes anyway");
  }

  #[test]
  fn orphaned_volumes_and_networks_go_after_their_grace() {
    let l = labels(&[(LABEL_ID, "docker-1")]);
    for kind in [Kind::Volume, Kind::Network] {
      assert!(check(kind, None, Some(60), &l, &[]).unwrap().contains("docker-1 has no container"));
      assert_eq!(check(kind, None, Some(59), &l, &[]), None, "a start in progress is not raced");
      assert_eq!(check(kind, None, Some(3600), &l, &["docker-1"]), None, "its container exists");
      assert_eq!(check(kind, None, None, &l, &[]), None, "unknown age: kept");
      assert_eq!(check(kind, None, Some(3600), &HashMap::new(), &[]), None, "no sandbox id: not ours");
    }
  }

  #[test]
  fn engine_times_parse() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(NOW));
    assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456789Z"), Some(NOW));
    assert_eq!(parse_rfc3339("2023-11-15T00:13:20+02:00"), Some(NOW));
    assert_eq!(parse_rfc3339("2023-11-14T20:13:20-02:00"), Some(NOW));
    assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    for bad in ["", "yesterday", "2023-11-14 22:13:20Z", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20", "2023-11-14T22:13:20+0200"] {
      assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
  }
}
