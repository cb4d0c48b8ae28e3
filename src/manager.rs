//! The provider-independent sandbox manager: configuration layers, the sandbox table, and the
//! operations over all sandboxes.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::config;
use crate::sandbox::AnySandbox;
use crate::error::{ErrorCode, Result, SandboxError};
use crate::pool::{Pool, PoolHooks, PoolOptions};
use crate::types::{Health, Stats};

pub struct Manager {
  /// defaults < .sandboxrc.json < environment < constructor config
  defaults: Value,
  sandboxes: Mutex<Vec<Arc<AnySandbox>>>,
  pools: Mutex<Vec<Arc<Pool<AnySandbox>>>>,
}

pub type SandboxPool = Pool<AnySandbox>;

impl Manager {
  pub fn new(user_defaults: Option<&Value>) -> Result<Self> {
    let get = |k: &str| std::env::var(k).ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let base = config::base_layers(&get, &cwd)?;
    let defaults = match user_defaults {
      Some(v) if !v.is_null() => {
        if !v.is_object() {
          return Err(SandboxError::invalid_config("defaultConfig must be an object"));
        }
        config::merge(&base, v)
      }
      _ => base,
    };
    config::resolve(&defaults)?;
    Ok(Self { defaults, sandboxes: Mutex::new(Vec::new()), pools: Mutex::new(Vec::new()) })
  }

  pub fn defaults(&self) -> &Value {
    &self.defaults
  }

  pub fn create(&self, config: Option<&Value>) -> Result<Arc<AnySandbox>> {
    let merged = match config {
      Some(v) if !v.is_null() => {
        if !v.is_object() {
          return Err(SandboxError::invalid_config("config must be an object"));
        }
        config::merge(&self.defaults, v)
      }
      _ => self.defaults.clone(),
    };
    let cfg = config::resolve(&merged)?;
    let sb = Arc::new(AnySandbox::new(&cfg)?);
    self.sandboxes.lock().unwrap().push(sb.clone());
    Ok(sb)
  }

  pub fn get(&self, id: &str) -> Option<Arc<AnySandbox>> {
    self.sandboxes.lock().unwrap().iter().find(|s| s.id() == id).cloned()
  }

  pub fn list(&self) -> Vec<Arc<AnySandbox>> {
    self.sandboxes.lock().unwrap().clone()
  }

  fn forget(&self, id: &str) {
    self.sandboxes.lock().unwrap().retain(|s| s.id() != id);
  }

  /// Unknown ids resolve (like the proof of concept). A failed destroy keeps the entry.
  pub async fn destroy(&self, id: &str) -> Result<()> {
    let Some(sb) = self.get(id) else {
      tracing::warn!(sandbox = id, "destroySandbox: no such sandbox");
      return Ok(());
    };
    sb.destroy().await?;
    self.forget(id);
    Ok(())
  }

  /// A warm pool of started sandboxes with `config`, filled to `min` before it resolves. Its
  /// sandboxes are ordinary managed sandboxes (listed, destroyed by destroyAll, which also
  /// destroys the pool).
  pub async fn create_pool(self: &Arc<Self>, config: Option<Value>, opts: PoolOptions) -> Result<Arc<SandboxPool>> {
    // validate the configuration now rather than on the first acquire
    let probe = self.create(config.as_ref())?;
    self.forget(probe.id());
    let weak = Arc::downgrade(self);
    let create_weak = weak.clone();
    let hooks = PoolHooks {
      create: Arc::new(move || {
        let (weak, config) = (create_weak.clone(), config.clone());
        Box::pin(async move {
          let m = weak.upgrade().ok_or_else(|| SandboxError::new(ErrorCode::PoolClosed, "the pool's manager is gone"))?;
          let sb = m.create(config.as_ref())?;
          if let Err(e) = sb.start(None).await {
            m.forget(sb.id());
            return Err(e);
          }
          Ok(sb)
        })
      }),
      reset: Arc::new(|sb: Arc<AnySandbox>| Box::pin(async move { sb.reset().await })),
      destroy: Arc::new(move |sb: Arc<AnySandbox>| {
        let weak = weak.clone();
        Box::pin(async move {
          sb.destroy().await?;
          if let Some(m) = weak.upgrade() {
            m.forget(sb.id());
          }
          Ok(())
        })
      }),
      id: Arc::new(|sb: &AnySandbox| sb.id().to_string()),
    };
    let pool = Pool::new(opts, hooks)?;
    pool.fill().await?;
    self.pools.lock().unwrap().push(pool.clone());
    Ok(pool)
  }

  /// Destroys every pool and every sandbox concurrently; all are attempted, failures are reported together.
  pub async fn destroy_all(&self) -> Result<()> {
    let pools: Vec<_> = std::mem::take(&mut *self.pools.lock().unwrap());
    for p in pools {
      if let Err(e) = p.destroy().await {
        tracing::warn!(error = %e, "pool destroy incomplete");
      }
    }
    let all = self.list();
    let results = futures_util::future::join_all(all.iter().map(|s| async move { (s.id().to_string(), s.destroy().await) })).await;
    let mut failed = Vec::new();
    for (id, r) in results {
      match r {
        Ok(()) => self.forget(&id),
        Err(e) => failed.push(format!("{id}: {}", e.message)),
      }
    }
    if failed.is_empty() {
      Ok(())
    } else {
      Err(SandboxError::provider(format!("some sandboxes could not be destroyed: {}", failed.join("; "))))
    }
  }

  /// Stats of every sandbox; a sandbox that is not running reports zeros (PoC behaviour).
  pub async fn all_stats(&self) -> Vec<(String, &'static str, Stats)> {
    let all = self.list();
    futures_util::future::join_all(all.iter().map(|s| async move {
      let st = if s.state() == crate::types::State::Running { s.stats().await.unwrap_or_default() } else { Stats::default() };
      (s.id().to_string(), s.config().provider.as_str(), st)
    }))
    .await
  }

  pub async fn health_all(&self) -> Vec<(String, &'static str, Health)> {
    let all = self.list();
    futures_util::future::join_all(all.iter().map(|s| async move { (s.id().to_string(), s.config().provider.as_str(), s.health().await) })).await
  }
}
