//! `GuestConn` against an in-memory fake guest: a stream of `LogOutput` frames the test writes,
//! and a duplex pipe for the input the host sends. No Docker; deadlines run on a paused clock.

use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, DuplexStream};

use super::*;
use crate::providers::docker::protocol::MAX_FRAME;

type Item = std::result::Result<LogOutput, bollard::errors::Error>;

/// The guest's side: what it writes reaches the host's reader; what the host writes arrives on `input`.
struct FakeGuest {
  out: mpsc::Sender<Item>,
  input: DuplexStream,
  dec: Decoder,
}

impl FakeGuest {
  /// Bytes on the guest's stdout (ignored once the host stopped reading).
  async fn raw(&self, bytes: Vec<u8>) {
    let _ = self.out.send(Ok(LogOutput::StdOut { message: Bytes::from(bytes) })).await;
  }

  async fn frame(&self, kind: Kind, id: u32, payload: &[u8]) {
    self.raw(encode(kind, id, payload)).await;
  }

  async fn reply(&self, id: u32, r: &Reply) {
    self.raw(encode_json(Kind::Reply, id, r)).await;
  }

  async fn next_frame(&mut self) -> Frame {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
      if let Some(f) = self.dec.next_frame().expect("the host sends well-formed frames") {
        return f;
      }
      let n = self.input.read(&mut buf).await.expect("input readable");
      assert!(n > 0, "the host closed its input");
      self.dec.push(&buf[..n]);
    }
  }

  async fn next_request(&mut self) -> (u32, Request) {
    loop {
      let f = self.next_frame().await;
      if f.kind == Kind::Request {
        return (f.id, serde_json::from_slice(&f.payload).expect("a request"));
      }
    }
  }
}

/// A connection to a fake guest that has said hello; `input_capacity` is the pipe's buffer.
async fn connect_with(input_capacity: usize) -> (Arc<GuestConn>, FakeGuest) {
  let (out, out_rx) = mpsc::channel::<Item>(4);
  let (host_in, guest_in) = tokio::io::duplex(input_capacity);
  let guest = FakeGuest { out, input: guest_in, dec: Decoder::default() };
  guest.reply(0, &Reply::Hello { version: VERSION, pid: 7, uid: 0, gid: 0 }).await;
  let stream = futures_util::stream::unfold(out_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
  let conn = GuestConn::connect(Box::pin(stream), Box::pin(host_in), "test".into()).await.expect("handshake");
  (conn, guest)
}

async fn connect() -> (Arc<GuestConn>, FakeGuest) {
  connect_with(1 << 20).await
}

fn entry(i: usize) -> Entry {
  Entry { path: format!("f{i}"), kind: "file".into(), size: 0, mtime_ms: 0.0, mode: 0o644 }
}

fn exit_reply(code: i32) -> Reply {
  Reply::Exit { code, signal: None, timed_out: false, stdout_dropped: 0, stderr_dropped: 0, max_rss_kb: None }
}

fn stat_req() -> Request {
  Request::Stat { path: "/w".into() }
}

async fn spawn(conn: &Arc<GuestConn>, timeout: Option<Duration>, max_output: usize, background: bool, sink: Option<OutputSink>) -> Result<Spawned> {
  conn.spawn(vec!["cmd".into()], vec![], "/w".into(), timeout, max_output, background, false, sink, false).await
}

fn assert_dead_with(e: &SandboxError, code: ErrorCode, needle: &str) {
  assert_eq!(e.code, code, "{e}");
  assert!(e.message.contains(needle), "{needle:?} not in {e}");
}

#[tokio::test]
async fn a_flood_of_stdout_keeps_max_output_and_reports_truncated() {
  let (conn, mut guest) = connect().await;
  let seen = Arc::new(AtomicUsize::new(0));
  let sink: OutputSink = {
    let seen = seen.clone();
    Arc::new(move |_, d: &[u8]| {
      seen.fetch_add(d.len(), Ordering::Relaxed);
    })
  };
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { spawn(&conn, Some(Duration::from_secs(60)), 1024, false, Some(sink)).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Started { pid: 42 }).await;
  // 32 MiB of stdout and 8 MiB of stderr, while the guest claims it dropped nothing
  let chunk = vec![b'x'; CHUNK];
  for i in 0..640 {
    guest.frame(if i % 5 == 4 { Kind::Stderr } else { Kind::Stdout }, id, &chunk).await;
  }
  guest.reply(id, &exit_reply(0)).await;
  let out = spawning.await.unwrap().unwrap().wait().await.unwrap();
  assert_eq!((out.stdout.len(), out.stderr.len()), (1024, 1024));
  assert!(out.truncated);
  assert_eq!(seen.load(Ordering::Relaxed), 2048, "the sink saw more than the result keeps");
  assert!(conn.dead().is_none());
  assert_eq!(conn.shared.budget.available_permits(), CONN_BUFFER_BYTES, "every queued byte was handed out");
}

#[tokio::test]
async fn a_stream_only_spawn_asks_for_no_cap_keeps_nothing_and_streams_everything() {
  let (conn, mut guest) = connect().await;
  let seen = Arc::new(AtomicUsize::new(0));
  let sink: OutputSink = {
    let seen = seen.clone();
    Arc::new(move |_, d: &[u8]| {
      seen.fetch_add(d.len(), Ordering::Relaxed);
    })
  };
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { conn.spawn(vec!["cmd".into()], vec![], "/w".into(), None, 1024, true, true, Some(sink), true).await }
  });
  let (id, req) = guest.next_request().await;
  assert!(matches!(req, Request::Spawn { max_output: u64::MAX, .. }), "{req:?}");
  guest.reply(id, &Reply::Started { pid: 42 }).await;
  let chunk = vec![b'x'; CHUNK];
  for i in 0..64 {
    guest.frame(if i % 2 == 0 { Kind::Stdout } else { Kind::Stderr }, id, &chunk).await;
  }
  guest.reply(id, &exit_reply(0)).await;
  let out = spawning.await.unwrap().unwrap().wait().await.unwrap();
  assert!(out.stdout.is_empty() && out.stderr.is_empty() && !out.truncated);
  assert_eq!(seen.load(Ordering::Relaxed), 64 * CHUNK);
  assert!(conn.dead().is_none());
}

