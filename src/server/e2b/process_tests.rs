//! `process.Process` over the server's whole router without an engine: the in-memory provider of
//! the remote-mode tests (`echo`, `fail N`, `cat`, `sleep` until a signal; every pid is 42) behind
//! an E2B sandbox made here, requests as the SDKs send them (`E2b-Sandbox-Id`, `X-Access-Token`).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::core::manager::Manager;
use crate::providers::remote::e2e_tests::{FakeFactory, IMAGE, K1};
use crate::server::error::Redactor;
use crate::server::options::ServerOptions;

const TOKEN: &str = "secret-token";

struct Env {
  state: Arc<AppState>,
  app: Router,
  id: String,
  killed: Arc<Mutex<Vec<i32>>>,
}

async fn env(extra: Value) -> Env {
  let base = json!({ "readEnv": false, "apiKeys": [{ "key": K1, "name": "alice" }] });
  let opts = ServerOptions::from_json(Some(&crate::core::config::merge(&base, &extra)), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
  let manager = Manager::with_config_file(Some(&json!({ "provider": "fake", "image": IMAGE })), None).unwrap();
  let killed = Arc::new(Mutex::new(Vec::new()));
  manager.providers().register("fake", Arc::new(FakeFactory(killed.clone()))).unwrap();
  let state = AppState::new(Arc::new(manager), opts, Redactor::default());
  let tenant = state.keys.tenants().into_iter().next().unwrap();
  let sb = state.manager.create(None).unwrap();
  sb.start(None).await.unwrap();
  let slot = tenant.sandboxes.try_acquire().unwrap();
  let entry = state.add_entry(tenant, sb, "e2b".into(), "base".into(), Duration::from_secs(600), slot);
  let id = super::super::new_id();
  let b = E2bBox {
    id: id.clone(),
    entry,
    template: "base".into(),
    metadata: Default::default(),
    env_vars: [("FROM_CREATE".to_string(), "1".to_string())].into(),
    access_token: Some(TOKEN.into()),
    paused: AtomicBool::new(false),
    network: Mutex::new(Value::Null),
    processes: Table::default(),
  };
  state.e2b.boxes.lock().unwrap().insert(id.clone(), Arc::new(b));
  let app = crate::server::router(state.clone());
  Env { state, app, id, killed }
}

impl Env {
  fn request(&self, method: &str, stream: bool, body: Vec<u8>) -> axum::http::request::Builder {
    Request::post(format!("/process.Process/{method}"))
      .header("content-type", if stream { CONNECT_JSON } else { "application/json" })
      .header("e2b-sandbox-id", &self.id)
      .header("e2b-sandbox-port", "49983")
      .header("x-access-token", TOKEN)
      .header("content-length", body.len())
  }

  async fn stream(&self, method: &str, msg: Value, headers: &[(&str, &str)]) -> axum::response::Response {
    let body = encode_envelope(0, &serde_json::to_vec(&msg).unwrap());
    let mut req = self.request(method, true, body.clone());
    for (k, v) in headers {
      req = req.header(*k, *v);
    }
    let res = self.app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], CONNECT_JSON);
    res
  }

  async fn unary(&self, method: &str, msg: Value) -> (StatusCode, Value) {
    let body = serde_json::to_vec(&msg).unwrap();
    let req = self.request(method, false, body.clone()).body(Body::from(body)).unwrap();
    let res = self.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
  }
}

/// The envelopes of a whole stream: (flags, message).
async fn frames(res: axum::response::Response) -> Vec<(u8, Value)> {
  let body = tokio::time::timeout(Duration::from_secs(10), axum::body::to_bytes(res.into_body(), 1 << 24)).await.expect("the stream ends").unwrap();
  let mut out = Vec::new();
  let mut rest = &body[..];
  while !rest.is_empty() {
    let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
    out.push((rest[0], serde_json::from_slice(&rest[5..5 + len]).unwrap()));
    rest = &rest[5 + len..];
  }
  out
}

fn start(cmd: &str, args: &[&str]) -> Value {
  json!({ "process": { "cmd": cmd, "args": args }, "stdin": false })
}

fn ok_end() -> (u8, Value) {
  (FLAG_END_STREAM, json!({}))
}

