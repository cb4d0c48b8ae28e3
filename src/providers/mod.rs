//! The providers a sandbox runs on: a local Docker engine (with the in-sandbox guest daemon or
//! `docker exec`), E2B's cloud, and providers written in JavaScript. Each implements
//! `core::provider::Provider`; a manager's [`Registry`] makes them.

pub mod docker;
pub mod e2b;
pub mod js;
pub mod remote;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::core::config::{valid_provider_name, ProviderKind, SandboxConfig};
use crate::core::error::{Result, SandboxError};
use crate::core::provider::{Provider, ProviderFactory};

/// The providers a manager can make sandboxes on: the built-in ones and those registered with it.
#[derive(Default)]
pub struct Registry {
  custom: RwLock<HashMap<String, Arc<dyn ProviderFactory>>>,
}

impl Registry {
  /// Registers (or replaces, for sandboxes made from now on) the provider `name`.
  pub fn register(&self, name: &str, factory: Arc<dyn ProviderFactory>) -> Result<()> {
    if !valid_provider_name(name) {
      return Err(SandboxError::invalid_argument(format!(
        "a provider name is lowercase letters, digits, '-' and '_', starting with a letter, at most 40 characters, and not 'docker', 'e2b' or 'remote'; got {name:?}"
      )));
    }
    self.custom.write().unwrap().insert(name.to_string(), factory);
    Ok(())
  }

  pub fn names(&self) -> Vec<String> {
    let mut v: Vec<String> = self.custom.read().unwrap().keys().cloned().collect();
    v.sort();
    v
  }
}

impl ProviderFactory for Registry {
  fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>> {
    // a fallback must be a provider this manager can make, or the start that needs it would fail late
    for kind in &config.fallback_providers {
      if let ProviderKind::Custom(name) = kind {
        if !self.custom.read().unwrap().contains_key(name) {
          return Err(SandboxError::invalid_config(format!(
            "fallbackProviders names {name:?}, which is not registered with this manager; register it with manager.registerProvider({name:?}, ...) or use 'docker' / 'e2b'"
          )));
        }
      }
    }
    Ok(match &config.provider {
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
      ProviderKind::Remote => remote::RemoteFactory.create(config, id)?,
      ProviderKind::Custom(name) => {
        let factory = self.custom.read().unwrap().get(name).cloned();
        let Some(factory) = factory else {
          return Err(SandboxError::invalid_config(format!(
            "provider {name:?} is not registered with this manager; register it first with manager.registerProvider({name:?}, CustomSandbox){}",
            match self.names() {
              n if n.is_empty() => String::new(),
              n => format!(" (registered: {})", n.join(", ")),
            }
          )));
        };
        factory.create(config, id)?
      }
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::error::ErrorCode;

  fn config(provider: &str) -> SandboxConfig {
    crate::core::config::resolve(&serde_json::json!({ "provider": provider, "image": "agentic-sandbox/busybox:1" })).unwrap()
  }

  #[test]
  fn provider_names() {
    for ok in ["local", "my-provider_2", "a"] {
      assert_eq!(ProviderKind::parse(ok, "provider").unwrap(), ProviderKind::Custom(ok.into()));
    }
    assert_eq!(ProviderKind::parse("docker", "provider").unwrap(), ProviderKind::Docker);
    for bad in ["", "Local", "2fast", "has space", "x/y", &"x".repeat(41)] {
      let e = ProviderKind::parse(bad, "provider").unwrap_err();
      assert_eq!(e.code, ErrorCode::InvalidConfig, "{bad}");
      assert!(e.message.contains("registerProvider"), "{}", e.message);
    }
    assert_eq!(config("local").provider, ProviderKind::Custom("local".into()));
  }

  #[test]
  fn unregistered_and_registered_custom_providers() {
    let r = Registry::default();
    let e = r.create(&config("local"), None).err().expect("not registered");
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(e.message.contains("manager.registerProvider(\"local\""), "{}", e.message);
    assert_eq!(r.register("docker", Arc::new(Registry::default())).unwrap_err().code, ErrorCode::InvalidArgument);

    /// A factory that makes the built-in Docker provider, under another name.
    struct Alias;
    impl ProviderFactory for Alias {
      fn create(&self, config: &SandboxConfig, id: Option<&str>) -> Result<Arc<dyn Provider>> {
        Registry::default().create(&SandboxConfig { provider: ProviderKind::Docker, ..config.clone() }, id)
      }
    }
    r.register("local", Arc::new(Alias)).unwrap();
    let p = r.create(&config("local"), Some("docker-00000000000000ab")).unwrap();
    assert_eq!(p.id(), "docker-00000000000000ab");
    assert_eq!(r.names(), vec!["local".to_string()]);
    // the built-in ones need no registration
    assert!(r.create(&config("docker"), None).unwrap().id().starts_with("docker-"));
  }
}
