//! The agent's built-in tools, named like Claude Code's: `Bash`, `Read`, `Write`, `Edit`, `Glob`,
//! `Grep`, `LS`. Every one runs inside the task's sandbox (through the sandbox's own methods),
//! never on the host.
//!
//! Parameters: file tools take `file`, a path relative to the workspace (absolute paths inside the
//! sandbox are accepted; `file_path` and `path` are accepted as aliases, as Claude Code's models
//! tend to send them). Before interceptors see them, parameters are normalized: the alias becomes
//! `file`, and an absolute path inside the workspace becomes relative, so a handler can build
//! `` `/workspace/${params.file}` `` as the seed guide's interceptors do.

use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde_json::{json, Map, Value};

use super::model::ToolSpec;
use crate::core::sandbox::AnySandbox;
use crate::core::paths;
use crate::core::types::{ExecOptions, ExecResult};

pub const TOOL_NAMES: [&str; 7] = ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "LS"];

/// Most characters of one tool result the model sees (Claude Code's Bash cuts at 30,000 too).
pub const MAX_RESULT_CHARS: usize = 30_000;
/// Most bytes `Read` shows of a whole file (it loads one more, to know the file was cut).
const MAX_READ_BYTES: usize = 256 * 1024;
/// Most bytes `Read` with `offset`/`limit` looks through for its lines.
const MAX_LINES_READ_BYTES: usize = 16 * 1024 * 1024;
/// Largest file `Edit` edits.
const MAX_EDIT_BYTES: usize = 16 * 1024 * 1024;
/// Output per stream `Bash` and `Grep` keep: far more than the model sees (MAX_RESULT_CHARS), and
/// a bound on what a flooding command in a hostile sandbox puts in host memory.
const MAX_TOOL_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// Most paths `Glob` returns.
const MAX_GLOB_RESULTS: usize = 1000;
/// Longest `Bash` timeout a model may ask for, in seconds.
const MAX_BASH_TIMEOUT: f64 = 600.0;

/// What a tool call produced, as the model will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
  pub content: String,
  pub is_error: bool,
  /// what the built-in tool did, for the run's counters
  pub effect: Effect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Effect {
  #[default]
  None,
  /// a command ran (`Bash`)
  Command,
  /// a file that did not exist was written (`Write`)
  FileCreated,
}

impl ToolOutcome {
  pub fn ok(content: impl Into<String>) -> Self {
    Self { content: cap(content.into()), is_error: false, effect: Effect::None }
  }
  pub fn error(content: impl Into<String>) -> Self {
    Self { content: cap(content.into()), is_error: true, effect: Effect::None }
  }
  fn with(mut self, effect: Effect) -> Self {
    self.effect = effect;
    self
  }
}

fn cap(mut s: String) -> String {
  if s.len() > MAX_RESULT_CHARS {
    let mut end = MAX_RESULT_CHARS;
    while !s.is_char_boundary(end) {
      end -= 1;
    }
    let dropped = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("\n[... {dropped} more bytes not shown]"));
  }
  s
}

