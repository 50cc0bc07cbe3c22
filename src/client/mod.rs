//! The command line that talks to the server over the control socket and prints
//! what fail2ban-client prints (`logban client`, `fail2ban-client`).
//!
//! Most commands go to the server as they are typed (docs/protocol.md); the
//! client itself handles `start` (runs the server in the background and
//! waits until it answers), `restart` (`stop`, then `start`; `restart JAIL`
//! is `reload --restart JAIL`), `help`, and the options that answer without
//! a server (`-d`, `-t`, `--str2sec`, `-V`). Exit status as
//! fail2ban-client's: 0 when the command succeeded, 255 when the server
//! refused it or could not be reached. Errors go to stderr in Fail2ban's
//! log format (`... fail2ban [PID]: ERROR   ...`), the reply's text to
//! stdout (`--json`: JSON, see [`json`]).

pub mod json;
pub mod output;

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::Opts;
use crate::server::log::{Level, Log};
use crate::server::protocol::{read_line, write_line, Reply};

/// fail2ban.conf's default socket, when the configuration cannot be read.
const DEFAULT_SOCKET: &str = "/var/run/fail2ban/fail2ban.sock";
/// fail2ban-client's default `--timeout` (waiting for a server to start or stop).
const DEFAULT_TIMEOUT: f64 = 30.0;

