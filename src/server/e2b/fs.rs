//! envd's `filesystem.Filesystem` Connect service, `/files` upload and download, `/health`,
//! `/envs` and `/metrics`. See `../shared/reference/e2b-protocol.md` sections 2.3, 2.4 and 2.6.
//!
//! Everything goes through the sandbox's own API, so the workspace quotas and limits apply:
//! file contents through `write_file` / `read_file` (`maxFileSizeMB`, `maxTotalFiles`,
//! `maxWorkspaceSizeMB`: an upload over a quota is envd's 507), what the file API lacks (one
//! entry's `stat`, `mkdir`, `mv`, a listing to a depth) through one short `/bin/sh` script per
//! call, run as the sandbox's user like every other process. Owner and group are reported as
//! `user`: the sandbox has that one user.
//!
//! Not served: directory watching (`WatchDir`, `CreateWatcher`, `GetWatcherEvents`,
//! `RemoveWatcher` answer `unimplemented`: poll `files.list` / `files.getInfo` instead), file
//! metadata (`X-Metadata-*` upload headers are ignored, entries carry no `metadata`), `Range`
//! downloads (the whole file is sent).

// A handler's early answer is a ready `Response` (the frame's `envd_box` and `envd_user` return
// one too): boxing it would buy nothing on these paths.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::{api_error, connect_error, envd_box, envd_box_unchecked, envd_user, resolve_path, E2bBox, USER};
use crate::core::error::ErrorCode;
use crate::core::types::{ExecOptions, ExecResult};
use crate::server::state::AppState;

type S = State<Arc<AppState>>;

/// The largest upload, whatever the tenant's `max_body_bytes` (as the server's `/v1` file PUT).
const MAX_UPLOAD: usize = 256 * 1024 * 1024;
/// The largest Connect request body (a path or two).
const MAX_RPC_BODY: usize = 1024 * 1024;
/// The largest listing a `ListDir` reads back from the sandbox.
const MAX_LIST_OUTPUT: usize = 32 * 1024 * 1024;
/// How long one filesystem script may run.
const SCRIPT_TIMEOUT_S: f64 = 60.0;
/// What watching answers.
const NO_WATCH: &str = "watching directories is not supported by this server (agentic-sandbox serve's self-hosted E2B): poll files.list() or files.getInfo() instead";

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
    .route("/health", get(health))
    .route("/envs", get(envs))
    .route("/metrics", get(metrics))
    .route("/files", get(download).post(upload))
    .route("/filesystem.Filesystem/{method}", post(rpc))
}

// ---------------------------------------------------------------------------------------------
// /health, /envs, /metrics

async fn health(State(state): S, headers: HeaderMap) -> Response {
  match envd_box_unchecked(&state, &headers) {
    Ok(_) => (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "no-store")]).into_response(),
    Err(r) => r,
  }
}

async fn envs(State(state): S, headers: HeaderMap) -> Response {
  let b = match envd_box(&state, &headers) {
    Ok(b) => b,
    Err(r) => return r,
  };
  axum::Json(json!(b.env_vars)).into_response()
}

async fn metrics(State(state): S, headers: HeaderMap) -> Response {
  let b = match envd_box(&state, &headers) {
    Ok(b) => b,
    Err(r) => return r,
  };
  let sb = &b.entry.sandbox;
  let stats = match sb.stats().await {
    Ok(s) => s,
    Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, format!("error getting metrics: {}", e.message)),
  };
  axum::Json(metrics_json(&stats, &sb.limits(), crate::core::logs::now_ms())).into_response()
}

/// envd's `/metrics` body (snake_case) from the sandbox's stats and limits.
fn metrics_json(s: &crate::core::types::Stats, l: &crate::core::config::ResourceLimits, now_ms: f64) -> Value {
  const MIB: f64 = 1024.0 * 1024.0;
  let cpus = l.cpu_cores.ceil().max(1.0);
  let round2 = |v: f64| (v * 100.0).round() / 100.0;
  json!({
    "ts": (now_ms / 1000.0).floor() as i64,
    "cpu_count": cpus as u64,
    // docker's percentage counts each core as 100; envd's is of the whole machine
    "cpu_used_pct": round2((s.cpu_percent / cpus).clamp(0.0, 100.0)),
    "mem_total": (l.memory_mb * MIB) as u64,
    "mem_used": (s.memory_usage_mb * MIB) as u64,
    "mem_cache": 0,
    "mem_total_mib": l.memory_mb.round() as u64,
    "mem_used_mib": s.memory_usage_mb.round() as u64,
    "disk_used": (s.disk_usage_mb * MIB) as u64,
    "disk_total": (l.disk_mb * MIB) as u64,
  })
}

// ---------------------------------------------------------------------------------------------
// /files

/// envd's signature of a `/files` request: `v1_` + unpadded standard base64 of
/// SHA-256(`<path>:<operation>:<username>:<token>[:<expiration>]`).
pub fn signature(path: &str, operation: &str, username: &str, token: &str, expiration: Option<&str>) -> String {
  use base64::Engine;
  use sha2::Digest;
  let raw = match expiration {
    Some(exp) => format!("{path}:{operation}:{username}:{token}:{exp}"),
    None => format!("{path}:{operation}:{username}:{token}"),
  };
  let digest = sha2::Sha256::digest(raw.as_bytes());
  format!("v1_{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
}

/// Why a `/files` request may not go on, if it may not: a secure sandbox needs its token in
/// `X-Access-Token` (which, when sent, must match and then decides alone) or a valid signature.
fn signing_error(b: &E2bBox, headers: &HeaderMap, q: &HashMap<String, String>, operation: &str, now_s: f64) -> Option<&'static str> {
  let token = b.access_token.as_deref()?;
  if headers.contains_key("x-access-token") {
    return (!super::token_ok(b, headers)).then_some("access token present in header but does not match");
  }
  let Some(sig) = q.get("signature").filter(|s| !s.is_empty()) else {
    return Some("missing signature query parameter");
  };
  let exp = q.get("signature_expiration").filter(|s| !s.is_empty());
  let want = signature(q.get("path").map_or("", String::as_str), operation, q.get("username").map_or("", String::as_str), token, exp.map(String::as_str));
  let (a, g) = (want.as_bytes(), sig.as_bytes());
  if a.len() != g.len() || a.iter().zip(g).fold(0u8, |acc, (x, y)| acc | (x ^ y)) != 0 {
    return Some("invalid signature");
  }
  if let Some(exp) = exp {
    match exp.parse::<f64>() {
      Ok(e) if e >= now_s => {}
      Ok(_) => return Some("signature is already expired"),
      Err(_) => return Some("invalid signature expiration"),
    }
  }
  None
}

/// The `username` of a `/files` request: absent, empty or `user` (the only one).
fn file_user(q: &HashMap<String, String>) -> Result<(), Response> {
  match q.get("username").map(String::as_str) {
    None | Some("") | Some(USER) => Ok(()),
    Some(name) => Err(api_error(
      StatusCode::UNAUTHORIZED,
      format!("error looking up user '{name}': this server's sandboxes have one user, 'user' (home {})", super::HOME),
    )),
  }
}

/// The checks every `/files` request starts with: the sandbox, the token or signature, the user.
fn files_request(state: &AppState, headers: &HeaderMap, q: &HashMap<String, String>, operation: &str) -> Result<Arc<E2bBox>, Response> {
  let b = envd_box_unchecked(state, headers)?;
  if let Some(why) = signing_error(&b, headers, q, operation, crate::core::logs::now_ms() / 1000.0) {
    return Err(api_error(StatusCode::UNAUTHORIZED, why));
  }
  file_user(q)?;
  Ok(b)
}

