//! Property tests of the code that reads untrusted input: the guest frame decoder (bytes from
//! inside the sandbox), the config resolver (a user's JSON), the command-policy parser (an
//! agent's shell scripts, a user's globs) and the test-output parsers (whatever a test run
//! prints). Each property is "no panic, bounded work"; a few also check results. Every block is
//! time-boxed by its case count so the whole run takes a few seconds.

use std::time::{Duration, Instant};

use proptest::prelude::*;

/// Longest a single case may take (debug build, shared CI machine): a parser that needs more
/// for a few KiB of input has gone quadratic or worse.
const CASE_BUDGET: Duration = Duration::from_secs(2);

/// 256 cases each (`PROPTEST_CASES=5000` for a deeper run by hand). No failure file: what a run
/// finds becomes a plain test here instead (a file beside the sources would be written by every
/// failing run, CI's included).
fn config() -> ProptestConfig {
  let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
  ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text that is sometimes arbitrary and often made of the fragments a parser looks for.
fn text_from(fragments: &'static [&'static str], max_parts: usize) -> impl Strategy<Value = String> {
  let part = prop_oneof![
    4 => proptest::sample::select(fragments).prop_map(str::to_string),
    1 => any::<String>(),
    1 => "[ -~]{0,12}",
  ];
  proptest::collection::vec(part, 0..max_parts).prop_map(|parts| parts.concat())
}

mod decoder {
  use super::*;
  use crate::providers::docker::protocol::{encode, Decoder, Frame, Kind, MAX_FRAME};

  /// Push `wire` in the pieces `cuts` makes, draining whole frames after each push as the
  /// host's reader does, and stopping at the first error (the reader fails the connection
  /// there). Checks after every push that the decoder holds at most one partial frame plus
  /// that push (and the consumed prefix it keeps until it passes 1 MiB).
  fn feed(wire: &[u8], cuts: &[usize]) -> std::result::Result<Vec<Frame>, String> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    let (mut d, mut frames, mut at) = (Decoder::default(), Vec::new(), 0);
    for p in points {
      let piece = &wire[at..p];
      at = p;
      d.push(piece);
      let (held, start) = d.held();
      let unconsumed = held - start;
      assert!(unconsumed <= MAX_FRAME + 3 + piece.len(), "{unconsumed} bytes buffered after a push of {}", piece.len());
      assert!(held <= (1 << 20) + MAX_FRAME + 3 + piece.len(), "{held} bytes held after a push of {}", piece.len());
      loop {
        match d.next_frame() {
          Ok(Some(f)) => frames.push(f),
          Ok(None) => break,
          Err(e) => {
            // a failed decoder stays failed, and asking again is harmless
            assert!(d.next_frame().is_err());
            return Err(e);
          }
        }
      }
      let (held, start) = d.held();
      assert!(held - start < 4 + MAX_FRAME, "more than one partial frame left");
    }
    Ok(frames)
  }

  fn kind_strategy() -> impl Strategy<Value = Kind> {
    (1u8..=7).prop_map(|b| Kind::from_u8(b).expect("1..=7 are kinds"))
  }

  fn frames_strategy() -> impl Strategy<Value = Vec<(Kind, u32, Vec<u8>)>> {
    proptest::collection::vec((kind_strategy(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12)
  }

  fn encode_all(frames: &[(Kind, u32, Vec<u8>)]) -> Vec<u8> {
    frames.iter().flat_map(|(k, id, p)| encode(*k, *id, p)).collect()
  }

  proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
      wire in proptest::collection::vec(any::<u8>(), 0..2048),
      cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
      let _ = feed(&wire, &cuts);
    }

    #[test]
    fn valid_frames_round_trip_in_any_split(frames in frames_strategy(), cuts in proptest::collection::vec(any::<usize>(), 0..16)) {
      let decoded = feed(&encode_all(&frames), &cuts).expect("valid frames decode");
      let decoded: Vec<(Kind, u32, Vec<u8>)> = decoded.into_iter().map(|f| (f.kind, f.id, f.payload)).collect();
      prop_assert_eq!(decoded, frames);
    }

    /// Valid frames with some bytes changed: a prefix of the frames, then at most an error.
    #[test]
    fn corrupted_streams_decode_a_prefix_or_fail(
      frames in frames_strategy(),
      flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
      cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
      let mut wire = encode_all(&frames);
      if wire.is_empty() {
        return Ok(());
      }
      let n = wire.len();
      for (at, b) in flips {
        wire[at % n] = b;
      }
      if let Ok(decoded) = feed(&wire, &cuts) {
        for f in decoded {
          prop_assert!(f.payload.len() < MAX_FRAME);
        }
      }
    }
  }

  proptest! {
    // a few cases: each moves up to 9 MiB
    #![proptest_config(ProptestConfig { cases: 6, ..config() })]

    /// A frame near the size limit, pushed in arbitrary pieces: held whole until complete,
    /// never more than one frame plus one push, and refused just past the limit.
    #[test]
    fn big_frames_are_held_once_and_bounded(extra in 0usize..16, over in any::<bool>(), cuts in proptest::collection::vec(any::<usize>(), 1..24)) {
      let payload_len = if over { MAX_FRAME - 5 + 1 + extra } else { MAX_FRAME - 5 - extra };
      let wire = encode(Kind::Stdout, 1, &vec![7u8; payload_len]);
      match feed(&wire, &cuts) {
        Ok(frames) => {
          prop_assert!(!over);
          prop_assert_eq!(frames.len(), 1);
          prop_assert_eq!(frames[0].payload.len(), payload_len);
        }
        Err(e) => {
          prop_assert!(over);
          prop_assert!(e.contains("bad frame length"), "{}", e);
        }
      }
    }
  }
}