const USAGE: &str = "Usage: logban client [OPTIONS] <COMMAND>
  (also installed as fail2ban-client; the commands and their output are
  fail2ban-client's)

Options:
  -c, --conf <DIR>         configuration directory (default /etc/fail2ban)
  -s, --socket <FILE>      socket path (default: the configuration's)
  -p, --pidfile <FILE>     pid file of a server `start` runs
  --loglevel <LEVEL>       logging level of a server `start` runs
  --logtarget <TARGET>     log target of a server `start` runs
  --syslogsocket auto|<FILE>
  -d, --dp                 print the configuration as the server's command stream
  -t, --test               check the configuration (then run the command, if any)
  -x                       `start`: remove a socket left by a server that died
  -b, -f                   `start`: server in the background (default) / foreground
  -v, -q                   more / less on stderr
  --timeout <TIME>         how long to wait for the server (default 30)
  --str2sec <TIME>         print a time (`1h30m`) in seconds
  --json                   print replies as JSON (status, get, banned...)
  -h, --help               this help
  -V, --version            the version (--version: long form)

Server:
  start                    start the server (in the background) and its jails
  stop                     stop every jail and the server
  restart                  stop, then start
  reload [--restart] [--unban] [--if-exists] [--all | <JAIL>]
                           read the configuration again: unchanged jails keep
                           running, changed ones keep their bans, new ones
                           start, removed ones stop; a broken configuration
                           is refused and the running one stays
  restart [--unban] [--if-exists] <JAIL>
                           reload --restart <JAIL>
  ping [<TIMEOUT>]         check that the server answers
  status [<JAIL> [short|basic|cymru]]
  version | flushlogs | echo <WORDS> | help

Bans:
  banned [<IP> ...]        the banned addresses per jail, or the jails banning <IP>
  unban --all | <IP> ...   unban (in every jail and the database)
  set <JAIL> banip <IP> ...                 prints how many were newly banned
  set <JAIL> unbanip [--report-absent] <IP> ...
                           prints how many were unbanned (a network unbans
                           every ban inside it)
  get <JAIL> banned [<IP> ...] | banip [--with-time | <SEP>]

Jails:
  start <JAIL> | stop <JAIL> | stop --all
  set <JAIL> idle on|off | maxretry <N> | findtime <TIME> | bantime <TIME>
             | addignoreip <IP>... | delignoreip <IP> | ignoreself <BOOL>
             | ignorecommand <CMD> | usedns <MODE> | maxlines <N> | maxmatches <N>
             | datepattern <PATTERN> | logtimezone <TZ> | logencoding <ENC>
             | addfailregex <RE> | delfailregex <N> | addignoreregex <RE>
             | delignoreregex <N> | prefregex <RE> | addlogpath <FILE> [tail]
             | dellogpath <FILE> | addjournalmatch <MATCH> | deljournalmatch <MATCH>
             | bantime.<OPT> <VALUE> | attempt <IP> [<LINE>...]
  get <JAIL> the same options, and ignoreip, failregex, ignoreregex, logpath,
             journalmatch, actions, action <ACT> <PROP>, actionproperties <ACT>

Server settings:
  set|get loglevel | logtarget | syslogsocket | dbpurgeage | dbmaxmatches
  get dbfile";

/// Where and how loudly the client reports (fail2ban-client's `-v`/`-q`).
struct Report {
    verbose: i32,
}

impl Report {
    fn log(&self, level: Level, msg: &str) {
        let shown = match level {
            Level::Error | Level::Critical => true,
            Level::Warning => self.verbose >= 1,
            _ => self.verbose >= 2,
        };
        if !shown {
            return;
        }
        match Log::new(Level::Heavy, "STDERR", "auto") {
            Ok(log) => log.write("fail2ban", level, msg),
            Err(_) => eprintln!("{msg}"),
        }
    }

    fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }
}

/// `logban client ARGS`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let (opts, cmd) = match crate::cli::parse_opts(args) {
        Ok(v) => v,
        Err(e) => {
            println!("{USAGE}");
            eprintln!("{e}\nInit of command line failed");
            return 255;
        }
    };
    let report = Report {
        verbose: 1 + opts.verbose,
    };
    if let Some(text) = opts.help_or_version(USAGE) {
        println!("{text}");
        return 0;
    }
    if let Some(t) = &opts.str2sec {
        return match crate::config::parse_time(t) {
            Ok(v) => {
                println!("{}", crate::util::py_repr(&crate::server::number(v)));
                0
            }
            Err(e) => {
                println!("ERROR: {}", e.message);
                eprintln!("Init of command line failed");
                255
            }
        };
    }
    if opts.dump > 0 {
        return dump(&opts, &report);
    }
    if opts.test {
        if !test_config(&opts, &report) {
            report.error("ERROR: test configuration failed");
            return 255;
        }
        if cmd.is_empty() {
            println!("OK: configuration test is successful");
            return 0;
        }
    }
    if opts.interactive {
        report
            .error("interactive mode (-i) is not supported: give the command on the command line");
        return 255;
    }
    let Some(head) = cmd.first() else {
        println!("{USAGE}");
        return 255;
    };
    let client = Client::new(&opts, report);
    client
        .report
        .log(Level::Info, &format!("Using socket file {}", client.socket));
    match (head.as_str(), &cmd[1..]) {
        ("help", _) => {
            println!("{USAGE}");
            0
        }
        ("start", []) => client.start_server(),
        ("restart", []) => client.restart_server(),
        ("restart", rest) => {
            let mut words = vec!["reload".to_string(), "--restart".to_string()];
            words.extend(rest.iter().cloned());
            client.reload(&words)
        }
        ("reload", _) => client.reload(&cmd),
        ("ping", [t, ..]) => {
            let t = t.parse::<f64>().ok();
            client.command(&cmd, t)
        }
        _ => client.command(&cmd, None),
    }
}

fn dump(opts: &Opts, report: &Report) -> i32 {
    let lines = crate::server::config_tree(opts.conf.as_deref())
        .and_then(|t| crate::config::dump(&t).map_err(|e| e.to_string()));
    match lines {
        Ok(lines) => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            0
        }
        Err(e) => {
            report.error(&format!("Failed during configuration: {e}"));
            255
        }
    }
}

