//! The core task: owns every [`Jail`] and the per-jail runtime data, takes
//! the failures the ingest threads found, the control commands, the
//! `ignorecommand` verdicts and its own timer (expiry, maintenance), and
//! decides. It never blocks: SQLite work goes to the store thread, firewall
//! work to the jails' action workers, commands and configuration reading
//! to a blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::commands::{Answer, CmdError};
use super::enforce::{ticket, ActionWorker, Op};
use super::ingest::Sources;
use super::launch::FilterShow;
use super::log::{seconds2str, time2str, Log};
use super::persist::{Position, StoreHandle};
use super::protocol::Reply;
use super::reload::Built;
use crate::action::StopMode;
use crate::cli::Opts;
use crate::config::{JailDef, ServerDef};
use crate::filter::Failure;
use crate::jail::{
    Ban, BanHistory, BanId, BanOutcome, Counted, IgnoreCheck, IgnoreCommandCall, IgnoredBy, Jail,
    Outcome, PastBan, IGNORE_COMMAND_TIMEOUT,
};
use crate::notice;
use crate::store::BanRecord;

/// A jail's slot in the core. A stopped jail's slot stays empty (messages
/// still on their way for it are dropped); a jail started again gets a new one.
pub(crate) type JailId = usize;

/// What the ingest threads send.
pub(crate) enum Ingested {
    /// Failures found in lines of one source of a jail, in order, and the
    /// position to store once they are counted.
    Lines {
        jail: JailId,
        failures: Vec<Failure>,
        position: Option<Position>,
    },
    /// A file is followed for a jail now (`File list`).
    FileAdded { jail: JailId, path: Arc<Path> },
}

/// Everything else the core reacts to.
pub(crate) enum Event {
    Command {
        words: Vec<String>,
        reply: oneshot::Sender<Reply>,
    },
    Verdict {
        jail: JailId,
        call: IgnoreCommandCall,
        failure: Box<Failure>,
        /// Ok(true): ignore; an error counts the failure.
        result: Result<bool, String>,
    },
    /// SIGTERM/SIGINT, as `stop`.
    Stop,
    /// SIGUSR1: reopen the log file.
    FlushLogs,
    /// SIGHUP, as `reload`.
    Reload,
    /// A reload's new configuration, read and checked off the core.
    Reloaded {
        built: Result<Box<Built>, CmdError>,
        reply: Option<Replier>,
    },
    /// The log sources have stopped (during shutdown).
    SourcesStopped,
}

/// Where the answer of a command that completes later goes.
pub(crate) type Replier = oneshot::Sender<Result<Value, CmdError>>;

/// Where a jail's lines come from, for `status <jail>`.
pub(crate) enum SourceInfo {
    Files(Vec<Arc<Path>>),
    /// `Journal matches`: the match groups as Fail2ban prints them.
    Journal(String),
}

/// One jail with what the server keeps beside it.
pub(crate) struct JailRt {
    pub name: Arc<str>,
    pub jail: Jail,
    pub source: SourceInfo,
    pub actions: ActionWorker,
    /// The actions use the merged bans of an address (`<ipmatches>`...).
    pub merged: bool,
    pub one_source: OneSource,
    /// The definition it runs with: the configuration's, with the changes
    /// `set` made since (a reload compares the configuration with it).
    pub def: JailDef,
    pub show: FilterShow,
    /// `set <jail> idle on`: what the jail's sources read meanwhile.
    pub idle: Option<Paused>,
    /// The last position of each source the core saw (where rebuilt
    /// sources resume).
    pub positions: HashMap<String, Position>,
}

/// A jail set idle: Fail2ban stops reading its logs and reads what was
/// written meanwhile when it resumes. Here one reader serves every jail of
/// a file, so the jail's failures are read and wait, up to the
/// failure-table cap; the positions after them (the jail's last ones) are
/// stored only once they are counted.
#[derive(Default)]
pub(crate) struct Paused {
    failures: Vec<Failure>,
    dropped: u64,
}

impl Paused {
    fn hold(&mut self, jail: &str, failures: Vec<Failure>, cap: usize) {
        let room = cap.saturating_sub(self.failures.len());
        let over = failures.len().saturating_sub(room);
        if over > 0 && self.dropped == 0 {
            tracing::warn!(
                "[{jail}] Idle: more than {cap} failures waiting; later ones are dropped until the jail resumes"
            );
        }
        self.dropped += over as u64;
        self.failures.extend(failures.into_iter().take(room));
    }
}

/// The jails by slot, in the order they were started.
#[derive(Default)]
pub(crate) struct Jails(Vec<Option<JailRt>>);

impl Jails {
    pub fn get(&self, id: JailId) -> Option<&JailRt> {
        self.0.get(id)?.as_ref()
    }

    pub fn get_mut(&mut self, id: JailId) -> Option<&mut JailRt> {
        self.0.get_mut(id)?.as_mut()
    }

