//! End-to-end tests of the guest binary, driven over pipes like the addon drives it.
//!
//! Tests of PID 1 mode run it as PID 1 of a new PID namespace (`unshare --pid --fork
//! --mount-proc`, so they need root); the others run it as a plain child and look at its
//! processes in this machine's /proc.
mod harness;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::{spawn_req, Exec, Guest, Opts, PidsCgroup, Reply, Request};

fn bin() -> &'static str {
  env!("CARGO_BIN_EXE_agentic-sandbox-guest")
}

fn plain() -> Guest {
  Guest::start(bin(), Opts::default())
}

fn pid1() -> Guest {
  let g = Guest::start(bin(), Opts { pid1: true, ..Default::default() });
  assert_eq!(g.pid, 1);
  g
}

fn pids(e: &Exec) -> Vec<u32> {
  e.out().split_whitespace().map(|p| p.parse().unwrap()).collect()
}

fn spawn(argv: &[&str], f: impl FnOnce(&mut Request)) -> Request {
  let mut r = spawn_req(argv);
  f(&mut r);
  r
}

fn set_background(r: &mut Request) {
  if let Request::Spawn { background, .. } = r {
    *background = true;
  }
}

fn exit_of(e: &Exec) -> (i32, Option<String>, bool) {
  match &e.exit {
    Reply::Exit { code, signal, timed_out, .. } => (*code, signal.clone(), *timed_out),
    other => panic!("not an exit: {other:?}"),
  }
}

fn fds(pid: u32) -> Vec<(String, String)> {
  let mut v: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
    .unwrap()
    .flatten()
    .map(|d| (d.file_name().to_string_lossy().into_owned(), std::fs::read_link(d.path()).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()))
    .collect();
  v.sort();
  v
}

// ------------------------------------------------------------------ 1. the channel

#[test]
fn commands_hold_only_their_own_stdio() {
  let mut g = plain();
  let channel: HashSet<String> = fds(g.pid).into_iter().filter(|(n, _)| n == "0" || n == "1").map(|(_, l)| l).collect();
  assert_eq!(channel.len(), 2, "the guest's stdin and stdout are two pipes");
  for background in [false, true] {
    for stdin in [false, true] {
      let id = g.send(&spawn(&["sleep", "30"], |r| {
        if let Request::Spawn { background: b, stdin: s, .. } = r {
          *b = background;
          *s = stdin;
        }
      }));
      let pid = g.started(id);
      let held = fds(pid);
      assert_eq!(held.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["0", "1", "2"], "background {background}: {held:?}");
      assert!(held.iter().all(|(_, l)| !channel.contains(l)), "{held:?} vs {channel:?}");
      g.send(&Request::Signal { target: id, signal: libc::SIGKILL });
      let e = g.finish(id, pid, Duration::from_secs(10));
      assert_eq!(exit_of(&e), (137, Some("SIGKILL".into()), false));
    }
  }
}

#[test]
fn the_guest_cannot_be_opened_from_the_sandbox() {
  // no capabilities, like a sandbox with cap-drop ALL (still root: the same uid as the guest)
  for pid1 in [false, true] {
    let mut g = Guest::start(bin(), Opts { drop_caps: true, pid1, ..Default::default() });
    // (listing /proc/<pid>/fd is allowed to the owner; following its links is what needs
    // ptrace access)
    let e = g.sh(&format!(
      "readlink /proc/{0}/fd/1 >/dev/null 2>&1 && echo guest-fd; cat /proc/{0}/environ >/dev/null 2>&1 && echo guest-environ; \
       (exec 3>/proc/{0}/fd/1) 2>/dev/null && echo guest-stdout; (exec 3</proc/{0}/fd/0) 2>/dev/null && echo guest-stdin; \
       head -c1 /proc/{0}/mem >/dev/null 2>&1 && echo guest-mem; \
       sleep 5 & readlink /proc/$!/fd/1 >/dev/null && echo child-fd; kill $!",
      g.pid
    ));
    // (a dumpable process of the same uid can be opened: the check itself works)
    assert_eq!(e.out(), "child-fd\n", "pid1 {pid1}: {}", String::from_utf8_lossy(&e.stderr));
  }
}

