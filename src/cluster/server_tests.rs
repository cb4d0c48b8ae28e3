//! Two `serve` workers (the real `Server`, on 127.0.0.1:0) on one real redis-server, their
//! managers running the in-memory provider of the remote-mode tests: placement, forwarding
//! (JSON, NDJSON streams, raw files), lists, sessions, a worker that dies, Redis going away and
//! coming back, and the remote-mode client talking to either worker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::tests::Redis;
use crate::core::error::ErrorCode;
use crate::core::types::ExecOptions;
use crate::providers::remote::e2e_tests::{client_sandbox, FakeFactory, IMAGE, K1, K2};
use crate::server::options::ServerOptions;
use crate::server::Server;

struct W {
  server: Arc<Server>,
  url: String,
  /// signals the in-memory sandboxes' `sleep` processes received
  killed: Arc<Mutex<Vec<i32>>>,
}

async fn worker(redis: &Redis, id: &str) -> W {
  worker_with(redis, id, json!({})).await
}

async fn worker_with(redis: &Redis, id: &str, extra: Value) -> W {
  let base = json!({
    "readEnv": false, "port": 0, "apiKeys": [{ "key": K1, "name": "alice" }, { "key": K2, "name": "bob" }],
    "config": { "provider": "fake", "image": IMAGE },
    "redisUrl": redis.url(), "workerId": id, "heartbeatInterval": 0.2,
  });
  let opts = ServerOptions::from_json(
    Some(&crate::core::config::merge(&base, &extra)),
    &|_| None,
    &|_| Err(std::io::ErrorKind::NotFound.into()),
  )
  .unwrap();
  let server = Server::new(opts).unwrap();
  let killed = Arc::new(Mutex::new(Vec::new()));
  server.state().manager.providers().register("fake", Arc::new(FakeFactory(killed.clone()))).unwrap();
  let addr = server.listen().await.unwrap();
  W { server: Arc::new(server), url: format!("http://{addr}"), killed }
}

struct Answer {
  status: u16,
  worker: String,
  body: Value,
}

