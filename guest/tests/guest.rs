//! End-to-end tests of the guest binary, driven over pipes like the addon drives it. They run it
//! as a plain child and look at its processes in this machine's /proc.
mod harness;

use std::collections::HashSet;
use std::time::Duration;

use harness::{spawn_req, Exec, Guest, Opts, Reply, Request};

fn bin() -> &'static str {
  env!("CARGO_BIN_EXE_agentic-sandbox-guest")
}

fn plain() -> Guest {
  Guest::start(bin(), Opts::default())
}

fn spawn(argv: &[&str], f: impl FnOnce(&mut Request)) -> Request {
  let mut r = spawn_req(argv);
  f(&mut r);
  r
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
  {
    let mut g = Guest::start(bin(), Opts { drop_caps: true, ..Default::default() });
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
    assert_eq!(e.out(), "child-fd\n", "{}", String::from_utf8_lossy(&e.stderr));
  }
}