    /// The slot the next jail gets.
    pub fn next_id(&self) -> JailId {
        self.0.len()
    }

    pub fn push(&mut self, rt: JailRt) -> JailId {
        self.0.push(Some(rt));
        self.0.len() - 1
    }

    pub fn take(&mut self, id: JailId) -> Option<JailRt> {
        self.0.get_mut(id)?.take()
    }

    pub fn iter(&self) -> impl Iterator<Item = &JailRt> {
        self.0.iter().flatten()
    }

    pub fn ids(&self) -> Vec<JailId> {
        (0..self.0.len()).filter(|i| self.0[*i].is_some()).collect()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }
}

impl std::ops::Index<JailId> for Jails {
    type Output = JailRt;
    fn index(&self, id: JailId) -> &JailRt {
        self.get(id).expect("a live jail")
    }
}

impl std::ops::IndexMut<JailId> for Jails {
    fn index_mut(&mut self, id: JailId) -> &mut JailRt {
        self.get_mut(id).expect("a live jail")
    }
}

/// Notices one address producing most of a jail's failures: behind a proxy
/// or a rootless container's port forwarder every client shows up as it,
/// and banning it locks everyone out. A majority vote (Boyer-Moore) over a
/// window of failures, in constant memory whatever the number of addresses.
#[derive(Default)]
pub(crate) struct OneSource {
    total: u32,
    candidate: Option<BanId>,
    votes: u32,
    /// Failures of the candidate since it became one (a lower bound).
    seen: u32,
    next_warning: f64,
}

/// A window ends after this many failures ...
const ONE_SOURCE_WINDOW: u32 = 100;
/// ... of which more than this share from one address is "most".
const ONE_SOURCE_SHARE: f64 = 0.8;
/// At most one warning per jail per hour.
const ONE_SOURCE_QUIET: f64 = 3600.0;

impl OneSource {
    /// Counts a failure of `id`; at the end of a window, returns the address
    /// that produced most of it, unless a warning went out recently.
    fn note(&mut self, id: &BanId, now: f64) -> Option<(BanId, u32, u32)> {
        self.total += 1;
        match &self.candidate {
            Some(c) if c == id => {
                self.votes += 1;
                self.seen += 1;
            }
            _ if self.votes == 0 => {
                self.candidate = Some(id.clone());
                self.votes = 1;
                self.seen = 1;
            }
            _ => self.votes -= 1,
        }
        if self.total < ONE_SOURCE_WINDOW {
            return None;
        }
        let (total, seen) = (self.total, self.seen);
        let candidate = self.candidate.take();
        (self.total, self.votes, self.seen) = (0, 0, 0);
        if f64::from(seen) <= f64::from(total) * ONE_SOURCE_SHARE || now < self.next_warning {
            return None;
        }
        self.next_warning = now + ONE_SOURCE_QUIET;
        candidate.map(|c| (c, seen, total))
    }
}

/// Ban counts from the store (`bips`) and from bans made since, for
/// `bantime.increment` (kept only when some jail uses it).
#[derive(Default)]
pub(crate) struct History {
    enabled: bool,
    map: HashMap<BanId, Vec<(Arc<str>, PastBan)>>,
}

impl History {
    pub fn new(enabled: bool) -> History {
        History {
            enabled,
            map: HashMap::new(),
        }
    }

    /// Counts bans from now on (`set <jail> bantime.increment true` when no
    /// jail used it at start).
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    pub fn record(&mut self, jail: &Arc<str>, id: &BanId, past: PastBan) {
        if !self.enabled {
            return;
        }
        let v = self.map.entry(id.clone()).or_default();
        match v.iter_mut().find(|(j, _)| j == jail) {
            Some((_, p)) => *p = past,
            None => v.push((jail.clone(), past)),
        }
    }

    pub fn forget(&mut self, jail: &str, id: &BanId) {
        if let Some(v) = self.map.get_mut(id) {
            v.retain(|(j, _)| &**j != jail);
            if v.is_empty() {
                self.map.remove(id);
            }
        }
    }
}

impl BanHistory for History {
    fn previous_ban(&self, jail: &str, id: &BanId, all_jails: bool) -> Option<PastBan> {
        let v = self.map.get(id)?;
        if !all_jails {
            return v.iter().find(|(j, _)| &**j == jail).map(|(_, p)| *p);
        }
        v.iter().map(|(_, p)| *p).reduce(|a, b| PastBan {
            count: a.count.saturating_add(b.count),
            time: a.time.max(b.time),
        })
    }
}

