//! The providers a sandbox runs on: a local Docker engine (with the in-sandbox guest daemon or
//! `docker exec`) and E2B's cloud. Each implements `core::provider::Provider`; the [`Registry`]
//! makes them for the manager.

pub mod docker;
pub mod e2b;

use std::sync::Arc;

use crate::core::config::{ProviderKind, SandboxConfig};
use crate::core::error::Result;
use crate::core::provider::{Provider, ProviderFactory};

/// The providers a manager can make sandboxes on.
#[derive(Default)]
pub struct Registry;

impl ProviderFactory for Registry {
  fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>> {
    Ok(match config.provider {
      ProviderKind::Docker => {
        let mut s = docker::DockerSandbox::new(config.clone());
        if let Some(id) = id {
          s.id = id.to_string();
        }
        Arc::new(s)
      }
      ProviderKind::E2b => {
        let opts = e2b::E2bOptions::resolve(config.e2b.as_ref(), &|k| std::env::var(k).ok())?;
        let mut s = e2b::E2bSandbox::new(config.clone(), opts);
        if let Some(id) = id {
          s.id = id.to_string();
        }
        Arc::new(s)
      }
    })
  }
}
