//! The server's log in Fail2ban's line format, so that what admins grep keeps
//! working: `2026-11-27 02:09:15,764 fail2ban.actions        [3784]: NOTICE  [postfix] Ban 1.2.3.4`.
//!
//! Events come through `tracing`. Fail2ban's logger name is the event's target
//! when it starts with `fail2ban`, else it is derived from the module. Fail2ban's
//! NOTICE level (between INFO and WARNING) is an INFO event with `notice = true`
//! (see [`notice!`](crate::notice)). Level and target can change at run time
//! (`set loglevel`, `set logtarget`, `flushlogs`).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Logs at Fail2ban's NOTICE level (where `Ban`/`Unban`/`Found` lines go).
#[macro_export]
macro_rules! notice {
    (target: $target:expr, $($arg:tt)+) => {
        ::tracing::info!(target: $target, notice = true, $($arg)+)
    };
}

/// Fail2ban's levels, with Python logging's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Heavy = 5,
    Trace = 7,
    Debug = 10,
    Msg = 18,
    Info = 20,
    Notice = 25,
    Warning = 30,
    Error = 40,
    Critical = 50,
}

impl Level {
    /// Parses a level as `set loglevel` and fail2ban.conf accept it: a name
    /// (any case, with Python's aliases) or a number.
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u32>() {
            return Some(match n {
                0..=5 => Level::Heavy,
                6..=7 => Level::Trace,
                8..=10 => Level::Debug,
                11..=18 => Level::Msg,
                19..=20 => Level::Info,
                21..=25 => Level::Notice,
                26..=30 => Level::Warning,
                31..=40 => Level::Error,
                _ => Level::Critical,
            });
        }
        Some(match s.to_ascii_uppercase().as_str() {
            "HEAVYDEBUG" | "HEAVY" => Level::Heavy,
            "TRACEDEBUG" | "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "MSG" => Level::Msg,
            "INFO" => Level::Info,
            "NOTICE" => Level::Notice,
            "WARNING" | "WARN" => Level::Warning,
            "ERROR" => Level::Error,
            "CRITICAL" | "FATAL" => Level::Critical,
            _ => return None,
        })
    }

    fn from_number(n: u8) -> Level {
        Level::parse(&n.to_string()).unwrap_or(Level::Info)
    }

    /// The name in log lines (Python's `levelname`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Heavy => "HEAVY",
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Msg => "MSG",
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// syslog severity for the SYSLOG target.
    fn severity(self) -> u8 {
        match self {
            Level::Critical => 2,
            Level::Error => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info | Level::Msg => 6,
            _ => 7,
        }
    }
}

/// Where log lines go.
enum Sink {
    File { path: PathBuf, file: File },
    Stdout,
    Stderr,
    Syslog { socket: UnixDatagram },
}

struct State {
    /// The target as configured (`/var/log/fail2ban.log`, `STDOUT`, `SYSLOG`, ...).
    target: String,
    sink: Sink,
}

/// Handle to the running log: change level or target, reopen the file.
#[derive(Clone)]
pub struct Log {
    state: Arc<Mutex<State>>,
    /// The threshold, outside the lock: events below it are dropped before
    /// their message is formatted.
    level: Arc<AtomicU8>,
    pid: u32,
}

/// Why a log target could not be used.
#[derive(Debug)]
pub struct TargetError(pub String);

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

const SYSLOG_SOCKET: &str = "/dev/log";

fn open_sink(target: &str, syslogsocket: &str) -> Result<Sink, TargetError> {
    match target.to_ascii_uppercase().as_str() {
        "STDOUT" | "SYSOUT" => Ok(Sink::Stdout),
        "STDERR" => Ok(Sink::Stderr),
        "SYSLOG" => {
            let path = if syslogsocket == "auto" || syslogsocket.is_empty() {
                SYSLOG_SOCKET
            } else {
                syslogsocket
            };
            let socket = UnixDatagram::unbound()
                .and_then(|s| s.connect(path).map(|_| s))
                .map_err(|e| {
                    TargetError(format!(
                        "Syslog socket file: {path} does not exists or is not a socket ({e})"
                    ))
                })?;
            Ok(Sink::Syslog { socket })
        }
        _ => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(target)
                .map_err(|e| TargetError(format!("Unable to log to {target:?}: {e}")))?;
            Ok(Sink::File {
                path: PathBuf::from(target),
                file,
            })
        }
    }
}