/// Server settings `get`/`set` read and change.
pub(crate) struct ServerState {
    pub log: Log,
    /// `loglevel` as set (Fail2ban answers with the name given).
    pub loglevel: String,
    pub syslogsocket: String,
    /// None when the database is off.
    pub dbfile: Option<String>,
    pub dbpurgeage: f64,
    pub dbmaxmatches: usize,
    /// Where the configuration was read (`-c`), read again by `reload`.
    pub conf: Option<String>,
    /// The command line the server started with (its overrides still hold
    /// after a reload).
    pub opts: Opts,
    /// The server settings read at start.
    pub server: ServerDef,
}

/// At most this many `ignorecommand` runs at once.
const COMMAND_SLOTS: usize = 8;
/// At most about this many failures wait for an `ignorecommand` verdict:
/// beyond, the core takes no more lines until verdicts come back (the log
/// files wait, nothing is lost), so a flood cannot queue without bound.
const MAX_ASKING: usize = 256;
/// Fail2ban's idle service period for the failure tables.
const MAINTAIN_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Core {
    pub(crate) jails: Jails,
    pub(crate) names: BTreeMap<String, JailId>,
    pub(crate) history: History,
    pub(crate) store: StoreHandle,
    pub(crate) server: ServerState,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    command_slots: Arc<Semaphore>,
    /// None once the server is stopping.
    pub(crate) sources: Option<Sources>,
    /// A reload is being read; another waits for it.
    pub(crate) reloading: bool,
    stop_replies: Vec<oneshot::Sender<Reply>>,
    /// Failures waiting for an `ignorecommand` verdict.
    asking: usize,
}

impl Core {
    pub fn new(
        jails: Vec<JailRt>,
        history: History,
        store: StoreHandle,
        server: ServerState,
        events: mpsc::UnboundedSender<Event>,
        sources: Sources,
    ) -> Core {
        let mut slots = Jails::default();
        let mut names = BTreeMap::new();
        for rt in jails {
            names.insert(rt.name.to_string(), slots.push(rt));
        }
        Core {
            jails: slots,
            names,
            history,
            store,
            server,
            events,
            command_slots: Arc::new(Semaphore::new(COMMAND_SLOTS)),
            sources: Some(sources),
            reloading: false,
            stop_replies: Vec::new(),
            asking: 0,
        }
    }

    /// Runs until the server stops.
    pub async fn run(
        mut self,
        mut ingest: mpsc::Receiver<Ingested>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        loop {
            let wake = tokio::time::Instant::now() + self.next_wake(crate::util::now());
            tokio::select! {
                biased;
                Some(ev) = events.recv() => {
                    if self.on_event(ev, &mut ingest).await {
                        return;
                    }
                }
                Some(msg) = ingest.recv(), if self.takes_lines() => self.on_ingest(msg),
                _ = tokio::time::sleep_until(wake) => self.on_timer(crate::util::now()),
            }
        }
    }

    /// Whether the core takes lines now: not while too many failures wait
    /// for `ignorecommand` (except when stopping, which reads what is left).
    fn takes_lines(&self) -> bool {
        self.asking < MAX_ASKING || self.sources.is_none()
    }

    fn next_wake(&self, now: f64) -> Duration {
        let expiry = self
            .jails
            .iter()
            .filter_map(|j| j.jail.next_expiry())
            .reduce(f64::min);
        match expiry {
            Some(t) if t - now < MAINTAIN_EVERY.as_secs_f64() => {
                // Fail2ban unbans once the end is passed, not at it.
                Duration::from_secs_f64((t - now).max(0.0) + 0.001)
            }
            _ => MAINTAIN_EVERY,
        }
    }

    /// Returns true when the server is to exit.
    async fn on_event(&mut self, ev: Event, ingest: &mut mpsc::Receiver<Ingested>) -> bool {
        match ev {
            Event::Command { words, reply } => self.on_command(words, reply),
            Event::Verdict {
                jail,
                call,
                failure,
                result,
            } => self.on_verdict(jail, call, *failure, result),
            Event::Stop => self.begin_stop(None),
            Event::FlushLogs => {
                self.server.log.flush();
            }
            Event::Reload => {
                if let Err(e) = self.begin_reload(super::reload::Request::all(), None) {
                    tracing::error!(target: "fail2ban.server", "Reload failed: {}", e.message());
                }
            }
            Event::Reloaded { built, reply } => self.end_reload(built, reply),
            Event::SourcesStopped => {
                // Lines read before the sources stopped still count.
                while let Ok(msg) = ingest.try_recv() {
                    self.on_ingest(msg);
                }
                self.finish_stop().await;
                return true;
            }
        }
        false
    }

