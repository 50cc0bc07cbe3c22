//! `--json`: replies as objects with named fields, for scripts and
//! dashboards (docs/protocol.md lists the shapes):
//!
//! - `status`: `{"number_of_jails": 3, "jails": ["custom", "dovecot", "postfix"]}`
//! - `status JAIL`: `{"jail": "postfix", "filter": {"currently_failed": 0,
//!   "total_failed": 5, "files": [...]}, "actions": {"currently_banned": 1,
//!   "total_banned": 1, "banned": ["192.0.2.7"], "enforced": true}}`
//!   (`journal_matches` instead of `files` for the journal, `not_enforced`
//!   with the reason when `enforced` is false)
//! - `get JAIL OPTION ...`: `{"jail": "postfix", "bantime": 1234}`; server
//!   settings without `jail`: `{"loglevel": "DEBUG"}`; `banip --with-time`:
//!   a list of `{"ip", "banned_at", "bantime", "ends"}`; `banned IP...`:
//!   `{"IP": true, ...}`
//! - `banned`: `{"postfix": ["192.0.2.7"], ...}`; `banned IP...`:
//!   `{"192.0.2.7": ["postfix"], ...}`
//! - anything else: the server's value as is (`1` for `banip`).

use serde_json::{json, Map, Value};

/// The JSON printed for a successful reply to `cmd`.
pub fn shape(cmd: &[String], reply: &Value) -> Value {
    let arg = |i: usize| cmd.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("status"), None) => status(reply),
        (Some("status"), Some(jail)) => status_jail(jail, reply),
        (Some("banned"), _) => banned(&cmd[1..], reply),
        (Some("get"), Some(key)) => get(key, &cmd[2..], reply),
        _ => reply.clone(),
    }
}

/// `[[name, value], ...]` as pairs.
fn pairs(v: &Value) -> Vec<(&str, &Value)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| match p.as_array()?.as_slice() {
            [k, v] => Some((k.as_str()?, v)),
            _ => None,
        })
        .collect()
}

/// `Currently failed` -> `currently_failed`, and the lists by what they hold.
fn key(name: &str) -> String {
    match name {
        "File list" => "files".into(),
        "Banned IP list" => "banned".into(),
        "Bans NOT enforced" => "not_enforced".into(),
        other => other.to_ascii_lowercase().replace(' ', "_"),
    }
}

fn status(reply: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in pairs(reply) {
        match k {
            "Number of jail" => out.insert("number_of_jails".into(), v.clone()),
            "Jail list" => {
                let names: Vec<&str> = v
                    .as_str()
                    .unwrap_or_default()
                    .split(", ")
                    .filter(|n| !n.is_empty())
                    .collect();
                out.insert("jails".into(), json!(names))
            }
            other => out.insert(key(other), v.clone()),
        };
    }
    Value::Object(out)
}

fn status_jail(jail: &str, reply: &Value) -> Value {
    let mut out = Map::new();
    out.insert("jail".into(), json!(jail));
    for (section, rows) in pairs(reply) {
        let mut m = Map::new();
        for (k, v) in pairs(rows) {
            m.insert(key(k), v.clone());
        }
        if section == "Actions" {
            let enforced = !m.contains_key("not_enforced");
            m.insert("enforced".into(), json!(enforced));
        }
        out.insert(key(section), Value::Object(m));
    }
    Value::Object(out)
}