/// A path from the client, as envd resolves it; `None` for one with a NUL byte.
fn client_path(raw: &str) -> Option<String> {
  (!raw.contains('\0')).then(|| resolve_path(raw))
}

fn basename(p: &str) -> &str {
  p.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("/")
}

/// envd's choice of download encoding: gzip when accepted, else identity unless refused;
/// `None`: nothing acceptable (406).
pub fn negotiate_encoding(accept: &str) -> Option<&'static str> {
  if accept.trim().is_empty() {
    return Some("identity");
  }
  let mut q: HashMap<String, f64> = HashMap::new();
  for item in accept.split(',') {
    let mut it = item.split(';');
    let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
    let weight = it.map(str::trim).find_map(|p| p.strip_prefix("q=")).map_or(1.0, |v| v.trim().parse::<f64>().unwrap_or(0.0));
    q.insert(name, weight);
  }
  let star = q.get("*").copied();
  if q.get("gzip").copied().or(star).unwrap_or(0.0) > 0.0 {
    return Some("gzip");
  }
  if q.get("identity").copied().or(star).unwrap_or(1.0) > 0.0 {
    return Some("identity");
  }
  None
}

/// Like Go's `http.ServeContent`: by extension, else sniffed (text or binary).
fn content_type_for(path: &str, data: &[u8]) -> &'static str {
  let ext = basename(path).rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
  let by_ext = match ext.as_str() {
    "txt" => "text/plain; charset=utf-8",
    "json" => "application/json",
    "html" | "htm" => "text/html; charset=utf-8",
    "css" => "text/css; charset=utf-8",
    "js" | "mjs" => "text/javascript; charset=utf-8",
    "png" => "image/png",
    "jpg" | "jpeg" => "image/jpeg",
    "gif" => "image/gif",
    "svg" => "image/svg+xml",
    "pdf" => "application/pdf",
    "xml" => "text/xml; charset=utf-8",
    "csv" => "text/csv; charset=utf-8",
    "zip" => "application/zip",
    "gz" => "application/gzip",
    _ => "",
  };
  if !by_ext.is_empty() {
    return by_ext;
  }
  let head = &data[..data.len().min(512)];
  if head.contains(&0) {
    return "application/octet-stream";
  }
  match std::str::from_utf8(head) {
    Ok(_) => "text/plain; charset=utf-8",
    // a character cut at the 512th byte is still text
    Err(e) if head.len() == 512 && e.error_len().is_none() => "text/plain; charset=utf-8",
    Err(_) => "application/octet-stream",
  }
}

fn gzip(data: Vec<u8>) -> std::io::Result<Vec<u8>> {
  use std::io::Write;
  let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), flate2::Compression::fast());
  enc.write_all(&data)?;
  enc.finish()
}

/// A gzip body decompressed, `Err(None)` past `limit` bytes, `Err(Some(..))` when it is not gzip.
fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, Option<String>> {
  let mut out = Vec::new();
  let mut dec = flate2::read::MultiGzDecoder::new(data).take(limit as u64 + 1);
  dec.read_to_end(&mut out).map_err(|e| Some(e.to_string()))?;
  if out.len() > limit {
    return Err(None);
  }
  Ok(out)
}

/// Runs `f` off the async threads (compression of up to hundreds of MB).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
  tokio::task::spawn_blocking(f).await.ok()
}

/// `GET /files?path=&username=&signature=&signature_expiration=` → the file's bytes.
async fn download(State(state): S, uri: Uri, headers: HeaderMap) -> Response {
  let q = crate::server::v1::query(&uri);
  let b = match files_request(&state, &headers, &q, "read") {
    Ok(b) => b,
    Err(r) => return r,
  };
  let raw = q.get("path").map_or("", String::as_str);
  let Some(p) = client_path(raw) else {
    return api_error(StatusCode::BAD_REQUEST, format!("error expanding and resolving path '{raw}': the path contains a NUL byte"));
  };
  let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
  let Some(encoding) = negotiate_encoding(accept) else {
    return api_error(StatusCode::NOT_ACCEPTABLE, "no acceptable encoding found, supported: [identity, gzip]");
  };
  let op = b.entry.sandbox.read_file(&p).await;
  if !op.success {
    let why = op.error.unwrap_or_default();
    // what kind of failure: the file API does not tell a missing path from a directory
    return match sh(&b, r#"[ -e "$1" ] || [ -L "$1" ] || exit 3; [ -d "$1" ] && exit 4; exit 0"#, &[&p], 4096).await {
      Ok(r) if r.exit_code == 3 => api_error(StatusCode::NOT_FOUND, format!("path '{p}' does not exist")),
      Ok(r) if r.exit_code == 4 => api_error(StatusCode::BAD_REQUEST, format!("path '{p}' is a directory")),
      _ => api_error(StatusCode::INTERNAL_SERVER_ERROR, format!("error reading file '{p}': {why}")),
    };
  }
  let data = op.content.unwrap_or_default();
  let ctype = content_type_for(&p, &data);
  let disposition = format!("inline; filename=\"{}\"", basename(&p).replace(['"', '\\', '\r', '\n'], "_"));
  let mut res = if encoding == "gzip" {
    match blocking(move || gzip(data)).await {
      Some(Ok(z)) => (StatusCode::OK, [(header::CONTENT_ENCODING, "gzip")], z).into_response(),
      _ => return api_error(StatusCode::INTERNAL_SERVER_ERROR, "error compressing the file"),
    }
  } else {
    (StatusCode::OK, data).into_response()
  };
  let h = res.headers_mut();
  h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
  h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
  if let Ok(v) = HeaderValue::from_str(&disposition) {
    h.insert(header::CONTENT_DISPOSITION, v);
  }
  res
}

fn too_large(limit: usize) -> Response {
  api_error(
    StatusCode::PAYLOAD_TOO_LARGE,
    format!("the upload is larger than this server's limit of {limit} bytes for one request (the API key's maxBodyBytes); write smaller files, or fewer per request"),
  )
}

/// One file an upload wrote: envd's `{"path","name","type":"file"}`.
fn written(path: &str) -> Value {
  json!({ "path": path, "name": basename(path), "type": "file" })
}

/// Writes one uploaded file: envd's 400 for a directory, 507 for a quota, else 500.
async fn write_one(b: &E2bBox, target: &str, data: Vec<u8>, done: &[String]) -> Result<String, Response> {
  let Some(p) = client_path(target) else {
    return Err(api_error(StatusCode::BAD_REQUEST, format!("error resolving path '{target}': the path contains a NUL byte")));
  };
  if done.contains(&p) {
    return Err(api_error(
      StatusCode::BAD_REQUEST,
      format!("you cannot upload multiple files to the same path '{p}' in one upload request, only the first specified file was uploaded"),
    ));
  }
  let size = data.len();
  let op = b.entry.sandbox.write_file(&p, data).await;
  if op.success {
    return Ok(p);
  }
  let why = op.error.unwrap_or_default();
  Err(match op.code {
    Some(ErrorCode::QuotaExceeded) => {
      api_error(StatusCode::INSUFFICIENT_STORAGE, format!("attempted to write {size} bytes to '{p}': not enough disk space available ({why})"))
    }
    _ if why.contains("is a directory") => api_error(StatusCode::BAD_REQUEST, format!("path is a directory: {p}")),
    _ => api_error(StatusCode::INTERNAL_SERVER_ERROR, format!("error writing file '{p}': {why}")),
  })
}