impl Log {
    pub fn new(level: Level, target: &str, syslogsocket: &str) -> Result<Log, TargetError> {
        let sink = open_sink(target, syslogsocket)?;
        let state = State {
            target: target.to_string(),
            sink,
        };
        Ok(Log {
            state: Arc::new(Mutex::new(state)),
            level: Arc::new(AtomicU8::new(level as u8)),
            pid: std::process::id(),
        })
    }

    /// Installs this log as the global `tracing` subscriber.
    pub fn install(&self) -> Result<(), TargetError> {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(LogLayer { log: self.clone() });
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| TargetError(format!("cannot install the logger: {e}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state usable: recover it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn level(&self) -> Level {
        Level::from_number(self.level.load(Ordering::Relaxed))
    }

    pub fn set_level(&self, level: Level) {
        self.level.store(level as u8, Ordering::Relaxed);
    }

    /// Whether a record at `level` would be written.
    pub fn enabled(&self, level: Level) -> bool {
        level as u8 >= self.level.load(Ordering::Relaxed)
    }

    pub fn target(&self) -> String {
        self.lock().target.clone()
    }

    pub fn set_target(&self, target: &str, syslogsocket: &str) -> Result<(), TargetError> {
        let sink = open_sink(target, syslogsocket)?;
        let mut st = self.lock();
        st.target = target.to_string();
        st.sink = sink;
        Ok(())
    }

    /// `flushlogs`: reopens a file target (after logrotate moved it) and says
    /// what was done, as fail2ban answers.
    pub fn flush(&self) -> &'static str {
        let mut st = self.lock();
        match &mut st.sink {
            Sink::File { path, file } => {
                if let Ok(f) = OpenOptions::new().create(true).append(true).open(&*path) {
                    *file = f;
                }
                "rolled over"
            }
            Sink::Stdout => {
                let _ = std::io::stdout().flush();
                "flushed"
            }
            Sink::Stderr | Sink::Syslog { .. } => "flushed",
        }
    }

    /// Writes one record if `level` passes the threshold.
    pub fn write(&self, name: &str, level: Level, message: &str) {
        if !self.enabled(level) {
            return;
        }
        let deferred = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            let buf = d.as_mut()?;
            let _ = writeln!(
                buf,
                "{} {name:<24}[{}]: {:<7} {message}",
                timestamp(),
                self.pid,
                level.name()
            );
            Some(())
        });
        if deferred.is_some() {
            return;
        }
        let mut st = self.lock();
        let pid = self.pid;
        let mut line = String::with_capacity(64 + message.len());
        match &mut st.sink {
            Sink::Syslog { socket } => {
                // Python's SysLogHandler: facility daemon (3), no padding, NUL-terminated.
                let _ = write!(
                    line,
                    "<{}>{name}[{pid}]: {} {message}\0",
                    3 * 8 + level.severity(),
                    level.name()
                );
                let _ = socket.send(line.as_bytes());
            }
            sink => {
                let _ = writeln!(
                    line,
                    "{} {name:<24}[{pid}]: {:<7} {message}",
                    timestamp(),
                    level.name()
                );
                write_sink(sink, &line);
            }
        }
    }

    /// Logs every panic (a bug: a thread or task of the server ends) as a
    /// CRITICAL record, then reports it as before: in the background
    /// stderr is /dev/null, so it would go unseen.
    pub fn log_panics(&self) {
        let log = self.clone();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let message = format!(
                "Internal error in thread {}: {}",
                thread.name().unwrap_or("unnamed"),
                info.to_string().replace('\n', " ")
            );
            // Not when this thread panicked while writing (it holds the lock).
            let free = (0..1000).any(|_| {
                let free = !matches!(lock_held(&log), Some(true));
                if !free {
                    std::thread::yield_now();
                }
                free
            });
            if free {
                log.write("fail2ban.server", Level::Critical, &message);
            }
            prev(info);
        }));
    }

    /// Collects what this thread logs until the guard is dropped, then
    /// writes it at once: one system call for a burst of `Found` lines
    /// instead of one per line. Records keep their own time stamps.
    pub fn defer(&self) -> Deferred {
        DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(String::new());
            }
        });
        Deferred(self.clone())
    }
}

