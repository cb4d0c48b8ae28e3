//! The router without an engine: auth, tenancy, limits, body checks, error shapes, health. The
//! manager points at a Docker socket that does not exist; nothing here starts a sandbox.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::core::manager::Manager;
use crate::server::error::Redactor;
use crate::server::options::ServerOptions;
use crate::server::state::AppState;
use crate::server::{router, Server};

const K1: &str = "k1-0123456789abcdef";
const K2: &str = "k2-0123456789abcdef";

fn state_with(options: Value) -> Arc<AppState> {
  let opts = ServerOptions::from_json(Some(&options), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
  let config = json!({ "image": "agentic-sandbox/busybox:1", "docker": { "socketPath": "/nonexistent/agentic-sandbox-test.sock" } });
  let manager = Manager::with_config_file(Some(&config), None).unwrap();
  let redactor = Redactor::new(opts.keys.iter().map(|k| k.key.as_str()), std::iter::empty());
  AppState::new(Arc::new(manager), opts, redactor)
}

fn state() -> Arc<AppState> {
  state_with(json!({
    "readEnv": false,
    "apiKeys": [{ "key": K1, "name": "alice", "maxConcurrentExecutions": 1, "maxBodyBytes": 2048 }, { "key": K2, "name": "bob" }],
  }))
}

async fn call(state: &Arc<AppState>, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (StatusCode, Value, axum::http::HeaderMap) {
  let mut req = Request::builder().method(method).uri(path).header(header::HOST, "127.0.0.1:8003");
  if let Some(k) = key {
    req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
  }
  if body.is_some() {
    req = req.header(header::CONTENT_TYPE, "application/json");
  }
  let req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
  let res = router(state.clone()).oneshot(req).await.unwrap();
  let (parts, body) = res.into_parts();
  let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
  let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())) };
  (parts.status, v, parts.headers)
}