/// A caller that does not keep up stops the reader, which stops reading the guest: the host
/// holds at most its budget, however much the guest has to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_caller_pushes_back_on_the_guest() {
  let (conn, mut guest) = connect().await;
  let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
  let release_rx = Mutex::new(release_rx);
  let sink: OutputSink = Arc::new(move |_, _: &[u8]| {
    // the first chunk blocks the caller until the test releases it
    let _ = release_rx.lock().unwrap().recv();
  });
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { spawn(&conn, None, 1 << 30, true, Some(sink)).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Started { pid: 42 }).await;
  let spawned = spawning.await.unwrap().unwrap();
  let accepted = Arc::new(AtomicUsize::new(0));
  let flood = tokio::spawn({
    let (out, accepted) = (guest.out.clone(), accepted.clone());
    async move {
      for _ in 0..1000 {
        let frame = encode(Kind::Stdout, id, &vec![b'y'; CHUNK]);
        if out.send(Ok(LogOutput::StdOut { message: Bytes::from(frame) })).await.is_err() {
          return;
        }
        accepted.fetch_add(1, Ordering::Relaxed);
      }
    }
  });
  tokio::time::sleep(Duration::from_millis(500)).await;
  let held = accepted.load(Ordering::Relaxed);
  // queued events (budget), the one in the blocked sink, the one the reader holds, the stream's 4
  assert!(held * CHUNK <= CONN_BUFFER_BYTES + 8 * CHUNK, "the host took {held} chunks without its caller");
  assert!(held < 1000);
  for _ in 0..1000 {
    let _ = release_tx.send(());
  }
  flood.await.unwrap();
  guest.reply(id, &exit_reply(0)).await;
  let out = spawned.wait().await.unwrap();
  assert_eq!(out.stdout.len(), 1000 * CHUNK);
  assert!(!out.truncated);
}

