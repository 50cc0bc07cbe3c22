//! Dispatch of the `logban` binary to its programs by invocation name or first
//! argument, and the two small programs that set up an installation:
//! `config write-defaults` and `install-links`.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::embedded::{self, Written};

/// The programs the binary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Server,
    Client,
    Regex,
    /// `logban config write-defaults [--force] DIR`.
    Config,
    /// `logban install-links [--force] DIR`.
    InstallLinks,
}

/// The names the binary answers to as a link (what `install-links` creates).
pub const LINK_NAMES: [(&str, Program); 3] = [
    ("fail2ban-server", Program::Server),
    ("fail2ban-client", Program::Client),
    ("fail2ban-regex", Program::Regex),
];

/// Picks the program from `argv[0]` (a `fail2ban-*` link) or the first argument.
/// Returns the program and the arguments that follow its name.
pub fn pick(args: &[OsString]) -> Option<(Program, Vec<OsString>)> {
    let invoked = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let by_name = |n: &str| match n {
        "fail2ban-server" | "server" => Some(Program::Server),
        "fail2ban-client" | "client" => Some(Program::Client),
        "fail2ban-regex" | "regex" => Some(Program::Regex),
        "config" => Some(Program::Config),
        "install-links" => Some(Program::InstallLinks),
        _ => None,
    };
    if invoked.starts_with("fail2ban-") {
        return by_name(invoked).map(|p| (p, args[1..].to_vec()));
    }
    let first = args.get(1)?.to_str()?;
    by_name(first).map(|p| (p, args[2..].to_vec()))
}

/// Options shared by fail2ban-server and fail2ban-client (fail2bancmdline).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Opts {
    pub conf: Option<String>,
    pub socket: Option<String>,
    pub pidfile: Option<String>,
    pub pname: Option<String>,
    pub loglevel: Option<String>,
    pub logtarget: Option<String>,
    pub syslogsocket: Option<String>,
    /// `-x`: remove a stale socket.
    pub force: bool,
    /// `-f` (true) / `-b` (false); None when neither was given.
    pub foreground: Option<bool>,
    /// `-d` (1) or `--dp` (2).
    pub dump: u8,
    pub test: bool,
    pub interactive: bool,
    /// `-v` count minus `-q` count.
    pub verbose: i32,
    /// `-V` (short: the number) or `--version`.
    pub version: bool,
    /// `--version`: `Fail2Ban v1.0.2`.
    pub long_version: bool,
    pub help: bool,
    pub is_async: bool,
    pub timeout: Option<String>,
    pub str2sec: Option<String>,
    /// logban addition: JSON output from the client.
    pub json: bool,
}

impl Opts {
    /// What `-h` (`usage`) or `-V` (the number) and `--version` print
    /// instead of running the program, as Fail2ban's tools; None without
    /// either.
    pub fn help_or_version(&self, usage: &str) -> Option<String> {
        if self.help {
            Some(usage.to_string())
        } else if self.long_version {
            Some(format!("Fail2Ban v{}", crate::config::FAIL2BAN_VERSION))
        } else if self.version {
            Some(crate::config::FAIL2BAN_VERSION.to_string())
        } else {
            None
        }
    }
}

/// Parses options the way Python's getopt does for Fail2ban: short flags may be
/// combined (`-xf`), options stop at the first non-option word, which starts the
/// command. Returns the options and the command words.
pub fn parse_opts(args: &[String]) -> Result<(Opts, Vec<String>), String> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let mut value = || -> Result<String, String> {
                if let Some(v) = inline.clone() {
                    return Ok(v);
                }
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("option --{name} requires argument"))
            };
            match name {
                "conf" => o.conf = Some(value()?),
                "socket" => o.socket = Some(value()?),
                "pidfile" => o.pidfile = Some(value()?),
                "pname" => o.pname = Some(value()?),
                "loglevel" => o.loglevel = Some(value()?),
                "logtarget" => o.logtarget = Some(value()?),
                "syslogsocket" => o.syslogsocket = Some(value()?),
                "timeout" => o.timeout = Some(value()?),
                "str2sec" => o.str2sec = Some(value()?),
                "test" => o.test = true,
                "async" => o.is_async = true,
                "help" => o.help = true,
                "version" => (o.version, o.long_version) = (true, true),
                "dp" | "dump-pretty" => o.dump = 2,
                "json" => o.json = true,
                _ => return Err(format!("option --{name} not recognized")),
            }
            i += 1;
            continue;
        }
        let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) else {
            break;
        };
        let chars: Vec<char> = shorts.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let takes_value = matches!(c, 'c' | 's' | 'p');
            if takes_value {
                let rest: String = chars[j + 1..].iter().collect();
                let v = if !rest.is_empty() {
                    rest
                } else {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("option -{c} requires argument"))?
                };
                match c {
                    'c' => o.conf = Some(v),
                    's' => o.socket = Some(v),
                    _ => o.pidfile = Some(v),
                }
                break;
            }
            match c {
                'h' => o.help = true,
                'x' => o.force = true,
                'f' => o.foreground = Some(true),
                'b' => o.foreground = Some(false),
                'd' => o.dump = 1,
                't' => o.test = true,
                'v' => o.verbose += 1,
                'q' => o.verbose -= 1,
                'i' => o.interactive = true,
                'V' => o.version = true,
                _ => return Err(format!("option -{c} not recognized")),
            }
            j += 1;
        }
        i += 1;
    }
    Ok((o, args[i.min(args.len())..].to_vec()))
}

