//! The library's own log output: `tracing` events written to stderr through a filter that can be
//! changed at run time (`logger.setLevel(level)`, the `debug` / `verbose` config keys).
//!
//! Silent by default: unless `RUST_LOG` or `DEBUG` asks for output, the filter is `off`, so
//! nothing is printed (and disabled call sites cost a cached interest check). The subscriber is
//! installed once per process, at the first `SandboxManager` or `logger` call; if the process
//! already has a global `tracing` subscriber (an embedding Rust program, a test harness), that one
//! is left alone and level changes have no effect.
//!
//! A level applies to the library's events (target `agentic_sandbox`), not to those of its
//! dependencies (hyper, reqwest, ...): `setLevel('debug')` means the filter
//! `agentic_sandbox=debug`. `RUST_LOG` takes any `tracing-subscriber` filter and is used as given.

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::core::error::{Result, SandboxError};

/// A level of the library's log output, quietest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
  Off,
  Error,
  Warn,
  Info,
  Debug,
  Trace,
}

pub const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

impl Level {
  pub fn parse(s: &str) -> Result<Level> {
    Ok(match s {
      "off" => Level::Off,
      "error" => Level::Error,
      "warn" => Level::Warn,
      "info" => Level::Info,
      "debug" => Level::Debug,
      "trace" => Level::Trace,
      other => {
        return Err(SandboxError::invalid_argument(format!(
          "logger.setLevel: level must be one of 'error', 'warn', 'info', 'debug', 'trace', 'off', got {other:?}"
        )))
      }
    })
  }

  pub fn as_str(self) -> &'static str {
    LEVELS[self as usize]
  }

  /// The `EnvFilter` directive of this level.
  pub fn filter(self) -> String {
    match self {
      Level::Off => "off".to_string(),
      l => format!("agentic_sandbox={}", l.as_str()),
    }
  }
}

/// What the filter currently is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
  Level(Level),
  /// a `RUST_LOG` filter, used as given
  Custom(String),
}

impl Current {
  pub fn describe(&self) -> String {
    match self {
      Current::Level(l) => l.as_str().to_string(),
      Current::Custom(f) => f.clone(),
    }
  }
}

/// The filter at start-up: `RUST_LOG` as given, else `DEBUG` (set, not `0`/`false`) → debug, else off.
pub fn initial(get: &dyn Fn(&str) -> Option<String>) -> Current {
  match (get("RUST_LOG").filter(|f| !f.trim().is_empty()), get("DEBUG")) {
    (Some(f), _) => Current::Custom(f),
    (None, Some(d)) if !d.is_empty() && d != "0" && d != "false" => Current::Level(Level::Debug),
    _ => Current::Level(Level::Off),
  }
}

/// The level `raise_to(requested)` leaves: a level below the request is raised, a higher level or
/// a `RUST_LOG` filter (the user's explicit choice) is kept.
pub fn raised(current: &Current, requested: Level) -> Current {
  match current {
    Current::Level(l) if *l < requested => Current::Level(requested),
    other => other.clone(),
  }
}

struct State {
  handle: Option<reload::Handle<EnvFilter, Registry>>,
  current: Mutex<Current>,
}

static STATE: OnceLock<State> = OnceLock::new();

fn state() -> &'static State {
  STATE.get_or_init(|| {
    let current = initial(&|k| std::env::var(k).ok());
    let filter = match &current {
      Current::Level(l) => EnvFilter::new(l.filter()),
      Current::Custom(f) => EnvFilter::new(f),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::registry()
      .with(filter)
      .with(fmt::layer().with_writer(std::io::stderr).with_ansi(ansi));
    let handle = tracing::subscriber::set_global_default(subscriber).ok().map(|_| handle);
    State { handle, current: Mutex::new(current) }
  })
}

/// Install the stderr subscriber (once per process; idempotent).
pub fn init() {
  state();
}

fn apply(next: Current) {
  let st = state();
  let mut cur = st.current.lock().unwrap_or_else(|p| p.into_inner());
  if *cur == next {
    return;
  }
  let filter = match &next {
    Current::Level(l) => EnvFilter::new(l.filter()),
    Current::Custom(f) => EnvFilter::new(f),
  };
  if let Some(h) = &st.handle {
    // reloading also rebuilds the call sites' cached interest
    if let Err(e) = h.reload(filter) {
      tracing::warn!(error = %e, "changing the log level failed");
      return;
    }
  }
  *cur = next;
}

/// `logger.setLevel(level)`: replaces the filter (also one from `RUST_LOG`).
pub fn set_level(level: Level) {
  apply(Current::Level(level));
}

/// `debug: true` / `verbose: true`: at least `level` from now on (see [`raised`]).
pub fn raise_to(level: Level) {
  let next = raised(&current(), level);
  apply(next);
}

/// Adds a `tracing-subscriber` directive to the filter in effect (`agentic_sandbox::server::access=info`
/// turns on the sandbox service's access log and nothing else). A directive already there is not
/// added twice.
pub fn enable(directive: &str) {
  let cur = current();
  let base = match &cur {
    Current::Level(l) => l.filter(),
    Current::Custom(f) => f.clone(),
  };
  if base.split(',').any(|d| d.trim() == directive) {
    return;
  }
  apply(Current::Custom(format!("{base},{directive}")));
}

/// The filter in effect (`logger.getLevel()`).
pub fn current() -> Current {
  state().current.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn levels_parse_and_order() {
    for s in LEVELS {
      assert_eq!(Level::parse(s).unwrap().as_str(), s);
    }
    let e = Level::parse("verbose").unwrap_err();
    assert_eq!(e.code, crate::core::error::ErrorCode::InvalidArgument);
    assert!(e.message.contains("'debug'") && e.message.contains("\"verbose\""), "{}", e.message);
    assert!(Level::Off < Level::Error && Level::Debug < Level::Trace);
    assert_eq!(Level::Debug.filter(), "agentic_sandbox=debug");
    assert_eq!(Level::Off.filter(), "off");
  }

  #[test]
  fn initial_filter_from_the_environment() {
    let none = |_: &str| None;
    assert_eq!(initial(&none), Current::Level(Level::Off), "silent by default");
    let env = |k: &str| (k == "DEBUG").then(|| "1".to_string());
    assert_eq!(initial(&env), Current::Level(Level::Debug));
    let env = |k: &str| (k == "DEBUG").then(|| "false".to_string());
    assert_eq!(initial(&env), Current::Level(Level::Off));
    let env = |k: &str| match k {
      "RUST_LOG" => Some("hyper=info".to_string()),
      "DEBUG" => Some("1".to_string()),
      _ => None,
    };
    assert_eq!(initial(&env), Current::Custom("hyper=info".into()), "RUST_LOG wins over DEBUG");
  }

  #[test]
  fn debug_and_verbose_only_raise() {
    assert_eq!(raised(&Current::Level(Level::Off), Level::Debug), Current::Level(Level::Debug));
    assert_eq!(raised(&Current::Level(Level::Trace), Level::Debug), Current::Level(Level::Trace));
    assert_eq!(raised(&Current::Level(Level::Debug), Level::Trace), Current::Level(Level::Trace));
    let custom = Current::Custom("agentic_sandbox=info".into());
    assert_eq!(raised(&custom, Level::Trace), custom, "a RUST_LOG filter is the user's choice");
  }
}