    fn on_command(&mut self, words: Vec<String>, reply: oneshot::Sender<Reply>) {
        tracing::trace!(target: "fail2ban.transmitter", "Command: {}", repr_words(&words));
        match self.dispatch(&words) {
            Ok(Answer::Value(v)) => {
                let _ = reply.send(Reply::Ok(v));
            }
            Ok(Answer::After(done, v)) => {
                tokio::spawn(async move {
                    // A worker that went away counts as done.
                    let _ = done.await;
                    let _ = reply.send(Reply::Ok(v));
                });
            }
            Ok(Answer::Deferred(result)) => {
                tokio::spawn(async move {
                    let r = match result.await {
                        Ok(Ok(v)) => Reply::Ok(v),
                        Ok(Err(e)) => {
                            tracing::error!(target: "fail2ban.transmitter",
                                "Command {} has failed. Received {}", repr_words(&words), e.python());
                            e.reply()
                        }
                        Err(_) => CmdError::Failed("the server is stopping".into()).reply(),
                    };
                    let _ = reply.send(r);
                });
            }
            Ok(Answer::Stop) => self.begin_stop(Some(reply)),
            Err(e) => {
                tracing::error!(target: "fail2ban.transmitter",
                    "Command {} has failed. Received {}", repr_words(&words), e.python());
                let _ = reply.send(e.reply());
            }
        }
    }

    fn on_ingest(&mut self, msg: Ingested) {
        match msg {
            Ingested::Lines {
                jail,
                failures,
                position,
            } => {
                let Some(rt) = self.jails.get_mut(jail) else {
                    // Read for a jail stopped since.
                    return;
                };
                if let Some(p) = &position {
                    // In place once the source is known: no allocation per batch.
                    match rt.positions.get_mut(&p.path) {
                        Some(last) => {
                            last.hash.clone_from(&p.hash);
                            last.pos = p.pos;
                        }
                        None => {
                            rt.positions.insert(p.path.clone(), p.clone());
                        }
                    }
                }
                if let Some(paused) = &mut rt.idle {
                    let cap = rt.jail.settings().max_failures;
                    paused.hold(&rt.name, failures, cap);
                    return;
                }
                self.count(jail, failures, position);
            }
            Ingested::FileAdded { jail, path } => {
                if let Some(SourceInfo::Files(files)) =
                    self.jails.get_mut(jail).map(|rt| &mut rt.source)
                {
                    if !files.contains(&path) {
                        files.push(path);
                    }
                }
            }
        }
    }

    /// Counts failures read for a jail, then stores the position after
    /// them.
    fn count(&mut self, jail: JailId, failures: Vec<Failure>, position: Option<Position>) {
        let now = crate::util::now();
        let mut banned = Vec::new();
        // The `Found` lines of the batch go out in one write, before the
        // bans they lead to are handed to the store.
        let lines = self.server.log.defer();
        for f in failures {
            self.check_failure(jail, f, now, &mut banned);
        }
        drop(lines);
        self.jails[jail].jail.maintain(now);
        // The bans first: a position written before them would skip their
        // lines after a crash in between.
        self.commit_bans(jail, banned, None);
        if let Some(p) = position {
            self.store.position(&self.jails[jail].name, p);
        }
    }

    /// `set <jail> idle off` (or `start <jail>`): the failures read while
    /// idle are counted now, as Fail2ban reads the lines written meanwhile
    /// when it resumes, and the jail's last positions are stored after them.
    pub(crate) fn resume(&mut self, jail: JailId) {
        let Some(paused) = self.jails.get_mut(jail).and_then(|rt| rt.idle.take()) else {
            return;
        };
        self.count(jail, paused.failures, None);
        let rt = &self.jails[jail];
        for p in rt.positions.values() {
            self.store.position(&rt.name, p.clone());
        }
    }

    fn on_timer(&mut self, now: f64) {
        for id in self.jails.ids() {
            let rt = &mut self.jails[id];
            rt.jail.maintain(now);
            let expired = rt.jail.expired(now);
            self.unbanned(id, expired, None);
        }
        release_free_memory();
    }

    /// Ignore rules, counting, and the log lines Fail2ban writes for them.
    fn check_failure(&mut self, id: JailId, f: Failure, now: f64, banned: &mut Vec<Ban>) {
        let rt = &mut self.jails[id];
        match rt.jail.on_failure(&f, now, &self.history) {
            Outcome::NoFail => {}
            Outcome::Ignored(by) => log_ignored(&rt.name, &f.fid, by),
            Outcome::AskCommand(call) => self.ask_command(id, call, f),
            Outcome::Counted(c) => self.counted(id, &f, now, c, banned),
        }
    }

