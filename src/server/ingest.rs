//! From log lines to failures, on std threads (never on the tokio runtime).
//!
//! Files: the source module's one [`FileWatcher`] reads every followed file
//! once. There is one [`Filter`] per (jail, file); a router thread spreads
//! them over a few filter workers (as many as cores) and hands each batch of
//! a file to every worker that has one of its filters, so the jails of one
//! busy file use all cores while each jail sees its lines in order. A
//! worker finds each line's date once for the filters of a file that read
//! dates the same way (same `datepattern` and `logtimezone`), and sends the
//! failures of each batch to the core with the position to store after
//! them. Each filter runs its own literal prefilter: a scan shared by the
//! filters of a file was measured slower (see docs/architecture.md).
//!
//! The journal: one [`JournalFollower`] per `backend = systemd` jail, and a
//! thread that runs the jail's filter on its entries.
//!
//! A reload (or a `set` that changes a filter) hands a jail's watches a new
//! filter, or drops some and adds others: the router passes the change on
//! to the workers before the next batch, so each line is filtered once,
//! by the old filter or by the new one.
//!
//! Fail2ban's start rules: lines that were in a file when it was opened (the
//! backlog) are processed with the filter not "in operation" (lines older
//! than findtime are ignored); `tail` watches drop them. When jails sharing
//! a file stored different positions, the file is read from the earliest and
//! each jail skips what it had already read.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::mpsc::Sender;

use super::core::{Ingested, JailId};
use super::persist::Position;
use crate::config::FilterDef;
use crate::filter::date::{DateDetector, DateHit};
use crate::filter::{Failure, Filter, FilterOptions};
use crate::source::{
    first_line_md5, Batch, FileBackend, FileEvent, FileId, FileWatcher, JournalEvent,
    JournalFollower, JournalOptions, LogPath, SeekTime, StoredPos, WatchId, WatcherOptions,
};

/// Batches queued between the watcher and the router, and per worker.
/// Small: a deeper queue reads no faster (bench/ingest.sh) but holds more
/// of a flood's failures in flight (32 here and 16 to the core measured
/// 30 MB more peak RSS in bench/flood.sh).
const QUEUE: usize = 4;
/// The `logs` path under which Fail2ban keeps the journal position.
pub(crate) const JOURNAL_LOG: &str = "systemd-journal";

/// What the filter workers need to know about a jail that follows files.
pub(crate) struct FileJail {
    pub jail: JailId,
    pub name: Arc<str>,
    pub filter: FilterDef,
    pub opts: FilterOptions,
    /// The jail's stored positions (`logs` rows).
    pub stored: Vec<(PathBuf, StoredPos)>,
    /// The filter built to check the jail, for its first file.
    pub spare: Mutex<Option<Filter>>,
}

struct Watch {
    jail: Arc<FileJail>,
    tail: bool,
}

type Watches = Arc<Mutex<HashMap<WatchId, Watch>>>;

/// Changes for the filter workers, passed on by the router before the next
/// batch it forwards.
enum Ctl {
    /// These watches' members get a filter built from the jail's new definition.
    SetFilter(Arc<[WatchId]>, Arc<FileJail>),
    /// These watches' members go.
    Drop(Arc<[WatchId]>),
}

type CtlQueue = Arc<Mutex<Vec<Ctl>>>;

/// One `logpath` of a jail and the watch that follows it.
struct JailWatch {
    id: WatchId,
    pattern: String,
    tail: bool,
}

/// Stops a journal follower and its filter thread (blocking: run it off the
/// runtime).
pub(crate) type JournalStop = Box<dyn FnOnce() + Send>;

/// Every log source of the server.
pub(crate) struct Sources {
    watcher: FileWatcher,
    watches: Watches,
    ctl: CtlQueue,
    router: Option<JoinHandle<()>>,
    journals: HashMap<JailId, (JournalFollower, JoinHandle<()>)>,
    /// Each jail's file watches.
    by_jail: HashMap<JailId, Vec<JailWatch>>,
    core: Sender<Ingested>,
    pending: Vec<(LogPath, Watch)>,
}