/// JSON schemas of the tools, as the model sees them.
pub fn specs() -> Vec<ToolSpec> {
  let file = json!({ "type": "string", "description": "Path of the file, relative to the workspace (e.g. \"src/app.js\")" });
  vec![
    ToolSpec {
      name: "Bash".into(),
      description: "Run a shell command (sh -c) in the workspace of the sandbox. Returns stdout, stderr and the exit code. The sandbox has no network unless its configuration allows it.".into(),
      input_schema: json!({
        "type": "object",
        "properties": {
          "command": { "type": "string", "description": "The command line to run" },
          "timeout": { "type": "number", "description": "Timeout in seconds (default: the sandbox's limit, at most 600)" },
          "description": { "type": "string", "description": "What the command does, in a few words" }
        },
        "required": ["command"]
      }),
    },
    ToolSpec {
      name: "Read".into(),
      description: "Read a text file from the workspace. Optionally a range of lines.".into(),
      input_schema: json!({
        "type": "object",
        "properties": {
          "file": file,
          "offset": { "type": "integer", "description": "First line to read, 1-based" },
          "limit": { "type": "integer", "description": "Number of lines to read" }
        },
        "required": ["file"]
      }),
    },
    ToolSpec {
      name: "Write".into(),
      description: "Create or overwrite a file in the workspace (parent directories are created).".into(),
      input_schema: json!({
        "type": "object",
        "properties": { "file": file, "content": { "type": "string", "description": "The whole content of the file" } },
        "required": ["file", "content"]
      }),
    },
    ToolSpec {
      name: "Edit".into(),
      description: "Replace an exact string in a file. old_string must occur exactly once unless replace_all is true.".into(),
      input_schema: json!({
        "type": "object",
        "properties": {
          "file": file,
          "old_string": { "type": "string", "description": "The exact text to replace" },
          "new_string": { "type": "string", "description": "The replacement text" },
          "replace_all": { "type": "boolean", "description": "Replace every occurrence (default false)" }
        },
        "required": ["file", "old_string", "new_string"]
      }),
    },
    ToolSpec {
      name: "Glob".into(),
      description: "Find files by glob pattern (e.g. \"**/*.js\", \"src/*.ts\"), relative to the workspace or `path`.".into(),
      input_schema: json!({
        "type": "object",
        "properties": {
          "pattern": { "type": "string", "description": "Glob pattern; `*` stays within a directory, `**` crosses directories" },
          "path": { "type": "string", "description": "Directory to search in, relative to the workspace (default: the workspace)" }
        },
        "required": ["pattern"]
      }),
    },
    ToolSpec {
      name: "Grep".into(),
      description: "Search file contents with an extended regular expression (grep -E) under a directory of the workspace.".into(),
      input_schema: json!({
        "type": "object",
        "properties": {
          "pattern": { "type": "string", "description": "Extended regular expression" },
          "path": { "type": "string", "description": "File or directory to search, relative to the workspace (default: the workspace)" },
          "glob": { "type": "string", "description": "Only files whose name matches this glob (e.g. \"*.js\")" },
          "case_insensitive": { "type": "boolean", "description": "Ignore case" },
          "output_mode": { "type": "string", "enum": ["content", "files_with_matches", "count"], "description": "Matching lines with line numbers (default), file names, or counts" }
        },
        "required": ["pattern"]
      }),
    },
    ToolSpec {
      name: "LS".into(),
      description: "List a directory of the workspace: names, with a trailing / for directories, and sizes.".into(),
      input_schema: json!({
        "type": "object",
        "properties": { "path": { "type": "string", "description": "Directory, relative to the workspace (default: the workspace)" } }
      }),
    },
  ]
}

/// Checks a call's parameters and puts them in the form interceptors and the tools expect.
/// Returns the message the model sees when they are wrong.
pub fn normalize(tool: &str, params: Value, workspace: &str) -> Result<Value, String> {
  let mut p = match params {
    Value::Object(m) => m,
    Value::Null => Map::new(),
    other => return Err(format!("{tool}: parameters must be a JSON object, got {other}")),
  };
  if let Some(raw) = p.remove("_raw") {
    return Err(format!("{tool}: the parameters were not valid JSON: {raw}"));
  }
  let is_file_tool = matches!(tool, "Read" | "Write" | "Edit");
  if is_file_tool && !p.contains_key("file") {
    for alias in ["file_path", "path", "filename"] {
      if let Some(v) = p.remove(alias) {
        p.insert("file".into(), v);
        break;
      }
    }
  }
  let relative = |v: &str| -> String {
    let ws = workspace.trim_end_matches('/');
    match v.strip_prefix(ws) {
      Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/').to_string(),
      Some("") => ".".to_string(),
      _ => v.to_string(),
    }
  };
  let need_str = |p: &Map<String, Value>, k: &str| -> Result<(), String> {
    match p.get(k) {
      Some(Value::String(_)) => Ok(()),
      Some(other) => Err(format!("{tool}: `{k}` must be a string, got {other}")),
      None => Err(format!("{tool}: missing required parameter `{k}`")),
    }
  };
  match tool {
    "Bash" => need_str(&p, "command")?,
    "Read" => need_str(&p, "file")?,
    "Write" => {
      need_str(&p, "file")?;
      need_str(&p, "content")?;
    }
    "Edit" => {
      need_str(&p, "file")?;
      need_str(&p, "old_string")?;
      need_str(&p, "new_string")?;
    }
    "Glob" | "Grep" => need_str(&p, "pattern")?,
    _ => {}
  }
  for k in ["file", "path"] {
    if let Some(Value::String(s)) = p.get(k) {
      if s.is_empty() {
        return Err(format!("{tool}: `{k}` must not be empty"));
      }
      let r = relative(s);
      p.insert(k.into(), Value::String(r));
    }
  }
  Ok(Value::Object(p))
}