/// `-t`: the configuration as the server would take it (every enabled
/// jail's settings and filter); errors are reported.
fn test_config(opts: &Opts, report: &Report) -> bool {
    let tree = match crate::server::config_tree(opts.conf.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            report.error(&e);
            return false;
        }
    };
    if let Err(e) = crate::server::server_settings(&tree, opts) {
        report.error(&e);
        return false;
    }
    let jails = match tree.jail_results() {
        Ok(j) => j,
        Err(e) => {
            report.error(&e.to_string());
            return false;
        }
    };
    let mut ok = true;
    for (name, def) in jails {
        let checked = def
            .map_err(|e| e.to_string())
            .and_then(crate::server::launch::prepare);
        if let Err(e) = checked {
            report.error(&format!("Errors in jail {name:?}: {e}"));
            ok = false;
        }
    }
    ok
}

/// Why a request did not get a reply.
enum Failure {
    /// The socket file is not there.
    NoSocket,
    /// Not allowed to connect.
    Denied,
    Io(std::io::Error),
}

struct Client<'a> {
    opts: &'a Opts,
    socket: String,
    /// `--timeout`, when given: a limit on waiting for each reply.
    reply_timeout: Option<Duration>,
    /// How long `start` and `restart` wait for the server.
    wait: Duration,
    report: Report,
}