mod config {
  use serde_json::Value;

  use super::*;
  use crate::core::config;

  /// Keys the resolver reads, at any level, so generated objects reach deep into it.
  const KEYS: &[&str] = &[
    "name", "template", "templates", "installPackages", "startupScript", "commandPolicy", "provider", "image",
    "networkMode", "workdir", "gpu", "limits", "env", "metadata", "docker", "e2b", "fallbackProviders", "debug",
    "memoryMB", "cpuCores", "diskMB", "networkMbps", "timeoutSeconds", "pidsLimit", "maxFileSizeMB", "maxTotalFiles",
    "maxWorkspaceSizeMB", "socketPath", "registryAuth", "username", "password", "serveraddress", "readOnlyRoot",
    "capDrop", "securityOpt", "user", "tmpfs", "keepImageCommand", "execEngine", "allow", "deny", "packageManager",
    "python", "node", "nodejs", "go", "base", "security", "dropCapabilities", "noNewPrivileges", "PATH", "",
  ];
  /// Values it compares against, and some that are almost right.
  const WORDS: &[&str] = &[
    "docker", "e2b", "isolated", "none", "bridge", "python", "node", "go", "base", "guest", "exec", "pip", "npm", "apt",
    "/workspace", "/", "", " ", "relative", "/w/../..", "/tmp:rw", "tmp", "express@4", "-rf", "a b", "rm", "*", "[",
    "{a,b}", "a/b", "ALL", "no-new-privileges", "${HOME}", "${X:-d}", "${", "\0", "é", "1000:1000",
  ];

  fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
      1 => Just(Value::Null),
      1 => any::<bool>().prop_map(Value::Bool),
      1 => any::<i64>().prop_map(Value::from),
      1 => any::<u64>().prop_map(Value::from),
      1 => any::<f64>().prop_map(Value::from),
      1 => proptest::sample::select(&[-1.0, 0.0, 0.5, 1.0, 5.9, 6.0, 7.5, 8.0, 1e9, 1e12, 1e13, 3.2e7, 31_536_000.5, 1e300][..])
        .prop_map(Value::from),
      3 => proptest::sample::select(WORDS).prop_map(Value::from),
      1 => any::<String>().prop_map(Value::String),
    ]
  }

  fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_string), 1 => any::<String>()]
  }

  fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
      prop_oneof![
        proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
        proptest::collection::vec((key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
      ]
    })
  }

  /// An object of top-level keys: past the first check, into the field validation.
  fn user_config() -> impl Strategy<Value = Value> {
    proptest::collection::vec((key(), json()), 0..10).prop_map(|kv| Value::Object(kv.into_iter().collect()))
  }

  proptest! {
    #![proptest_config(config())]

    #[test]
    fn resolve_takes_any_json(v in prop_oneof![json(), user_config()]) {
      let t0 = Instant::now();
      let _ = config::resolve(&v);
      prop_assert!(t0.elapsed() < CASE_BUDGET);
    }

    /// The path every user config takes: merged onto the defaults, then validated. What passes
    /// keeps the invariants the rest of the crate relies on.
    #[test]
    fn merged_user_configs_resolve_or_fail_cleanly(user in user_config(), manager in prop_oneof![Just(Value::Null), user_config()]) {
      let base = config::merge(&config::defaults(), &manager);
      if let Ok(c) = config::resolve(&config::merge(&base, &user)) {
        prop_assert!(c.workdir.starts_with('/') && c.workdir != "/", "workdir {:?}", c.workdir);
        prop_assert!(c.limits.memory_mb >= 6.0 && c.limits.pids_limit >= 8);
        prop_assert!(c.limits.timeout_seconds > 0.0 && c.limits.timeout_seconds <= config::MAX_SECONDS);
        prop_assert!(!c.image.trim().is_empty());
        let _ = config::limits_to_json(&c.limits);
      }
    }

    #[test]
    fn rc_files_and_env_vars_never_panic(
      text in prop_oneof![any::<String>(), json().prop_map(|v| v.to_string()), user_config().prop_map(|v| v.to_string())],
      env in proptest::collection::vec(prop_oneof![proptest::sample::select(WORDS).prop_map(str::to_string), any::<String>(), "-?[0-9.e]{1,8}"], 12),
    ) {
      const VARS: [&str; 12] = [
        "SANDBOX_PROVIDER", "SANDBOX_NETWORK_MODE", "DOCKER_IMAGE", "SANDBOX_MEMORY_MB", "SANDBOX_CPU_CORES",
        "SANDBOX_TIMEOUT_SECONDS", "SANDBOX_PIDS_LIMIT", "MAX_TOTAL_FILES", "DOCKER_SOCKET_PATH",
        "SANDBOX_EXEC_ENGINE", "HOME", "X",
      ];
      let get = |name: &str| VARS.iter().position(|v| *v == name).map(|i| env[i].clone());
      let _ = config::expand_vars(&text, &get);
      let layers = config::rc_layer(&text, std::path::Path::new("/x/.sandboxrc.json"), &get)
        .and_then(|rc| Ok(config::merge(&config::merge(&config::defaults(), &rc), &config::env_layer(&get)?)));
      if let Ok(v) = layers {
        let _ = config::resolve(&v);
      }
    }

    #[test]
    fn seconds_takes_any_number(v in any::<f64>(), zero_ok in any::<bool>()) {
      if let Ok(d) = config::seconds("timeout", v, zero_ok) {
        prop_assert!(d.as_secs_f64() <= config::MAX_SECONDS + 1.0);
      }
    }
  }
}

mod policy {
  use super::*;
  use crate::core::policy::{programs, shell_commands, CommandPolicy, Program};

  /// Shell syntax the parser follows, and the commands it knows as wrappers and shells.
  const SHELL: &[&str] = &[
    " ", " ", " ", "\n", ";", "|", "||", "&&", "&", "(", ")", "{ ", " }", "$(", "`", "<(", ">(", "'", "\"", "\\",
    "$", "${", "}", "$((", "))", "#", "<<EOF\n", "<<-'X'\n", "\nEOF\n", "<<<", ">", "2>&1", "=", "x=1 ", "if ", "then ",
    "else ", "fi", "for i in ", "do ", "done", "while ", "until ", "case ", " in ", "a)", ";;", "esac", "f() ",
    "function g ", "! ", "[[ ", " ]]", "sh -c ", "bash -lc ", "busybox sh -c ", "eval ", "exec ", "trap ", "command ",
    "source ", ". ", "env ", "sudo ", "su -c ", "xargs ", "timeout 5 ", "nice -n 1 ", "nohup ", "flock -c ",
    "find . -exec ", " {} \\;", " -- ", "watch ", "rm -rf /", "curl x ", "/bin/rm ", "r*", "{rm,-rf}", "python3 -c ",
    "coproc ", "select ", "time ", "-", "--", "é", "\t", "\0",
  ];