fn str_of<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
  p.get(k).and_then(Value::as_str)
}

/// Runs a built-in tool with (normalized) parameters inside `sb`, with paths relative to `workspace`.
pub async fn run(sb: &Arc<AnySandbox>, workspace: &str, tool: &str, p: &Value) -> ToolOutcome {
  let abs = |rel: &str| -> Result<String, String> { paths::resolve(workspace, rel).map_err(|e| e.message) };
  match tool {
    "Bash" => {
      let command = str_of(p, "command").unwrap_or_default();
      let timeout = match p.get("timeout").and_then(Value::as_f64) {
        Some(t) if t > 0.0 && t.is_finite() => Some(t.min(MAX_BASH_TIMEOUT)),
        _ => None,
      };
      let opts = ExecOptions { timeout, workdir: Some(workspace.to_string()), max_output_bytes: Some(MAX_TOOL_OUTPUT_BYTES), ..Default::default() };
      match sb.execute("sh", &["-c".to_string(), command.to_string()], opts).await {
        Ok(r) => bash_outcome(&r).with(Effect::Command),
        Err(e) => ToolOutcome::error(format!("Bash could not run the command: {}", e.message)),
      }
    }
    "Read" => {
      let path = match abs(str_of(p, "file").unwrap_or_default()) {
        Ok(x) => x,
        Err(e) => return ToolOutcome::error(e),
      };
      let offset = p.get("offset").and_then(Value::as_u64);
      let limit = p.get("limit").and_then(Value::as_u64);
      let ranged = offset.is_some() || limit.is_some();
      let cap = if ranged { MAX_LINES_READ_BYTES } else { MAX_READ_BYTES };
      // one byte more than is used tells a file that was cut from one that fits
      let op = sb.read_file_max(&path, cap + 1).await;
      let Some(mut data) = op.content.filter(|_| op.success) else {
        return ToolOutcome::error(format!("Read {path}: {}", op.error.unwrap_or_else(|| "could not read".into())));
      };
      let cut = data.len() > cap;
      data.truncate(cap);
      if data.contains(&0) || utf8_prefix(&data).is_none() {
        let size = if cut { format!("more than {cap}") } else { data.len().to_string() };
        return ToolOutcome::ok(format!("(binary file, {size} bytes; not shown)"));
      }
      let text = utf8_prefix(&data).unwrap_or_default();
      if cut && !ranged {
        return ToolOutcome::ok(format!("{text}\n[file is larger than {MAX_READ_BYTES} bytes; only the first {MAX_READ_BYTES} shown: use offset/limit]"));
      }
      if !ranged {
        return ToolOutcome::ok(text);
      }
      // of a cut file only whole lines are used
      let text = if cut { text.rsplit_once('\n').map_or("", |(whole, _)| whole) } else { text };
      let start = offset.unwrap_or(1).max(1) as usize - 1;
      let want = limit.map(|l| l as usize).unwrap_or(usize::MAX);
      let lines: Vec<&str> = text.lines().skip(start).take(want).collect();
      let mut out = lines.join("\n");
      if cut && lines.len() < want {
        out.push_str(&format!(
          "\n[Read looks through the first {MAX_LINES_READ_BYTES} bytes of a file only; for lines beyond them use Bash, e.g. sed -n '<first>,<last>p' {path}]"
        ));
      }
      ToolOutcome::ok(out)
    }
    "Write" => {
      let path = match abs(str_of(p, "file").unwrap_or_default()) {
        Ok(x) => x,
        Err(e) => return ToolOutcome::error(e),
      };
      let content = str_of(p, "content").unwrap_or_default().as_bytes().to_vec();
      let existed = exists(sb, &path).await;
      // every provider's writeFile creates the parent directories
      let n = content.len();
      let op = sb.write_file(&path, content).await;
      if !op.success {
        return ToolOutcome::error(format!("Write {path}: {}", op.error.unwrap_or_default()));
      }
      let outcome = ToolOutcome::ok(format!("Wrote {n} bytes to {path}"));
      if existed {
        outcome
      } else {
        outcome.with(Effect::FileCreated)
      }
    }
    "Edit" => {
      let path = match abs(str_of(p, "file").unwrap_or_default()) {
        Ok(x) => x,
        Err(e) => return ToolOutcome::error(e),
      };
      let (old, new) = (str_of(p, "old_string").unwrap_or_default(), str_of(p, "new_string").unwrap_or_default());
      let all = p.get("replace_all").and_then(Value::as_bool).unwrap_or(false);
      if old.is_empty() {
        return ToolOutcome::error("Edit: old_string must not be empty (use Write to create a file)");
      }
      let op = sb.read_file_max(&path, MAX_EDIT_BYTES + 1).await;
      let Some(data) = op.content.filter(|_| op.success) else {
        return ToolOutcome::error(format!("Edit {path}: {}", op.error.unwrap_or_else(|| "could not read".into())));
      };
      if data.len() > MAX_EDIT_BYTES {
        return ToolOutcome::error(format!("Edit {path}: the file is larger than {MAX_EDIT_BYTES} bytes, too large for Edit; change it with Bash (e.g. sed -i)"));
      }
      let Ok(text) = String::from_utf8(data) else {
        return ToolOutcome::error(format!("Edit {path}: not a UTF-8 text file"));
      };
      let count = text.matches(old).count();
      if count == 0 {
        return ToolOutcome::error(format!("Edit {path}: old_string was not found in the file"));
      }
      if count > 1 && !all {
        return ToolOutcome::error(format!(
          "Edit {path}: old_string occurs {count} times; include more surrounding text to make it unique, or set replace_all"
        ));
      }
      let updated = if all { text.replace(old, new) } else { text.replacen(old, new, 1) };
      let op = sb.write_file(&path, updated.into_bytes()).await;
      if !op.success {
        return ToolOutcome::error(format!("Edit {path}: {}", op.error.unwrap_or_default()));
      }
      ToolOutcome::ok(format!("Edited {path}: replaced {} occurrence(s)", if all { count } else { 1 }))
    }
    "Glob" => {
      let dir = match abs(str_of(p, "path").unwrap_or(".")) {
        Ok(x) => x,
        Err(e) => return ToolOutcome::error(e),
      };
      let pattern = str_of(p, "pattern").unwrap_or_default();
      let matcher = match glob(pattern) {
        Ok(m) => m,
        Err(e) => return ToolOutcome::error(format!("Glob: {e}")),
      };
      let dotfiles = pattern.starts_with('.') || pattern.contains("/.");
      match sb.list_files_detailed(&dir, true, dotfiles).await {
        Ok(entries) => {
          let mut found: Vec<String> =
            entries.into_iter().filter(|e| e.kind != "directory" && matcher.is_match(&e.path)).map(|e| e.path).collect();
          found.sort();
          let total = found.len();
          found.truncate(MAX_GLOB_RESULTS);
          if total == 0 {
            return ToolOutcome::ok(format!("No files match {pattern} in {dir}"));
          }
          let more = if total > MAX_GLOB_RESULTS { format!("\n[... {} more]", total - MAX_GLOB_RESULTS) } else { String::new() };
          ToolOutcome::ok(format!("{}{more}", found.join("\n")))
        }
        Err(e) => ToolOutcome::error(format!("Glob {dir}: {}", e.message)),
      }
    }
    "Grep" => {
      let target = match abs(str_of(p, "path").unwrap_or(".")) {
        Ok(x) => x,
        Err(e) => return ToolOutcome::error(e),
      };
      let mode = match str_of(p, "output_mode").unwrap_or("content") {
        "content" => "-n",
        "files_with_matches" => "-l",
        "count" => "-c",
        other => return ToolOutcome::error(format!("Grep: output_mode must be content, files_with_matches or count, got {other:?}")),
      };
      let icase = p.get("case_insensitive").or_else(|| p.get("-i")).and_then(Value::as_bool).unwrap_or(false);
      // find picks the files (and applies the name glob), grep -E searches them; -H names the file
      let script = r#"t=$1; pat=$2; mode=$3; ic=$4; g=$5
if [ -n "$g" ]; then set -- find "$t" -type f -name "$g"; else set -- find "$t" -type f; fi
"$@" -exec grep -H -E $mode $ic -e "$pat" -- {} + 2>/dev/null
exit 0"#;
      let args: Vec<String> = vec![
        "-c".into(),
        script.into(),
        "grep".into(),
        target.clone(),
        str_of(p, "pattern").unwrap_or_default().into(),
        mode.into(),
        if icase { "-i".into() } else { String::new() },
        str_of(p, "glob").unwrap_or_default().into(),
      ];
      let opts = ExecOptions { workdir: Some(workspace.to_string()), max_output_bytes: Some(MAX_TOOL_OUTPUT_BYTES), ..Default::default() };
      match sb.execute("sh", &args, opts).await {
        Ok(r) => {
          let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
          if mode == "-c" {
            out = out.lines().filter(|l| !l.ends_with(":0")).collect::<Vec<_>>().join("\n");
          }
          let prefix = format!("{}/", workspace.trim_end_matches('/'));
          let out = out.lines().map(|l| l.strip_prefix(&prefix).unwrap_or(l)).collect::<Vec<_>>().join("\n");
          if out.trim().is_empty() {
            ToolOutcome::ok("No matches")
          } else if r.truncated {
            ToolOutcome::ok(format!("{out}\n[more matches not shown: narrow the pattern or the path]"))
          } else {
            ToolOutcome::ok(out)
          }
        }
        Err(e) => ToolOutcome::error(format!("Grep could not run: {}", e.message)),
      }
    }
    "LS" => {
      let dir = match abs(str_of(p, "path").unwrap_or(".")) {
        Ok(x) => x,
        Err(e) => return ToolOutcome::error(e),
      };
      match sb.list_files_detailed(&dir, false, true).await {
        Ok(entries) if entries.is_empty() => ToolOutcome::ok(format!("{dir} is empty")),
        Ok(entries) => ToolOutcome::ok(
          entries
            .iter()
            .map(|e| if e.kind == "directory" { format!("{}/", e.path) } else { format!("{} ({} bytes)", e.path, e.size) })
            .collect::<Vec<_>>()
            .join("\n"),
        ),
        Err(e) => ToolOutcome::error(format!("LS {dir}: {}", e.message)),
      }
    }
    other => ToolOutcome::error(format!("unknown tool {other:?}; the tools are {}", TOOL_NAMES.join(", "))),
  }
}