impl Sources {
    pub fn start(backend: FileBackend, core: Sender<Ingested>) -> std::io::Result<Sources> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let opts = WatcherOptions {
            backend,
            ..WatcherOptions::default()
        };
        let watcher = FileWatcher::start(opts, tx)?;
        let watches: Watches = Arc::default();
        let ctl: CtlQueue = Arc::default();
        let (w, q, c) = (watches.clone(), ctl.clone(), core.clone());
        let router = std::thread::Builder::new()
            .name("logban-route".into())
            .spawn(move || route(rx, &w, &q, c))?;
        Ok(Sources {
            watcher,
            watches,
            ctl,
            router: Some(router),
            journals: HashMap::new(),
            by_jail: HashMap::new(),
            core,
            pending: Vec::new(),
        })
    }

    /// Follows the files `pattern` matches for a jail, now and later, from
    /// the next [`Sources::watch`].
    pub fn add_file(
        &mut self,
        jail: &Arc<FileJail>,
        pattern: &str,
        tail: bool,
        seek: Option<SeekTime>,
    ) {
        let spec = LogPath {
            pattern: PathBuf::from(pattern),
            tail,
            stored: jail.stored.clone(),
            seek: if tail { None } else { seek },
        };
        self.pending.push((
            spec,
            Watch {
                jail: jail.clone(),
                tail,
            },
        ));
    }

    /// Starts following the files added since the last call, all at once,
    /// so that a file several jails watch starts where the earliest of them
    /// had got to.
    pub fn watch(&mut self) {
        let (specs, watches): (Vec<LogPath>, Vec<Watch>) = self.pending.drain(..).unzip();
        // Held across `add_many` so the router cannot see a watch's first
        // event before it knows the watch.
        let mut known = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        let patterns: Vec<(String, bool)> = specs
            .iter()
            .map(|s| (s.pattern.to_string_lossy().into_owned(), s.tail))
            .collect();
        let ids = self.watcher.add_many(specs);
        for ((id, w), (pattern, tail)) in ids.iter().zip(&watches).zip(patterns) {
            self.by_jail
                .entry(w.jail.jail)
                .or_default()
                .push(JailWatch {
                    id: *id,
                    pattern,
                    tail,
                });
        }
        known.extend(ids.into_iter().zip(watches));
    }

    /// The jail's file watches take `jail` (a new filter, new log paths):
    /// watches of log paths still listed keep following their files where
    /// they are (with the new filter when `filter_changed`), the others
    /// stop, and new log paths are added (followed from the next
    /// [`Sources::watch`]).
    pub fn update_files(
        &mut self,
        jail: &Arc<FileJail>,
        logpaths: &[(String, bool)],
        filter_changed: bool,
        mut seek: impl FnMut() -> Option<SeekTime>,
    ) {
        let old = self.by_jail.remove(&jail.jail).unwrap_or_default();
        let (kept, gone): (Vec<JailWatch>, Vec<JailWatch>) = old.into_iter().partition(|w| {
            logpaths
                .iter()
                .any(|(p, t)| *p == w.pattern && *t == w.tail)
        });
        {
            let mut known = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            for w in &kept {
                if let Some(entry) = known.get_mut(&w.id) {
                    entry.jail = jail.clone();
                }
            }
            for w in &gone {
                known.remove(&w.id);
            }
        }
        let mut ctl = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        if filter_changed && !kept.is_empty() {
            ctl.push(Ctl::SetFilter(
                kept.iter().map(|w| w.id).collect(),
                jail.clone(),
            ));
        }
        if !gone.is_empty() {
            ctl.push(Ctl::Drop(gone.iter().map(|w| w.id).collect()));
        }
        drop(ctl);
        for w in &gone {
            self.watcher.remove(w.id);
        }
        for (pattern, tail) in logpaths {
            if !kept
                .iter()
                .any(|w| w.pattern == *pattern && w.tail == *tail)
            {
                self.add_file(jail, pattern, *tail, seek());
            }
        }
        if !kept.is_empty() {
            self.by_jail.insert(jail.jail, kept);
        }
    }

    /// Stops following everything for `jail`. A journal follower is handed
    /// back to be stopped off the runtime (it waits for its threads).
    pub fn remove_jail(&mut self, jail: JailId) -> Option<JournalStop> {
        if let Some(gone) = self.by_jail.remove(&jail) {
            let ids: Arc<[WatchId]> = gone.iter().map(|w| w.id).collect();
            {
                let mut known = self.watches.lock().unwrap_or_else(|e| e.into_inner());
                for id in ids.iter() {
                    known.remove(id);
                }
            }
            self.ctl
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Ctl::Drop(ids.clone()));
            for id in ids.iter() {
                self.watcher.remove(*id);
            }
        }
        self.pending.retain(|(_, w)| w.jail.jail != jail);
        let (follower, thread) = self.journals.remove(&jail)?;
        Some(Box::new(move || {
            follower.stop();
            let _ = thread.join();
        }))
    }

    /// Follows the journal for a `backend = systemd` jail.
    pub fn add_journal(
        &mut self,
        jail: JailId,
        mut filter: Filter,
        opts: JournalOptions,
    ) -> Result<(), String> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let follower = JournalFollower::start(opts, tx)?;
        let core = self.core.clone();
        let thread = std::thread::Builder::new()
            .name("logban-journal-filter".into())
            .spawn(move || journal_filter(rx, &mut filter, jail, &core))
            .map_err(|e| e.to_string())?;
        self.journals.insert(jail, (follower, thread));
        Ok(())
    }

    /// Stops every source and waits until what they read is handed over.
    pub fn stop(mut self) {
        self.watcher.stop();
        if let Some(r) = self.router.take() {
            let _ = r.join();
        }
        for (_, (follower, thread)) in self.journals.drain() {
            follower.stop();
            let _ = thread.join();
        }
    }
}

