//! Reading one cell's end out of an interpreter's output streams: the end-of-cell marker (found
//! across chunk boundaries) and the result line after it, each capped. Pure byte handling, no I/O.

/// Finds `marker` in a stream fed in arbitrary chunks. Bytes before it are the user's output;
/// bytes after it are handed back separately.
#[derive(Debug)]
pub struct MarkerScan {
  marker: Vec<u8>,
  /// a tail of the last chunk that may be the start of the marker
  pending: Vec<u8>,
  pub found: bool,
}

/// What one chunk held: the user's bytes, and (once the marker passed) the bytes after it.
#[derive(Debug, Default, PartialEq)]
pub struct Scanned {
  pub user: Vec<u8>,
  pub after: Option<Vec<u8>>,
}

impl MarkerScan {
  pub fn new(marker: &[u8]) -> Self {
    assert!(!marker.is_empty());
    Self { marker: marker.to_vec(), pending: Vec::new(), found: false }
  }

  pub fn feed(&mut self, chunk: &[u8]) -> Scanned {
    if self.found {
      return Scanned { user: Vec::new(), after: Some(chunk.to_vec()) };
    }
    let mut buf = std::mem::take(&mut self.pending);
    buf.extend_from_slice(chunk);
    if let Some(i) = find(&buf, &self.marker) {
      self.found = true;
      let after = buf[i + self.marker.len()..].to_vec();
      buf.truncate(i);
      return Scanned { user: buf, after: Some(after) };
    }
    // keep the longest tail that is a proper prefix of the marker
    let max = (self.marker.len() - 1).min(buf.len());
    let keep = (1..=max).rev().find(|&k| buf[buf.len() - k..] == self.marker[..k]).unwrap_or(0);
    self.pending = buf.split_off(buf.len() - keep);
    Scanned { user: buf, after: None }
  }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
  let first = needle[0];
  let mut from = 0;
  while let Some(p) = hay[from..].iter().position(|&b| b == first) {
    let i = from + p;
    if hay.len() - i < needle.len() {
      return None;
    }
    if &hay[i..i + needle.len()] == needle {
      return Some(i);
    }
    from = i + 1;
  }
  None
}

/// The result line after the marker: kept up to `cap` bytes; the line ends at the first `\n`.
#[derive(Debug)]
pub struct ResultLine {
  pub buf: Vec<u8>,
  cap: usize,
  /// the line was longer than `cap` (what is kept is not the whole line)
  pub over: bool,
  pub done: bool,
}

impl ResultLine {
  pub fn new(cap: usize) -> Self {
    Self { buf: Vec::new(), cap, over: false, done: false }
  }

  pub fn feed(&mut self, bytes: &[u8]) {
    if self.done {
      return;
    }
    let (part, end) = match bytes.iter().position(|&b| b == b'\n') {
      Some(i) => (&bytes[..i], true),
      None => (bytes, false),
    };
    let room = self.cap.saturating_sub(self.buf.len()).min(part.len());
    self.buf.extend_from_slice(&part[..room]);
    if room < part.len() {
      self.over = true;
    }
    self.done = end;
  }
}

/// One stream's output of a cell, up to `cap` bytes (the rest counted).
#[derive(Debug)]
pub struct Kept {
  pub data: Vec<u8>,
  cap: usize,
  pub dropped: u64,
}

impl Kept {
  pub fn new(cap: usize) -> Self {
    Self { data: Vec::new(), cap, dropped: 0 }
  }

  /// Keeps what fits and returns it (the part a streaming callback may see).
  pub fn push<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
    let room = self.cap.saturating_sub(self.data.len()).min(bytes.len());
    self.data.extend_from_slice(&bytes[..room]);
    self.dropped += (bytes.len() - room) as u64;
    &bytes[..room]
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const M: &[u8] = b"\x1eabc123\x1e";

  fn feed_all(chunks: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut s = MarkerScan::new(M);
    let (mut user, mut after) = (Vec::new(), None::<Vec<u8>>);
    for c in chunks {
      let r = s.feed(c);
      user.extend(r.user);
      if let Some(a) = r.after {
        after.get_or_insert_with(Vec::new).extend(a);
      }
    }
    (user, after)
  }

  #[test]
  fn finds_the_marker_in_one_chunk() {
    let (u, a) = feed_all(&[b"hello\n\x1eabc123\x1e{\"x\":1}\n"]);
    assert_eq!(u, b"hello\n");
    assert_eq!(a.unwrap(), b"{\"x\":1}\n");
  }

  #[test]
  fn finds_the_marker_split_at_every_position() {
    let whole = b"out\x1e\x1eab\x1eabc123\x1eafter".to_vec();
    for cut in 0..whole.len() {
      for cut2 in cut..whole.len() {
        let (u, a) = feed_all(&[&whole[..cut], &whole[cut..cut2], &whole[cut2..]]);
        assert_eq!(u, b"out\x1e\x1eab", "cuts {cut} {cut2}");
        assert_eq!(a.unwrap(), b"after");
      }
    }
  }

  #[test]
  fn a_forged_marker_with_another_nonce_is_user_output() {
    let (u, a) = feed_all(&[b"\x1eabc124\x1e", b"\x1eabc12", b"x"]);
    assert_eq!(u, b"\x1eabc124\x1e\x1eabc12x");
    assert!(a.is_none());
  }

  #[test]
  fn holds_back_no_more_than_a_marker_prefix() {
    let mut s = MarkerScan::new(M);
    let r = s.feed(b"data\x1eab");
    assert_eq!(r.user, b"data");
    let r = s.feed(b"zz");
    assert_eq!(r.user, b"\x1eabzz");
  }

  #[test]
  fn result_line_is_capped_and_ends_at_newline() {
    let mut l = ResultLine::new(4);
    l.feed(b"{\"a\"");
    assert!(!l.done && !l.over);
    l.feed(b":1}\nrest");
    assert!(l.done && l.over);
    assert_eq!(l.buf, b"{\"a\"");
    l.feed(b"more\n");
    assert_eq!(l.buf, b"{\"a\"");
  }

  #[test]
  fn kept_caps_and_counts() {
    let mut k = Kept::new(3);
    assert_eq!(k.push(b"ab"), b"ab");
    assert_eq!(k.push(b"cde"), b"c");
    assert_eq!(k.dropped, 2);
    assert_eq!(k.data, b"abc");
  }
}