#[tokio::test]
async fn start_streams_start_output_end() {
  let e = env(json!({})).await;
  let got = frames(e.stream("Start", start("echo", &["hi"]), &[("keepalive-ping-interval", "50")]).await).await;
  assert_eq!(
    got,
    vec![
      (0, json!({"event":{"start":{"pid":42}}})),
      (0, json!({"event":{"data":{"stdout":"aGkK"}}})),
      (0, json!({"event":{"end":{"exited":true,"status":"exit status 0"}}})),
      ok_end(),
    ]
  );
  let got = frames(e.stream("Start", start("fail", &["3"]), &[]).await).await;
  assert_eq!(got[1], (0, json!({"event":{"end":{"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"}}})));
  // right after the exit, Connect answers start + the retained end
  let got = frames(e.stream("Connect", json!({"process":{"pid":42}}), &[]).await).await;
  assert_eq!(got.len(), 3);
  assert_eq!(got[1].1["event"]["end"]["exitCode"], 3);
  // but nothing runs
  assert_eq!(e.unary("List", json!({})).await, (StatusCode::OK, json!({})));
  assert_eq!(e.unary("SendSignal", json!({"process":{"pid":42},"signal":"SIGNAL_SIGKILL"})).await.1["code"], "not_found");
}

#[tokio::test]
async fn background_process_signals_stdin_list_and_connect() {
  let e = env(json!({})).await;
  let res = e.stream("Start", json!({"process":{"cmd":"sleep","envs":{"A":"b"}},"tag":"svc"}), &[]).await;
  let first = tokio::spawn(frames(res));
  tokio::time::sleep(Duration::from_millis(50)).await;
  let (status, list) = e.unary("List", json!({})).await;
  assert_eq!(status, StatusCode::OK);
  assert_eq!(list, json!({"processes":[{"config":{"cmd":"sleep","envs":{"A":"b"}},"pid":42,"tag":"svc"}]}));
  let second = tokio::spawn(frames(e.stream("Connect", json!({"process":{"tag":"svc"}}), &[]).await));
  tokio::time::sleep(Duration::from_millis(50)).await;
  assert_eq!(e.unary("SendInput", json!({"process":{"pid":42},"input":{"stdin":"eA=="}})).await, (StatusCode::OK, json!({})));
  assert_eq!(e.unary("CloseStdin", json!({"process":{"pid":42}})).await, (StatusCode::OK, json!({})));
  assert_eq!(e.unary("SendSignal", json!({"process":{"pid":42},"signal":"SIGNAL_SIGHUP"})).await.0, StatusCode::BAD_REQUEST);
  assert_eq!(e.unary("SendSignal", json!({"process":{"pid":42},"signal":"SIGNAL_SIGKILL"})).await, (StatusCode::OK, json!({})));
  let end = (0, json!({"event":{"end":{"exitCode":-1,"status":"signal: killed","error":"signal: killed"}}}));
  let got = first.await.unwrap();
  assert_eq!(got, vec![(0, json!({"event":{"start":{"pid":42}}})), end.clone(), ok_end()]);
  let got = second.await.unwrap();
  assert_eq!(got, vec![(0, json!({"event":{"start":{"pid":42}}})), end, ok_end()]);
  assert_eq!(e.killed.lock().unwrap().as_slice(), &[9]);
  assert_eq!(e.state.e2b.get(&e.id).unwrap().entry.tenant.background.used(), 0, "the permit is back");
}

#[tokio::test]
async fn stdin_reaches_the_process() {
  let e = env(json!({})).await;
  let res = e.stream("Start", json!({"process":{"cmd":"cat"},"stdin":true}), &[]).await;
  let out = tokio::spawn(frames(res));
  tokio::time::sleep(Duration::from_millis(50)).await;
  assert_eq!(e.unary("SendInput", json!({"process":{"pid":42},"input":{"stdin":"aGVsbG8="}})).await.0, StatusCode::OK);
  assert_eq!(e.unary("SendInput", json!({"process":{"pid":42},"input":{"stdin":"!!!"}})).await.0, StatusCode::BAD_REQUEST);
  assert_eq!(e.unary("CloseStdin", json!({"process":{"pid":42}})).await.0, StatusCode::OK);
  let got = out.await.unwrap();
  assert_eq!(got[1], (0, json!({"event":{"data":{"stdout":"aGVsbG8="}}})));
  assert_eq!(got.last().unwrap(), &ok_end());
}