/// Whether the log's lock is held right now (None: poisoned, usable).
fn lock_held(log: &Log) -> Option<bool> {
    match log.state.try_lock() {
        Ok(_) => Some(false),
        Err(std::sync::TryLockError::WouldBlock) => Some(true),
        Err(std::sync::TryLockError::Poisoned(_)) => None,
    }
}

thread_local! {
    /// Records of this thread waiting for [`Deferred`] to be dropped.
    static DEFERRED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// See [`Log::defer`].
pub struct Deferred(Log);

impl Drop for Deferred {
    fn drop(&mut self) {
        let Some(text) = DEFERRED.with(|d| d.borrow_mut().take()) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let mut st = self.0.lock();
        match &mut st.sink {
            Sink::Syslog { socket } => {
                // One datagram per record, as syslog wants them.
                for line in text.lines() {
                    let _ = socket.send(syslog_from_line(line, self.0.pid).as_bytes());
                }
            }
            sink => write_sink(sink, &text),
        }
    }
}

fn write_sink(sink: &mut Sink, text: &str) {
    let _ = match sink {
        Sink::File { file, .. } => file.write_all(text.as_bytes()),
        Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        Sink::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        Sink::Syslog { .. } => Ok(()),
    };
}

/// A deferred file-format record as a syslog message (the time stamp and
/// padding dropped, the priority in front).
fn syslog_from_line(line: &str, pid: u32) -> String {
    // `DATE TIME NAME...[PID]: LEVEL   MESSAGE`
    let rest = line.get(24..).unwrap_or(line);
    let (name, after) = rest.split_once('[').unwrap_or((rest, ""));
    let after = after.split_once("]: ").map_or(after, |(_, a)| a);
    let (level, message) = after.split_once(' ').unwrap_or((after, ""));
    let sev = Level::parse(level).map_or(6, Level::severity);
    format!(
        "<{}>{}[{pid}]: {level} {}\0",
        3 * 8 + sev,
        name.trim_end(),
        message.trim_start()
    )
}

/// Local time as Python's logging prints it: `2026-11-27 02:09:15,764`.
fn timestamp() -> String {
    let now = jiff::Zoned::now();
    format!(
        "{},{:03}",
        now.strftime("%Y-%m-%d %H:%M:%S"),
        now.millisecond()
    )
}

/// Fail2ban's `MyTime.time2str`: local time, seconds, `2026-11-27 02:09:15`.
pub fn time2str(t: f64) -> String {
    let secs = if t.is_finite() { t.floor() as i64 } else { 0 };
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => "9999-12-31 23:59:59".into(),
    }
}

/// Fail2ban's `MyTime.seconds2str`: a duration in at most three units,
/// rounded to the largest (`1w 3d`, `2d 7h 15m`, `59m 50s`, `0`).
pub fn seconds2str(sec: f64) -> String {
    // (from how many seconds, seconds per rounding step, units as (steps
    // per unit, name)): the first unit always prints, each next one when
    // the rest reaches it. Ties round to even, as Python's `round`.
    const SCALES: [(f64, f64, &[(i64, &str)]); 4] = [
        (31_536_000.0, 86400.0, &[(365, "y"), (7, "w"), (1, "d")]),
        (604_800.0, 3600.0, &[(168, "w"), (24, "d"), (1, "h")]),
        (86400.0, 60.0, &[(1440, "d"), (60, "h"), (1, "m")]),
        (3595.0, 10.0, &[(360, "h"), (6, "m")]),
    ];
    let mut r = Vec::new();
    if let Some((_, step, units)) = SCALES.iter().find(|(min, _, _)| sec >= *min) {
        let mut s = (sec / step).round_ties_even() as i64;
        for (i, (per, unit)) in units.iter().enumerate() {
            if i == 0 || s >= *per {
                r.push(format!("{}{unit}", s / per));
                s %= per;
            }
        }
    } else {
        // Python keeps the fraction here (`1.5s`); whole seconds print bare.
        let mut s = sec;
        if s >= 60.0 {
            r.push(format!("{}m", (s / 60.0).floor() as i64));
            s %= 60.0;
        }
        if s != 0.0 {
            r.push(if s.fract() == 0.0 {
                format!("{}s", s as i64)
            } else {
                format!("{s}s")
            });
        } else if sec == 0.0 {
            r.push("0".into());
        }
    }
    r.join(" ")
}

