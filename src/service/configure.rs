//! `Sandbox.configure` (seed 002 `sandboxes.configure`): change a running sandbox's environment.
//!
//! In this order: `env` is added to the environment of every later command (a command's own
//! `env` still wins); `installPackages` are installed with the template's package manager, as
//! `installPackages` of the configuration does at the first start; then `runCommands` run one by
//! one (`/bin/sh -c`, in the workdir), stopping at the first that fails. Every step's result is
//! reported. A failing install or command does not reject: `success` is false and the steps say
//! what happened. What cannot start at all rejects (INVALID_ARGUMENT before anything changed,
//! SANDBOX_NOT_RUNNING, ABORTED when cancelled).

use std::collections::BTreeMap;

use tokio::sync::{oneshot, watch};

use crate::core::config::check_install;
use crate::core::process::OutputSink;
use crate::core::error::{Result, SandboxError};
use crate::core::logs::Source;
use crate::core::sandbox::{installer, AnySandbox};
use crate::core::types::{ExecOptions, ExecResult};

#[derive(Default)]
pub struct ConfigureOptions {
  pub env: BTreeMap<String, String>,
  pub install_packages: Vec<String>,
  pub run_commands: Vec<String>,
  /// seconds for each step; `None` uses `limits.timeoutSeconds`
  pub timeout: Option<f64>,
  pub workdir: Option<String>,
  pub sink: Option<OutputSink>,
  pub abort: Option<oneshot::Receiver<()>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
  Install,
  Command,
}

impl StepKind {
  pub fn as_str(self) -> &'static str {
    match self {
      StepKind::Install => "install",
      StepKind::Command => "command",
    }
  }
}

#[derive(Debug, Clone)]
pub struct Step {
  pub kind: StepKind,
  /// the command line as shown to the user
  pub command: String,
  pub result: ExecResult,
}

impl Step {
  pub fn ok(&self) -> bool {
    self.result.exit_code == 0 && !self.result.timed_out
  }
}

#[derive(Debug, Clone)]
pub struct ConfigureRun {
  pub env_vars_updated: usize,
  /// installed successfully (0 when the install failed or none were asked for)
  pub packages_installed: usize,
  pub steps: Vec<Step>,
  /// commands of `runCommands` that ran (the failing one included)
  pub commands_executed: usize,
  pub success: bool,
  pub duration_ms: f64,
}

fn check(sb: &AnySandbox, o: &ConfigureOptions) -> Result<()> {
  for k in o.env.keys() {
    if k.is_empty() || k.contains('=') || k.contains('\0') {
      return Err(SandboxError::invalid_argument(format!("env key {k:?} is not a valid variable name (no '=', not empty)")));
    }
  }
  let config = sb.config();
  check_install(&o.install_packages, config.template.as_deref(), config.package_manager, &config.provider, config.network_mode, config.network.is_some())
    .map_err(SandboxError::invalid_argument)?;
  for (i, c) in o.run_commands.iter().enumerate() {
    if c.trim().is_empty() {
      return Err(SandboxError::invalid_argument(format!("runCommands[{i}] is empty; give a shell command such as 'mkdir -p logs'")));
    }
  }
  Ok(())
}

/// One receiver per step, all fired by the caller's single abort.
struct Abort(Option<watch::Receiver<bool>>);

impl Abort {
  fn new(abort: Option<oneshot::Receiver<()>>) -> Self {
    Abort(abort.map(|rx| {
      let (tx, wrx) = watch::channel(false);
      tokio::spawn(async move {
        if rx.await.is_ok() {
          let _ = tx.send(true);
        }
      });
      wrx
    }))
  }

  fn step(&self) -> Option<oneshot::Receiver<()>> {
    let mut w = self.0.clone()?;
    let (mut tx, rx) = oneshot::channel();
    // ends with the step (its receiver dropped) or fires on the abort
    tokio::spawn(async move {
      let fire = tokio::select! {
        r = w.wait_for(|v| *v) => r.is_ok(),
        _ = tx.closed() => false,
      };
      if fire {
        let _ = tx.send(());
      }
    });
    Some(rx)
  }
}

pub async fn configure(sb: &AnySandbox, o: ConfigureOptions) -> Result<ConfigureRun> {
  check(sb, &o)?;
  let started = std::time::Instant::now();
  let config = sb.config();
  let abort = Abort::new(o.abort);
  let mut env = o.env.clone();
  if !o.install_packages.is_empty() && config.package_manager == Some(crate::core::templates::PackageManager::Pip) {
    // pip installs into the workspace (the root is read-only): later Python must find it there
    let target = format!("{}/{}", config.workdir.trim_end_matches('/'), crate::core::config::PIP_TARGET);
    let current = env.get("PYTHONPATH").cloned().or_else(|| sb.configured_env().get("PYTHONPATH").cloned()).or_else(|| config.env.get("PYTHONPATH").cloned());
    match current {
      Some(p) if p.split(':').any(|d| d == target) => {}
      Some(p) if !p.is_empty() => {
        env.insert("PYTHONPATH".into(), format!("{target}:{p}"));
      }
      _ => {
        env.insert("PYTHONPATH".into(), target);
      }
    }
  }
  if !env.is_empty() {
    sb.add_env(&env);
    sb.logs.info(Source::System, format!("Configured {} environment variable(s): {}", o.env.len(), o.env.keys().cloned().collect::<Vec<_>>().join(", ")));
  }
  let mut steps = Vec::new();
  let mut packages_installed = 0;
  let mut failed = false;
  if !o.install_packages.is_empty() {
    let (argv, mut opts) = installer(&config, &o.install_packages)?;
    opts.timeout = o.timeout;
    let shown = argv.join(" ");
    let label = format!("configure: installing {}", o.install_packages.join(" "));
    let result = sb.execute_as((&argv[0], &argv[1..]), &label, &argv[0], &argv[1..], opts, o.sink.clone(), abort.step()).await?;
    let step = Step { kind: StepKind::Install, command: shown, result };
    if step.ok() {
      packages_installed = o.install_packages.len();
    } else {
      failed = true;
    }
    steps.push(step);
  }
  let mut commands_executed = 0;
  if !failed {
    for c in &o.run_commands {
      let args = ["-c".to_string(), c.clone()];
      let opts = ExecOptions { timeout: o.timeout, workdir: o.workdir.clone(), ..Default::default() };
      let label = format!("configure: {c}");
      let result = sb.execute_as(("/bin/sh", &args), &label, "/bin/sh", &args, opts, o.sink.clone(), abort.step()).await?;
      commands_executed += 1;
      let step = Step { kind: StepKind::Command, command: c.clone(), result };
      let ok = step.ok();
      steps.push(step);
      if !ok {
        failed = true;
        break;
      }
    }
  }
  Ok(ConfigureRun {
    env_vars_updated: o.env.len(),
    packages_installed,
    steps,
    commands_executed,
    success: !failed,
    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
  })
}