    fn counted(&mut self, id: JailId, f: &Failure, now: f64, c: Counted, banned: &mut Vec<Ban>) {
        let rt = &mut self.jails[id];
        let time = f.time.min(now);
        tracing::info!(target: "fail2ban.filter", "[{}] Found {} - {}", rt.name, f.fid, time2str(time));
        if let Some((addr, n, total)) = rt.one_source.note(&BanId::parse(&f.fid), now) {
            tracing::warn!(target: "fail2ban.filter",
                "[{}] {addr} produced {n} of the last {total} failures: if every client shows up \
                 with this address (a proxy, a rootless container's port forwarder), banning it \
                 locks everyone out; rootless Docker/Podman: forward ports with slirp4netns so \
                 clients keep their address (Docker: \
                 DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns; Podman: network_mode \
                 \"slirp4netns:port_handler=slirp4netns\", NETWORK_INTERFACE=tap0)", rt.name);
        }
        if let Some(k) = c.known {
            let ban = if k.retry >= rt.jail.settings().maxretry {
                ", Ban"
            } else {
                ""
            };
            tracing::info!(target: "fail2ban.observer",
                "[{}] Found {}, bad - {}, {} # -> {}{ban}",
                rt.name, f.fid, time2str(time), k.ban_count, k.retry);
        }
        if let Some(outcome) = c.ban {
            self.ban_outcome(id, outcome, time, banned);
        }
    }

    /// What a ban attempt gave: a new ban joins the batch to commit.
    pub(crate) fn ban_outcome(
        &mut self,
        id: JailId,
        outcome: BanOutcome,
        time: f64,
        banned: &mut Vec<Ban>,
    ) {
        let rt = &self.jails[id];
        match outcome {
            BanOutcome::New(ban) => {
                if ban.incremented {
                    let (len, end) = match ban.end() {
                        Some(end) => (seconds2str(ban.bantime), time2str(end)),
                        None => ("permanent".into(), "infinite".into()),
                    };
                    notice!(target: "fail2ban.observer",
                        "[{}] Increase Ban {} ({} # {len} -> {end})", rt.name, ban.id, ban.count);
                }
                let past = PastBan {
                    count: ban.count,
                    time: ban.time,
                };
                self.history.record(&rt.name, &ban.id, past);
                banned.push(ban);
            }
            BanOutcome::Already { id: bid, .. } => {
                // Fail2ban's level grows with the time since the ban.
                let since = rt.jail.ban_of(&bid).map_or(0.0, |b| time - b.time);
                if since < 3.0 {
                    tracing::debug!(target: "fail2ban.actions", "[{}] {bid} already banned", rt.name);
                } else if since < 60.0 {
                    notice!(target: "fail2ban.actions", "[{}] {bid} already banned", rt.name);
                } else {
                    tracing::warn!(target: "fail2ban.actions", "[{}] {bid} already banned", rt.name);
                }
            }
            BanOutcome::Expired(bid) => {
                tracing::info!(target: "fail2ban.actions", "[{}] Ignore {bid}, expired bantime", rt.name);
            }
        }
    }

