//! Per-tenant accounting: a counter with a maximum, taken through permits that give their unit
//! back when dropped, so a request that fails, is cancelled, or whose client goes away can never
//! leak a slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many of something a tenant holds (sandboxes, running executions) against its maximum.
#[derive(Debug)]
pub struct Counter {
  max: usize,
  used: AtomicUsize,
}

/// One unit of a [`Counter`], given back on drop.
#[derive(Debug)]
pub struct Permit {
  counter: Arc<Counter>,
}

impl Counter {
  pub fn new(max: usize) -> Arc<Self> {
    Arc::new(Self { max, used: AtomicUsize::new(0) })
  }

  pub fn max(&self) -> usize {
    self.max
  }

  pub fn used(&self) -> usize {
    self.used.load(Ordering::SeqCst)
  }

  /// A unit, or None when all `max` are taken.
  pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
    self
      .used
      .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.max).then_some(n + 1))
      .ok()
      .map(|_| Permit { counter: self.clone() })
  }
}

impl Drop for Permit {
  fn drop(&mut self) {
    self.counter.used.fetch_sub(1, Ordering::SeqCst);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn permits_count_and_give_back() {
    let c = Counter::new(2);
    let a = c.try_acquire().expect("first");
    let b = c.try_acquire().expect("second");
    assert!(c.try_acquire().is_none(), "a third is over the maximum");
    assert_eq!(c.used(), 2);
    drop(a);
    assert_eq!(c.used(), 1);
    let again = c.try_acquire().expect("a freed unit is available again");
    drop((b, again));
    assert_eq!(c.used(), 0);
  }

  #[test]
  fn concurrent_acquires_never_exceed_the_maximum() {
    let c = Counter::new(5);
    let taken: Vec<_> = std::thread::scope(|s| {
      let hs: Vec<_> = (0..32).map(|_| s.spawn(|| c.try_acquire())).collect();
      hs.into_iter().filter_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(taken.len(), 5);
    assert_eq!(c.used(), 5);
    drop(taken);
    assert_eq!(c.used(), 0);
  }
}