enum WorkerMsg {
    Add(Arc<Path>, Box<Member>, DateKey),
    Lines(Arc<Batch>),
    SetFilter(Arc<[WatchId]>, Arc<FileJail>),
    Drop(Arc<[WatchId]>),
}

/// Filter workers: as many as cores (at most 4), created as files appear.
/// The filters of one file are spread over them (a file's lines then go to
/// every worker that has one of its filters, each jail's always to the same
/// worker, so each jail sees its lines in order).
fn route(rx: Receiver<FileEvent>, watches: &Watches, ctl: &CtlQueue, core: Sender<Ingested>) {
    let max = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut workers: Vec<(SyncSender<WorkerMsg>, JoinHandle<()>)> = Vec::new();
    // Per file, the workers that have one of its filters.
    let mut routes: HashMap<Arc<Path>, Vec<usize>> = HashMap::new();
    let mut members = 0usize;
    for ev in rx {
        let changes = std::mem::take(&mut *ctl.lock().unwrap_or_else(|e| e.into_inner()));
        for c in changes {
            for (tx, _) in &workers {
                let msg = match &c {
                    Ctl::SetFilter(ids, jail) => WorkerMsg::SetFilter(ids.clone(), jail.clone()),
                    Ctl::Drop(ids) => WorkerMsg::Drop(ids.clone()),
                };
                let _ = tx.send(msg);
            }
        }
        match ev {
            FileEvent::Added { watch, path } => {
                let Some((jail, tail)) = watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&watch)
                    .map(|w| (w.jail.clone(), w.tail))
                else {
                    continue;
                };
                let spare = jail.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
                let filter =
                    match spare.map_or_else(|| Filter::new(&jail.filter, jail.opts.clone()), Ok) {
                        Ok(f) => f,
                        Err(e) => {
                            // Checked when the jail was built; only a filter that
                            // cannot be built twice gets here.
                            tracing::error!(target: "fail2ban.filter", "[{}] {e}", jail.name);
                            continue;
                        }
                    };
                let i = members % max;
                if i == workers.len() {
                    let (tx, wrx) = mpsc::sync_channel(QUEUE);
                    let c = core.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("logban-filter-{i}"))
                        .spawn(move || work(wrx, &c));
                    match spawned {
                        Ok(t) => workers.push((tx, t)),
                        Err(e) => {
                            tracing::error!(target: "fail2ban.filter", "cannot start a filter thread: {e}");
                            continue;
                        }
                    }
                }
                members += 1;
                let member =
                    Member::new(watch, &jail, tail, filter, own_start(&path, &jail.stored));
                let key = date_key(&jail);
                let _ = workers[i]
                    .0
                    .send(WorkerMsg::Add(path.clone(), Box::new(member), key));
                let r = routes.entry(path.clone()).or_default();
                if !r.contains(&i) {
                    r.push(i);
                }
                if core
                    .blocking_send(Ingested::FileAdded {
                        jail: jail.jail,
                        path,
                    })
                    .is_err()
                {
                    break;
                }
            }
            FileEvent::Lines(batch) => {
                let Some(r) = routes.get(&batch.path) else {
                    continue;
                };
                let batch = Arc::new(batch);
                for &i in r {
                    let _ = workers[i].0.send(WorkerMsg::Lines(batch.clone()));
                }
            }
        }
    }
    for (tx, thread) in workers {
        drop(tx);
        let _ = thread.join();
    }
}