  fn script() -> impl Strategy<Value = String> {
    text_from(SHELL, 200)
  }

  /// Deeply nested constructs, to check the depth limit holds and the work stays bounded.
  fn nested() -> impl Strategy<Value = String> {
    const WRAPS: &[(&str, &str)] = &[
      ("$(", ")"), ("`", "`"), ("sh -c '", "'"), ("sh -c \"", "\""), ("eval \"", "\""), ("( ", " )"), ("{ ", "; }"),
      ("if ", "; then x; fi"), ("for a in 1; do ", "; done"), ("case x in a) ", ";; esac"), ("<(", ")"),
      ("f() { ", "; }"), ("find . -exec ", " \\;"), ("env ", ""), ("sudo ", ""), ("a | ", " | b"), ("\"$(", ")\""),
    ];
    (proptest::collection::vec(proptest::sample::select(WRAPS), 0..80), "[a-z]{1,6}").prop_map(|(wraps, core)| {
      let mut s = core;
      for (open, close) in wraps {
        s = format!("{open}{s}{close}");
      }
      s
    })
  }

  fn glob() -> impl Strategy<Value = String> {
    prop_oneof![
      3 => text_from(&["*", "?", "[", "]", "{", "}", ",", "!", "^", "-", "\\", "rm", "py", "a", "/", " ", "**", "[!a-z]", "{a,{b,c}}"], 8),
      1 => any::<String>(),
    ]
  }

  proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_script_parses_in_bounded_time(s in prop_oneof![script(), nested(), any::<String>()]) {
      let t0 = Instant::now();
      let found = shell_commands(&s);
      let via_sh = programs("sh", &["-c".to_string(), s.clone()]);
      prop_assert!(t0.elapsed() < CASE_BUDGET, "{:?} took {:?}", s, t0.elapsed());
      // each program once, and no more programs than the script has characters
      prop_assert!(found.len() <= s.len() + 1 && via_sh.len() <= s.len() + 2);
      for p in found.iter().chain(&via_sh) {
        if let Program::Dynamic(text) = p {
          prop_assert!(text.chars().count() <= 121, "dynamic text not truncated: {} chars", text.chars().count());
        }
      }
    }

    #[test]
    fn any_globs_compile_or_fail_cleanly_and_check_any_command(
      allow in proptest::option::of(proptest::collection::vec(glob(), 0..5)),
      deny in proptest::option::of(proptest::collection::vec(glob(), 0..5)),
      command in prop_oneof![script(), "[a-z/]{1,12}"],
      args in proptest::collection::vec(prop_oneof![script(), Just("-c".to_string())], 0..4),
    ) {
      let t0 = Instant::now();
      if let Ok(p) = CommandPolicy::new(allow, deny) {
        let _ = p.check(&command, &args);
        let _ = p.check("sh", &["-c".to_string(), command.clone()]);
      }
      prop_assert!(t0.elapsed() < CASE_BUDGET);
    }
  }
}

mod testparse {
  use super::*;
  use crate::service::testparse::{detect, parse, Framework};

