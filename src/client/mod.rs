//! The command line that talks to the server over the control socket and prints
//! what fail2ban-client prints (`logban client`, `fail2ban-client`).
//!
//! Exit status as fail2ban-client's: 0 when the server accepted the command,
//! 255 when it refused it or could not be reached. Errors go to stderr in
//! Fail2ban's log format (`... fail2ban [PID]: ERROR   ...`), the reply's
//! text to stdout.

pub mod output;

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::cli::Opts;
use crate::config::FAIL2BAN_VERSION;
use crate::server::log::{Level, Log};
use crate::server::protocol::{read_line, write_line, Reply};

/// fail2ban.conf's default socket, when the configuration cannot be read.
const DEFAULT_SOCKET: &str = "/var/run/fail2ban/fail2ban.sock";
/// fail2ban-client's default `--timeout`.
const DEFAULT_TIMEOUT: f64 = 30.0;

const USAGE: &str = "Usage: logban client [OPTIONS] <COMMAND>
  (also installed as fail2ban-client)

  -c <DIR>              configuration directory (default /etc/fail2ban)
  -s <FILE>             socket path
  -d                    dump the configuration as commands
  --json                print replies as JSON
  --timeout <SECONDS>   wait this long for a reply (default 30)
  -h, --help            this help
  -V, --version         the version

Commands: ping, status [JAIL], set JAIL banip|unbanip IP..., get JAIL banned|bantime|findtime|maxretry,
banned [IP...], get loglevel, version, stop";

/// Reports an error as fail2ban-client does: a log line on stderr.
fn error(msg: &str) {
    match Log::new(Level::Error, "STDERR", "auto") {
        Ok(log) => log.write("fail2ban", Level::Error, msg),
        Err(_) => eprintln!("ERROR   {msg}"),
    }
}

/// `logban client ARGS`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let (opts, cmd) = match crate::cli::parse_opts(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return 255;
        }
    };
    if opts.help {
        println!("{USAGE}");
        return 0;
    }
    if opts.version {
        println!("{FAIL2BAN_VERSION}");
        return 0;
    }
    if opts.dump > 0 {
        return dump(&opts);
    }
    if cmd.is_empty() {
        eprintln!("{USAGE}");
        return 255;
    }
    let socket = socket_path(&opts);
    let timeout = opts
        .timeout
        .as_deref()
        .and_then(|t| crate::config::parse_time(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT);
    let reply = match send(Path::new(&socket), &cmd, timeout) {
        Ok(r) => r,
        Err(Failure::Connect) => {
            error(&format!(
                "Failed to access socket path: {socket}. Is fail2ban running?"
            ));
            return 255;
        }
        Err(Failure::Io(e)) => {
            error(&format!("[{e}] Unable to contact server. Is it running?"));
            return 255;
        }
    };
    let mut out = std::io::stdout().lock();
    match reply {
        Reply::Ok(v) => {
            let text = if opts.json {
                v.to_string()
            } else {
                output::beautify(&cmd, &v)
            };
            let _ = writeln!(out, "{text}");
            0
        }
        Reply::Error(e) => {
            error(&format!(
                "NOK: ({},)",
                crate::util::py_repr(&serde_json::Value::from(e.message.as_str()))
            ));
            let text = if opts.json {
                serde_json::json!({ "error": e }).to_string()
            } else {
                output::beautify_error(&e)
            };
            let _ = writeln!(out, "{text}");
            255
        }
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

fn dump(opts: &Opts) -> i32 {
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
            error(&e);
            255
        }
    }
}

enum Failure {
    /// Nobody listens on the socket (or it is not there).
    Connect,
    Io(std::io::Error),
}

fn send(socket: &Path, cmd: &[String], timeout: f64) -> Result<Reply, Failure> {
    let stream = UnixStream::connect(socket).map_err(|_| Failure::Connect)?;
    let t = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|d| !d.is_zero());
    stream.set_read_timeout(t).map_err(Failure::Io)?;
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