const USAGE: &str = "usage: logban <server|client|regex|config|install-links> [ARGS...]
  logban server [-c DIR] [-f] [-x] start     run the daemon (fail2ban-server)
  logban client [-c DIR] COMMAND ...         control it (fail2ban-client)
  logban regex [OPTIONS] LOG FILTER          test a filter (fail2ban-regex)
  logban config write-defaults [--force] DIR write the embedded configuration into DIR
  logban install-links [--force] DIR         link fail2ban-server, -client, -regex in DIR to logban";

/// Entry point of the binary; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    match pick(&args) {
        Some((Program::Regex, rest)) => {
            let invoked = args[0].to_string_lossy();
            let prog = if invoked.rsplit('/').next() == Some("fail2ban-regex") {
                invoked.into_owned()
            } else {
                "logban regex".to_string()
            };
            crate::regex_cli::main(&prog, &strings(&rest))
        }
        Some((Program::Config, rest)) => config_main(&rest),
        Some((Program::InstallLinks, rest)) => install_links_main(&rest),
        Some((Program::Server, rest)) => crate::server::main(&strings(&rest)),
        Some((Program::Client, rest)) => crate::client::main(&strings(&rest)),
        None => {
            eprintln!("{USAGE}");
            2
        }
    }
}

/// `[--force] DIR` (in any order), the arguments of both setup programs.
/// None asks for the usage text (`-h`, `--help`, or a mistake, reported).
fn force_and_dir(args: &[OsString], usage: &str) -> Option<(bool, PathBuf)> {
    let mut force = false;
    let mut dir = None;
    for a in args {
        match a.to_str() {
            Some("-f" | "--force") => force = true,
            Some("-h" | "--help") => {
                println!("{usage}");
                return None;
            }
            Some(o) if o.starts_with('-') && o.len() > 1 => {
                eprintln!("logban: unknown option {o}\n{usage}");
                return None;
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => {
                eprintln!("logban: one directory only\n{usage}");
                return None;
            }
        }
    }
    if dir.is_none() {
        eprintln!("{usage}");
    }
    Some((force, dir?))
}

/// 0 after `--help`, 2 after a usage mistake (already reported).
fn usage_exit(args: &[OsString]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        0
    } else {
        2
    }
}

/// Arguments as the option parser takes them (lossy: file names with
/// invalid UTF-8 are not expected on these command lines).
fn strings(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn config_main(args: &[OsString]) -> i32 {
    const USAGE: &str = "usage: logban config write-defaults [--force] DIR
  Writes logban's embedded configuration (the mail-server profile) into DIR,
  the tree logban reads when its configuration directory does not exist.
  Files that exist with other content are kept unless --force is given.";
    if args.first().map_or(true, |a| a != "write-defaults") {
        if usage_exit(args) == 0 {
            println!("{USAGE}");
        } else {
            eprintln!("{USAGE}");
        }
        return usage_exit(args);
    }
    let Some((force, dir)) = force_and_dir(&args[1..], USAGE) else {
        return usage_exit(args);
    };
    match embedded::write_defaults(&dir, force) {
        Ok(done) => {
            let mut unchanged = 0;
            for (path, what) in done {
                match what {
                    Written::Created => println!("wrote {}", path.display()),
                    Written::Replaced => println!("replaced {}", path.display()),
                    Written::Unchanged => unchanged += 1,
                }
            }
            if unchanged > 0 {
                println!("{unchanged} files already held the defaults");
            }
            0
        }
        Err(e) => {
            eprintln!("logban: {e}");
            1
        }
    }
}

/// What [`install_links`] did with one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Created,
    /// It already pointed to the binary.
    Present,
    /// Something else was there (only with `force`).
    Replaced,
}

