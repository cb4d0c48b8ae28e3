//! The provider-independent sandbox: configuration, errors and values, the process handle every
//! provider returns, the sandbox itself (`AnySandbox`: logs, policy, counters, sessions'
//! bookkeeping, background processes), the manager and pools.

pub mod config;
pub mod egress;
pub mod error;
pub mod logging;
pub mod logs;
pub mod manager;
pub mod paths;
pub mod policy;
pub mod pool;
pub mod process;
pub mod provider;
pub mod sandbox;
pub mod snapshot;
pub mod templates;
pub mod types;
