//! The providers a sandbox runs on: a local Docker engine (with the in-sandbox guest daemon or
//! `docker exec`) and E2B's cloud.

pub mod docker;
pub mod e2b;
