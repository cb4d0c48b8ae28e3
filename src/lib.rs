//! agentic-sandbox: run commands, code and whole AI agents in isolated sandboxes, from Node.js.
//!
//! - `core`: the provider-independent sandbox (configuration, errors, the process handle, the
//!   sandbox with its logs, policy and bookkeeping, the manager and pools);
//! - `providers`: where sandboxes run (`docker` with its in-sandbox guest daemon, `e2b`);
//! - `service`: seeds 002–004's features on any sandbox (runCode, runTests and their parsers,
//!   configure, status, transfers);
//! - `cluster`: distributed mode's registry of workers, sandboxes and sessions in Redis;
//! - `executor`: the agent loop (model clients, tools, interceptors, file capture);
//! - `server`: the sandbox service, seed 004's HTTP API over a manager (axum), with API keys as tenants;
//! - `js`: the napi classes, conversion and error mapping only.

#![deny(clippy::all)]

pub mod cluster;
pub mod core;
pub mod executor;
pub mod js;
pub mod providers;
pub mod server;
pub mod service;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testutil;
