//! The control channel: policy updates as JSON lines on stdin.
//!
//! `{"seq":N,"policy":{"allowOut":[..],"denyOut":[..],"extraHosts":{..},"hostAddrs":[..]}}`
//! compiles the policy; on success it replaces the current one at once (for every connection
//! and query that starts afterwards) and `{"applied":N}` is printed, on an error
//! `{"seq":N,"error":".."}` and the previous policy stays. A line is at most `MAX_LINE` bytes:
//! a longer one means the two ends disagree about the protocol, which is fatal. At the end of
//! stdin the host is gone and so is the gateway.

use std::io::{self, BufRead};

use serde_json::{json, Value};

use super::Gw;
use crate::egress::{Policy, PolicyWire};

const MAX_LINE: usize = 1024 * 1024;

/// Read control lines until stdin ends; never returns.
pub(super) fn run(gw: &Gw) -> ! {
  let mut stdin = io::stdin().lock();
  loop {
    match read_line(&mut stdin, MAX_LINE) {
      Ok(Some(line)) => {
        if let Some(reply) = handle(gw, &line) {
          gw.out.line(reply.to_string());
        }
      }
      Ok(None) => gw.out.exit(0),
      Err(msg) => {
        super::log(&msg);
        gw.out.line(json!({ "fatal": msg }).to_string());
        gw.out.exit(2)
      }
    }
  }
}

/// The next line without its newline; None at the end of input (a last line without a newline
/// counts); an error if a line is longer than `max`. A read error is the end of input.
fn read_line(r: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>, String> {
  let mut line = Vec::new();
  loop {
    let avail = match r.fill_buf() {
      Ok(b) => b,
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      Err(_) => &[],
    };
    if avail.is_empty() {
      return Ok(if line.is_empty() { None } else { Some(line) });
    }
    let (take, done) = match avail.iter().position(|b| *b == b'\n') {
      Some(i) => (i, true),
      None => (avail.len(), false),
    };
    if line.len() + take > max {
      return Err(format!("control line longer than {max} bytes"));
    }
    line.extend_from_slice(&avail[..take]);
    r.consume(if done { take + 1 } else { take });
    if done {
      return Ok(Some(line));
    }
  }
}

/// Apply one control line; the reply to print (None for a blank line).
fn handle(gw: &Gw, line: &[u8]) -> Option<Value> {
  if line.iter().all(|b| b.is_ascii_whitespace()) {
    return None;
  }
  let v: Value = match serde_json::from_slice(line) {
    Ok(v) => v,
    Err(e) => return Some(json!({ "seq": null, "error": format!("not JSON: {e}") })),
  };
  let seq = v.get("seq").and_then(Value::as_u64);
  Some(match compile(&v) {
    Ok(p) => {
      gw.set_policy(p);
      json!({ "applied": seq })
    }
    Err(e) => json!({ "seq": seq, "error": e }),
  })
}

fn compile(v: &Value) -> Result<Policy, String> {
  let p = v.get("policy").ok_or("a control line is {\"seq\":N,\"policy\":{...}}")?;
  let w: PolicyWire = serde_json::from_value(p.clone()).map_err(|e| format!("policy: {e}"))?;
  Policy::compile(&w)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn lines() {
    let mut r = io::Cursor::new(b"ab\n\ncd".to_vec());
    assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"ab".to_vec()));
    assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"".to_vec()));
    assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"cd".to_vec()));
    assert_eq!(read_line(&mut r, 10).unwrap(), None);
    let mut r = io::BufReader::with_capacity(4, io::Cursor::new(b"0123456789\n0123456789x\n".to_vec()));
    assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"0123456789".to_vec()));
    assert!(read_line(&mut r, 10).is_err());
  }

  #[test]
  fn compiles() {
    assert!(compile(&json!({"seq":1,"policy":{"allowOut":["npm"]}})).is_ok());
    assert!(compile(&json!({"seq":1})).unwrap_err().contains("policy"));
    assert!(compile(&json!({"seq":1,"policy":{"allowOut":["a_b"]}})).unwrap_err().contains("a_b"));
    assert!(compile(&json!({"seq":1,"policy":{"allowOut":"x"}})).is_err());
  }
}
