//! Against a real `redis-server` that each test starts on a free 127.0.0.1 port (install it with
//! `scripts/ensure-redis.sh`; `scripts/test.sh` does).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

pub(crate) struct Redis {
  port: u16,
  child: Option<Child>,
  dir: std::path::PathBuf,
}

impl Redis {
  pub(crate) fn start() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("agentic-sandbox-redis-{port}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = Redis { port, child: None, dir };
    r.spawn();
    r
  }

  pub(crate) fn spawn(&mut self) {
    let child = Command::new("redis-server")
      .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
      .current_dir(&self.dir)
      .stdout(Stdio::null())
      .stderr(Stdio::null())
      .spawn()
      .expect("redis-server is not installed: run scripts/ensure-redis.sh");
    self.child = Some(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
      assert!(std::time::Instant::now() < deadline, "redis-server did not listen on {}", self.port);
      std::thread::sleep(Duration::from_millis(20));
    }
  }

  pub(crate) fn stop(&mut self) {
    if let Some(mut c) = self.child.take() {
      let _ = c.kill();
      let _ = c.wait();
    }
  }

  pub(crate) fn url(&self) -> String {
    format!("redis://127.0.0.1:{}/", self.port)
  }
}

impl Drop for Redis {
  fn drop(&mut self) {
    self.stop();
    let _ = std::fs::remove_dir_all(&self.dir);
  }
}

fn opts(redis: &Redis, worker: &str, ttl_ms: u64) -> ClusterOptions {
  let mut o = ClusterOptions::new(redis.url(), worker, format!("http://127.0.0.1:1/{worker}"));
  o.ttl = Duration::from_millis(ttl_ms);
  o.call_timeout = Duration::from_secs(2);
  o
}

#[test]
fn redis_url_from_the_environment() {
  let env = |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
  assert_eq!(redis_url_from_env(&env(&[])).unwrap(), None);
  assert_eq!(redis_url_from_env(&env(&[("REDIS_HOST", "redis")])).unwrap().as_deref(), Some("redis://redis:6379/"));
  assert_eq!(redis_url_from_env(&env(&[("REDIS_HOST", "redis"), ("REDIS_PORT", "7000")])).unwrap().as_deref(), Some("redis://redis:7000/"));
  let both = [("REDIS_URL", "redis://a:1/2"), ("REDIS_HOST", "b")];
  assert_eq!(redis_url_from_env(&env(Box::leak(Box::new(both)))).unwrap().as_deref(), Some("redis://a:1/2"));
  let e = redis_url_from_env(&env(&[("REDIS_HOST", "redis"), ("REDIS_PORT", "http")])).unwrap_err();
  assert_eq!(e.code, ErrorCode::InvalidConfig);
  assert!(e.message.contains("REDIS_PORT"), "{}", e.message);
  assert_eq!(shown("redis://user:secret@host:6379/"), "redis://***@host:6379/");
}

#[test]
fn placement_prefers_the_least_loaded() {
  let w = |id: &str, sandboxes, executions| WorkerInfo { id: id.into(), url: String::new(), sandboxes, executions, heartbeat_at: 0 };
  assert_eq!(pick(vec![]), None);
  assert_eq!(pick(vec![w("b", 2, 0), w("a", 3, 0)]).unwrap().id, "b");
  assert_eq!(pick(vec![w("b", 2, 5), w("a", 2, 1)]).unwrap().id, "a");
  assert_eq!(pick(vec![w("b", 2, 1), w("a", 2, 1)]).unwrap().id, "a");
}

#[tokio::test]
async fn workers_heartbeat_and_expire() {
  let redis = Redis::start();
  let one = Cluster::connect(opts(&redis, "w1", 400)).await.unwrap();
  let two = Cluster::connect(opts(&redis, "w2", 400)).await.unwrap();
  one.heartbeat(3, 0).await.unwrap();
  two.heartbeat(1, 0).await.unwrap();
  let ids: Vec<_> = one.workers().await.unwrap().into_iter().map(|w| (w.id, w.sandboxes)).collect();
  assert_eq!(ids, vec![("w1".to_string(), 3), ("w2".to_string(), 1)]);
  assert_eq!(one.place().await.unwrap().id, "w2");
  assert_eq!(two.place().await.unwrap().url, "http://127.0.0.1:1/w2");
  // w2 stops heartbeating: dead after its ttl
  for _ in 0..4 {
    tokio::time::sleep(Duration::from_millis(200)).await;
    one.heartbeat(3, 0).await.unwrap();
  }
  let ids: Vec<_> = one.workers().await.unwrap().into_iter().map(|w| w.id).collect();
  assert_eq!(ids, vec!["w1"]);
  assert_eq!(one.place().await.unwrap().id, "w1");
  one.leave().await.unwrap();
  assert_eq!(two.workers().await.unwrap(), vec![]);
  assert_eq!(two.place().await.unwrap_err().code, ErrorCode::ProviderUnavailable);
}

