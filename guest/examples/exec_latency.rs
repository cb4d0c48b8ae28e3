//! Per-exec latency of the guest: foreground `echo` spawns, one after the other, timed from
//! writing the `Spawn` frame to reading its `Exit` reply (what the addon's `execute` waits for).
//!
//!   cargo run --release --example exec_latency -- [guest binary ...]
//!
//! With several binaries (e.g. a baseline build and the current one) the runs are interleaved in
//! rounds of 100 so that a busy machine hurts them alike. `N` (default 1000) sets the number of
//! spawns per binary, `PID1=1` runs the guests as PID 1 of a new PID namespace. The default
//! binary is the release build next to this example.
#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{spawn_req, Guest, Opts};

fn main() {
  let mut bins: Vec<String> = std::env::args().skip(1).collect();
  if bins.is_empty() {
    let exe = std::env::current_exe().unwrap();
    bins.push(exe.parent().unwrap().parent().unwrap().join("agentic-sandbox-guest").to_string_lossy().into_owned());
  }
  let n: usize = std::env::var("N").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
  let pid1 = std::env::var("PID1").is_ok();
  let req = spawn_req(&["echo", "hi"]);
  let mut guests: Vec<Guest> = bins.iter().map(|b| Guest::start(b, Opts { pid1, ..Default::default() })).collect();
  for g in guests.iter_mut() {
    for _ in 0..50 {
      assert_eq!(g.exec_req(&req).out(), "hi\n");
    }
  }
  let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); bins.len()];
  let round = 100.min(n);
  while times[0].len() < n {
    for (g, t) in guests.iter_mut().zip(times.iter_mut()) {
      for _ in 0..round.min(n - t.len()) {
        let start = Instant::now();
        let e = g.exec_req(&req);
        t.push(start.elapsed());
        assert_eq!(e.code(), 0);
      }
    }
  }
  let us = |d: Duration| d.as_secs_f64() * 1e6;
  for (bin, t) in bins.iter().zip(times.iter_mut()) {
    t.sort();
    let mean = t.iter().map(|d| us(*d)).sum::<f64>() / n as f64;
    println!(
      "{bin}{}: {n} echo spawns: p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, mean {:.0} us",
      if pid1 { " (PID 1)" } else { "" },
      us(t[n / 2]),
      us(t[n * 9 / 10]),
      us(t[n * 99 / 100]),
      mean
    );
  }
}
