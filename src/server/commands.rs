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
//!
//! A `set` changes the jail and its running definition (`JailRt::def`), so
//! that `get` reads it back and a reload compares the configuration with
//! what runs. Options the filter uses rebuild the jail's filter
//! ([`Core::apply_def`], as a reload does).

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::core::{Core, JailId, JailRt, SourceInfo};
use super::launch;
use super::log::{time2str, Level};
use super::protocol::{ErrorKind, Reply};
use crate::action::StopMode;
use crate::config::{JailDef, UseDns};
use crate::jail::{BanId, IgnoreCommand};

/// What a command gives.
pub(crate) enum Answer {
    Value(Value),
    /// The value, once the signal fires (the actions are done).
    After(oneshot::Receiver<()>, Value),
    /// The result comes later (a reload reads the configuration off the core).
    Deferred(oneshot::Receiver<std::result::Result<Value, CmdError>>),
    /// `stop`: the reply goes out once the server has stopped.
    Stop,
}

/// Why a command failed; the client words each kind as fail2ban-client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CmdError {
    UnknownJail(String),
    /// A word is missing (Fail2ban's `IndexError`).
    Invalid,
    /// A command Fail2ban does not know (its plain `Exception`).
    Unknown(String),
    /// A bad value or a refused change (its `ValueError` and the like).
    Failed(String),
}

const UNKNOWN: &str = "Invalid command";

impl CmdError {
    pub fn reply(&self) -> Reply {
        match self {
            CmdError::UnknownJail(j) => Reply::error(ErrorKind::UnknownJail, j.clone()),
            CmdError::Invalid => Reply::error(ErrorKind::InvalidCommand, self.message()),
            CmdError::Unknown(m) | CmdError::Failed(m) => {
                Reply::error(ErrorKind::Failed, m.clone())
            }
        }
    }

    pub fn message(&self) -> String {
        match self {
            CmdError::UnknownJail(j) => j.clone(),
            CmdError::Invalid => "list index out of range".into(),
            CmdError::Unknown(m) | CmdError::Failed(m) => m.clone(),
        }
    }

    /// The exception Fail2ban's log shows (`UnknownJailException('x')`).
    pub fn python(&self) -> String {
        let repr = crate::util::py_repr(&Value::from(self.message()));
        let class = match self {
            CmdError::UnknownJail(_) => "UnknownJailException",
            CmdError::Invalid => "IndexError",
            CmdError::Unknown(_) => "Exception",
            CmdError::Failed(_) => "ValueError",
        };
        format!("{class}({repr})")
    }
}

type Result<T = Answer> = std::result::Result<T, CmdError>;

fn value(v: impl Into<Value>) -> Result {
    Ok(Answer::Value(v.into()))
}

/// A number as Fail2ban returns it: an int when whole.
pub(crate) fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Python's `int(text)`.
fn int<T: std::str::FromStr>(text: &str) -> Result<T> {
    text.trim().parse().map_err(|_| {
        CmdError::Failed(format!(
            "invalid literal for int() with base 10: {}",
            crate::util::py_repr(&Value::from(text))
        ))
    })
}

/// Fail2ban's `str2seconds`: `1h`, `2d 3h`, `600`.
fn seconds(text: &str) -> Result<f64> {
    crate::config::parse_time(text).map_err(|e| CmdError::Failed(e.to_string()))
}

/// Fail2ban's `_as_bool`.
fn as_bool(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

fn first(words: &[String]) -> Result<&str> {
    words.first().map(String::as_str).ok_or(CmdError::Invalid)
}

/// Reads addresses and networks; the first invalid one fails the command
/// before anything changes.
fn addresses(words: &[String]) -> Result<Vec<BanId>> {
    words
        .iter()
        .map(|w| BanId::parse_net(w).map_err(|e| CmdError::Failed(e.to_string())))
        .collect()
}

fn usedns_name(u: UseDns) -> &'static str {
    match u {
        UseDns::Yes => "yes",
        UseDns::Warn => "warn",
        UseDns::No => "no",
        UseDns::Raw => "raw",
    }
}