fn work(rx: Receiver<WorkerMsg>, core: &Sender<Ingested>) {
    let mut groups: HashMap<Arc<Path>, FileGroup> = HashMap::new();
    for msg in rx {
        match msg {
            WorkerMsg::Add(path, member, key) => groups.entry(path).or_default().add(*member, key),
            WorkerMsg::SetFilter(ids, jail) => {
                for g in groups.values_mut() {
                    g.set_filter(&ids, &jail);
                }
            }
            WorkerMsg::Drop(ids) => {
                for g in groups.values_mut() {
                    g.members.retain(|m| !ids.contains(&m.watch));
                }
                groups.retain(|_, g| !g.members.is_empty());
            }
            WorkerMsg::Lines(batch) => {
                let Some(g) = groups.get_mut(&batch.path) else {
                    continue;
                };
                if !g.process(&batch, core) {
                    return;
                }
            }
        }
    }
}

/// Where a jail that shares a file had got to, if further than the start
/// of the file: the file's identity and the stored position (the source
/// module's rule: this path's position, else one stored under another path
/// for the same first line, valid while the first line is unchanged).
fn own_start(path: &Path, stored: &[(PathBuf, StoredPos)]) -> Option<(FileId, u64)> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let md5 = first_line_md5(&file).ok()?;
    let own = stored.iter().filter(|(p, _)| p == path);
    let others = stored.iter().filter(|(p, _)| p != path);
    let pos = own
        .chain(others)
        .find(|(_, s)| *s.firstlinemd5 == *md5 && s.pos <= meta.len())?
        .1
        .pos;
    let id = FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    (pos > 0).then_some((id, pos))
}

/// A member whose dates are not read by a shared detector.
const NO_SHARED_DATE: usize = usize::MAX;

/// One jail's filter on one file.
struct Member {
    watch: WatchId,
    jail: JailId,
    tail: bool,
    filter: Filter,
    /// Its date detector in the file group.
    date: usize,
    /// Lines of this file up to this offset were read before: skip them.
    skip: Option<(FileId, u64)>,
    in_operation: bool,
    found: Vec<Failure>,
}

impl Member {
    fn new(
        watch: WatchId,
        jail: &FileJail,
        tail: bool,
        filter: Filter,
        skip: Option<(FileId, u64)>,
    ) -> Member {
        Member {
            watch,
            jail: jail.jail,
            tail,
            filter,
            date: NO_SHARED_DATE,
            skip,
            in_operation: true,
            found: Vec::new(),
        }
    }

    /// Whether the line at file offset `end` (its end) was read before.
    fn skips(&mut self, file: FileId, end: u64) -> bool {
        match self.skip {
            Some((id, pos)) if id == file => {
                if end <= pos {
                    return true;
                }
                self.skip = None;
                false
            }
            _ => false,
        }
    }
}

/// How a filter reads dates: filters with the same key find the same date
/// in a line, so one detector serves them all.
type DateKey = (Option<String>, Option<String>);

fn date_key(jail: &FileJail) -> DateKey {
    (
        jail.filter.datepattern.clone(),
        jail.opts.logtimezone.clone(),
    )
}

/// The jails' filters on one file (those this worker holds), and one date
/// detector per way of reading dates among them.
#[derive(Default)]
struct FileGroup {
    members: Vec<Member>,
    active: Vec<bool>,
    dates: Vec<(DateKey, DateDetector)>,
    hits: Vec<Option<DateHit>>,
}

impl FileGroup {
    fn add(&mut self, mut m: Member, key: DateKey) {
        m.date = self.date_index(key);
        self.members.push(m);
    }

