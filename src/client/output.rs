//! What fail2ban-client prints for each reply, byte for byte: the `status`
//! trees with TABs, bare counts, `Server replied: pong`, Python reprs for
//! everything it does not dress up.

use crate::server::protocol::{ErrorKind, ErrorReply};
use crate::util::py_repr;
use serde_json::Value;

/// A value as Python's `str()` shows it inside the beautifier (strings bare,
/// everything else as repr).
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// `" ".join(map(str, v))` for lists, `str(v)` otherwise.
fn joined(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(py_str).collect::<Vec<_>>().join(" "),
        other => py_str(other),
    }
}

fn pairs(v: &Value) -> Vec<(String, &Value)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|p| match p {
            Value::Array(kv) if kv.len() == 2 => Some((py_str(&kv[0]), &kv[1])),
            _ => None,
        })
        .collect()
}

fn branch(last: bool) -> &'static str {
    if last {
        "`-"
    } else {
        "|-"
    }
}

fn status(cmd: &[String], reply: &Value) -> String {
    let items = pairs(reply);
    let n = items.len();
    if let Some(jail) = cmd.get(1) {
        let mut out = vec![format!("Status for the jail: {jail}")];
        for (i, (section, body)) in items.iter().enumerate() {
            let last = i + 1 == n;
            out.push(format!("{} {section}", branch(last)));
            let indent = if last { "   " } else { "|  " };
            let rows = pairs(body);
            for (j, (key, val)) in rows.iter().enumerate() {
                out.push(format!(
                    "{indent}{} {key}:\t{}",
                    branch(j + 1 == rows.len()),
                    joined(val)
                ));
            }
        }
        out.join("\n")
    } else {
        let mut out = vec!["Status".to_string()];
        for (i, (key, val)) in items.iter().enumerate() {
            out.push(format!("{} {key}:\t{}", branch(i + 1 == n), joined(val)));
        }
        out.join("\n")
    }
}

/// A list as fail2ban prints monitored files / ignored addresses: `|- a` lines, `` `- last``.
fn tree_list(head: &str, empty: &str, reply: &Value) -> String {
    let items: Vec<String> = match reply {
        Value::Array(v) => v.iter().map(py_str).collect(),
        _ => Vec::new(),
    };
    if items.is_empty() {
        return empty.to_string();
    }
    let mut out = format!("{head}\n");
    for (i, it) in items.iter().enumerate() {
        out.push_str(branch(i + 1 == items.len()));
        out.push(' ');
        out.push_str(it);
        if i + 1 < items.len() {
            out.push('\n');
        }
    }
    out
}

fn regex_list(reply: &Value) -> String {
    let items: Vec<String> = match reply {
        Value::Array(v) => v.iter().map(py_str).collect(),
        _ => Vec::new(),
    };
    if items.is_empty() {
        return "No regular expression is defined".into();
    }
    let mut out = String::from("The following regular expression are defined:\n");
    for (i, it) in items.iter().enumerate() {
        out.push_str(&format!("{} [{i}]: {it}", branch(i + 1 == items.len())));
        if i + 1 < items.len() {
            out.push('\n');
        }
    }
    out
}

/// The text fail2ban-client prints for a successful reply to `cmd`.
pub fn beautify(cmd: &[String], reply: &Value) -> String {
    let arg = |i: usize| cmd.get(i).map(String::as_str);
    match arg(0) {
        Some("ping") => return format!("Server replied: {}", py_str(reply)),
        Some("version") => return py_str(reply),
        Some("start") => return "Jail started".into(),
        Some("stop") if reply.is_null() => {
            return if cmd.len() == 1 {
                "Shutdown successful".into()
            } else {
                "Jail stopped".into()
            }
        }
        Some("add") => return format!("Added jail {}", py_str(reply)),
        Some("flushlogs") => return format!("logs: {}", py_str(reply)),
        Some("echo") => return joined(reply),
        Some("status") => return status(cmd, reply),
        _ => {}
    }
    let default = || py_str(reply);
    match arg(1) {
        None => return default(),
        Some("syslogsocket") => return format!("Current syslog socket is:\n`- {}", py_str(reply)),
        Some("logtarget") => return format!("Current logging target is:\n`- {}", py_str(reply)),
        Some("loglevel") => return format!("Current logging level is {}", py_repr(reply)),
        Some("dbfile") if reply.is_null() => return "Database currently disabled".into(),
        Some("dbfile") => return format!("Current database file is:\n`- {}", py_str(reply)),
        Some("dbpurgeage") if reply.is_null() => return "Database currently disabled".into(),
        Some("dbpurgeage") => {
            return format!(
                "Current database purge age is:\n`- {}seconds",
                reply.as_f64().unwrap_or(0.0) as i64
            )
        }
        _ => {}
    }
    match arg(2) {
        Some("logpath" | "addlogpath" | "dellogpath") => tree_list(
            "Current monitored log file(s):",
            "No file is currently monitored",
            reply,
        ),
        Some("logencoding") => format!("Current log encoding is set to:\n{}", py_str(reply)),
        Some("journalmatch" | "addjournalmatch" | "deljournalmatch") => match reply {
            Value::Array(groups) if !groups.is_empty() => {
                let terms: Vec<String> = groups.iter().map(joined).collect();
                format!("Current match filter:\n{}", terms.join(" + "))
            }
            _ => "No journal match filter set".into(),
        },
        Some("datepattern") => match reply {
            Value::Null => "Current date pattern set to: Not set/required".into(),
            Value::Array(p) if p.len() == 2 && p[0].is_null() => {
                format!("Current date pattern set to: {}", py_str(&p[1]))
            }
            Value::Array(p) if p.len() == 2 => {
                format!(
                    "Current date pattern set to: {} ({})",
                    py_str(&p[0]),
                    py_str(&p[1])
                )
            }
            other => format!("Current date pattern set to: {}", py_str(other)),
        },
        Some("ignoreip" | "addignoreip" | "delignoreip") => tree_list(
            "These IP addresses/networks are ignored:",
            "No IP address/network is ignored",
            reply,
        ),
        Some(
            "failregex" | "addfailregex" | "delfailregex" | "ignoreregex" | "addignoreregex"
            | "delignoreregex",
        ) => regex_list(reply),
        Some("actions") => match reply {
            Value::Array(a) if !a.is_empty() => format!(
                "The jail {} has the following actions:\n{}",
                cmd[1],
                a.iter().map(py_str).collect::<Vec<_>>().join(", ")
            ),
            _ => format!("No actions for jail {}", cmd[1]),
        },
        Some(what @ ("actionproperties" | "actionmethods")) => {
            let kind = if what == "actionproperties" {
                "properties"
            } else {
                "methods"
            };
            let action = arg(3).unwrap_or_default();
            match reply {
                Value::Array(a) if !a.is_empty() => format!(
                    "The jail {} action {action} has the following {kind}:\n{}",
                    cmd[1],
                    a.iter().map(py_str).collect::<Vec<_>>().join(", ")
                ),
                _ => format!("No {kind} for jail {} action {action}", cmd[1]),
            }
        }
        Some("banip") if arg(0) == Some("get") => match reply {
            Value::Array(a) => {
                let sep = match arg(3) {
                    None => " ",
                    Some("--with-time") => "\n",
                    Some(s) => s,
                };
                a.iter().map(py_str).collect::<Vec<_>>().join(sep)
            }
            other => py_str(other),
        },
        _ => default(),
    }
}

