//! A warm pool of sandboxes, generic over the item so it is unit-tested without Docker.
//!
//! Every item the pool knows about is in exactly one state: idle, in use (handed out), resetting
//! (released, reset running), being created, or draining (expired, destroy running). All of them
//! count toward `max`, so `max` bounds the sandboxes that exist at once, not only the ones in use.
//!
//! - `acquire` takes the most recently released idle item (LIFO: the warmest); else, below `max`,
//!   creates one (the in-flight create holds a slot); else queues (FIFO) until a release hands it an
//!   item or a freed slot, or until the timeout (default `acquire_timeout`) ends in `POOL_EXHAUSTED`.
//!   A create failure goes to the acquirer that asked for it and frees the slot for the next waiter.
//!   After each acquire the pool refills to `min` idle items in the background (errors only traced).
//! - `release` accepts only an item this pool handed out and that is not released yet (matched by
//!   `id`), else `INVALID_ARGUMENT`. It runs `reset`; on success the item goes to the first waiter
//!   or back to idle. If `reset` fails the item is destroyed, its slot freed and the pool refilled,
//!   and `release` still resolves `Ok`: the caller did nothing wrong and cannot fix it. Releasing
//!   into a destroyed pool is a no-op `Ok` (the pool already destroyed the item), so `release` in a
//!   `finally` block is safe during shutdown.
//! - With `idle_timeout`, a background task (holding only a `Weak`) destroys items idle longer than
//!   that, oldest first, never going below `min`; it stops once the pool is destroyed or dropped.
//!   It starts on the first `fill`/`acquire`, which run inside the tokio runtime (`new` may not).
//! - `destroy` closes the pool, fails every waiter with `POOL_CLOSED`, destroys idle *and* in-use
//!   items (sandboxes handed out die with their pool, as with the manager's destroy-all), waits for
//!   in-flight creates and resets and destroys what they produce, and reports all destroy failures
//!   in one error. A second call returns `Ok` at once. Later `acquire`/`fill` fail with
//!   `POOL_CLOSED`. Dropping a pool without `destroy` runs no hooks: nothing is destroyed.
//! - Teardown is bounded: a `reset` running longer than `reset_timeout` counts as failed (the item
//!   is destroyed and replaced), a `destroy` hook running longer than `destroy_timeout` is reported
//!   as failed, and `destroy` waits at most `destroy_timeout` for in-flight creates: an item that
//!   arrives later is destroyed as it arrives.
//! - `discard` forgets an item destroyed behind the pool's back (idle or in use): its slot is
//!   freed, and its later `release` is a no-op `Ok`.
//!
//! No std `Mutex` guard is held across an await. Dropping an `acquire` future at any point gives
//! back whatever it held or was granted; `fill` and `release` run their work as spawned tasks, so
//! dropping their futures cannot leave the bookkeeping half-done. Hooks must not call into the pool.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{oneshot, Notify};
use tracing::{debug, warn};

use crate::core::error::{ErrorCode, Result, SandboxError};

pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the pool does to its items; the Docker glue lives in the caller.
pub struct PoolHooks<T> {
  /// create AND start an item
  pub create: Arc<dyn Fn() -> BoxFut<Result<Arc<T>>> + Send + Sync>,
  /// make a released item fit for the next user (kill processes, clear the workspace)
  pub reset: Arc<dyn Fn(Arc<T>) -> BoxFut<Result<()>> + Send + Sync>,
  pub destroy: Arc<dyn Fn(Arc<T>) -> BoxFut<Result<()>> + Send + Sync>,
  /// a stable unique id (the sandbox id)
  pub id: Arc<dyn Fn(&T) -> String + Send + Sync>,
}

impl<T> Clone for PoolHooks<T> {
  fn clone(&self) -> Self {
    let (create, reset, destroy, id) = (&self.create, &self.reset, &self.destroy, &self.id);
    Self { create: create.clone(), reset: reset.clone(), destroy: destroy.clone(), id: id.clone() }
  }
}

#[derive(Debug, Clone)]
pub struct PoolOptions {
  pub min: usize,
  pub max: usize,
  /// items the first `fill` creates (at least `min`, at most `max`): seed 003's "initial pool
  /// size"; those above `min` are destroyed by the idle timeout like any other spare item
  pub initial: usize,
  pub idle_timeout: Option<Duration>,
  pub acquire_timeout: Duration,
  /// longest a `reset` may run before it counts as failed
  pub reset_timeout: Duration,
  /// longest a `destroy` hook may run before it is reported as failed; also how long `destroy`
  /// waits for in-flight creates
  pub destroy_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
  pub idle: usize,
  /// handed out, including released items whose reset is still running
  pub in_use: usize,
  pub creating: usize,
  pub waiting: usize,
  pub min: usize,
  pub max: usize,
}

/// What a waiter is handed: an item (already recorded as in use) or a slot (already counted in
/// `creating`) that it fills by creating an item itself.
enum Grant<T> {
  Item(Arc<T>),
  Slot,
}

struct Idle<T> {
  item: Arc<T>,
  since: Instant,
}

struct Waiter<T> {
  id: u64,
  tx: oneshot::Sender<Grant<T>>,
}

struct State<T> {
  /// oldest first: reuse pops from the end, the idle reaper takes from the front
  idle: Vec<Idle<T>>,
  in_use: HashMap<String, Arc<T>>,
  resetting: HashMap<String, Arc<T>>,
  creating: usize,
  /// the part of `creating` meant for idle (fill / background refill)
  refilling: usize,
  draining: usize,
  waiters: VecDeque<Waiter<T>>,
  next_waiter: u64,
  /// items that arrived after close; `destroy` destroys them
  orphans: Vec<Arc<T>>,
  closed: bool,
  /// `destroy` stopped waiting for in-flight creates: what arrives now is destroyed at once
  abandoned: bool,
  /// ids of in-use items destroyed behind the pool's back (`discard`); their `release` is a no-op
  discarded: std::collections::HashSet<String>,
}

impl<T> State<T> {
  fn total(&self) -> usize {
    self.idle.len() + self.in_use.len() + self.resetting.len() + self.creating + self.draining
  }
}

pub struct Pool<T> {
  opts: PoolOptions,
  hooks: PoolHooks<T>,
  state: Mutex<State<T>>,
  /// signalled whenever a create, reset or drain finishes; `destroy` waits on it
  settled: Notify,
  reaper_started: AtomicBool,
}

fn closed_error() -> SandboxError {
  SandboxError::new(ErrorCode::PoolClosed, "the sandbox pool was destroyed; create a new pool")
}

/// Run `fut` as its own task and wait for it: dropping the caller's future then cannot abandon the
/// bookkeeping half-way (a leaked slot, or a `destroy` waiting forever for a reset).
async fn detached<R: Send + 'static>(fut: impl Future<Output = Result<R>> + Send + 'static) -> Result<R> {
  let failed = |e| Err(SandboxError::new(ErrorCode::ProviderError, format!("pool task failed: {e}")));
  tokio::spawn(fut).await.unwrap_or_else(failed)
}

