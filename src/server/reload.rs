//! `reload` (and SIGHUP, and `start <jail>` for a jail that is not running):
//! the configuration is read again and checked completely off the core
//! (config files, every jail's settings and filter, the stored state of jails
//! to start); a broken tree is refused with the file named and nothing
//! changes. Then the core applies it at once:
//!
//! - a jail whose definition is unchanged keeps running as it is;
//! - a changed jail keeps its bans and counters and takes the new settings;
//!   its filter is rebuilt when filter options changed (its files keep being
//!   read where they are), its actions when they changed (native firewall
//!   state stays for actions that carry bans out the same way, see
//!   [`enforce::stop_mode_for`], so nothing is unbanned and banned again);
//! - a new jail starts with its bans restored from the store;
//! - a jail gone from the configuration (or disabled) stops;
//! - `--unban` unbans the jails first (in the store too), `--restart` stops
//!   them and starts them anew.
//!
//! Fail2ban's client reads the configuration and sends it as commands; here
//! the server reads its own (`-c`), which SIGHUP needs anyway.

use serde_json::Value;
use tokio::sync::oneshot;

use super::commands::CmdError;
use super::core::{Core, Event, History, JailId, Replier};
use super::enforce::{self, ActionWorker, Op};
use super::launch::{self, Plan, Prepared, Stored};
use super::log::Level;
use super::persist::StoreHandle;
use super::setup::Backend;
use crate::cli::Opts;
use crate::config::{JailDef, ServerDef};

/// What to reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Request {
    /// None: every jail (`--all`).
    pub target: Option<String>,
    pub unban: bool,
    pub restart: bool,
    /// A named jail that is not running is started (when the configuration
    /// enables it) instead of refused.
    pub if_exists: bool,
    /// `start <jail>`: fail when the configuration does not enable it.
    pub must_start: bool,
}

impl Request {
    pub fn all() -> Request {
        Request::default()
    }

    pub fn jail(name: &str) -> Request {
        Request {
            target: Some(name.to_string()),
            ..Request::default()
        }
    }

    /// `reload [--restart] [--unban] [--if-exists] [--all | JAIL]`.
    pub fn parse(words: &[String]) -> Result<Request, CmdError> {
        let mut r = Request::default();
        let mut rest = Vec::new();
        for w in words {
            match w.as_str() {
                "--restart" => r.restart = true,
                "--unban" => r.unban = true,
                "--if-exists" => r.if_exists = true,
                _ => rest.push(w.clone()),
            }
        }
        match rest.as_slice() {
            [] => {}
            [all] if all == "--all" => {}
            [jail] => r.target = Some(jail.clone()),
            more => {
                return Err(CmdError::Failed(format!(
                    "Unexpected argument(s) for reload: {}",
                    crate::util::py_repr(&Value::from(more.to_vec()))
                )))
            }
        }
        Ok(r)
    }

    fn covers(&self, name: &str) -> bool {
        self.target.as_deref().map_or(true, |t| t == name)
    }
}

/// A jail of the new configuration.
pub(crate) enum Change {
    /// Running: keeps its state, takes the definition (if it differs).
    Update(Box<Prepared>),
    /// Starts (new, or restarted).
    Start(Box<Plan>),
}

/// The new configuration, checked, ready to apply.
pub(crate) struct Built {
    req: Request,
    server: ServerDef,
    changes: Vec<Change>,
    /// Running jails the configuration no longer has (or disables).
    gone: Vec<String>,
    /// Ban counts for `bantime.increment`, when the running server had none.
    history: Option<History>,
}

/// What the reader needs from the core.
struct Snapshot {
    conf: Option<String>,
    opts: Opts,
    running: Vec<(String, JailDef)>,
    history_enabled: bool,
    store: StoreHandle,
}

