//! The one HTTP/1.1 test server of the unit tests: a hand-rolled listener on 127.0.0.1 (an
//! ephemeral port) that records every request and answers through a handler. It plays E2B's
//! control plane and envd (`providers::e2b::tests`) and the model APIs (`executor::model`).
//! Nothing here contacts an outside address.
//!
//! One request per connection (`connection: close`); a request body is read by its
//! `content-length`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Req {
  pub method: String,
  /// the path without the query
  pub path: String,
  pub query: HashMap<String, String>,
  /// names in lowercase
  pub headers: HashMap<String, String>,
  pub body: Vec<u8>,
}

impl Req {
  /// The body as JSON (`Null` if it is not JSON).
  pub fn json(&self) -> Value {
    serde_json::from_slice(&self.body).unwrap_or(Value::Null)
  }

  /// A header by its lowercase name.
  pub fn header(&self, name: &str) -> Option<&str> {
    self.headers.get(name).map(String::as_str)
  }
}

/// How the server answers one request.
pub enum Resp {
  /// a whole response with a `content-length`
  Full { status: u16, headers: Vec<(&'static str, String)>, body: Vec<u8> },
  /// a chunked 200: `before` chunks (a few ms apart), then (if given) a wait for the notify, then
  /// `after`; `cut` drops the connection instead of ending the chunked body
  Stream {
    headers: Vec<(&'static str, String)>,
    before: Vec<Vec<u8>>,
    wait: Option<Arc<Notify>>,
    after: Vec<Vec<u8>>,
    cut: bool,
  },
  /// read the request and never answer (for timeouts)
  Hang,
}

/// A JSON response (`content-type: application/json`).
pub fn json_resp(status: u16, v: Value) -> Resp {
  Resp::Full { status, headers: vec![("content-type", "application/json".into())], body: v.to_string().into_bytes() }
}

/// A response without headers or body.
pub fn empty(status: u16) -> Resp {
  Resp::Full { status, headers: vec![], body: vec![] }
}

type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// The running server; dropping it stops accepting connections.
pub struct Server {
  /// `http://127.0.0.1:<port>`
  pub url: String,
  seen: Arc<Mutex<Vec<Req>>>,
  task: tokio::task::JoinHandle<()>,
}

impl Server {
  /// Answers every request with `handler`.
  pub async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler: Handler = Arc::new(handler);
    let recorded = seen.clone();
    let task = tokio::spawn(async move {
      while let Ok((stream, _)) = listener.accept().await {
        let (handler, seen) = (handler.clone(), recorded.clone());
        tokio::spawn(async move {
          let _ = serve(stream, handler, seen).await;
        });
      }
    });
    Server { url, seen, task }
  }

  /// Answers each request with the next of `replies`, whatever it asks; a JSON 500 once they are
  /// used up.
  pub async fn scripted(replies: Vec<Resp>) -> Server {
    let script = Mutex::new(VecDeque::from(replies));
    Server::start(move |_| {
      let next = script.lock().unwrap().pop_front();
      next.unwrap_or_else(|| json_resp(500, json!({ "error": { "message": "no scripted reply left" } })))
    })
    .await
  }

  /// The requests received so far, in order.
  pub fn seen(&self) -> Vec<Req> {
    self.seen.lock().unwrap().clone()
  }

  /// The requests received so far with this method and path.
  pub fn find(&self, method: &str, path: &str) -> Vec<Req> {
    self.seen().into_iter().filter(|r| r.method == method && r.path == path).collect()
  }
}

impl Drop for Server {
  fn drop(&mut self) {
    self.task.abort();
  }
}

async fn serve(mut stream: TcpStream, handler: Handler, seen: Arc<Mutex<Vec<Req>>>) -> std::io::Result<()> {
  let mut buf = Vec::new();
  let mut chunk = [0u8; 8192];
  let head_end = loop {
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
      return Ok(());
    }
    buf.extend_from_slice(&chunk[..n]);
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
      break i + 4;
    }
  };
  let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
  let mut lines = head.split("\r\n");
  let mut first = lines.next().unwrap_or_default().split(' ');
  let method = first.next().unwrap_or_default().to_string();
  let target = first.next().unwrap_or_default().to_string();
  let headers: HashMap<String, String> = lines
    .filter_map(|l| l.split_once(':'))
    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
    .collect();
  let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
  while buf.len() < head_end + len {
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
      break;
    }
    buf.extend_from_slice(&chunk[..n]);
  }
  let url = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
  let req = Req {
    method,
    path: url.path().to_string(),
    query: url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
    headers,
    body: buf[head_end..].to_vec(),
  };
  seen.lock().unwrap().push(req.clone());
  match handler(&req) {
    Resp::Full { status, headers, body } => {
      let mut out = format!("HTTP/1.1 {status} Test\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
      for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
      }
      out.push_str("\r\n");
      stream.write_all(out.as_bytes()).await?;
      stream.write_all(&body).await?;
    }
    Resp::Stream { headers, before, wait, after, cut } => {
      let mut out = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n");
      for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
      }
      out.push_str("\r\n");
      stream.write_all(out.as_bytes()).await?;
      let write_chunk = |c: &[u8]| {
        let mut v = format!("{:x}\r\n", c.len()).into_bytes();
        v.extend_from_slice(c);
        v.extend_from_slice(b"\r\n");
        v
      };
      for c in &before {
        stream.write_all(&write_chunk(c)).await?;
        stream.flush().await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
      }
      if let Some(n) = wait {
        n.notified().await;
      }
      for c in &after {
        stream.write_all(&write_chunk(c)).await?;
      }
      if cut {
        return Ok(()); // dropped without the terminating chunk
      }
      stream.write_all(b"0\r\n\r\n").await?;
    }
    Resp::Hang => std::future::pending().await,
  }
  stream.flush().await?;
  stream.shutdown().await
}