impl<T: Send + Sync + 'static> Pool<T> {
  pub fn new(opts: PoolOptions, hooks: PoolHooks<T>) -> Result<Arc<Self>> {
    if opts.max < 1 {
      return Err(SandboxError::invalid_argument(
        "pool max must be at least 1 (got 0); set max to the most sandboxes the pool may hold at once",
      ));
    }
    if opts.min > opts.max {
      return Err(SandboxError::invalid_argument(format!(
        "pool min ({}) must not exceed max ({}); lower min or raise max",
        opts.min, opts.max
      )));
    }
    if opts.initial > opts.max {
      return Err(SandboxError::invalid_argument(format!(
        "pool initial ({}) must not exceed max ({}); lower initial or raise max",
        opts.initial, opts.max
      )));
    }
    let state = State {
      idle: Vec::new(),
      in_use: HashMap::new(),
      resetting: HashMap::new(),
      creating: 0,
      refilling: 0,
      draining: 0,
      waiters: VecDeque::new(),
      next_waiter: 0,
      orphans: Vec::new(),
      closed: false,
      abandoned: false,
      discarded: Default::default(),
    };
    let reaper_started = AtomicBool::new(false);
    Ok(Arc::new(Self { opts, hooks, state: Mutex::new(state), settled: Notify::new(), reaper_started }))
  }

  fn lock(&self) -> MutexGuard<'_, State<T>> {
    self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  pub fn stats(&self) -> PoolStats {
    let st = self.lock();
    PoolStats {
      idle: st.idle.len(),
      in_use: st.in_use.len() + st.resetting.len(),
      creating: st.creating,
      waiting: st.waiters.len(),
      min: self.opts.min,
      max: self.opts.max,
    }
  }

  pub fn is_closed(&self) -> bool {
    self.lock().closed
  }

  /// Create up to `max(min, initial)` idle items concurrently. If any create fails, the ones that
  /// succeeded are destroyed and the first error is returned.
  pub async fn fill(self: &Arc<Self>) -> Result<()> {
    self.ensure_reaper();
    let target = self.opts.min.max(self.opts.initial);
    let n = {
      let mut st = self.lock();
      if st.closed {
        return Err(closed_error());
      }
      self.reserve_refill(&mut st, target)
    };
    if n == 0 {
      return Ok(());
    }
    let pool = self.clone();
    detached(async move {
      let results = join_all((0..n).map(|_| (pool.hooks.create)())).await;
      let (made, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
      let made: Vec<Arc<T>> = made.into_iter().flatten().collect();
      let Some(first) = failed.iter().find_map(|r| r.as_ref().err()) else {
        let mut st = pool.lock();
        st.creating -= n;
        st.refilling -= n;
        let closed = st.closed;
        made.into_iter().for_each(|item| pool.settle_locked(&mut st, item));
        drop(st);
        pool.settled.notify_waiters();
        return if closed { Err(closed_error()) } else { Ok(()) };
      };
      let to = if target == pool.opts.min { format!("min {target}") } else { format!("its initial size {target}") };
      let msg = format!(
        "filling the pool to {to} failed ({} of {n} creates failed; the others were destroyed): {}",
        failed.len(),
        first.message
      );
      for (id, e) in pool.destroy_all(made).await {
        warn!(sandbox = %id, error = %e, "destroying a pool sandbox after a failed fill failed");
      }
      let mut st = pool.lock();
      st.creating -= n;
      st.refilling -= n;
      (0..n).for_each(|_| pool.free_slot_locked(&mut st));
      drop(st);
      pool.settled.notify_waiters();
      Err(SandboxError::new(first.code, msg))
    })
    .await
  }

  pub async fn acquire(self: &Arc<Self>, timeout: Option<Duration>) -> Result<Arc<T>> {
    self.ensure_reaper();
    let wait = timeout.unwrap_or(self.opts.acquire_timeout);
    // Decide under the lock, act after it: a guard in scope at an await makes the future !Send.
    let queued = {
      let mut st = self.lock();
      if st.closed {
        return Err(closed_error());
      }
      if let Some(Idle { item, .. }) = st.idle.pop() {
        st.in_use.insert((self.hooks.id)(&item), item.clone());
        Err(Grant::Item(item))
      } else if st.total() < self.opts.max {
        st.creating += 1;
        Err(Grant::Slot)
      } else {
        let (tx, rx) = oneshot::channel();
        st.next_waiter += 1;
        let id = st.next_waiter;
        st.waiters.push_back(Waiter { id, tx });
        Ok(WaitGuard { pool: self, id, rx, done: false })
      }
    };
    let mut guard = match queued {
      Ok(guard) => guard,
      Err(grant) => return self.take_grant(grant).await,
    };
    let grant = match tokio::time::timeout(wait, &mut guard.rx).await {
      Ok(Ok(grant)) => grant,
      Ok(Err(_)) => return Err(closed_error()),
      Err(_) => match guard.withdraw()? {
        Some(grant) => grant,
        None => return Err(self.exhausted(wait)),
      },
    };
    guard.done = true;
    self.take_grant(grant).await
  }

  fn exhausted(&self, wait: Duration) -> SandboxError {
    let s = self.stats();
    SandboxError::new(
      ErrorCode::PoolExhausted,
      format!(
        "no pool sandbox became free within {} ms: the pool is at its max of {} ({} in use, {} being created); \
         raise the pool's max, release sandboxes sooner, or pass a longer acquire timeout",
        wait.as_millis(),
        s.max,
        s.in_use,
        s.creating
      ),
    )
  }

  async fn take_grant(self: &Arc<Self>, grant: Grant<T>) -> Result<Arc<T>> {
    let item = match grant {
      Grant::Item(item) => item,
      Grant::Slot => self.create_reserved().await?,
    };
    self.refill_in_background();
    Ok(item)
  }

  /// Fill a slot already counted in `creating` with a new item for the caller.
  async fn create_reserved(self: &Arc<Self>) -> Result<Arc<T>> {
    let mut slot = SlotGuard { pool: self, armed: true };
    let res = if self.is_closed() { Err(closed_error()) } else { (self.hooks.create)().await };
    slot.armed = false;
    let mut st = self.lock();
    st.creating -= 1;
    let out = match res {
      Ok(item) if st.closed => {
        self.orphan_locked(&mut st, item);
        Err(closed_error())
      }
      Ok(item) => {
        st.in_use.insert((self.hooks.id)(&item), item.clone());
        Ok(item)
      }
      Err(e) => {
        self.free_slot_locked(&mut st);
        Err(e)
      }
    };
    drop(st);
    self.settled.notify_waiters();
    out
  }

  /// Give back an item from `acquire`. See the module doc for the reset-failure and closed cases.
  pub async fn release(self: &Arc<Self>, item: Arc<T>) -> Result<()> {
    let id = (self.hooks.id)(&item);
    {
      let mut st = self.lock();
      if st.closed {
        return Ok(());
      }
      if st.in_use.remove(&id).is_none() {
        if st.discarded.remove(&id) {
          return Ok(()); // destroyed while in use: nothing to give back
        }
        let again = st.resetting.contains_key(&id) || st.idle.iter().any(|i| (self.hooks.id)(&i.item) == id);
        return Err(SandboxError::invalid_argument(if again {
          format!("sandbox {id} was already released to this pool; release each acquired sandbox once")
        } else {
          format!("sandbox {id} was not acquired from this pool; release only what this pool's acquire returned")
        }));
      }
      st.resetting.insert(id.clone(), item.clone());
    }
    let pool = self.clone();
    detached(async move {
      let reset = pool.reset_bounded(item.clone()).await;
      if let Err(e) = &reset {
        warn!(sandbox = %id, error = %e, "resetting a released pool sandbox failed; destroying it");
        if let Err(e) = pool.destroy_bounded(item.clone()).await {
          warn!(sandbox = %id, error = %e, "destroying a pool sandbox whose reset failed failed");
        }
      }
      let mut st = pool.lock();
      st.resetting.remove(&id);
      match reset {
        Ok(()) => pool.settle_locked(&mut st, item),
        Err(_) => pool.free_slot_locked(&mut st),
      }
      drop(st);
      pool.settled.notify_waiters();
      pool.refill_in_background();
      Ok(())
    })
    .await
  }

  /// Take an acquired item out of the pool for good (a session keeps it): its slot is freed and
  /// the pool refills to `min` in the background. The caller now owns the item's destruction.
  pub fn detach(self: &Arc<Self>, item: &Arc<T>) -> Result<()> {
    let id = (self.hooks.id)(item);
    {
      let mut st = self.lock();
      if st.in_use.remove(&id).is_none() {
        return Err(SandboxError::invalid_argument(format!("sandbox {id} is not in use from this pool; detach only what acquire returned")));
      }
      self.free_slot_locked(&mut st);
    }
    self.settled.notify_waiters();
    self.refill_in_background();
    Ok(())
  }

  /// Close the pool and destroy every item it holds or is making. Idempotent.
  pub async fn destroy(self: &Arc<Self>) -> Result<()> {
    let doomed: Vec<Arc<T>> = {
      let mut st = self.lock();
      if st.closed {
        return Ok(());
      }
      st.closed = true;
      st.waiters.clear(); // dropping the senders fails each waiter with POOL_CLOSED
      let mut doomed: Vec<_> = st.idle.drain(..).map(|i| i.item).collect();
      doomed.extend(st.in_use.drain().map(|(_, item)| item));
      doomed
    };
    let mut errors = self.destroy_all(doomed).await;
    let deadline = tokio::time::Instant::now() + self.opts.destroy_timeout;
    loop {
      let settled = self.settled.notified(); // registered before the check, so no wake-up is lost
      let (orphans, busy) = {
        let mut st = self.lock();
        (std::mem::take(&mut st.orphans), st.creating + st.draining + st.resetting.len() > 0)
      };
      errors.extend(self.destroy_all(orphans).await);
      if !busy {
        break;
      }
      if tokio::time::timeout_at(deadline, settled).await.is_err() {
        // creates can take long (an image pull); their items are destroyed when they arrive
        let late = {
          let mut st = self.lock();
          st.abandoned = true;
          std::mem::take(&mut st.orphans)
        };
        errors.extend(self.destroy_all(late).await);
        warn!(wait_ms = self.opts.destroy_timeout.as_millis() as u64, "pool destroyed while sandboxes were still being created; they are destroyed when their start ends");
        break;
      }
    }
    let Some((_, first)) = errors.first() else { return Ok(()) };
    let list: Vec<String> = errors.iter().map(|(id, e)| format!("{id}: {}", e.message)).collect();
    let msg = format!("destroying the pool failed for {} sandbox(es): {}", errors.len(), list.join("; "));
    Err(SandboxError::new(first.code, msg))
  }

  async fn destroy_all(&self, items: Vec<Arc<T>>) -> Vec<(String, SandboxError)> {
    let results = join_all(items.into_iter().map(|item| {
      let id = (self.hooks.id)(&item);
      let fut = self.destroy_bounded(item);
      async move { fut.await.err().map(|e| (id, e)) }
    }))
    .await;
    results.into_iter().flatten().collect()
  }

  /// The `destroy` hook, failing after `destroy_timeout`.
  fn destroy_bounded(&self, item: Arc<T>) -> BoxFut<Result<()>> {
    let (id, limit) = ((self.hooks.id)(&item), self.opts.destroy_timeout);
    let fut = (self.hooks.destroy)(item);
    Box::pin(async move {
      tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(SandboxError::new(ErrorCode::ProviderError, format!("destroying sandbox {id} did not finish within {} ms", limit.as_millis())))
      })
    })
  }

  /// The `reset` hook, failing after `reset_timeout`.
  async fn reset_bounded(&self, item: Arc<T>) -> Result<()> {
    let (id, limit) = ((self.hooks.id)(&item), self.opts.reset_timeout);
    tokio::time::timeout(limit, (self.hooks.reset)(item)).await.unwrap_or_else(|_| {
      Err(SandboxError::new(ErrorCode::ProviderError, format!("resetting sandbox {id} did not finish within {} ms", limit.as_millis())))
    })
  }

  /// Under the lock: an item that arrived after close goes to `destroy`, or, once `destroy`
  /// stopped waiting, is destroyed now.
  fn orphan_locked(&self, st: &mut State<T>, item: Arc<T>) {
    if !st.abandoned {
      st.orphans.push(item);
      return;
    }
    let id = (self.hooks.id)(&item);
    let fut = self.destroy_bounded(item);
    tokio::spawn(async move {
      if let Err(e) = fut.await {
        warn!(sandbox = %id, error = %e, "destroying a sandbox created for a destroyed pool failed");
      }
    });
  }

  /// Forget an item destroyed behind the pool's back (a user destroyed a sandbox the pool holds):
  /// an idle one leaves the idle list, one in use is no longer expected back. Its slot is freed
  /// and the pool refills. Unknown ids (items being reset or destroyed by the pool) are ignored.
  pub fn discard(self: &Arc<Self>, id: &str) {
    let found = {
      let mut st = self.lock();
      if st.closed {
        return;
      }
      let found = if let Some(pos) = st.idle.iter().position(|i| (self.hooks.id)(&i.item) == id) {
        st.idle.remove(pos);
        true
      } else if st.in_use.remove(id).is_some() {
        st.discarded.insert(id.to_string());
        true
      } else {
        false
      };
      if found {
        self.free_slot_locked(&mut st);
      }
      found
    };
    if found {
      self.settled.notify_waiters();
      self.refill_in_background();
    }
  }

  /// Whether the pool holds the item with `id` (idle, in use, or being reset).
  pub fn contains(&self, id: &str) -> bool {
    let st = self.lock();
    st.in_use.contains_key(id) || st.resetting.contains_key(id) || st.idle.iter().any(|i| (self.hooks.id)(&i.item) == id)
  }

  /// Under the lock: hand a ready item to the first live waiter, else make it idle (or an orphan
  /// for `destroy` if the pool is closed).
  fn settle_locked(&self, st: &mut State<T>, mut item: Arc<T>) {
    if st.closed {
      self.orphan_locked(st, item);
      return;
    }
    while let Some(w) = st.waiters.pop_front() {
      let id = (self.hooks.id)(&item);
      st.in_use.insert(id.clone(), item.clone());
      match w.tx.send(Grant::Item(item)) {
        Ok(()) => return,
        Err(Grant::Item(back)) => {
          st.in_use.remove(&id); // that acquirer is gone; try the next
          item = back;
        }
        Err(Grant::Slot) => unreachable!("an item was sent"),
      }
    }
    st.idle.push(Idle { item, since: Instant::now() });
  }

  /// Under the lock: one slot just freed up; pass it to the first live waiter.
  fn free_slot_locked(&self, st: &mut State<T>) {
    if st.closed {
      return;
    }
    while let Some(w) = st.waiters.pop_front() {
      st.creating += 1;
      if w.tx.send(Grant::Slot).is_ok() {
        return;
      }
      st.creating -= 1;
    }
  }

  /// Under the lock: count and return how many creates bring idle up to `target` within `max`.
  fn reserve_refill(&self, st: &mut State<T>, target: usize) -> usize {
    let want = target.saturating_sub(st.idle.len() + st.refilling);
    let n = want.min(self.opts.max.saturating_sub(st.total()));
    st.creating += n;
    st.refilling += n;
    n
  }

  fn refill_in_background(self: &Arc<Self>) {
    let n = {
      let mut st = self.lock();
      if st.closed {
        return;
      }
      self.reserve_refill(&mut st, self.opts.min)
    };
    for _ in 0..n {
      let pool = self.clone();
      tokio::spawn(async move {
        let res = (pool.hooks.create)().await;
        let mut st = pool.lock();
        st.creating -= 1;
        st.refilling -= 1;
        match res {
          Ok(item) => pool.settle_locked(&mut st, item),
          Err(e) => {
            warn!(error = %e, "refilling the sandbox pool failed");
            pool.free_slot_locked(&mut st);
          }
        }
        drop(st);
        pool.settled.notify_waiters();
      });
    }
  }

  fn ensure_reaper(self: &Arc<Self>) {
    let Some(ttl) = self.opts.idle_timeout else { return };
    if self.reaper_started.swap(true, Ordering::AcqRel) {
      return;
    }
    let period = (ttl / 2).min(Duration::from_secs(1)).max(Duration::from_millis(10));
    let weak: Weak<Self> = Arc::downgrade(self);
    tokio::spawn(async move {
      let mut tick = tokio::time::interval(period);
      tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
      loop {
        tick.tick().await;
        match weak.upgrade() {
          Some(pool) if !pool.is_closed() => pool.reap(ttl).await,
          _ => break,
        }
      }
    });
  }

  /// Destroy items idle for at least `ttl`, oldest first, keeping `min`.
  async fn reap(&self, ttl: Duration) {
    let expired: Vec<Arc<T>> = {
      let mut st = self.lock();
      let spare = st.idle.len().saturating_sub(self.opts.min);
      let n = st.idle.iter().take(spare).take_while(|i| i.since.elapsed() >= ttl).count();
      st.draining += n;
      st.idle.drain(..n).map(|i| i.item).collect()
    };
    if expired.is_empty() {
      return;
    }
    let n = expired.len();
    debug!(count = n, "destroying idle pool sandboxes");
    for (id, e) in self.destroy_all(expired).await {
      warn!(sandbox = %id, error = %e, "destroying an idle pool sandbox failed");
    }
    let mut st = self.lock();
    st.draining -= n;
    (0..n).for_each(|_| self.free_slot_locked(&mut st));
    drop(st);
    self.settled.notify_waiters();
  }

  /// Return a grant its acquirer will not use (it timed out or was dropped at the last moment).
  fn recycle(&self, grant: Grant<T>) {
    let mut st = self.lock();
    match grant {
      // closed: `destroy` took the item from `in_use` and destroys it
      Grant::Item(_) if st.closed => {}
      Grant::Item(item) => {
        st.in_use.remove(&(self.hooks.id)(&item));
        self.settle_locked(&mut st, item);
      }
      Grant::Slot => {
        st.creating -= 1;
        self.free_slot_locked(&mut st);
      }
    }
    drop(st);
    self.settled.notify_waiters();
  }
}