impl Core {
    /// Starts reading the configuration off the core; the result comes back
    /// as [`Event::Reloaded`]. `reply` gets the command's answer.
    pub(crate) fn begin_reload(
        &mut self,
        req: Request,
        reply: Option<Replier>,
    ) -> Result<(), CmdError> {
        if self.reloading {
            return Err(CmdError::Failed("Reload already in progress".into()));
        }
        if self.sources.is_none() {
            return Err(CmdError::Failed("the server is stopping".into()));
        }
        if let Some(t) = &req.target {
            if !req.if_exists && !self.names.contains_key(t) {
                return Err(CmdError::UnknownJail(t.clone()));
            }
        }
        self.reloading = true;
        tracing::info!(target: "fail2ban.server", "Reload {}", match &req.target {
            Some(j) => format!("jail {j}"),
            None => "all jails".into(),
        });
        let snap = Snapshot {
            conf: self.server.conf.clone(),
            opts: self.server.opts.clone(),
            running: self
                .jails
                .iter()
                .map(|rt| (rt.name.to_string(), rt.def.clone()))
                .collect(),
            history_enabled: self.jails.iter().any(|rt| rt.def.bantime_increment.enabled),
            store: self.store.clone(),
        };
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let built = build(snap, req).map(Box::new);
            let _ = events.send(Event::Reloaded { built, reply });
        });
        Ok(())
    }

    /// Applies a reload read by [`build`] and answers it once the actions
    /// have carried the changes out.
    pub(crate) fn end_reload(
        &mut self,
        built: Result<Box<Built>, CmdError>,
        reply: Option<Replier>,
    ) {
        self.reloading = false;
        let answer = match built {
            Err(e) => {
                tracing::error!(target: "fail2ban.server",
                    "Reload refused, the running configuration is kept: {}", e.message());
                Err(e)
            }
            Ok(_) if self.sources.is_none() => {
                Err(CmdError::Failed("the server is stopping".into()))
            }
            Ok(b) => Ok(self.apply(*b)),
        };
        tokio::spawn(async move {
            let r = match answer {
                Ok(waits) => {
                    for w in waits {
                        let _ = w.await;
                    }
                    tracing::info!(target: "fail2ban.server", "Reload finished.");
                    Ok(Value::from("OK"))
                }
                Err(e) => Err(e),
            };
            if let Some(reply) = reply {
                let _ = reply.send(r);
            }
        });
    }

    fn apply(&mut self, b: Built) -> Vec<oneshot::Receiver<()>> {
        let mut waits = Vec::new();
        self.apply_server(&b.server);
        if let Some(h) = b.history {
            self.history = h;
        }
        let targets: Vec<JailId> = self
            .names
            .iter()
            .filter(|(n, _)| b.req.covers(n))
            .map(|(_, id)| *id)
            .collect();
        if b.req.unban {
            for &id in &targets {
                waits.push(self.unban_jail(id).1);
            }
        }
        for name in &b.gone {
            if let Some(id) = self.names.get(name).copied() {
                waits.extend(self.stop_jail(id, crate::action::StopMode::Full));
                self.disable_in_store(name);
            }
        }
        let now = crate::util::now();
        for change in b.changes {
            match change {
                Change::Update(p) => {
                    let Some(id) = self.names.get(&p.def.name).copied() else {
                        continue;
                    };
                    tracing::info!(target: "fail2ban.server", "Reload jail '{}'", p.def.name);
                    launch::log_settings(&p.def);
                    waits.extend(self.apply_def(id, *p));
                    tracing::info!(target: "fail2ban.server", "Jail '{}' reloaded", self.jails[id].name);
                }
                Change::Start(plan) => {
                    // A restarted jail stops first; its successor's actions
                    // wait for that (same firewall objects).
                    let after = self
                        .names
                        .get(&plan.def.name)
                        .copied()
                        .and_then(|id| self.stop_jail(id, crate::action::StopMode::Full));
                    waits.push(self.start_plan(*plan, now, after));
                }
            }
        }
        if let Some(s) = self.sources.as_mut() {
            s.watch();
        }
        waits
    }

    /// Starts a jail from its plan.
    fn start_plan(
        &mut self,
        plan: Plan,
        now: f64,
        after: Option<oneshot::Receiver<()>>,
    ) -> oneshot::Receiver<()> {
        let sources = self.sources.as_mut().expect("running");
        let id = self.jails.next_id();
        let (rt, started) = launch::start_jail(id, plan, sources, now, after);
        self.names.insert(rt.name.to_string(), self.jails.push(rt));
        started
    }

    /// The server settings a reload changes (the command line's still win).
    fn apply_server(&mut self, s: &ServerDef) {
        let st = &mut self.server;
        if let Some(l) = Level::parse(&s.loglevel) {
            if !s.loglevel.eq_ignore_ascii_case(&st.loglevel) {
                st.log.set_level(l);
                st.loglevel = s.loglevel.to_uppercase();
            }
        }
        st.syslogsocket = s.syslogsocket.clone();
        if s.logtarget != st.log.target() {
            if let Err(e) = st.log.set_target(&s.logtarget, &s.syslogsocket) {
                tracing::error!(target: "fail2ban.server", "Failed to change log target: {e}");
            }
        }
        if s.dbfile != st.server.dbfile {
            tracing::warn!(target: "fail2ban.server",
                "dbfile {:?}: the database is changed by a restart, not by a reload", s.dbfile);
        }
        if st.dbfile.is_some() {
            st.dbpurgeage = s.dbpurgeage;
            st.dbmaxmatches = s
                .dbmaxmatches
                .map_or(crate::store::DEFAULT_MAX_MATCHES, |n| n as usize);
            let (age, max) = (st.dbpurgeage as i64, st.dbmaxmatches);
            self.store.with(move |s| {
                if let Some(s) = s {
                    s.set_purge_age(age);
                    s.set_max_matches(max);
                }
            });
        }
    }

    /// A running jail takes a new definition (a reload, or a `set` of a
    /// filter or source option): its settings, then what changed of its
    /// filter, sources and actions. Bans, failures and counters stay.
    /// Returns the signal that new actions have started, if they changed.
    pub(crate) fn apply_def(&mut self, id: JailId, p: Prepared) -> Option<oneshot::Receiver<()>> {
        let rt = &mut self.jails[id];
        let old = std::mem::replace(&mut rt.def, p.def);
        let new = &rt.def;
        apply_settings(&mut rt.jail, p.settings);
        rt.show = p.show;
        let filter_changed = old.filter != new.filter
            || old.logtimezone != new.logtimezone
            || old.findtime != new.findtime;
        let paths_changed = old.logpath != new.logpath;
        let journal = matches!(p.backend, Backend::Journal);
        let backend_changed = old.backend != new.backend;
        let actions_changed = old.actions != new.actions;
        if backend_changed || (journal && filter_changed) {
            self.restart_sources(id, &p.backend, p.filter);
        } else if !journal && (filter_changed || paths_changed) {
            self.update_files(id, p.filter, filter_changed);
        }
        if !actions_changed {
            return None;
        }
        Some(self.replace_actions(id))
    }

    /// The jail's files follow its new definition (see
    /// [`Sources::update_files`](super::ingest::Sources::update_files)).
    fn update_files(
        &mut self,
        id: JailId,
        filter: Option<crate::filter::Filter>,
        filter_changed: bool,
    ) {
        let now = crate::util::now();
        let rt = &mut self.jails[id];
        let stored = launch::positions_seen(rt.positions.values());
        let def = &rt.def;
        let logpaths: Vec<(String, bool)> = def
            .logpath
            .iter()
            .map(|l| (l.pattern.clone(), l.tail))
            .collect();
        let Some(sources) = self.sources.as_mut() else {
            return;
        };
        match launch::file_jail(id, def, filter, &stored) {
            Some(fj) => {
                sources.update_files(&fj, &logpaths, filter_changed, || launch::seek(def, now))
            }
            // No filter any more: nothing is read.
            None => {
                if let Some(stop) = sources.remove_jail(id) {
                    tokio::task::spawn_blocking(stop);
                }
            }
        }
        // Files no listed path matches any more leave the list (each glob
        // read once, not once per file).
        if let super::core::SourceInfo::Files(files) = &mut rt.source {
            let listed: Vec<String> = def
                .logpath
                .iter()
                .flat_map(|l| std::iter::once(l.pattern.clone()).chain(l.expand()))
                .collect();
            files.retain(|f| {
                let f = f.to_string_lossy();
                listed.iter().any(|p| *p == *f)
            });
        }
        sources.watch();
    }

    /// The jail's sources stop and start again (another backend, another
    /// journal filter), resuming where they had got to.
    fn restart_sources(
        &mut self,
        id: JailId,
        backend: &Backend,
        filter: Option<crate::filter::Filter>,
    ) {
        let now = crate::util::now();
        let Some(sources) = self.sources.as_mut() else {
            return;
        };
        if let Some(stop) = sources.remove_jail(id) {
            tokio::task::spawn_blocking(stop);
        }
        let rt = &mut self.jails[id];
        let stored = launch::positions_seen(rt.positions.values());
        rt.source = launch::start_sources(id, &rt.def, backend, filter, &stored, sources, now);
        sources.watch();
    }

    /// New actions take over from the old ones, which stop once the bans
    /// already on their way to them are carried out.
    fn replace_actions(&mut self, id: JailId) -> oneshot::Receiver<()> {
        let rt = &mut self.jails[id];
        let (retired, after) = oneshot::channel();
        let new = ActionWorker::start(&rt.name, &rt.def.actions, Some(after));
        let mode = enforce::stop_mode_for(&rt.actions.kinds(), &new.kinds());
        let old = std::mem::replace(&mut rt.actions, new).sender();
        rt.merged = enforce::uses_merged(&rt.def.actions);
        let active: Vec<_> = rt.jail.banned().map(|b| enforce::ticket(b, None)).collect();
        let old_active = active.clone();
        // Through the store's queue: bans still waiting for their commit go
        // to the old actions first (the new ones start with them anyway).
        self.store
            .run(move || old.send(Op::Stop(old_active, mode), Some(retired)));
        let (done, started) = oneshot::channel();
        rt.actions.sender().send(Op::Start(active), Some(done));
        started
    }
}

