//! Command policy: optional `allow` / `deny` lists of program-name globs, checked before a sandbox
//! runs a command.
//!
//! **This is defence in depth, not a security boundary.** What contains a command is the
//! container (its user, dropped capabilities, read-only paths, resource limits, network mode).
//! The policy exists so that an AI agent's tool call such as `rm -rf /workspace` or
//! `curl … | sh` fails early, before it runs, with a message the agent (or its developer) can act
//! on. It reads the command line, not what the programs do, so anything that runs programs by
//! its own means gets past it. Configure the container as if the policy were not there.
//!
//! # What it checks
//!
//! [`programs`] lists every program a command line would run, by name (basename: `/bin/rm` is
//! `rm`): the program itself; for a shell (`sh`, `bash`, `dash`, `ash`, `zsh`, `ksh`, `busybox
//! sh`, …) given `-c SCRIPT`, every command of the script, found by a small POSIX shell parser
//! ([`shell_commands`]) that follows pipelines, lists, subshells, groups, `if`/`for`/`while`/
//! `case`, functions, `$(…)`, backticks and `<(…)` anywhere in a word, here-documents, and nested
//! `sh -c`, `eval`, `trap`, `watch`, `su -c`, `flock -c`, `find -exec` and wrappers such as
//! `env`, `sudo`, `xargs`, `timeout`, `nice`, `nohup`, `busybox` (the wrapper and the program it
//! runs both count). A command whose name is only known when it runs (`$cmd`, `$(which rm)`,
//! `eval "$x"`, a glob such as `r*`, a script read from a file or stdin) is a
//! [`Program::Dynamic`].
//!
//! [`CommandPolicy::check`]: a program matching a `deny` pattern is refused; with an `allow` list,
//! every program must match it, and a dynamic program is refused because the policy cannot name
//! it. A deny-only policy ignores dynamic programs. Deny wins over allow.
//!
//! # What it cannot see
//!
//! - Programs started by other programs: `python3 -c "import os; os.system('rm -rf /')"`,
//!   `node -e`, `perl -e`, awk's `system()`, sed's `e`, `git` aliases and hooks, `make`,
//!   `npm run`, `parallel`, an editor's `:!`. An allowed interpreter can run anything.
//! - What a program does without running another: `find -delete`, `python3 -c` writing files,
//!   `tee` over a file, `cp` onto a binary. A deny list names programs, not effects.
//! - Other names for the same program: a copy or link (`cp /bin/rm x; ./x`), another
//!   multi-call binary, a function or alias named like an allowed program (alias bodies are not
//!   read; function bodies are).
//! - Scripts that are not on the command line: `source f`, `. f` (the name is checked, the file
//!   is not), `sh file.sh` or `… | sh` (reported as dynamic, so only an allow list refuses them).
//! - Dynamic names under a deny-only policy: `$cmd`, `eval "$x"`, `{rm,-rf,x}` brace expansion,
//!   scripts over 1 MiB and nesting over 32 levels are dynamic, and a deny list cannot judge
//!   them. Use an allow list where that matters.
//! - The shell language exactly: the parser covers POSIX sh and the common bash forms; unusual
//!   syntax (`coproc`, `fish`/`csh` scripts, `env -S` escapes, aliases) is read approximately.
//!   Unterminated quotes are read to the end of the script, as one word.
//!
//! An allow list need not name harmless shell builtins (`cd`, `export`, `test`, `[`, `read`,
//! `true`, `echo`, … — those that run no other command; `eval`, `exec`, `source`, `command` and
//! `trap` are judged like programs), nor the shell of `sh -c SCRIPT`, which only carries the
//! script whose commands are checked. Deny patterns apply to both.

use std::collections::{HashSet, VecDeque};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::core::error::{ErrorCode, Result, SandboxError};

/// Scripts longer than this are not parsed: the whole script counts as one dynamic command. A
/// policy check should stay cheap next to the command it guards, and no agent writes such scripts.
const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Nesting deeper than this (`$( $( … ) )`, `sh -c` in `sh -c`, `find -exec find -exec …`) is
/// not followed; it counts as a dynamic command. Keeps the recursive parser off the stack limit.
const MAX_DEPTH: usize = 32;
/// The longest text kept in a [`Program::Dynamic`] or quoted in a message.
const MAX_TEXT_CHARS: usize = 120;
/// The longest command line quoted in a message.
const MAX_LINE_CHARS: usize = 200;

// ------------------------------------------------------------------ the policy

#[derive(Debug, Clone)]
struct Patterns {
  /// as given, for accessors and messages
  source: Vec<String>,
  set: GlobSet,
}

impl Patterns {
  /// `field` is `allow` or `deny`, for messages naming `commandPolicy.<field>[i]`.
  fn compile(field: &str, patterns: Vec<String>) -> Result<Self> {
    let mut builder = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
      let at = format!("commandPolicy.{field}[{i}]");
      if p.trim().is_empty() {
        return Err(SandboxError::invalid_config(format!(
          "{at} is empty; give a program name or glob such as \"rm\" or \"python3*\""
        )));
      }
      // Both would compile and then silently never match, which for a deny list means silently
      // not protecting: patterns are matched against a bare program name.
      if p.contains('/') {
        return Err(SandboxError::invalid_config(format!(
          "{at} ({p:?}) contains '/': patterns match a program's name without its directory \
           (\"rm\" also matches /bin/rm)"
        )));
      }
      if p.chars().any(char::is_whitespace) {
        return Err(SandboxError::invalid_config(format!(
          "{at} ({p:?}) contains a space: patterns match program names, not command lines or \
           arguments (\"rm\", not \"rm -rf\")"
        )));
      }
      let glob = GlobBuilder::new(p)
        .build()
        .map_err(|e| SandboxError::invalid_config(format!("{at} ({p:?}) is not a valid glob: {}", e.kind())))?;
      builder.add(glob);
    }
    let set = builder
      .build()
      .map_err(|e| SandboxError::invalid_config(format!("commandPolicy.{field} cannot be compiled: {e}")))?;
    Ok(Self { source: patterns, set })
  }

  /// The first pattern (in list order) matching `name`.
  fn first_match(&self, name: &str) -> Option<&str> {
    self.set.matches(name).into_iter().min().map(|i| self.source[i].as_str())
  }
}

/// An optional command policy, `{ allow?: string[], deny?: string[] }`. See the module docs for
/// what it checks and, more importantly, what it cannot see.
#[derive(Debug, Clone)]
pub struct CommandPolicy {
  /// `None`: every program not denied may run. `Some` (even empty): only programs matching it.
  allow: Option<Patterns>,
  deny: Patterns,
}

impl CommandPolicy {
  /// Patterns are globs (globset syntax: `*`, `?`, `[ab]`, `{a,b}`) matched against a program's
  /// basename (`"rm"`, `"python3*"`, `"git-*"`). An empty or invalid pattern, or one with a `/` or
  /// a space (it could never match a name), is an `INVALID_CONFIG` error naming
  /// `commandPolicy.allow[i]` / `commandPolicy.deny[i]`. An empty `allow` list allows nothing.
  pub fn new(allow: Option<Vec<String>>, deny: Option<Vec<String>>) -> Result<Self> {
    let allow = allow.map(|a| Patterns::compile("allow", a)).transpose()?;
    let deny = Patterns::compile("deny", deny.unwrap_or_default())?;
    Ok(Self { allow, deny })
  }

  pub fn allow_patterns(&self) -> Option<&[String]> {
    self.allow.as_ref().map(|a| a.source.as_slice())
  }

  pub fn deny_patterns(&self) -> &[String] {
    &self.deny.source
  }

  /// `Ok(())` when the command may run, else a `PERMISSION_DENIED` error whose message names the
  /// offending program, the command line, the rule, and how to change the policy.
  pub fn check(&self, command: &str, args: &[String]) -> Result<()> {
    let found = programs(command, args);
    // Deny first over every program, so a denied program is reported even when an earlier one
    // is also missing from the allow list: deny wins.
    for p in &found {
      if let Program::Name(name) = p {
        if let Some(pattern) = self.deny.first_match(name) {
          return Err(denied(format!(
            "{} is denied by the command policy: it matches commandPolicy.deny pattern {pattern:?} \
             (command: `{}`); remove the pattern from commandPolicy.deny to run it",
            show_name(name),
            command_line(command, args)
          )));
        }
      }
    }
    let Some(allow) = &self.allow else { return Ok(()) };
    // The shell of `sh -c SCRIPT` only carries the script, whose commands are checked one by one;
    // requiring `sh` in every allow list would only teach people to allow it everywhere.
    let carrier = is_shell(basename(command)) && args.iter().any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
    for (i, p) in found.iter().enumerate() {
      match p {
        Program::Name(name) if i == 0 && carrier && name == basename(command) => {}
        Program::Name(name) if HARMLESS_BUILTINS.contains(&name.as_str()) => {}
        Program::Name(name) if !allow.set.is_match(name.as_str()) => {
          return Err(denied(format!(
            "{} is not allowed by the command policy: it matches no pattern of commandPolicy.allow \
             (command: `{}`); add it to commandPolicy.allow to run it",
            show_name(name),
            command_line(command, args)
          )));
        }
        Program::Dynamic(what) => {
          return Err(denied(format!(
            "`{}` is not allowed by the command policy: it runs a command whose name is only known \
             when it runs ({what}), so commandPolicy.allow cannot verify it; write the program's \
             name literally (not through a variable, $(…), eval, or a script read from a file or \
             stdin), or remove commandPolicy.allow",
            command_line(command, args)
          )));
        }
        Program::Name(_) => {}
      }
    }
    Ok(())
  }
}

/// Shell builtins that run no program and change nothing outside the shell: an allow list need
/// not name them (a deny pattern still applies). `exec`, `eval`, `source`, `command`, `trap` and
/// the like are not here: they run other commands.
const HARMLESS_BUILTINS: [&str; 26] = [
  "cd", "export", "test", "[", "[[", "true", "false", ":", "set", "unset", "shift", "read", "local", "return", "exit",
  "wait", "echo", "printf", "pwd", "readonly", "declare", "typeset", "break", "continue", "getopts", "let",
];

fn is_shell(name: &str) -> bool {
  matches!(
    name,
    "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh" | "mksh" | "lksh" | "oksh" | "pdksh" | "yash" | "posh" | "rbash" | "hush"
  )
}

fn denied(message: String) -> SandboxError {
  SandboxError::new(ErrorCode::PermissionDenied, message)
}

