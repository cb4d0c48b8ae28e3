//! envd's `filesystem.Filesystem` Connect service, `/files` upload and download, `/health`,
//! `/envs` and `/metrics`. See `../shared/reference/e2b-protocol.md` sections 2.3, 2.4 and 2.6.

use std::sync::Arc;

use axum::Router;

use crate::server::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
}
