//! The followed files: one [`FileFollower`] per path, shared by every watch
//! whose pattern matches it, plus the rotated-away files still being drained.
//! Deciding where to start, seeing rotation and truncation, and recovering
//! lines from a copytruncate copy all happen here; the watcher only says
//! which paths to look at and when.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cursor::{first_line_md5, tail_start, Batch, Change, Cursor, FileId, StoredPos, CHUNK};
use super::{glob, seek, WatchId};

/// One `logpath` entry of a jail: a path or a glob and how to start on the
/// files it matches when the watch is added.
pub struct LogPath {
    pub pattern: PathBuf,
    /// Fail2ban's ` tail` option: start at the end of files present now.
    pub tail: bool,
    /// Positions stored for this jail (`logs` rows): a file resumes at its
    /// own path's position when the first line's md5 still matches, else at a
    /// position stored for another path with that md5 (the file was renamed
    /// by rotation while we were down), else at its start.
    pub stored: Vec<(PathBuf, StoredPos)>,
    /// Skip, at start, lines older than a time (not with `tail`).
    pub seek: Option<SeekTime>,
}

/// Where reading starts in a file present at start: the first line dated at
/// or after `since` (epoch seconds), found by [`seek::seek_to_time`].
pub struct SeekTime {
    pub since: f64,
    /// The jail's date parser.
    pub date: DateParser,
}

/// Epoch seconds of a line's date, if it has one.
pub type DateParser = Box<dyn FnMut(&str) -> Option<f64> + Send>;

/// What the file watcher reports.
#[derive(Debug)]
pub enum FileEvent {
    /// `watch` now follows `path` (at add, or when a file matching its glob
    /// appears). Sent once per pair.
    Added { watch: WatchId, path: Arc<Path> },
    /// Lines read from a followed path.
    Lines(Batch),
}

pub(crate) type Sink<'a> = &'a mut dyn FnMut(FileEvent);

struct Watch {
    spec: LogPath,
    warned_empty: bool,
}

/// Reads one path for all the watches that follow it.
pub(crate) struct FileFollower {
    path: Arc<Path>,
    watches: Arc<[WatchId]>,
    /// Watches whose start settings apply at the first open (the path was
    /// matched when they were added); empty for files that appear later.
    initial: Vec<WatchId>,
    pub(crate) current: Option<Cursor>,
    warned: bool,
}

/// A rotated-away file, read until it has been quiet for a while (the writer
/// may not have reopened yet), or a copytruncate copy read to its end once.
struct Retired {
    cursor: Cursor,
    origin: Arc<Path>,
    quiet_since: Instant,
}

pub(crate) struct FileSet {
    watches: BTreeMap<WatchId, Watch>,
    pub(crate) followers: BTreeMap<Arc<Path>, FileFollower>,
    retired: Vec<Retired>,
    chunk: Vec<u8>,
    retire_after: Duration,
    /// A file was retired since the last `take_retired_flag`: followers that
    /// found it under another name may now open it.
    retired_flag: bool,
}

impl FileSet {
    pub fn new(retire_after: Duration) -> FileSet {
        FileSet {
            watches: BTreeMap::new(),
            followers: BTreeMap::new(),
            retired: Vec::new(),
            chunk: vec![0; CHUNK],
            retire_after,
            retired_flag: false,
        }
    }

    /// Adds a watch and subscribes it to the paths it matches now; returns
    /// the paths to poll.
    pub fn add(&mut self, id: WatchId, spec: LogPath, out: Sink) -> Vec<Arc<Path>> {
        let mut paths = glob::expand(&spec.pattern);
        if paths.is_empty() && !glob::is_glob(&spec.pattern) {
            // A literal path that does not exist yet is followed anyway:
            // Fail2ban refuses to start, we wait for the file.
            paths.push(spec.pattern.clone());
        }
        self.watches.insert(
            id,
            Watch {
                spec,
                warned_empty: false,
            },
        );
        self.subscribe(id, paths, true, out)
    }