/// A jail's settings replaced by those of its new definition.
fn apply_settings(jail: &mut crate::jail::Jail, s: crate::jail::JailSettings) {
    jail.set_maxretry(s.maxretry);
    jail.set_findtime(s.findtime);
    jail.set_maxmatches(s.maxmatches);
    if jail.settings().bantime != s.bantime {
        jail.set_bantime(s.bantime);
    }
    jail.set_max_failures(s.max_failures);
    *jail.increment_mut() = s.increment;
    *jail.ignore_mut() = s.ignore;
}

/// Reads and checks the configuration (on a blocking thread).
fn build(snap: Snapshot, req: Request) -> Result<Built, CmdError> {
    let refuse = CmdError::Failed;
    let tree = super::config_tree(snap.conf.as_deref()).map_err(refuse)?;
    let server = super::server_settings(&tree, &snap.opts).map_err(refuse)?;
    let jails = tree.jail_results().map_err(|e| refuse(e.to_string()))?;
    let running = |name: &str| snap.running.iter().find(|(n, _)| n == name);
    let mut changes = Vec::new();
    let mut starts = Vec::new();
    let mut listed = Vec::new();
    for (name, def) in jails {
        if !req.covers(&name) {
            continue;
        }
        listed.push(name.clone());
        let def = def.map_err(|e| refuse(e.to_string()))?;
        let in_jail = def
            .options
            .keys()
            .any(|k| FILTER_KEYS.contains(&k.as_str()));
        let p = launch::prepare(def).map_err(|e| refuse(filter_file(&tree, in_jail, e)))?;
        match running(&name) {
            Some(_) if !req.restart => changes.push(Change::Update(Box::new(p))),
            _ => starts.push(p),
        }
    }
    if req.must_start {
        if let Some(t) = req.target.as_ref().filter(|t| !listed.contains(t)) {
            return Err(CmdError::UnknownJail(t.clone()));
        }
    }
    let gone = snap
        .running
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| req.covers(n) && !listed.contains(n))
        .collect();
    let history = {
        let updated = changes.iter().filter_map(|c| match c {
            Change::Update(p) => Some(&p.def),
            Change::Start(_) => None,
        });
        let defs: Vec<&JailDef> = starts.iter().map(|p| &p.def).chain(updated).collect();
        (!snap.history_enabled && defs.iter().any(|d| d.bantime_increment.enabled))
            .then(|| launch::load_history(&server, &defs))
    };
    // Jails to start get their stored state from the store thread (after
    // what it has queued, so bans and positions written before are read).
    let now = crate::util::now();
    let keep_bans = !req.unban;
    let (tx, rx) = std::sync::mpsc::channel();
    snap.store.with(move |mut store| {
        let read: Result<Vec<(Prepared, Stored)>, String> = starts
            .into_iter()
            .map(|p| {
                let stored = match store.as_deref_mut() {
                    Some(s) => launch::read_stored(s, &p, now, keep_bans)?,
                    None => Stored::default(),
                };
                Ok((p, stored))
            })
            .collect();
        let _ = tx.send(read);
    });
    let read = rx
        .recv()
        .map_err(|_| refuse("the store has stopped".into()))?
        .map_err(refuse)?;
    for (p, stored) in read {
        changes.push(Change::Start(Box::new(launch::finish(p, stored, now))));
    }
    Ok(Built {
        req,
        server,
        changes,
        gone,
        history,
    })
}

