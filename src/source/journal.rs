//! The systemd journal: a `journalctl -o json -f` child per jail (no
//! libsystemd link), its entries rebuilt into Fail2ban's line format, the
//! cursor kept for resuming, the child restarted with backoff if it dies.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Journal fields the line is built from (journalctl adds the cursor and
/// the timestamps itself).
const FIELDS: &str = "_HOSTNAME,SYSLOG_IDENTIFIER,_COMM,SYSLOG_PID,_PID,MESSAGE,\
                      _SOURCE_REALTIME_TIMESTAMP,_SOURCE_MONOTONIC_TIMESTAMP";

/// Longest JSON entry accepted; longer ones are skipped with a warning.
const MAX_ENTRY: usize = 1 << 20;

/// Entries sent together at most: while journalctl has more to say (a long
/// catch-up) a batch is sent once this full, so memory stays bounded.
const MAX_BATCH: usize = 1024;

/// A journal entry as a jail sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// `HOST IDENT[PID]: MESSAGE`, newlines in the message written `\n`.
    pub line: String,
    /// Epoch seconds: `_SOURCE_REALTIME_TIMESTAMP`, else
    /// `__REALTIME_TIMESTAMP` (Fail2ban's order); the filter uses it instead
    /// of looking for a date in the line.
    pub time: f64,
    /// `__CURSOR`: store it to resume after this entry.
    pub cursor: Option<String>,
}

/// Entries read together.
#[derive(Debug, Clone)]
pub struct JournalEvent {
    pub entries: Vec<JournalEntry>,
    /// Entries that were in the journal at start (up to the jail's last
    /// entry then, and dated before the start): Fail2ban's "not in operation
    /// yet", when old entries are ignored rather than taken as happening now.
    pub backlog: bool,
}