// ------------------------------------------------------------------ 2. PID 1

#[test]
fn pid1_reaps_orphans_and_keeps_exit_statuses() {
  let mut g = pid1();
  // a background command's orphan is reparented to PID 1 and exits a moment later
  let e = g.exec_req(&spawn(&["sh", "-c", "(sleep 0.2; exit 0) & echo $!; exit 7"], set_background));
  assert_eq!(e.code(), 7);
  let orphan = pids(&e)[0];
  std::thread::sleep(Duration::from_millis(500));
  let end = Instant::now() + Duration::from_secs(5);
  loop {
    let e = g.sh(&format!("cat /proc/[0-9]*/stat; test -e /proc/{orphan} && echo orphan-left"));
    let out = e.out();
    let zombies: Vec<&str> = out.lines().filter(|l| l.contains("orphan-left") || l[l.rfind(')').unwrap() + 1..].trim_start().starts_with('Z')).collect();
    if zombies.is_empty() {
      break;
    }
    assert!(Instant::now() < end, "zombies left: {zombies:?}");
    std::thread::sleep(Duration::from_millis(100));
  }
  // many at once, foreground and background: every status reaches its own request
  let ids: Vec<(u32, i32)> = (0..40)
    .map(|i| {
      let code = (i * 7) % 120;
      let script = format!("(sleep 0.05 &) ; exit {code}");
      (g.send(&spawn(&["sh", "-c", &script], |r| if i % 2 == 1 { set_background(r) })), code)
    })
    .collect();
  for (id, code) in ids {
    let pid = g.started(id);
    assert_eq!(g.finish(id, pid, Duration::from_secs(20)).code(), code);
  }
}

#[test]
fn pid1_ignores_signals_from_the_sandbox() {
  let mut g = pid1();
  let e = g.sh("for s in TERM INT HUP QUIT USR1 SEGV BUS STOP KILL; do kill -$s 1 || echo failed $s; done; echo sent");
  assert_eq!(e.out(), "sent\n", "{}", String::from_utf8_lossy(&e.stderr));
  std::thread::sleep(Duration::from_millis(100));
  assert_eq!(g.exec(&["echo", "alive"]).out(), "alive\n");
}

#[test]
fn a_guest_at_the_pids_limit_keeps_answering() {
  let Some(cg) = PidsCgroup::new(16) else {
    eprintln!("skipped: no writable cgroup v1 pids controller here");
    return;
  };
  let mut g = Guest::start(bin(), Opts { pid1: true, cgroup: Some(cg.path.clone()), ..Default::default() });
  // a background command takes every pid that is left (threads need one each)
  let hog = "import os, time\nwhile True:\n  try:\n    if os.fork() == 0:\n      time.sleep(1000)\n  except OSError:\n    break\nprint('full', flush=True)\ntime.sleep(1000)";
  let id = g.send(&spawn(&["python3", "-c", hog], set_background));
  let pid = g.started(id);
  let mut said = Vec::new();
  while !said.ends_with(b"full\n") {
    said.extend(g.next(id, Duration::from_secs(20)).expect("the hog filled the pids").payload);
  }
  // a request that needs a thread fails, the guest lives on
  match g.request(&Request::Stat { path: "/".into() }) {
    Reply::Error { message, .. } => assert!(message.contains("thread"), "{message}"),
    Reply::Stat { .. } => {} // a pid came free meanwhile
    other => panic!("{other:?}"),
  }
  let e = g.exec(&["echo", "no room"]);
  assert_eq!(e.code(), 126, "{:?}", String::from_utf8_lossy(&e.stderr));
  g.send(&Request::Signal { target: id, signal: libc::SIGKILL });
  assert_eq!(exit_of(&g.finish(id, pid, Duration::from_secs(10))).0, 137);
  assert!(matches!(g.request(&Request::Stat { path: "/".into() }), Reply::Stat { .. }));
  assert_eq!(g.exec(&["echo", "room again"]).out(), "room again\n");
}
