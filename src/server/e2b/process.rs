//! envd's `process.Process` Connect service (Start and Connect server-streaming, List,
//! SendInput, CloseStdin, SendSignal). See `../shared/reference/e2b-protocol.md` sections 2.5
//! and 3.

use std::sync::Arc;

use axum::Router;

use crate::server::state::AppState;

/// A sandbox's envd processes.
#[derive(Default)]
pub struct Table {}

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
}