/// The jail options `set` takes.
const SET_OPTIONS: &[&str] = &[
    "idle",
    "ignoreself",
    "addignoreip",
    "delignoreip",
    "ignorecommand",
    "addlogpath",
    "dellogpath",
    "logencoding",
    "addjournalmatch",
    "deljournalmatch",
    "prefregex",
    "addfailregex",
    "delfailregex",
    "addignoreregex",
    "delignoreregex",
    "usedns",
    "findtime",
    "datepattern",
    "logtimezone",
    "maxmatches",
    "maxretry",
    "maxlines",
    "bantime",
    "attempt",
    "banip",
    "unbanip",
];

/// The jail options `get` takes (besides `bantime.*`).
const GET_OPTIONS: &[&str] = &[
    "banned",
    "logpath",
    "logencoding",
    "journalmatch",
    "ignoreself",
    "ignoreip",
    "ignorecommand",
    "ignorecache",
    "prefregex",
    "failregex",
    "ignoreregex",
    "usedns",
    "findtime",
    "datepattern",
    "logtimezone",
    "maxmatches",
    "maxretry",
    "maxlines",
    "bantime",
    "banip",
    "actions",
    "action",
    "actionproperties",
    "actionmethods",
];

/// What logban does not take from the command line: its jails and actions
/// come from the configuration.
fn not_here(what: &str) -> CmdError {
    CmdError::Failed(format!(
        "{what} is not supported by logban: change the configuration and run `reload`"
    ))
}

impl Core {
    pub(crate) fn dispatch(&mut self, cmd: &[String]) -> Result {
        let Some((head, args)) = cmd.split_first() else {
            return Err(CmdError::Invalid);
        };
        match (head.as_str(), args) {
            ("ping", _) => value("pong"),
            ("version", _) => value(crate::config::FAIL2BAN_VERSION),
            ("echo", words) => value(words.to_vec()),
            ("server-status", _) => value("Server ready"),
            ("stop", []) => Ok(Answer::Stop),
            ("stop", [all, ..]) if all == "--all" => self.stop_jails(self.jails.ids()),
            ("stop", [jail, ..]) => {
                let id = self.jail_id(jail)?;
                self.stop_jails(vec![id])
            }
            ("start", [jail, ..]) => self.start(jail),
            ("reload", words) => {
                let req = super::reload::Request::parse(words)?;
                let (tx, rx) = oneshot::channel();
                self.begin_reload(req, Some(tx))?;
                Ok(Answer::Deferred(rx))
            }
            ("flushlogs", _) => value(self.server.log.flush()),
            ("status", []) => self.status(),
            ("status", [jail]) => self.status_jail(jail, "basic"),
            ("status", [jail, flavor]) => self.status_jail(jail, flavor),
            ("status", _) => Err(CmdError::Unknown("Invalid command (no status)".into())),
            ("banned", ids) => self.banned(ids),
            ("unban", [all]) if all == "--all" => self.unban_all(),
            ("unban", ids) if !ids.is_empty() => self.unban_everywhere(ids),
            ("set", [key, rest @ ..]) => self.set(key, rest),
            ("get", [key, rest @ ..]) => self.get(key, rest),
            ("add" | "multi-set", _) => Err(not_here(head)),
            ("start" | "set" | "get", []) => Err(CmdError::Invalid),
            _ => Err(CmdError::Unknown(UNKNOWN.into())),
        }
    }

    pub(crate) fn jail(&self, name: &str) -> Result<&JailRt> {
        Ok(&self.jails[self.jail_id(name)?])
    }

    fn status(&self) -> Result {
        // Fail2ban lists the names sorted.
        let list: Vec<&str> = self.names.keys().map(String::as_str).collect();
        value(json!([
            ["Number of jail", self.jails.len()],
            ["Jail list", list.join(", ")]
        ]))
    }

