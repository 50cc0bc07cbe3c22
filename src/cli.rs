//! Dispatch of the `logban` binary to its programs by invocation name or first
//! argument.

use std::ffi::OsString;
use std::path::Path;

/// The programs the binary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Server,
    Client,
    Regex,
}

/// Picks the program from argv[0] (a `fail2ban-*` link) or the first argument.
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
        _ => None,
    };
    if invoked.starts_with("fail2ban-") {
        return by_name(invoked).map(|p| (p, args[1..].to_vec()));
    }
    let first = args.get(1)?.to_str()?;
    by_name(first).map(|p| (p, args[2..].to_vec()))
}

const USAGE: &str = "usage: logban <server|client|regex> [ARGS...]
  logban server [-c DIR] [-f] [-x] start     run the daemon (fail2ban-server)
  logban client [-c DIR] COMMAND ...         control it (fail2ban-client)
  logban regex [OPTIONS] LOG FILTER          test a filter (fail2ban-regex)";

/// Entry point of the binary; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    match pick(&args) {
        Some((prog, _rest)) => {
            eprintln!("logban: {prog:?} is not built yet");
            2
        }
        None => {
            eprintln!("{USAGE}");
            2
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
}