/// A queued acquirer. Grants are sent under the lock and `withdraw` leaves the queue under the
/// lock, so a grant is either never sent to it or is recovered by it, never lost.
struct WaitGuard<'a, T: Send + Sync + 'static> {
  pool: &'a Arc<Pool<T>>,
  id: u64,
  rx: oneshot::Receiver<Grant<T>>,
  done: bool,
}

impl<T: Send + Sync + 'static> WaitGuard<'_, T> {
  /// `Ok(None)`: left the queue with nothing. `Ok(Some)`: a grant raced in. `Err`: pool closed.
  fn withdraw(&mut self) -> Result<Option<Grant<T>>> {
    self.done = true;
    let mut st = self.pool.lock();
    if let Some(pos) = st.waiters.iter().position(|w| w.id == self.id) {
      st.waiters.remove(pos);
      return Ok(None);
    }
    drop(st);
    self.rx.try_recv().map(Some).map_err(|_| closed_error())
  }
}

impl<T: Send + Sync + 'static> Drop for WaitGuard<'_, T> {
  fn drop(&mut self) {
    if !self.done {
      if let Ok(Some(grant)) = self.withdraw() {
        self.pool.recycle(grant);
      }
    }
  }
}

/// Gives back a reserved create slot if the acquire future is dropped while creating.
struct SlotGuard<'a, T: Send + Sync + 'static> {
  pool: &'a Arc<Pool<T>>,
  armed: bool,
}