  /// Lines and pieces each parser looks for, with counts that overflow when added up.
  const OUTPUT: &[&str] = &[
    "\n", "\n", "\n", "\r\n", " ", "  ", "    ", "\x1b[31m", "\x1b[0m", "\x1b[", "FAIL ", "PASS ", "Tests:", "Tests ",
    "Test Suites:", "Test Files ", "Summary of all failing tests", "  ● ", "›", " > ", "⎯⎯ Failed Tests 1 ⎯⎯", "⎯⎯⎯",
    "⎯ Failed Suites ⎯", "❯", "×", "✓", " at ", "Details:", "  > 1 | x", "    |  ^", "1 failed", "2 passed",
    "3 skipped", "todo", "18446744073709551615 passed", "18446744073709551615 failed", "9999999999999999999 skipped",
    ", ", " | ", "(3)", "(", ")", "=== ", "===", "FAILURES", "ERRORS", "short test summary info", "___ test_x ___",
    "E   assert 1 == 2", "FAILED a.py::test_x - boom", "ERROR a.py", "::", " in 0.1s ", "xfailed", "xpassed", "errors",
    "=== RUN   TestX", "--- FAIL: TestX (0.00s)", "--- PASS: TestY", "--- SKIP: TestZ", "    x_test.go:3: boom",
    "FAIL\tpkg 0.1s", "ok  \tpkg\t0.1s", "# pkg", "./a.go:1:2: undefined: x", "[build failed]", "panic: boom", "é", "\t",
  ];

  /// A summary-like line: a prefix each parser looks for, then counts, some near `u64::MAX`.
  fn summary_line() -> impl Strategy<Value = String> {
    let prefix = proptest::sample::select(&["Tests:", "Tests ", "=== ", "==== ", "ok  \t", "FAIL\t", ""][..]);
    let n = prop_oneof![0u64..5, Just(u64::MAX), Just(u64::MAX / 2 + 1), any::<u64>()];
    let word = proptest::sample::select(&["passed", "failed", "skipped", "todo", "pending", "error", "errors", "xfailed", "xpassed"][..]);
    let sep = proptest::sample::select(&[", ", " | ", ","][..]);
    let suffix = proptest::sample::select(&["", " (3)", " in 0.1s ===", " ===", "\n"][..]);
    (prefix, proptest::collection::vec((n, word), 1..5), sep, suffix).prop_map(|(prefix, counts, sep, suffix)| {
      let counts: Vec<String> = counts.iter().map(|(n, w)| format!("{n} {w}")).collect();
      format!("{prefix} {}{suffix}\n", counts.join(sep))
    })
  }

  fn output() -> impl Strategy<Value = String> {
    prop_oneof![
      3 => text_from(OUTPUT, 120),
      2 => proptest::collection::vec(prop_oneof![summary_line(), text_from(OUTPUT, 6)], 1..6).prop_map(|l| l.concat()),
      1 => any::<String>(),
    ]
  }

  fn package_json() -> impl Strategy<Value = String> {
    prop_oneof![
      text_from(&["{", "}", "[", "]", "\"", ":", ",", "scripts", "test", "jest", "vitest", "devDependencies", "\\", "\\u", "null", "1e9", " "], 60),
      (1usize..200).prop_map(|n| "[".repeat(n)),
      (1usize..200).prop_map(|n| format!("{}{}", "{\"a\":".repeat(n), "}".repeat(n))),
      any::<String>(),
    ]
  }

  proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_parser_takes_any_output(text in output()) {
      for fw in [Framework::Jest, Framework::Vitest, Framework::Pytest, Framework::Go] {
        let t0 = Instant::now();
        let s = parse(fw, &text);
        prop_assert!(t0.elapsed() < CASE_BUDGET, "{:?} took {:?}", fw, t0.elapsed());
        if s.parsed {
          prop_assert_eq!(s.total, s.passed.saturating_add(s.failed).saturating_add(s.skipped));
        } else {
          prop_assert_eq!(s.total, 0);
        }
        for f in &s.failures {
          prop_assert!(f.message.len() <= 2048 + 4, "{} byte message", f.message.len());
        }
      }
    }

    #[test]
    fn detection_takes_any_project(files in proptest::collection::vec(any::<String>(), 0..6), pj in proptest::option::of(package_json()), name in any::<String>()) {
      let _ = detect(&files, pj.as_deref());
      let _ = Framework::parse_name(&name);
    }
  }
}