fn show_name(name: &str) -> String {
  format!("{:?}", truncate(name, MAX_TEXT_CHARS))
}

/// The command line as a shell would read it back, shortened (for messages and the sandbox log).
pub fn command_line(command: &str, args: &[String]) -> String {
  let mut line = quote(command);
  for a in args {
    line.push(' ');
    line.push_str(&quote(a));
  }
  truncate(&line, MAX_LINE_CHARS)
}

fn quote(word: &str) -> String {
  let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
  if !word.is_empty() && word.chars().all(plain) {
    word.to_string()
  } else {
    format!("'{}'", word.replace('\'', "'\\''"))
  }
}

fn truncate(text: &str, max_chars: usize) -> String {
  match text.char_indices().nth(max_chars) {
    Some((at, _)) => format!("{}…", &text[..at]),
    None => text.to_string(),
  }
}

// ------------------------------------------------------------------ programs of a command line

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
  /// a program's basename (`rm` for `/bin/rm`)
  Name(String),
  /// a command word not known before it runs (`$cmd`, `$(…)` as a command, eval's argument, a
  /// glob, a script read from a file or stdin); the text says which
  Dynamic(String),
}

fn dynamic(text: &str) -> Program {
  Program::Dynamic(truncate(text, MAX_TEXT_CHARS))
}

/// Every program a command line (an argv, as a sandbox runs it, without a shell) would run: the
/// program itself (basename); the program a wrapper runs (`env`, `sudo`, `xargs`, `timeout`, …);
/// when it is a shell (sh, bash, dash, ash, zsh, ksh, `busybox sh`) with `-c SCRIPT` (also
/// combined flags like `-lc`, `-ec`), the commands of SCRIPT; a shell without `-c` runs a file or
/// stdin the policy cannot read, a [`Program::Dynamic`]. Each program is listed once, in order of
/// first appearance.
pub fn programs(command: &str, args: &[String]) -> Vec<Program> {
  let mut p = Parser::new("", 0);
  let words = std::iter::once(command).chain(args.iter().map(String::as_str)).map(Word::literal).collect();
  p.analyze(words);
  dedup(p.out)
}

/// The command names of a POSIX shell script (with the common bash extensions), each once, in
/// order of first appearance. Never fails: what it cannot read it reads as well as it can.
pub fn shell_commands(script: &str) -> Vec<Program> {
  let mut p = Parser::new("", 0);
  p.script(script);
  dedup(p.out)
}

fn dedup(programs: Vec<Program>) -> Vec<Program> {
  let mut seen = HashSet::new();
  programs
    .into_iter()
    .filter(|p| match p {
      Program::Name(n) => seen.insert((false, n.clone())),
      Program::Dynamic(d) => seen.insert((true, d.clone())),
    })
    .collect()
}

fn basename(path: &str) -> &str {
  let trimmed = path.trim_end_matches('/');
  trimmed.rsplit('/').next().unwrap_or(trimmed)
}