#[tokio::test]
async fn sandboxes_of_a_dead_worker_are_gone() {
  let redis = Redis::start();
  let one = Cluster::connect(opts(&redis, "w1", 300)).await.unwrap();
  let two = Cluster::connect(opts(&redis, "w2", 60_000)).await.unwrap();
  one.heartbeat(1, 0).await.unwrap();
  two.heartbeat(1, 0).await.unwrap();
  one.claim("docker-0000000000000001", "tenant-a").await.unwrap();
  two.claim("docker-0000000000000002", "tenant-a").await.unwrap();
  two.claim("docker-0000000000000003", "tenant-b").await.unwrap();
  let owner = two.owner("docker-0000000000000001").await.unwrap().unwrap();
  assert_eq!((owner.worker.id.as_str(), owner.tenant.as_str()), ("w1", "tenant-a"));
  let listed: Vec<_> = two.tenant_sandboxes("tenant-a").await.unwrap().into_iter().map(|(id, o)| (id, o.worker.id)).collect();
  assert_eq!(
    listed,
    vec![("docker-0000000000000001".to_string(), "w1".to_string()), ("docker-0000000000000002".to_string(), "w2".to_string())]
  );
  assert_eq!(two.tenant_sandboxes("tenant-b").await.unwrap().len(), 1);
  // w1 dies (no more heartbeats)
  tokio::time::sleep(Duration::from_millis(500)).await;
  assert_eq!(two.owner("docker-0000000000000001").await.unwrap(), None);
  let listed: Vec<_> = two.tenant_sandboxes("tenant-a").await.unwrap().into_iter().map(|(id, _)| id).collect();
  assert_eq!(listed, vec!["docker-0000000000000002"]);
  two.forget("docker-0000000000000002", "tenant-a").await.unwrap();
  assert_eq!(two.owner("docker-0000000000000002").await.unwrap(), None);
  assert_eq!(two.tenant_sandboxes("tenant-a").await.unwrap().len(), 0);
}

#[tokio::test]
async fn sessions_by_tenant_and_thread() {
  let redis = Redis::start();
  let c = Cluster::connect(opts(&redis, "w1", 60_000)).await.unwrap();
  assert_eq!(c.session("t", "th").await.unwrap(), None);
  c.set_session("t", "th", "docker-1").await.unwrap();
  assert_eq!(c.session("t", "th").await.unwrap().as_deref(), Some("docker-1"));
  // other tenants' threads are other sessions
  assert_eq!(c.session("t2", "th").await.unwrap(), None);
  c.set_session("t", "a:b", "docker-2").await.unwrap();
  assert_eq!(c.session("t", "a:b").await.unwrap().as_deref(), Some("docker-2"));
  c.clear_session("t", "th").await.unwrap();
  assert_eq!(c.session("t", "th").await.unwrap(), None);
}

#[tokio::test]
async fn the_first_heartbeat_registers_and_the_first_secret_wins() {
  let redis = Redis::start();
  let one = Cluster::connect(opts(&redis, "w1", 60_000)).await.unwrap();
  let two = Cluster::connect(opts(&redis, "w2", 60_000)).await.unwrap();
  assert!(one.heartbeat(0, 0).await.unwrap(), "the first beat is a registration");
  assert!(!one.heartbeat(1, 0).await.unwrap());
  assert_eq!(one.shared_secret("s1").await.unwrap(), "s1");
  assert_eq!(two.shared_secret("s2").await.unwrap(), "s1");
}

#[tokio::test]
async fn an_unreachable_or_restarted_redis() {
  let mut redis = Redis::start();
  let port = redis.port;
  redis.stop();
  // nobody listens: a clear error (within the call deadline)
  let e = Cluster::connect(opts(&redis, "w1", 60_000)).await.err().unwrap();
  assert_eq!(e.code, ErrorCode::ProviderUnavailable);
  assert!(e.message.contains(&format!("127.0.0.1:{port}")) && e.message.contains("REDIS_URL"), "{}", e.message);
  // Redis goes away under a connected cluster, then comes back on the same port
  redis.spawn();
  let c = Cluster::connect(opts(&redis, "w1", 60_000)).await.unwrap();
  c.heartbeat(0, 0).await.unwrap();
  redis.stop();
  let e = c.heartbeat(0, 0).await.unwrap_err();
  assert_eq!(e.code, ErrorCode::ProviderUnavailable);
  redis.spawn();
  // the connection manager reconnects (its first attempt may still see the old connection fail)
  let mut ok = false;
  for _ in 0..20 {
    if c.heartbeat(0, 0).await.is_ok() {
      ok = true;
      break;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
  }
  assert!(ok, "no reconnect after Redis came back");
  // the restarted Redis is empty: the heartbeat registered the worker again, and said so
  assert_eq!(c.workers().await.unwrap().len(), 1);
  redis.stop();
  redis.spawn();
  let mut fresh = None;
  for _ in 0..20 {
    if let Ok(f) = c.heartbeat(0, 0).await {
      fresh = Some(f);
      break;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
  }
  assert_eq!(fresh, Some(true), "a beat after Redis lost its data is a registration");
  let bad = ClusterOptions::new(redis.url(), "has space", "http://x");
  assert_eq!(Cluster::connect(bad).await.err().unwrap().code, ErrorCode::InvalidConfig);
}
