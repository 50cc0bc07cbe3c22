//! The store thread: owns the SQLite [`Store`] and runs every write in the
//! order it was asked for. Bans are committed before anything reports them:
//! the request carries what to do once the commit returned (log `Ban`, hand
//! the bans to the actions), so `kill -9` loses no ban that was logged or
//! enforced. Unbans and other action work pass through the same queue, so
//! they never overtake a ban still waiting for its commit. Log positions are
//! coalesced and written every few seconds and at close; old rows are purged
//! every hour.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::store::{BanRecord, MergedBans, Store, StoreError};

/// How often coalesced log positions are written.
const POSITION_EVERY: Duration = Duration::from_secs(5);
/// How often old rows are purged (Fail2ban's observer: hourly).
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Work run on the store thread after a request, with its outcome.
pub(crate) type Then<T> = Box<dyn FnOnce(T) + Send>;

/// Work run on the store thread with the store (None without a database).
type WithStore = Box<dyn FnOnce(Option<&mut Store>) + Send>;

/// An address's bans merged over all jails and in its jail (Fail2ban's
/// `getBansMerged`), for actions that use `<ipmatches>` and the like.
pub(crate) type MergedPair = (Option<MergedBans>, Option<MergedBans>);

/// What a ban commit hands on: whether it was committed, and the merged
/// bans of each address when they were asked for.
pub(crate) struct Committed {
    pub ok: bool,
    pub merged: Option<Vec<MergedPair>>,
}

/// A log position to store for a jail (`logs` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub path: String,
    /// md5 of the file's first line, or the journal cursor.
    pub hash: String,
    /// File offset, or the journal entry's time in seconds.
    pub pos: u64,
}

enum Req {
    /// Store bans in one transaction (and read their merged bans when
    /// asked), then run `then`.
    AddBans(Vec<BanRecord>, bool, Then<Committed>),
    /// `unbanip`: forget addresses in a jail (history included).
    RemoveBans(Arc<str>, Vec<String>),
    Position(Arc<str>, Position),
    /// Runs in queue order (action work that must not overtake a ban).
    Run(Then<()>),
    /// Runs with the store (None without a database), after the pending
    /// positions are written so that it reads them.
    With(WithStore),
    /// Writes pending positions, closes the database, then runs `then`.
    Close(Then<()>),
}

/// The handle on the store thread. Sending never blocks.
#[derive(Clone)]
pub(crate) struct StoreHandle {
    tx: Sender<Req>,
}

/// The thread itself, joined at close.
pub(crate) struct StoreThread(Option<JoinHandle<()>>);

impl StoreThread {
    pub fn join(mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.join();
        }
    }
}

impl StoreHandle {
    /// Starts the thread with the store (None: no database, `dbfile = None`;
    /// requests then succeed without writing anything).
    pub fn start(store: Option<Store>) -> std::io::Result<(StoreHandle, StoreThread)> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("logban-store".into())
            .spawn(move || Worker::new(store).run(rx))?;
        Ok((StoreHandle { tx }, StoreThread(Some(thread))))
    }

    fn send(&self, req: Req) {
        // The thread ends only at close; a request after that has nothing to do.
        let _ = self.tx.send(req);
    }

    pub fn add_bans(
        &self,
        records: Vec<BanRecord>,
        merged: bool,
        then: impl FnOnce(Committed) + Send + 'static,
    ) {
        self.send(Req::AddBans(records, merged, Box::new(then)));
    }

    pub fn remove_bans(&self, jail: &Arc<str>, ips: Vec<String>) {
        self.send(Req::RemoveBans(jail.clone(), ips));
    }

    pub fn position(&self, jail: &Arc<str>, pos: Position) {
        self.send(Req::Position(jail.clone(), pos));
    }

    pub fn run(&self, f: impl FnOnce() + Send + 'static) {
        self.send(Req::Run(Box::new(move |()| f())));
    }

    /// Runs `f` on the store thread with the store, in queue order.
    pub fn with(&self, f: impl FnOnce(Option<&mut Store>) + Send + 'static) {
        self.send(Req::With(Box::new(f)));
    }

    pub fn close(&self, then: impl FnOnce() + Send + 'static) {
        self.send(Req::Close(Box::new(move |()| then())));
    }
}

/// The requests of a [`StoreHandle::unserved`], in the order made.
#[cfg(test)]
pub(crate) struct Asked(Receiver<Req>);

#[cfg(test)]
impl StoreHandle {
    /// A handle whose requests are kept, not run: a test reads what was
    /// asked of the store, in order.
    pub fn unserved() -> (StoreHandle, Asked) {
        let (tx, rx) = mpsc::channel();
        (StoreHandle { tx }, Asked(rx))
    }
}