/// Filter options a jail may set itself.
const FILTER_KEYS: [&str; 5] = [
    "failregex",
    "ignoreregex",
    "prefregex",
    "datepattern",
    "maxlines",
];

/// A filter error with the files the filter comes from: the jail's files
/// when the jail sets filter options itself (`in_jail`), else the filter's.
fn filter_file(tree: &crate::config::ConfigTree, in_jail: bool, e: String) -> String {
    let base = tree.basedir();
    if in_jail {
        return format!("{base}/jail.conf (jail.local, jail.d/) or its filter: {e}");
    }
    match e
        .split_once("filter '")
        .and_then(|(_, rest)| rest.split_once('\''))
    {
        Some((name, _)) => {
            let name = name.split('[').next().unwrap_or(name);
            let conf = format!("{base}/filter.d/{name}.conf");
            let local = format!("{base}/filter.d/{name}.local");
            let file = if std::path::Path::new(&local).exists() {
                format!("{conf} (and {local})")
            } else {
                conf
            };
            format!("{file}: {e}")
        }
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reload_options_parse_like_fail2ban_client() {
        assert_eq!(Request::parse(&[]).unwrap(), Request::all());
        assert_eq!(Request::parse(&words("--all")).unwrap(), Request::all());
        let r = Request::parse(&words("--unban --restart postfix")).unwrap();
        assert_eq!(r.target.as_deref(), Some("postfix"));
        assert!(r.unban && r.restart && !r.if_exists);
        assert!(r.covers("postfix") && !r.covers("dovecot"));
        let e = Request::parse(&words("a b")).unwrap_err();
        assert_eq!(e.message(), "Unexpected argument(s) for reload: ['a', 'b']");
    }
}