fn is_name(s: &str) -> bool {
  let mut chars = s.chars();
  matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
    && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=…` as `env` and `sudo` take it (their arguments are plain strings).
fn is_env_assignment(arg: &str) -> bool {
  matches!(arg.find('='), Some(i) if i > 0)
}

// ------------------------------------------------------------------ words

/// In `Word::shape`, a character that was quoted or escaped.
const QUOTED: char = '\u{1}';
/// In `Word::shape`, a character of an expansion (`$x`, `$(…)`, …).
const EXPANDED: char = '\u{2}';

#[derive(Debug, Clone, Default)]
struct Word {
  /// after quote removal; expansions stay as written (`$HOME/bin`)
  value: String,
  /// `value` with quoted characters as `QUOTED` and expanded ones as `EXPANDED`: what the shell
  /// itself will interpret (reserved words, assignments, globs)
  shape: String,
  /// as written, for messages
  raw: String,
  /// part of the value is only known when it runs
  dynamic: bool,
  /// any quoting or escaping
  quoted: bool,
  /// an unquoted glob, extglob or brace expansion: the shell may turn it into other words
  pattern: bool,
}

impl Word {
  /// An argv entry: taken as is, no shell reads it.
  fn literal(s: &str) -> Word {
    Word { value: s.to_string(), raw: s.to_string(), quoted: true, ..Default::default() }
  }

  fn push_plain(&mut self, c: char) {
    self.value.push(c);
    self.shape.push(c);
  }

  fn push_quoted(&mut self, c: char) {
    self.value.push(c);
    self.shape.push(QUOTED);
    self.quoted = true;
  }

  fn push_expansion(&mut self, text: &str) {
    self.value.push_str(text);
    self.shape.extend(text.chars().map(|_| EXPANDED));
    self.dynamic = true;
  }

  fn is_reserved(&self, word: &str) -> bool {
    !self.quoted && !self.dynamic && self.value == word
  }

  /// `NAME=`, `NAME+=`, `NAME[i]=` with an unquoted name: an assignment, not a command.
  fn is_assignment(&self) -> bool {
    let Some(eq) = self.shape.find('=') else { return false };
    let name = self.shape[..eq].strip_suffix('+').unwrap_or(&self.shape[..eq]);
    let name = match name.find('[') {
      Some(b) if name.ends_with(']') => &name[..b],
      _ => name,
    };
    is_name(name)
  }

  /// A `(` right after this word belongs to it: an array assignment `a=(…)` or an extglob `@(…)`.
  fn opens_parens(&self) -> Option<bool> {
    if let Some(before) = self.shape.strip_suffix('=') {
      let name = before.strip_suffix('+').unwrap_or(before);
      return is_name(name).then_some(false);
    }
    matches!(self.shape.chars().last(), Some('?' | '*' | '+' | '@' | '!')).then_some(true)
  }
}

fn shape_is_pattern(shape: &str) -> bool {
  if shape.contains(['*', '?']) {
    return true;
  }
  if let Some(i) = shape.find('[') {
    if shape[i..].contains(']') {
      return true;
    }
  }
  if let Some(i) = shape.find('{') {
    if let Some(j) = shape[i..].find('}') {
      let inner = &shape[i + 1..i + j];
      return inner.contains(',') || inner.contains("..");
    }
  }
  false
}

// ------------------------------------------------------------------ the shell parser

#[derive(Debug)]
enum Tok {
  Word(Word),
  Op(Op),
  /// an arithmetic command `(( … ))` (its `$(…)` already read)
  Arith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
  Semi,
  Amp,
  Pipe,
  AndIf,
  OrIf,
  Newline,
  LParen,
  RParen,
  /// `;;`, `;&`, `;;&`
  CaseEnd,
  /// any redirection operator; the next word is its target (or a here-document delimiter)
  Redir,
}

/// What the next word of a list means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
  /// a command word, reserved word or assignment
  Cmd,
  /// the arguments of a simple command
  Args,
  /// after `time`: its options, then a command
  Time,
  /// `for NAME in …` up to `;`, a newline or `do`
  ForHead,
  /// `case WORD` up to `in`
  CaseWord,
  /// a case pattern, up to `)`
  CasePattern,
  /// after `function`: the name
  FuncName,
  /// after a function name: `()`, then the body
  FuncParens,
  /// inside `[[ … ]]`: operands, not commands
  DblBracket,
  /// after `fi`, `done`, `}`, `)`, `(( ))`: only redirections and operators follow
  After,
}

/// Open constructs that change what `)` and `;;` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
  Subshell,
  Case,
}

struct HereDoc {
  delimiter: String,
  strip_tabs: bool,
  /// an unquoted delimiter: `$(…)` in the body runs
  expand: bool,
}

/// A hand-written reader of POSIX shell (plus common bash forms). It does not build a syntax
/// tree: it reads tokens in order, tracks just enough context (subshells, `case`, reserved words)
/// to know which word is a command, and recurses into command substitutions as it meets them.
struct Parser {
  s: Vec<char>,
  pos: usize,
  /// nesting level, shared with nested scripts, against `MAX_DEPTH`
  depth: usize,
  out: Vec<Program>,
  /// here-documents whose bodies start after the next newline
  heredocs: Vec<HereDoc>,
  /// `<<` (false) or `<<-` (true) was just read: the next word is a delimiter
  want_delimiter: Option<bool>,
}

impl Parser {
  fn new(text: &str, depth: usize) -> Self {
    Self { s: text.chars().collect(), pos: 0, depth, out: Vec::new(), heredocs: Vec::new(), want_delimiter: None }
  }

  fn peek(&self) -> Option<char> {
    self.s.get(self.pos).copied()
  }

  fn peek_at(&self, n: usize) -> Option<char> {
    self.s.get(self.pos + n).copied()
  }

  fn text(&self, from: usize, to: usize) -> String {
    self.s[from..to.min(self.s.len())].iter().collect()
  }

  fn too_deep(&mut self) {
    self.out.push(dynamic(&format!("commands nested more than {MAX_DEPTH} levels deep")));
  }

  /// Enters a nested construct of this text; at the limit, gives up on the rest of the text.
  fn enter(&mut self) -> bool {
    if self.depth >= MAX_DEPTH {
      self.too_deep();
      self.pos = self.s.len();
      return false;
    }
    self.depth += 1;
    true
  }

  /// Parses another script (a `-c` argument, eval's words, a backtick body) into `out`.
  fn script(&mut self, text: &str) {
    if text.len() > MAX_SCRIPT_BYTES {
      self.out.push(dynamic(&format!("a script of {} bytes; the policy reads scripts up to 1 MiB", text.len())));
      return;
    }
    if self.depth >= MAX_DEPTH {
      self.too_deep();
      return;
    }
    let mut sub = Parser::new(text, self.depth + 1);
    sub.parse_list(false);
    self.out.append(&mut sub.out);
  }

  /// A word's script: parsed when static, dynamic otherwise.
  fn script_word(&mut self, w: &Word) {
    if w.dynamic {
      self.out.push(dynamic(&w.raw));
    } else {
      self.script(&w.value);
    }
  }

  // ---------------------------------------------------------------- tokens

  fn next_tok(&mut self) -> Option<Tok> {
    loop {
      let c = self.peek()?;
      match c {
        ' ' | '\t' | '\r' => self.pos += 1,
        '\\' if self.peek_at(1) == Some('\n') => self.pos += 2,
        '#' => {
          while self.peek().is_some_and(|c| c != '\n') {
            self.pos += 1;
          }
        }
        '\n' => {
          self.pos += 1;
          self.want_delimiter = None;
          self.heredoc_bodies();
          return Some(Tok::Op(Op::Newline));
        }
        ';' => {
          self.pos += 1;
          return Some(Tok::Op(match self.peek() {
            Some(';') => {
              self.pos += 1;
              if self.peek() == Some('&') {
                self.pos += 1;
              }
              Op::CaseEnd
            }
            Some('&') => {
              self.pos += 1;
              Op::CaseEnd
            }
            _ => Op::Semi,
          }));
        }
        '|' => {
          self.pos += 1;
          return Some(Tok::Op(match self.peek() {
            Some('|') => {
              self.pos += 1;
              Op::OrIf
            }
            Some('&') => {
              self.pos += 1;
              Op::Pipe
            }
            _ => Op::Pipe,
          }));
        }
        '&' => {
          self.pos += 1;
          return Some(Tok::Op(match self.peek() {
            Some('&') => {
              self.pos += 1;
              Op::AndIf
            }
            Some('>') => {
              self.pos += 1;
              if self.peek() == Some('>') {
                self.pos += 1;
              }
              Op::Redir
            }
            _ => Op::Amp,
          }));
        }
        '(' => {
          if self.peek_at(1) == Some('(') && self.arith_closes(self.pos + 2) {
            self.pos += 2;
            self.arith();
            return Some(Tok::Arith);
          }
          self.pos += 1;
          return Some(Tok::Op(Op::LParen));
        }
        ')' => {
          self.pos += 1;
          return Some(Tok::Op(Op::RParen));
        }
        '<' | '>' if self.peek_at(1) == Some('(') => return Some(Tok::Word(self.read_word())),
        '<' | '>' => return Some(Tok::Op(self.redirection())),
        '0'..='9' => {
          // an IO number (`2>`, `10<&0`) belongs to the redirection
          let mut end = self.pos;
          while self.s.get(end).is_some_and(char::is_ascii_digit) {
            end += 1;
          }
          if matches!(self.s.get(end), Some('<' | '>')) && self.s.get(end + 1) != Some(&'(') {
            self.pos = end;
            return Some(Tok::Op(self.redirection()));
          }
          return Some(Tok::Word(self.read_word()));
        }
        _ => return Some(Tok::Word(self.read_word())),
      }
    }
  }

  /// At `<` or `>`: reads one redirection operator.
  fn redirection(&mut self) -> Op {
    let first = self.s[self.pos];
    self.pos += 1;
    match (first, self.peek()) {
      ('<', Some('<')) => {
        self.pos += 1;
        match self.peek() {
          Some('<') => self.pos += 1, // here-string: the next word is the text
          Some('-') => {
            self.pos += 1;
            self.want_delimiter = Some(true);
          }
          _ => self.want_delimiter = Some(false),
        }
      }
      ('<', Some('&' | '>')) | ('>', Some('>' | '&' | '|')) => self.pos += 1,
      _ => {}
    }
    Op::Redir
  }

  fn read_word(&mut self) -> Word {
    let start = self.pos;
    let mut w = Word::default();
    if matches!(self.peek(), Some('<' | '>')) && self.peek_at(1) == Some('(') {
      // process substitution: its commands run; the word becomes a /dev/fd path
      self.pos += 2;
      self.substitution();
      w.push_expansion(&self.text(start, self.pos));
    }
    while let Some(c) = self.peek() {
      match c {
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '<' | '>' | ')' => break,
        '(' => match w.opens_parens() {
          Some(extglob) => {
            w.pattern |= extglob;
            self.read_parens(&mut w);
          }
          None => break,
        },
        _ => self.read_part(&mut w),
      }
    }
    w.raw = self.text(start, self.pos);
    w.pattern |= shape_is_pattern(&w.shape);
    if let Some(strip_tabs) = self.want_delimiter.take() {
      self.heredocs.push(HereDoc { delimiter: w.value.clone(), strip_tabs, expand: !w.quoted });
    }
    w
  }

  /// `(…)` inside a word (array assignment, extglob): blanks and operators are part of the word.
  fn read_parens(&mut self, w: &mut Word) {
    let mut depth = 0usize;
    while let Some(c) = self.peek() {
      match c {
        '(' => {
          depth += 1;
          w.push_plain(c);
          self.pos += 1;
        }
        ')' => {
          depth = depth.saturating_sub(1);
          w.push_plain(c);
          self.pos += 1;
          if depth == 0 {
            break;
          }
        }
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '<' | '>' => {
          w.push_plain(c);
          self.pos += 1;
        }
        _ => self.read_part(w),
      }
    }
  }

  /// One unit of a word at `pos`: a character, an escape, a quoted string or an expansion.
  /// Always advances.
  fn read_part(&mut self, w: &mut Word) {
    let c = self.s[self.pos];
    match c {
      '\\' => match self.peek_at(1) {
        Some('\n') => self.pos += 2,
        Some(n) => {
          w.push_quoted(n);
          self.pos += 2;
        }
        None => {
          w.push_quoted('\\');
          self.pos += 1;
        }
      },
      '\'' => {
        self.pos += 1;
        w.quoted = true;
        while let Some(c) = self.peek() {
          self.pos += 1;
          if c == '\'' {
            break;
          }
          w.push_quoted(c);
        }
      }
      '"' => {
        self.pos += 1;
        self.double_quoted(w);
      }
      '$' => self.dollar(w, false),
      '`' => self.backticks(w),
      _ => {
        w.push_plain(c);
        self.pos += 1;
      }
    }
  }

  /// After an opening `"`: up to the closing one (or the end).
  fn double_quoted(&mut self, w: &mut Word) {
    w.quoted = true;
    while let Some(c) = self.peek() {
      match c {
        '"' => {
          self.pos += 1;
          return;
        }
        '\\' => match self.peek_at(1) {
          Some('\n') => self.pos += 2,
          Some(n @ ('$' | '`' | '"' | '\\')) => {
            w.push_quoted(n);
            self.pos += 2;
          }
          _ => {
            w.push_quoted('\\');
            self.pos += 1;
          }
        },
        '$' => self.dollar(w, true),
        '`' => self.backticks(w),
        _ => {
          w.push_quoted(c);
          self.pos += 1;
        }
      }
    }
  }

  /// At `$`: an expansion (recursing into the commands it runs), `$'…'`, `$"…"`, or a plain `$`.
  fn dollar(&mut self, w: &mut Word, in_quotes: bool) {
    let start = self.pos;
    match self.peek_at(1) {
      Some('(') if self.peek_at(2) == Some('(') && self.arith_closes(self.pos + 3) => {
        self.pos += 3;
        self.arith();
      }
      Some('(') => {
        self.pos += 2;
        self.substitution();
      }
      Some('{') => {
        self.pos += 2;
        self.parameter(in_quotes);
      }
      Some('\'') if !in_quotes => {
        self.pos += 2;
        self.ansi_c(w);
        return;
      }
      Some('"') if !in_quotes => {
        // $"…" is a translatable "…": the caller reads the quotes next
        self.pos += 1;
        return;
      }
      Some(c) if c == '_' || c.is_ascii_alphabetic() => {
        self.pos += 1;
        while self.peek().is_some_and(|c| c == '_' || c.is_ascii_alphanumeric()) {
          self.pos += 1;
        }
      }
      Some(c) if c.is_ascii_digit() || "@*#?-$!".contains(c) => self.pos += 2,
      _ => {
        if in_quotes {
          w.push_quoted('$');
        } else {
          w.push_plain('$');
        }
        self.pos += 1;
        return;
      }
    }
    w.push_expansion(&self.text(start, self.pos));
  }

  /// After `$(` or `<(`: the commands up to the matching `)`.
  fn substitution(&mut self) {
    if self.enter() {
      self.parse_list(true);
      self.depth -= 1;
    }
  }

  /// After `${`: up to the matching `}`; `${x:-$(cmd)}` runs cmd.
  fn parameter(&mut self, in_quotes: bool) {
    if !self.enter() {
      return;
    }
    let mut scratch = Word::default();
    let mut depth = 0usize;
    while let Some(c) = self.peek() {
      match c {
        '}' if depth == 0 => {
          self.pos += 1;
          break;
        }
        '}' => {
          depth -= 1;
          self.pos += 1;
        }
        '{' => {
          depth += 1;
          self.pos += 1;
        }
        '\'' if !in_quotes => self.read_part(&mut scratch),
        '"' => {
          self.pos += 1;
          self.double_quoted(&mut scratch);
        }
        '\\' => self.pos = (self.pos + 2).min(self.s.len()),
        '$' => self.dollar(&mut scratch, true),
        '`' => self.backticks(&mut scratch),
        _ => self.pos += 1,
      }
    }
    self.depth -= 1;
  }

  /// Whether `((` (its body starting at `from`) is arithmetic: its parentheses close with `))`.
  /// Otherwise it is two subshells (`((cd a) && b)`), as bash decides too.
  fn arith_closes(&self, from: usize) -> bool {
    let mut depth = 0usize;
    let mut i = from;
    while let Some(&c) = self.s.get(i) {
      match c {
        '(' => depth += 1,
        ')' if depth == 0 => return self.s.get(i + 1) == Some(&')'),
        ')' => depth -= 1,
        '\\' => i += 1,
        '\'' | '"' => {
          i += 1;
          while self.s.get(i).is_some_and(|&q| q != c) {
            i += 1;
          }
        }
        _ => {}
      }
      i += 1;
    }
    true
  }

  /// After `((` or `$((`: up to the matching `))`, reading the expansions inside.
  fn arith(&mut self) {
    if !self.enter() {
      return;
    }
    let mut scratch = Word::default();
    let mut depth = 0usize;
    while let Some(c) = self.peek() {
      match c {
        '(' => {
          depth += 1;
          self.pos += 1;
        }
        ')' if depth == 0 => {
          self.pos += 1;
          if self.peek() == Some(')') {
            self.pos += 1;
          }
          break;
        }
        ')' => {
          depth -= 1;
          self.pos += 1;
        }
        '$' => self.dollar(&mut scratch, true),
        '`' => self.backticks(&mut scratch),
        '"' | '\'' | '\\' => self.read_part(&mut scratch),
        _ => self.pos += 1,
      }
    }
    self.depth -= 1;
  }

  /// At a backtick: the (unescaped) body up to the closing one, parsed as a script.
  fn backticks(&mut self, w: &mut Word) {
    let start = self.pos;
    self.pos += 1;
    let mut body = String::new();
    while let Some(c) = self.peek() {
      match c {
        '`' => {
          self.pos += 1;
          break;
        }
        '\\' => {
          match self.peek_at(1) {
            Some(n @ ('$' | '`' | '\\')) => body.push(n),
            Some(n) => {
              body.push('\\');
              body.push(n);
            }
            None => body.push('\\'),
          }
          self.pos = (self.pos + 2).min(self.s.len());
        }
        _ => {
          body.push(c);
          self.pos += 1;
        }
      }
    }
    self.script(&body);
    w.push_expansion(&self.text(start, self.pos));
  }

  /// After `$'`: bash's ANSI-C string, decoded (so `$'\x72m'` is `rm`).
  fn ansi_c(&mut self, w: &mut Word) {
    w.quoted = true;
    while let Some(c) = self.peek() {
      self.pos += 1;
      match c {
        '\'' => return,
        '\\' => {
          let Some(e) = self.peek() else {
            w.push_quoted('\\');
            return;
          };
          self.pos += 1;
          let decoded = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            '\\' | '\'' | '"' | '?' => Some(e),
            'x' => self.radix_char(16, 2),
            'u' => self.radix_char(16, 4),
            'U' => self.radix_char(16, 8),
            '0'..='7' => {
              self.pos -= 1;
              self.radix_char(8, 3)
            }
            'c' => self.peek().map(|c| {
              self.pos += 1;
              char::from_u32(c as u32 & 0x1f).unwrap_or(c)
            }),
            _ => None,
          };
          match decoded {
            Some(d) => w.push_quoted(d),
            None => {
              w.push_quoted('\\');
              w.push_quoted(e);
            }
          }
        }
        _ => w.push_quoted(c),
      }
    }
  }

  fn radix_char(&mut self, radix: u32, max_digits: usize) -> Option<char> {
    let mut value = 0u32;
    let mut digits = 0;
    while digits < max_digits {
      let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) else { break };
      value = value * radix + d;
      digits += 1;
      self.pos += 1;
    }
    if digits == 0 {
      return None;
    }
    char::from_u32(value).or(Some(char::REPLACEMENT_CHARACTER))
  }

  /// After a newline: skips the bodies of pending here-documents, reading the `$(…)` of those
  /// whose delimiter is unquoted (they run).
  fn heredoc_bodies(&mut self) {
    for doc in std::mem::take(&mut self.heredocs) {
      while self.pos < self.s.len() {
        let eol = self.s[self.pos..].iter().position(|&c| c == '\n').map_or(self.s.len(), |i| self.pos + i);
        let mut line = &self.s[self.pos..eol];
        if doc.strip_tabs {
          while let ['\t', rest @ ..] = line {
            line = rest;
          }
        }
        if line.iter().copied().eq(doc.delimiter.chars()) {
          self.pos = (eol + 1).min(self.s.len());
          break;
        }
        if !doc.expand {
          self.pos = (eol + 1).min(self.s.len());
          continue;
        }
        let mut scratch = Word::default();
        while let Some(c) = self.peek() {
          match c {
            '\n' => {
              self.pos += 1;
              break;
            }
            '\\' => self.pos = (self.pos + 2).min(self.s.len()),
            '$' => self.dollar(&mut scratch, true),
            '`' => self.backticks(&mut scratch),
            _ => self.pos += 1,
          }
        }
      }
    }
  }

  // ---------------------------------------------------------------- lists and commands

  /// Reads a list of commands to the end of the text or, with `stop_at_paren`, to the `)` that
  /// closes a `$(` / `<(` (consumed).
  fn parse_list(&mut self, stop_at_paren: bool) {
    let mut mode = Mode::Cmd;
    let mut words: Vec<Word> = Vec::new();
    // where the current simple command's programs go: before those of its arguments' `$(…)`
    let mut mark = 0;
    let mut redirect_target = false;
    let mut stack: Vec<Ctx> = Vec::new();
    while let Some(tok) = self.next_tok() {
      match tok {
        Tok::Word(w) => {
          if std::mem::take(&mut redirect_target) {
            continue;
          }
          if mode == Mode::Time && !w.quoted && w.value.starts_with('-') {
            continue;
          }
          if matches!(mode, Mode::Time | Mode::FuncParens) {
            mode = Mode::Cmd;
          }
          match mode {
            Mode::Cmd => {
              mode = self.command_word(w, &mut words, &mut stack);
              mark = self.out.len();
            }
            Mode::Args => words.push(w),
            Mode::ForHead if w.is_reserved("do") => mode = Mode::Cmd,
            Mode::CaseWord if w.is_reserved("in") => mode = Mode::CasePattern,
            Mode::CasePattern if w.is_reserved("esac") => {
              if stack.last() == Some(&Ctx::Case) {
                stack.pop();
              }
              mode = Mode::After;
            }
            Mode::FuncName => mode = Mode::FuncParens,
            Mode::DblBracket if w.is_reserved("]]") => mode = Mode::After,
            _ => {}
          }
        }
        Tok::Arith => {
          if matches!(mode, Mode::Cmd | Mode::Time) {
            mode = Mode::After;
          }
        }
        Tok::Op(op) => {
          match mode {
            Mode::DblBracket | Mode::CaseWord => continue,
            Mode::CasePattern => {
              if op == Op::RParen {
                mode = Mode::Cmd;
              }
              continue;
            }
            Mode::ForHead => {
              if matches!(op, Op::Semi | Op::Newline) {
                mode = Mode::Cmd;
              }
              continue;
            }
            Mode::Time => mode = Mode::Cmd,
            _ => {}
          }
          if op == Op::Redir {
            redirect_target = true;
            continue;
          }
          redirect_target = false;
          match op {
            Op::LParen => match mode {
              // `name ( )`: a function definition; the body follows
              Mode::Args if words.len() == 1 => {
                words.clear();
                mode = Mode::FuncParens;
              }
              Mode::Cmd => stack.push(Ctx::Subshell),
              _ => {}
            },
            Op::RParen => {
              if mode == Mode::FuncParens {
                mode = Mode::Cmd;
                continue;
              }
              self.flush(&mut words, mark);
              if stack.last() == Some(&Ctx::Subshell) {
                stack.pop();
              } else if stop_at_paren {
                return;
              }
              mode = Mode::After;
            }
            Op::CaseEnd => {
              self.flush(&mut words, mark);
              mode = if stack.last() == Some(&Ctx::Case) { Mode::CasePattern } else { Mode::Cmd };
            }
            _ => {
              self.flush(&mut words, mark);
              mode = Mode::Cmd;
            }
          }
        }
      }
    }
    self.flush(&mut words, mark);
  }

  /// A word where a command may start: a reserved word, an assignment, or the command itself.
  fn command_word(&mut self, w: Word, words: &mut Vec<Word>, stack: &mut Vec<Ctx>) -> Mode {
    if !w.quoted && !w.dynamic {
      match w.value.as_str() {
        "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "coproc" => return Mode::Cmd,
        "fi" | "done" | "}" => return Mode::After,
        "esac" => {
          if stack.last() == Some(&Ctx::Case) {
            stack.pop();
          }
          return Mode::After;
        }
        "for" | "select" => return Mode::ForHead,
        "case" => {
          stack.push(Ctx::Case);
          return Mode::CaseWord;
        }
        "function" => return Mode::FuncName,
        "[[" => return Mode::DblBracket,
        // bash's `time` keyword times a whole pipeline (`time { …; }`); dash runs /usr/bin/time
        "time" => {
          self.out.push(Program::Name("time".into()));
          return Mode::Time;
        }
        _ => {}
      }
    }
    // the shape knows which characters were quoted: `"A"=1` is a command, `A="$(x)"` is not
    if w.is_assignment() {
      return Mode::Cmd;
    }
    words.push(w);
    Mode::Args
  }

  /// Ends a simple command: its programs go to `out` at `mark`, ahead of those its arguments'
  /// substitutions already added, so the list reads in command order.
  fn flush(&mut self, words: &mut Vec<Word>, mark: usize) {
    if words.is_empty() {
      return;
    }
    let tail = self.out.split_off(mark.min(self.out.len()));
    self.analyze(std::mem::take(words));
    self.out.extend(tail);
  }

  /// The programs of one argv: the command, then whatever it runs (wrappers, `-c` scripts,
  /// `find -exec`, `eval`).
  fn analyze(&mut self, words: Vec<Word>) {
    let mut todo: VecDeque<(Vec<Word>, usize)> = VecDeque::from([(words, 0)]);
    while let Some((words, level)) = todo.pop_front() {
      if self.depth + level > MAX_DEPTH {
        self.too_deep();
        continue;
      }
      let mut rest: &[Word] = &words;
      while let Some(first) = rest.first() {
        if first.dynamic || first.pattern {
          self.out.push(dynamic(&first.raw));
          break;
        }
        let name = basename(&first.value).to_string();
        self.out.push(Program::Name(name.clone()));
        let args = &rest[1..];
        match self.runs(&name, args, level, &mut todo) {
          Some(i) if i < args.len() => rest = &args[i..],
          _ => break,
        }
      }
    }
  }

  /// What program `name` runs from `args`: `Some(i)` when `args[i..]` is another argv (a
  /// wrapper); otherwise handles scripts and `-exec` itself and returns `None`.
  fn runs(
    &mut self,
    name: &str,
    args: &[Word],
    level: usize,
    todo: &mut VecDeque<(Vec<Word>, usize)>,
  ) -> Option<usize> {
    let has_long =
      |end: usize, longs: &[&str]| args[..end.min(args.len())].iter().any(|w| longs.contains(&w.value.as_str()));
    match name {
      _ if is_shell(name) => {
        self.shell(name, args);
        None
      }
      "busybox" | "builtin" | "nohup" | "setsid" => Some(options(args, "", "", &[]).0),
      "command" => {
        let (i, flags) = options(args, "", "", &[]);
        // `command -v rm` only says where rm is
        (!flags.contains(['v', 'V'])).then_some(i)
      }
      "exec" => Some(options(args, "a", "", &[]).0),
      "nice" => Some(options(args, "n", "", &["--adjustment"]).0),
      "time" => Some(options(args, "fo", "", &["--format", "--output"]).0),
      "timeout" => Some(options(args, "sk", "", &["--signal", "--kill-after"]).0 + 1),
      "xargs" => Some(
        options(
          args,
          "adEILnPs",
          "eil",
          &["--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"],
        )
        .0,
      ),
      "sudo" => {
        let longs = [
          "--user",
          "--group",
          "--close-from",
          "--chdir",
          "--host",
          "--prompt",
          "--role",
          "--type",
          "--command-timeout",
          "--other-user",
        ];
        let (mut i, flags) = options(args, "ugCDhpRrtTU", "", &longs);
        // edit, list, validate, version, remove timestamp: no command runs
        if flags.contains(['e', 'l', 'v', 'V', 'K']) || has_long(i, &["--edit", "--list", "--validate", "--version"]) {
          return None;
        }
        while args.get(i).is_some_and(|w| is_env_assignment(&w.value)) {
          i += 1;
        }
        Some(i)
      }
      "doas" => Some(options(args, "uC", "", &[]).0),
      "stdbuf" => Some(options(args, "ioe", "", &["--input", "--output", "--error"]).0),
      "chroot" => Some(options(args, "", "", &["--userspec", "--groups"]).0 + 1),
      "ionice" => {
        let (i, flags) = options(args, "cnpPu", "", &["--class", "--classdata"]);
        (!flags.contains(['p', 'P', 'u'])).then_some(i)
      }
      "taskset" => {
        let (i, flags) = options(args, "", "", &[]);
        (!flags.contains('p') && !has_long(i, &["--pid"])).then_some(i + 1)
      }
      "chrt" => {
        let (i, flags) = options(args, "TPD", "", &["--sched-runtime", "--sched-period", "--sched-deadline"]);
        (!flags.contains(['p', 'm']) && !has_long(i, &["--pid", "--max"])).then_some(i + 1)
      }
      "unshare" => Some(options(args, "SGRw", "", &["--setuid", "--setgid", "--root", "--wd"]).0),
      "nsenter" => Some(options(args, "tSG", "", &["--target", "--setuid", "--setgid"]).0),
      "env" => self.env(args, level, todo),
      "find" => {
        self.find(args, level, todo);
        None
      }
      "eval" => {
        if args.iter().any(|w| w.dynamic) {
          let text: Vec<&str> = args.iter().map(|w| w.raw.as_str()).collect();
          self.out.push(dynamic(&text.join(" ")));
        } else if !args.is_empty() {
          let text: Vec<&str> = args.iter().map(|w| w.value.as_str()).collect();
          self.script(&text.join(" "));
        }
        None
      }
      "trap" => {
        // `trap ACTION SIGNAL…`: the action runs later, in this shell
        let args = if args.first().is_some_and(|w| w.value == "--") { &args[1..] } else { args };
        if let [action, _, ..] = args {
          let v = action.value.as_str();
          // `-` and a leading signal number reset the signals instead; `''` ignores them
          let resets = matches!(v, "-" | "-p" | "-l") || (!action.dynamic && v.chars().all(|c| c.is_ascii_digit()));
          if !resets {
            self.script_word(action);
          }
        }
        None
      }
      "watch" => {
        let (i, flags) = options(args, "nq", "d", &["--interval", "--equexit"]);
        if flags.contains('x') || has_long(i, &["--exec"]) {
          return Some(i);
        }
        // watch joins its arguments and runs them with `sh -c`
        let rest = &args[i.min(args.len())..];
        if rest.iter().any(|w| w.dynamic) {
          let text: Vec<&str> = rest.iter().map(|w| w.raw.as_str()).collect();
          self.out.push(dynamic(&text.join(" ")));
        } else if !rest.is_empty() {
          let text: Vec<&str> = rest.iter().map(|w| w.value.as_str()).collect();
          self.script(&text.join(" "));
        }
        None
      }
      "flock" => {
        let (mut i, _) = options(args, "wE", "", &["--timeout", "--wait", "--conflict-exit-code"]);
        i += 1; // the lock file, directory or descriptor
        match args.get(i).map(|w| w.value.as_str()) {
          Some("-c" | "--command") => {
            if let Some(s) = args.get(i + 1) {
              self.script_word(s);
            }
            None
          }
          Some("--") => Some(i + 1),
          _ => Some(i),
        }
      }
      "su" | "runuser" => {
        let (i, flags) = options(
          args,
          "ugGcswZC",
          "",
          &["--user", "--group", "--supp-group", "--command", "--shell", "--whitelist-environment"],
        );
        if name == "runuser" && flags.contains('u') {
          return Some(i);
        }
        for (k, w) in args.iter().enumerate() {
          let v = w.value.as_str();
          if let Some(script) = v.strip_prefix("--command=").or_else(|| v.strip_prefix("--session-command=")) {
            self.script(script);
          } else if v == "--command"
            || v == "--session-command"
            || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('c'))
          {
            if let Some(s) = args.get(k + 1) {
              self.script_word(s);
            }
          }
        }
        None
      }
      _ => None,
    }
  }

  /// `sh [options] -c SCRIPT [name [args…]]`; without `-c` the shell reads a file or stdin.
  fn shell(&mut self, name: &str, args: &[Word]) {
    let mut i = 0;
    let mut has_c = false;
    while let Some(w) = args.get(i) {
      let a = w.value.as_str();
      if a == "--" || a == "-" {
        i += 1;
        break;
      }
      if let Some(long) = a.strip_prefix("--") {
        if matches!(long, "version" | "help") {
          return;
        }
        if matches!(long, "rcfile" | "init-file") {
          i += 1;
        }
        i += 1;
        continue;
      }
      if a.len() > 1 && (a.starts_with('-') || a.starts_with('+')) {
        has_c |= a.starts_with('-') && a.contains('c');
        if a[1..].contains(['o', 'O']) {
          i += 1; // -o pipefail
        }
        i += 1;
        continue;
      }
      break;
    }
    if has_c {
      if let Some(script) = args.get(i) {
        self.script_word(script);
      }
    } else {
      let from = if i < args.len() { "a script file" } else { "standard input" };
      self.out.push(dynamic(&format!("the commands {name} reads from {from}")));
    }
  }

  /// `env [options] [NAME=value…] [command [args…]]`; `-S STRING` splits STRING into words.
  fn env(&mut self, args: &[Word], level: usize, todo: &mut VecDeque<(Vec<Word>, usize)>) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = args.get(i) {
      let a = w.value.as_str();
      if w.dynamic {
        break;
      }
      // Some(Some(text)): `-S` with its text attached; Some(None): the text is the next argument
      let mut split: Option<Option<String>> = None;
      if a == "--" {
        return Some(i + 1);
      } else if let Some(text) = a.strip_prefix("--split-string=") {
        split = Some(Some(text.to_string()));
      } else if a == "--split-string" {
        split = Some(None);
      } else if a.starts_with("--") {
        i += if matches!(a, "--unset" | "--chdir") { 2 } else { 1 };
        continue;
      } else if a.len() > 1 && a.starts_with('-') {
        let mut step = 1;
        for (k, c) in a.char_indices().skip(1) {
          let attached = &a[k + c.len_utf8()..];
          if c == 'S' {
            split = Some((!attached.is_empty()).then(|| attached.to_string()));
            break;
          }
          if "uCP".contains(c) {
            if attached.is_empty() {
              step = 2;
            }
            break;
          }
        }
        if split.is_none() {
          i += step;
          continue;
        }
      } else if a == "-" || is_env_assignment(a) {
        i += 1;
        continue;
      } else {
        break;
      }
      // -S STRING: STRING's words take its place, and env reads its arguments again
      let (text, after) = match split {
        Some(Some(text)) => (text, i + 1),
        _ => match args.get(i + 1) {
          None => return None,
          Some(s) if s.dynamic => {
            self.out.push(dynamic(&s.raw));
            return None;
          }
          Some(s) => (s.value.clone(), i + 2),
        },
      };
      let mut again = vec![Word::literal("env")];
      again.extend(text.split_whitespace().map(Word::literal));
      again.extend(args[after.min(args.len())..].iter().cloned());
      todo.push_front((again, level + 1));
      return None;
    }
    Some(i)
  }

  /// `find … -exec CMD … ;` (also `+`, `-execdir`, `-ok`, `-okdir`): each CMD runs.
  fn find(&mut self, args: &[Word], level: usize, todo: &mut VecDeque<(Vec<Word>, usize)>) {
    let mut i = 0;
    while i < args.len() {
      if matches!(args[i].value.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
        let start = i + 1;
        let mut end = start;
        while let Some(w) = args.get(end) {
          if w.value == ";" || (w.value == "+" && end > start && args[end - 1].value == "{}") {
            break;
          }
          end += 1;
        }
        todo.push_back((args[start..end].to_vec(), level + 1));
        i = end + 1;
      } else {
        i += 1;
      }
    }
  }
}