/// The model's view of a command's result.
pub fn bash_outcome(r: &ExecResult) -> ToolOutcome {
  let mut s = String::from_utf8_lossy(&r.stdout).into_owned();
  let err = String::from_utf8_lossy(&r.stderr);
  if !err.is_empty() {
    if !s.is_empty() && !s.ends_with('\n') {
      s.push('\n');
    }
    s.push_str("[stderr]\n");
    s.push_str(&err);
  }
  if r.timed_out {
    s.push_str("\n[the command timed out and was killed]");
  }
  if r.truncated {
    s.push_str("\n[output was truncated]");
  }
  if r.exit_code != 0 {
    if !s.is_empty() && !s.ends_with('\n') {
      s.push('\n');
    }
    s.push_str(&format!("[exit code {}]", r.exit_code));
  }
  if s.is_empty() {
    s = "(no output)".into();
  }
  let mut o = if r.exit_code == 0 { ToolOutcome::ok(s) } else { ToolOutcome::error(s) };
  o.effect = Effect::Command;
  o
}

/// `data` as text when it is UTF-8, allowing a character cut at its end (a prefix of a file).
fn utf8_prefix(data: &[u8]) -> Option<&str> {
  match std::str::from_utf8(data) {
    Ok(s) => Some(s),
    Err(e) if e.error_len().is_none() => std::str::from_utf8(&data[..e.valid_up_to()]).ok(),
    Err(_) => None,
  }
}