fn banned(ids: &[String], reply: &Value) -> Value {
    let mut out = Map::new();
    let items = reply.as_array().into_iter().flatten();
    if ids.is_empty() {
        // `[{"jail": [...]}, ...]`
        for item in items {
            if let Some(m) = item.as_object() {
                out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    } else {
        for (ip, jails) in ids.iter().zip(items) {
            out.insert(ip.clone(), jails.clone());
        }
    }
    Value::Object(out)
}

fn get(key: &str, rest: &[String], reply: &Value) -> Value {
    const SERVER: [&str; 7] = [
        "loglevel",
        "logtarget",
        "syslogsocket",
        "dbfile",
        "dbpurgeage",
        "dbmaxmatches",
        "thread",
    ];
    if SERVER.contains(&key) {
        return json!({ key: reply });
    }
    let Some((opt, args)) = rest.split_first() else {
        return reply.clone();
    };
    let value = match (opt.as_str(), args) {
        ("banip", [with]) if with == "--with-time" => json!(reply
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| with_time(l.as_str()?))
            .collect::<Vec<_>>()),
        ("banned", ips) if !ips.is_empty() => {
            let flags: Vec<&Value> = match reply {
                Value::Array(v) => v.iter().collect(),
                one => vec![one],
            };
            let m: Map<String, Value> = ips
                .iter()
                .zip(flags)
                .map(|(ip, f)| (ip.clone(), json!(f.as_i64() == Some(1))))
                .collect();
            Value::Object(m)
        }
        ("action", [action, prop, ..]) => {
            return json!({"jail": key, "action": action, prop.as_str(): reply})
        }
        ("actionproperties" | "actionmethods", [action, ..]) => {
            return json!({"jail": key, "action": action, opt.as_str(): reply})
        }
        _ => reply.clone(),
    };
    json!({"jail": key, opt.as_str(): value})
}

/// `IP \tSTART + BANTIME = END`, Fail2ban's `--with-time` line.
fn with_time(line: &str) -> Option<Value> {
    let (ip, rest) = line.split_once(" \t")?;
    let (start, rest) = rest.split_once(" + ")?;
    let (bantime, end) = rest.split_once(" = ")?;
    Some(json!({
        "ip": ip,
        "banned_at": start,
        "bantime": bantime.parse::<i64>().ok()?,
        "ends": end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn status_becomes_named_fields() {
        let reply = json!([["Number of jail", 2], ["Jail list", "dovecot, postfix"]]);
        assert_eq!(
            shape(&cmd("status"), &reply),
            json!({"number_of_jails": 2, "jails": ["dovecot", "postfix"]})
        );
        let reply = json!([
            [
                "Filter",
                [
                    ["Currently failed", 1],
                    ["Total failed", 5],
                    ["File list", ["/var/log/mail.log"]]
                ]
            ],
            [
                "Actions",
                [
                    ["Currently banned", 1],
                    ["Total banned", 2],
                    ["Bans NOT enforced", "nftables: no permission"],
                    ["Banned IP list", ["192.0.2.7"]]
                ]
            ]
        ]);
        assert_eq!(
            shape(&cmd("status postfix"), &reply),
            json!({"jail": "postfix",
                "filter": {"currently_failed": 1, "total_failed": 5, "files": ["/var/log/mail.log"]},
                "actions": {"currently_banned": 1, "total_banned": 2,
                    "not_enforced": "nftables: no permission", "banned": ["192.0.2.7"], "enforced": false}})
        );
    }

    #[test]
    fn get_and_banned_name_what_they_hold() {
        assert_eq!(
            shape(&cmd("get postfix bantime"), &json!(1234)),
            json!({"jail": "postfix", "bantime": 1234})
        );
        assert_eq!(
            shape(&cmd("get loglevel"), &json!("DEBUG")),
            json!({"loglevel": "DEBUG"})
        );
        assert_eq!(
            shape(
                &cmd("get postfix banip --with-time"),
                &json!(["192.0.2.7 \t2026-11-27 05:08:16 + 3600 = 2026-11-27 06:08:16"])
            ),
            json!({"jail": "postfix", "banip": [{"ip": "192.0.2.7",
                "banned_at": "2026-11-27 05:08:16", "bantime": 3600, "ends": "2026-11-27 06:08:16"}]})
        );
        assert_eq!(
            shape(
                &cmd("get postfix banned 192.0.2.7 192.0.2.8"),
                &json!([1, 0])
            ),
            json!({"jail": "postfix", "banned": {"192.0.2.7": true, "192.0.2.8": false}})
        );
        assert_eq!(
            shape(
                &cmd("banned"),
                &json!([{"dovecot": []}, {"postfix": ["192.0.2.7"]}])
            ),
            json!({"dovecot": [], "postfix": ["192.0.2.7"]})
        );
        assert_eq!(
            shape(&cmd("banned 192.0.2.7"), &json!([["postfix"]])),
            json!({"192.0.2.7": ["postfix"]})
        );
        assert_eq!(
            shape(&cmd("set custom banip 192.0.2.7"), &json!(1)),
            json!(1)
        );
    }
}
