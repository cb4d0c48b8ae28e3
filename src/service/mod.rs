//! Seeds 002–004's features on top of any sandbox: `runCode` / `runTests` (and the test-output
//! parsers), `configure`, status, and file transfers between host and sandbox.

pub mod code;
pub mod configure;
pub mod status;
pub mod testparse;
pub mod transfer;
pub mod contexts;