/// `POST /files?path=&username=&signature=&signature_expiration=`: `multipart/form-data` (parts
/// named `file`, each to `path` or to its own filename) or `application/octet-stream` (to
/// `path`, optionally `Content-Encoding: gzip`) → `[{"path","name","type":"file"}]`.
async fn upload(State(state): S, uri: Uri, headers: HeaderMap, body: Body) -> Response {
  let q = crate::server::v1::query(&uri);
  let b = match files_request(&state, &headers, &q, "write") {
    Ok(b) => b,
    Err(r) => return r,
  };
  let limit = b.entry.tenant.limits.max_body_bytes.min(MAX_UPLOAD);
  let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
  if declared.is_some_and(|n| n > limit as u64) {
    return too_large(limit);
  }
  let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
  let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
  let gzipped = headers
    .get(header::CONTENT_ENCODING)
    .and_then(|v| v.to_str().ok())
    .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
  let path_param = q.get("path").cloned();

  if media != "application/octet-stream" && !media.starts_with("multipart/") {
    return api_error(
      StatusCode::BAD_REQUEST,
      format!("unsupported content type: '{content_type}', expected multipart/form-data or application/octet-stream"),
    );
  }
  // a gzip body is read whole (bounded) and inflated (bounded) first
  let mut body = Some(body);
  let inflated = if gzipped {
    let raw = match read_bounded(body.take().unwrap_or_default(), limit).await {
      Ok(r) => r,
      Err(r) => return r,
    };
    match blocking(move || gunzip(&raw, limit)).await {
      Some(Ok(d)) => Some(Bytes::from(d)),
      Some(Err(None)) => return too_large(limit),
      Some(Err(Some(e))) => return api_error(StatusCode::BAD_REQUEST, format!("error decompressing request body: {e}")),
      None => return api_error(StatusCode::INTERNAL_SERVER_ERROR, "error decompressing request body"),
    }
  } else {
    None
  };

  if media == "application/octet-stream" {
    let Some(target) = path_param else {
      return api_error(StatusCode::BAD_REQUEST, "path query parameter is required for raw body upload");
    };
    let data = match inflated {
      Some(d) => d,
      None => match read_bounded(body.take().unwrap_or_default(), limit).await {
        Ok(d) => d,
        Err(r) => return r,
      },
    };
    return match write_one(&b, &target, data.to_vec(), &[]).await {
      Ok(p) => axum::Json(json!([written(&p)])).into_response(),
      Err(r) => r,
    };
  }

  let boundary = match multer::parse_boundary(&content_type) {
    Ok(bd) => bd,
    Err(e) => return api_error(StatusCode::BAD_REQUEST, format!("error parsing multipart form: {e}")),
  };
  let constraints = multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit as u64));
  let mut form = match inflated {
    Some(d) => multer::Multipart::with_constraints(futures_util::stream::once(async move { Ok::<_, std::io::Error>(d) }), boundary, constraints),
    None => multer::Multipart::with_constraints(body.take().unwrap_or_default().into_data_stream(), boundary, constraints),
  };
  let mut done: Vec<String> = Vec::new();
  loop {
    let field = match form.next_field().await {
      Ok(Some(f)) => f,
      Ok(None) => break,
      Err(e) => return multipart_error(e, limit),
    };
    if field.name() != Some("file") {
      continue; // envd ignores other parts (dropping the field skips its data)
    }
    let target = match (&path_param, field.file_name()) {
      (Some(p), _) => p.clone(),
      (None, Some(f)) if !f.is_empty() => f.to_string(),
      _ => return api_error(StatusCode::BAD_REQUEST, "a 'file' part has no filename and the request no path query parameter: nowhere to write it"),
    };
    let data = match field.bytes().await {
      Ok(d) => d,
      Err(e) => return multipart_error(e, limit),
    };
    match write_one(&b, &target, data.to_vec(), &done).await {
      Ok(p) => done.push(p),
      Err(r) => return r,
    }
  }
  if done.is_empty() {
    return api_error(StatusCode::BAD_REQUEST, "the multipart form has no part named 'file'");
  }
  axum::Json(Value::Array(done.iter().map(|p| written(p)).collect())).into_response()
}

fn multipart_error(e: multer::Error, limit: usize) -> Response {
  match e {
    multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(limit),
    e => api_error(StatusCode::BAD_REQUEST, format!("error parsing multipart form: {e}")),
  }
}

/// The body, up to `limit` bytes (413 past it).
async fn read_bounded(body: Body, limit: usize) -> Result<Bytes, Response> {
  match axum::body::to_bytes(body, limit).await {
    Ok(b) => Ok(b),
    Err(e) => {
      let mut src: Option<&dyn std::error::Error> = Some(&e);
      while let Some(s) = src {
        if s.to_string().contains("length limit exceeded") {
          return Err(too_large(limit));
        }
        src = s.source();
      }
      Err(api_error(StatusCode::BAD_REQUEST, format!("the request body could not be read: {e}")))
    }
  }
}

// ---------------------------------------------------------------------------------------------
// filesystem.Filesystem

/// Runs `script` with `/bin/sh -c` in the sandbox, `args` as `$1`…
async fn sh(b: &E2bBox, script: &str, args: &[&str], max_output: usize) -> Result<ExecResult, String> {
  let mut argv = vec!["-c".to_string(), script.to_string(), "sh".to_string()];
  argv.extend(args.iter().map(|a| a.to_string()));
  let opts = ExecOptions { timeout: Some(SCRIPT_TIMEOUT_S), max_output_bytes: Some(max_output), ..Default::default() };
  b.entry.sandbox.execute("/bin/sh", &argv, opts).await.map_err(|e| e.message)
}

fn stderr_of(r: &ExecResult) -> String {
  let s = String::from_utf8_lossy(&r.stderr).trim().to_string();
  if s.is_empty() {
    format!("exit code {}", r.exit_code)
  } else {
    s
  }
}

/// For each path `$@`: path, `stat` fields, the symlink's resolved target and the target's mode,
/// each NUL-terminated (a missing path prints nothing).
const INFO_LOOP: &str = r#"for p do
  s=$(stat -c '%f|%s|%Y|%y' -- "$p" 2>/dev/null) || continue
  t=; tm=
  if [ -L "$p" ]; then
    t=$(readlink -f -- "$p" 2>/dev/null); [ -n "$t" ] || t=$p
    tm=$(stat -L -c '%f' -- "$p" 2>/dev/null)
  fi
  printf '%s\0%s\0%s\0%s\0' "$p" "$s" "$t" "$tm"
done"#;

/// `$1` the directory, `$2` the depth, `$3` [`INFO_LOOP`]: 3 missing, 4 not a directory.
const LISTDIR_SCRIPT: &str = r#"r=$(readlink -f -- "$1" 2>/dev/null) && [ -e "$r" ] || exit 3
[ -d "$r" ] || exit 4
find "$r" -mindepth 1 -maxdepth "$2" -exec sh -c "$3" sh {} +"#;

/// `$1` the directory, `$2` [`INFO_LOOP`]: 3 exists as a directory, 4 exists otherwise;
/// else creates it and its parents and prints its info.
const MKDIR_SCRIPT: &str = r#"p=$1
[ -d "$p" ] && exit 3
if [ -e "$p" ] || [ -L "$p" ]; then exit 4; fi
mkdir -p -- "$p" || exit 5
shift; sh -c "$1" sh "$p""#;

