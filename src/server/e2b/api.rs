//! E2B's control plane (REST/JSON): create, list, info, kill, timeout, pause, connect, metrics,
//! network. See `../shared/reference/e2b-protocol.md` section 1.

use std::sync::Arc;

use axum::Router;

use crate::server::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
}
