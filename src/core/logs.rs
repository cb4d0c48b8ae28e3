//! A sandbox's own log (seed 002 `getLogs` / `streamLogs`): its lifecycle, each command's start
//! and end, and the commands' output lines. Bounded: the newest `MAX_ENTRIES` entries are kept and
//! each message is cut at `MAX_MESSAGE` bytes, so a chatty command cannot grow memory without
//! limit. Subscribers get every entry as it is added.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub const MAX_ENTRIES: usize = 1000;
pub const MAX_MESSAGE: usize = 4096;
/// output lines logged per command and stream; the rest is summarised in one line
pub const MAX_LINES_PER_COMMAND: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
  Debug,
  Info,
  Warn,
  Error,
}

impl Level {
  pub fn as_str(self) -> &'static str {
    match self {
      Level::Debug => "debug",
      Level::Info => "info",
      Level::Warn => "warn",
      Level::Error => "error",
    }
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
  System,
  Execution,
  Stdout,
  Stderr,
  /// the egress gateway's decisions (README "Network")
  Network,
}

impl Source {
  pub fn as_str(self) -> &'static str {
    match self {
      Source::System => "system",
      Source::Execution => "execution",
      Source::Stdout => "stdout",
      Source::Stderr => "stderr",
      Source::Network => "network",
    }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
  /// milliseconds since the Unix epoch
  pub time_ms: f64,
  pub level: Level,
  pub source: Source,
  pub message: String,
}

pub type Subscriber = Arc<dyn Fn(&LogEntry) + Send + Sync>;

#[derive(Default)]
struct Inner {
  entries: VecDeque<LogEntry>,
  dropped: u64,
  subscribers: Vec<(u64, Subscriber)>,
}

#[derive(Default)]
pub struct LogBuffer {
  inner: Mutex<Inner>,
  next_id: AtomicU64,
}

