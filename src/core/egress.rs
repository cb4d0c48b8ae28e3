//! Egress rules (README "Network"): the entry syntax, presets, fixed deny set and decisions,
//! shared word for word with the egress gateway that enforces them (the guest binary's
//! `gateway` mode), so that what the library accepts is exactly what the gateway applies.
#![allow(dead_code)]

#[path = "../../guest/src/egress.rs"]
mod rules;

pub use rules::*;