/// The text fail2ban-client prints when the server refuses `cmd`.
pub fn beautify_error(err: &ErrorReply) -> String {
    match err.kind {
        ErrorKind::UnknownJail => format!("Sorry but the jail '{}' does not exist", err.message),
        ErrorKind::DuplicateJail => format!("The jail '{}' already exists", err.message),
        ErrorKind::InvalidCommand => "Sorry but the command is invalid".into(),
        ErrorKind::Failed => err.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmd(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn status_trees_match_fail2ban_client() {
        let reply = json!([
            ["Number of jail", 3],
            ["Jail list", "custom, dovecot, postfix"]
        ]);
        assert_eq!(
            beautify(&cmd("status"), &reply),
            "Status\n|- Number of jail:\t3\n`- Jail list:\tcustom, dovecot, postfix"
        );
        let reply = json!([
            [
                "Filter",
                [
                    ["Currently failed", 0],
                    ["Total failed", 0],
                    ["File list", ["/var/log/mail.log"]]
                ]
            ],
            [
                "Actions",
                [
                    ["Currently banned", 2],
                    ["Total banned", 2],
                    ["Banned IP list", ["192.0.66.4", "192.0.66.5"]]
                ]
            ]
        ]);
        assert_eq!(
            beautify(&cmd("status dovecot"), &reply),
            "Status for the jail: dovecot\n|- Filter\n|  |- Currently failed:\t0\n|  |- Total failed:\t0\n|  `- File list:\t/var/log/mail.log\n`- Actions\n   |- Currently banned:\t2\n   |- Total banned:\t2\n   `- Banned IP list:\t192.0.66.4 192.0.66.5"
        );
    }

    #[test]
    fn plain_replies_print_like_python() {
        assert_eq!(
            beautify(&cmd("ping"), &json!("pong")),
            "Server replied: pong"
        );
        assert_eq!(beautify(&cmd("set custom banip 192.0.2.7"), &json!(1)), "1");
        assert_eq!(
            beautify(&cmd("get loglevel"), &json!("DEBUG")),
            "Current logging level is 'DEBUG'"
        );
        assert_eq!(beautify(&cmd("get postfix bantime"), &json!(1234)), "1234");
        assert_eq!(
            beautify(
                &cmd("get postfix banned"),
                &json!(["192.0.2.7", "192.0.2.8"])
            ),
            "['192.0.2.7', '192.0.2.8']"
        );
        assert_eq!(
            beautify(&cmd("banned"), &json!([{"sshd": []}])),
            "[{'sshd': []}]"
        );
        assert_eq!(
            beautify(
                &cmd("get postfix banip"),
                &json!(["192.0.2.8", "192.0.2.7"])
            ),
            "192.0.2.8 192.0.2.7"
        );
        assert_eq!(
            beautify(&cmd("get postfix ignoreip"), &json!(["127.0.0.0/8"])),
            "These IP addresses/networks are ignored:\n`- 127.0.0.0/8"
        );
        assert_eq!(beautify(&cmd("stop"), &Value::Null), "Shutdown successful");
    }

    #[test]
    fn errors_are_worded_like_fail2ban() {
        let e = ErrorReply {
            kind: ErrorKind::UnknownJail,
            message: "nosuch".into(),
        };
        assert_eq!(
            beautify_error(&e),
            "Sorry but the jail 'nosuch' does not exist"
        );
    }
}
