//! Request bodies: JSON objects, read up to the tenant's byte limit, with field checks whose
//! messages name the field (`commands[2] must be a string, got a number`).

use axum::body::Body;
use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};

use crate::server::error::ApiError;
use axum::http::StatusCode;

pub type Object = Map<String, Value>;

fn type_name(v: &Value) -> &'static str {
  match v {
    Value::Null => "null",
    Value::Bool(_) => "a boolean",
    Value::Number(_) => "a number",
    Value::String(_) => "a string",
    Value::Array(_) => "an array",
    Value::Object(_) => "an object",
  }
}

fn is_json(headers: &HeaderMap) -> bool {
  let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
    return false;
  };
  let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
  mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The body as a JSON object (an empty body is `{}`): 413 past `limit` bytes (told by
/// Content-Length before anything is read, or while reading), 415 when a body is not declared
/// `application/json`, 400 INVALID_ARGUMENT when it is not a JSON object.
pub async fn read_object(headers: &HeaderMap, body: Body, limit: usize) -> Result<Object, ApiError> {
  let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
  if declared.is_some_and(|n| n > limit as u64) {
    return Err(ApiError::too_large(limit));
  }
  let bytes = match axum::body::to_bytes(body, limit).await {
    Ok(b) => b,
    // the limit shows up as http-body-util's LengthLimitError somewhere in the source chain
    Err(e) if chain(&e).any(|m| m.contains("length limit exceeded")) => return Err(ApiError::too_large(limit)),
    Err(e) => return Err(ApiError::invalid(format!("the request body could not be read ({e})"))),
  };
  if bytes.iter().all(u8::is_ascii_whitespace) {
    return Ok(Object::new());
  }
  if !is_json(headers) {
    return Err(ApiError::new(
      StatusCode::UNSUPPORTED_MEDIA_TYPE,
      "UNSUPPORTED_MEDIA_TYPE",
      "the request body must be JSON, sent with 'Content-Type: application/json'",
    ));
  }
  parse_object(&bytes)
}

/// The body's raw bytes (any content type), 413 past `limit` bytes.
pub async fn read_bytes(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
  let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
  if declared.is_some_and(|n| n > limit as u64) {
    return Err(ApiError::too_large(limit));
  }
  match axum::body::to_bytes(body, limit).await {
    Ok(b) => Ok(b),
    Err(e) if chain(&e).any(|m| m.contains("length limit exceeded")) => Err(ApiError::too_large(limit)),
    Err(e) => Err(ApiError::invalid(format!("the request body could not be read ({e})"))),
  }
}

/// A JSON object from bytes, or INVALID_ARGUMENT saying what is wrong and where.
pub fn parse_object(bytes: &[u8]) -> Result<Object, ApiError> {
  match serde_json::from_slice::<Value>(bytes) {
    Ok(Value::Object(o)) => Ok(o),
    Ok(other) => Err(ApiError::invalid(format!("the request body must be a JSON object, got {}", type_name(&other)))),
    Err(e) => Err(ApiError::invalid(format!("the request body is not valid JSON: {e}"))),
  }
}

/// The messages of an error and of its sources.
fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = String> + 'a {
  std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string())
}

/// A non-empty string, or absent (null counts as absent).
pub fn opt_string(o: &Object, field: &str) -> Result<Option<String>, ApiError> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
    Some(Value::String(_)) => Err(ApiError::invalid(format!("{field} must not be empty"))),
    Some(v) => Err(ApiError::invalid(format!("{field} must be a string, got {}", type_name(v)))),
  }
}

pub fn opt_bool(o: &Object, field: &str) -> Result<Option<bool>, ApiError> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Bool(b)) => Ok(Some(*b)),
    Some(v) => Err(ApiError::invalid(format!("{field} must be true or false, got {}", type_name(v)))),
  }
}

/// Seconds in (0, max], fractions allowed.
pub fn opt_seconds(o: &Object, field: &str, max: f64) -> Result<Option<f64>, ApiError> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Number(n)) => match n.as_f64() {
      Some(f) if f.is_finite() && f > 0.0 && f <= max => Ok(Some(f)),
      _ => Err(ApiError::invalid(format!("{field} must be a number of seconds in (0, {max}], got {n}"))),
    },
    Some(v) => Err(ApiError::invalid(format!("{field} must be a number of seconds, got {}", type_name(v)))),
  }
}