/// `$1` source, `$2` destination, `$3` [`INFO_LOOP`]: 3 no source, 5 parent not made, 6 the
/// destination is a directory that cannot be replaced; else renames (replacing a file or an
/// empty directory, like rename(2)) and prints the destination's info.
const MOVE_SCRIPT: &str = r#"s=$1; d=$2
[ -e "$s" ] || [ -L "$s" ] || exit 3
pd=${d%/*}; [ -n "$pd" ] || pd=/
mkdir -p -- "$pd" || exit 5
if [ "$s" != "$d" ] && [ -d "$d" ] && [ ! -L "$d" ]; then
  if [ -d "$s" ] && [ ! -L "$s" ]; then rmdir -- "$d" 2>/dev/null || { echo "rename $s $d: directory not empty" >&2; exit 6; }
  else echo "rename $s $d: file exists and is a directory" >&2; exit 6; fi
fi
[ "$s" = "$d" ] || mv -f -- "$s" "$d" || exit 7
sh -c "$3" sh "$d""#;

const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const S_IFBLK: u32 = 0o060000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFIFO: u32 = 0o010000;

/// Go's `os.FileMode.String()` of a raw `st_mode`: type letters, then `rwxrwxrwx`.
pub fn go_file_mode(mode: u32) -> String {
  let fmt = mode & S_IFMT;
  let mut s = String::new();
  if fmt == S_IFDIR {
    s.push('d');
  }
  if fmt == S_IFLNK {
    s.push('L');
  }
  if fmt == S_IFBLK || fmt == S_IFCHR {
    s.push('D');
  }
  if fmt == S_IFIFO {
    s.push('p');
  }
  if fmt == S_IFSOCK {
    s.push('S');
  }
  if mode & 0o4000 != 0 {
    s.push('u');
  }
  if mode & 0o2000 != 0 {
    s.push('g');
  }
  if fmt == S_IFCHR {
    s.push('c');
  }
  if mode & 0o1000 != 0 {
    s.push('t');
  }
  if s.is_empty() {
    s.push('-');
  }
  for (i, c) in "rwxrwxrwx".chars().enumerate() {
    s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
  }
  s
}

/// RFC 3339 UTC with 0, 3, 6 or 9 fractional digits, as protojson writes a Timestamp.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
  let base = crate::core::logs::iso(secs as f64 * 1000.0);
  let base = &base[..19.min(base.len())];
  if nanos == 0 {
    return format!("{base}Z");
  }
  let frac = format!("{nanos:09}");
  let frac = if nanos.is_multiple_of(1_000_000) {
    &frac[..3]
  } else if nanos.is_multiple_of(1_000) {
    &frac[..6]
  } else {
    &frac[..]
  };
  format!("{base}.{frac}Z")
}

/// proto3 JSON of `filesystem.EntryInfo` from one record of [`INFO_LOOP`] (zero values left out,
/// `size` an int64 string); `None` for a malformed record.
pub fn entry_json(path: &str, stat: &str, target: &str, target_mode: &str) -> Option<Value> {
  let mut f = stat.splitn(4, '|');
  let mode = u32::from_str_radix(f.next()?.trim(), 16).ok()?;
  let size = f.next()?.trim().parse::<u64>().ok()?;
  let secs = f.next()?.trim().parse::<i64>().ok()?;
  let human = f.next().unwrap_or("");
  let nanos = human
    .split_once('.')
    .map(|(_, rest)| {
      let digits: String = rest.chars().take_while(char::is_ascii_digit).take(9).collect();
      format!("{digits:0<9}").parse::<u32>().unwrap_or(0)
    })
    .unwrap_or(0);
  let is_link = mode & S_IFMT == S_IFLNK;
  let type_mode = if is_link { u32::from_str_radix(target_mode.trim(), 16).ok() } else { Some(mode) };
  let mut e = Map::new();
  e.insert("name".into(), json!(basename(path)));
  match type_mode.map(|m| m & S_IFMT) {
    Some(S_IFREG) => {
      e.insert("type".into(), json!("FILE_TYPE_FILE"));
    }
    Some(S_IFDIR) => {
      e.insert("type".into(), json!("FILE_TYPE_DIRECTORY"));
    }
    _ => {}
  }
  e.insert("path".into(), json!(path));
  if size != 0 {
    e.insert("size".into(), json!(size.to_string()));
  }
  let perm = type_mode.map_or(0, |m| m & 0o777);
  if perm != 0 {
    e.insert("mode".into(), json!(perm));
  }
  e.insert("permissions".into(), json!(go_file_mode(mode)));
  e.insert("owner".into(), json!(USER));
  e.insert("group".into(), json!(USER));
  e.insert("modifiedTime".into(), json!(rfc3339(secs, nanos)));
  if is_link {
    e.insert("symlinkTarget".into(), json!(target));
  }
  Some(Value::Object(e))
}

/// The entries of [`INFO_LOOP`]'s output.
pub fn parse_infos(out: &[u8]) -> Vec<Value> {
  let text = String::from_utf8_lossy(out);
  let fields: Vec<&str> = text.split('\0').collect();
  fields.chunks_exact(4).filter_map(|c| entry_json(c[0], c[1], c[2], c[3])).collect()
}

/// Walk order (each directory's entries by name, a directory's tree after it).
fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
  a.split('/').cmp(b.split('/'))
}

/// A string field of a request message (`path`, `source`…): absent is `""`.
fn str_field(msg: &Map<String, Value>, names: &[&str]) -> Result<String, Response> {
  match names.iter().find_map(|n| msg.get(*n)) {
    None | Some(Value::Null) => Ok(String::new()),
    Some(Value::String(s)) if s.contains('\0') => Err(connect_error("invalid_argument", format!("{} must not contain NUL bytes", names[0]))),
    Some(Value::String(s)) => Ok(s.clone()),
    Some(other) => Err(connect_error("invalid_argument", format!("{} must be a string, got {other}", names[0]))),
  }
}

/// `depth` of a ListDir request: absent or 0 is 1; a uint32, as a number or a string.
pub fn depth_field(msg: &Map<String, Value>) -> Result<u32, String> {
  let d = match msg.get("depth") {
    None | Some(Value::Null) => 0,
    Some(Value::Number(n)) => n.as_u64().filter(|d| *d <= u32::MAX as u64).ok_or_else(|| format!("invalid depth {n}"))?,
    Some(Value::String(s)) => s.trim().parse::<u32>().map_err(|_| format!("invalid depth {s:?}"))? as u64,
    Some(other) => return Err(format!("invalid depth {other}")),
  };
  Ok((d as u32).max(1))
}

/// A Connect unary call `POST /filesystem.Filesystem/<Method>` (JSON codec).
async fn rpc(State(state): S, Path(method): Path<String>, headers: HeaderMap, body: Body) -> Response {
  let streaming = method == "WatchDir";
  let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
  let media = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
  let known = matches!(method.as_str(), "Stat" | "MakeDir" | "Move" | "ListDir" | "Remove" | "WatchDir" | "CreateWatcher" | "GetWatcherEvents" | "RemoveWatcher");
  if !known {
    return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
  }
  let b = match envd_box(&state, &headers) {
    Ok(b) => b,
    Err(r) => return r,
  };
  let expected = if streaming { "application/connect+json" } else { "application/json" };
  if media != expected {
    return (StatusCode::UNSUPPORTED_MEDIA_TYPE, [("accept-post", expected)]).into_response();
  }
  if streaming {
    // a server stream answers 200 and carries its error in the end-of-stream frame
    return end_stream_error("unimplemented", NO_WATCH);
  }
  if let Err(r) = envd_user(&headers) {
    return r;
  }
  let bytes = match read_bounded(body, MAX_RPC_BODY).await {
    Ok(b) => b,
    Err(_) => return connect_error("resource_exhausted", format!("the request message is larger than {MAX_RPC_BODY} bytes")),
  };
  let msg = if bytes.iter().all(u8::is_ascii_whitespace) {
    Map::new()
  } else {
    match serde_json::from_slice::<Value>(&bytes) {
      Ok(Value::Object(o)) => o,
      Ok(_) => return connect_error("invalid_argument", "the request message must be a JSON object"),
      Err(e) => return connect_error("invalid_argument", format!("unmarshal message: {e}")),
    }
  };
  match method.as_str() {
    "Stat" => stat(&b, &msg).await,
    "MakeDir" => make_dir(&b, &msg).await,
    "Move" => move_entry(&b, &msg).await,
    "ListDir" => list_dir(&b, &msg).await,
    "Remove" => remove(&b, &msg).await,
    _ => Ok(connect_error("unimplemented", NO_WATCH)),
  }
  .unwrap_or_else(|r| r)
}

/// A Connect server-stream response of only the end-of-stream frame carrying `code`.
fn end_stream_error(code: &str, message: &str) -> Response {
  let payload = serde_json::to_vec(&json!({ "error": { "code": code, "message": message } })).unwrap_or_default();
  let mut frame = Vec::with_capacity(payload.len() + 5);
  frame.push(0x02);
  frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
  frame.extend_from_slice(&payload);
  (StatusCode::OK, [(header::CONTENT_TYPE, "application/connect+json")], frame).into_response()
}

fn path_of(msg: &Map<String, Value>, names: &[&str]) -> Result<String, Response> {
  Ok(resolve_path(&str_field(msg, names)?))
}

fn internal(what: &str, why: impl std::fmt::Display) -> Response {
  connect_error("internal", format!("{what}: {why}"))
}

/// The one entry an info script printed, or `not_found`.
fn one_entry(out: &[u8], p: &str) -> Result<Response, Response> {
  match parse_infos(out).into_iter().next() {
    Some(e) => Ok(axum::Json(json!({ "entry": e })).into_response()),
    None => Err(connect_error("not_found", format!("file not found: lstat {p}: no such file or directory"))),
  }
}

async fn stat(b: &E2bBox, msg: &Map<String, Value>) -> Result<Response, Response> {
  let p = path_of(msg, &["path"])?;
  let r = sh(b, INFO_LOOP, &[&p], 64 * 1024).await.map_err(|e| internal("error getting file info", e))?;
  one_entry(&r.stdout, &p)
}

async fn make_dir(b: &E2bBox, msg: &Map<String, Value>) -> Result<Response, Response> {
  let p = path_of(msg, &["path"])?;
  let r = sh(b, MKDIR_SCRIPT, &[&p, INFO_LOOP], 64 * 1024).await.map_err(|e| internal("error creating directory", e))?;
  match r.exit_code {
    0 => one_entry(&r.stdout, &p),
    3 => Err(connect_error("already_exists", format!("directory already exists: {p}"))),
    4 => Err(connect_error("invalid_argument", format!("path already exists but it is not a directory: {p}"))),
    _ => Err(internal(&format!("error creating directory {p}"), stderr_of(&r))),
  }
}

async fn move_entry(b: &E2bBox, msg: &Map<String, Value>) -> Result<Response, Response> {
  let src = path_of(msg, &["source"])?;
  let dst = path_of(msg, &["destination"])?;
  let r = sh(b, MOVE_SCRIPT, &[&src, &dst, INFO_LOOP], 64 * 1024).await.map_err(|e| internal("error renaming", e))?;
  match r.exit_code {
    0 => one_entry(&r.stdout, &dst),
    3 => Err(connect_error("not_found", format!("source file not found: rename {src} {dst}: no such file or directory"))),
    5 => Err(internal("error creating the destination's parent directory", stderr_of(&r))),
    6 => Err(connect_error("invalid_argument", stderr_of(&r))),
    _ => Err(internal("error renaming", stderr_of(&r))),
  }
}

async fn list_dir(b: &E2bBox, msg: &Map<String, Value>) -> Result<Response, Response> {
  let p = path_of(msg, &["path"])?;
  let depth = depth_field(msg).map_err(|e| connect_error("invalid_argument", e))?;
  let r = sh(b, LISTDIR_SCRIPT, &[&p, &depth.to_string(), INFO_LOOP], MAX_LIST_OUTPUT)
    .await
    .map_err(|e| internal(&format!("error reading directory {p}"), e))?;
  match r.exit_code {
    3 => return Err(connect_error("not_found", format!("path not found: lstat {p}: no such file or directory"))),
    4 => return Err(connect_error("invalid_argument", format!("path is not a directory: {p}"))),
    _ if r.truncated => {
      return Err(connect_error(
        "resource_exhausted",
        format!("the listing of {p} is larger than {MAX_LIST_OUTPUT} bytes; list a subdirectory or a smaller depth"),
      ))
    }
    // find's non-zero for an entry that vanished or could not be read still lists the rest
    _ if r.stdout.is_empty() && r.exit_code != 0 => return Err(internal(&format!("error reading directory {p}"), stderr_of(&r))),
    _ => {}
  }
  let mut entries = parse_infos(&r.stdout);
  entries.sort_by(|a, b| walk_order(a["path"].as_str().unwrap_or(""), b["path"].as_str().unwrap_or("")));
  Ok(axum::Json(if entries.is_empty() { json!({}) } else { json!({ "entries": entries }) }).into_response())
}

async fn remove(b: &E2bBox, msg: &Map<String, Value>) -> Result<Response, Response> {
  let p = path_of(msg, &["path"])?;
  let op = b.entry.sandbox.delete_file(&p, true).await;
  if !op.success {
    return Err(internal("error removing file or directory", op.error.unwrap_or_default()));
  }
  Ok(axum::Json(json!({})).into_response())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn signature_matches_the_reference_vector() {
    assert_eq!(signature("/home/user/a.txt", "read", "", "tok123", None), "v1_byj2OB/vujgbES/1KAKCaR27E+9eOrB6PzeTnIL8L6M");
    // the expiration joins the signed string
    assert_ne!(signature("/home/user/a.txt", "read", "", "tok123", Some("1")), signature("/home/user/a.txt", "read", "", "tok123", None));
    assert_ne!(signature("/home/user/a.txt", "write", "", "tok123", None), signature("/home/user/a.txt", "read", "", "tok123", None));
  }

  #[test]
  fn encodings() {
    assert_eq!(negotiate_encoding(""), Some("identity"));
    assert_eq!(negotiate_encoding("gzip, deflate"), Some("gzip"));
    assert_eq!(negotiate_encoding("deflate"), Some("identity"));
    assert_eq!(negotiate_encoding("gzip;q=0"), Some("identity"));
    assert_eq!(negotiate_encoding("*;q=0"), None);
    assert_eq!(negotiate_encoding("identity;q=0, br"), None);
  }

  #[test]
  fn gzip_round_trip_and_bomb_cap() {
    let data = vec![b'a'; 100_000];
    let z = gzip(data.clone()).unwrap();
    assert!(z.len() < 1000);
    assert_eq!(gunzip(&z, 100_000).unwrap(), data);
    assert_eq!(gunzip(&z, 99_999), Err(None));
    assert!(matches!(gunzip(b"not gzip", 10), Err(Some(_))));
  }

  #[test]
  fn entry_info_shape() {
    let e = entry_json("/home/user/a.txt", "81a4|3|1767225600|2026-01-01 00:00:00.123456000 +0000", "", "").unwrap();
    assert_eq!(
      e,
      json!({"name":"a.txt","type":"FILE_TYPE_FILE","path":"/home/user/a.txt","size":"3","mode":420,"permissions":"-rw-r--r--",
        "owner":"user","group":"user","modifiedTime":"2026-01-01T00:00:00.123456Z"})
    );
    // a directory of size 0: no size (proto3 leaves zero values out)
    let d = entry_json("/home/user/d", "41ed|0|1767225600|2026-01-01 00:00:00.000000000 +0000", "", "").unwrap();
    assert_eq!(d["type"], "FILE_TYPE_DIRECTORY");
    assert_eq!(d["permissions"], "drwxr-xr-x");
    assert_eq!(d["mode"], 493);
    assert!(d.get("size").is_none());
    assert_eq!(d["modifiedTime"], "2026-01-01T00:00:00Z");
    // a symlink to a directory: the target's type and permission bits, the link's mode text
    let l = entry_json("/home/user/l", "a1ff|1|1767225600|2026-01-01 00:00:00.5 +0000", "/home/user/d", "41ed").unwrap();
    assert_eq!((l["type"].as_str(), l["permissions"].as_str(), l["mode"].as_u64()), (Some("FILE_TYPE_DIRECTORY"), Some("Lrwxrwxrwx"), Some(493)));
    assert_eq!(l["symlinkTarget"], "/home/user/d");
    assert_eq!(l["modifiedTime"], "2026-01-01T00:00:00.500Z");
    // a dangling symlink: no type, no mode
    let x = entry_json("/home/user/x", "a1ff|4|1767225600|", "/nowhere", "").unwrap();
    assert!(x.get("type").is_none() && x.get("mode").is_none());
    assert!(entry_json("/a", "garbage", "", "").is_none());
  }

  #[test]
  fn info_records() {
    let out = b"/home/user/a\x0081a4|3|1767225600|x\x00\x00\x00/home/user/b\x0041ed|4096|1767225600|x\x00\x00\x00";
    let v = parse_infos(out);
    assert_eq!(v.len(), 2);
    assert_eq!((v[0]["name"].as_str(), v[1]["size"].as_str()), (Some("a"), Some("4096")));
    assert!(parse_infos(b"").is_empty());
  }

  #[test]
  fn file_modes_as_go_prints_them() {
    assert_eq!(go_file_mode(0o100644), "-rw-r--r--");
    assert_eq!(go_file_mode(0o040755), "drwxr-xr-x");
    assert_eq!(go_file_mode(0o120777), "Lrwxrwxrwx");
    assert_eq!(go_file_mode(0o104755), "urwxr-xr-x");
    assert_eq!(go_file_mode(0o041777), "dtrwxrwxrwx");
    assert_eq!(go_file_mode(0o020666), "Dcrw-rw-rw-");
    assert_eq!(go_file_mode(0o010600), "prw-------");
  }

  #[test]
  fn timestamps() {
    assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1767225600, 1), "2026-01-01T00:00:00.000000001Z");
    assert_eq!(rfc3339(1767225600, 120_000_000), "2026-01-01T00:00:00.120Z");
  }

  #[test]
  fn list_order_is_walk_order() {
    let mut v = vec!["/d/a.txt", "/d/a/b", "/d/a", "/d/b"];
    v.sort_by(|a, b| walk_order(a, b));
    assert_eq!(v, ["/d/a", "/d/a/b", "/d/a.txt", "/d/b"]);
  }

  #[test]
  fn depths() {
    let m = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(depth_field(&m(json!({}))), Ok(1));
    assert_eq!(depth_field(&m(json!({"depth": 0}))), Ok(1));
    assert_eq!(depth_field(&m(json!({"depth": 3}))), Ok(3));
    assert_eq!(depth_field(&m(json!({"depth": "2"}))), Ok(2));
    assert!(depth_field(&m(json!({"depth": -1}))).is_err());
    assert!(depth_field(&m(json!({"depth": 1.5}))).is_err());
  }

  #[test]
  fn paths() {
    assert_eq!(client_path("a.txt").as_deref(), Some("/home/user/a.txt"));
    assert_eq!(client_path("~/x/../y").as_deref(), Some("/home/user/y"));
    assert_eq!(client_path("/tmp//z/").as_deref(), Some("/tmp/z"));
    assert_eq!(client_path("").as_deref(), Some("/home/user"));
    assert_eq!(client_path("../../etc/passwd").as_deref(), Some("/etc/passwd"));
    assert_eq!(client_path("a\0b"), None);
    assert_eq!(basename("/home/user/a.txt"), "a.txt");
    assert_eq!(basename("/"), "/");
  }

  #[test]
  fn content_types() {
    assert_eq!(content_type_for("/a/b.json", b"{}"), "application/json");
    assert_eq!(content_type_for("/a/b", b"hello"), "text/plain; charset=utf-8");
    assert_eq!(content_type_for("/a/b", &[0, 1, 2]), "application/octet-stream");
    assert_eq!(content_type_for("/a/b", &[0xff, 0xfe]), "application/octet-stream");
  }

  #[tokio::test]
  async fn multipart_parts_and_limits() {
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/a.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nignored\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rel/b.bin\"\r\n\r\n\x00\x01\r\n--XyZ--\r\n";
    let boundary = multer::parse_boundary("multipart/form-data; boundary=XyZ").unwrap();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(body)) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut got = Vec::new();
    while let Some(f) = form.next_field().await.unwrap() {
      let (name, file) = (f.name().map(str::to_string), f.file_name().map(str::to_string));
      got.push((name, file, f.bytes().await.unwrap().to_vec()));
    }
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], (Some("file".into()), Some("/home/user/a.txt".into()), b"hello".to_vec()));
    assert_eq!(got[2], (Some("file".into()), Some("rel/b.bin".into()), vec![0, 1]));
    // the whole-stream cap
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(body)) });
    let c = multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(20));
    let mut form = multer::Multipart::with_constraints(stream, "XyZ", c);
    let mut err = None;
    loop {
      match form.next_field().await {
        Ok(Some(f)) => {
          if let Err(e) = f.bytes().await {
            err = Some(e);
            break;
          }
        }
        Ok(None) => break,
        Err(e) => {
          err = Some(e);
          break;
        }
      }
    }
    assert!(matches!(multipart_error(err.expect("over the cap"), 20).status(), StatusCode::PAYLOAD_TOO_LARGE));
  }

  /// Without an engine: what an unknown sandbox gets (the edge's 502), before any body is read.
  #[tokio::test]
  async fn unknown_sandbox_is_the_edges_502() {
    use tower::ServiceExt;
    let opts = crate::server::options::ServerOptions::from_json(Some(&json!({ "readEnv": false })), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
    let config = json!({ "image": "agentic-sandbox/busybox:1", "docker": { "socketPath": "/nonexistent/agentic-sandbox-test.sock" } });
    let manager = crate::core::manager::Manager::with_config_file(Some(&config), None).unwrap();
    let state = AppState::new(Arc::new(manager), opts, crate::server::error::Redactor::new(std::iter::empty::<&str>(), std::iter::empty()));
    let router = super::super::envd_routes().with_state(state);
    for (method, uri, ctype) in [
      ("GET", "/health", ""),
      ("GET", "/files?path=a", ""),
      ("POST", "/files?path=a", "application/octet-stream"),
      ("GET", "/envs", ""),
      ("POST", "/filesystem.Filesystem/Stat", "application/json"),
    ] {
      let req = axum::http::Request::builder().method(method).uri(uri).header("e2b-sandbox-id", "nosuchsandbox").header("content-type", ctype);
      let res = router.clone().oneshot(req.body(Body::from("{}")).unwrap()).await.unwrap();
      assert_eq!(res.status(), StatusCode::BAD_GATEWAY, "{method} {uri}");
      let v: Value = serde_json::from_slice(&axum::body::to_bytes(res.into_body(), 4096).await.unwrap()).unwrap();
      assert_eq!(v, json!({ "sandboxId": "nosuchsandbox", "message": "The sandbox was not found", "code": 502 }));
    }
  }

  #[test]
  fn metrics_shape() {
    let s = crate::core::types::Stats { memory_usage_mb: 100.0, cpu_percent: 150.0, disk_usage_mb: 10.0, network_rx_mb: 0.0, network_tx_mb: 0.0 };
    let l = crate::core::config::ResourceLimits {
      memory_mb: 512.0,
      cpu_cores: 2.0,
      disk_mb: 1024.0,
      network_mbps: None,
      timeout_seconds: 60.0,
      pids_limit: 100,
      max_file_size_mb: None,
      max_total_files: None,
      max_workspace_size_mb: None,
    };
    let m = metrics_json(&s, &l, 1_700_000_000_500.0);
    assert_eq!(m["ts"], 1_700_000_000);
    assert_eq!(m["cpu_count"], 2);
    assert_eq!(m["cpu_used_pct"], 75.0);
    assert_eq!(m["mem_total_mib"], 512);
    assert_eq!(m["mem_used"], 100 * 1024 * 1024);
  }
}

/// The routes over a real sandbox (Docker, `agentic-sandbox/debian:12`), driven as the SDK
/// drives them: `cargo test --lib server::e2b::fs::docker -- --ignored`.
#[cfg(test)]
mod docker {
  use std::collections::BTreeMap;
  use std::sync::atomic::AtomicBool;
  use std::sync::{Arc, Mutex};

  use axum::body::{Body, Bytes};
  use axum::http::{HeaderMap, Request, StatusCode};
  use serde_json::{json, Value};
  use tower::ServiceExt;

  use crate::core::manager::Manager;
  use crate::server::auth::Tenant;
  use crate::server::e2b::{envd_routes, E2bBox};
  use crate::server::error::Redactor;
  use crate::server::options::{ServerOptions, TenantLimits};
  use crate::server::state::AppState;

  const TOKEN: &str = "tok-0123456789";

  struct Env {
    state: Arc<AppState>,
    router: axum::Router,
    id: String,
  }

  impl Env {
    async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> (StatusCode, HeaderMap, Bytes) {
      let mut req = Request::builder().method(method).uri(uri).header("e2b-sandbox-id", &self.id).header("e2b-sandbox-port", "49983");
      for (k, v) in headers {
        req = req.header(*k, *v);
      }
      let res = self.router.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
      let (parts, body) = res.into_parts();
      (parts.status, parts.headers, axum::body::to_bytes(body, 1 << 26).await.unwrap())
    }

    /// A Connect unary call with the token.
    async fn rpc(&self, method: &str, msg: Value) -> (StatusCode, Value) {
      let (s, _, b) = self
        .call("POST", &format!("/filesystem.Filesystem/{method}"), &[("content-type", "application/json"), ("x-access-token", TOKEN)], msg.to_string())
        .await;
      (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
  }

  async fn env() -> Env {
    let opts = ServerOptions::from_json(Some(&json!({ "readEnv": false })), &|_| None, &|_| Err(std::io::ErrorKind::NotFound.into())).unwrap();
    let config = json!({ "image": "agentic-sandbox/debian:12", "workdir": "/home/user", "limits": { "maxFileSizeMB": 1 } });
    let manager = Arc::new(Manager::with_config_file(Some(&config), None).unwrap());
    let state = AppState::new(manager.clone(), opts, Redactor::new(std::iter::empty::<&str>(), std::iter::empty()));
    let sb = manager.create(None).unwrap();
    sb.start(None).await.unwrap();
    let tenant = Tenant::new("t", TenantLimits { max_body_bytes: 4 << 20, ..Default::default() });
    let entry = state.adopt(&tenant, sb, "e2b");
    let id = super::super::new_id();
    let b = Arc::new(E2bBox {
      id: id.clone(),
      entry,
      template: "base".into(),
      metadata: BTreeMap::new(),
      env_vars: BTreeMap::from([("A".to_string(), "1".to_string())]),
      access_token: Some(TOKEN.into()),
      paused: AtomicBool::new(false),
      network: Mutex::new(Value::Null),
      processes: Default::default(),
    });
    state.e2b.boxes.lock().unwrap().insert(id.clone(), b);
    let router = envd_routes().with_state(state.clone());
    Env { state, router, id }
  }

  fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into()))
  }

  #[tokio::test]
  #[ignore = "needs Docker and the local image agentic-sandbox/debian:12"]
  async fn files_and_filesystem_over_a_sandbox() {
    let e = env().await;
    let r = std::panic::AssertUnwindSafe(run(&e));
    let out = futures_util::FutureExt::catch_unwind(r).await;
    let sb = e.state.sandboxes.lock().unwrap().values().next().cloned();
    if let Some(entry) = sb {
      let _ = entry.sandbox.destroy().await;
    }
    if let Err(p) = out {
      std::panic::resume_unwind(p);
    }
  }

  async fn run(e: &Env) {
    let tok = ("x-access-token", TOKEN);
    // health without a token; an unknown sandbox is the edge's 502
    assert_eq!(e.call("GET", "/health", &[], Body::empty()).await.0, StatusCode::NO_CONTENT);
    let other = Env { state: e.state.clone(), router: e.router.clone(), id: "nosuchsandbox".into() };
    assert_eq!(other.call("GET", "/health", &[], Body::empty()).await.0, StatusCode::BAD_GATEWAY);
    // envs and metrics need the token
    assert_eq!(e.call("GET", "/envs", &[], Body::empty()).await.0, StatusCode::UNAUTHORIZED);
    let (s, _, b) = e.call("GET", "/envs", &[tok], Body::empty()).await;
    assert_eq!((s, json_of(&b)), (StatusCode::OK, json!({ "A": "1" })));
    let (s, _, b) = e.call("GET", "/metrics", &[tok], Body::empty()).await;
    assert_eq!(s, StatusCode::OK, "{}", json_of(&b));
    assert!(json_of(&b)["cpu_count"].as_u64().unwrap() >= 1);

    // octet-stream upload, relative path, parents created
    let (s, _, b) = e.call("POST", "/files?path=x/y/a.txt", &[tok, ("content-type", "application/octet-stream")], "héllo").await;
    assert_eq!((s, json_of(&b)), (StatusCode::OK, json!([{ "path": "/home/user/x/y/a.txt", "name": "a.txt", "type": "file" }])));
    // gzip upload
    let z = super::gzip(b"zipped".to_vec()).unwrap();
    let (s, _, b) = e.call("POST", "/files?path=/tmp/z.txt", &[tok, ("content-type", "application/octet-stream"), ("content-encoding", "gzip")], z).await;
    assert_eq!(s, StatusCode::OK, "{}", json_of(&b));
    // multipart: two files named by their filenames, another part ignored
    let form = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m/one.bin\"\r\n\r\n\x00\x01\x02\r\n\
--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nskip\r\n\
--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/two.txt\"\r\n\r\ntwo\r\n--B--\r\n";
    let (s, _, b) = e.call("POST", "/files", &[tok, ("content-type", "multipart/form-data; boundary=B")], form).await;
    assert_eq!(s, StatusCode::OK, "{}", json_of(&b));
    assert_eq!(json_of(&b).as_array().unwrap().iter().map(|v| v["path"].as_str().unwrap().to_string()).collect::<Vec<_>>(), ["/home/user/m/one.bin", "/home/user/two.txt"]);
    // two parts to one path
    let dup = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n1\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n2\r\n--B--\r\n";
    assert_eq!(e.call("POST", "/files?path=dup.txt", &[tok, ("content-type", "multipart/form-data; boundary=B")], dup).await.0, StatusCode::BAD_REQUEST);
    // other content types; a body over the tenant's cap; a file over maxFileSizeMB (507)
    assert_eq!(e.call("POST", "/files?path=q", &[tok, ("content-type", "text/plain")], "x").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(e.call("POST", "/files?path=q", &[tok, ("content-type", "application/octet-stream")], vec![0u8; 5 << 20]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _, b) = e.call("POST", "/files?path=big", &[tok, ("content-type", "application/octet-stream")], vec![0u8; 2 << 20]).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{}", json_of(&b));
    // a directory cannot be written over
    assert_eq!(e.call("POST", "/files?path=x/y", &[tok, ("content-type", "application/octet-stream")], "x").await.0, StatusCode::BAD_REQUEST);

    // downloads
    let (s, h, b) = e.call("GET", "/files?path=~/x/y/a.txt", &[tok], Body::empty()).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, "héllo".as_bytes()));
    assert_eq!(h["content-disposition"], "inline; filename=\"a.txt\"");
    let (s, _, b) = e.call("GET", "/files?path=m/one.bin", &[tok], Body::empty()).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &[0u8, 1, 2][..]));
    let (s, h, b) = e.call("GET", "/files?path=/tmp/z.txt", &[tok, ("accept-encoding", "gzip, deflate")], Body::empty()).await;
    assert_eq!((s, h["content-encoding"].to_str().unwrap()), (StatusCode::OK, "gzip"));
    assert_eq!(super::gunzip(&b, 100).unwrap(), b"zipped");
    let (s, _, b) = e.call("GET", "/files?path=nope.txt", &[tok], Body::empty()).await;
    assert_eq!((s, json_of(&b)), (StatusCode::NOT_FOUND, json!({ "code": 404, "message": "path '/home/user/nope.txt' does not exist" })));
    assert_eq!(e.call("GET", "/files?path=x", &[tok], Body::empty()).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(e.call("GET", "/files?path=two.txt&username=root", &[tok], Body::empty()).await.0, StatusCode::UNAUTHORIZED);

    // signed URLs instead of the token
    let sig = super::signature("two.txt", "read", "", TOKEN, None);
    let q = |s: &str| s.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let (s, _, b) = e.call("GET", &format!("/files?path=two.txt&signature={}", q(&sig)), &[], Body::empty()).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"two"[..]));
    assert_eq!(e.call("GET", "/files?path=two.txt", &[], Body::empty()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(e.call("GET", "/files?path=two.txt&signature=v1_AAAA", &[], Body::empty()).await.0, StatusCode::UNAUTHORIZED);
    let old = super::signature("two.txt", "read", "", TOKEN, Some("1000"));
    assert_eq!(e.call("GET", &format!("/files?path=two.txt&signature={}&signature_expiration=1000", q(&old)), &[], Body::empty()).await.0, StatusCode::UNAUTHORIZED);
    let later = (crate::core::logs::now_ms() / 1000.0) as u64 + 600;
    let w = super::signature("/home/user/signed.txt", "write", "user", TOKEN, Some(&later.to_string()));
    let (s, _, b) = e
      .call(
        "POST",
        &format!("/files?path=%2Fhome%2Fuser%2Fsigned.txt&username=user&signature={}&signature_expiration={later}", q(&w)),
        &[("content-type", "application/octet-stream")],
        "signed",
      )
      .await;
    assert_eq!(s, StatusCode::OK, "{}", json_of(&b));
    // a read signature does not write
    assert_eq!(e.call("POST", &format!("/files?path=two.txt&signature={}", q(&sig)), &[("content-type", "application/octet-stream")], "x").await.0, StatusCode::UNAUTHORIZED);

    // filesystem.Filesystem
    let (s, v) = e.rpc("Stat", json!({ "path": "x/y/a.txt" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let en = &v["entry"];
    assert_eq!((en["name"].as_str(), en["type"].as_str(), en["path"].as_str(), en["size"].as_str()), (Some("a.txt"), Some("FILE_TYPE_FILE"), Some("/home/user/x/y/a.txt"), Some("6")));
    assert_eq!((en["owner"].as_str(), en["permissions"].as_str().map(|p| p.len())), (Some("user"), Some(10)));
    assert!(en["modifiedTime"].as_str().unwrap().ends_with('Z'));
    let (s, v) = e.rpc("Stat", json!({ "path": "missing" })).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    let (s, v) = e.rpc("MakeDir", json!({ "path": "d/e" })).await;
    assert_eq!((s, v["entry"]["type"].as_str(), v["entry"]["path"].as_str()), (StatusCode::OK, Some("FILE_TYPE_DIRECTORY"), Some("/home/user/d/e")));
    assert_eq!(e.rpc("MakeDir", json!({ "path": "d/e" })).await.1["code"], "already_exists");
    assert_eq!(e.rpc("MakeDir", json!({ "path": "two.txt" })).await.1["code"], "invalid_argument");

    let (s, v) = e.rpc("ListDir", json!({ "path": "/home/user", "depth": 1 })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    for n in ["d", "m", "two.txt", "x", "signed.txt"] {
      assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(!names.contains(&"e"));
    let (_, v) = e.rpc("ListDir", json!({ "path": "d", "depth": 0 })).await;
    assert_eq!(v["entries"][0]["path"], "/home/user/d/e");
    let (_, v) = e.rpc("ListDir", json!({ "path": "/home/user", "depth": 3 })).await;
    let paths: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"/home/user/x/y/a.txt"), "{paths:?}");
    assert_eq!(e.rpc("ListDir", json!({ "path": "nope" })).await.1["code"], "not_found");
    assert_eq!(e.rpc("ListDir", json!({ "path": "two.txt" })).await.1["code"], "invalid_argument");
    // an empty directory: {} (no entries key)
    let (s, v) = e.rpc("ListDir", json!({ "path": "d/e" })).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));

    let (s, v) = e.rpc("Move", json!({ "source": "two.txt", "destination": "d/moved/2.txt" })).await;
    assert_eq!((s, v["entry"]["path"].as_str()), (StatusCode::OK, Some("/home/user/d/moved/2.txt")), "{v}");
    assert_eq!(e.rpc("Move", json!({ "source": "two.txt", "destination": "z" })).await.1["code"], "not_found");
    let (s, _) = e.rpc("Move", json!({ "source": "x", "destination": "x2" })).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e.rpc("Stat", json!({ "path": "x2/y/a.txt" })).await.0, StatusCode::OK);

    assert_eq!(e.rpc("Remove", json!({ "path": "d" })).await, (StatusCode::OK, json!({})));
    assert_eq!(e.rpc("Remove", json!({ "path": "d" })).await, (StatusCode::OK, json!({})));
    assert_eq!(e.rpc("Stat", json!({ "path": "d" })).await.1["code"], "not_found");

    // a user other than `user`; bad bodies; no token
    let (s, _, b) = e
      .call("POST", "/filesystem.Filesystem/Stat", &[tok, ("content-type", "application/json"), ("authorization", "Basic cm9vdDo=")], "{}")
      .await;
    assert_eq!((s, json_of(&b)["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
    assert_eq!(e.rpc("Stat", json!({ "path": 5 })).await.1["code"], "invalid_argument");
    assert_eq!(e.call("POST", "/filesystem.Filesystem/Stat", &[("content-type", "application/json")], "{}").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(e.call("POST", "/filesystem.Filesystem/Stat", &[tok, ("content-type", "text/plain")], "{}").await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(e.call("POST", "/filesystem.Filesystem/Nope", &[tok, ("content-type", "application/json")], "{}").await.0, StatusCode::NOT_FOUND);

    // watching: unimplemented, in the stream's end frame
    let (s, _, b) = e.call("POST", "/filesystem.Filesystem/WatchDir", &[tok, ("content-type", "application/connect+json")], &b"\0\0\0\0\x02{}"[..]).await;
    assert_eq!((s, b[0]), (StatusCode::OK, 2));
    assert_eq!(json_of(&b.slice(5..))["error"]["code"], "unimplemented");
    assert_eq!(e.rpc("CreateWatcher", json!({ "path": "/home/user" })).await.1["code"], "unimplemented");
  }
}
