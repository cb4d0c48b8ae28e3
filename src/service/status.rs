//! `getStatus` and `manager.list` (seed 002): a sandbox's state, template, uptime, resource use
//! against its limits, execution counters and activity times.

use crate::core::sandbox::{AnySandbox, SessionInfo};
use crate::core::types::{State, Stats};

#[derive(Debug, Clone)]
pub struct Status {
  pub id: String,
  pub name: Option<String>,
  pub provider: String,
  pub state: State,
  pub template: Option<String>,
  pub image: String,
  pub engine: String,
  pub created_ms: f64,
  pub started_ms: Option<f64>,
  /// seconds since the first start (0 before it)
  pub uptime_s: f64,
  /// zeros when the sandbox is not running
  pub stats: Stats,
  pub memory_limit_mb: f64,
  pub disk_limit_mb: f64,
  pub executions: u64,
  pub successful: u64,
  pub failed: u64,
  pub average_duration_ms: f64,
  pub last_activity_ms: f64,
  pub expires_at_ms: Option<f64>,
  pub metadata: Option<serde_json::Value>,
  pub session: Option<SessionInfo>,
  /// the egress rules and counters of a sandbox with `network` rules
  pub network: Option<crate::core::provider::NetworkStatus>,
  /// made with `persistent: true`
  pub persistent: bool,
  /// a persistent sandbox on the engine that the manager does not hold (`includeDetached`)
  pub detached: bool,
}

pub async fn status(sb: &AnySandbox) -> Status {
  let config = sb.config();
  let a = sb.activity();
  let state = sb.state();
  let stats = if state == State::Running { sb.stats().await.unwrap_or_default() } else { Stats::default() };
  let now = crate::core::logs::now_ms();
  let uptime_s = match (a.started_ms, state) {
    (Some(t), State::Running) => ((now - t) / 1000.0).max(0.0),
    _ => 0.0,
  };
  Status {
    id: sb.id().to_string(),
    name: config.name.clone(),
    provider: config.provider.as_str().to_string(),
    state,
    template: config.template.clone(),
    image: config.image.clone(),
    engine: sb.engine_name(),
    created_ms: a.created_ms,
    started_ms: a.started_ms,
    uptime_s,
    stats,
    memory_limit_mb: config.limits.memory_mb,
    disk_limit_mb: config.limits.disk_mb,
    executions: a.executions,
    successful: a.successful,
    failed: a.failed,
    average_duration_ms: if a.executions > 0 { a.total_duration_ms / a.executions as f64 } else { 0.0 },
    last_activity_ms: a.last_activity_ms,
    expires_at_ms: sb.expires_at_ms(),
    // secrets in metadata (`apiKey`, `*token*`, ...) are not handed back
    metadata: config.metadata.as_ref().map(crate::core::config::redacted),
    session: a.session.clone(),
    network: sb.network_status(),
    persistent: config.persistent,
    detached: false,
  }
}

/// What `list({ includeDetached: true })` knows of a persistent sandbox another process holds
/// (or none): its record and the engine's state; no counters.
pub fn detached(d: &crate::providers::docker::persistent::Detached) -> Status {
  let r = &d.record;
  let state = if d.state == "running" { State::Running } else { State::Stopped };
  let now = crate::core::logs::now_ms();
  Status {
    id: d.id.clone(),
    name: r.name.clone(),
    provider: "docker".into(),
    state,
    template: r.template.clone(),
    image: r.image.clone(),
    engine: String::new(),
    created_ms: r.created_ms,
    started_ms: Some(r.created_ms),
    uptime_s: if state == State::Running { ((now - r.created_ms) / 1000.0).max(0.0) } else { 0.0 },
    stats: Stats::default(),
    memory_limit_mb: r.limits.get("memoryMB").and_then(|v| v.as_f64()).unwrap_or(0.0),
    disk_limit_mb: r.limits.get("diskMB").and_then(|v| v.as_f64()).unwrap_or(0.0),
    executions: 0,
    successful: 0,
    failed: 0,
    average_duration_ms: 0.0,
    last_activity_ms: r.created_ms,
    expires_at_ms: Some(r.expires_at_ms),
    metadata: r.metadata.as_ref().map(crate::core::config::redacted),
    session: None,
    network: None,
    persistent: true,
    detached: true,
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
  CreatedAt,
  LastActivity,
  Id,
  Name,
}

#[derive(Debug, Clone)]
pub struct ListFilter {
  pub status: Option<String>,
  pub template: Option<String>,
  pub limit: Option<usize>,
  pub sort_by: SortBy,
  pub descending: bool,
}

/// Filter, sort and cut a list of statuses as `manager.list` does.
pub fn filter_sort(mut all: Vec<Status>, f: &ListFilter) -> Vec<Status> {
  all.retain(|s| {
    f.status.as_deref().is_none_or(|st| st == "all" || s.state.as_str() == st)
      && f.template.as_deref().is_none_or(|t| s.template.as_deref() == Some(t))
  });
  all.sort_by(|a, b| {
    let o = match f.sort_by {
      SortBy::CreatedAt => a.created_ms.total_cmp(&b.created_ms),
      SortBy::LastActivity => a.last_activity_ms.total_cmp(&b.last_activity_ms),
      SortBy::Id => a.id.cmp(&b.id),
      SortBy::Name => a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)),
    };
    if f.descending {
      o.reverse()
    } else {
      o
    }
  });
  if let Some(n) = f.limit {
    all.truncate(n);
  }
  all
}

#[cfg(test)]
mod tests {
  use super::*;

  fn st(id: &str, state: State, template: Option<&str>, created: f64) -> Status {
    Status {
      id: id.into(),
      name: None,
      provider: "docker".into(),
      state,
      template: template.map(str::to_string),
      image: "i".into(),
      engine: "guest".into(),
      created_ms: created,
      started_ms: None,
      uptime_s: 0.0,
      stats: Stats::default(),
      memory_limit_mb: 512.0,
      disk_limit_mb: 1024.0,
      executions: 0,
      successful: 0,
      failed: 0,
      average_duration_ms: 0.0,
      last_activity_ms: 10.0 - created,
      expires_at_ms: None,
      metadata: None,
      session: None,
      network: None,
      persistent: false,
      detached: false,
    }
  }

  #[test]
  fn filters_and_sorts() {
    let all = vec![st("a", State::Running, Some("python"), 1.0), st("b", State::Stopped, Some("python"), 2.0), st("c", State::Running, None, 3.0)];
    let f = |status: Option<&str>, template: Option<&str>, limit, sort_by, descending| {
      filter_sort(all.clone(), &ListFilter { status: status.map(str::to_string), template: template.map(str::to_string), limit, sort_by, descending })
        .into_iter()
        .map(|s| s.id)
        .collect::<Vec<_>>()
    };
    assert_eq!(f(None, None, None, SortBy::CreatedAt, true), ["c", "b", "a"]);
    assert_eq!(f(Some("running"), None, None, SortBy::CreatedAt, false), ["a", "c"]);
    assert_eq!(f(Some("all"), Some("python"), None, SortBy::Id, false), ["a", "b"]);
    assert_eq!(f(None, None, Some(1), SortBy::LastActivity, true), ["a"]);
  }
}
