//! The file watcher thread: tells the [`FileSet`] which paths to look at,
//! from inotify events (file and directory watches on one instance) or from
//! a polling timer, and sends what it reads on a channel.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::cursor::FileId;
use super::files::{FileEvent, FileSet, LogPath};
use super::WatchId;

/// How file changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileBackend {
    /// inotify, falling back to polling when it cannot be used.
    Inotify,
    /// `stat` every interval.
    Polling,
}

impl FileBackend {
    /// The file backend for a jail's `backend` value: `auto`, `pyinotify`
    /// and `gamin` use inotify, `polling` polls; None for anything else
    /// (`systemd` is the journal).
    pub fn from_name(name: &str) -> Option<FileBackend> {
        match name.trim() {
            "auto" | "pyinotify" | "gamin" => Some(FileBackend::Inotify),
            "polling" => Some(FileBackend::Polling),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatcherOptions {
    pub backend: FileBackend,
    /// Polling period (Fail2ban's 1 s); also how often missing directories
    /// and files whose inotify watch failed are looked at.
    pub interval: Duration,
    /// With inotify: period of a full check of every file and glob, in case
    /// an event was lost.
    pub rescan: Duration,
    /// How long a rotated-away file is kept open, after its last growth, for
    /// writers that have not reopened yet.
    pub retire_after: Duration,
}

impl Default for WatcherOptions {
    fn default() -> WatcherOptions {
        WatcherOptions {
            backend: FileBackend::Inotify,
            interval: Duration::from_secs(1),
            rescan: Duration::from_secs(10),
            retire_after: Duration::from_secs(10),
        }
    }
}

enum Command {
    Add(Vec<(WatchId, LogPath)>),
    Remove(WatchId),
}

/// Follows log files on its own thread; see the module docs of `source`.
pub struct FileWatcher {
    commands: Sender<Command>,
    wake: UnixStream,
    next_id: AtomicU32,
    backend: FileBackend,
    thread: Option<JoinHandle<()>>,
}

impl FileWatcher {
    /// Starts the thread. Events go to `events`; the thread blocks while the
    /// channel is full (positions then wait too), and ends when the receiver
    /// is dropped or on [`FileWatcher::stop`].
    pub fn start(opts: WatcherOptions, events: SyncSender<FileEvent>) -> io::Result<FileWatcher> {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        let notify = match opts.backend {
            FileBackend::Polling => None,
            FileBackend::Inotify => match Inotify::init() {
                Ok(i) => Some(Notify::new(i)),
                Err(e) => {
                    tracing::warn!("inotify unavailable ({e}): polling log files");
                    None
                }
            },
        };
        let backend = if notify.is_some() {
            FileBackend::Inotify
        } else {
            FileBackend::Polling
        };
        let (commands, rx) = mpsc::channel();
        let mut l = Loop {
            set: FileSet::new(opts.retire_after),
            notify,
            opts,
            events,
            closed: false,
            commands: rx,
            wake: wake_rx,
        };
        let thread = std::thread::Builder::new()
            .name("logban-files".into())
            .spawn(move || l.run())?;
        Ok(FileWatcher {
            commands,
            wake,
            next_id: AtomicU32::new(1),
            backend,
            thread: Some(thread),
        })
    }

    /// Follows the files `path` matches, now and later.
    pub fn add(&self, path: LogPath) -> WatchId {
        self.add_many(vec![path])[0]
    }

    /// Adds several watches at once: a file that more than one of them
    /// matches is opened with the start settings of all of them (a watch
    /// added after a file was opened joins it where it is).
    pub fn add_many(&self, paths: Vec<LogPath>) -> Vec<WatchId> {
        let specs: Vec<(WatchId, LogPath)> = paths
            .into_iter()
            .map(|p| (WatchId(self.next_id.fetch_add(1, Ordering::Relaxed)), p))
            .collect();
        let ids = specs.iter().map(|(id, _)| *id).collect();
        self.send(Command::Add(specs));
        ids
    }

    /// Stops following for `id`; files no other watch follows are closed.
    pub fn remove(&self, id: WatchId) {
        self.send(Command::Remove(id));
    }

    /// The backend in use (Polling when inotify could not be set up).
    pub fn backend(&self) -> FileBackend {
        self.backend
    }

    /// Stops the thread and waits for it. Drain or drop the receiver first if
    /// it may be full.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn send(&self, c: Command) {
        if self.commands.send(c).is_ok() {
            let _ = (&self.wake).write(&[1]);
        }
    }

    fn shutdown(&mut self) {
        let (dead, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, dead));
        let _ = (&self.wake).write(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Loop {
    set: FileSet,
    notify: Option<Notify>,
    opts: WatcherOptions,
    events: SyncSender<FileEvent>,
    closed: bool,
    commands: Receiver<Command>,
    wake: UnixStream,
}

/// What the next round must look at.
#[derive(Default)]
struct Work {
    paths: BTreeSet<Arc<Path>>,
    dirs: BTreeSet<PathBuf>,
    everything: bool,
}

impl Loop {
    fn run(&mut self) {
        let mut work = Work::default();
        let mut last_full: Option<Instant> = None;
        let mut next_expire: Option<Instant> = None;
        loop {
            let period = match &self.notify {
                Some(n) if !n.degraded => self.opts.rescan,
                _ => self.opts.interval,
            };
            let now = Instant::now();
            if last_full.map_or(true, |t| now >= t + period) {
                work.everything = true;
                last_full = Some(now);
            }
            let mut deadline = last_full.map_or(now, |t| t + period);
            if let Some(e) = next_expire {
                deadline = deadline.min(e);
            }
            let busy = work.everything || !work.paths.is_empty() || !work.dirs.is_empty();
            let timeout = if busy {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            if !self.wait(timeout) || !self.take_commands(&mut work) {
                return;
            }
            if let Some(n) = self.notify.as_mut() {
                n.read(&self.set, &mut work);
            }
            self.round(&mut work);
            next_expire = self
                .set
                .expire(Instant::now(), &mut sink(&self.events, &mut self.closed));
            if let Some(n) = self.notify.as_mut() {
                n.reconcile(&self.set, &mut work);
            }
            if self.closed {
                return;
            }
        }
    }

    /// Waits for a command, an inotify event or the timeout; false when the
    /// wake socket failed.
    fn wait(&mut self, timeout: Duration) -> bool {
        let mut fds = vec![libc::pollfd {
            fd: self.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(n) = &self.notify {
            fds.push(libc::pollfd {
                fd: n.inotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            tracing::error!("file watcher: poll failed: {}", io::Error::last_os_error());
            return false;
        }
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
        true
    }

    /// Applies queued commands; false when the watcher was stopped.
    fn take_commands(&mut self, work: &mut Work) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add(specs)) => {
                    for (id, spec) in specs {
                        let new = self
                            .set
                            .add(id, spec, &mut sink(&self.events, &mut self.closed));
                        work.paths.extend(new);
                    }
                }
                Ok(Command::Remove(id)) => self.set.remove(id),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn round(&mut self, work: &mut Work) {
        let mut out = sink(&self.events, &mut self.closed);
        if std::mem::take(&mut work.everything) {
            work.paths.extend(self.set.rescan(None, &mut out));
            work.paths.extend(self.set.all_paths());
            work.dirs.clear();
        }
        for dir in std::mem::take(&mut work.dirs) {
            work.paths.extend(self.set.rescan(Some(&dir), &mut out));
        }
        for path in std::mem::take(&mut work.paths) {
            self.set.poll(&path, &mut out);
        }
        // A file rotated away from one followed name may be another's now.
        while self.set.take_retired_flag() {
            for path in self.set.idle_paths() {
                self.set.poll(&path, &mut out);
            }
        }
    }
}

fn sink<'a>(events: &'a SyncSender<FileEvent>, closed: &'a mut bool) -> impl FnMut(FileEvent) + 'a {
    move |ev| {
        if !*closed && events.send(ev).is_err() {
            *closed = true;
        }
    }
}

enum Target {
    File(FileId),
    Dir(PathBuf),
}

/// The inotify instance: a watch on every open file (by inode, so a renamed
/// file keeps reporting) and on every directory where followed names live.
struct Notify {
    inotify: Inotify,
    files: HashMap<FileId, WatchDescriptor>,
    dirs: HashMap<PathBuf, WatchDescriptor>,
    targets: HashMap<WatchDescriptor, Target>,
    /// Some watch could not be added: poll everything every interval too.
    degraded: bool,
    buf: Vec<u8>,
}

const FILE_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::DELETE_SELF);
const DIR_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::ONLYDIR);

impl Notify {
    fn new(inotify: Inotify) -> Notify {
        Notify {
            inotify,
            files: HashMap::new(),
            dirs: HashMap::new(),
            targets: HashMap::new(),
            degraded: false,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Reads pending events into `work`.
    fn read(&mut self, set: &FileSet, work: &mut Work) {
        loop {
            let events = match self.inotify.read_events(&mut self.buf) {
                Ok(ev) => ev,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("inotify read failed: {e}");
                    work.everything = true;
                    return;
                }
            };
            let mut gone = Vec::new();
            let open = set.open_files();
            for ev in events {
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    work.everything = true;
                    continue;
                }
                match self.targets.get(&ev.wd) {
                    Some(Target::File(id)) => {
                        work.paths.extend(
                            open.iter()
                                .filter(|(f, _, _)| f == id)
                                .map(|(_, p, _)| p.clone()),
                        );
                    }
                    Some(Target::Dir(dir)) => {
                        if let Some(name) = ev.name {
                            let p = dir.join(name);
                            if let Some((k, _)) = set.followers.get_key_value(p.as_path()) {
                                work.paths.insert(k.clone());
                            }
                        }
                        work.dirs.insert(dir.clone());
                        if ev
                            .mask
                            .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF)
                        {
                            work.everything = true;
                        }
                    }
                    None => {}
                }
                if ev.mask.contains(EventMask::IGNORED) {
                    gone.push(ev.wd.clone());
                }
            }
            for wd in gone {
                match self.targets.remove(&wd) {
                    Some(Target::File(id)) => {
                        self.files.remove(&id);
                    }
                    Some(Target::Dir(d)) => {
                        self.dirs.remove(&d);
                    }
                    None => {}
                }
            }
        }
    }

    /// Adds watches for newly opened files and directories, drops the ones no
    /// longer needed. Paths and directories that got a new watch go back into
    /// `work`: what happened before the watch existed raised no event.
    fn reconcile(&mut self, set: &FileSet, work: &mut Work) {
        let open = set.open_files();
        let mut degraded = false;
        // Rotated-away files keep the watch they got while current.
        for (id, path, current) in &open {
            if !current || self.files.contains_key(id) {
                continue;
            }
            match self.inotify.watches().add(&**path, FILE_MASK) {
                Ok(wd) => {
                    // The path may name another file by now: leave that to
                    // the next poll of the path, which sees the rotation.
                    let now = std::fs::metadata(&**path).map(|m| FileId::of(&m)).ok();
                    if now != Some(*id) {
                        if !self.targets.contains_key(&wd) {
                            let _ = self.inotify.watches().remove(wd);
                        }
                    } else {
                        self.files.insert(*id, wd.clone());
                        self.targets.insert(wd, Target::File(*id));
                    }
                    work.paths.insert(path.clone());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    work.paths.insert(path.clone());
                }
                Err(e) => {
                    // Warned once per spell of polling (e.g. out of watches).
                    if !self.degraded {
                        tracing::warn!("inotify watch on {} failed ({e}): polling", path.display());
                    }
                    degraded = true;
                }
            }
        }
        self.files.retain(|id, wd| {
            let keep = open.iter().any(|(o, _, _)| o == id);
            if !keep {
                self.targets.remove(wd);
                let _ = self.inotify.watches().remove(wd.clone());
            }
            keep
        });
        let dirs = set.dirs();
        for dir in &dirs {
            if self.dirs.contains_key(dir) {
                continue;
            }
            match self.inotify.watches().add(dir, DIR_MASK) {
                Ok(wd) => {
                    self.dirs.insert(dir.clone(), wd.clone());
                    self.targets.insert(wd, Target::Dir(dir.clone()));
                    work.dirs.insert(dir.clone());
                    work.paths.extend(
                        set.idle_paths()
                            .into_iter()
                            .filter(|p| p.parent() == Some(dir)),
                    );
                }
                Err(e) => {
                    if e.kind() != io::ErrorKind::NotFound && !self.degraded {
                        tracing::warn!("inotify watch on {} failed ({e}): polling", dir.display());
                    }
                    degraded = true;
                }
            }
        }
        self.dirs.retain(|d, wd| {
            let keep = dirs.contains(d);
            if !keep {
                self.targets.remove(wd);
                let _ = self.inotify.watches().remove(wd.clone());
            }
            keep
        });
        self.degraded = degraded;
    }
}
