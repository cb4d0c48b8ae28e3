//! End-to-end tests of the guest binary, driven over pipes like the addon drives it.
//!
//! Tests that let the guest kill "every process of the sandbox" (KillAll) or that run fork bombs
//! run it as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`, so they need
//! root), fork bombs also under a cgroup pids limit; the others run it as a plain child and look
//! at its processes in this machine's /proc.
mod harness;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::{spawn_req, Entry, Exec, Guest, Kind, Opts, PidsCgroup, Reply, Request};

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

/// A process of this machine that exists and is not a zombie.
fn alive(pid: u32) -> bool {
  match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
    Ok(s) => !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
    Err(_) => false,
  }
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

fn set_timeout(ms: Option<u64>) -> impl FnOnce(&mut Request) {
  move |r| {
    if let Request::Spawn { timeout_ms, .. } = r {
      *timeout_ms = ms;
    }
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

fn kill(pid: u32) {
  unsafe {
    libc::kill(pid as i32, libc::SIGKILL);
  }
}

// ------------------------------------------------------------------ 1. the channel

#[test]
fn commands_and_shims_hold_only_their_own_stdio() {
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
      // (sleep opens its locale files while it starts: wait for that; an inherited fd stays)
      let end = Instant::now() + Duration::from_secs(2);
      let mut held = fds(pid);
      while held.len() > 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
        held = fds(pid);
      }
      assert_eq!(held.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["0", "1", "2"], "background {background}: {held:?}");
      assert!(held.iter().all(|(_, l)| !channel.contains(l)), "{held:?} vs {channel:?}");
      if !background {
        // its shim: /dev/null as 0, 1, 2 and the socket to the guest, nothing of the channel
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let shim: u32 = stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().parse().unwrap();
        assert_ne!(shim, g.pid);
        let cmdline = std::fs::read(format!("/proc/{shim}/cmdline")).unwrap();
        assert!(String::from_utf8_lossy(&cmdline).contains("--shim"));
        let held = fds(shim);
        assert_eq!(held.len(), 4, "{held:?}");
        assert!(held.iter().all(|(_, l)| !channel.contains(l)), "{held:?} vs {channel:?}");
      }
      g.send(&Request::Signal { target: id, signal: libc::SIGKILL });
      let e = g.finish(id, pid, Duration::from_secs(10));
      assert_eq!(exit_of(&e), (137, Some("SIGKILL".into()), false));
    }
  }
}