    pub fn remove(&mut self, id: WatchId) {
        self.watches.remove(&id);
        let mut gone = Vec::new();
        for (path, f) in self.followers.iter_mut() {
            if f.watches.contains(&id) {
                f.watches = f.watches.iter().copied().filter(|w| *w != id).collect();
                f.initial.retain(|w| *w != id);
                if f.watches.is_empty() {
                    gone.push(path.clone());
                }
            }
        }
        for path in gone {
            self.followers.remove(&path);
            self.retired.retain(|r| r.origin != path);
        }
    }

    /// Expands the globs again; new matches are followed from their start.
    /// Returns the new paths.
    pub fn rescan(&mut self, dir: Option<&Path>, out: Sink) -> Vec<Arc<Path>> {
        let mut found = Vec::new();
        for (id, w) in self.watches.iter_mut() {
            if !glob::is_glob(&w.spec.pattern)
                || dir.is_some_and(|d| glob::watch_dir(&w.spec.pattern) != Some(d))
            {
                continue;
            }
            let paths = glob::expand(&w.spec.pattern);
            if paths.is_empty() && !w.warned_empty {
                tracing::warn!(
                    "no file matches {}; waiting for one",
                    w.spec.pattern.display()
                );
                w.warned_empty = true;
            }
            found.push((*id, paths));
        }
        let mut new = Vec::new();
        for (id, paths) in found {
            let paths: Vec<_> = paths
                .into_iter()
                .filter(|p| {
                    !self
                        .followers
                        .get(p.as_path())
                        .is_some_and(|f| f.watches.contains(&id))
                })
                .collect();
            new.extend(self.subscribe(id, paths, false, out));
        }
        new
    }

    fn subscribe(
        &mut self,
        id: WatchId,
        paths: Vec<PathBuf>,
        initial: bool,
        out: Sink,
    ) -> Vec<Arc<Path>> {
        let mut new = Vec::new();
        for path in paths {
            let f = self
                .followers
                .entry(Arc::from(path.as_path()))
                .or_insert_with_key(|p| FileFollower {
                    path: p.clone(),
                    watches: Arc::from([]),
                    initial: Vec::new(),
                    current: None,
                    warned: false,
                });
            if f.watches.contains(&id) {
                continue;
            }
            f.watches = f.watches.iter().copied().chain([id]).collect();
            if initial && f.current.is_none() {
                f.initial.push(id);
            }
            out(FileEvent::Added {
                watch: id,
                path: f.path.clone(),
            });
            new.push(f.path.clone());
        }
        new
    }

    pub fn take_retired_flag(&mut self) -> bool {
        std::mem::take(&mut self.retired_flag)
    }

    /// Paths of followers without an open file.
    pub fn idle_paths(&self) -> Vec<Arc<Path>> {
        self.followers
            .values()
            .filter(|f| f.current.is_none())
            .map(|f| f.path.clone())
            .collect()
    }

    pub fn all_paths(&self) -> Vec<Arc<Path>> {
        self.followers.keys().cloned().collect()
    }

    /// Every open file: its id, the path it is read under, and whether it is
    /// the file now at that path (else rotated away).
    pub fn open_files(&self) -> Vec<(FileId, Arc<Path>, bool)> {
        let current = self
            .followers
            .values()
            .filter_map(|f| Some((f.current.as_ref()?.id, f.path.clone(), true)));
        let retired = self
            .retired
            .iter()
            .map(|r| (r.cursor.id, r.origin.clone(), false));
        current.chain(retired).collect()
    }

