//! The agent executor: a model loop whose tools run inside a sandbox, with JS interceptors.
//! `model`: LLM clients (Anthropic Messages, OpenAI-compatible chat completions); `tools`: the
//! built-in tools; `run`: interceptor semantics, the loop, results; `capture`: `captureFiles`.

pub mod capture;
pub mod model;
pub mod run;
pub mod tools;