#[test]
fn guest_and_shims_cannot_be_opened_from_the_sandbox() {
  // no capabilities, like a sandbox with cap-drop ALL (still root: the same uid as the guest)
  for pid1 in [false, true] {
    let mut g = Guest::start(bin(), Opts { drop_caps: true, pid1, ..Default::default() });
    // (listing /proc/<pid>/fd is allowed to the owner; following its links is what needs
    // ptrace access)
    let e = g.sh(&format!(
      "readlink /proc/{0}/fd/1 >/dev/null 2>&1 && echo guest-fd; cat /proc/{0}/environ >/dev/null 2>&1 && echo guest-environ; \
       (exec 3>/proc/{0}/fd/1) 2>/dev/null && echo guest-stdout; (exec 3</proc/{0}/fd/0) 2>/dev/null && echo guest-stdin; \
       readlink /proc/$PPID/fd/3 >/dev/null 2>&1 && echo shim-fd; head -c1 /proc/{0}/mem >/dev/null 2>&1 && echo guest-mem; \
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

// ------------------------------------------------------------------ 3. foreground spawns own their tree

const LEAVE_THREE: &str = "setsid sleep 1000 & echo $!; (sleep 1000 & echo $!); ( (sleep 1000 & echo $!) & ); sleep 0.1";

#[test]
fn foreground_leftovers_are_gone_when_exit_arrives() {
  let mut g = plain();
  let t = Instant::now();
  let e = g.sh(LEAVE_THREE);
  assert_eq!(e.code(), 0);
  assert!(t.elapsed() < Duration::from_secs(5));
  let left = pids(&e);
  assert_eq!(left.len(), 3);
  for pid in left {
    assert!(!alive(pid), "{pid} survived its foreground command");
  }
}

#[test]
fn foreground_leftovers_are_gone_as_pid1_too() {
  let mut g = pid1();
  let e = g.sh(LEAVE_THREE);
  assert_eq!(e.code(), 0);
  let left = pids(&e);
  assert_eq!(left.len(), 3);
  let check = left.iter().map(|p| format!("test -e /proc/{p} && echo {p} left;")).collect::<String>();
  assert_eq!(g.sh(&check).out(), "");
}

#[test]
fn background_spawns_keep_what_they_leave() {
  let mut g = plain();
  let e = g.exec_req(&spawn(&["sh", "-c", "setsid sleep 1000 & echo $!"], set_background));
  assert_eq!(e.code(), 0);
  let pid = pids(&e)[0];
  assert!(alive(pid));
  kill(pid);
}

#[test]
fn started_pid_is_the_commands() {
  let mut g = plain();
  let e = g.sh("echo $$");
  assert_eq!(pids(&e), [e.pid]);
  let e = g.exec_req(&spawn(&["sh", "-c", "echo $$"], set_background));
  assert_eq!(pids(&e), [e.pid]);
}

#[test]
fn a_timeout_kills_the_command_and_its_leftovers() {
  let mut g = plain();
  let t = Instant::now();
  let e = g.exec_req(&spawn(&["sh", "-c", "setsid sleep 1000 & echo $!; exec sleep 1000"], set_timeout(Some(300))));
  assert_eq!(exit_of(&e), (124, Some("SIGKILL".into()), true));
  assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
  assert!(!alive(pids(&e)[0]));
}

#[test]
fn a_signal_reaches_the_command_and_its_leftovers_die() {
  let mut g = plain();
  let id = g.send(&spawn_req(&["sh", "-c", "setsid sleep 1000 & echo $!; exec sleep 1000"]));
  let pid = g.started(id);
  let f = g.next(id, Duration::from_secs(5)).unwrap();
  assert_eq!(f.kind, Kind::Stdout);
  let left: u32 = String::from_utf8_lossy(&f.payload).trim().parse().unwrap();
  assert!(alive(left));
  g.send(&Request::Signal { target: id, signal: libc::SIGTERM });
  let e = g.finish(id, pid, Duration::from_secs(5));
  assert_eq!(exit_of(&e), (143, Some("SIGTERM".into()), false));
  assert!(!alive(left));
}

#[test]
fn statuses_output_stdin_and_errors_are_as_before() {
  let mut g = plain();
  assert_eq!(g.sh("exit 5").code(), 5);
  let e = g.sh("kill -TERM $$");
  assert_eq!(exit_of(&e), (143, Some("SIGTERM".into()), false));
  let e = g.sh("exit 0");
  match e.exit {
    Reply::Exit { max_rss_kb: Some(kb), .. } => assert!(kb > 0),
    ref other => panic!("{other:?}"),
  }
  // output cap
  let e = g.exec_req(&spawn(&["sh", "-c", "head -c 100000 /dev/zero"], |r| {
    if let Request::Spawn { max_output, .. } = r {
      *max_output = 1000;
    }
  }));
  assert_eq!(e.stdout.len(), 1000);
  assert!(matches!(e.exit, Reply::Exit { stdout_dropped: 99000, .. }));
  // stdin
  let id = g.send(&spawn(&["cat"], |r| {
    if let Request::Spawn { stdin, .. } = r {
      *stdin = true;
    }
  }));
  let pid = g.started(id);
  g.send_frame(Kind::Stdin, id, b"hello ");
  g.send_frame(Kind::Stdin, id, b"world");
  g.send_frame(Kind::StdinClose, id, b"");
  let e = g.finish(id, pid, Duration::from_secs(5));
  assert_eq!((e.out().as_str(), e.code()), ("hello world", 0));
  // env and cwd
  let e = g.exec_req(&spawn(&["sh", "-c", "echo $FOO; pwd"], |r| {
    if let Request::Spawn { env, cwd, .. } = r {
      *env = vec![("FOO".into(), "bar".into())];
      *cwd = "/tmp".into();
    }
  }));
  assert_eq!(e.out(), "bar\n/tmp\n");
  // a PATH of the command's own is where its program is looked up
  let e = g.exec_req(&spawn(&["sh", "-c", "true"], |r| {
    if let Request::Spawn { env, .. } = r {
      *env = vec![("PATH".into(), "/nonexistent".into())];
    }
  }));
  assert_eq!(e.code(), 127);
  // errors
  let e = g.exec(&["no-such-command-here"]);
  assert_eq!((e.code(), String::from_utf8_lossy(&e.stderr).into_owned()), (127, "no-such-command-here: command not found\n".into()));
  let e = g.exec(&["/etc/passwd"]);
  assert_eq!(e.code(), 126);
  let e = g.exec_req(&spawn(&["true"], |r| {
    if let Request::Spawn { cwd, .. } = r {
      *cwd = "/no/such/dir".into();
    }
  }));
  assert_eq!(e.code(), 126);
  // a big argv travels in a memfd (one argument may have at most 128 KiB)
  let big = "x".repeat(100_000);
  let e = g.exec(&["sh", "-c", "printf %s \"$1\" | wc -c", "sh", &big, &big]);
  assert_eq!(e.out().trim(), "100000");
}

#[test]
fn shims_are_reused_unless_a_command_tainted_them() {
  let mut g = plain();
  let shims: HashSet<u32> = (0..6).map(|_| pids(&g.sh("echo $PPID"))[0]).collect();
  assert!(shims.len() <= 3, "{shims:?}");
  let inherited = "ulimit -n; nice; cat /proc/self/oom_score_adj";
  let untainted = g.sh(inherited).out();
  // a command can change what its shim's next command would inherit (same uid, no ptrace
  // needed): that shim takes no other job
  for taint in ["prlimit --pid $PPID --nofile=64:64", "renice -n 5 -p $PPID >/dev/null", "echo 500 > /proc/$PPID/oom_score_adj"] {
    let e = g.sh(&format!("echo $PPID; {taint}"));
    assert_eq!(e.code(), 0, "{taint}: {}", String::from_utf8_lossy(&e.stderr));
    let tainted = pids(&e)[0];
    let end = Instant::now() + Duration::from_secs(2);
    while alive(tainted) && Instant::now() < end {
      std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(tainted), "{taint}: the shim lives on");
    for _ in 0..3 {
      let out = g.sh(&format!("echo $PPID; {inherited}")).out();
      let (shim, rest) = out.split_once('\n').unwrap();
      assert_ne!(shim.parse::<u32>().unwrap(), tainted);
      assert_eq!(rest, untainted, "{taint}");
    }
  }
}

#[test]
fn a_killed_shim_still_ends_the_request() {
  let mut g = plain();
  let t = Instant::now();
  let e = g.exec_req(&spawn(&["sh", "-c", "sleep 1000 & echo $!; kill -9 $PPID; exec sleep 1000"], set_timeout(None)));
  assert_eq!(exit_of(&e), (137, Some("SIGKILL".into()), false));
  assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
  // in the command's session: killed too
  let left = pids(&e)[0];
  let end = Instant::now() + Duration::from_secs(2);
  while alive(left) && Instant::now() < end {
    std::thread::sleep(Duration::from_millis(20));
  }
  assert!(!alive(left));
}

#[test]
fn a_stopped_shim_is_continued() {
  let mut g = plain();
  let t = Instant::now();
  let e = g.exec_req(&spawn(&["sh", "-c", "kill -STOP $PPID; exit 3"], set_timeout(None)));
  assert_eq!(e.code(), 3);
  assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
  // and at a timeout
  let t = Instant::now();
  let e = g.exec_req(&spawn(&["sh", "-c", "kill -STOP $PPID; exec sleep 1000"], set_timeout(Some(300))));
  assert_eq!(exit_of(&e), (124, Some("SIGKILL".into()), true));
  assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_shim_kept_stopped_is_given_up_within_the_grace() {
  let mut g = plain();
  let t = Instant::now();
  // a leftover of its own session stops the shim over and over
  let e = g.exec_req(&spawn(
    &["sh", "-c", "p=$PPID; setsid sh -c \"while kill -STOP $p; do :; done\" >/dev/null 2>&1 & echo $!; exit 3"],
    set_timeout(None),
  ));
  // either the shim won the race (3) or the guest gave up on it (137): in time, all the same
  assert!([3, 137].contains(&e.code()), "{:?}", e.exit);
  assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
  let left = pids(&e)[0];
  let end = Instant::now() + Duration::from_secs(2);
  while alive(left) && Instant::now() < end {
    std::thread::sleep(Duration::from_millis(20));
  }
  assert!(!alive(left), "the loop survived");
  assert_eq!(g.exec(&["echo", "ok"]).out(), "ok\n");
}

/// The cgroup's pids (threads too) come back to `before` (the guest's threads end and the idle
/// shims are replaced right after a reply).
fn settles(cg: &PidsCgroup, before: u32) {
  let end = Instant::now() + Duration::from_secs(3);
  while cg.current() > before {
    assert!(Instant::now() < end, "pids before {before}, now {}", cg.current());
    std::thread::sleep(Duration::from_millis(20));
  }
}

#[test]
fn a_fork_bomb_is_gone_when_exit_arrives() {
  let Some(cg) = PidsCgroup::new(64) else {
    eprintln!("skipped: no writable cgroup v1 pids controller here");
    return;
  };
  let mut g = Guest::start(bin(), Opts { pid1: true, cgroup: Some(cg.path.clone()), ..Default::default() });
  assert_eq!(g.exec(&["echo", "warm"]).out(), "warm\n");
  std::thread::sleep(Duration::from_millis(300));
  let before = cg.current();
  let t = Instant::now();
  // its leader returns at once; the bomb keeps the sandbox at its pids limit
  let e = g.exec_req(&spawn(&["sh", "-c", "b() { b | b & }; b; exit 0"], set_timeout(Some(60_000))));
  assert_eq!(e.code(), 0);
  // nothing of it is left (shims are not listed; the guest and its threads are PID 1's)
  let Reply::Processes { processes } = g.request(&Request::Processes) else { panic!() };
  assert_eq!(processes, [], "after {:?}", t.elapsed());
  settles(&cg, before);
  assert_eq!(g.exec(&["echo", "still here"]).out(), "still here\n");
  // and a bomb that runs until its timeout
  let e = g.exec_req(&spawn(&["sh", "-c", "b() { b | b & }; b; exec sleep 1000"], set_timeout(Some(1000))));
  assert_eq!(exit_of(&e), (124, Some("SIGKILL".into()), true));
  let Reply::Processes { processes } = g.request(&Request::Processes) else { panic!() };
  assert_eq!(processes, []);
  settles(&cg, before);
  assert_eq!(g.exec(&["echo", "still here"]).out(), "still here\n");
  drop(g);
}

// ------------------------------------------------------------------ 4. listings

fn list(g: &mut Guest, path: &str, max_entries: Option<u64>) -> (Vec<usize>, Vec<Entry>, bool) {
  let id = g.send(&Request::List { path: path.into(), recursive: true, all: true, max_entries });
  let (mut chunks, mut all) = (Vec::new(), Vec::new());
  loop {
    match g.next_reply(id, Duration::from_secs(30)) {
      Reply::Entries { entries } => {
        chunks.push(entries.len());
        all.extend(entries);
      }
      Reply::List { entries, truncated } => {
        chunks.push(entries.len());
        all.extend(entries);
        return (chunks, all, truncated);
      }
      other => panic!("{other:?}"),
    }
  }
}

#[test]
fn listings_come_in_chunks_and_stop_at_max_entries() {
  let dir = std::env::temp_dir().join(format!("agentic-guest-list-{}", std::process::id()));
  let _ = std::fs::remove_dir_all(&dir);
  std::fs::create_dir_all(dir.join("sub")).unwrap();
  for i in 0..4500 {
    std::fs::write(dir.join(format!("f{i:05}")), b"").unwrap();
  }
  for i in 0..10 {
    std::fs::write(dir.join("sub").join(format!("g{i}")), b"x").unwrap();
  }
  let mut g = plain();
  let path = dir.to_str().unwrap();
  let (chunks, all, truncated) = list(&mut g, path, None);
  assert_eq!(chunks, [2000, 2000, 511]);
  assert!(!truncated);
  assert_eq!(all.len(), 4511);
  assert_eq!(all.iter().map(|e| e.path.as_str()).collect::<HashSet<_>>().len(), 4511);
  assert!(all.iter().any(|e| e.path == "sub/g9" && e.size == 1));
  let (chunks, all, truncated) = list(&mut g, path, Some(100));
  assert_eq!((chunks, all.len(), truncated), (vec![100], 100, true));
  let (_, all, truncated) = list(&mut g, path, Some(4511));
  assert_eq!((all.len(), truncated), (4511, false));
  let (chunks, all, truncated) = list(&mut g, path, Some(2000));
  assert_eq!((chunks, all.len(), truncated), (vec![2000, 0], 2000, true));
  assert!(matches!(g.request(&Request::List { path: "/no/such".into(), recursive: false, all: false, max_entries: None }), Reply::Error { .. }));
  std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------ 5. Processes and KillAll

#[test]
fn processes_hides_shims_and_killall_kills_them_too() {
  let mut g = pid1();
  let id = g.send(&spawn_req(&["sleep", "1000"]));
  let pid = g.started(id);
  let cmdlines = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c";
  // this command's shim, the sleep's, and the idle ones
  let shims_seen = g.sh(&format!("{cmdlines} '^agentic-sandbox-guest --shim'"));
  assert!(shims_seen.out().trim().parse::<u32>().unwrap() >= 3, "{}", shims_seen.out());
  let Reply::Processes { processes } = g.request(&Request::Processes) else { panic!() };
  assert!(processes.iter().all(|p| !p.cmdline.iter().any(|a| a == "--shim")), "{processes:?}");
  assert!(processes.iter().all(|p| p.pid != 1));
  let sleep = processes.iter().find(|p| p.pid == pid).expect("the command is listed");
  assert_eq!(sleep.request, Some(id));
  let Reply::Killed { count } = g.request(&Request::KillAll) else { panic!() };
  // the command, its shim and the idle shims
  assert!(count >= 3, "{count}");
  let e = g.finish(id, pid, Duration::from_secs(10));
  assert_eq!(exit_of(&e), (137, Some("SIGKILL".into()), false));
  let left = g.sh(&format!("{cmdlines} '^sleep 1000 $'"));
  assert_eq!(left.out().trim(), "0");
  // the guest starts fresh shims
  for _ in 0..3 {
    assert_eq!(g.exec(&["echo", "ok"]).out(), "ok\n");
  }
}