/// Fail2ban's logger name for an event target.
fn logger_name(target: &str) -> &str {
    if target.starts_with("fail2ban") {
        return target;
    }
    let mut parts = target.split("::");
    let _crate = parts.next();
    match parts.next() {
        Some("action") => "fail2ban.actions",
        Some("filter") | Some("source") => "fail2ban.filter",
        Some("jail") => "fail2ban.jail",
        Some("store") => "fail2ban.database",
        Some("config") => "fail2ban.configreader",
        Some("client") => "fail2ban",
        _ => "fail2ban.server",
    }
}

struct LogLayer {
    log: Log,
}

#[derive(Default)]
struct Fields {
    message: String,
    notice: bool,
    critical: bool,
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "notice" => self.notice = value,
            "critical" => self.critical = value,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.message, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.message, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    /// Drops events that cannot pass the threshold before anything is
    /// formatted: an INFO event may be a NOTICE, an ERROR a CRITICAL.
    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        let highest = match *meta.level() {
            tracing::Level::ERROR => Level::Critical,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO => Level::Notice,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        };
        self.log.enabled(highest)
    }

    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level changes at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *meta.level() {
            tracing::Level::ERROR if fields.critical => Level::Critical,
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO if fields.notice => Level::Notice,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        };
        self.log
            .write(logger_name(meta.target()), level, &fields.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_like_fail2ban() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("NOTICE"), Some(Level::Notice));
        assert_eq!(Level::parse("25"), Some(Level::Notice));
        assert_eq!(Level::parse("HEAVYDEBUG"), Some(Level::Heavy));
        assert_eq!(Level::parse("loud"), None);
    }

    #[test]
    fn panics_go_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.log");
        let log = Log::new(Level::Notice, path.to_str().unwrap(), "auto").unwrap();
        log.log_panics();
        let died = std::thread::Builder::new()
            .name("logban-test-panics".into())
            .spawn(|| panic!("boom 1234"))
            .unwrap()
            .join();
        // Back to the default hook.
        drop(std::panic::take_hook());
        assert!(died.is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("logban-test-panics"))
            .unwrap_or_else(|| panic!("no record of the panic in {text:?}"));
        assert!(line.contains("fail2ban.server"), "{line}");
        assert!(
            line.contains("CRITICAL Internal error in thread logban-test-panics: panicked at"),
            "{line}"
        );
        assert!(line.ends_with("boom 1234"), "{line}");
    }

    #[test]
    fn file_lines_have_fail2bans_shape_and_respect_the_level() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.log");
        let log = Log::new(Level::Notice, path.to_str().unwrap(), "auto").unwrap();
        log.write("fail2ban.actions", Level::Notice, "[postfix] Ban 192.0.2.1");
        log.write("fail2ban.filter", Level::Info, "[postfix] Found 192.0.2.1");
        log.set_level(Level::Info);
        log.write("fail2ban.filter", Level::Info, "[postfix] Found 192.0.2.2");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let pid = std::process::id();
        // `2026-11-27 02:09:15,764 ` is 24 characters.
        assert_eq!(
            &lines[0][24..],
            format!("fail2ban.actions        [{pid}]: NOTICE  [postfix] Ban 192.0.2.1")
        );
        assert_eq!(
            &lines[1][24..],
            format!("fail2ban.filter         [{pid}]: INFO    [postfix] Found 192.0.2.2")
        );
        let stamp = &lines[0][..23];
        assert!(
            jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", &stamp[..19]).is_ok(),
            "{stamp}"
        );
        assert_eq!(&stamp[19..20], ",");
    }

    #[test]
    fn deferred_records_are_written_at_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.log");
        let log = Log::new(Level::Info, path.to_str().unwrap(), "auto").unwrap();
        {
            let _d = log.defer();
            log.write("fail2ban.filter", Level::Info, "[x] Found 192.0.2.1");
            log.write("fail2ban.filter", Level::Debug, "below the level");
            log.write("fail2ban.filter", Level::Info, "[x] Found 192.0.2.2");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        }
        log.write("fail2ban.actions", Level::Notice, "[x] Ban 192.0.2.1");
        let text = std::fs::read_to_string(&path).unwrap();
        let msgs: Vec<&str> = text.lines().map(|l| &l[24..]).collect();
        let pid = std::process::id();
        assert_eq!(
            msgs,
            [
                format!("fail2ban.filter         [{pid}]: INFO    [x] Found 192.0.2.1"),
                format!("fail2ban.filter         [{pid}]: INFO    [x] Found 192.0.2.2"),
                format!("fail2ban.actions        [{pid}]: NOTICE  [x] Ban 192.0.2.1"),
            ]
        );
    }

    #[test]
    fn deferred_records_become_syslog_messages() {
        let line = "2026-11-27 02:09:15,764 fail2ban.actions        [3784]: NOTICE  [postfix] Ban 192.0.2.1";
        assert_eq!(
            syslog_from_line(line, 3784),
            "<29>fail2ban.actions[3784]: NOTICE [postfix] Ban 192.0.2.1\0"
        );
    }

    #[test]
    fn flush_reopens_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.log");
        let log = Log::new(Level::Info, path.to_str().unwrap(), "auto").unwrap();
        log.write("fail2ban.server", Level::Info, "before");
        std::fs::rename(&path, dir.path().join("f2b.log.1")).unwrap();
        assert_eq!(log.flush(), "rolled over");
        log.write("fail2ban.server", Level::Info, "after");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("after") && !text.contains("before"), "{text}");
    }

    #[test]
    fn unusable_target_is_an_error_naming_it() {
        let err = Log::new(Level::Info, "/nonexistent-dir/x.log", "auto")
            .err()
            .unwrap();
        assert!(err.0.contains("/nonexistent-dir/x.log"), "{err}");
    }

    #[test]
    fn durations_read_like_fail2ban() {
        assert_eq!(seconds2str(86400.0 * 390.0), "1y 3w 4d");
        assert_eq!(seconds2str(86400.0 * 368.0), "1y 3d");
        // (Fail2ban's docstring says "1y"; its code gives this.)
        assert_eq!(seconds2str(86400.0 * 365.5), "1y 1d");
        assert_eq!(seconds2str(1.5), "1.5s");
        assert_eq!(
            seconds2str(86400.0 * 2.0 + 3600.0 * 7.0 + 60.0 * 15.0),
            "2d 7h 15m"
        );
        assert_eq!(seconds2str(86400.0 * 2.0 + 3599.0), "2d 1h");
        assert_eq!(seconds2str(3600.0 - 5.0), "1h");
        assert_eq!(seconds2str(3600.0 - 10.0), "59m 50s");
        assert_eq!(seconds2str(59.0), "59s");
        assert_eq!(seconds2str(604800.0), "1w");
        assert_eq!(seconds2str(0.0), "0");
        // Python's `round` takes ties to even (Fail2ban 1.0.2 gives these).
        assert_eq!(seconds2str(86400.0 * 366.5), "1y 1d");
        assert_eq!(seconds2str(3600.0 * 170.5), "1w 2h");
        assert_eq!(seconds2str(60.0 * 1500.5), "1d 1h");
        assert_eq!(seconds2str(10.0 * 400.5), "1h 6m");
    }

    #[test]
    fn level_threshold_is_checked_before_formatting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.log");
        let log = Log::new(Level::Notice, path.to_str().unwrap(), "auto").unwrap();
        assert!(log.enabled(Level::Notice) && !log.enabled(Level::Info));
        log.set_level(Level::Debug);
        assert_eq!(log.level(), Level::Debug);
        assert!(log.enabled(Level::Info));
    }

    #[test]
    fn module_targets_map_to_fail2ban_logger_names() {
        assert_eq!(logger_name("fail2ban.actions"), "fail2ban.actions");
        assert_eq!(logger_name("logban::action::nftables"), "fail2ban.actions");
        assert_eq!(logger_name("logban::source::file"), "fail2ban.filter");
        assert_eq!(logger_name("logban::server"), "fail2ban.server");
    }
}
