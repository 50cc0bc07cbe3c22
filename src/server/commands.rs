//! The control commands, with the semantics of Fail2ban's transmitter: the
//! words `fail2ban-client` takes, the values its server returns.
//!
//! [`Core::dispatch`] splits on the first word; `set` and `get` then look
//! for a server setting (`loglevel`, `dbfile`, ...) before taking the word as
//! a jail name, as Fail2ban does, and dispatch on the jail option. Each
//! handler is a plain method that returns an [`Answer`] or a [`CmdError`];
//! to add a command, add its arm and its method. A handler whose reply must
//! wait until the actions carried the change out returns
//! [`Answer::After`] with the signal the action worker fires.

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::core::{Core, JailId, SourceInfo};
use super::log::Level;
use super::protocol::{ErrorKind, Reply};
use crate::jail::BanId;

/// What a command gives.
pub(crate) enum Answer {
    Value(Value),
    /// The value, once the signal fires (the actions are done).
    After(oneshot::Receiver<()>, Value),
    /// `stop`: the reply goes out once the server has stopped.
    Stop,
}

/// Why a command failed; the client words each kind as fail2ban-client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CmdError {
    UnknownJail(String),
    Invalid,
    Failed(String),
}

impl CmdError {
    pub fn reply(&self) -> Reply {
        match self {
            CmdError::UnknownJail(j) => Reply::error(ErrorKind::UnknownJail, j.clone()),
            CmdError::Invalid => Reply::error(ErrorKind::InvalidCommand, "Invalid command"),
            CmdError::Failed(m) => Reply::error(ErrorKind::Failed, m.clone()),
        }
    }

    /// The exception Fail2ban's log shows (`UnknownJailException('x')`).
    pub fn python(&self) -> String {
        let repr = |s: &str| crate::util::py_repr(&Value::from(s));
        match self {
            CmdError::UnknownJail(j) => format!("UnknownJailException({})", repr(j)),
            CmdError::Invalid => "Exception('Invalid command')".into(),
            CmdError::Failed(m) => format!("ValueError({})", repr(m)),
        }
    }
}

type Result<T = Answer> = std::result::Result<T, CmdError>;

fn value(v: impl Into<Value>) -> Result {
    Ok(Answer::Value(v.into()))
}

/// A number as Fail2ban returns it: an int when whole.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Reads addresses and networks; the first invalid one fails the command
/// before anything changes.
fn addresses(words: &[String]) -> Result<Vec<BanId>> {
    if words.is_empty() {
        return Err(CmdError::Invalid);
    }
    words
        .iter()
        .map(|w| BanId::parse_net(w).map_err(|e| CmdError::Failed(e.to_string())))
        .collect()
}

impl Core {
    pub(crate) fn dispatch(&mut self, cmd: &[String]) -> Result {
        let Some((head, args)) = cmd.split_first() else {
            return Err(CmdError::Invalid);
        };
        match (head.as_str(), args) {
            ("ping", _) => value("pong"),
            ("version", []) => value(crate::config::FAIL2BAN_VERSION),
            ("echo", words) => value(words.to_vec()),
            ("stop", []) => Ok(Answer::Stop),
            ("flushlogs", []) => value(self.server.log.flush()),
            ("status", []) => self.status(),
            ("status", [jail]) | ("status", [jail, _]) => self.status_jail(jail),
            ("banned", ids) => self.banned(ids),
            ("set", [key, rest @ ..]) => self.set(key, rest),
            ("get", [key, rest @ ..]) => self.get(key, rest),
            _ => Err(CmdError::Invalid),
        }
    }

    fn status(&self) -> Result {
        let list: Vec<&str> = self.names.keys().map(String::as_str).collect();
        value(json!([
            ["Number of jail", self.jails.len()],
            ["Jail list", list.join(", ")]
        ]))
    }

    fn status_jail(&self, name: &str) -> Result {
        let rt = &self.jails[self.jail_id(name)?];
        let st = rt.jail.status();
        let source = match &rt.source {
            SourceInfo::Files(files) => {
                let files: Vec<String> = files
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                json!(["File list", files])
            }
            SourceInfo::Journal(matches) => json!(["Journal matches", [matches]]),
        };
        let mut actions = vec![
            json!(["Currently banned", st.currently_banned]),
            json!(["Total banned", st.total_banned]),
        ];
        // Only when something is wrong, and before the list, so that the
        // `Banned IP list` line scripts grep for stays as it is.
        if let Some(reason) = rt.actions.not_enforced() {
            actions.push(json!(["Bans NOT enforced", reason]));
        }
        let banned: Vec<String> = rt.jail.banned().map(|b| b.id.to_string()).collect();
        actions.push(json!(["Banned IP list", banned]));
        value(json!([
            [
                "Filter",
                [
                    ["Currently failed", st.currently_failed],
                    ["Total failed", st.total_failed],
                    source
                ]
            ],
            ["Actions", actions]
        ]))
    }

    /// `banned`: per jail its banned list; `banned IP...`: for each address
    /// the jails that ban it.
    fn banned(&self, ids: &[String]) -> Result {
        if ids.is_empty() {
            let all: Vec<Value> = self
                .jails
                .iter()
                .map(|rt| {
                    let list: Vec<String> = rt.jail.banned().map(|b| b.id.to_string()).collect();
                    json!({ rt.name.to_string(): list })
                })
                .collect();
            return value(all);
        }
        let per_id: Vec<Value> = ids
            .iter()
            .map(|ip| {
                let id = BanId::parse(ip);
                let jails: Vec<&str> = self
                    .jails
                    .iter()
                    .filter(|rt| rt.jail.is_banned(&id))
                    .map(|rt| &*rt.name)
                    .collect();
                json!(jails)
            })
            .collect();
        value(per_id)
    }