    fn status_jail(&self, name: &str, flavor: &str) -> Result {
        let rt = self.jail(name)?;
        let st = rt.jail.status();
        let source = match &rt.source {
            SourceInfo::Files(files) => json!(["File list", files_of(files)]),
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
        if flavor != "short" {
            actions.push(json!(["Banned IP list", banned_list(rt)]));
        }
        if flavor == "cymru" {
            // Fail2ban without dnspython, which the Debian package lacks.
            for what in ["ASN", "Country", "RIR"] {
                actions.push(json!([format!("Banned {what} list"), ["error"]]));
            }
        }
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
                .map(|rt| json!({ rt.name.to_string(): banned_list(rt) }))
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

    /// `stop <jail>`, `stop --all`: the jails stop (everything they ban is
    /// unbanned); answered once their actions have stopped.
    fn stop_jails(&mut self, ids: Vec<JailId>) -> Result {
        let mut waits = Vec::new();
        for id in ids {
            let name = self.jails[id].name.clone();
            waits.extend(self.stop_jail(id, StopMode::Full));
            self.disable_in_store(&name);
        }
        Ok(Answer::After(all_done(waits), Value::Null))
    }

    /// `start <jail>`: a running jail leaves its idle state; a jail that is
    /// not running starts from the configuration (Fail2ban only knows jails
    /// it runs: `reload --if-exists <jail>` there).
    fn start(&mut self, name: &str) -> Result {
        if let Some(&id) = self.names.get(name) {
            self.resume(id);
            return value(Value::Null);
        }
        let mut req = super::reload::Request::jail(name);
        req.if_exists = true;
        req.must_start = true;
        let (tx, rx) = oneshot::channel();
        self.begin_reload(req, Some(tx))?;
        Ok(Answer::Deferred(rx))
    }

    /// `unban --all`: every ban of every jail, in the database too.
    fn unban_all(&mut self) -> Result {
        let mut count = 0;
        let mut waits = Vec::new();
        for id in self.jails.ids() {
            let (n, wait) = self.unban_jail(id);
            count += n;
            waits.push(wait);
        }
        Ok(Answer::After(all_done(waits), json!(count)))
    }

    /// Unbans everything a jail bans, in the database too.
    pub(crate) fn unban_jail(&mut self, id: JailId) -> (usize, oneshot::Receiver<()>) {
        let rt = &mut self.jails[id];
        let bans = rt.jail.unban_all();
        let name = rt.name.clone();
        for b in &bans {
            self.history.forget(&name, &b.id);
        }
        self.store.with(move |s| {
            if let Some(s) = s {
                if let Err(e) = s.remove_all_bans(&name) {
                    tracing::error!(target: "fail2ban.database", "{e}");
                }
            }
        });
        let n = bans.len();
        let (done, wait) = oneshot::channel();
        self.unbanned(id, bans, Some(done));
        (n, wait)
    }

    /// `unban IP...`: in every jail.
    fn unban_everywhere(&mut self, words: &[String]) -> Result {
        let ids = addresses(words)?;
        let mut count = 0;
        let mut waits = Vec::new();
        for id in self.jails.ids() {
            let (n, _absent, wait) = self.unban_ids(id, &ids, words);
            count += n;
            waits.push(wait);
        }
        Ok(Answer::After(all_done(waits), json!(count)))
    }

    fn set(&mut self, key: &str, args: &[String]) -> Result {
        match key {
            "loglevel" => {
                let level = first(args)?;
                let l = Level::parse(level).ok_or_else(|| {
                    CmdError::Failed(format!(
                        "Invalid log level {}",
                        crate::util::py_repr(&Value::from(level))
                    ))
                })?;
                self.server.log.set_level(l);
                self.server.loglevel = level.to_uppercase();
                value(self.server.loglevel.clone())
            }
            "logtarget" => {
                let target = first(args)?;
                let socket = self.server.syslogsocket.clone();
                self.server
                    .log
                    .set_target(target, &socket)
                    .map_err(|e| CmdError::Failed(format!("Failed to change log target: {e}")))?;
                value(self.server.log.target())
            }
            "syslogsocket" => {
                self.server.syslogsocket = first(args)?.to_string();
                value(self.server.syslogsocket.clone())
            }
            "allowipv6" => value(first(args)?),
            "dbfile" => {
                let want = first(args)?;
                let same = match &self.server.dbfile {
                    Some(f) => f == want,
                    None => want.eq_ignore_ascii_case("none"),
                };
                if same {
                    return value(self.server.dbfile.clone());
                }
                Err(CmdError::Failed(
                    "Cannot change database when there are jails present".into(),
                ))
            }
            "dbpurgeage" => {
                let age = seconds(first(args)?)?;
                if self.server.dbfile.is_none() {
                    return value(Value::Null);
                }
                self.server.dbpurgeage = age;
                self.store.with(move |s| {
                    if let Some(s) = s {
                        s.set_purge_age(age as i64);
                    }
                });
                value(number(age))
            }
            "dbmaxmatches" => {
                let n: usize = int(first(args)?)?;
                if self.server.dbfile.is_none() {
                    return value(Value::Null);
                }
                self.server.dbmaxmatches = n;
                self.store.with(move |s| {
                    if let Some(s) = s {
                        s.set_max_matches(n);
                    }
                });
                value(n)
            }
            "thread" => value(Value::Null),
            _ => {
                let opt = first(args)?;
                let values = &args[1..];
                if !SET_OPTIONS.contains(&opt) && !opt.starts_with("bantime.") {
                    if matches!(opt, "addaction" | "delaction" | "action" | "ignorecache") {
                        return Err(not_here(&format!("set <jail> {opt}")));
                    }
                    return Err(CmdError::Unknown(format!(
                        "Invalid command {} (no set action or not yet implemented)",
                        crate::util::py_repr(&Value::from(opt))
                    )));
                }
                let id = self.jail_id(key)?;
                self.set_jail(id, opt, values)
            }
        }
    }

    fn set_jail(&mut self, id: JailId, opt: &str, values: &[String]) -> Result {
        match opt {
            "banip" => return self.set_banip(id, values),
            "unbanip" => return self.set_unbanip(id, values),
            "attempt" => return self.set_attempt(id, values),
            _ => {}
        }
        let v = first(values)?;
        let rt = &mut self.jails[id];
        match opt {
            "idle" => match v {
                "on" => {
                    rt.idle.get_or_insert_with(Default::default);
                    value(true)
                }
                "off" => {
                    self.resume(id);
                    value(false)
                }
                _ => Err(CmdError::Unknown(
                    "Invalid idle option, must be 'on' or 'off'".into(),
                )),
            },
            "ignoreself" => {
                rt.def.ignoreself = as_bool(v);
                rt.jail.ignore_mut().ignoreself = rt.def.ignoreself;
                value(rt.def.ignoreself)
            }
            "addignoreip" => {
                for ip in values {
                    rt.jail
                        .ignore_mut()
                        .list
                        .add(ip)
                        .map_err(|e| CmdError::Failed(e.to_string()))?;
                    if !rt.def.ignoreip.contains(ip) {
                        rt.def.ignoreip.push(ip.clone());
                    }
                }
                value(ignoreip(rt))
            }
            "delignoreip" => {
                rt.jail.ignore_mut().list.remove(v);
                rt.def.ignoreip.retain(|i| i != v);
                value(ignoreip(rt))
            }
            "ignorecommand" => {
                rt.jail.ignore_mut().command = IgnoreCommand::new(v);
                rt.def.ignorecommand = (!v.trim().is_empty()).then(|| v.to_string());
                value(v)
            }
            "maxretry" => {
                let n: u32 = int(v)?;
                rt.jail.set_maxretry(n);
                rt.def.maxretry = n;
                value(n)
            }
            "maxmatches" => {
                let n: u32 = int(v)?;
                rt.jail.set_maxmatches(n as usize);
                rt.def.maxmatches = n;
                value(n)
            }
            "bantime" => {
                let t = seconds(v)?;
                rt.jail.set_bantime(t);
                rt.def.bantime = t;
                value(number(t))
            }
            "logencoding" => {
                rt.def.logencoding = v.to_string();
                value(launch::encoding(v))
            }
            _ if opt.starts_with("bantime.") => self.set_bantime_extra(id, &opt[8..], v),
            // What the filter or the sources use: a new definition, applied
            // as a reload applies it.
            _ => {
                let mut def = rt.def.clone();
                let answer = edit_def(&mut def, opt, values)?;
                let p = launch::prepare(def).map_err(CmdError::Failed)?;
                self.apply_def(id, p);
                let rt = &self.jails[id];
                value(answer(rt))
            }
        }
    }

    /// `set <jail> bantime.<opt>`.
    fn set_bantime_extra(&mut self, id: JailId, opt: &str, v: &str) -> Result {
        let rt = &mut self.jails[id];
        let fail = |e: String| CmdError::Failed(e);
        let inc = rt.jail.increment_mut();
        match opt {
            "increment" => inc.enabled = as_bool(v),
            "overalljails" => inc.overalljails = as_bool(v),
            "factor" => inc.set_factor(v).map_err(|e| fail(e.to_string()))?,
            "formula" => inc.set_formula(v).map_err(|e| fail(e.to_string()))?,
            "multipliers" => inc.set_multipliers(v).map_err(|e| fail(e.to_string()))?,
            "maxtime" => inc.maxtime = Some(seconds(v)?),
            "rndtime" => inc.rndtime = Some(seconds(v)?),
            _ => {
                return Err(CmdError::Unknown(format!(
                    "Invalid command 'bantime.{opt}' (no set action or not yet implemented)"
                )))
            }
        }
        let key = format!("bantime.{opt}");
        rt.def.options.insert(key, v.to_string());
        let b = &mut rt.def.bantime_increment;
        let i = rt.jail.settings().increment.clone();
        (b.enabled, b.overalljails, b.maxtime, b.rndtime) =
            (i.enabled, i.overalljails, i.maxtime, i.rndtime);
        if i.enabled {
            self.history.enable();
        }
        value(bantime_extra(&self.jails[id], opt))
    }

    fn get(&self, key: &str, args: &[String]) -> Result {
        let s = &self.server;
        match key {
            "loglevel" => value(s.loglevel.clone()),
            "logtarget" => value(s.log.target()),
            "syslogsocket" => value(s.syslogsocket.clone()),
            "dbfile" => value(s.dbfile.clone()),
            "dbpurgeage" => value(s.dbfile.as_ref().map(|_| number(s.dbpurgeage))),
            "dbmaxmatches" => value(s.dbfile.as_ref().map(|_| s.dbmaxmatches)),
            "thread" => value(json!({})),
            _ => {
                let opt = first(args)?;
                if !GET_OPTIONS.contains(&opt) && !opt.starts_with("bantime.") {
                    return Err(CmdError::Unknown(
                        "Invalid command (no get action or not yet implemented)".into(),
                    ));
                }
                let rt = self.jail(key)?;
                get_jail(rt, opt, &args[1..])
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
            Some(_) => (false, words),
            None => return Err(CmdError::Invalid),
        };
        let ids = addresses(words)?;
        let (count, absent, wait) = self.unban_ids(id, &ids, words);
        if report_absent && !absent.is_empty() {
            // As Fail2ban: the others are unbanned, the command fails.
            return Err(CmdError::Failed(format!(
                "not banned: {}",
                crate::util::py_repr(&json!(absent))
            )));
        }
        Ok(Answer::After(wait, json!(count)))
    }

    /// Unbans `ids` in a jail (a network: every ban inside it) and forgets
    /// them in the database. Returns how many were unbanned, the words that
    /// were not banned, and the signal that the actions are done.
    fn unban_ids(
        &mut self,
        id: JailId,
        ids: &[BanId],
        words: &[String],
    ) -> (usize, Vec<String>, oneshot::Receiver<()>) {
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
            forget.push(bid.clone());
            forget.extend(gone.iter().map(|b| b.id.clone()));
            unbanned.extend(gone);
        }
        forget.sort();
        forget.dedup();
        let name = rt.name.clone();
        for bid in &forget {
            self.history.forget(&name, bid);
        }
        let ips = forget.iter().map(BanId::to_string).collect();
        self.store.remove_bans(&name, ips);
        let count = unbanned.len();
        let (done, wait) = oneshot::channel();
        self.unbanned(id, unbanned, Some(done));
        (count, absent, wait)
    }

    /// `set <jail> attempt IP [MATCH...]`: failures counted now, without
    /// the ignore rules.
    fn set_attempt(&mut self, id: JailId, words: &[String]) -> Result {
        let (ip, matches) = words.split_first().ok_or(CmdError::Invalid)?;
        let bid = BanId::parse_net(ip).map_err(|e| CmdError::Failed(e.to_string()))?;
        let now = crate::util::now();
        tracing::info!(target: "fail2ban.filter",
            "[{}] Attempt {bid} - {}", self.jails[id].name, time2str(now));
        let outcome = self.jails[id]
            .jail
            .add_attempt(bid, matches, now, &self.history);
        let mut banned = Vec::new();
        if let Some(o) = outcome {
            self.ban_outcome(id, o, now, &mut banned);
        }
        let (done, wait) = oneshot::channel();
        self.commit_bans(id, banned, Some(done));
        Ok(Answer::After(wait, json!(1)))
    }
}

/// Fires once every signal has (a worker that went away counts as done).
fn all_done(waits: Vec<oneshot::Receiver<()>>) -> oneshot::Receiver<()> {
    let (done, wait) = oneshot::channel();
    tokio::spawn(async move {
        for w in waits {
            let _ = w.await;
        }
        let _ = done.send(());
    });
    wait
}

/// Current bans in the order made (`Banned IP list`, `get <jail> banned`).
fn banned_list(rt: &JailRt) -> Vec<String> {
    rt.jail.banned().map(|b| b.id.to_string()).collect()
}

/// The files a jail follows.
fn files_of(files: &[std::sync::Arc<std::path::Path>]) -> Vec<String> {
    files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// The files a jail reads: those it follows, and those its log paths
/// match that the sources have not reported yet (just added).
fn logpaths(rt: &JailRt) -> Vec<String> {
    let SourceInfo::Files(files) = &rt.source else {
        return Vec::new();
    };
    let mut out = files_of(files);
    for lp in &rt.def.logpath {
        for p in lp.expand() {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn ignoreip(rt: &JailRt) -> Vec<String> {
    rt.jail
        .settings()
        .ignore
        .list
        .entries()
        .map(String::from)
        .collect()
}

/// `get <jail> bantime.<opt>`: as set (Fail2ban keeps the text), the switch
/// as a boolean, times in seconds; None when not set.
fn bantime_extra(rt: &JailRt, opt: &str) -> Value {
    let inc = &rt.def.bantime_increment;
    let set = rt.def.options.get(&format!("bantime.{opt}"));
    match opt {
        "increment" => set.map_or(Value::Null, |_| json!(inc.enabled)),
        "overalljails" => set.map_or(Value::Null, |_| json!(inc.overalljails)),
        "maxtime" => inc.maxtime.map_or(Value::Null, number),
        "rndtime" => inc.rndtime.map_or(Value::Null, number),
        _ => set.map_or(Value::Null, |v| json!(v)),
    }
}

fn get_jail(rt: &JailRt, opt: &str, rest: &[String]) -> Result {
    let def = &rt.def;
    let filter = def.filter.as_ref();
    match opt {
        "banned" => {
            let is = |ip: &String| u8::from(rt.jail.is_banned(&BanId::parse(ip)));
            match rest {
                [] => value(banned_list(rt)),
                [one] => value(is(one)),
                many => value(many.iter().map(is).collect::<Vec<_>>()),
            }
        }
        "banip" => {
            let bans = rt.jail.banned_by_end();
            if rest.first().is_some_and(|w| w == "--with-time") {
                let list: Vec<String> = bans
                    .iter()
                    .map(|b| {
                        let end = b
                            .end()
                            .map_or_else(|| "9999-12-31 23:59:59".into(), time2str_s);
                        format!(
                            "{} \t{} + {} = {end}",
                            b.id,
                            time2str_s(b.time),
                            b.bantime as i64
                        )
                    })
                    .collect();
                return value(list);
            }
            value(bans.iter().map(|b| b.id.to_string()).collect::<Vec<_>>())
        }
        "logpath" => value(logpaths(rt)),
        "logencoding" => value(launch::encoding(&def.logencoding)),
        "journalmatch" => match &rt.source {
            SourceInfo::Journal(_) => value(filter.map_or(json!([]), |f| json!(f.journal_groups))),
            SourceInfo::Files(_) => value(json!([])),
        },
        "ignoreself" => value(def.ignoreself),
        "ignoreip" => value(ignoreip(rt)),
        "ignorecommand" => value(def.ignorecommand.clone().map_or(json!(false), Value::from)),
        "ignorecache" => value(def.ignorecache.as_ref().map(
            |c| json!({"key": c.key, "max-count": c.max_count, "max-time": number(c.max_time)}),
        )),
        "prefregex" => value(rt.show.prefregex.clone().unwrap_or_default()),
        "failregex" => value(rt.show.failregex.clone()),
        "ignoreregex" => value(rt.show.ignoreregex.clone()),
        "usedns" => value(filter.map_or("warn", |f| usedns_name(f.usedns))),
        "findtime" => value(number(rt.jail.settings().findtime)),
        "datepattern" => value(rt.show.datepattern.clone()),
        "logtimezone" => value(def.logtimezone.clone()),
        "maxmatches" => value(rt.jail.settings().maxmatches),
        "maxretry" => value(rt.jail.settings().maxretry),
        "maxlines" => value(filter.map_or(1, |f| f.maxlines.max(1))),
        "bantime" => value(number(rt.jail.settings().bantime)),
        "actions" => value(
            def.actions
                .iter()
                .map(|a| a.name.clone())
                .collect::<Vec<_>>(),
        ),
        "action" | "actionproperties" | "actionmethods" => {
            let name = first(rest)?;
            let action = def
                .actions
                .iter()
                .find(|a| a.name == name)
                // Fail2ban's KeyError, printed with its quotes.
                .ok_or_else(|| {
                    let msg = Value::from(format!("Invalid Action name: {name}"));
                    CmdError::Failed(crate::util::py_repr(&msg))
                })?;
            match opt {
                "action" => {
                    let prop = rest.get(1).ok_or(CmdError::Invalid)?;
                    action
                        .get(prop)
                        .map(Value::from)
                        .map(Answer::Value)
                        .ok_or_else(|| {
                            CmdError::Failed(format!(
                                "'CommandAction' object has no attribute {}",
                                crate::util::py_repr(&Value::from(prop.as_str()))
                            ))
                        })
                }
                "actionproperties" => {
                    let mut keys: Vec<&str> = action
                        .options
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .filter(|k| !k.contains('?') && !k.starts_with('_'))
                        .collect();
                    keys.sort_unstable();
                    keys.dedup();
                    value(keys)
                }
                _ => value(
                    [
                        "ban",
                        "consistencyCheck",
                        "flush",
                        "reban",
                        "reload",
                        "start",
                        "stop",
                        "unban",
                    ]
                    .to_vec(),
                ),
            }
        }
        _ => value(bantime_extra(rt, &opt["bantime.".len()..])),
    }
}

fn time2str_s(t: f64) -> String {
    // Fail2ban's `time2str`: seconds, no fraction.
    let s = time2str(t);
    s.split(',').next().unwrap_or(&s).to_string()
}

/// A reply built from the jail once a `set` is applied.
type Show = Box<dyn Fn(&JailRt) -> Value>;

/// Applies a `set` of a filter or source option to a copy of the jail's
/// definition; returns how to show the result.
fn edit_def(def: &mut JailDef, opt: &str, values: &[String]) -> Result<Show> {
    let v = first(values)?.to_string();
    let no_filter = || CmdError::Failed(format!("jail '{}' has no filter", def.name));
    let show_fail: Show = Box::new(|rt| json!(rt.show.failregex));
    let show_ignore: Show = Box::new(|rt| json!(rt.show.ignoreregex));
    let show_logpath: Show = Box::new(|rt| json!(logpaths(rt)));
    let is_journal = matches!(def.backend.kind, crate::config::BackendKind::Systemd);
    let show_journal: Show = Box::new(|rt| match &rt.source {
        SourceInfo::Journal(_) => json!(rt.def.filter.as_ref().map(|f| f.journal_groups.clone())),
        SourceInfo::Files(_) => json!([]),
    });
    match opt {
        // Fail2ban ignores what does not apply to the jail's backend.
        "addlogpath" | "dellogpath" if is_journal => return Ok(show_logpath),
        "addjournalmatch" | "deljournalmatch" if !is_journal => return Ok(show_journal),
        "addlogpath" => {
            let tail = match values.get(1).map(|s| s.to_ascii_lowercase()) {
                None => false,
                Some(t) if t == "tail" => true,
                Some(t) if t == "head" => false,
                Some(_) => {
                    return Err(CmdError::Failed(
                        "File option must be 'head' or 'tail'".into(),
                    ))
                }
            };
            if values.len() > 2 {
                return Err(CmdError::Failed(
                    "Only one file can be added at a time".into(),
                ));
            }
            let is_glob = v.contains(['*', '?', '[']);
            if !is_glob && !std::path::Path::new(&v).exists() {
                return Err(CmdError::Failed(format!(
                    "[Errno 2] No such file or directory: {}",
                    crate::util::py_repr(&Value::from(v.as_str()))
                )));
            }
            if !def.logpath.iter().any(|l| l.pattern == v) {
                def.logpath
                    .push(crate::config::LogPath { pattern: v, tail });
            }
            return Ok(show_logpath);
        }
        "dellogpath" => {
            def.logpath.retain(|l| l.pattern != v);
            return Ok(show_logpath);
        }
        "findtime" => {
            def.findtime = seconds(&v)?;
            return Ok(Box::new(|rt| number(rt.jail.settings().findtime)));
        }
        "logtimezone" => {
            def.logtimezone = (!v.is_empty()).then_some(v);
            return Ok(Box::new(|rt| json!(rt.def.logtimezone)));
        }
        _ => {}
    }
    let f = def.filter.as_mut().ok_or_else(no_filter)?;
    let index = |list: &Vec<String>| -> Result<Option<usize>> {
        let i: usize = int(&v)?;
        // Fail2ban logs a bad index and changes nothing.
        Ok((i < list.len()).then_some(i))
    };
    match opt {
        "prefregex" => {
            f.prefregex = (!v.is_empty()).then_some(v);
            Ok(Box::new(|rt| {
                json!(rt.show.prefregex.clone().unwrap_or_default())
            }))
        }
        "addfailregex" | "delfailregex" | "addignoreregex" | "delignoreregex" => {
            let (list, show) = if opt.ends_with("failregex") {
                (&mut f.failregex, show_fail)
            } else {
                (&mut f.ignoreregex, show_ignore)
            };
            if opt.starts_with("add") {
                list.push(v);
            } else if let Some(i) = index(list)? {
                list.remove(i);
            }
            Ok(show)
        }
        "usedns" => {
            f.usedns = UseDns::parse_or_no(&v);
            Ok(Box::new(|rt| {
                json!(rt
                    .def
                    .filter
                    .as_ref()
                    .map_or("no", |f| usedns_name(f.usedns)))
            }))
        }
        "datepattern" => {
            f.datepattern = (!v.is_empty()).then_some(v);
            Ok(Box::new(|rt| rt.show.datepattern.clone()))
        }
        "maxlines" => {
            f.maxlines = int(&v)?;
            Ok(Box::new(|rt| {
                json!(rt.def.filter.as_ref().map_or(1, |f| f.maxlines.max(1)))
            }))
        }
        "addjournalmatch" | "deljournalmatch" => {
            let group: Vec<String> = values.to_vec();
            if opt == "addjournalmatch" {
                f.journal_groups.push(group);
            } else {
                f.journal_groups.retain(|g| *g != group);
            }
            f.journalmatch = f.journal_groups.iter().map(|g| g.join(" ")).collect();
            Ok(show_journal)
        }
        _ => Err(CmdError::Unknown(UNKNOWN.into())),
    }
}