/// Skips a wrapper's options: returns the index of its first operand and the short flags seen.
/// `with_arg`: short options taking the next argument (or the rest of this one); `optional_arg`:
/// short options whose value can only be attached (`-i{}`); `long_with_arg`: long options taking
/// the next argument when not written `--opt=value`.
fn options(args: &[Word], with_arg: &str, optional_arg: &str, long_with_arg: &[&str]) -> (usize, String) {
  let mut i = 0;
  let mut flags = String::new();
  while let Some(w) = args.get(i) {
    let a = w.value.as_str();
    if a == "--" {
      return (i + 1, flags);
    }
    if a.starts_with("--") {
      if !a.contains('=') && long_with_arg.contains(&a) {
        i += 1;
      }
      i += 1;
      continue;
    }
    if a.len() > 1 && a.starts_with('-') && !w.dynamic {
      for (k, c) in a.char_indices().skip(1) {
        flags.push(c);
        if optional_arg.contains(c) {
          break;
        }
        if with_arg.contains(c) {
          if k + c.len_utf8() == a.len() {
            i += 1;
          }
          break;
        }
      }
      i += 1;
      continue;
    }
    break;
  }
  (i, flags)
}

#[cfg(test)]
mod tests {
  use super::*;

  /// Programs as strings: a name as is, a dynamic one as `?text`.
  fn show(programs: Vec<Program>) -> Vec<String> {
    programs
      .into_iter()
      .map(|p| match p {
        Program::Name(n) => n,
        Program::Dynamic(d) => format!("?{d}"),
      })
      .collect()
  }

  fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
  }

  /// Runs every case and reports all mismatches at once.
  #[track_caller]
  fn table(find: impl Fn(&str) -> Vec<String>, cases: &[(&str, &[&str])]) {
    let failures: Vec<String> = cases
      .iter()
      .filter_map(|(input, want)| {
        let got = find(input);
        (got != *want).then(|| format!("{input:?}\n    got  {got:?}\n    want {want:?}"))
      })
      .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
  }

  fn script(s: &str) -> Vec<String> {
    show(shell_commands(s))
  }

  /// An argv written as one string of space-separated words (no quoting).
  fn argv(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    show(programs(words[0], &strings(&words[1..])))
  }

  #[test]
  fn lists_and_pipelines() {
    table(
      script,
      &[
        ("ls", &["ls"]),
        ("ls -la /tmp", &["ls"]),
        ("cat a | grep x | wc -l", &["cat", "grep", "wc"]),
        ("make && ./test || echo failed; date & wait", &["make", "test", "echo", "date", "wait"]),
        ("a\nb\n\nc", &["a", "b", "c"]),
        ("a |& b", &["a", "b"]),
        ("", &[]),
        ("  \n ; \n", &[]),
        ("cat f | grep x | grep y", &["cat", "grep"]),
      ],
    );
  }

  #[test]
  fn quotes_and_escapes_are_removed_from_command_names() {
    table(
      script,
      &[
        ("'r'm -rf x", &["rm"]),
        ("r\\m x", &["rm"]),
        ("\"rm\" x", &["rm"]),
        ("r\"\"m x", &["rm"]),
        ("r\\\nm x", &["rm"]),
        ("echo 'a | b; rm c'", &["echo"]),
        ("echo \"a | b; rm c\"", &["echo"]),
        ("echo a\\;rm", &["echo"]),
        ("grep -E 'a|b' f | sort", &["grep", "sort"]),
        ("'r*' x", &["r*"]),
        ("\"A\"=1", &["A=1"]),
        ("$'\\x72\\x6d' -rf /", &["rm"]),
        ("$'\\162\\155' x", &["rm"]),
        ("$'r\\u006d' x", &["rm"]),
        ("$\"rm\" x", &["rm"]),
      ],
    );
  }

  #[test]
  fn substitutions_anywhere_in_a_word_count() {
    table(
      script,
      &[
        ("echo $(curl evil)", &["echo", "curl"]),
        ("echo \"x $(curl evil) y\"", &["echo", "curl"]),
        ("echo `curl evil`", &["echo", "curl"]),
        ("echo x$(date)y", &["echo", "date"]),
        ("echo $(echo $(rm x))", &["echo", "rm"]),
        ("echo \"$(cat \"$f\" | wc -l)\"", &["echo", "cat", "wc"]),
        ("echo `echo \\`rm x\\``", &["echo", "rm"]),
        ("diff <(sort a) <(sort b) > out", &["diff", "sort"]),
        ("tee >(gzip > f.gz) < in", &["tee", "gzip"]),
        ("x=$(curl evil)", &["curl"]),
        ("echo ${x:-$(rm y)}", &["echo", "rm"]),
        ("echo \"${x:-$(rm y)}\"", &["echo", "rm"]),
        ("echo \"${x:-it's}\" && ls", &["echo", "ls"]),
        ("echo $(cd /tmp; ls)", &["echo", "cd", "ls"]),
        ("cd \"$(dirname \"$0\")\" && ./build", &["cd", "dirname", "build"]),
        ("git commit -m \"$(cat msg.txt)\"", &["git", "cat"]),
        ("x=$(cat <<EOF\nrm is text\nEOF\n); ls", &["cat", "ls"]),
        ("while read x; do echo $x; done < <(curl x)", &["read", "echo", "curl"]),
        ("for f in $(ls *.txt); do wc -l \"$f\"; done", &["ls", "wc"]),
        ("case $(uname) in Linux) echo;; esac", &["uname", "echo"]),
        ("echo $(ls # a comment )\n)", &["echo", "ls"]),
      ],
    );
  }

  #[test]
  fn redirections_and_here_documents() {
    table(
      script,
      &[
        ("cat > out.txt", &["cat"]),
        ("ls 2>&1 | tee log", &["ls", "tee"]),
        ("make >>log 2>/dev/null", &["make"]),
        ("cmd &>/dev/null", &["cmd"]),
        ("cmd &>>log", &["cmd"]),
        ("< in.txt wc -l", &["wc"]),
        ("> out echo hi", &["echo"]),
        ("exec 3>&-", &["exec"]),
        ("cat <<< 'rm -rf /'", &["cat"]),
        ("wc -l < $(mktemp)", &["wc", "mktemp"]),
        ("cat <<EOF\nrm -rf /\nEOF\nls", &["cat", "ls"]),
        ("cat <<-EOF\n\trm x\n\tEOF\nls", &["cat", "ls"]),
        ("cat <<'EOF'\n$(rm x)\nEOF\nls", &["cat", "ls"]),
        ("cat <<EOF\n$(rm x)\nEOF", &["cat", "rm"]),
        ("cat <<EOF; ls\nbody rm\nEOF\necho done", &["cat", "ls", "echo"]),
        ("cat << \"EOF\" | grep x\n`rm x`\nEOF", &["cat", "grep"]),
        ("cat <<A <<B\nrm\nA\nmv\nB\nls", &["cat", "ls"]),
        ("python3 - <<'PY'\nimport os\nos.system('rm -rf /')\nPY", &["python3"]),
      ],
    );
  }

  #[test]
  fn assignments_keywords_and_compound_commands() {
    table(
      script,
      &[
        ("A=1 B=2 make", &["make"]),
        ("A=1", &[]),
        ("A=$(curl x) make", &["curl", "make"]),
        ("export A=1", &["export"]),
        ("A+=x B[1]=y cmd", &["cmd"]),
        ("for f in *; do rm \"$f\"; done", &["rm"]),
        ("for f in a b\ndo\n  echo $f\ndone", &["echo"]),
        ("for f; do echo; done", &["echo"]),
        ("select x in a b; do echo $x; done", &["echo"]),
        ("while read l; do echo \"$l\"; done < f", &["read", "echo"]),
        ("until false; do sleep 1; done", &["false", "sleep"]),
        ("if [ -f x ]; then cat x; elif test -d x; then ls x; else echo no; fi", &["[", "cat", "test", "ls", "echo"]),
        ("if ! grep -q x f; then exit 1; fi", &["grep", "exit"]),
        ("case $x in a|b) rm x;; (c) ls;; *) echo;; esac", &["rm", "ls", "echo"]),
        ("case \"$1\" in\n  start)\n    run_it\n    ;;\n  *) usage ;;\nesac", &["run_it", "usage"]),
        ("case x in a) echo a; esac; ls", &["echo", "ls"]),
        ("x=$(case a in a) echo ok;; esac); ls", &["echo", "ls"]),
        ("case x in a) case y in b) rm z;; esac;; c) ls;; esac", &["rm", "ls"]),
        ("(cd x && rm y)", &["cd", "rm"]),
        ("{ rm x; ls; }", &["rm", "ls"]),
        ("( (a) ; b )", &["a", "b"]),
        ("{ echo a; } > f 2>&1", &["echo"]),
        ("echo if then fi }", &["echo"]),
        ("time make -j4", &["time", "make"]),
        ("time -p make", &["time", "make"]),
        ("time { rm x; }", &["time", "rm"]),
        ("! grep x f", &["grep"]),
        ("cat x | while read f; do rm \"$f\"; done", &["cat", "read", "rm"]),
        ("if true\nthen\n  make\nfi > log 2>&1 && ls", &["true", "make", "ls"]),
        ("nohup ./server > log 2>&1 &", &["nohup", "server"]),
        ("exec \"$@\"", &["exec", "?\"$@\""]),
      ],
    );
  }

  #[test]
  fn functions_and_comments() {
    table(
      script,
      &[
        ("f() { rm x; }; f", &["rm", "f"]),
        ("f () {\n  curl x\n}\nf", &["curl", "f"]),
        ("function g { wget x; }", &["wget"]),
        ("function g() { wget x; }", &["wget"]),
        ("f() ( rm x )", &["rm"]),
        ("# rm -rf /\nls # rm", &["ls"]),
        ("echo a#b", &["echo"]),
        ("echo '#' x; rm", &["echo", "rm"]),
      ],
    );
  }

  #[test]
  fn wrappers_report_themselves_and_the_program_they_run() {
    table(
      script,
      &[
        ("env A=1 rm x", &["env", "rm"]),
        ("env -i -u HOME PATH=/bin rm x", &["env", "rm"]),
        ("env -uHOME rm", &["env", "rm"]),
        ("env -C /tmp rm", &["env", "rm"]),
        ("env -- rm", &["env", "rm"]),
        ("env -S 'rm -rf /'", &["env", "rm"]),
        ("env --split-string='A=1 rm -rf /'", &["env", "rm"]),
        ("env", &["env"]),
        ("command rm x", &["command", "rm"]),
        ("command -v rm", &["command"]),
        ("builtin echo x", &["builtin", "echo"]),
        ("exec rm x", &["exec", "rm"]),
        ("exec -a name rm x", &["exec", "rm"]),
        ("nice -n 10 rm x", &["nice", "rm"]),
        ("nice -5 rm x", &["nice", "rm"]),
        ("nice --adjustment 5 rm x", &["nice", "rm"]),
        ("nohup rm x &", &["nohup", "rm"]),
        ("timeout 5 rm x", &["timeout", "rm"]),
        ("timeout -s KILL -k 1 5s rm x", &["timeout", "rm"]),
        ("timeout --signal=TERM 5 rm", &["timeout", "rm"]),
        ("xargs rm", &["xargs", "rm"]),
        ("xargs -0 -I {} rm {}", &["xargs", "rm"]),
        ("xargs -n1 -P4 curl -O", &["xargs", "curl"]),
        ("xargs -i{} mv {} /tmp", &["xargs", "mv"]),
        ("find . -print0 | xargs -0 sh -c 'rm \"$@\"' _", &["find", "xargs", "sh", "rm"]),
        ("sudo -u root rm x", &["sudo", "rm"]),
        ("sudo -E VAR=1 rm x", &["sudo", "rm"]),
        ("sudo -l rm", &["sudo"]),
        ("doas -u x rm", &["doas", "rm"]),
        ("stdbuf -oL grep x", &["stdbuf", "grep"]),
        ("stdbuf -o L grep x", &["stdbuf", "grep"]),
        ("setsid -f rm", &["setsid", "rm"]),
        ("chroot /mnt rm", &["chroot", "rm"]),
        ("chroot --userspec=a:b /mnt rm", &["chroot", "rm"]),
        ("ionice -c 3 rm x", &["ionice", "rm"]),
        ("taskset -c 0 rm", &["taskset", "rm"]),
        ("sudo timeout 5 env A=1 nice rm x", &["sudo", "timeout", "env", "nice", "rm"]),
        ("busybox rm x", &["busybox", "rm"]),
        ("watch -n 1 'ls | wc -l'", &["watch", "ls", "wc"]),
        ("flock /tmp/l -c 'rm x'", &["flock", "rm"]),
        ("flock -n /tmp/l rm x", &["flock", "rm"]),
        ("su -c 'rm x' root", &["su", "rm"]),
        ("runuser -u nobody -- rm x", &["runuser", "rm"]),
      ],
    );
  }

  #[test]
  fn nested_shells_eval_and_trap_are_followed() {
    table(
      script,
      &[
        ("bash -c 'rm x'", &["bash", "rm"]),
        ("sh -c \"curl x | sh\"", &["sh", "curl", "?the commands sh reads from standard input"]),
        ("bash -lc 'npm test'", &["bash", "npm"]),
        ("sh -ec 'ls; rm y'", &["sh", "ls", "rm"]),
        ("bash -o pipefail -c 'ls'", &["bash", "ls"]),
        ("bash --norc -c ls", &["bash", "ls"]),
        ("busybox sh -c 'rm x'", &["busybox", "sh", "rm"]),
        ("bash -c 'sh -c \"rm x\"'", &["bash", "sh", "rm"]),
        ("/bin/zsh -c 'rm x'", &["zsh", "rm"]),
        ("bash script.sh", &["bash", "?the commands bash reads from a script file"]),
        ("bash --version", &["bash"]),
        ("sh -c \"$CMD\"", &["sh", "?\"$CMD\""]),
        ("eval 'rm x'", &["eval", "rm"]),
        ("eval rm x", &["eval", "rm"]),
        ("eval \"$cmd\"", &["eval", "?\"$cmd\""]),
        ("source ./env.sh", &["source"]),
        (". ./venv/bin/activate && python3 x.py", &[".", "python3"]),
        ("trap 'rm -rf /tmp/x' EXIT", &["trap", "rm"]),
        ("trap - EXIT", &["trap"]),
        ("trap '' INT", &["trap"]),
      ],
    );
  }

  #[test]
  fn command_names_known_only_at_run_time_are_dynamic() {
    table(
      script,
      &[
        ("$cmd arg", &["?$cmd"]),
        ("\"$CMD\" x", &["?\"$CMD\""]),
        ("$(which rm) x", &["which", "?$(which rm)"]),
        ("${CMD:-rm} x", &["?${CMD:-rm}"]),
        ("`echo rm` x", &["echo", "?`echo rm`"]),
        ("r* x", &["?r*"]),
        ("/bin/r? x", &["?/bin/r?"]),
        ("{rm,-rf,/tmp}", &["?{rm,-rf,/tmp}"]),
        ("@(rm|ls) x", &["?@(rm|ls)"]),
        ("$HOME/bin/tool", &["?$HOME/bin/tool"]),
        ("sudo $CMD", &["sudo", "?$CMD"]),
        ("[ -f x ]", &["["]),
        ("/bin/rm x", &["rm"]),
        ("./run.sh", &["run.sh"]),
        ("~/bin/tool", &["tool"]),
        ("\"/usr/bin/rm\" x", &["rm"]),
      ],
    );
  }

  #[test]
  fn arithmetic_test_brackets_arrays_and_extglobs() {
    table(
      script,
      &[
        ("echo $((1 + 2))", &["echo"]),
        ("(( i++ ))", &[]),
        ("((i = $(wc -l < f) + 1))", &["wc"]),
        ("echo $(( $(wc -l < f) * 2 ))", &["echo", "wc"]),
        ("echo $( (rm x) )", &["echo", "rm"]),
        ("echo $((echo a) | tr a b)", &["echo", "tr"]),
        ("((cd a && rm b) )", &["cd", "rm"]),
        ("for ((i=0; i<3; i++)); do echo $i; done", &["echo"]),
        ("[[ -f a && -f b ]] && cat a", &["cat"]),
        ("[[ $x =~ ^(a|b)$ ]] || rm y", &["rm"]),
        ("[[ $(whoami) == root ]]", &["whoami"]),
        ("arr=(a b $(curl x)); echo ${arr[@]}", &["curl", "echo"]),
        ("arr+=(\n a\n b\n) && ls", &["ls"]),
        ("ls !(x|y)", &["ls"]),
      ],
    );
  }

  #[test]
  fn find_exec_runs_its_command() {
    table(
      script,
      &[
        ("find . -name '*.tmp' -exec rm {} \\;", &["find", "rm"]),
        ("find . -type f -exec grep -l x {} +", &["find", "grep"]),
        ("find . -execdir sh -c 'curl x' \\; -ok mv {} \\;", &["find", "sh", "curl", "mv"]),
        ("find . -exec rm", &["find", "rm"]),
        ("find . -delete", &["find"]),
      ],
    );
  }

  /// Documented limits: what programs do by their own means is not seen.
  #[test]
  fn interpreters_running_programs_are_not_seen() {
    table(
      script,
      &[
        ("python3 -c \"import os; os.system('rm -rf /')\"", &["python3"]),
        ("awk 'BEGIN { system(\"rm x\") }'", &["awk"]),
        ("node -e \"require('child_process').execSync('rm x')\"", &["node"]),
        ("alias ls=rm; ls x", &["alias", "ls"]),
      ],
    );
  }

  #[test]
  fn unterminated_input_is_read_as_far_as_it_goes() {
    table(
      script,
      &[
        ("echo 'unterminated; rm x", &["echo"]),
        ("echo \"abc $(rm x", &["echo", "rm"]),
        ("rm 'x", &["rm"]),
        ("'rm", &["rm"]),
        ("echo `rm", &["echo", "rm"]),
        ("(rm x", &["rm"]),
        ("echo ${x", &["echo"]),
        ("cat <<EOF\nrm x", &["cat"]),
        ("echo $((1+", &["echo"]),
        ("case x in a) rm", &["rm"]),
        ("echo \\", &["echo"]),
        ("$'\\x", &["\\x"]),
        (")) ) ;; esac fi done }", &[]),
      ],
    );
  }

  #[test]
  fn never_panics_on_any_prefix_or_garbage() {
    let tricky = [
      "a=$(case x in (a) echo \"$(ls `pwd`)\";; esac) && cat <<-'E' | $'\\x72' <(b) >(c)\n\tE\n",
      "for ((i=0;i<$((n+1));i++)); do [[ $x =~ (a|b) ]] && f() { env -S 'x y' sudo -u r -- ${z:-$(q)}; }; done",
      "find . -exec sh -c 'eval \"$1\"' _ {} + ; trap 'rm' EXIT; arr=( @(a|b) ) # c",
    ];
    for s in tricky {
      for (i, _) in s.char_indices() {
        let _ = shell_commands(&s[..i]);
      }
    }
    for garbage in [
      "$(", "`", "${", "$((", "<<", "((", ")", "))", "\\", "$'\\", "$'\\x", "$'\\u", "<(", "&>", "2>", ";;", "'", "\"",
      "{", "}", "[[", "$'\\c", "a=(", "f(", "function", "case", "for",
    ] {
      let _ = shell_commands(garbage);
      let _ = programs("sh", &strings(&["-c", garbage]));
    }
  }

  #[test]
  fn deep_nesting_and_huge_scripts_become_dynamic() {
    let too_deep = "?commands nested more than 32 levels deep";
    for open in ["$(", "${", "$((", "<(", "a=$(", "\"$("] {
      let got = script(&open.repeat(10_000));
      assert!(got.contains(&too_deep.to_string()), "{open}: {got:?}");
    }
    // subshells and groups do not recurse: any depth is fine
    assert_eq!(script(&format!("{}rm{}", "( ".repeat(10_000), " )".repeat(10_000))), ["rm"]);
    assert_eq!(script(&format!("{}rm x;{}", "{ ".repeat(10_000), " }".repeat(10_000))), ["rm"]);
    assert!(script(&format!("{}rm", "eval ".repeat(100))).iter().any(|p| p == too_deep));
    assert_eq!(script(&format!("{}rm", "eval ".repeat(20))), ["eval", "rm"]);
    assert!(script(&"find -exec ".repeat(1_000)).iter().any(|p| p == too_deep));

    let big = "ls\n".repeat(400_000);
    assert_eq!(script(&big), [format!("?a script of {} bytes; the policy reads scripts up to 1 MiB", big.len())]);
    let mut just_under = "echo $(date) | grep x;\n".repeat(MAX_SCRIPT_BYTES / 24);
    just_under.push_str("rm x");
    assert_eq!(script(&just_under), ["echo", "date", "grep", "rm"]);
  }

  #[test]
  fn programs_of_an_argv() {
    table(
      argv,
      &[
        ("rm -rf /", &["rm"]),
        ("/usr/bin/git status", &["git"]),
        ("sh -c jq_.|head", &["sh", "jq_.", "head"]),
        ("env FOO=1 python3 x.py", &["env", "python3"]),
        ("sh", &["sh", "?the commands sh reads from standard input"]),
        ("echo $(rm x)", &["echo"]),
        ("find . -exec rm {} ;", &["find", "rm"]),
        ("xargs -0 rm", &["xargs", "rm"]),
      ],
    );
    let args = |a: &[&str]| strings(a);
    assert_eq!(show(programs("sh", &args(&["-c", "jq . f | head", "name", "arg"]))), ["sh", "jq", "head"]);
    assert_eq!(show(programs("bash", &args(&["-lc", "npm test && rm -rf dist"]))), ["bash", "npm", "rm"]);
    assert_eq!(show(programs("timeout", &args(&["10", "sh", "-c", "curl x"]))), ["timeout", "sh", "curl"]);
    assert_eq!(programs("sh", &args(&["-c", "$x"])), vec![Program::Name("sh".into()), Program::Dynamic("$x".into())]);
  }

  // ---------------------------------------------------------------- the policy

  const SEED_ALLOW: &[&str] = &[
    "jq", "awk", "grep", "sed", "sort", "uniq", "head", "tail", "wc", "cut", "tr", "cat", "echo", "date", "find", "ls",
    "python3", "python", "bc", "comm", "diff", "basename", "dirname", "file", "stat", "tee",
  ];
  const SEED_DENY: &[&str] = &["rm", "mv", "dd", "curl", "wget", "ssh", "sudo", "chmod", "chown"];

  fn policy(allow: Option<&[&str]>, deny: &[&str]) -> CommandPolicy {
    CommandPolicy::new(allow.map(strings), Some(strings(deny))).unwrap()
  }

  /// The seed's lists, plus `sh`: agent tools run their commands as `sh -c SCRIPT`.
  fn seed_for_scripts() -> CommandPolicy {
    let mut allow = SEED_ALLOW.to_vec();
    allow.push("sh");
    policy(Some(&allow), SEED_DENY)
  }

  fn sh(policy: &CommandPolicy, script: &str) -> Result<()> {
    policy.check("sh", &strings(&["-c", script]))
  }

  #[test]
  fn seed_policy_on_agent_commands() {
    let p = seed_for_scripts();
    let allowed = [
      "jq '.data | add' input.json",
      "cat a | grep x | wc -l",
      "head -5 input.csv",
      "find . -name '*.py' | sort | uniq -c",
      "sed -n '1,10p' f | tee out.txt",
      "echo $(date) > stamp.txt",
      "ls -la 2>&1 | tail -n 3",
      "awk -F, '{ print $1 }' data.csv | sort -u",
      "diff <(sort a) <(sort b)",
      "cat <<EOF > notes.txt\nrm is just text here\nEOF",
      "find . -type f -exec grep -l TODO {} +",
      // harmless builtins need no allow entry
      "cd /tmp && ls",
      "export A=1; test -f x && echo yes || true",
      // a documented limit: the interpreter is allowed, what it runs is not seen
      "python3 -c \"import os; os.system('rm -rf /')\"",
    ];
    for s in allowed {
      assert!(sh(&p, s).is_ok(), "{s:?}: {:?}", sh(&p, s));
    }
    // (script, the program named, a phrase of the rule)
    let denied = [
      ("rm -rf /workspace", "\"rm\"", "commandPolicy.deny pattern \"rm\""),
      ("echo $(curl evil)", "\"curl\"", "commandPolicy.deny pattern \"curl\""),
      ("find . -name '*.tmp' -exec rm {} \\;", "\"rm\"", "commandPolicy.deny"),
      ("cat f | sudo tee /etc/x", "\"sudo\"", "commandPolicy.deny"),
      ("ls; wget http://x", "\"wget\"", "commandPolicy.deny"),
      ("'r'm x", "\"rm\"", "commandPolicy.deny"),
      ("$'\\x72m' x", "\"rm\"", "commandPolicy.deny"),
      ("bash -c 'mv a b'", "\"mv\"", "commandPolicy.deny"),
      ("xargs -0 chmod +x < list", "\"chmod\"", "commandPolicy.deny"),
      ("npm install", "\"npm\"", "no pattern of commandPolicy.allow"),
      ("cd /tmp && node x.js", "\"node\"", "no pattern of commandPolicy.allow"),
      ("git status | head", "\"git\"", "no pattern of commandPolicy.allow"),
      ("$cmd", "$cmd", "cannot verify"),
      ("cat x | sh", "standard input", "cannot verify"),
    ];
    for (s, name, rule) in denied {
      let e = sh(&p, s).expect_err(s);
      assert_eq!(e.code, ErrorCode::PermissionDenied, "{s:?}");
      assert!(e.message.contains(name) && e.message.contains(rule), "{s:?}: {}", e.message);
    }
  }

  #[test]
  fn seed_lists_on_plain_argv() {
    let p = policy(Some(SEED_ALLOW), SEED_DENY);
    assert!(p.check("jq", &strings(&[".data | add", "input.json"])).is_ok());
    assert!(p.check("/usr/bin/python3", &strings(&["x.py"])).is_ok());
    assert!(p.check("cat", &strings(&["$(rm -rf /)"])).is_ok(), "an argv is not read by a shell");
    let e = p.check("rm", &strings(&["-rf", "/"])).unwrap_err();
    assert!(e.message.contains("remove the pattern from commandPolicy.deny"), "{}", e.message);
    // the shell of `sh -c` only carries the script: its commands are what the allow list judges
    assert!(p.check("sh", &strings(&["-c", "ls"])).is_ok());
    assert!(p.check("bash", &strings(&["-lc", "jq . x"])).is_ok());
    let e = p.check("bash", &strings(&["-c", "npm test"])).unwrap_err();
    assert!(e.message.contains("\"npm\""), "{}", e.message);
    // a shell without -c runs a script the policy cannot read
    assert!(p.check("sh", &strings(&["script.sh"])).is_err());
    // a deny pattern on the shell still applies to it
    let no_bash = policy(Some(SEED_ALLOW), &["bash"]);
    assert!(no_bash.check("bash", &strings(&["-c", "ls"])).is_err());
    // builtins are judged by deny patterns
    assert!(policy(None, &["cd"]).check("sh", &strings(&["-c", "cd /"])).is_err());
  }

  #[test]
  fn messages_name_the_command_the_rule_and_the_fix() {
    let p = seed_for_scripts();
    let e = sh(&p, "echo $(curl evil)").unwrap_err();
    assert_eq!(e.code.as_str(), "PERMISSION_DENIED");
    assert_eq!(
      e.message,
      "\"curl\" is denied by the command policy: it matches commandPolicy.deny pattern \"curl\" (command: \
       `sh -c 'echo $(curl evil)'`); remove the pattern from commandPolicy.deny to run it"
    );
    let e = sh(&p, "npm test").unwrap_err();
    assert_eq!(
      e.message,
      "\"npm\" is not allowed by the command policy: it matches no pattern of commandPolicy.allow (command: \
       `sh -c 'npm test'`); add it to commandPolicy.allow to run it"
    );
    let e = sh(&p, "\"$TOOL\" --fix").unwrap_err();
    assert!(e.message.contains("(\"$TOOL\")") && e.message.contains("cannot verify"), "{}", e.message);
    assert!(e.message.contains("or remove commandPolicy.allow"), "{}", e.message);
    // long command lines are shortened
    let e = sh(&p, &format!("rm {}", "x".repeat(10_000))).unwrap_err();
    assert!(e.message.len() < 600 && e.message.contains('…'), "{}", e.message.len());
  }

  #[test]
  fn deny_only_policies_ignore_dynamic_commands() {
    let p = policy(None, SEED_DENY);
    assert!(sh(&p, "$cmd x").is_ok());
    assert!(sh(&p, "bash script.sh").is_ok());
    assert!(sh(&p, "npm test && cd x").is_ok());
    assert!(sh(&p, "npm test && rm x").is_err());
    assert!(sh(&p, &"ls\n".repeat(400_000)).is_ok());
    let allow = seed_for_scripts();
    let e = sh(&allow, &"ls\n".repeat(400_000)).unwrap_err();
    assert!(e.message.contains("1 MiB"), "{}", e.message);
  }

  #[test]
  fn deny_wins_over_allow() {
    let p = policy(Some(&["*"]), &["rm"]);
    assert!(p.check("ls", &[]).is_ok());
    let e = p.check("rm", &[]).unwrap_err();
    assert!(e.message.contains("commandPolicy.deny"), "{}", e.message);
    // a program denied later in the line wins over one missing from the allow list earlier
    let p = policy(Some(&["sh", "ls"]), &["curl"]);
    let e = sh(&p, "npm i; curl x").unwrap_err();
    assert!(e.message.contains("\"curl\""), "{}", e.message);
  }

  #[test]
  fn patterns_are_globs_over_the_program_name() {
    let p = policy(Some(&["python3*", "git-*", "{ls,cat}", "[bc]at", "sh"]), &["*sh", "?m"]);
    for ok in ["python3", "python3.11", "git-upload-pack", "ls", "cat", "bat", "/usr/bin/python3.12"] {
      assert!(p.check(ok, &[]).is_ok(), "{ok}: {:?}", p.check(ok, &[]));
    }
    for (bad, rule) in
      [("git", "allow"), ("python", "allow"), ("bash", "deny"), ("ssh", "deny"), ("rm", "deny"), ("sh", "deny")]
    {
      let e = p.check(bad, &[]).unwrap_err();
      assert!(e.message.contains(&format!("commandPolicy.{rule}")), "{bad}: {}", e.message);
    }
    // names are matched exactly, case included
    assert!(policy(None, &["rm"]).check("RM", &[]).is_ok());
    assert!(policy(None, &["rm"]).check("rmdir", &[]).is_ok());
    // an empty allow list allows nothing
    assert!(policy(Some(&[]), &[]).check("ls", &[]).is_err());
  }

  #[test]
  fn invalid_patterns_are_config_errors_naming_the_entry() {
    // (allow, deny, a phrase of the message)
    type Case<'a> = (Option<&'a [&'a str]>, &'a [&'a str], &'a str);
    let cases: [Case; 6] = [
      (Some(&[""]), &[], "commandPolicy.allow[0] is empty"),
      (Some(&["ls", "  "]), &[], "commandPolicy.allow[1] is empty"),
      (None, &["rm", "a{b"], "commandPolicy.deny[1] (\"a{b\") is not a valid glob"),
      (None, &["[z-a]"], "commandPolicy.deny[0]"),
      (None, &["/bin/rm"], "commandPolicy.deny[0] (\"/bin/rm\") contains '/'"),
      (Some(&["rm -rf"]), &[], "commandPolicy.allow[0] (\"rm -rf\") contains a space"),
    ];
    for (allow, deny, want) in cases {
      let e = CommandPolicy::new(allow.map(strings), Some(strings(deny))).unwrap_err();
      assert_eq!(e.code, ErrorCode::InvalidConfig);
      assert_eq!(e.code.as_str(), "INVALID_CONFIG");
      assert!(e.message.contains(want), "{want}: {}", e.message);
    }
  }

  #[test]
  fn accessors_return_the_patterns_as_given() {
    let p = CommandPolicy::new(None, None).unwrap();
    assert_eq!(p.allow_patterns(), None);
    assert!(p.deny_patterns().is_empty());
    assert!(p.check("anything", &strings(&["-c", "$x"])).is_ok());
    let p = policy(Some(&["ls", "python3*"]), &["rm"]);
    assert_eq!(p.allow_patterns(), Some(&strings(&["ls", "python3*"])[..]));
    assert_eq!(p.deny_patterns(), &strings(&["rm"])[..]);
  }
}
