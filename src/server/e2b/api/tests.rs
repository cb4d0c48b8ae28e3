//! The control plane without an engine: the manager points at a Docker socket that does not
//! exist, so sandboxes are made with `manager.create` (never started) and put in the table as a
//! create would; requests go through the server's whole router (the E2B dispatch included).

use super::*;
use crate::core::manager::Manager;
use crate::server::error::Redactor;
use crate::server::options::ServerOptions;
use axum::http::{header, Request};
use tower::ServiceExt;

const K1: &str = "e2b_0123456789abcdef0123456789abcdef01234567";
const K2: &str = "e2b_fedcba9876543210fedcba9876543210fedcba98";

fn state_with(options: Value) -> Arc<AppState> {
  let opts = ServerOptions::from_json(Some(&options), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
  let config = json!({
    "image": "agentic-sandbox/busybox:1",
    "templates": { "python": "agentic-sandbox/devtools:2" },
    "limits": { "memoryMB": 512, "cpuCores": 1.5, "diskMB": 256 },
    "docker": { "socketPath": "/nonexistent/agentic-sandbox-test.sock" },
  });
  let manager = Manager::with_config_file(Some(&config), None).unwrap();
  let redactor = Redactor::new(opts.keys.iter().map(|k| k.key.as_str()), std::iter::empty());
  AppState::new(Arc::new(manager), opts, redactor)
}

fn state() -> Arc<AppState> {
  state_with(json!({ "readEnv": false, "maxTimeout": 7200, "apiKeys": [{ "key": K1, "name": "alice", "maxSandboxes": 4 }, { "key": K2, "name": "bob" }] }))
}

fn tenant_of(s: &AppState, key: &str) -> Arc<Tenant> {
  let mut h = HeaderMap::new();
  h.insert("x-api-key", key.parse().unwrap());
  s.keys.authenticate(&h).unwrap()
}

/// An E2B sandbox as create makes it, of a sandbox that was never started.
fn add_box(s: &Arc<AppState>, key: &str, metadata: &[(&str, &str)], lifetime: Duration) -> Arc<E2bBox> {
  let t = tenant_of(s, key);
  let sb = s.manager.create(None).unwrap();
  let slot = t.sandboxes.try_acquire().unwrap();
  let entry = s.add_entry(t, sb, "e2b".into(), "base".into(), lifetime, slot);
  let id = new_id();
  let b = Arc::new(E2bBox {
    id: id.clone(),
    entry: entry.clone(),
    template: "base".into(),
    metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    env_vars: BTreeMap::new(),
    access_token: Some("00112233445566778899aabbccddeeff".into()),
    paused: Default::default(),
    network: Mutex::new(json!({ "allowInternetAccess": null, "network": null })),
    processes: Default::default(),
  });
  s.e2b.boxes.lock().unwrap().insert(id, b.clone());
  b
}

async fn call(s: &Arc<AppState>, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (StatusCode, Value, HeaderMap) {
  let mut req = Request::builder().method(method).uri(path).header(header::HOST, "127.0.0.1:8003");
  if let Some(k) = key {
    req = req.header("X-API-KEY", k);
  }
  if body.is_some() {
    req = req.header(header::CONTENT_TYPE, "application/json");
  }
  let req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
  let res = crate::server::router(s.clone()).oneshot(req).await.unwrap();
  let (parts, body) = res.into_parts();
  let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
  let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())) };
  (parts.status, v, parts.headers)
}

fn obj(s: &str) -> Object {
  crate::server::body::parse_object(s.as_bytes()).unwrap()
}

#[test]
fn metadata_filters_are_decoded_twice() {
  // the SDK: encodeURIComponent on each key and value, URLSearchParams over the pairs, then the
  // query serializer encodes the whole again; `query()` undoes the last step
  let uri: Uri = "/v2/sandboxes?metadata=user%3Da%252520b%252526c%25253Dd%26app%3Dprod".parse().unwrap();
  let once = query(&uri);
  assert_eq!(once["metadata"], "user=a%2520b%2526c%253Dd&app=prod");
  assert_eq!(metadata_filter(&once["metadata"]).unwrap(), vec![("user".into(), "a b&c=d".into()), ("app".into(), "prod".into())]);
  assert_eq!(metadata_filter("").unwrap(), vec![]);
  assert_eq!(metadata_filter("k=").unwrap(), vec![("k".into(), "".into())]);
  assert_eq!(metadata_filter("a+b=%25zz").unwrap(), vec![("a b".into(), "%zz".into())], "a bad escape stays as it is");
  assert_eq!(metadata_filter("=v").unwrap_err().0, StatusCode::BAD_REQUEST);
}

