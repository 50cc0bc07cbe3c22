//! Log sources: file followers (inotify with a polling fallback, rotation,
//! stored positions) and the systemd journal. Each log is read once for all the
//! jails that watch it.
//!
//! Files: one [`FileWatcher`] thread follows every `logpath` of every jail,
//! with one follower per distinct path (and per file: two names for one inode
//! are read once) and one inotify instance for all of them: a single fd to
//! wait on, one read drains the events of every file, and the per-user limit
//! of 128 instances is not spent per jail. Lines arrive as [`Batch`]es on a
//! channel, each line with the position to store after it.
//!
//! What is guaranteed, per followed path:
//! - Only complete lines are delivered, in file order, each once. A partial
//!   last line waits for its newline; a line longer than [`MAX_LINE_LEN`] is
//!   cut; invalid UTF-8 is replaced.
//! - Rename + create rotation: the old file is read to its end before the
//!   new one, and stays open (read on its own events) until it has been quiet
//!   for `retire_after`, for writers that reopen late. A renamed file that a
//!   glob also matches carries on from where it was, not from its start.
//! - copytruncate: lines read before the truncation are not read again; the
//!   rest of the old content is read from logrotate's copy (`NAME.1`,
//!   `NAME-DATE`, uncompressed) when it is there. Lost only: lines appended
//!   between logrotate's copy and its truncate (in neither file), and with
//!   `compress` but no `delaycompress`, the unread rest once the copy is
//!   compressed. Truncation is also seen when the file regrows past our
//!   position before we look (the bytes before it are compared). Without a
//!   copy, a partial last line cut by the truncation is dropped.
//! - A file created and rotated away again before the follower looks at it
//!   (two rotations within one poll interval or one burst of events) is not
//!   read.
//! - Missing files are warned about and followed when they appear (read from
//!   their start: they are new); globs are expanded again on events in their
//!   directory (when it is a fixed path) and at every rescan.
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
pub use files::{DateParser, FileEvent, LogPath, SeekTime};
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
