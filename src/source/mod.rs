//! Log sources: file followers (inotify with a polling fallback, rotation,
//! stored positions) and the systemd journal. Each log is read once for all the
//! jails that watch it.
//!
//! Files: one [`FileWatcher`] thread follows every `logpath` of every jail,
//! one [`files::FileFollower`] per distinct path, one inotify instance for
//! all (a single fd to poll, one read drains events for every file, and the
//! per-user instance limit, 128 by default, is not spent per jail). Lines
//! arrive as [`Batch`]es on a channel, each line with the position to store
//! after it. Only complete lines are delivered, each exactly once across
//! rename and copytruncate rotation.
//!
//! Journal: [`JournalFollower`] runs `journalctl -o json -f` per jail and
//! rebuilds Fail2ban's `HOST IDENT[PID]: MESSAGE` lines.

mod cursor;
mod files;
mod glob;
mod journal;
mod seek;
mod watcher;

pub use cursor::{first_line_md5, Batch, FileId, Line, StoredPos, MAX_LINE_LEN};
pub use files::{FileEvent, LogPath, SeekTime};
pub use journal::{
    format_entry, journal_args, JournalEntry, JournalEvent, JournalFollower, JournalOptions,
};
pub use seek::seek_to_time;
pub use watcher::{FileBackend, FileWatcher, WatcherOptions};

/// Names a [`LogPath`] added to a [`FileWatcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(pub u32);

#[cfg(test)]
mod tests;