impl<T: Send + Sync + 'static> Drop for SlotGuard<'_, T> {
  fn drop(&mut self) {
    if self.armed {
      self.pool.recycle(Grant::Slot);
    }
  }
}

// ------------------------------------------------------------------ options and their defaults

/// Most items one pool may hold (a guard against a typo starting thousands of sandboxes).
pub const POOL_MAX_LIMIT: usize = 1000;
/// The idle timeout of spare items when neither the option nor the environment gives one (seed
/// 003's CONTAINER_IDLE_TIMEOUT_MINUTES default, 5 minutes).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// `createPool` defaults from seed 003's environment variables, read when a manager is
/// constructed: `MIN_POOL_SIZE` (min), `MAX_POOL_SIZE` (max), `POOL_SIZE` ("initial pool size":
/// created by `createPool`), `CONTAINER_IDLE_TIMEOUT_MINUTES` (spare sandboxes' idle timeout; 0:
/// never). `None`: not set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolDefaults {
  pub min: Option<usize>,
  pub max: Option<usize>,
  pub initial: Option<usize>,
  /// `Some(None)`: never
  pub idle_timeout: Option<Option<Duration>>,
}

impl PoolDefaults {
  /// Bad values (and MIN_POOL_SIZE or POOL_SIZE above MAX_POOL_SIZE) are INVALID_CONFIG naming
  /// the variables.
  pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<PoolDefaults> {
    let var = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let count = |name: &str, least: usize| -> Result<Option<usize>> {
      let Some(raw) = var(name) else { return Ok(None) };
      match raw.parse::<usize>() {
        Ok(n) if (least..=POOL_MAX_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(SandboxError::invalid_config(format!(
          "environment variable {name}={raw:?} is invalid: it must be a whole number from {least} to {POOL_MAX_LIMIT} (sandboxes in a pool); fix or unset it"
        ))),
      }
    };
    let d = PoolDefaults {
      min: count("MIN_POOL_SIZE", 0)?,
      max: count("MAX_POOL_SIZE", 1)?,
      initial: count("POOL_SIZE", 0)?,
      idle_timeout: match var("CONTAINER_IDLE_TIMEOUT_MINUTES") {
        None => None,
        Some(raw) => {
          let bad = || {
            SandboxError::invalid_config(format!(
              "environment variable CONTAINER_IDLE_TIMEOUT_MINUTES={raw:?} is invalid: it must be a number of minutes from 0 (never) to {} (365 days), fractions allowed; fix or unset it",
              crate::core::config::MAX_SECONDS / 60.0
            ))
          };
          let m: f64 = raw.parse().map_err(|_| bad())?;
          if m == 0.0 {
            Some(None)
          } else if m.is_finite() && m > 0.0 && m * 60.0 <= crate::core::config::MAX_SECONDS {
            Some(Some(Duration::from_secs_f64(m * 60.0)))
          } else {
            return Err(bad());
          }
        }
      },
    };
    if let (Some(max), Some(min)) = (d.max, d.min) {
      if min > max {
        return Err(SandboxError::invalid_config(format!(
          "environment variables MIN_POOL_SIZE={min} and MAX_POOL_SIZE={max} contradict each other: the minimum must not exceed the maximum"
        )));
      }
    }
    if let (Some(max), Some(initial)) = (d.max, d.initial) {
      if initial > max {
        return Err(SandboxError::invalid_config(format!(
          "environment variables POOL_SIZE={initial} and MAX_POOL_SIZE={max} contradict each other: the initial size must not exceed the maximum"
        )));
      }
    }
    Ok(d)
  }
}

/// `createPool`'s options as given (JS numbers).
#[derive(Debug, Clone, Default)]
pub struct PoolRequest {
  /// seed 000's `new SandboxPool({ size })`: the default of both `min` and `max`
  pub size: Option<f64>,
  pub min: Option<f64>,
  pub max: Option<f64>,
  pub initial: Option<f64>,
  pub idle_timeout_seconds: Option<f64>,
  pub acquire_timeout_seconds: Option<f64>,
}

/// The options of a new pool: each option as given, else its environment default (`d`), else the
/// built-in one (min 1, initial = min, max = max(min, initial, 4), idle timeout 300 s, acquire
/// timeout 30 s). A default from the environment yields to an option given explicitly: it is
/// lowered to an explicit `max` (MIN_POOL_SIZE, POOL_SIZE) or raised to an explicit `min` and
/// `initial` (MAX_POOL_SIZE), so a process-wide variable never breaks a call that states its own
/// bounds. Options that contradict each other are INVALID_ARGUMENT.
pub fn options(req: &PoolRequest, d: &PoolDefaults, reset_timeout: Duration, destroy_timeout: Duration) -> Result<PoolOptions> {
  let count = |what: &str, v: f64| -> Result<usize> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= POOL_MAX_LIMIT as f64 {
      Ok(v as usize)
    } else {
      Err(SandboxError::invalid_argument(format!("pool {what} must be a whole number from 0 to {POOL_MAX_LIMIT}, got {v}")))
    }
  };
  let size = req.size.map(|m| count("size", m)).transpose()?;
  let given_min = req.min.map(|m| count("min", m)).transpose()?.or(size);
  let given_max = req.max.map(|m| count("max", m)).transpose()?.or(size);
  let given_initial = req.initial.map(|m| count("initial", m)).transpose()?;
  let cap = |v: usize| given_max.map_or(v, |m| v.min(m));
  let min = given_min.or(d.min.map(cap)).unwrap_or(1);
  let initial = given_initial.or(d.initial.map(cap)).unwrap_or(min);
  let max = match (given_max, d.max) {
    (Some(m), _) => m,
    (None, Some(m)) => m.max(given_min.unwrap_or(0)).max(given_initial.unwrap_or(0)),
    (None, None) => min.max(initial).max(4),
  };
  Ok(PoolOptions {
    min,
    max,
    initial,
    idle_timeout: match (req.idle_timeout_seconds, d.idle_timeout) {
      (Some(0.0), _) => None,
      (Some(t), _) => Some(crate::core::config::seconds("pool idleTimeoutSeconds", t, true)?),
      (None, Some(env)) => env,
      (None, None) => Some(DEFAULT_IDLE_TIMEOUT),
    },
    acquire_timeout: req
      .acquire_timeout_seconds
      .map(|t| crate::core::config::seconds("pool acquireTimeoutSeconds", t, true))
      .transpose()?
      .unwrap_or(DEFAULT_ACQUIRE_TIMEOUT),
    reset_timeout,
    destroy_timeout,
  })
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::Ordering::SeqCst;
  use std::sync::atomic::{AtomicU64, AtomicUsize};