impl<'a> Client<'a> {
    fn new(opts: &'a Opts, report: Report) -> Client<'a> {
        let timeout = opts
            .timeout
            .as_deref()
            .and_then(|t| crate::config::parse_time(t).ok())
            .and_then(|t| Duration::try_from_secs_f64(t).ok());
        Client {
            opts,
            socket: socket_path(opts),
            reply_timeout: timeout.filter(|t| !t.is_zero()),
            wait: timeout.unwrap_or(Duration::from_secs_f64(DEFAULT_TIMEOUT)),
            report,
        }
    }

    /// Sends one command and prints the reply; returns the exit code.
    fn command(&self, cmd: &[String], timeout: Option<f64>) -> i32 {
        let t = timeout
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .or(self.reply_timeout);
        match self.send(cmd, t) {
            Ok(reply) => self.print(cmd, reply),
            Err(f) => {
                self.socket_error(f);
                255
            }
        }
    }

    fn print(&self, cmd: &[String], reply: Reply) -> i32 {
        let (text, code) = match reply {
            Reply::Ok(v) => {
                let text = if self.opts.json {
                    json::shape(cmd, &v).to_string()
                } else {
                    output::beautify(cmd, &v)
                };
                (text, 0)
            }
            Reply::Error(e) => {
                self.report.error(&format!(
                    "NOK: ({},)",
                    crate::util::py_repr(&serde_json::Value::from(e.message.as_str()))
                ));
                let text = if self.opts.json {
                    serde_json::json!({ "error": e }).to_string()
                } else {
                    output::beautify_error(&e)
                };
                (text, 255)
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        code
    }

    /// fail2ban-client's words for a server it cannot reach.
    fn socket_error(&self, f: Failure) {
        let msg = match f {
            Failure::NoSocket => format!(
                "Failed to access socket path: {}. Is fail2ban running?",
                self.socket
            ),
            Failure::Denied => format!(
                "Permission denied to socket: {}, (you must be root)",
                self.socket
            ),
            Failure::Io(e) => format!("[{}] Unable to contact server. Is it running?", py_err(&e)),
        };
        self.report.error(&msg);
    }

    fn send(&self, cmd: &[String], timeout: Option<Duration>) -> Result<Reply, Failure> {
        send(Path::new(&self.socket), cmd, timeout)
    }

    fn alive(&self) -> bool {
        matches!(
            self.send(&["ping".to_string()], Some(Duration::from_millis(500))),
            Ok(Reply::Ok(_))
        )
    }

    /// Waits until the server answers (`up`) or no longer does.
    fn wait_for(&self, up: bool) -> bool {
        let end = Instant::now() + self.wait;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.alive() == up {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// `start`: runs `logban server` with the client's options in the
    /// background (or, with `-f`, in its place) and waits until it answers.
    fn start_server(&self) -> i32 {
        if self.alive() {
            self.report.error("Server already running");
            return 255;
        }
        if !self.opts.force && Path::new(&self.socket).exists() {
            self.report.error(
                "Fail2ban seems to be in unexpected state (not running but the socket exists)",
            );
            return 255;
        }
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                self.report
                    .error(&format!("cannot find the logban binary: {e}"));
                return 255;
            }
        };
        let mut server = Command::new(exe);
        server.arg("server").args(self.server_args());
        if self.opts.foreground == Some(true) {
            use std::os::unix::process::CommandExt;
            let e = server.arg("-f").arg("start").exec();
            self.report.error(&format!("cannot start the server: {e}"));
            return 255;
        }
        // The server goes to the background itself and returns once it
        // answers (255 with the reason, on stderr, when it could not start).
        match server.arg("-b").arg("start").status() {
            Ok(s) if s.success() => {}
            Ok(_) => return 255,
            Err(e) => {
                self.report.error(&format!("cannot start the server: {e}"));
                return 255;
            }
        }
        if !self.wait_for(true) {
            self.report.error("Could not find server, waiting failed");
            return 255;
        }
        println!("Server ready");
        0
    }

    /// The client's options a server it starts takes.
    fn server_args(&self) -> Vec<String> {
        let o = self.opts;
        let mut args = Vec::new();
        let mut pass = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                args.push(flag.to_string());
                args.push(v.clone());
            }
        };
        pass("-c", &o.conf);
        pass("-p", &o.pidfile);
        pass("--loglevel", &o.loglevel);
        pass("--logtarget", &o.logtarget);
        pass("--syslogsocket", &o.syslogsocket);
        args.push("-s".into());
        args.push(self.socket.clone());
        if o.force {
            args.push("-x".into());
        }
        args
    }

    /// `restart`: `stop` (when running), then `start`.
    fn restart_server(&self) -> i32 {
        self.command(&["stop".to_string()], None);
        if !self.wait_for(false) {
            self.report.error("Could not stop server");
            return 255;
        }
        self.start_server()
    }

    /// `reload [--restart] [--unban] [--if-exists] [--all | JAIL]`: checked
    /// as fail2ban-client checks it; the server reads the configuration.
    fn reload(&self, cmd: &[String]) -> i32 {
        // Options first, then at most one jail (or `--all`).
        let rest: Vec<String> = cmd[1..]
            .iter()
            .skip_while(|w| matches!(w.as_str(), "--restart" | "--unban" | "--if-exists"))
            .cloned()
            .collect();
        if rest.len() > 1 {
            self.report.error(&format!(
                "Unexpected argument(s) for reload: {}",
                crate::util::py_repr(&serde_json::Value::from(rest))
            ));
            return 255;
        }
        if !self.alive() {
            self.report.error("Could not find server");
            return 255;
        }
        self.command(cmd, None)
    }
}

/// `-s`, else the configuration's `socket`, else Fail2ban's default.
fn socket_path(opts: &Opts) -> String {
    if let Some(s) = &opts.socket {
        return s.clone();
    }
    crate::server::config_tree(opts.conf.as_deref())
        .and_then(|t| t.server().map_err(|e| e.to_string()))
        .map(|s| s.socket)
        .unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// Python's `str()` of an OS error: `[Errno 111] Connection refused`.
fn py_err(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            // SAFETY: strerror returns a valid C string for any number.
            let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(n)) };
            format!("[Errno {n}] {}", text.to_string_lossy())
        }
        None if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            "timed out".into()
        }
        None => e.to_string(),
    }
}

fn send(socket: &Path, cmd: &[String], timeout: Option<Duration>) -> Result<Reply, Failure> {
    let stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Failure::NoSocket,
        std::io::ErrorKind::PermissionDenied => Failure::Denied,
        _ => Failure::Io(e),
    })?;
    stream.set_read_timeout(timeout).map_err(Failure::Io)?;
    stream.set_write_timeout(timeout).map_err(Failure::Io)?;
    let mut w = &stream;
    write_line(&mut w, &cmd).map_err(Failure::Io)?;
    let mut r = BufReader::new(&stream);
    match read_line::<Reply, _>(&mut r) {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => Err(Failure::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ))),
        Err(e) => Err(Failure::Io(e)),
    }
}