#[tokio::test]
async fn an_oversized_data_frame_fails_the_connection_and_every_pending_call() {
  let (conn, mut guest) = connect().await;
  let read = tokio::spawn({
    let conn = conn.clone();
    async move { conn.read_file("/w/big", 1 << 30).await }
  });
  let (read_id, _) = guest.next_request().await;
  let stat = tokio::spawn({
    let conn = conn.clone();
    async move { conn.request(stat_req()).await }
  });
  let _ = guest.next_request().await;
  guest.frame(Kind::Data, read_id, &vec![0; MAX_DATA_FRAME + 1]).await;
  let e = read.await.unwrap().unwrap_err();
  assert_dead_with(&e, ErrorCode::ProviderError, "broke the protocol");
  assert_dead_with(&e, ErrorCode::ProviderError, "Data frame of");
  assert_dead_with(&stat.await.unwrap().unwrap_err(), ErrorCode::ProviderError, "broke the protocol");
  assert!(conn.dead().is_some());
  assert!(conn.shared.pending().is_empty());
  let again = conn.request(stat_req()).await.unwrap_err();
  assert_dead_with(&again, ErrorCode::ProviderError, "broke the protocol");
}

#[tokio::test(start_paused = true)]
async fn a_silent_guest_fails_a_request_by_its_deadline_and_later_calls_at_once() {
  let (conn, mut guest) = connect().await;
  let asked = tokio::spawn(async move {
    let _ = guest.next_request().await;
    guest // keep the guest's side open, answering nothing
  });
  let t0 = Instant::now();
  let e = conn.request(stat_req()).await.unwrap_err();
  assert_dead_with(&e, ErrorCode::ProviderError, "did not answer stat /w within 30 s");
  assert!(e.message.contains("restart or destroy"), "{e}");
  assert_eq!(t0.elapsed().as_secs(), CONTROL_DEADLINE.as_secs());
  let _guest = asked.await.unwrap();
  let t1 = Instant::now();
  let again = conn.request(Request::Processes).await.unwrap_err();
  assert_dead_with(&again, ErrorCode::ProviderError, "did not answer stat /w");
  assert_eq!(t1.elapsed(), Duration::ZERO);
  assert!(conn.dead().unwrap().contains("did not answer"));
}

#[tokio::test(start_paused = true)]
async fn a_guest_that_never_reads_its_input_fails_write_file_by_the_deadline() {
  // a 4 KiB pipe nobody reads: the writer blocks on the first data frame
  let (conn, _guest) = connect_with(4096).await;
  let t0 = Instant::now();
  let e = conn.write_file("/w/big", &vec![1u8; 32 << 20]).await.unwrap_err();
  assert_dead_with(&e, ErrorCode::ProviderError, "did not answer");
  assert!(t0.elapsed() <= SEND_DEADLINE, "took {:?}", t0.elapsed());
  assert!(conn.dead().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_frozen_guest_fails_a_spawn_after_its_timeout_and_grace() {
  let (conn, mut guest) = connect().await;
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { spawn(&conn, Some(Duration::from_secs(10)), 1024, false, None).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Started { pid: 42 }).await;
  let t0 = Instant::now();
  let spawned = spawning.await.unwrap().unwrap();
  let e = spawned.wait().await.unwrap_err();
  assert_dead_with(&e, ErrorCode::ProviderError, "did not answer the end of cmd");
  assert!(t0.elapsed() <= Duration::from_secs(10) + SPAWN_EXIT_GRACE);
}

#[tokio::test(start_paused = true)]
async fn a_spawn_that_never_starts_fails_by_its_start_deadline() {
  let (conn, mut guest) = connect().await;
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { spawn(&conn, None, 1024, true, None).await }
  });
  let _ = guest.next_request().await;
  let e = spawning.await.unwrap().err().expect("no Started");
  assert_dead_with(&e, ErrorCode::ProviderError, "did not answer the start of cmd within 15 s");
}

#[tokio::test(start_paused = true)]
async fn a_background_spawn_without_timeout_has_no_deadline() {
  let (conn, mut guest) = connect().await;
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { spawn(&conn, None, 1024, true, None).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Started { pid: 42 }).await;
  let spawned = spawning.await.unwrap().unwrap();
  tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
  assert!(!spawned.is_done());
  assert!(conn.dead().is_none());
  guest.frame(Kind::Stdout, id, b"late").await;
  guest.reply(id, &exit_reply(3)).await;
  let out = spawned.wait().await.unwrap();
  assert_eq!((out.exit_code, out.stdout.as_slice()), (3, &b"late"[..]));
}