  struct Fake {
    id: String,
    resets: AtomicUsize,
  }

  #[derive(Default)]
  struct Ctl {
    seq: AtomicUsize,
    created: AtomicUsize,
    destroyed: AtomicUsize,
    calls: AtomicUsize,
    fail_create: AtomicBool,
    /// fail every second create (calls 1, 3, ...)
    fail_odd_creates: AtomicBool,
    fail_reset: AtomicBool,
    hang_reset: AtomicBool,
    hang_destroy: AtomicBool,
    create_delay_ms: AtomicU64,
  }

  fn pool(ctl: &Arc<Ctl>, min: usize, max: usize, idle_ms: Option<u64>) -> Arc<Pool<Fake>> {
    pool_initial(ctl, min, max, 0, idle_ms)
  }

  fn pool_initial(ctl: &Arc<Ctl>, min: usize, max: usize, initial: usize, idle_ms: Option<u64>) -> Arc<Pool<Fake>> {
    let (c1, c2, c3) = (ctl.clone(), ctl.clone(), ctl.clone());
    let hooks = PoolHooks {
      create: Arc::new(move || -> BoxFut<Result<Arc<Fake>>> {
        let c = c1.clone();
        Box::pin(async move {
          let odd = c.calls.fetch_add(1, SeqCst) % 2 == 1;
          // read at the start: tests flip it mid-create
          let fail = c.fail_create.load(SeqCst) || (odd && c.fail_odd_creates.load(SeqCst));
          tokio::time::sleep(Duration::from_millis(c.create_delay_ms.load(SeqCst))).await;
          if fail {
            return Err(SandboxError::provider("create failed"));
          }
          c.created.fetch_add(1, SeqCst);
          let id = format!("fake-{}", c.seq.fetch_add(1, SeqCst));
          Ok(Arc::new(Fake { id, resets: AtomicUsize::new(0) }))
        })
      }),
      reset: Arc::new(move |f: Arc<Fake>| -> BoxFut<Result<()>> {
        let c = c2.clone();
        Box::pin(async move {
          f.resets.fetch_add(1, SeqCst);
          if c.hang_reset.load(SeqCst) {
            std::future::pending::<()>().await;
          }
          if c.fail_reset.load(SeqCst) {
            Err(SandboxError::provider("reset failed"))
          } else {
            Ok(())
          }
        })
      }),
      destroy: Arc::new(move |_f: Arc<Fake>| -> BoxFut<Result<()>> {
        let c = c3.clone();
        Box::pin(async move {
          if c.hang_destroy.load(SeqCst) {
            std::future::pending::<()>().await;
          }
          c.destroyed.fetch_add(1, SeqCst);
          Ok(())
        })
      }),
      id: Arc::new(|f: &Fake| f.id.clone()),
    };
    let idle_timeout = idle_ms.map(Duration::from_millis);
    let (reset_timeout, destroy_timeout) = (Duration::from_millis(300), Duration::from_millis(300));
    Pool::new(PoolOptions { min, max, initial, idle_timeout, acquire_timeout: Duration::from_secs(5), reset_timeout, destroy_timeout }, hooks).unwrap()
  }