/// The `systemd` backend of one jail.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// `journalmatch`: one match expression per line, words split like a
    /// shell, `+` between OR groups; lines are OR-ed too.
    pub journalmatch: String,
    /// `systemd[journalpath=DIR]`.
    pub path: Option<PathBuf>,
    /// `systemd[journalfiles=...]`: file names or globs, space separated.
    pub files: Option<String>,
    /// `systemd[journalflags=N]`: 4 (system, the default without path or
    /// files) and 8 (current user) map to `--system`/`--user`.
    pub flags: Option<u32>,
    /// `systemd[namespace=NS]`.
    pub namespace: Option<String>,
    /// Resume after this cursor (preferred) ...
    pub cursor: Option<String>,
    /// ... or start at this epoch time (`now - findtime`, or the stored
    /// journal time). With neither, only new entries are read.
    pub since: Option<f64>,
    /// The journalctl to run.
    pub program: PathBuf,
    /// Restart delay after the child dies, doubled up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl JournalOptions {
    pub fn new(journalmatch: &str) -> JournalOptions {
        JournalOptions {
            journalmatch: journalmatch.to_string(),
            path: None,
            files: None,
            flags: None,
            namespace: None,
            cursor: None,
            since: None,
            program: PathBuf::from("journalctl"),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// The journalctl arguments for `opts`; an error names a bad `journalmatch`.
pub fn journal_args(opts: &JournalOptions) -> Result<Vec<String>, String> {
    let mut mode = vec!["-f".to_string()];
    match (&opts.cursor, opts.since) {
        (Some(c), _) => mode.extend(["--no-tail".into(), format!("--after-cursor={c}")]),
        (None, Some(t)) => mode.extend(["--no-tail".into(), format!("--since=@{t:.6}")]),
        (None, None) => mode.push("--lines=0".into()),
    }
    selection_args(opts, mode)
}

/// Output options, then `mode`, then what selects the jail's entries.
fn selection_args(opts: &JournalOptions, mode: Vec<String>) -> Result<Vec<String>, String> {
    let mut args: Vec<String> = ["-o", "json", "--all", "--no-pager"]
        .map(String::from)
        .into();
    args.push(format!("--output-fields={FIELDS}"));
    args.extend(mode);
    if let Some(p) = &opts.path {
        args.push(format!("--directory={}", p.display()));
    }
    for f in opts.files.iter().flat_map(|f| f.split_whitespace()) {
        args.push(format!("--file={f}"));
    }
    let flags = opts
        .flags
        .or((opts.path.is_none() && opts.files.is_none()).then_some(4));
    if let Some(flags) = flags {
        if flags & 4 != 0 {
            args.push("--system".into());
        }
        if flags & 8 != 0 {
            args.push("--user".into());
        }
    }
    if let Some(ns) = &opts.namespace {
        args.push(format!("--namespace={ns}"));
    }
    let mut terms = Vec::new();
    for line in opts.journalmatch.lines() {
        let words = shlex_split(line).map_err(|e| format!("journalmatch {line:?}: {e}"))?;
        if words.is_empty() {
            continue;
        }
        if !terms.is_empty() {
            terms.push("+".to_string());
        }
        terms.extend(words);
    }
    if !terms.is_empty() {
        args.push("--".into());
        args.extend(terms);
    }
    Ok(args)
}

/// The jail's last journal entry now: entries up to it are the backlog
/// (Fail2ban notes the same cursor at start).
fn last_entry(opts: &JournalOptions) -> Option<JournalEntry> {
    let args = selection_args(opts, vec!["--lines=1".into()]).ok()?;
    let out = Command::new(&opts.program)
        .args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let out = out.ok()?;
    let line = out.stdout.split(|b| *b == b'\n').find(|l| !l.is_empty())?;
    format_entry(line).ok()
}

/// Splits like Python's `shlex.split` (POSIX mode, no comments).
fn shlex_split(s: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("no closing quotation"),
                        },
                        Some(c) => w.push(c),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("no escaped character"),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Rebuilds one `journalctl -o json` entry the way Fail2ban's
/// `formatJournalEntry` does: `_HOSTNAME`, then `SYSLOG_IDENTIFIER` (or
/// `_COMM`) with `[SYSLOG_PID]` (or `[_PID]`) and a colon, the kernel's
/// monotonic time as `[%12.6f]`, then `MESSAGE`, joined by spaces. A field
/// given as a byte array is decoded lossily; a field given several times is
/// joined by spaces (Fail2ban does that for MESSAGE and fails on the others).
pub fn format_entry(json: &[u8]) -> Result<JournalEntry, String> {
    let map: Map<String, Value> = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let text = |name: &str| map.get(name).and_then(field_text).filter(|s| !s.is_empty());
    let mut parts: Vec<String> = Vec::with_capacity(4);
    parts.extend(text("_HOSTNAME"));
    if let Some(ident) = text("SYSLOG_IDENTIFIER").or_else(|| text("_COMM")) {
        let mut ident = ident;
        if let Some(pid) = text("SYSLOG_PID").or_else(|| text("_PID")) {
            ident.push('[');
            ident.push_str(&py_int(&pid).unwrap_or(pid));
            ident.push(']');
        }
        ident.push(':');
        let kernel = ident == "kernel:";
        parts.push(ident);
        if kernel {
            let mono =
                text("_SOURCE_MONOTONIC_TIMESTAMP").or_else(|| text("__MONOTONIC_TIMESTAMP"));
            if let Some(us) = mono.and_then(|m| m.trim().parse::<u64>().ok()) {
                parts.push(format!("[{:12.6}]", us as f64 / 1e6));
            }
        }
    }
    parts.push(map.get("MESSAGE").and_then(field_text).unwrap_or_default());
    let line = parts.join(" ").replace('\n', "\\n");
    let usec = text("_SOURCE_REALTIME_TIMESTAMP")
        .or_else(|| text("__REALTIME_TIMESTAMP"))
        .and_then(|t| t.trim().parse::<u64>().ok());
    let time = usec.map_or_else(crate::util::now, |us| us as f64 / 1e6);
    let cursor = text("__CURSOR");
    Ok(JournalEntry { line, time, cursor })
}

/// A field's text: a string, a byte array (not UTF-8 or with control
/// characters), or an array of those when the field is repeated.
fn field_text(v: &Value) -> Option<String> {
    fn bytes(items: &[Value]) -> Option<Vec<u8>> {
        items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect()
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => match bytes(items) {
            Some(b) if !items.is_empty() => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => {
                let values: Vec<String> = items.iter().filter_map(field_text).collect();
                Some(values.join(" "))
            }
        },
        _ => None,
    }
}

/// `"%i" % int(s, 0)` in Python: decimal, `0x`/`0o`/`0b`, sign, `_`
/// between digits; None where Python raises (Fail2ban then prints the text).
fn py_int(s: &str) -> Option<String> {
    let t = s.trim();
    let (neg, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (10, &lower[..]),
    };
    // One underscore between digits (or right after a base prefix).
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0')
    {
        return None;
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    Some(if neg { (-v).to_string() } else { v.to_string() })
}

struct Shared {
    stopped: bool,
    child: Option<u32>,
}

/// Follows the journal for one jail on its own thread.
pub struct JournalFollower {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl JournalFollower {
    /// Checks the options and starts following; entries go to `events`.
    pub fn start(
        opts: JournalOptions,
        events: SyncSender<JournalEvent>,
    ) -> Result<JournalFollower, String> {
        journal_args(&opts)?;
        let shared = Arc::new((
            Mutex::new(Shared {
                stopped: false,
                child: None,
            }),
            Condvar::new(),
        ));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("logban-journal".into())
            .spawn(move || run(opts, events, &s))
            .map_err(|e| e.to_string())?;
        Ok(JournalFollower {
            shared,
            thread: Some(thread),
        })
    }

    /// Ends the child and the thread. Drain or drop the receiver first if it
    /// may be full.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (lock, cv) = &*self.shared;
        {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            s.stopped = true;
            if let Some(pid) = s.child {
                kill(pid);
            }
        }
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for JournalFollower {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn kill(pid: u32) {
    // SAFETY: plain syscall; the pid is our own child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

fn run(
    mut opts: JournalOptions,
    events: SyncSender<JournalEvent>,
    shared: &(Mutex<Shared>, Condvar),
) {
    let mut backoff = opts.backoff_min;
    let last = last_entry(&opts);
    // Nothing to catch up on when the last entry is the one we resume after,
    // or older than where we start.
    let mut caught_up = match &last {
        None => true,
        Some(e) => {
            e.cursor.is_some() && e.cursor == opts.cursor || opts.since.is_some_and(|s| e.time < s)
        }
    };
    let backlog_end = last.and_then(|e| e.cursor);
    let started = crate::util::now();
    loop {
        let args = journal_args(&opts).expect("checked at start");
        let spawned = Command::new(&opts.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let since_spawn = Instant::now();
        match spawned {
            Ok(mut child) => {
                {
                    let mut s = shared.0.lock().unwrap_or_else(|e| e.into_inner());
                    s.child = Some(child.id());
                    if s.stopped {
                        kill(child.id());
                    }
                }
                let read = read_child(
                    &mut child,
                    &mut opts,
                    (started, &backlog_end),
                    &mut caught_up,
                    &events,
                );
                if read.is_err() {
                    kill(child.id());
                }
                let status = child.wait();
                shared.0.lock().unwrap_or_else(|e| e.into_inner()).child = None;
                if read.is_err() {
                    return; // the receiver is gone
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                if shared.0.lock().unwrap_or_else(|e| e.into_inner()).stopped {
                    return;
                }
                tracing::warn!(
                    "journalctl exited ({}){}{}; restarting",
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    if err.is_empty() { "" } else { ": " },
                    err.trim()
                );
            }
            Err(e) => tracing::warn!("cannot run {}: {e}; retrying", opts.program.display()),
        }
        if since_spawn.elapsed() > opts.backoff_max {
            backoff = opts.backoff_min;
        }
        let (lock, cv) = shared;
        let s = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (s, _) = cv
            .wait_timeout_while(s, backoff, |s| !s.stopped)
            .unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return;
        }
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

/// Reads entries until the child's output ends; Err when the receiver is gone.
/// Keeps `opts.cursor` at the last entry so a restart resumes after it.
/// The backlog ends after the entry `backlog_end` names, or at the first
/// entry dated after the start.
fn read_child(
    child: &mut Child,
    opts: &mut JournalOptions,
    (started, backlog_end): (f64, &Option<String>),
    caught_up: &mut bool,
    events: &SyncSender<JournalEvent>,
) -> Result<(), ()> {
    let Some(mut out) = child.stdout.take() else {
        return Ok(());
    };
    let fd = out.as_raw_fd();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut batch = JournalEvent {
        entries: Vec::new(),
        backlog: !*caught_up,
    };
    loop {
        // Send what we have before blocking.
        if !readable_now(fd) {
            flush(&mut batch, *caught_up, events)?;
        }
        let n = match out.read(&mut buf) {
            Ok(0) => return flush(&mut batch, *caught_up, events),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return flush(&mut batch, *caught_up, events),
        };
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
            let piece = &buf[start..nl];
            start = nl + 1;
            if std::mem::take(&mut skipping) {
                continue;
            }
            let json: &[u8] = if pending.is_empty() {
                piece
            } else {
                pending.extend_from_slice(piece);
                &pending
            };
            match format_entry(json) {
                Ok(entry) => {
                    if !*caught_up && entry.time >= started - 1.0 {
                        *caught_up = true;
                    }
                    if batch.backlog == *caught_up || batch.entries.len() >= MAX_BATCH {
                        flush(&mut batch, *caught_up, events)?;
                    }
                    if !*caught_up && entry.cursor.is_some() && entry.cursor == *backlog_end {
                        *caught_up = true;
                    }
                    opts.cursor = entry.cursor.clone().or(opts.cursor.take());
                    batch.entries.push(entry);
                }
                Err(e) => tracing::warn!("unreadable journal entry: {e}"),
            }
            pending.clear();
        }
        if !skipping {
            pending.extend_from_slice(&buf[start..n]);
            if pending.len() > MAX_ENTRY {
                tracing::warn!("journal entry longer than {MAX_ENTRY} bytes: skipped");
                pending.clear();
                skipping = true;
            }
        }
    }
}

fn flush(
    batch: &mut JournalEvent,
    caught_up: bool,
    events: &SyncSender<JournalEvent>,
) -> Result<(), ()> {
    if !batch.entries.is_empty() {
        let full = std::mem::replace(
            batch,
            JournalEvent {
                entries: Vec::new(),
                backlog: !caught_up,
            },
        );
        events.send(full).map_err(|_| ())?;
    }
    batch.backlog = !caught_up;
    Ok(())
}

fn readable_now(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}