#[tokio::test]
async fn a_dead_connection_ends_the_spawn_and_its_stdin() {
  let (conn, mut guest) = connect().await;
  let spawning = tokio::spawn({
    let conn = conn.clone();
    async move { spawn(&conn, None, 1024, true, None).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Started { pid: 42 }).await;
  let spawned = spawning.await.unwrap().unwrap();
  spawned.stdin(b"hi".to_vec()).unwrap();
  let f = guest.next_frame().await;
  assert_eq!((f.kind, f.id, f.payload.as_slice()), (Kind::Stdin, id, &b"hi"[..]));
  conn.declare_dead("the test gave up on it");
  let e = spawned.wait().await.unwrap_err();
  assert_dead_with(&e, ErrorCode::ProviderError, "the test gave up on it");
  // the forwarder ends with the process: stdin is refused, not queued forever
  for _ in 0..100 {
    if spawned.stdin(b"more".to_vec()).is_err() {
      return;
    }
    tokio::task::yield_now().await;
  }
  panic!("stdin still accepted after the connection died");
}

#[tokio::test]
async fn the_end_of_the_stream_still_means_sandbox_not_running() {
  let (conn, mut guest) = connect().await;
  let stat = tokio::spawn({
    let conn = conn.clone();
    async move { conn.request(stat_req()).await }
  });
  let _ = guest.next_request().await;
  drop(guest);
  let e = stat.await.unwrap().unwrap_err();
  assert_dead_with(&e, ErrorCode::SandboxNotRunning, "guest daemon exited");
}

#[tokio::test]
async fn frames_for_unknown_ids_are_dropped() {
  let (conn, mut guest) = connect().await;
  for id in [0, 4242, u32::MAX] {
    guest.frame(Kind::Stdout, id, b"forged").await;
    guest.frame(Kind::Data, id, b"forged").await;
    guest.reply(id, &Reply::Started { pid: 1 }).await;
    guest.reply(id, &exit_reply(0)).await;
    guest.reply(id, &Reply::Entries { entries: vec![entry(0)] }).await;
  }
  let stat = tokio::spawn({
    let conn = conn.clone();
    async move { conn.request(stat_req()).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Stat { entry: entry(1) }).await;
  assert_eq!(stat.await.unwrap().unwrap(), Reply::Stat { entry: entry(1) });
  assert!(conn.dead().is_none());
  assert!(conn.shared.pending().is_empty());
}

#[tokio::test]
async fn a_caller_that_gives_up_is_forgotten() {
  let (conn, mut guest) = connect().await;
  let gave_up = tokio::time::timeout(Duration::from_millis(50), conn.read_file("/w/f", 100)).await;
  assert!(gave_up.is_err());
  assert!(conn.shared.pending().is_empty());
  let (id, _) = guest.next_request().await;
  guest.frame(Kind::Data, id, b"late").await;
  guest.reply(id, &Reply::Read { size: 4 }).await;
  let stat = tokio::spawn({
    let conn = conn.clone();
    async move { conn.request(stat_req()).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Ok).await;
  // Ok does not answer a stat: proves the reader is still checking, and still alive
  assert_dead_with(&stat.await.unwrap().unwrap_err(), ErrorCode::ProviderError, "answered a stat request with Ok");
}

#[tokio::test]
async fn listing_chunks_accumulate_and_the_count_is_capped() {
  let (conn, mut guest) = connect().await;
  let listing = tokio::spawn({
    let conn = conn.clone();
    async move { conn.list("/w", true, false, 5).await }
  });
  let (id, req) = guest.next_request().await;
  assert_eq!(req, Request::List { path: "/w".into(), recursive: true, all: false, max_entries: Some(5) });
  guest.reply(id, &Reply::Entries { entries: vec![entry(0), entry(1)] }).await;
  guest.reply(id, &Reply::Entries { entries: vec![entry(2), entry(3)] }).await;
  guest.reply(id, &Reply::List { entries: vec![entry(4)], truncated: true }).await;
  let (entries, truncated) = listing.await.unwrap().unwrap();
  assert_eq!(entries, (0..5).map(entry).collect::<Vec<_>>());
  assert!(truncated);

  let listing = tokio::spawn({
    let conn = conn.clone();
    async move { conn.list("/w", false, false, 3).await }
  });
  let (id, _) = guest.next_request().await;
  guest.reply(id, &Reply::Entries { entries: vec![entry(0), entry(1)] }).await;
  guest.reply(id, &Reply::Entries { entries: vec![entry(2), entry(3)] }).await;
  let e = listing.await.unwrap().unwrap_err();
  assert_dead_with(&e, ErrorCode::ProviderError, "more than the 3 entries asked for");
}

#[test]
fn a_listing_beyond_its_byte_cap_is_cut_not_grown() {
  let (tx, _rx) = mpsc::channel(1);
  let mut pending = HashMap::new();
  let req = Request::List { path: "/w".into(), recursive: true, all: true, max_entries: Some(10) };
  pending.insert(1, Slot { tx, op: Op::of(&req) });
  let entries = |n: usize| Reply::Entries { entries: (0..n).map(entry).collect() };
  let frame = |r: &Reply| Frame { kind: Kind::Reply, id: 1, payload: serde_json::to_vec(r).unwrap() };
  assert!(matches!(route(frame(&entries(2)), &mut pending), Route::Deliver { ev: Event::Entries(e), .. } if e.len() == 2));
  // pretend the listing already brought its whole byte budget
  if let Some(Slot { op: Op::List { bytes, .. }, .. }) = pending.get_mut(&1) {
    *bytes = MAX_LIST_BYTES;
  }
  assert!(matches!(route(frame(&entries(2)), &mut pending), Route::Drop));
  let last = route(frame(&Reply::List { entries: vec![entry(9)], truncated: false }), &mut pending);
  assert!(matches!(last, Route::Deliver { ev: Event::Reply(Reply::List { ref entries, truncated: true }), .. } if entries.is_empty()));
  assert!(pending.is_empty(), "the final reply forgets the request");
}

fn json(id: u32, r: Reply) -> Vec<u8> {
  encode_json(Kind::Reply, id, &r)
}

/// What a test call does, to be interrupted by a frame that does not fit it.
#[derive(Clone, Copy, Debug)]
enum TestCall {
  Stat,
  Read,
  Spawn,
  List,
}

async fn run_call(conn: Arc<GuestConn>, call: TestCall) -> Result<()> {
  match call {
    TestCall::Stat => conn.request(stat_req()).await.map(drop),
    TestCall::Read => conn.read_file("/w/f", 100).await.map(drop),
    TestCall::Spawn => spawn(&conn, Some(Duration::from_secs(60)), 1024, false, None).await?.wait().await.map(drop),
    TestCall::List => conn.list("/w", false, false, 10).await.map(drop),
  }
}

#[tokio::test]
async fn out_of_sequence_and_malformed_frames_fail_the_connection() {
  type Bad = fn(u32) -> Vec<Vec<u8>>;
  let cases: Vec<(TestCall, Bad, &str)> = vec![
    (TestCall::Spawn, |id| vec![encode(Kind::Data, id, b"x")], "Data frame for a spawn"),
    (TestCall::Spawn, |id| vec![json(id, Reply::Started { pid: 9 }), json(id, Reply::Started { pid: 9 })], "second Started"),
    (TestCall::Spawn, |id| vec![json(id, Reply::Read { size: 0 })], "answered a spawn request with Read"),
    (TestCall::Read, |id| vec![encode(Kind::Stdout, id, b"x")], "Stdout frame for a readFile"),
    (TestCall::Read, |id| vec![encode(Kind::Data, id, &[0; 101])], "more than the 100 bytes"),
    (TestCall::Read, |id| vec![encode(Kind::Data, id, b"abc"), json(id, Reply::Read { size: 2 })], "sent 2 bytes after sending 3"),
    (TestCall::Stat, |id| vec![json(id, Reply::Entries { entries: vec![] })], "answered a stat request with Entries"),
    (TestCall::Stat, |id| vec![json(id, Reply::Started { pid: 1 })], "answered a stat request with Started"),
    (TestCall::List, |id| vec![encode(Kind::Stderr, id, b"x")], "Stderr frame for a list"),
    (TestCall::Stat, |_| vec![json(0, Reply::Hello { version: VERSION, pid: 1, uid: 0, gid: 0 })], "second handshake"),
    (TestCall::Stat, |id| vec![encode_json(Kind::Request, id, &Request::KillAll)], "Request frame, which only the addon sends"),
    (TestCall::Stat, |id| vec![encode(Kind::Stdin, id, b"x")], "Stdin frame, which only the addon sends"),
    (TestCall::Stat, |id| vec![encode(Kind::StdinClose, id, b"")], "StdinClose frame"),
    (TestCall::Stat, |id| vec![encode(Kind::Reply, id, b"{not json")], "does not parse"),
    (TestCall::Stat, |id| vec![encode(Kind::Reply, id, br#"{"type":"teapot"}"#)], "does not parse"),
    (TestCall::Stat, |_| vec![vec![5, 0, 0, 0, 99, 0, 0, 0, 0]], "unknown frame kind 99"),
    (TestCall::Stat, |_| vec![((MAX_FRAME + 1) as u32).to_le_bytes().to_vec()], "bad frame length"),
    (TestCall::Stat, |_| vec![vec![0, 0, 0, 0]], "bad frame length 0"),
  ];
  for (call, bad, needle) in cases {
    let (conn, mut guest) = connect().await;
    let running = tokio::spawn(run_call(conn.clone(), call));
    let (id, _) = guest.next_request().await;
    if matches!(call, TestCall::Spawn) && !needle.contains("Started") {
      guest.raw(json(id, Reply::Started { pid: 9 })).await;
    }
    for bytes in bad(id) {
      guest.raw(bytes).await;
    }
    let e = running.await.unwrap().expect_err(needle);
    assert_dead_with(&e, ErrorCode::ProviderError, needle);
    assert_dead_with(&e, ErrorCode::ProviderError, "broke the protocol");
    assert!(conn.dead().is_some(), "{needle}");
    assert!(conn.shared.pending().is_empty(), "{needle}");
  }
}

#[tokio::test]
async fn a_first_frame_that_is_not_hello_fails_the_handshake() {
  let (out, out_rx) = mpsc::channel::<Item>(4);
  let (host_in, _guest_in) = tokio::io::duplex(1024);
  let _ = out.send(Ok(LogOutput::StdOut { message: Bytes::from(encode(Kind::Stdout, 0, b"hi")) })).await;
  let stream = futures_util::stream::unfold(out_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
  let e = GuestConn::connect(Box::pin(stream), Box::pin(host_in), "test".into()).await.err().expect("refused");
  assert!(e.message.contains("not its handshake"), "{e}");
}

#[tokio::test]
async fn text_instead_of_a_handshake_is_quoted() {
  let (out, out_rx) = mpsc::channel::<Item>(4);
  let (host_in, _guest_in) = tokio::io::duplex(1024);
  let text = "OCI runtime exec failed: no such file or directory\n";
  let _ = out.send(Ok(LogOutput::StdOut { message: Bytes::from(text) })).await;
  let stream = futures_util::stream::unfold(out_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
  let e = GuestConn::connect(Box::pin(stream), Box::pin(host_in), "test".into()).await.err().expect("refused");
  assert!(e.message.contains("did not start") && e.message.contains("OCI runtime exec failed: no such file"), "{e}");
}

#[tokio::test]
async fn request_refuses_the_streaming_requests() {
  let (conn, _guest) = connect().await;
  let e = conn.request(Request::ReadFile { path: "/w/f".into(), max_bytes: 1 }).await.unwrap_err();
  assert_eq!(e.code, ErrorCode::InvalidArgument);
  assert!(conn.dead().is_none());
}

#[tokio::test]
async fn a_spawn_with_an_impossible_path_is_refused_before_sending() {
  let (conn, _guest) = connect().await;
  let e = conn.spawn(vec!["x".repeat(MAX_SPAWN_PATH + 1)], vec![], "/w".into(), None, 1, true, false, None, false).await.err().unwrap();
  assert_eq!(e.code, ErrorCode::InvalidArgument);
}

#[test]
fn transfer_time_is_bytes_at_the_slow_rate() {
  assert_eq!(transfer_time(0), Duration::ZERO);
  assert_eq!(transfer_time(SLOW_RATE_BYTES_PER_SEC * 3), Duration::from_secs(3));
  assert_eq!(transfer_time(SLOW_RATE_BYTES_PER_SEC / 2), Duration::from_millis(500));
  // no overflow at the extremes
  let _ = transfer_time(u64::MAX);
}