  fn ctl() -> Arc<Ctl> {
    Arc::new(Ctl::default())
  }

  async fn eventually(cond: impl Fn() -> bool) -> bool {
    for _ in 0..300 {
      if cond() {
        return true;
      }
      tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
  }

  async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
  }

  #[test]
  fn new_validates_min_and_max() {
    let c = ctl();
    let hooks = || pool(&c, 0, 1, None).hooks.clone();
    let opts = |min, max| PoolOptions { min, max, initial: 0, idle_timeout: None, acquire_timeout: Duration::ZERO, reset_timeout: Duration::ZERO, destroy_timeout: Duration::ZERO };
    let e = Pool::new(opts(0, 0), hooks()).err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    let e = Pool::new(opts(3, 2), hooks()).err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("min (3)") && e.message.contains("max (2)"), "{}", e.message);
    assert!(Pool::new(opts(2, 2), hooks()).is_ok());
  }

  #[test]
  fn futures_are_send() {
    fn send<F: Send>(_: &F) {}
    let p = pool(&ctl(), 0, 1, None);
    send(&p.fill());
    send(&p.acquire(None));
    send(&p.destroy());
  }

  #[tokio::test]
  async fn fill_creates_min_and_acquire_reuses_idle_then_refills() {
    let c = ctl();
    let p = pool(&c, 2, 4, None);
    p.fill().await.unwrap();
    assert_eq!(c.created.load(SeqCst), 2);
    assert_eq!(p.stats(), PoolStats { idle: 2, in_use: 0, creating: 0, waiting: 0, min: 2, max: 4 });
    let a = p.acquire(None).await.unwrap();
    assert_eq!(a.id, "fake-1", "LIFO: the most recently idled item");
    assert_eq!(c.created.load(SeqCst), 2, "acquire took an idle item instead of creating");
    assert!(eventually(|| p.stats().idle == 2).await, "background refill back to min");
    assert_eq!(c.created.load(SeqCst), 3);
    assert_eq!(p.stats().in_use, 1);
  }

  #[tokio::test]
  async fn acquire_creates_up_to_max_then_waits_for_a_release() {
    let c = ctl();
    let p = pool(&c, 0, 2, None);
    let a = p.acquire(None).await.unwrap();
    let _b = p.acquire(None).await.unwrap();
    assert_eq!(c.created.load(SeqCst), 2);
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.acquire(None).await });
    settle().await;
    assert_eq!(p.stats().waiting, 1);
    assert!(!waiter.is_finished());
    p.release(a.clone()).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&got, &a), "the released item went to the waiter");
    assert_eq!(a.resets.load(SeqCst), 1);
    assert_eq!(c.created.load(SeqCst), 2);
    assert_eq!((p.stats().in_use, p.stats().waiting), (2, 0));
  }

  #[tokio::test]
  async fn exhaustion_times_out_with_pool_exhausted() {
    let c = ctl();
    let p = pool(&c, 0, 1, None);
    let _a = p.acquire(None).await.unwrap();
    let start = Instant::now();
    let e = p.acquire(Some(Duration::from_millis(100))).await.err().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(e.code, ErrorCode::PoolExhausted);
    assert!(e.message.contains("max of 1") && e.message.contains("100 ms"), "{}", e.message);
    assert_eq!(p.stats().waiting, 0);
    // a dropped acquire leaves the queue too
    let _ = tokio::time::timeout(Duration::from_millis(20), p.acquire(None)).await;
    assert_eq!(p.stats().waiting, 0);
  }

  #[tokio::test]
  async fn dropped_acquire_gives_back_its_create_slot() {
    let c = ctl();
    c.create_delay_ms.store(200, SeqCst);
    let p = pool(&c, 0, 1, None);
    assert!(tokio::time::timeout(Duration::from_millis(20), p.acquire(None)).await.is_err());
    assert_eq!(p.stats().creating, 0);
    c.create_delay_ms.store(0, SeqCst);
    p.acquire(Some(Duration::from_millis(100))).await.unwrap();
  }

  #[tokio::test]
  async fn release_rejects_foreign_items_and_double_release() {
    let c = ctl();
    let p = pool(&c, 0, 2, None);
    let foreign = Arc::new(Fake { id: "other".into(), resets: AtomicUsize::new(0) });
    let e = p.release(foreign).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("not acquired from this pool"), "{}", e.message);
    let a = p.acquire(None).await.unwrap();
    p.release(a.clone()).await.unwrap();
    let e = p.release(a.clone()).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("already released"), "{}", e.message);
    assert_eq!(a.resets.load(SeqCst), 1);
  }

  #[tokio::test]
  async fn reset_failure_destroys_the_item_and_frees_its_slot() {
    let c = ctl();
    let p = pool(&c, 0, 1, None);
    let a = p.acquire(None).await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.acquire(None).await });
    settle().await;
    c.fail_reset.store(true, SeqCst);
    p.release(a.clone()).await.unwrap();
    assert_eq!(c.destroyed.load(SeqCst), 1);
    let b = tokio::time::timeout(Duration::from_secs(3), waiter).await.unwrap().unwrap().unwrap();
    assert_ne!(b.id, a.id, "the waiter got a fresh item");
    assert_eq!(c.created.load(SeqCst), 2);
    assert_eq!(p.stats(), PoolStats { idle: 0, in_use: 1, creating: 0, waiting: 0, min: 0, max: 1 });
  }

  #[tokio::test]
  async fn idle_timeout_shrinks_to_min() {
    let c = ctl();
    let p = pool(&c, 1, 3, Some(100));
    let items = vec![p.acquire(None).await.unwrap(), p.acquire(None).await.unwrap(), p.acquire(None).await.unwrap()];
    for item in items {
      p.release(item).await.unwrap();
    }
    assert_eq!(p.stats().idle, 3);
    assert!(eventually(|| p.stats().idle == 1).await, "idle items expire down to min");
    assert_eq!(c.destroyed.load(SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((p.stats().idle, c.destroyed.load(SeqCst)), (1, 2), "never below min");
  }

  #[tokio::test]
  async fn initial_size_is_created_first_then_shrinks_to_min() {
    let c = ctl();
    let p = pool_initial(&c, 1, 4, 3, Some(100));
    p.fill().await.unwrap();
    assert_eq!((c.created.load(SeqCst), p.stats().idle), (3, 3), "createPool starts the initial size");
    assert!(eventually(|| p.stats().idle == 1).await, "spares above min expire");
    assert_eq!(c.destroyed.load(SeqCst), 2);
    // an initial size below min is min
    let c = ctl();
    let p = pool_initial(&c, 2, 4, 1, None);
    p.fill().await.unwrap();
    assert_eq!(c.created.load(SeqCst), 2);
    let hooks = pool(&c, 0, 1, None).hooks.clone();
    let opts = PoolOptions { min: 0, max: 2, initial: 3, idle_timeout: None, acquire_timeout: Duration::ZERO, reset_timeout: Duration::ZERO, destroy_timeout: Duration::ZERO };
    let e = Pool::new(opts, hooks).err().unwrap();
    assert!(e.message.contains("initial (3)") && e.message.contains("max (2)"), "{}", e.message);
  }

  fn env_of(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    let vars = vars.to_vec();
    move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
  }

  fn opts_of(req: PoolRequest, env: &[(&'static str, &'static str)]) -> Result<PoolOptions> {
    let d = PoolDefaults::from_env(&env_of(env))?;
    options(&req, &d, Duration::from_secs(1), Duration::from_secs(2))
  }

  #[test]
  fn options_defaults_and_seed_003_variables() {
    let o = opts_of(PoolRequest::default(), &[]).unwrap();
    assert_eq!((o.min, o.max, o.initial, o.idle_timeout, o.acquire_timeout), (1, 4, 1, Some(DEFAULT_IDLE_TIMEOUT), DEFAULT_ACQUIRE_TIMEOUT));
    let seed = [("POOL_SIZE", "10"), ("MIN_POOL_SIZE", "3"), ("MAX_POOL_SIZE", "80"), ("CONTAINER_IDLE_TIMEOUT_MINUTES", "5")];
    let o = opts_of(PoolRequest::default(), &seed).unwrap();
    assert_eq!((o.min, o.max, o.initial, o.idle_timeout), (3, 80, 10, Some(Duration::from_secs(300))));
    // options win; an environment default yields to an explicit bound
    let req = PoolRequest { min: Some(0.0), max: Some(5.0), idle_timeout_seconds: Some(0.0), ..Default::default() };
    let o = opts_of(req, &seed).unwrap();
    assert_eq!((o.min, o.max, o.initial, o.idle_timeout), (0, 5, 5, None));
    let o = opts_of(PoolRequest { min: Some(90.0), ..Default::default() }, &seed).unwrap();
    assert_eq!((o.min, o.max), (90, 90));
    // POOL_SIZE alone raises the default max
    let o = opts_of(PoolRequest::default(), &[("POOL_SIZE", "6")]).unwrap();
    assert_eq!((o.min, o.max, o.initial), (1, 6, 6));
    let o = opts_of(PoolRequest::default(), &[("CONTAINER_IDLE_TIMEOUT_MINUTES", "0")]).unwrap();
    assert_eq!(o.idle_timeout, None);
    let o = opts_of(PoolRequest::default(), &[("CONTAINER_IDLE_TIMEOUT_MINUTES", "0.5")]).unwrap();
    assert_eq!(o.idle_timeout, Some(Duration::from_secs(30)));
    // seed 000's `size`: min and max, each unless given; it wins over the environment too
    let o = opts_of(PoolRequest { size: Some(5.0), ..Default::default() }, &seed).unwrap();
    assert_eq!((o.min, o.max, o.initial), (5, 5, 5));
    let o = opts_of(PoolRequest { size: Some(5.0), min: Some(2.0), ..Default::default() }, &[]).unwrap();
    assert_eq!((o.min, o.max, o.initial), (2, 5, 2));
    let e = opts_of(PoolRequest { size: Some(-1.0), ..Default::default() }, &[]).unwrap_err();
    assert!(e.message.contains("pool size"), "{}", e.message);
    // explicit options that contradict each other are the caller's to fix
    let e = opts_of(PoolRequest { min: Some(1.5), ..Default::default() }, &[]).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
  }

  #[test]
  fn bad_pool_variables_name_themselves() {
    for (env, needle) in [
      (vec![("POOL_SIZE", "ten")], "POOL_SIZE"),
      (vec![("MIN_POOL_SIZE", "-1")], "MIN_POOL_SIZE"),
      (vec![("MAX_POOL_SIZE", "0")], "MAX_POOL_SIZE"),
      (vec![("MAX_POOL_SIZE", "5000")], "MAX_POOL_SIZE"),
      (vec![("MIN_POOL_SIZE", "5"), ("MAX_POOL_SIZE", "3")], "MIN_POOL_SIZE=5 and MAX_POOL_SIZE=3"),
      (vec![("POOL_SIZE", "10"), ("MAX_POOL_SIZE", "3")], "POOL_SIZE=10 and MAX_POOL_SIZE=3"),
      (vec![("CONTAINER_IDLE_TIMEOUT_MINUTES", "soon")], "CONTAINER_IDLE_TIMEOUT_MINUTES"),
      (vec![("CONTAINER_IDLE_TIMEOUT_MINUTES", "-5")], "CONTAINER_IDLE_TIMEOUT_MINUTES"),
    ] {
      let e = PoolDefaults::from_env(&env_of(&env)).unwrap_err();
      assert_eq!(e.code, ErrorCode::InvalidConfig, "{env:?}");
      assert!(e.message.contains(needle), "{needle} not in {}", e.message);
    }
  }

  #[tokio::test]
  async fn destroy_fails_waiters_and_destroys_everything() {
    let c = ctl();
    let p = pool(&c, 1, 2, None);
    p.fill().await.unwrap();
    let a = p.acquire(None).await.unwrap();
    let _b = p.acquire(None).await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.acquire(None).await });
    settle().await;
    assert_eq!(p.stats().waiting, 1);
    p.destroy().await.unwrap();
    assert_eq!(waiter.await.unwrap().err().unwrap().code, ErrorCode::PoolClosed);
    assert_eq!(c.destroyed.load(SeqCst), c.created.load(SeqCst));
    assert_eq!(c.created.load(SeqCst), 2);
    assert!(p.is_closed());
    assert_eq!(p.acquire(None).await.err().unwrap().code, ErrorCode::PoolClosed);
    assert_eq!(p.fill().await.err().unwrap().code, ErrorCode::PoolClosed);
    p.release(a).await.unwrap(); // no-op after close
    p.destroy().await.unwrap();
    assert_eq!(c.destroyed.load(SeqCst), 2);
    assert_eq!(p.stats(), PoolStats { idle: 0, in_use: 0, creating: 0, waiting: 0, min: 1, max: 2 });
  }

  #[tokio::test]
  async fn destroy_waits_for_in_flight_creates() {
    let c = ctl();
    c.create_delay_ms.store(100, SeqCst);
    let p = pool(&c, 0, 1, None);
    let p2 = p.clone();
    let acquirer = tokio::spawn(async move { p2.acquire(None).await });
    settle().await;
    assert_eq!(p.stats().creating, 1);
    p.destroy().await.unwrap();
    assert_eq!(acquirer.await.unwrap().err().unwrap().code, ErrorCode::PoolClosed);
    assert_eq!((c.created.load(SeqCst), c.destroyed.load(SeqCst)), (1, 1));
  }

  #[tokio::test]
  async fn create_failure_propagates_and_frees_the_slot() {
    let c = ctl();
    c.create_delay_ms.store(100, SeqCst);
    c.fail_create.store(true, SeqCst);
    let p = pool(&c, 0, 1, None);
    let p2 = p.clone();
    let first = tokio::spawn(async move { p2.acquire(None).await });
    settle().await;
    c.fail_create.store(false, SeqCst);
    let p3 = p.clone();
    let second = tokio::spawn(async move { p3.acquire(None).await });
    settle().await;
    let s = p.stats();
    assert_eq!((s.creating, s.waiting), (1, 1), "an in-flight create holds a slot toward max");
    assert_eq!(first.await.unwrap().err().unwrap().code, ErrorCode::ProviderError);
    let b = tokio::time::timeout(Duration::from_secs(3), second).await.unwrap().unwrap().unwrap();
    assert_eq!(b.id, "fake-0");
    assert_eq!(c.created.load(SeqCst), 1);
    assert_eq!(p.stats(), PoolStats { idle: 0, in_use: 1, creating: 0, waiting: 0, min: 0, max: 1 });
  }

  #[tokio::test]
  async fn fill_failure_destroys_what_was_made() {
    let c = ctl();
    let p = pool(&c, 2, 2, None);
    c.fail_odd_creates.store(true, SeqCst);
    let e = p.fill().await.err().unwrap();
    assert_eq!(e.code, ErrorCode::ProviderError);
    assert!(e.message.contains("min 2") && e.message.contains("1 of 2"), "{}", e.message);
    assert_eq!((c.created.load(SeqCst), c.destroyed.load(SeqCst)), (1, 1));
    assert_eq!(p.stats(), PoolStats { idle: 0, in_use: 0, creating: 0, waiting: 0, min: 2, max: 2 });
  }

  #[tokio::test]
  async fn a_reset_that_hangs_counts_as_failed() {
    let c = ctl();
    let p = pool(&c, 0, 1, None);
    let a = p.acquire(None).await.unwrap();
    c.hang_reset.store(true, SeqCst);
    let start = Instant::now();
    p.release(a.clone()).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "release is bounded: {:?}", start.elapsed());
    assert_eq!(c.destroyed.load(SeqCst), 1, "the stuck sandbox was destroyed");
    c.hang_reset.store(false, SeqCst);
    let b = p.acquire(Some(Duration::from_secs(2))).await.unwrap();
    assert_ne!(b.id, a.id, "and replaced");
  }

  #[tokio::test]
  async fn a_destroy_that_hangs_is_reported_not_awaited_forever() {
    let c = ctl();
    let p = pool(&c, 2, 2, None);
    p.fill().await.unwrap();
    let _a = p.acquire(None).await.unwrap();
    c.hang_destroy.store(true, SeqCst);
    let start = Instant::now();
    let e = p.destroy().await.expect_err("stuck destroys are failures");
    assert!(start.elapsed() < Duration::from_secs(2), "destroy is bounded: {:?}", start.elapsed());
    assert_eq!(e.code, ErrorCode::ProviderError);
    assert!(e.message.contains("2 sandbox(es)") && e.message.contains("did not finish within 300 ms"), "{}", e.message);
    assert!(e.message.contains("fake-0") && e.message.contains("fake-1"), "names the sandboxes: {}", e.message);
  }

  #[tokio::test]
  async fn destroy_stops_waiting_for_slow_creates_and_destroys_them_on_arrival() {
    let c = ctl();
    c.create_delay_ms.store(1000, SeqCst);
    let p = pool(&c, 0, 1, None);
    let p2 = p.clone();
    let acquirer = tokio::spawn(async move { p2.acquire(None).await });
    settle().await;
    let start = Instant::now();
    p.destroy().await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(900), "did not wait for the create: {:?}", start.elapsed());
    assert_eq!(acquirer.await.unwrap().err().unwrap().code, ErrorCode::PoolClosed);
    assert!(eventually(|| c.destroyed.load(SeqCst) == 1).await, "the late sandbox was destroyed when it arrived");
    assert_eq!(c.created.load(SeqCst), 1);
  }

  #[tokio::test]
  async fn discard_forgets_items_destroyed_behind_the_pools_back() {
    let c = ctl();
    let p = pool(&c, 1, 2, None);
    p.fill().await.unwrap();
    let idle_id = "fake-0";
    assert!(p.contains(idle_id));
    p.discard(idle_id);
    assert!(!p.contains(idle_id));
    assert!(eventually(|| p.stats().idle == 1).await, "refilled to min");
    assert_eq!(c.created.load(SeqCst), 2);

    let a = p.acquire(None).await.unwrap();
    let b = p.acquire(None).await.unwrap();
    p.discard(&a.id);
    assert_eq!(p.stats().in_use, 1, "its slot is free again");
    p.release(a.clone()).await.unwrap(); // a no-op: no reset of a destroyed sandbox
    assert_eq!(a.resets.load(SeqCst), 0);
    assert!(p.release(a.clone()).await.is_err(), "only once");
    p.discard("unknown");
    p.release(b).await.unwrap();
    p.destroy().await.unwrap();
  }
}