#[test]
fn timeouts_are_whole_seconds_within_the_servers_maximum() {
  let max = Duration::from_secs(86_400);
  assert_eq!(timeout_field(&obj(r#"{"timeout": 300}"#), "timeout", max).unwrap(), Some(Duration::from_secs(300)));
  assert_eq!(timeout_field(&obj(r#"{"timeout": 300.0}"#), "timeout", max).unwrap(), Some(Duration::from_secs(300)));
  assert_eq!(timeout_field(&obj(r#"{"timeout": null}"#), "timeout", max).unwrap(), None);
  assert_eq!(timeout_field(&obj(r#"{}"#), "timeout", max).unwrap(), None);
  for (body, want) in [
    (r#"{"timeout": 0}"#, "Timeout must be greater than 0"),
    (r#"{"timeout": -5}"#, "Timeout must be greater than 0"),
    (r#"{"timeout": 86401}"#, "Timeout cannot be greater than 24 hours"),
    (r#"{"timeout": 1.5}"#, "validation error: timeout must be an integer"),
    (r#"{"timeout": "60"}"#, "validation error: timeout must be an integer"),
  ] {
    let e = timeout_field(&obj(body), "timeout", max).unwrap_err();
    assert_eq!(e.0, StatusCode::BAD_REQUEST, "{body}");
    assert!(e.1.starts_with(want), "{body}: {}", e.1);
  }
  let e = timeout_field(&obj(r#"{"timeout": 100}"#), "timeout", Duration::from_secs(90)).unwrap_err();
  assert_eq!(e.1, "Timeout cannot be greater than 90 seconds");
  // defaults: E2B's 15 s on the old path, 300 s on v2 (which the SDKs call without a timeout),
  // never over the server's maximum; v2 always secures envd
  let n = parse_new(&obj(r#"{"templateID": "base"}"#), false, max).unwrap();
  assert_eq!((n.timeout.as_secs(), n.secure), (15, false));
  let n = parse_new(&obj(r#"{"templateID": "base"}"#), true, max).unwrap();
  assert_eq!((n.timeout.as_secs(), n.secure), (300, true));
  let n = parse_new(&obj(r#"{}"#), true, Duration::from_secs(60)).unwrap();
  assert_eq!((n.template.as_str(), n.timeout.as_secs()), ("base", 60));
  assert!(parse_new(&obj(r#"{"templateID": "base", "secure": true}"#), false, max).unwrap().secure);
  for bad in [
    r#"{"templateID": 3}"#,
    r#"{"metadata": {"a": 1}}"#,
    r#"{"envVars": []}"#,
    r#"{"allow_internet_access": "no"}"#,
    r#"{"network": {"allowOut": "x"}}"#,
    r#"{"network": {"rules": {"a.com": []}}}"#,
    r#"{"network": {"denyOut": ["not an address!"]}}"#,
    r#"{"volumeMounts": [{"name": "v", "path": "/v"}]}"#,
  ] {
    assert_eq!(parse_new(&obj(bad), true, max).unwrap_err().0, StatusCode::BAD_REQUEST, "{bad}");
  }
}

#[test]
fn the_create_layer_maps_templates_env_and_network() {
  let templates = json!({ "python": "agentic-sandbox/devtools:2" });
  let n = parse_new(&obj(r#"{"templateID": "python", "envVars": {"A": "1"}, "metadata": {"m": "v"}, "allow_internet_access": false}"#), true, Duration::from_secs(3600)).unwrap();
  let l = layer_of(&n, "abc", Some(&templates));
  assert_eq!((l["template"].as_str(), l["workdir"].as_str(), l["networkMode"].as_str()), (Some("python"), Some(HOME), Some("none")));
  assert_eq!((l["env"]["A"].as_str(), l["env"]["HOME"].as_str()), (Some("1"), Some(HOME)));
  assert_eq!((l["metadata"]["e2b"].as_str(), l["metadata"]["e2bMetadata"]["m"].as_str()), (Some("abc"), Some("v")));
  // a template the server does not configure: the server's default image
  let n = parse_new(&obj(r#"{"templateID": "base", "network": {"allowOut": ["pypi"], "denyOut": ["0.0.0.0/0"]}}"#), true, Duration::from_secs(3600)).unwrap();
  let l = layer_of(&n, "abc", Some(&templates));
  assert!(l.get("template").is_none() && l.get("networkMode").is_none(), "{l}");
  assert_eq!(l["network"], json!({ "allowOut": ["pypi"], "denyOut": ["0.0.0.0/0"] }));
}

#[tokio::test]
async fn list_info_and_kill_are_the_tenants_own() {
  let s = state();
  let a = add_box(&s, K1, &[("user", "a b&c=d"), ("app", "prod")], Duration::from_secs(600));
  let other = add_box(&s, K1, &[("app", "dev")], Duration::from_secs(600));
  let bobs = add_box(&s, K2, &[("app", "prod")], Duration::from_secs(600));

  let (status, v, headers) = call(&s, "GET", "/v2/sandboxes", Some(K1), None).await;
  assert_eq!(status, 200, "{v}");
  let items = v.as_array().unwrap();
  assert_eq!(items.len(), 2);
  assert_eq!(headers["x-total-running"], "2");
  assert!(headers.get("x-next-token").is_none());
  let item = items.iter().find(|i| i["sandboxID"] == a.id.as_str()).unwrap();
  let keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
  for k in ["templateID", "sandboxID", "clientID", "startedAt", "endAt", "cpuCount", "memoryMB", "diskSizeMB", "metadata", "state", "envdVersion"] {
    assert!(keys.contains(&k), "{k} missing in {item}");
  }
  assert_eq!((item["templateID"].as_str(), item["clientID"].as_str(), item["envdVersion"].as_str(), item["state"].as_str()), (Some("base"), Some(CLIENT_ID), Some(ENVD_VERSION), Some("running")));
  assert_eq!((item["cpuCount"].as_u64(), item["memoryMB"].as_u64(), item["diskSizeMB"].as_u64()), (Some(2), Some(512), Some(256)), "the sandbox's limits");
  assert_eq!(item["metadata"]["user"], "a b&c=d");
  let (start, end) = (item["startedAt"].as_str().unwrap(), item["endAt"].as_str().unwrap());
  let (start, end) = (crate::providers::docker::reaper::parse_rfc3339(start).unwrap(), crate::providers::docker::reaper::parse_rfc3339(end).unwrap());
  assert!((599..=601).contains(&(end - start)), "{item}");

  // the metadata filter as the SDK sends it, and the state filter
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes?metadata=user%3Da%252520b%252526c%25253Dd%26app%3Dprod", Some(K1), None).await;
  assert_eq!(v.as_array().unwrap().iter().map(|i| i["sandboxID"].as_str().unwrap()).collect::<Vec<_>>(), vec![a.id.as_str()]);
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes?metadata=app%3Dnone", Some(K1), None).await;
  assert_eq!(v, json!([]));
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes?state=paused", Some(K1), None).await;
  assert_eq!(v, json!([]));
  let (status, v, _) = call(&s, "GET", "/v2/sandboxes?state=dead", Some(K1), None).await;
  assert_eq!((status.as_u16(), v["code"].as_u64()), (400, Some(400)));

  // pages: newest first, X-Next-Token while more remain
  let (_, v, headers) = call(&s, "GET", "/v2/sandboxes?limit=1", Some(K1), None).await;
  assert_eq!(v.as_array().unwrap().len(), 1);
  let token = headers["x-next-token"].to_str().unwrap().to_string();
  let (_, v2, headers) = call(&s, "GET", &format!("/v2/sandboxes?limit=1&nextToken={token}"), Some(K1), None).await;
  assert_eq!(v2.as_array().unwrap().len(), 1);
  assert_ne!(v[0]["sandboxID"], v2[0]["sandboxID"]);
  assert!(headers.get("x-next-token").is_none());

  // info: the detail, with the access token
  let (status, v, _) = call(&s, "GET", &format!("/sandboxes/{}", a.id), Some(K1), None).await;
  assert_eq!(status, 200, "{v}");
  assert_eq!((v["sandboxID"].as_str(), v["envdAccessToken"].as_str()), (Some(a.id.as_str()), a.access_token.as_deref()));
  assert_eq!((v["domain"].clone(), v["lifecycle"]["onTimeout"].as_str()), (Value::Null, Some("kill")));

  // bob cannot see, time, pause or kill alice's: exactly as an unknown id
  for (method, path, body) in [
    ("GET", format!("/sandboxes/{}", a.id), None),
    ("DELETE", format!("/sandboxes/{}", a.id), None),
    ("POST", format!("/sandboxes/{}/timeout", a.id), Some(r#"{"timeout": 30}"#)),
    ("POST", format!("/sandboxes/{}/pause", a.id), None),
    ("POST", format!("/v2/sandboxes/{}/connect", a.id), Some("{}")),
    ("GET", format!("/sandboxes/{}/metrics", a.id), None),
    ("PUT", format!("/sandboxes/{}/network", a.id), Some("{}")),
  ] {
    let (status, v, _) = call(&s, method, &path, Some(K2), body).await;
    assert_eq!((status.as_u16(), v["code"].as_u64()), (404, Some(404)), "{method} {path}: {v}");
    assert_eq!(v["message"], format!("Sandbox \"{}\" doesn't exist or you don't have access to it", a.id));
  }
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes", Some(K2), None).await;
  assert_eq!(v.as_array().unwrap().len(), 1);
  assert_eq!(v[0]["sandboxID"], bobs.id.as_str());

  // kill: 204, gone from the list and from the server; again: 404 with E2B's body
  let (status, v, _) = call(&s, "DELETE", &format!("/sandboxes/{}", a.id), Some(K1), None).await;
  assert_eq!(status, 204, "{v}");
  assert!(s.e2b.get(&a.id).is_none() && !s.sandboxes.lock().unwrap().contains_key(&a.entry.id));
  let (status, v, _) = call(&s, "DELETE", &format!("/sandboxes/{}", a.id), Some(K1), None).await;
  assert_eq!((status.as_u16(), v["code"].as_u64()), (404, Some(404)));
  // the seed's delete of the server sandbox forgets the E2B sandbox too
  let (status, _, _) = call(&s, "DELETE", &format!("/sandbox/{}", other.entry.id), Some(K1), None).await;
  assert_eq!(status, 200);
  assert!(s.e2b.get(&other.id).is_none());
  // (the slot goes with the last reference to the entry: the test's own are dropped)
  drop((a, other));
  assert_eq!(tenant_of(&s, K1).sandboxes.used(), 0, "the slots are given back");
}

#[tokio::test]
async fn keys_ids_and_routes_answer_in_e2bs_shape() {
  let s = state();
  for key in [None, Some("e2b_0000")] {
    let (status, v, _) = call(&s, "GET", "/v2/sandboxes", key, None).await;
    assert_eq!((status.as_u16(), v["code"].as_u64()), (401, Some(401)), "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("Invalid API key"), "{v}");
  }
  let (status, v, _) = call(&s, "POST", "/v2/sandboxes", None, Some("{}")).await;
  assert_eq!((status.as_u16(), v["code"].as_u64()), (401, Some(401)));
  let (status, v, _) = call(&s, "GET", "/sandboxes/Not_An-Id", Some(K1), None).await;
  assert_eq!((status.as_u16(), v["message"].as_str()), (400, Some("Invalid sandbox ID")));
  let (status, v, _) = call(&s, "GET", "/sandboxes/abc/nothing", Some(K1), None).await;
  assert_eq!((status.as_u16(), v["code"].as_u64()), (404, Some(404)), "{v}");
  let (status, v, _) = call(&s, "PATCH", "/sandboxes/abc", Some(K1), None).await;
  assert_eq!((status.as_u16(), v["code"].as_u64()), (405, Some(405)), "{v}");
  // GET /sandboxes stays the seed's list
  let (status, v, _) = call(&s, "GET", "/sandboxes", Some(K1), None).await;
  assert_eq!((status.as_u16(), v["total"].as_u64()), (200, Some(0)), "{v}");
}

#[tokio::test]
async fn create_checks_before_it_creates_and_gives_the_slot_back() {
  let s = state();
  for (body, status, want) in [
    (r#"{"templateID": "base", "timeout": 7201}"#, 400, "Timeout cannot be greater than 2 hours"),
    (r#"{"templateID": "base", "timeout": 0}"#, 400, "Timeout must be greater than 0"),
    // egress rules would widen the server's isolated sandboxes: refused, never ignored
    (r#"{"templateID": "base", "network": {"allowOut": ["pypi"]}}"#, 403, "network:"),
    (r#"{"templateID": "base", "metadata": {"a": 1}}"#, 400, "validation error"),
    ("{not json", 400, "Error when parsing request"),
  ] {
    let (st, v, _) = call(&s, "POST", "/v2/sandboxes", Some(K1), Some(body)).await;
    assert_eq!((st.as_u16(), v["code"].as_u64()), (status, Some(status as u64)), "{body}: {v}");
    assert!(v["message"].as_str().unwrap().starts_with(want), "{body}: {v}");
  }
  // the engine is unreachable: the create fails as a 5xx, and leaves nothing behind
  let (st, v, _) = call(&s, "POST", "/v2/sandboxes", Some(K1), Some(r#"{"templateID": "python", "timeout": 60}"#)).await;
  assert!(st.is_server_error(), "{st} {v}");
  assert!(v["message"].as_str().unwrap().starts_with("Failed to create sandbox"), "{v}");
  assert_eq!(tenant_of(&s, K1).sandboxes.used(), 0);
  assert!(s.e2b.boxes.lock().unwrap().is_empty() && s.sandboxes.lock().unwrap().is_empty());
  assert!(s.manager.list().is_empty(), "the failed sandbox is destroyed");
  // the tenant's slots: E2B's 429
  for _ in 0..4 {
    add_box(&s, K1, &[], Duration::from_secs(60));
  }
  let (st, v, _) = call(&s, "POST", "/v2/sandboxes", Some(K1), Some(r#"{"templateID": "base"}"#)).await;
  assert_eq!((st.as_u16(), v["code"].as_u64()), (429, Some(429)), "{v}");
  assert!(v["message"].as_str().unwrap().starts_with("you have reached the maximum number of concurrent E2B sandboxes (4)"), "{v}");
}

#[tokio::test]
async fn timeouts_move_the_end_and_an_ended_lifetime_forgets_the_sandbox() {
  let s = state();
  let b = add_box(&s, K1, &[], Duration::from_secs(600));
  let end = |s: &Arc<AppState>, b: &E2bBox| -> f64 { s.e2b.get(&b.id).map_or(0.0, |b| b.entry.expires_ms()) };
  let before = end(&s, &b);
  let (status, v, _) = call(&s, "POST", &format!("/sandboxes/{}/timeout", b.id), Some(K1), Some(r#"{"timeout": 3600}"#)).await;
  assert_eq!(status, 204, "{v}");
  assert!(end(&s, &b) > before + 2_900_000.0);
  let (_, detail, _) = call(&s, "GET", &format!("/sandboxes/{}", b.id), Some(K1), None).await;
  assert_eq!(detail["endAt"].as_str(), Some(crate::core::logs::iso(b.entry.expires_ms()).as_str()));
  let (status, v, _) = call(&s, "POST", &format!("/sandboxes/{}/timeout", b.id), Some(K1), Some(r#"{"timeout": 99999}"#)).await;
  assert_eq!((status.as_u16(), v["message"].as_str()), (400, Some("Timeout cannot be greater than 2 hours")));
  // connect never shortens a running sandbox's lifetime
  let (status, v, _) = call(&s, "POST", &format!("/v2/sandboxes/{}/connect", b.id), Some(K1), Some(r#"{"timeout": 10}"#)).await;
  assert_eq!(status, 200, "{v}");
  assert_eq!((v["sandboxID"].as_str(), v["envdAccessToken"].as_str()), (Some(b.id.as_str()), b.access_token.as_deref()));
  assert!(end(&s, &b) > before + 2_900_000.0);
  // refreshes extend only
  let (status, _, _) = call(&s, "POST", &format!("/sandboxes/{}/refreshes", b.id), Some(K1), Some(r#"{"duration": 20}"#)).await;
  assert_eq!(status, 204);
  assert!(end(&s, &b) > before + 2_900_000.0);
  // shortened to 1 s: destroyed then, and gone from the E2B list
  let (status, _, _) = call(&s, "POST", &format!("/sandboxes/{}/timeout", b.id), Some(K1), Some(r#"{"timeout": 1}"#)).await;
  assert_eq!(status, 204);
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes", Some(K1), None).await;
  assert_eq!(v.as_array().unwrap().len(), 1);
  tokio::time::sleep(Duration::from_millis(1500)).await;
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes", Some(K1), None).await;
  assert_eq!(v, json!([]));
  assert!(!s.sandboxes.lock().unwrap().contains_key(&b.entry.id));
  let (status, _, _) = call(&s, "POST", &format!("/sandboxes/{}/timeout", b.id), Some(K1), Some(r#"{"timeout": 10}"#)).await;
  assert_eq!(status, 404);
  drop(b);
  assert_eq!(tenant_of(&s, K1).sandboxes.used(), 0);
}

#[tokio::test]
async fn reschedule_replaces_the_timer() {
  let s = state();
  let b = add_box(&s, K1, &[], Duration::from_millis(300));
  assert!(s.reschedule(&b.entry.id, Duration::from_secs(30)));
  tokio::time::sleep(Duration::from_millis(600)).await;
  assert!(s.e2b.get(&b.id).is_some(), "the first timer no longer ends it");
  assert!(s.reschedule(&b.entry.id, Duration::from_millis(100)));
  tokio::time::sleep(Duration::from_millis(500)).await;
  assert!(s.e2b.get(&b.id).is_none());
  assert!(!s.reschedule(&b.entry.id, Duration::from_secs(1)), "an ended sandbox is not rescheduled");
}

#[tokio::test]
async fn pause_marks_the_sandbox_paused_once() {
  let s = state();
  let b = add_box(&s, K1, &[], Duration::from_secs(600));
  let (status, v, _) = call(&s, "POST", &format!("/sandboxes/{}/pause", b.id), Some(K1), Some("{}")).await;
  assert_eq!(status, 204, "{v}");
  let (status, v, _) = call(&s, "POST", &format!("/sandboxes/{}/pause", b.id), Some(K1), Some(r#"{"memory": true}"#)).await;
  assert_eq!((status.as_u16(), v["code"].as_u64()), (409, Some(409)), "{v}");
  let (_, v, _) = call(&s, "GET", &format!("/sandboxes/{}", b.id), Some(K1), None).await;
  assert_eq!(v["state"], "paused");
  let (_, v, headers) = call(&s, "GET", "/v2/sandboxes?state=running", Some(K1), None).await;
  assert_eq!((v, headers["x-total-running"].to_str().unwrap()), (json!([]), "0"));
  let (_, v, _) = call(&s, "GET", "/v2/sandboxes?state=paused", Some(K1), None).await;
  assert_eq!(v[0]["state"], "paused");
  // paused: no timeout changes (E2B: 404), no metrics, no network update
  let (status, _, _) = call(&s, "POST", &format!("/sandboxes/{}/timeout", b.id), Some(K1), Some(r#"{"timeout": 30}"#)).await;
  assert_eq!(status, 404);
  let (status, v, _) = call(&s, "GET", &format!("/sandboxes/{}/metrics", b.id), Some(K1), None).await;
  assert_eq!((status.as_u16(), v), (200, json!([])));
  let (status, _, _) = call(&s, "POST", &format!("/sandboxes/{}/resume", b.id), Some(K1), Some("{}")).await;
  assert!(status.is_server_error(), "resuming needs the engine, which is not there");
  assert!(b.paused.load(Ordering::SeqCst), "still paused after a failed resume");
}

#[test]
fn metrics_are_bytes_of_the_sandboxs_limits() {
  let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
  rt.block_on(async {
    let s = state();
    let b = add_box(&s, K1, &[], Duration::from_secs(60));
    let stats = crate::core::types::Stats { memory_usage_mb: 2.0, cpu_percent: 12.5, disk_usage_mb: 1.5, network_rx_mb: 0.0, network_tx_mb: 0.0 };
    let m = metric_json(&b, &stats, 1_700_000_000_500.0);
    assert_eq!(
      m,
      json!({
        "timestamp": "2023-11-14T22:13:20.500Z", "timestampUnix": 1_700_000_000, "cpuCount": 2, "cpuUsedPct": 12.5,
        "memUsed": 2 * 1024 * 1024, "memTotal": 512u64 * 1024 * 1024, "memCache": 0, "diskUsed": 1536 * 1024, "diskTotal": 256u64 * 1024 * 1024,
      })
    );
  });
}