/// An array of non-empty strings (at most `max` of them).
pub fn opt_strings(o: &Object, field: &str, max: usize) -> Result<Vec<String>, ApiError> {
  let items = match o.get(field) {
    None | Some(Value::Null) => return Ok(Vec::new()),
    Some(Value::Array(a)) => a,
    Some(v) => return Err(ApiError::invalid(format!("{field} must be an array of strings, got {}", type_name(v)))),
  };
  if items.len() > max {
    return Err(ApiError::invalid(format!("{field} has {} entries; at most {max} per request", items.len())));
  }
  items
    .iter()
    .enumerate()
    .map(|(i, v)| match v {
      Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
      Value::String(_) => Err(ApiError::invalid(format!("{field}[{i}] must not be empty"))),
      v => Err(ApiError::invalid(format!("{field}[{i}] must be a string, got {}", type_name(v)))),
    })
    .collect()
}

/// An object of string values (at most `max` entries), in the order given.
pub fn opt_string_map(o: &Object, field: &str, max: usize) -> Result<Vec<(String, String)>, ApiError> {
  let m = match o.get(field) {
    None | Some(Value::Null) => return Ok(Vec::new()),
    Some(Value::Object(m)) => m,
    Some(v) => return Err(ApiError::invalid(format!("{field} must be an object of path → text, got {}", type_name(v)))),
  };
  if m.len() > max {
    return Err(ApiError::invalid(format!("{field} has {} entries; at most {max} per request", m.len())));
  }
  m.iter()
    .map(|(k, v)| match v {
      _ if k.trim().is_empty() || k.contains('\0') => Err(ApiError::invalid(format!("{field} has an empty path or one with a NUL byte"))),
      Value::String(s) => Ok((k.clone(), s.clone())),
      v => Err(ApiError::invalid(format!("{field}[{k:?}] must be a string (the file's text), got {}", type_name(v)))),
    })
    .collect()
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  fn obj(v: Value) -> Object {
    v.as_object().unwrap().clone()
  }

  fn json_headers(len: Option<usize>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
    if let Some(n) = len {
      h.insert(header::CONTENT_LENGTH, n.to_string().parse().unwrap());
    }
    h
  }

  #[tokio::test]
  async fn bodies_within_and_over_the_limit() {
    let ok = read_object(&json_headers(None), Body::from(r#"{"a":1}"#), 100).await.unwrap();
    assert_eq!(ok["a"], 1);
    assert!(read_object(&HeaderMap::new(), Body::empty(), 100).await.unwrap().is_empty(), "no body is {{}}");
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(200));
    for h in [json_headers(Some(big.len())), json_headers(None)] {
      let e = read_object(&h, Body::from(big.clone()), 100).await.unwrap_err();
      assert_eq!((e.status.as_u16(), e.code.as_str()), (413, "PAYLOAD_TOO_LARGE"), "{h:?}");
    }
  }

  #[tokio::test]
  async fn malformed_bodies() {
    let e = read_object(&json_headers(None), Body::from("{\"a\": "), 100).await.unwrap_err();
    assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "INVALID_ARGUMENT"));
    assert!(e.message.contains("not valid JSON") && e.message.contains("line 1"), "{}", e.message);
    let e = read_object(&json_headers(None), Body::from("[1]"), 100).await.unwrap_err();
    assert!(e.message.contains("must be a JSON object, got an array"), "{}", e.message);
    let e = read_object(&HeaderMap::new(), Body::from("{}"), 100).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 415);
  }

  #[test]
  fn fields_are_named_in_messages() {
    let o = obj(json!({ "s": 1, "e": "", "t": "60", "n": -1, "a": ["x", 2], "m": { "f": 3 }, "b": "yes" }));
    assert_eq!(opt_string(&o, "s").unwrap_err().message, "s must be a string, got a number");
    assert_eq!(opt_string(&o, "e").unwrap_err().message, "e must not be empty");
    assert_eq!(opt_string(&o, "absent").unwrap(), None);
    assert_eq!(opt_seconds(&o, "t", 10.0).unwrap_err().message, "t must be a number of seconds, got a string");
    assert!(opt_seconds(&o, "n", 10.0).unwrap_err().message.starts_with("n must be a number of seconds in (0, 10]"));
    assert_eq!(opt_strings(&o, "a", 10).unwrap_err().message, "a[1] must be a string, got a number");
    assert!(opt_strings(&o, "a", 1).unwrap_err().message.contains("at most 1"));
    assert_eq!(opt_string_map(&o, "m", 10).unwrap_err().message, "m[\"f\"] must be a string (the file's text), got a number");
    assert_eq!(opt_bool(&o, "b").unwrap_err().message, "b must be true or false, got a string");
    let ok = obj(json!({ "m": { "b.js": "x", "a.js": "y" }, "a": ["npm test"] }));
    assert_eq!(opt_string_map(&ok, "m", 10).unwrap().len(), 2);
    assert_eq!(opt_strings(&ok, "a", 10).unwrap(), ["npm test"]);
  }
}