/// Whether `path` exists (one listing of its directory; a missing directory means no).
async fn exists(sb: &Arc<AnySandbox>, path: &str) -> bool {
  let (dir, name) = path.rsplit_once('/').unwrap_or(("/", path));
  let dir = if dir.is_empty() { "/" } else { dir };
  sb.list_files(dir, true).await.map(|names| names.iter().any(|n| n == name)).unwrap_or(false)
}

/// A glob as the tools and file capture use it: `*` and `?` stay within one path component, `**`
/// crosses directories, `{a,b}` alternates. A pattern without `/` matches the base name at any depth.
pub fn glob(pattern: &str) -> Result<GlobMatcher, String> {
  glob_of(pattern).map(|g| g.compile_matcher())
}

pub fn glob_of(pattern: &str) -> Result<Glob, String> {
  let full = if pattern.contains('/') { pattern.trim_start_matches("./").to_string() } else { format!("**/{pattern}") };
  GlobBuilder::new(&full).literal_separator(true).build().map_err(|e| format!("invalid glob {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn normalizes_aliases_and_workspace_paths() {
    let p = normalize("Write", json!({"file_path": "/workspace/src/a.js", "content": "x"}), "/workspace").unwrap();
    assert_eq!(p, json!({"file": "src/a.js", "content": "x"}));
    let p = normalize("Read", json!({"file": "/etc/hosts"}), "/workspace").unwrap();
    assert_eq!(p["file"], "/etc/hosts");
    let p = normalize("LS", json!({"path": "/workspace"}), "/workspace/").unwrap();
    assert_eq!(p["path"], ".");
    assert!(normalize("Write", json!({"file": "a"}), "/workspace").unwrap_err().contains("content"));
    assert!(normalize("Bash", json!({"command": 3}), "/workspace").unwrap_err().contains("string"));
    assert!(normalize("Bash", json!("ls"), "/workspace").is_err());
    assert!(normalize("Bash", json!({"_raw": "{oops"}), "/workspace").unwrap_err().contains("not valid JSON"));
  }

  #[test]
  fn globs_match_like_gitignore() {
    let m = glob("*.js").unwrap();
    assert!(m.is_match("a.js") && m.is_match("src/deep/b.js") && !m.is_match("a.json"));
    let m = glob("src/*.ts").unwrap();
    assert!(m.is_match("src/a.ts") && !m.is_match("src/x/a.ts"));
    let m = glob("src/**/*.ts").unwrap();
    assert!(m.is_match("src/x/y/a.ts") && m.is_match("src/a.ts"));
    let m = glob("*.{md,txt}").unwrap();
    assert!(m.is_match("docs/README.md") && m.is_match("n.txt"));
    assert!(glob("a[").is_err());
  }

  #[test]
  fn bash_outcome_formats() {
    let r = ExecResult {
      exit_code: 2,
      stdout: b"out".to_vec(),
      stderr: b"bad\n".to_vec(),
      duration_ms: 1.0,
      timed_out: false,
      truncated: false,
      signal: None,
      max_rss_kb: None,
    };
    let o = bash_outcome(&r);
    assert!(o.is_error);
    assert_eq!(o.content, "out\n[stderr]\nbad\n[exit code 2]");
    assert_eq!(o.effect, Effect::Command);
  }

  #[test]
  fn utf8_prefixes_may_end_in_a_cut_character() {
    let s = "héllo".as_bytes();
    assert_eq!(utf8_prefix(s), Some("héllo"));
    assert_eq!(utf8_prefix(&s[..2]), Some("h"), "é cut in half");
    assert_eq!(utf8_prefix(&[b'a', 0xff, b'b']), None);
  }

  #[test]
  fn caps_long_results_on_char_boundaries() {
    let s = "é".repeat(MAX_RESULT_CHARS);
    let o = ToolOutcome::ok(s);
    assert!(o.content.contains("more bytes not shown"));
    assert!(o.content.len() < MAX_RESULT_CHARS + 100);
  }
}