    /// Directories whose entries matter: parents of followed paths and of globs.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .followers
            .keys()
            .filter_map(|p| p.parent())
            .chain(
                self.watches
                    .values()
                    .filter_map(|w| glob::watch_dir(&w.spec.pattern)),
            )
            .map(Path::to_path_buf)
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Reads everything new under `path`: the rest of files rotated away from
    /// it first, then the file now there (opening it, or following a
    /// rotation or truncation).
    pub fn poll(&mut self, path: &Path, out: Sink) {
        let FileSet {
            watches,
            followers,
            retired,
            chunk,
            retired_flag,
            ..
        } = self;
        let Some(f) = followers.get(path) else { return };
        for r in retired.iter_mut().filter(|r| &*r.origin == path) {
            if drain(&mut r.cursor, &f.path, &f.watches, false, chunk, out) {
                r.quiet_since = Instant::now();
            }
        }
        loop {
            if followers.get(path).is_some_and(|f| f.current.is_none()) {
                let others = others_open(followers, path);
                let f = followers.get_mut(path).expect("follower");
                match open(f, watches, retired, &others) {
                    Ok(Some(c)) => f.current = Some(c),
                    Ok(None) => return,
                    Err(e) => {
                        if !f.warned {
                            tracing::warn!(
                                "cannot read log file {}: {e}; waiting for it",
                                path.display()
                            );
                            f.warned = true;
                        }
                        return;
                    }
                }
            }
            let f = followers.get_mut(path).expect("follower");
            let c = f.current.as_mut().expect("cursor");
            let moved = match fs::metadata(path) {
                Ok(m) => FileId::of(&m) != c.id,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            };
            if moved {
                // Rotation by rename (or deletion): finish the old file, keep
                // it open for late writes, then look for the new one.
                drain(c, &f.path, &f.watches, false, chunk, out);
                tracing::info!("log rotation detected for {}", path.display());
                let cursor = f.current.take().expect("cursor");
                retired.push(Retired {
                    cursor,
                    origin: f.path.clone(),
                    quiet_since: Instant::now(),
                });
                *retired_flag = true;
                continue;
            }
            match c.check() {
                Ok(Change::Same) => {}
                Ok(Change::Truncated) => {
                    recover_copy(c, &f.path, &f.watches, chunk, out);
                    if let Err(e) = c.restart() {
                        tracing::warn!("cannot read log file {}: {e}", path.display());
                        f.current = None;
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot read log file {}: {e}", path.display());
                    return;
                }
            }
            drain(c, &f.path, &f.watches, true, chunk, out);
            if !std::mem::take(&mut c.stale) {
                return;
            }
        }
    }

    /// Closes rotated-away files that have been quiet for the grace time
    /// (after a last read). Returns the next time one expires.
    pub fn expire(&mut self, now: Instant, out: Sink) -> Option<Instant> {
        let FileSet {
            followers,
            retired,
            chunk,
            retire_after,
            ..
        } = self;
        let mut next: Option<Instant> = None;
        retired.retain_mut(|r| {
            let Some(f) = followers.get(&r.origin) else {
                return false;
            };
            if drain(&mut r.cursor, &f.path, &f.watches, false, chunk, out) {
                r.quiet_since = now;
            }
            let due = r.quiet_since + *retire_after;
            if due > now {
                next = Some(next.map_or(due, |n| n.min(due)));
                return true;
            }
            tracing::debug!("closing rotated-away file of {}", r.origin.display());
            false
        });
        next
    }
}

/// Reads every complete line available; returns whether there were any.
fn drain(
    c: &mut Cursor,
    path: &Arc<Path>,
    watches: &Arc<[WatchId]>,
    current: bool,
    chunk: &mut [u8],
    out: Sink,
) -> bool {
    let mut any = false;
    loop {
        match c.read_batch(path, watches, current, chunk) {
            Ok(Some(b)) => {
                any = true;
                out(FileEvent::Lines(b));
            }
            Ok(None) => return any,
            Err(e) => {
                tracing::warn!("error reading {}: {e}", path.display());
                return any;
            }
        }
    }
}

fn others_open(
    followers: &BTreeMap<Arc<Path>, FileFollower>,
    except: &Path,
) -> Vec<(FileId, Arc<Path>)> {
    followers
        .values()
        .filter(|f| &*f.path != except)
        .filter_map(|f| Some((f.current.as_ref()?.id, f.path.clone())))
        .collect()
}

/// Opens the file at the follower's path and decides where to start.
fn open(
    f: &mut FileFollower,
    watches: &mut BTreeMap<WatchId, Watch>,
    retired: &mut Vec<Retired>,
    others: &[(FileId, Arc<Path>)],
) -> io::Result<Option<Cursor>> {
    let file = match File::open(&f.path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !f.warned {
                tracing::warn!("log file {} not found; waiting for it", f.path.display());
                f.warned = true;
            }
            // A file that appears later is new: read it whole.
            f.initial.clear();
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let id = FileId::of(&meta);
    if let Some((_, other)) = others.iter().find(|(o, _)| *o == id) {
        tracing::debug!(
            "{} is the same file as {}: read once",
            f.path.display(),
            other.display()
        );
        return Ok(None);
    }
    if f.warned {
        tracing::info!("log file {} is there now", f.path.display());
        f.warned = false;
    }
    // Renamed here from a path we were reading (a rotation into a followed
    // name): carry on where that left off instead of reading it twice.
    if let Some(i) = retired.iter().position(|r| r.cursor.id == id) {
        let mut cursor = retired.remove(i).cursor;
        cursor.backlog = false;
        f.initial.clear();
        return Ok(Some(cursor));
    }
    let md5 = first_line_md5(&file)?;
    let size = meta.len();
    let mut start: Option<u64> = None;
    let mut backlog = false;
    for id in std::mem::take(&mut f.initial) {
        let Some(w) = watches.get_mut(&id) else {
            continue;
        };
        let pos = if w.spec.tail {
            tail_start(&file, size)?
        } else {
            backlog = true;
            let own = w
                .spec
                .stored
                .iter()
                .filter(|(p, _)| p.as_path() == &*f.path);
            let others = w
                .spec
                .stored
                .iter()
                .filter(|(p, _)| p.as_path() != &*f.path);
            let resume = own
                .chain(others)
                .find(|(_, s)| *s.firstlinemd5 == *md5 && s.pos <= size);
            let pos = resume.map_or(0, |(_, s)| s.pos);
            match w.spec.seek.as_mut() {
                Some(s) => seek::seek_to_time(&file, pos, size, s.since, &mut s.date)?,
                None => pos,
            }
        };
        start = Some(start.map_or(pos, |s| s.min(pos)));
    }
    let pos = start.unwrap_or(0);
    tracing::info!(
        "added logfile {} (pos = {pos}, hash = {md5})",
        f.path.display()
    );
    Cursor::new(file, id, pos, md5, backlog).map(Some)
}

/// After a truncation, reads what was appended before it from the copy
/// logrotate's `copytruncate` left beside the file (`NAME.1`, `NAME-DATE`,
/// not compressed yet), recognised by holding exactly the bytes we read up to
/// our position. Lines appended between logrotate's copy and its truncate are
/// in neither file: that race is logrotate's.
fn recover_copy(
    c: &mut Cursor,
    path: &Arc<Path>,
    watches: &Arc<[WatchId]>,
    chunk: &mut [u8],
    out: Sink,
) {
    let found = find_copy(path, c);
    let Some((file, id, copy)) = found else {
        tracing::info!(
            "log truncation detected for {} at offset {}",
            path.display(),
            c.pos
        );
        return;
    };
    let mut rc = c.continue_in(file, id);
    drain(&mut rc, path, watches, false, chunk, out);
    tracing::info!(
        "log truncation detected for {}; read the rest from {}",
        path.display(),
        copy.display()
    );
}

fn find_copy(path: &Path, c: &Cursor) -> Option<(File, FileId, PathBuf)> {
    const COMPRESSED: [&[u8]; 8] = [
        b".gz", b".bz2", b".xz", b".zst", b".lz4", b".lzma", b".Z", b".zip",
    ];
    if c.pos == 0 {
        return None;
    }
    let base = path.file_name()?.as_bytes();
    for entry in fs::read_dir(path.parent()?).ok()?.flatten() {
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.len() <= base.len()
            || !name.starts_with(base)
            || !matches!(name[base.len()], b'.' | b'-' | b'_')
            || COMPRESSED.iter().any(|s| name.ends_with(s))
        {
            continue;
        }
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        let id = FileId::of(&meta);
        if !meta.is_file() || id == c.id || meta.len() <= c.pos {
            continue;
        }
        if c.sig_matches(&file).unwrap_or(false)
            && first_line_md5(&file).ok().as_ref() == Some(&c.md5)
        {
            return Some((file, id, entry.path()));
        }
    }
    None
}