async fn call(method: &str, url: String, key: &str, body: Option<Value>) -> Answer {
  let http = reqwest::Client::builder().no_proxy().build().unwrap();
  let mut rb = http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url).bearer_auth(key);
  if let Some(b) = body {
    rb = rb.json(&b);
  }
  let r = rb.send().await.unwrap();
  let status = r.status().as_u16();
  let worker = r.headers().get("x-agentic-sandbox-worker").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
  let text = r.text().await.unwrap();
  Answer { status, worker, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// Polls `f` until it returns Some (a state the cluster reaches after heartbeats), up to 30 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
  F: FnMut() -> Fut,
  Fut: std::future::Future<Output = Option<T>>,
{
  for _ in 0..300 {
    if let Some(v) = f().await {
      return v;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
  }
  panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_sandboxes_and_sessions() {
  let mut redis = Redis::start();
  let a = worker(&redis, "wa").await;
  let b = worker(&redis, "wb").await;

  // placement: creations through A alone spread over both workers (the least loaded gets each)
  let mut ids = Vec::new();
  let mut owners = Vec::new();
  for _ in 0..4 {
    let r = call("POST", format!("{}/v1/sandboxes", a.url), K1, Some(json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    ids.push(r.body["id"].as_str().unwrap().to_string());
    owners.push(r.worker);
  }
  assert!(owners.contains(&"wa".to_string()) && owners.contains(&"wb".to_string()), "{owners:?}");
  let on_b = ids[owners.iter().position(|o| o == "wb").unwrap()].clone();
  let on_a = ids[owners.iter().position(|o| o == "wa").unwrap()].clone();
  let seed = call("POST", format!("{}/sandbox/create", b.url), K1, Some(json!({ "environment": "base" }))).await;
  assert_eq!(seed.status, 201, "{}", seed.body);

  let health = call("GET", format!("{}/health", b.url), K1, None).await;
  assert_eq!(health.body["cluster"]["worker"], "wb");
  assert_eq!(health.body["cluster"]["workers"].as_array().unwrap().len(), 2, "{}", health.body);

  // lists come from every worker, through either
  for w in [&a, &b] {
    let l = call("GET", format!("{}/v1/sandboxes", w.url), K1, None).await;
    assert_eq!(l.body["sandboxes"].as_array().unwrap().len(), 5, "{}", l.body);
    let l = call("GET", format!("{}/sandboxes", w.url), K1, None).await;
    assert_eq!(l.body["total"], 5);
    assert_eq!(call("GET", format!("{}/v1/sandboxes", w.url), K2, None).await.body["sandboxes"], json!([]));
  }

  // a sandbox of B used through A: files (raw bytes), an NDJSON process stream, the seed's execute
  let http = reqwest::Client::builder().no_proxy().build().unwrap();
  let put = http.put(format!("{}/v1/sandboxes/{on_b}/files?path=x.bin", a.url)).bearer_auth(K1).body(vec![0u8, 255, 1]).send().await.unwrap();
  assert_eq!(put.headers()["x-agentic-sandbox-worker"], "wb");
  assert_eq!(put.status(), 200);
  let got = http.get(format!("{}/v1/sandboxes/{on_b}/files?path=x.bin", a.url)).bearer_auth(K1).send().await.unwrap().bytes().await.unwrap();
  assert_eq!(got.as_ref(), &[0u8, 255, 1]);
  let stream = http.post(format!("{}/v1/sandboxes/{on_b}/processes", a.url)).bearer_auth(K1).json(&json!({ "command": "echo", "args": ["hi"] })).send().await.unwrap();
  assert_eq!(stream.headers()["content-type"], crate::providers::remote::wire::NDJSON);
  let text = stream.text().await.unwrap();
  let events: Vec<_> = text.lines().map(|l| crate::providers::remote::wire::decode(l.as_bytes()).unwrap()).collect();
  assert!(matches!(events.last(), Some(crate::providers::remote::wire::Event::Exit(e)) if e.exit_code == 0), "{text}");
  // a client that drops a forwarded stream kills its foreground process on the owner, as locally
  let mut sleeping = http.post(format!("{}/v1/sandboxes/{on_b}/processes", a.url)).bearer_auth(K1).json(&json!({ "command": "sleep" })).send().await.unwrap();
  let first = sleeping.chunk().await.unwrap().unwrap();
  assert!(String::from_utf8_lossy(&first).contains("started"), "{first:?}");
  drop(sleeping);
  eventually("the dropped stream's process killed on B", || {
    let k = b.killed.clone();
    async move { (!k.lock().unwrap().is_empty()).then_some(()) }
  })
  .await;
  assert!(a.killed.lock().unwrap().is_empty());
  let seed_id = seed.body["sandbox_id"].as_str().unwrap();
  let ex = call("POST", format!("{}/sandbox/{seed_id}/execute", a.url), K1, Some(json!({ "commands": ["echo one"] }))).await;
  assert_eq!(ex.status, 200, "{}", ex.body);
  // another tenant does not see it, through either worker
  assert_eq!(call("GET", format!("{}/v1/sandboxes/{on_b}", a.url), K2, None).await.body["error"]["code"], "SANDBOX_NOT_FOUND");
  assert_eq!(call("GET", format!("{}/v1/sandboxes/{on_b}", b.url), K2, None).await.body["error"]["code"], "SANDBOX_NOT_FOUND");
  // a forged forwarding mark is refused
  let forged = http.get(format!("{}/v1/sandboxes", a.url)).bearer_auth(K1).header("x-agentic-sandbox-forwarded", "guess").send().await.unwrap();
  assert_eq!(forged.status(), 401);

  // the remote mode, unchanged, against worker A: its sandbox may land on either worker
  let sb = client_sandbox(&a.url, K1, json!({}));
  sb.start(None).await.unwrap();
  let r = sb.execute("echo", &["remote".into()], ExecOptions::default()).await.unwrap();
  assert_eq!(r.stdout, b"remote\n");
  assert!(sb.write_file("r.txt", b"ok".to_vec()).await.success);
  assert_eq!(sb.read_file("r.txt").await.content.unwrap(), b"ok");
  sb.destroy().await.unwrap();

  // a session opened through A is the same through B
  let open = json!({ "userId": "u1", "threadId": "t1", "autoRetry": true });
  let s1 = call("POST", format!("{}/v1/sessions", a.url), K1, Some(open.clone())).await;
  assert_eq!(s1.status, 200, "{}", s1.body);
  let s2 = call("POST", format!("{}/v1/sessions", b.url), K1, Some(open.clone())).await;
  assert_eq!(s2.body["sandboxId"], s1.body["sandboxId"]);
  assert_eq!(s2.worker, s1.worker);
  let sessions = call("GET", format!("{}/v1/sessions", b.url), K1, None).await;
  assert_eq!(sessions.body["sessions"].as_array().unwrap().len(), 1, "{}", sessions.body);

  // Redis goes away: what needs it is 503 PROVIDER_UNAVAILABLE; a worker's own sandbox still works
  redis.stop();
  let r = call("POST", format!("{}/v1/sandboxes", a.url), K1, Some(json!({}))).await;
  assert_eq!((r.status, r.body["error"]["code"].as_str()), (503, Some("PROVIDER_UNAVAILABLE")), "{}", r.body);
  assert!(r.body["error"]["message"].as_str().unwrap().contains("Redis"), "{}", r.body);
  assert_eq!(call("GET", format!("{}/v1/sandboxes/{on_a}", a.url), K1, None).await.status, 200);
  let health = call("GET", format!("{}/health", a.url), K1, None).await;
  assert_eq!((health.status, &health.body["cluster"]["redis"]["reachable"]), (200, &json!(false)), "{}", health.body);
  // back (empty, on the same port): the heartbeats register both workers and their sandboxes again
  redis.spawn();
  eventually("B's sandbox reachable through A after Redis came back", || {
    let u = format!("{}/v1/sandboxes/{on_b}", a.url);
    async move { (call("GET", u, K1, None).await.status == 200).then_some(()) }
  })
  .await;
  let s3 = call("POST", format!("{}/v1/sessions", a.url), K1, Some(open.clone())).await;
  assert_eq!(s3.body["sandboxId"], s1.body["sandboxId"], "{}", s3.body);

  // the session's worker dies (its heartbeats stop): its sandboxes are gone, the session comes back elsewhere
  let (dead, live) = if s1.worker == "wa" { (&a, &b) } else { (&b, &a) };
  let dead_id = if s1.worker == "wa" { on_a.clone() } else { on_b.clone() };
  dead.server.state().worker.get().unwrap().halt();
  let gone = eventually("the dead worker's sandbox reported gone", || {
    let u = format!("{}/v1/sandboxes/{dead_id}", live.url);
    async move {
      let r = call("GET", u, K1, None).await;
      (r.status == 404).then_some(r)
    }
  })
  .await;
  assert_eq!(gone.body["error"]["code"], "SANDBOX_NOT_FOUND");
  let no_retry = call("POST", format!("{}/v1/sessions", live.url), K1, Some(json!({ "userId": "u1", "threadId": "t1" }))).await;
  assert_eq!((no_retry.status, no_retry.body["error"]["code"].as_str()), (404, Some("SANDBOX_NOT_FOUND")), "{}", no_retry.body);
  let again = call("POST", format!("{}/v1/sessions", live.url), K1, Some(open.clone())).await;
  assert_eq!(again.status, 200, "{}", again.body);
  assert_ne!(again.body["sandboxId"], s1.body["sandboxId"]);
  assert_eq!(again.worker, if s1.worker == "wa" { "wb" } else { "wa" });
  let new_creates = call("POST", format!("{}/v1/sandboxes", live.url), K1, Some(json!({}))).await;
  assert_eq!(new_creates.worker, if s1.worker == "wa" { "wb" } else { "wa" }, "only live workers get sandboxes");

  let closed = call("DELETE", format!("{}/v1/sessions/t1", dead.url), K1, None).await;
  assert_eq!(closed.body["closed"], true, "{}", closed.body);
  a.server.close().await.unwrap();
  b.server.close().await.unwrap();
  assert!(a.server.state().all_entries().is_empty() && b.server.state().all_entries().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_sandboxes_holds_across_the_cluster() {
  let redis = Redis::start();
  let a = worker_with(&redis, "qa", json!({ "maxSandboxes": 2 })).await;
  let b = worker_with(&redis, "qb", json!({ "maxSandboxes": 2 })).await;
  eventually("both workers live", || async {
    let h = call("GET", format!("{}/health", a.url), K1, None).await;
    (h.body["cluster"]["workers"].as_array().map(Vec::len) == Some(2)).then_some(())
  })
  .await;
  // one sandbox on each worker: each worker alone holds 1 of 2
  let mut owners = Vec::new();
  for _ in 0..2 {
    let r = call("POST", format!("{}/v1/sandboxes", a.url), K1, Some(json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    owners.push(r.worker);
  }
  owners.sort();
  assert_eq!(owners, ["qa", "qb"]);
  // a third, through either worker, a new session included: over the tenant's limit in the cluster
  for w in [&a, &b] {
    let r = call("POST", format!("{}/v1/sandboxes", w.url), K1, Some(json!({}))).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (429, Some("QUOTA_EXCEEDED")), "{}", r.body);
    let r = call("POST", format!("{}/sandbox/create", w.url), K1, Some(json!({ "environment": "base" }))).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let r = call("POST", format!("{}/v1/sessions", w.url), K1, Some(json!({ "userId": "u", "threadId": "q1" }))).await;
    assert_eq!(r.status, 429, "{}", r.body);
  }
  // another tenant is not affected
  assert_eq!(call("POST", format!("{}/v1/sandboxes", b.url), K2, Some(json!({}))).await.status, 201);
  a.server.close().await.unwrap();
  b.server.close().await.unwrap();
}

#[tokio::test]
async fn a_worker_does_not_start_without_its_redis() {
  let mut redis = Redis::start();
  redis.stop();
  let opts = ServerOptions::from_json(
    Some(&json!({ "readEnv": false, "port": 0, "apiKeys": [K1], "config": { "provider": "fake", "image": IMAGE }, "redisUrl": redis.url() })),
    &|_| None,
    &|_| Err(std::io::ErrorKind::NotFound.into()),
  )
  .unwrap();
  let server = Server::new(opts).unwrap();
  let e = server.listen().await.unwrap_err();
  assert_eq!(e.code, ErrorCode::ProviderUnavailable);
  assert!(e.message.contains(&redis.url()) && e.message.contains("REDIS_URL"), "{}", e.message);
  assert_eq!(server.address(), None);
}