    /// Runs `ignorecommand` off the core; the verdict comes back as an event.
    fn ask_command(&mut self, jail: JailId, call: IgnoreCommandCall, failure: Failure) {
        self.asking += 1;
        let events = self.events.clone();
        let slots = self.command_slots.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let run = call.clone();
            let result =
                match tokio::task::spawn_blocking(move || run.run(IGNORE_COMMAND_TIMEOUT)).await {
                    Ok(Ok(ignored)) => Ok(ignored),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
            let _ = events.send(Event::Verdict {
                jail,
                call,
                failure: Box::new(failure),
                result,
            });
        });
    }

    fn on_verdict(
        &mut self,
        id: JailId,
        call: IgnoreCommandCall,
        f: Failure,
        result: Result<bool, String>,
    ) {
        self.asking -= 1;
        let now = crate::util::now();
        let Some(rt) = self.jails.get_mut(id) else {
            return;
        };
        let ignored = match result {
            Ok(ignored) => ignored,
            Err(e) => {
                tracing::error!(target: "fail2ban.filter", "[{}] {e}", rt.name);
                false
            }
        };
        if let IgnoreCheck::Ignored(by) = rt.jail.command_verdict(&call, ignored, now) {
            log_ignored(&rt.name, &f.fid, by);
            return;
        }
        let counted = rt.jail.count_failure(&f, now, &self.history);
        let mut banned = Vec::new();
        self.counted(id, &f, now, counted, &mut banned);
        self.commit_bans(id, banned, None);
    }

    /// Stores new bans in one transaction; once committed, logs `Ban` and
    /// hands them to the actions as one batch.
    pub(crate) fn commit_bans(
        &mut self,
        id: JailId,
        bans: Vec<Ban>,
        done: Option<oneshot::Sender<()>>,
    ) {
        if bans.is_empty() {
            return done_now(done);
        }
        let rt = &self.jails[id];
        let records = bans.iter().map(|b| ban_record(&rt.name, b)).collect();
        let name = rt.name.clone();
        let actions = rt.actions.sender();
        self.store.add_bans(records, rt.merged, move |committed| {
            if !committed.ok {
                tracing::error!(target: "fail2ban.actions",
                    "[{name}] {} ban(s) could not be stored: they will not survive a restart", bans.len());
            }
            for b in &bans {
                notice!(target: "fail2ban.actions", "[{name}] Ban {}", b.id);
            }
            let mut merged = committed.merged.into_iter().flatten();
            let tickets = bans.iter().map(|b| ticket(b, merged.next())).collect();
            actions.send(Op::Ban(tickets), done);
        });
    }

    /// Logs `Unban` and hands the unbans to the actions (see
    /// [`unban_after_store`]).
    pub(crate) fn unbanned(
        &mut self,
        id: JailId,
        bans: Vec<Ban>,
        done: Option<oneshot::Sender<()>>,
    ) {
        if bans.is_empty() {
            return done_now(done);
        }
        unban_after_store(&self.store, &self.jails[id], bans, Op::Unban, done);
    }

    fn begin_stop(&mut self, reply: Option<oneshot::Sender<Reply>>) {
        self.stop_replies.extend(reply);
        let Some(sources) = self.sources.take() else {
            return;
        };
        tracing::info!(target: "fail2ban.server", "Shutdown in progress...");
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            sources.stop();
            let _ = events.send(Event::SourcesStopped);
        });
    }

    /// Unbans everything, stops the actions, writes the positions, closes
    /// the store, answers `stop`.
    async fn finish_stop(&mut self) {
        tracing::info!(target: "fail2ban.server", "Stopping all jails");
        let stopped: Vec<_> = self
            .jails
            .ids()
            .into_iter()
            .filter_map(|id| self.stop_jail(id, StopMode::Full))
            .collect();
        for wait in stopped {
            let _ = wait.await;
        }
        let (closed, wait) = oneshot::channel();
        self.store.close(move || {
            let _ = closed.send(());
        });
        let _ = wait.await;
        for r in self.stop_replies.drain(..) {
            let _ = r.send(Reply::Ok(Value::Null));
        }
    }

    /// Stops a jail: its sources stop, everything it bans is unbanned
    /// (`Unban` lines, as Fail2ban) and its actions stop (`mode`). Returns
    /// the signal that the actions are done (then `Jail 'x' stopped` is
    /// logged), None when the jail is not running.
    pub(crate) fn stop_jail(
        &mut self,
        id: JailId,
        mode: StopMode,
    ) -> Option<oneshot::Receiver<()>> {
        let mut rt = self.jails.take(id)?;
        self.names.remove(&*rt.name);
        if let Some(stop) = self.sources.as_mut().and_then(|s| s.remove_jail(id)) {
            tokio::task::spawn_blocking(stop);
        }
        let bans = rt.jail.unban_all();
        let (done, wait) = oneshot::channel();
        let stop = move |tickets| Op::Stop(tickets, mode);
        unban_after_store(&self.store, &rt, bans, stop, Some(done));
        let (stopped, out) = oneshot::channel();
        let name = rt.name.clone();
        tokio::spawn(async move {
            let _ = wait.await;
            tracing::info!(target: "fail2ban.jail", "Jail '{name}' stopped");
            let _ = stopped.send(());
        });
        Some(out)
    }

    /// Marks a jail that leaves while the server runs (`stop <jail>`, gone
    /// from the configuration at a reload) disabled in the store, as
    /// Fail2ban does, so the purge deletes it once it holds no bans. Not at
    /// shutdown: the next start marks every jail it does not run.
    pub(crate) fn disable_in_store(&self, name: &str) {
        let name = name.to_string();
        self.store.with(move |s| {
            if let Some(Err(e)) = s.map(|s| s.disable_jail(&name)) {
                tracing::error!(target: "fail2ban.database", "{e}");
            }
        });
    }

    pub(crate) fn jail_id(&self, name: &str) -> Result<JailId, CmdError> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| CmdError::UnknownJail(name.to_string()))
    }
}

/// Hands memory freed after a burst (a flood of failures, a big batch)
/// back to the system: glibc keeps it in its arenas otherwise, measured at
/// 30 MB after a million failures.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Answers a command's wait at once: there is nothing to carry out.
fn done_now(done: Option<oneshot::Sender<()>>) {
    if let Some(d) = done {
        let _ = d.send(());
    }
}

/// Logs `Unban` for each ban and hands their tickets to the jail's actions
/// as `op`, after whatever the store thread has queued (a ban of the same
/// address waiting for its commit goes out first).
fn unban_after_store(
    store: &StoreHandle,
    rt: &JailRt,
    bans: Vec<Ban>,
    op: impl FnOnce(Vec<crate::action::Ticket>) -> Op + Send + 'static,
    done: Option<oneshot::Sender<()>>,
) {
    let name = rt.name.clone();
    let actions = rt.actions.sender();
    store.run(move || {
        for b in &bans {
            notice!(target: "fail2ban.actions", "[{name}] Unban {}", b.id);
        }
        actions.send(op(bans.iter().map(|b| ticket(b, None)).collect()), done);
    });
}

fn log_ignored(jail: &str, fid: &str, by: IgnoredBy) {
    if let Some(label) = by.label() {
        tracing::info!(target: "fail2ban.filter", "[{jail}] Ignore {fid} by {label}");
    }
}