/// Creates `dir/fail2ban-server`, `-client` and `-regex` (see [`LINK_NAMES`])
/// as symbolic links to `target`. A name that already resolves to `target`
/// is left alone; anything else there is replaced only with `force`, and
/// without it nothing changes (the error, of kind `AlreadyExists`, names the
/// files).
pub fn install_links(dir: &Path, target: &Path, force: bool) -> io::Result<Vec<(PathBuf, Linked)>> {
    let with_path = |path: &Path| {
        let path = path.to_path_buf();
        move |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    };
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let real_target = std::fs::canonicalize(target).map_err(with_path(target))?;
    let mut plan = Vec::with_capacity(LINK_NAMES.len());
    let mut foreign = Vec::new();
    for (name, _) in LINK_NAMES {
        let link = dir.join(name);
        let what = match link.symlink_metadata() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Linked::Created,
            Err(e) => return Err(with_path(&link)(e)),
            Ok(_) if std::fs::canonicalize(&link).is_ok_and(|p| p == real_target) => {
                Linked::Present
            }
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a directory", link.display()),
                ))
            }
            Ok(_) => {
                foreign.push(link.display().to_string());
                Linked::Replaced
            }
        };
        plan.push((link, what));
    }
    if !force && !foreign.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: not a link to {} (--force replaces)",
                foreign.join(", "),
                real_target.display()
            ),
        ));
    }
    for (link, what) in &plan {
        match what {
            Linked::Present => {}
            Linked::Created => {
                std::os::unix::fs::symlink(&real_target, link).map_err(with_path(link))?
            }
            Linked::Replaced => {
                // A new link renamed over the old file: the name never goes missing.
                let name = link.file_name().unwrap_or_default().to_string_lossy();
                let tmp = link.with_file_name(format!(".{name}.logban-new"));
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&real_target, &tmp).map_err(with_path(&tmp))?;
                std::fs::rename(&tmp, link).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    with_path(link)(e)
                })?;
            }
        }
    }
    Ok(plan)
}

fn install_links_main(args: &[OsString]) -> i32 {
    const USAGE: &str = "usage: logban install-links [--force] DIR
  Creates DIR/fail2ban-server, DIR/fail2ban-client and DIR/fail2ban-regex as
  links to this binary, which then answers as those programs. A file there
  that is not already such a link is kept unless --force is given.";
    let Some((force, dir)) = force_and_dir(args, USAGE) else {
        return usage_exit(args);
    };
    let result = std::env::current_exe().and_then(|me| install_links(&dir, &me, force));
    match result {
        Ok(done) => {
            for (link, what) in done {
                let what = match what {
                    Linked::Created => "created",
                    Linked::Present => "already there",
                    Linked::Replaced => "replaced",
                };
                let to = std::fs::read_link(&link).unwrap_or_default();
                println!("{} -> {} ({what})", link.display(), to.display());
            }
            0
        }
        Err(e) => {
            eprintln!("logban: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn picks_by_link_name_then_by_argument() {
        let (p, rest) = pick(&os(&["/usr/bin/fail2ban-client", "status"])).unwrap();
        assert_eq!((p, rest), (Program::Client, os(&["status"])));
        let (p, rest) = pick(&os(&["logban", "regex", "a", "b"])).unwrap();
        assert_eq!((p, rest), (Program::Regex, os(&["a", "b"])));
        assert!(pick(&os(&["logban", "frobnicate"])).is_none());
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_like_getopt() {
        let (o, rest) = parse_opts(&words("-xf start")).unwrap();
        assert!(o.force);
        assert_eq!(o.foreground, Some(true));
        assert_eq!(rest, words("start"));
        let (o, rest) = parse_opts(&words(
            "-c/etc/f2b -s /run/x.sock --loglevel=DEBUG -vv status sshd -v",
        ))
        .unwrap();
        assert_eq!(o.conf.as_deref(), Some("/etc/f2b"));
        assert_eq!(o.socket.as_deref(), Some("/run/x.sock"));
        assert_eq!(o.loglevel.as_deref(), Some("DEBUG"));
        assert_eq!(o.verbose, 2);
        assert_eq!(rest, words("status sshd -v"));
        assert!(parse_opts(&words("-z")).is_err());
        assert!(parse_opts(&words("-c")).is_err());
    }
}