    /// The shared detector for `key`, created when it is the first.
    fn date_index(&mut self, key: DateKey) -> usize {
        match self.dates.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => match DateDetector::new(key.0.as_deref(), key.1.as_deref()) {
                Ok(d) => {
                    self.dates.push((key, d));
                    self.hits.push(None);
                    self.dates.len() - 1
                }
                // The filter built with it, so this does not happen; the
                // filter then finds its dates itself.
                Err(_) => NO_SHARED_DATE,
            },
        }
    }

    /// The members of `ids` take a filter built from `jail`, in the state
    /// (in operation or not) the old one was in.
    fn set_filter(&mut self, ids: &[WatchId], jail: &FileJail) {
        for i in 0..self.members.len() {
            if !ids.contains(&self.members[i].watch) {
                continue;
            }
            match Filter::new(&jail.filter, jail.opts.clone()) {
                Ok(mut f) => {
                    let key = date_key(jail);
                    let date = self.date_index(key);
                    let m = &mut self.members[i];
                    f.set_in_operation(m.in_operation);
                    m.filter = f;
                    m.date = date;
                }
                // Checked before the change was made.
                Err(e) => tracing::error!(target: "fail2ban.filter", "[{}] {e}", jail.name),
            }
        }
    }

    /// Runs the batch through the filters (of this worker) of the watches it
    /// is for; false when the core is gone.
    fn process(&mut self, batch: &Batch, core: &Sender<Ingested>) -> bool {
        let FileGroup {
            members,
            active,
            dates,
            hits,
        } = self;
        active.clear();
        for m in members.iter_mut() {
            let on = batch.watches.contains(&m.watch);
            active.push(on && !(batch.backlog && m.tail));
            if on && m.in_operation == batch.backlog {
                m.in_operation = !batch.backlog;
                m.filter.set_in_operation(m.in_operation);
            }
        }
        // One clock reading per batch: its lines were read together.
        let now = crate::util::now();
        for line in batch.lines() {
            for ((_, d), hit) in dates.iter_mut().zip(hits.iter_mut()) {
                *hit = d.find(line.text, now);
            }
            for (m, _) in members.iter_mut().zip(active.iter()).filter(|(_, a)| **a) {
                if m.skips(batch.file, line.end) {
                    continue;
                }
                match hits.get(m.date) {
                    Some(hit) => m
                        .filter
                        .process_line_found(line.text, *hit, now, &mut m.found),
                    None => m.filter.process_line(line.text, &mut m.found),
                };
            }
        }
        let mut position = batch.position().map(|p| Position {
            path: batch.path.to_string_lossy().into_owned(),
            hash: p.firstlinemd5,
            pos: p.pos,
        });
        let mut to = members
            .iter_mut()
            .filter(|m| batch.watches.contains(&m.watch))
            .peekable();
        while let Some(m) = to.next() {
            // A copy for each but the last (usually the only one).
            let position = match to.peek() {
                Some(_) => position.clone(),
                None => position.take(),
            };
            let msg = Ingested::Lines {
                jail: m.jail,
                failures: std::mem::take(&mut m.found),
                position,
            };
            if core.blocking_send(msg).is_err() {
                return false;
            }
        }
        true
    }
}

/// Runs a systemd jail's filter on its journal entries.
fn journal_filter(
    rx: Receiver<JournalEvent>,
    filter: &mut Filter,
    jail: JailId,
    core: &Sender<Ingested>,
) {
    let mut in_operation = true;
    let mut found = Vec::new();
    for ev in rx {
        if in_operation == ev.backlog {
            in_operation = !ev.backlog;
            filter.set_in_operation(in_operation);
        }
        let mut last = None;
        for e in &ev.entries {
            filter.process_dated(&iso_time(e.time), &e.line, e.time, &mut found);
            if let Some(c) = &e.cursor {
                last = Some((c, e.time));
            }
        }
        let position = last.map(|(cursor, time)| Position {
            path: JOURNAL_LOG.into(),
            hash: cursor.clone(),
            pos: time.max(0.0) as u64,
        });
        let msg = Ingested::Lines {
            jail,
            failures: std::mem::take(&mut found),
            position,
        };
        if core.blocking_send(msg).is_err() {
            return;
        }
    }
}

/// Python's `datetime.isoformat()` of a local time, as Fail2ban puts the
/// journal's time in front of an entry.
fn iso_time(t: f64) -> String {
    let Ok(ts) = jiff::Timestamp::from_microsecond((t * 1e6).round() as i64) else {
        return String::new();
    };
    let z = ts.to_zoned(jiff::tz::TimeZone::system());
    if z.subsec_nanosecond() / 1000 == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}