/// A command as Python prints it in the log: `['status', 'nosuch']`.
fn repr_words(words: &[String]) -> String {
    crate::util::py_repr(&Value::from(words.to_vec()))
}

/// A ban as the store keeps it: Fail2ban's ticket data (`matches`,
/// `failures`, the filter's captures).
pub(crate) fn ban_record(jail: &str, b: &Ban) -> BanRecord {
    let mut data = serde_json::Map::new();
    for (k, v) in &b.data {
        data.insert(k.clone(), Value::from(v.as_str()));
    }
    data.insert("matches".into(), Value::from(b.matches.clone()));
    data.insert("failures".into(), Value::from(b.failures));
    BanRecord {
        jail: jail.to_string(),
        ip: b.id.to_string(),
        timeofban: b.time.round() as i64,
        bantime: b.bantime as i64,
        bancount: i64::from(b.count),
        data: Value::Object(data),
    }
}

/// A stored ban read back at start.
pub(crate) fn restored_ban(r: &BanRecord) -> Ban {
    let data = match &r.data {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| *k != "matches" && *k != "failures")
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => Vec::new(),
    };
    Ban {
        id: BanId::parse(&r.ip),
        time: r.timeofban as f64,
        bantime: r.bantime as f64,
        count: u32::try_from(r.bancount).unwrap_or(0),
        failures: r
            .failures()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        matches: r.matches(),
        data,
        restored: true,
        incremented: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, BackendKind};
    use crate::jail::{JailSettings, PrefixSet};
    use crate::source::FileBackend;

    /// A core with one jail `t` (no actions, no files) over `store`, and
    /// the events it sends itself.
    fn core_with(
        settings: JailSettings,
        store: StoreHandle,
    ) -> (Core, mpsc::UnboundedReceiver<Event>) {
        let (ingest, _) = mpsc::channel(1);
        let (events, rx) = mpsc::unbounded_channel();
        let sources = Sources::start(FileBackend::Polling, ingest).unwrap();
        let def = JailDef {
            name: "t".into(),
            enabled: true,
            backend: Backend {
                kind: BackendKind::Polling,
                params: Vec::new(),
            },
            filter: None,
            logpath: Vec::new(),
            logencoding: "auto".into(),
            logtimezone: None,
            maxretry: settings.maxretry,
            maxmatches: 5,
            findtime: settings.findtime,
            bantime: settings.bantime,
            bantime_increment: Default::default(),
            ignoreip: Vec::new(),
            ignoreself: false,
            ignorecommand: None,
            ignorecache: None,
            actions: Vec::new(),
            options: Default::default(),
        };
        let rt = JailRt {
            name: "t".into(),
            jail: Jail::new(settings),
            source: SourceInfo::Files(Vec::new()),
            actions: ActionWorker::start("t", &[], None),
            merged: false,
            one_source: OneSource::default(),
            def,
            show: FilterShow::default(),
            idle: None,
            positions: HashMap::new(),
        };
        let server = ServerDef {
            loglevel: "NOTICE".into(),
            logtarget: "STDERR".into(),
            syslogsocket: "auto".into(),
            socket: String::new(),
            pidfile: String::new(),
            allowipv6: "auto".into(),
            dbfile: "None".into(),
            dbpurgeage: 86400.0,
            dbmaxmatches: None,
            stacksize: None,
        };
        let state = ServerState {
            log: Log::new(super::super::log::Level::Notice, "STDERR", "auto").unwrap(),
            loglevel: server.loglevel.clone(),
            syslogsocket: server.syslogsocket.clone(),
            dbfile: None,
            dbpurgeage: server.dbpurgeage,
            dbmaxmatches: 10,
            conf: None,
            opts: Opts::default(),
            server,
        };
        let core = Core::new(vec![rt], History::new(false), store, state, events, sources);
        (core, rx)
    }

    fn settings(maxretry: u32) -> JailSettings {
        let mut s = JailSettings::new("t");
        s.maxretry = maxretry;
        s.ignore = crate::jail::Ignore::with_self_addresses(Arc::new(PrefixSet::default()));
        s
    }

    fn failure(fid: &str) -> Failure {
        Failure {
            fid: fid.into(),
            time: crate::util::now(),
            ..Failure::default()
        }
    }

    #[tokio::test]
    async fn lines_wait_while_many_failures_wait_for_ignorecommand() {
        let mut s = settings(1000);
        s.ignore.command = crate::jail::IgnoreCommand::new("exit 1");
        let (mut core, mut events) = core_with(s, StoreHandle::unserved().0);
        let failures = (0..MAX_ASKING)
            .map(|i| failure(&format!("10.0.{}.{}", i / 256, i % 256)))
            .collect();
        core.on_ingest(Ingested::Lines {
            jail: 0,
            failures,
            position: None,
        });
        assert!(!core.takes_lines(), "the files wait for the verdicts");
        for _ in 0..MAX_ASKING {
            match events.recv().await {
                Some(Event::Verdict {
                    jail,
                    call,
                    failure,
                    result,
                }) => core.on_verdict(jail, call, *failure, result),
                _ => panic!("a verdict"),
            }
        }
        assert!(core.takes_lines());
        assert_eq!(core.jails[0].jail.status().total_failed, MAX_ASKING as u64);
    }

    #[tokio::test]
    async fn a_position_is_stored_after_the_bans_of_its_lines() {
        let (store, asked) = StoreHandle::unserved();
        let (mut core, _events) = core_with(settings(1), store);
        core.on_ingest(Ingested::Lines {
            jail: 0,
            failures: vec![failure("192.0.2.1")],
            position: Some(Position {
                path: "/var/log/auth.log".into(),
                hash: "0123".into(),
                pos: 100,
            }),
        });
        // A crash between the two then loses neither the ban nor the lines.
        assert_eq!(asked.kinds(), ["bans", "position"]);
    }

    #[test]
    fn one_address_with_most_failures_is_noticed_once_an_hour() {
        let mut w = OneSource::default();
        let gw = BanId::parse("192.0.2.1");
        let mut found = None;
        for i in 0..ONE_SOURCE_WINDOW {
            // Nine in ten from the gateway, the rest from all over.
            let id = if i % 10 == 3 {
                BanId::parse(&format!("198.51.100.{i}"))
            } else {
                gw.clone()
            };
            found = found.or(w.note(&id, 1000.0));
        }
        let (addr, n, total) = found.expect("noticed");
        assert_eq!(addr, gw);
        assert_eq!(total, ONE_SOURCE_WINDOW);
        assert!((81..=90).contains(&n), "{n}");
        // The next window is quiet: warned already.
        assert!((0..ONE_SOURCE_WINDOW).all(|_| w.note(&gw, 2000.0).is_none()));
        assert!((0..ONE_SOURCE_WINDOW).any(|_| w.note(&gw, 1000.0 + ONE_SOURCE_QUIET).is_some()));
    }

    #[test]
    fn ban_counts_over_all_jails_stop_at_the_largest() {
        let mut h = History::new(true);
        let id = BanId::parse("192.0.2.1");
        let past = PastBan {
            count: u32::MAX,
            time: 1.0,
        };
        h.record(&Arc::from("a"), &id, past);
        h.record(&Arc::from("b"), &id, past);
        assert_eq!(h.previous_ban("a", &id, true), Some(past));
    }

    #[test]
    fn many_addresses_are_not_one_source() {
        let mut w = OneSource::default();
        for i in 0..10 * ONE_SOURCE_WINDOW {
            let id = BanId::parse(&format!("10.0.{}.{}", i / 256, i % 256));
            assert!(w.note(&id, 0.0).is_none());
        }
        // Half from one address is not "most".
        let gw = BanId::parse("192.0.2.1");
        for i in 0..ONE_SOURCE_WINDOW {
            let id = if i % 2 == 0 {
                gw.clone()
            } else {
                BanId::parse(&format!("10.1.0.{i}"))
            };
            assert!(w.note(&id, 0.0).is_none());
        }
    }

    #[test]
    fn an_idle_jail_holds_failures_up_to_the_cap() {
        let mut p = Paused::default();
        p.hold("j", vec![failure("192.0.2.1"), failure("192.0.2.2")], 3);
        p.hold("j", vec![failure("192.0.2.3"), failure("192.0.2.4")], 3);
        let fids: Vec<_> = p.failures.iter().map(|f| f.fid.as_str()).collect();
        assert_eq!(fids, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        assert_eq!(p.dropped, 1);
    }

    #[tokio::test]
    async fn an_idle_jail_stores_the_last_position_per_source_once_it_resumes() {
        let (store, asked) = StoreHandle::unserved();
        let (mut core, _events) = core_with(settings(1), store);
        core.jails[0].idle = Some(Paused::default());
        let lines = |path: &str, pos, fid: Option<&str>| Ingested::Lines {
            jail: 0,
            failures: fid.into_iter().map(failure).collect(),
            position: Some(Position {
                path: path.into(),
                hash: format!("{path}{pos}"),
                pos,
            }),
        };
        core.on_ingest(lines("a", 10, Some("192.0.2.1")));
        core.on_ingest(lines("a", 20, None));
        core.on_ingest(lines("b", 5, None));
        assert!(asked.kinds().is_empty(), "nothing stored while idle");
        let positions = &core.jails[0].positions;
        assert_eq!(
            (positions["a"].pos, positions["a"].hash.as_str()),
            (20, "a20")
        );
        assert_eq!(positions["b"].pos, 5);
        core.resume(0);
        assert_eq!(asked.kinds(), ["bans", "position", "position"]);
    }
}