#[cfg(test)]
impl Asked {
    /// What was asked since the last call.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.0
            .try_iter()
            .map(|r| match r {
                Req::AddBans(..) => "bans",
                Req::RemoveBans(..) => "remove",
                Req::Position(..) => "position",
                Req::Run(_) => "run",
                Req::With(_) => "with",
                Req::Close(_) => "close",
            })
            .collect()
    }
}

struct Worker {
    store: Option<Store>,
    positions: HashMap<(Arc<str>, String), (String, u64)>,
    last_flush: Instant,
    last_purge: Instant,
    /// The last error logged, so a broken disk does not flood the log.
    last_error: Option<String>,
}

impl Worker {
    fn new(store: Option<Store>) -> Worker {
        Worker {
            store,
            positions: HashMap::new(),
            last_flush: Instant::now(),
            last_purge: Instant::now(),
            last_error: None,
        }
    }

    fn run(mut self, rx: Receiver<Req>) {
        loop {
            let wait = if self.positions.is_empty() {
                PURGE_EVERY.saturating_sub(self.last_purge.elapsed())
            } else {
                POSITION_EVERY.saturating_sub(self.last_flush.elapsed())
            };
            match rx.recv_timeout(wait) {
                Ok(Req::Close(then)) => {
                    self.flush_positions();
                    if self.store.take().is_some() {
                        tracing::info!(target: "fail2ban.database", "Connection to database closed.");
                    }
                    then(());
                    return;
                }
                Ok(req) => self.handle(req),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush_positions();
                    return;
                }
            }
            if !self.positions.is_empty() && self.last_flush.elapsed() >= POSITION_EVERY {
                self.flush_positions();
            }
            if self.last_purge.elapsed() >= PURGE_EVERY {
                self.purge();
            }
        }
    }

    fn handle(&mut self, req: Req) {
        match req {
            Req::AddBans(records, merged, then) => {
                let ok = match self.store.as_mut() {
                    Some(s) => check(&mut self.last_error, s.add_bans(&records)).is_some(),
                    None => true,
                };
                let merged = merged.then(|| self.merged(&records));
                then(Committed { ok, merged });
            }
            Req::RemoveBans(jail, ips) => {
                if let Some(s) = self.store.as_mut() {
                    check(&mut self.last_error, s.remove_bans(&jail, &ips));
                }
            }
            Req::Position(jail, p) => {
                if self.store.is_some() {
                    if self.positions.is_empty() {
                        self.last_flush = Instant::now();
                    }
                    self.positions.insert((jail, p.path), (p.hash, p.pos));
                }
            }
            Req::Run(f) => f(()),
            Req::With(f) => {
                self.flush_positions();
                f(self.store.as_mut());
            }
            Req::Close(_) => unreachable!("handled by run"),
        }
    }

    fn merged(&mut self, records: &[BanRecord]) -> Vec<MergedPair> {
        let Some(store) = self.store.as_mut() else {
            return Vec::new();
        };
        records
            .iter()
            .map(|r| {
                let all = check(&mut self.last_error, store.bans_merged(&r.ip, None)).flatten();
                let jail = check(
                    &mut self.last_error,
                    store.bans_merged(&r.ip, Some(&r.jail)),
                )
                .flatten();
                (all, jail)
            })
            .collect()
    }

    fn flush_positions(&mut self) {
        self.last_flush = Instant::now();
        let Some(store) = self.store.as_mut() else {
            self.positions.clear();
            return;
        };
        for ((jail, path), (hash, pos)) in self.positions.drain() {
            let hash = (!hash.is_empty()).then_some(hash.as_str());
            check(
                &mut self.last_error,
                store.set_log_position(&jail, &path, hash, pos),
            );
        }
    }

    fn purge(&mut self) {
        self.last_purge = Instant::now();
        if let Some(s) = self.store.as_mut() {
            if let Some(p) = check(&mut self.last_error, s.purge(crate::util::now() as i64)) {
                tracing::debug!(target: "fail2ban.database",
                    "purged {} bans, {} latest bans, {} jails", p.bans, p.bips, p.jails);
            }
        }
    }
}

/// Logs a store error (once while it repeats); Some on success.
fn check<T>(last: &mut Option<String>, r: Result<T, StoreError>) -> Option<T> {
    match r {
        Ok(v) => {
            *last = None;
            Some(v)
        }
        Err(e) => {
            let text = e.to_string();
            if last.as_deref() != Some(text.as_str()) {
                tracing::error!(target: "fail2ban.database", "{text}");
            }
            *last = Some(text);
            None
        }
    }
}