    fn set(&mut self, key: &str, args: &[String]) -> Result {
        match (key, args) {
            ("loglevel", [level]) => {
                let l = Level::parse(level)
                    .ok_or_else(|| CmdError::Failed(format!("Invalid log level {level:?}")))?;
                self.server.log.set_level(l);
                self.server.loglevel = level.to_uppercase();
                value(self.server.loglevel.clone())
            }
            ("logtarget", [target]) => {
                let socket = self.server.syslogsocket.clone();
                self.server
                    .log
                    .set_target(target, &socket)
                    .map_err(|e| CmdError::Failed(format!("Failed to change log target: {e}")))?;
                value(self.server.log.target())
            }
            _ => {
                let id = self.jail_id(key)?;
                let Some((opt, values)) = args.split_first() else {
                    return Err(CmdError::Invalid);
                };
                match opt.as_str() {
                    "banip" => self.set_banip(id, values),
                    "unbanip" => self.set_unbanip(id, values),
                    _ => Err(CmdError::Invalid),
                }
            }
        }
    }

    fn get(&self, key: &str, args: &[String]) -> Result {
        let s = &self.server;
        match (key, args) {
            ("loglevel", []) => value(s.loglevel.clone()),
            ("logtarget", []) => value(s.log.target()),
            ("syslogsocket", []) => value(s.syslogsocket.clone()),
            ("dbfile", []) => value(s.dbfile.clone()),
            ("dbpurgeage", []) => value(s.dbfile.as_ref().map(|_| number(s.dbpurgeage))),
            ("dbmaxmatches", []) => value(s.dbfile.as_ref().map(|_| s.dbmaxmatches)),
            _ => {
                let rt = &self.jails[self.jail_id(key)?];
                let settings = rt.jail.settings();
                match args {
                    [opt, ids @ ..] if opt == "banned" => {
                        let banned: Vec<String> =
                            rt.jail.banned().map(|b| b.id.to_string()).collect();
                        let is = |ip: &String| u8::from(rt.jail.is_banned(&BanId::parse(ip)));
                        match ids {
                            [] => value(banned),
                            [one] => value(is(one)),
                            many => value(many.iter().map(is).collect::<Vec<_>>()),
                        }
                    }
                    [opt] => match opt.as_str() {
                        "bantime" => value(number(settings.bantime)),
                        "findtime" => value(number(settings.findtime)),
                        "maxretry" => value(settings.maxretry),
                        "maxmatches" => value(settings.maxmatches),
                        "banip" => value(
                            rt.jail
                                .banned_by_end()
                                .iter()
                                .map(|b| b.id.to_string())
                                .collect::<Vec<_>>(),
                        ),
                        "logpath" => match &rt.source {
                            SourceInfo::Files(f) => value(
                                f.iter()
                                    .map(|p| p.to_string_lossy().into_owned())
                                    .collect::<Vec<_>>(),
                            ),
                            SourceInfo::Journal(_) => value(Vec::<String>::new()),
                        },
                        _ => Err(CmdError::Invalid),
                    },
                    _ => Err(CmdError::Invalid),
                }
            }
        }
    }

    /// `set <jail> banip IP...`: bans now (no ignore rules), answers how many
    /// were not banned yet, once the actions have them.
    fn set_banip(&mut self, id: JailId, words: &[String]) -> Result {
        let ids = addresses(words)?;
        let now = crate::util::now();
        let mut banned = Vec::new();
        for bid in ids {
            let outcome = self.jails[id].jail.ban(bid, now, &self.history);
            self.ban_outcome(id, outcome, now, &mut banned);
        }
        let count = banned.len();
        let (done, wait) = oneshot::channel();
        self.commit_bans(id, banned, Some(done));
        Ok(Answer::After(wait, json!(count)))
    }

    /// `set <jail> unbanip [--report-absent] IP...`: a network unbans every
    /// ban inside it; answers how many were unbanned.
    fn set_unbanip(&mut self, id: JailId, words: &[String]) -> Result {
        let (report_absent, words) = match words.split_first() {
            Some((flag, rest)) if flag == "--report-absent" => (true, rest),
            _ => (false, words),
        };
        let ids = addresses(words)?;
        let rt = &mut self.jails[id];
        let mut unbanned = Vec::new();
        let mut absent = Vec::new();
        let mut forget = Vec::new();
        for (bid, word) in ids.iter().zip(words) {
            let gone = rt.jail.unban(bid);
            if gone.is_empty() {
                absent.push(word.clone());
            }
            // Fail2ban forgets the address in the database even when it is
            // not banned now.
            forget.push(bid.to_string());
            forget.extend(gone.iter().map(|b| b.id.to_string()));
            unbanned.extend(gone);
        }
        forget.sort();
        forget.dedup();
        let name = rt.name.clone();
        for ip in &forget {
            self.history.forget(&name, &BanId::parse(ip));
        }
        self.store.remove_bans(&name, forget);
        let count = unbanned.len();
        let (done, wait) = oneshot::channel();
        self.unbanned(id, unbanned, Some(done));
        if report_absent && !absent.is_empty() {
            // As Fail2ban: the others are unbanned, the command fails.
            return Err(CmdError::Failed(format!(
                "not banned: {}",
                crate::util::py_repr(&json!(absent))
            )));
        }
        Ok(Answer::After(wait, json!(count)))
    }
}