#[tokio::test]
async fn the_deadline_kills_the_process_and_ends_the_stream() {
  let e = env(json!({})).await;
  let got = frames(e.stream("Start", start("sleep", &[]), &[("connect-timeout-ms", "300")]).await).await;
  assert_eq!(got[0], (0, json!({"event":{"start":{"pid":42}}})));
  assert_eq!(got.last().unwrap(), &(FLAG_END_STREAM, json!({"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}})));
  tokio::time::sleep(Duration::from_millis(100)).await;
  assert_eq!(e.killed.lock().unwrap().as_slice(), &[9]);
}

#[tokio::test]
async fn errors_before_the_first_event_travel_in_the_stream() {
  let e = env(json!({})).await;
  fn err(code: &'static str) -> impl Fn(Vec<(u8, Value)>) -> bool {
    move |got| got.len() == 1 && got[0].0 == FLAG_END_STREAM && got[0].1["error"]["code"] == code
  }
  let got = frames(e.stream("Connect", json!({"process":{"pid":7}}), &[]).await).await;
  assert_eq!(got, vec![(FLAG_END_STREAM, json!({"error":{"code":"not_found","message":"process with pid 7 not found"}}))]);
  assert!(err("unimplemented")(frames(e.stream("Start", json!({"process":{"cmd":"sh"},"pty":{"size":{"cols":80,"rows":24}}}), &[]).await).await));
  assert!(err("invalid_argument")(frames(e.stream("Start", json!({"process":{}}), &[]).await).await));
  assert!(err("invalid_argument")(frames(e.stream("Start", start("echo", &[]), &[("connect-timeout-ms", "soon")]).await).await));
  // the fake has no /bin/sh for the cwd check: the cwd "does not exist"
  let got = frames(e.stream("Start", json!({"process":{"cmd":"echo","cwd":"/nope"}}), &[]).await).await;
  assert_eq!(got[0].1["error"], json!({"code":"invalid_argument","message":"cwd '/nope' does not exist"}));
  assert!(err("unauthenticated")(frames(e.stream("Start", start("echo", &[]), &[("authorization", "Basic cm9vdDo=")]).await).await));
  // not one envelope
  let req = e.request("Start", true, b"{}".to_vec()).body(Body::from("{}")).unwrap();
  assert!(err("invalid_argument")(frames(e.app.clone().oneshot(req).await.unwrap()).await));
  // no token: envd's 401; wrong media type: 415
  let req = Request::post("/process.Process/List").header("e2b-sandbox-id", &e.id).header("content-type", "application/json").body(Body::from("{}")).unwrap();
  assert_eq!(e.app.clone().oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
  let mut req = e.request("List", false, b"{}".to_vec()).body(Body::from("{}")).unwrap();
  req.headers_mut().insert("content-type", "text/plain".parse().unwrap());
  assert_eq!(e.app.clone().oneshot(req).await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
  // unary errors
  let req = e.request("List", false, b"{".to_vec()).body(Body::from("{")).unwrap();
  assert_eq!(e.app.clone().oneshot(req).await.unwrap().status(), StatusCode::BAD_REQUEST);
  assert_eq!(e.unary("SendInput", json!({"process":{"pid":1},"input":{"stdin":""}})).await.1["message"], "process with pid 1 not found");
  assert_eq!(e.unary("Update", json!({"process":{"tag":"x"}})).await.1["code"], "not_found");
}

#[tokio::test]
async fn the_tenants_background_limit_counts_envd_processes() {
  let e = env(json!({ "maxBackgroundProcesses": 1 })).await;
  let first = tokio::spawn(frames(e.stream("Start", start("sleep", &[]), &[]).await));
  tokio::time::sleep(Duration::from_millis(50)).await;
  let got = frames(e.stream("Start", start("echo", &["x"]), &[]).await).await;
  assert_eq!(got[0].1["error"]["code"], "resource_exhausted");
  assert_eq!(e.unary("SendSignal", json!({"process":{"pid":42},"signal":15})).await.0, StatusCode::OK);
  assert_eq!(first.await.unwrap()[1].1["event"]["end"]["status"], "signal: terminated");
  let got = frames(e.stream("Start", start("echo", &["x"]), &[]).await).await;
  assert_eq!(got.last().unwrap(), &ok_end());
}

#[tokio::test]
async fn a_killed_sandbox_ends_its_streams() {
  let e = env(json!({})).await;
  let first = tokio::spawn(frames(e.stream("Start", start("sleep", &[]), &[]).await));
  tokio::time::sleep(Duration::from_millis(50)).await;
  let b = e.state.e2b.boxes.lock().unwrap().remove(&e.id).unwrap();
  drop(b);
  let got = first.await.unwrap();
  assert_eq!(got.last().unwrap().1["error"]["code"], "unavailable");
  assert_eq!(e.killed.lock().unwrap().as_slice(), &[9]);
  // and its envd is the edge's 502
  assert_eq!(e.app.clone().oneshot(e.request("List", false, vec![]).body(Body::empty()).unwrap()).await.unwrap().status(), StatusCode::BAD_GATEWAY);
}