pub fn now_ms() -> f64 {
  SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Milliseconds since the epoch as an ISO 8601 UTC time (`2024-12-10T15:00:23.456Z`), like JavaScript's `toISOString`.
pub fn iso(ms: f64) -> String {
  let secs = (ms / 1000.0).floor() as i64;
  let millis = (ms - secs as f64 * 1000.0).round().clamp(0.0, 999.0) as u32;
  // days since the epoch → civil date (Howard Hinnant's algorithm)
  let days = secs.div_euclid(86_400);
  let rem = secs.rem_euclid(86_400);
  let z = days + 719_468;
  let era = z.div_euclid(146_097);
  let doe = z.rem_euclid(146_097);
  let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  let mp = (5 * doy + 2) / 153;
  let d = doy - (153 * mp + 2) / 5 + 1;
  let m = if mp < 10 { mp + 3 } else { mp - 9 };
  let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
  format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut.
fn clip(mut s: String, max: usize) -> String {
  if s.len() > max {
    let mut end = max;
    while !s.is_char_boundary(end) {
      end -= 1;
    }
    s.truncate(end);
    s.push('…');
  }
  s
}

/// What `getLogs` returns.
pub struct Snapshot {
  pub entries: Vec<LogEntry>,
  /// entries that matched the level filter (before `lines` cut them)
  pub total: usize,
  /// entries evicted since the sandbox was created
  pub dropped: u64,
  pub oldest_ms: Option<f64>,
}

impl LogBuffer {
  pub fn push(&self, level: Level, source: Source, message: impl Into<String>) {
    let entry = LogEntry { time_ms: now_ms(), level, source, message: clip(message.into(), MAX_MESSAGE) };
    let subs: Vec<Subscriber> = {
      let mut g = self.inner.lock().unwrap();
      if g.entries.len() == MAX_ENTRIES {
        g.entries.pop_front();
        g.dropped += 1;
      }
      g.entries.push_back(entry.clone());
      g.subscribers.iter().map(|(_, s)| s.clone()).collect()
    };
    // outside the lock: a subscriber may read the log
    for s in subs {
      s(&entry);
    }
  }

  pub fn info(&self, source: Source, message: impl Into<String>) {
    self.push(Level::Info, source, message)
  }

  /// One entry per line of a command's output (at most `MAX_LINES_PER_COMMAND`, then a note of how
  /// many were left out). stdout lines are `info`, stderr lines `error` (seed 002's convention).
  pub fn output(&self, source: Source, bytes: &[u8]) {
    if bytes.is_empty() {
      return;
    }
    let text = String::from_utf8_lossy(bytes);
    let level = if source == Source::Stderr { Level::Error } else { Level::Info };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    for line in lines.by_ref().take(MAX_LINES_PER_COMMAND) {
      self.push(level, source, line.to_string());
    }
    let rest = lines.count();
    if rest > 0 {
      self.push(Level::Warn, source, format!("… {rest} more {} lines not logged", source.as_str()));
    }
  }

  /// The newest `lines` entries at or above `min_level`, oldest first.
  pub fn snapshot(&self, lines: usize, min_level: Level) -> Snapshot {
    let g = self.inner.lock().unwrap();
    let matching: Vec<&LogEntry> = g.entries.iter().filter(|e| e.level >= min_level).collect();
    let total = matching.len();
    let skip = total.saturating_sub(lines);
    Snapshot {
      entries: matching[skip..].iter().map(|e| (*e).clone()).collect(),
      total,
      dropped: g.dropped,
      oldest_ms: g.entries.front().map(|e| e.time_ms),
    }
  }

  pub fn subscribe(&self, f: Subscriber) -> u64 {
    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
    self.inner.lock().unwrap().subscribers.push((id, f));
    id
  }

  /// Returns false when `id` was not subscribed (already stopped).
  pub fn unsubscribe(&self, id: u64) -> bool {
    let mut g = self.inner.lock().unwrap();
    let before = g.subscribers.len();
    g.subscribers.retain(|(i, _)| *i != id);
    g.subscribers.len() != before
  }

  pub fn subscriber_count(&self) -> usize {
    self.inner.lock().unwrap().subscribers.len()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn bounded_and_filtered() {
    let b = LogBuffer::default();
    for i in 0..(MAX_ENTRIES + 5) {
      b.info(Source::System, format!("m{i}"));
    }
    b.push(Level::Error, Source::Execution, "bad");
    let s = b.snapshot(10, Level::Debug);
    assert_eq!(s.entries.len(), 10);
    assert_eq!(s.entries.last().unwrap().message, "bad");
    assert_eq!(s.total, MAX_ENTRIES);
    assert_eq!(s.dropped, 6);
    let s = b.snapshot(100, Level::Warn);
    assert_eq!((s.total, s.entries.len()), (1, 1));
  }

  #[test]
  fn output_lines_and_clipping() {
    let b = LogBuffer::default();
    let text: String = (0..250).map(|i| format!("line {i}\n")).collect();
    b.output(Source::Stdout, text.as_bytes());
    b.output(Source::Stderr, "x".repeat(10_000).as_bytes());
    let s = b.snapshot(1000, Level::Debug);
    assert_eq!(s.entries.len(), MAX_LINES_PER_COMMAND + 2);
    assert_eq!(s.entries[MAX_LINES_PER_COMMAND].message, "… 50 more stdout lines not logged");
    let last = s.entries.last().unwrap();
    assert_eq!((last.level, last.source), (Level::Error, Source::Stderr));
    assert!(last.message.len() <= MAX_MESSAGE + '…'.len_utf8());
  }

  #[test]
  fn subscribers() {
    let b = LogBuffer::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let id = b.subscribe(Arc::new(move |e: &LogEntry| s2.lock().unwrap().push(e.message.clone())));
    b.info(Source::System, "a");
    assert!(b.unsubscribe(id));
    assert!(!b.unsubscribe(id));
    b.info(Source::System, "b");
    assert_eq!(*seen.lock().unwrap(), vec!["a".to_string()]);
  }
}