fn code(v: &Value) -> &str {
  v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn keys_are_required_and_never_echoed() {
  let s = state();
  for (key, why) in [(None, "no key"), (Some("k1-0123456789abcdeX"), "a wrong key")] {
    let (status, body, headers) = call(&s, "GET", "/sandboxes", key, None).await;
    assert_eq!(status, 401, "{why}");
    assert_eq!(code(&body), "UNAUTHORIZED");
    assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    assert!(!body.to_string().contains("k1-"), "{body}");
  }
  // 401 comes before the body is looked at
  let (status, _, _) = call(&s, "POST", "/sandbox/create", None, Some("{not json")).await;
  assert_eq!(status, 401);
  let (status, body, _) = call(&s, "GET", "/sandboxes", Some(K1), None).await;
  assert_eq!(status, 200);
  assert_eq!(body, json!({ "total": 0, "sandboxes": [] }));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
  let s = state();
  let (status, body, _) = call(&s, "GET", "/nope", Some(K1), None).await;
  assert_eq!((status.as_u16(), code(&body)), (404, "NOT_FOUND"));
  assert!(body["error"]["message"].as_str().unwrap().contains("POST /sandbox/create"));
  let (status, body, _) = call(&s, "GET", "/sandbox/create", Some(K1), None).await;
  assert_eq!((status.as_u16(), code(&body)), (405, "METHOD_NOT_ALLOWED"));
  let (status, body, _) = call(&s, "PUT", "/sandboxes", None, None).await;
  assert_eq!((status.as_u16(), code(&body)), (405, "METHOD_NOT_ALLOWED"));
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
  let s = state();
  let cases = [
    ("{\"environment\": ", "not valid JSON"),
    ("[]", "must be a JSON object, got an array"),
    ("{}", "environment is missing"),
    ("{\"environment\": 18}", "environment must be a string, got a number"),
    ("{\"environment\": \"nodejs-18\", \"timeout\": \"1h\"}", "timeout must be a number of seconds, got a string"),
    ("{\"environment\": \"nodejs-18\", \"timeout\": -5}", "timeout must be a number of seconds in (0, 604800]"),
    ("{\"environment\": \"cobol-85\"}", "environment \\\"cobol-85\\\" is not known"),
  ];
  for (body, want) in cases {
    let (status, v, _) = call(&s, "POST", "/sandbox/create", Some(K2), Some(body)).await;
    assert_eq!((status.as_u16(), code(&v)), (400, "INVALID_ARGUMENT"), "{body}: {v}");
    assert!(v.to_string().contains(want), "{body}: {v}");
  }
  // a body that is not declared JSON
  let req = Request::builder().method("POST").uri("/sandbox/create").header(header::AUTHORIZATION, format!("Bearer {K2}"));
  let res = router(s.clone()).oneshot(req.body(Body::from("{\"environment\":\"go-1.21\"}")).unwrap()).await.unwrap();
  assert_eq!(res.status(), 415);
  // alice's body limit is 2048 bytes
  let big = json!({ "environment": "nodejs-18", "pad": "x".repeat(4096) }).to_string();
  let (status, v, _) = call(&s, "POST", "/sandbox/create", Some(K1), Some(&big)).await;
  assert_eq!((status.as_u16(), code(&v)), (413, "PAYLOAD_TOO_LARGE"));
  // bob's (the default, 10 MiB) takes it, and fails on the field instead
  let (status, _, _) = call(&s, "POST", "/sandbox/create", Some(K2), Some(&big.replace("nodejs-18", "cobol"))).await;
  assert_eq!(status, 400);
}

#[tokio::test]
async fn tenants_see_only_their_own_sandboxes() {
  let s = state();
  let alice = s.keys.authenticate(&headers(K1)).unwrap();
  let sb = s.manager.create(None).unwrap();
  let id = sb.id().to_string();
  s.adopt(&alice, sb, "nodejs-18");

  let (status, v, _) = call(&s, "GET", "/sandboxes", Some(K1), None).await;
  assert_eq!(status, 200);
  assert_eq!(v["total"], 1);
  let item = &v["sandboxes"][0];
  assert_eq!((item["sandbox_id"].as_str(), item["status"].as_str(), item["environment"].as_str()), (Some(id.as_str()), Some("creating"), Some("nodejs-18")));
  assert_eq!((item["uptime"].as_u64(), item["executions"].as_u64()), (Some(0), Some(0)));

  let (status, v, _) = call(&s, "GET", &format!("/sandbox/{id}/status"), Some(K1), None).await;
  assert_eq!(status, 200, "{v}");
  assert_eq!((v["sandbox_id"].as_str(), v["state"].as_str(), v["template"].as_str()), (Some(id.as_str()), Some("created"), Some("base")));

  // bob: as if it did not exist
  let (_, v, _) = call(&s, "GET", "/sandboxes", Some(K2), None).await;
  assert_eq!(v["total"], 0);
  for (method, path, body) in [
    ("GET", format!("/sandbox/{id}/status"), None),
    ("DELETE", format!("/sandbox/{id}"), None),
    ("POST", format!("/sandbox/{id}/execute"), Some("{\"commands\": [\"id\"]}")),
  ] {
    let (status, v, _) = call(&s, method, &path, Some(K2), body).await;
    assert_eq!((status.as_u16(), code(&v)), (404, "SANDBOX_NOT_FOUND"), "{method} {path}");
  }
  let (_, unknown, _) = call(&s, "GET", "/sandbox/docker-0000000000000000/status", Some(K2), None).await;
  let (_, foreign, _) = call(&s, "GET", &format!("/sandbox/{id}/status"), Some(K2), None).await;
  assert_eq!(
    unknown["error"]["message"].as_str().unwrap().replace("docker-0000000000000000", "ID"),
    foreign["error"]["message"].as_str().unwrap().replace(&id, "ID"),
    "another tenant's sandbox reads exactly like an unknown one"
  );

  // alice's execute: bad input, then her one execution slot taken, then a sandbox not started
  let (status, v, _) = call(&s, "POST", &format!("/sandbox/{id}/execute"), Some(K1), Some("{\"commands\": [\"ls\", 3]}")).await;
  assert_eq!((status.as_u16(), code(&v)), (400, "INVALID_ARGUMENT"));
  assert!(v.to_string().contains("commands[1] must be a string"), "{v}");
  let (_, v, _) = call(&s, "POST", &format!("/sandbox/{id}/execute"), Some(K1), Some("{\"files\": {\"a.js\": 1}}")).await;
  assert!(v.to_string().contains("files[\\\"a.js\\\"] must be a string"), "{v}");
  let held = alice.executions.try_acquire().unwrap();
  let (status, v, _) = call(&s, "POST", &format!("/sandbox/{id}/execute"), Some(K1), Some("{\"commands\": [\"id\"]}")).await;
  assert_eq!((status.as_u16(), code(&v)), (429, "QUOTA_EXCEEDED"));
  drop(held);
  let (status, v, _) = call(&s, "POST", &format!("/sandbox/{id}/execute"), Some(K1), Some("{\"commands\": [\"id\"]}")).await;
  assert_eq!((status.as_u16(), code(&v)), (409, "SANDBOX_NOT_RUNNING"), "{v}");
  assert_eq!(alice.executions.used(), 0, "the slot is given back after a failed execution");

  let (status, v, _) = call(&s, "DELETE", &format!("/sandbox/{id}"), Some(K1), None).await;
  assert_eq!(status, 200, "{v}");
  assert_eq!((v["sandbox_id"].as_str(), v["deleted"].as_bool()), (Some(id.as_str()), Some(true)));
  assert_eq!(alice.sandboxes.used(), 0, "the sandbox slot is given back");
  let (status, _, _) = call(&s, "DELETE", &format!("/sandbox/{id}"), Some(K1), None).await;
  assert_eq!(status, 404);
}

fn headers(key: &str) -> axum::http::HeaderMap {
  let mut h = axum::http::HeaderMap::new();
  h.insert(header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
  h
}

#[tokio::test]
async fn sandbox_quota_is_per_tenant() {
  let s = state_with(json!({ "readEnv": false, "apiKeys": [{ "key": K1, "maxSandboxes": 1 }, K2] }));
  let t1 = s.keys.authenticate(&headers(K1)).unwrap();
  s.adopt(&t1, s.manager.create(None).unwrap(), "go-1.21");
  let (status, v, _) = call(&s, "POST", "/sandbox/create", Some(K1), Some("{\"environment\": \"go-1.21\"}")).await;
  assert_eq!((status.as_u16(), code(&v)), (429, "QUOTA_EXCEEDED"));
  assert!(v["error"]["message"].as_str().unwrap().contains("holds 1 sandboxes"), "{v}");
}

#[tokio::test]
async fn errors_never_carry_a_key() {
  let s = state();
  let (status, v, _) = call(&s, "GET", &format!("/sandbox/{K2}/status"), Some(K1), None).await;
  assert_eq!(status, 404);
  assert!(!v.to_string().contains(K2) && v.to_string().contains("***"), "{v}");
}

#[tokio::test]
async fn health_reports_the_engine_and_the_callers_counts() {
  let s = state();
  let (status, v, _) = call(&s, "GET", "/health", None, None).await;
  assert_eq!(status, 503, "{v}");
  assert_eq!((v["status"].as_str(), v["provider"].as_str(), v["engine"]["reachable"].as_bool()), (Some("unhealthy"), Some("docker"), Some(false)));
  assert!(v["engine"]["message"].as_str().unwrap().contains("nonexistent"), "{v}");
  assert!(v.get("tenant").is_none(), "no key: no tenant section");
  let (_, v, _) = call(&s, "GET", "/health", Some(K1), None).await;
  assert_eq!(v["tenant"]["name"], "alice");
  assert_eq!((v["tenant"]["max_concurrent_executions"].as_u64(), v["tenant"]["max_body_bytes"].as_u64()), (Some(1), Some(2048)));
}

#[tokio::test]
async fn anonymous_server_answers_loopback_host_names_only() {
  let s = state_with(json!({ "readEnv": false }));
  let (status, v, _) = call(&s, "GET", "/sandboxes", None, None).await;
  assert_eq!(status, 200, "{v}");
  let req = Request::builder().uri("/sandboxes").header(header::HOST, "rebound.example:8003").body(Body::empty()).unwrap();
  let res = router(s.clone()).oneshot(req).await.unwrap();
  assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn no_new_work_while_shutting_down() {
  let s = state();
  s.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
  let (status, v, _) = call(&s, "POST", "/sandbox/create", Some(K1), Some("{\"environment\": \"python-3.11\"}")).await;
  assert_eq!((status.as_u16(), code(&v)), (503, "SHUTTING_DOWN"));
}

#[tokio::test]
async fn listen_refuses_open_servers_beyond_loopback_and_closes_cleanly() {
  let open = ServerOptions::from_json(Some(&json!({ "readEnv": false, "host": "0.0.0.0", "port": 0 })), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
  let e = Server::new(open).unwrap().listen().await.unwrap_err();
  assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig);
  assert!(e.message.contains("needs API keys"), "{}", e.message);

  let opts = ServerOptions::from_json(Some(&json!({ "readEnv": false, "port": 0 })), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
  let server = Server::new(opts).unwrap();
  let addr = server.listen().await.unwrap();
  assert!(addr.ip().is_loopback() && addr.port() != 0);
  assert!(server.listen().await.unwrap_err().message.contains("already listens"));
  // a real request over TCP
  let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
  use tokio::io::{AsyncReadExt, AsyncWriteExt};
  conn.write_all(b"GET /sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
  let mut out = String::new();
  conn.read_to_string(&mut out).await.unwrap();
  assert!(out.starts_with("HTTP/1.1 200") && out.contains("\"sandboxes\":[]"), "{out}");
  server.close().await.unwrap();
  assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
  assert!(server.listen().await.is_err(), "closed for good");
}

/// Every `/v1` route of the table is routed (never the unknown-route or wrong-method fallback),
/// behind the key check, and another tenant's sandbox is SANDBOX_NOT_FOUND on each of them.
#[tokio::test]
async fn v1_routes_are_routed_and_tenant_scoped() {
  let s = state();
  let tenants = s.keys.tenants();
  let alice = tenants.iter().find(|t| t.name == "alice").unwrap();
  let sb = s.manager.create(None).unwrap();
  let id = sb.id().to_string();
  s.adopt(alice, sb, "v1");
  for (method, path, _) in crate::server::v1::table() {
    let p = format!("/v1{}", path.replace("{id}", &id).replace("{handle}", "p-1").replace("{thread}", "t"));
    if path != "/openapi.json" {
      let (status, body, _) = call(&s, method, &p, None, None).await;
      assert_eq!((status.as_u16(), code(&body)), (401, "UNAUTHORIZED"), "{method} {p} without a key");
    }
    let (status, body, _) = call(&s, method, &p, Some(K2), None).await;
    assert!(code(&body) != "NOT_FOUND" && status != 405, "{method} {p}: {status} {body}");
    if path.contains("{id}") {
      assert_eq!((status.as_u16(), code(&body)), (404, "SANDBOX_NOT_FOUND"), "{method} {p} as another tenant");
    }
  }
  let (status, body, _) = call(&s, "GET", &format!("/v1/sandboxes/{id}"), Some(K1), None).await;
  assert_eq!(status, 200, "{body}");
  assert_eq!(body["id"], id.as_str());
  let (_, body, _) = call(&s, "GET", "/v1/sandboxes", Some(K2), None).await;
  assert_eq!(body["sandboxes"], json!([]));
  let (status, body, _) = call(&s, "GET", "/v1/openapi.json", Some(K1), None).await;
  assert_eq!((status.as_u16(), body["openapi"].as_str()), (200, Some("3.1.0")));
  // refused configs keep their codes; a process of an unknown handle is an error, not a hang
  let (status, body, _) = call(&s, "POST", "/v1/sandboxes", Some(K1), Some(r#"{"config":{"docker":{"socketPath":"/var/run/docker.sock"}}}"#)).await;
  assert_eq!((status.as_u16(), code(&body)), (403, "PERMISSION_DENIED"));
  let (status, body, _) = call(&s, "POST", &format!("/v1/sandboxes/{id}/processes/p-9/kill"), Some(K1), None).await;
  assert_eq!((status.as_u16(), code(&body)), (422, "EXECUTION_ERROR"));
  let (status, body, _) = call(&s, "POST", &format!("/v1/sandboxes/{id}/processes"), Some(K1), Some(r#"{"command":""}"#)).await;
  assert_eq!((status.as_u16(), code(&body)), (400, "INVALID_ARGUMENT"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_take_their_own_token() {
  const M: &str = "m-0123456789abcdef";
  let s = state_with(json!({ "readEnv": false, "apiKeys": [K1], "metricsToken": M, "workerId": "w-9" }));
  for id in ["sb-a", "sb-b"] {
    let (status, _, _) = call(&s, "GET", &format!("/sandbox/{id}/status"), Some(K1), None).await;
    assert_eq!(status, 404);
  }
  let (status, _, _) = call(&s, "GET", "/v1/sandboxes/sb-c", Some(K1), None).await;
  assert_eq!(status, 404);
  call(&s, "GET", "/nope", Some(K1), None).await;
  for key in [None, Some(K1)] {
    let (status, body, _) = call(&s, "GET", "/metrics", key, None).await;
    assert_eq!((status.as_u16(), code(&body)), (401, "UNAUTHORIZED"), "{key:?}");
  }
  let (status, body, headers) = call(&s, "GET", "/metrics", Some(M), None).await;
  assert_eq!(status, 200);
  assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/openmetrics-text"));
  let text = body.as_str().unwrap();
  let has = |line: &str| text.lines().any(|l| l == line);
  assert!(has(r#"agentic_sandbox_http_requests_total{worker="w-9",method="GET",route="/sandbox/{id}/status",status="404"} 2"#), "{text}");
  assert!(has(r#"agentic_sandbox_http_requests_total{worker="w-9",method="GET",route="/v1/sandboxes/{id}",status="404"} 1"#), "{text}");
  assert!(has(r#"agentic_sandbox_http_requests_total{worker="w-9",method="GET",route="unmatched",status="404"} 1"#), "{text}");
  assert!(has(r#"agentic_sandbox_errors_total{worker="w-9",code="SANDBOX_NOT_FOUND"} 3"#), "{text}");
  assert!(has(r#"agentic_sandbox_errors_total{worker="w-9",code="UNAUTHORIZED"} 2"#), "{text}");
  assert!(!text.contains("sb-a") && !text.contains(K1) && !text.contains(M));
  // a keyless server (loopback only) serves it like every route; metricsPublic to anyone
  let open = state_with(json!({ "readEnv": false }));
  assert_eq!(call(&open, "GET", "/metrics", None, None).await.0, 200);
  let public = state_with(json!({ "readEnv": false, "apiKeys": [K1], "metricsPublic": true }));
  assert_eq!(call(&public, "GET", "/metrics", None, None).await.0, 200);
  let closed = state_with(json!({ "readEnv": false, "apiKeys": [K1] }));
  let (status, body, _) = call(&closed, "GET", "/metrics", Some(K1), None).await;
  assert_eq!(status, 401);
  assert!(body["error"]["message"].as_str().unwrap().contains("SANDBOX_METRICS_TOKEN"), "{body}");
}
