//! Reading complete lines from one open file: positions, partial lines,
//! overlong lines, lossy decoding, and the batches handed to the server.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

/// Longest line delivered, in bytes. A longer line is cut to this length (at a
/// character boundary) and the rest, up to its newline, is skipped with a
/// warning. Fail2ban has no limit; 64 KiB is far above what syslog daemons
/// write (rsyslog and journald cut at 8 KiB and 48 KiB) and keeps each
/// follower's memory bounded whatever a writer does.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Bytes read per `pread`; also the scratch buffer size.
pub(crate) const CHUNK: usize = 64 * 1024;

/// A batch is closed once its text reaches this size (or at end of file).
const BATCH_BYTES: usize = 64 * 1024;

/// Bytes remembered from just before the read position, to notice a file
/// rewritten in place (truncated, then grown past where we were).
const SIG_LEN: usize = 64;

/// How often the first line is hashed again, to see a file rewritten in
/// place with a new first line (Fail2ban's 30 s).
const MD5_RECHECK: Duration = Duration::from_secs(30);

/// Identity of a file: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A position to resume from, as Fail2ban stores it in `logs(firstlinemd5,
/// lastfilepos)`: valid only while the file's first line still has this md5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPos {
    pub pos: u64,
    /// Hex md5 of the first line including its newline; empty when the file
    /// had no complete line.
    pub firstlinemd5: String,
}

/// Complete lines read from one file, in file order.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The followed path the lines were read under.
    pub path: Arc<Path>,
    /// The watches (see `FileWatcher::add`) that follow `path`: every one of
    /// them should see these lines.
    pub watches: Arc<[super::WatchId]>,
    /// The file the lines came from.
    pub file: FileId,
    /// The lines come from the file now at `path`, so `position()` is what
    /// to store for it. False for the remains of a rotated-away file.
    pub current: bool,
    /// The lines were in the file when it was first opened (not tail): the
    /// server treats them like Fail2ban before "in operation" (old lines are
    /// ignored, not taken as happening now). Tail watches should drop them.
    pub backlog: bool,
    /// Md5 of the file's first line ("" while it has none), for storing.
    pub firstlinemd5: Arc<str>,
    text: String,
    lines: Vec<Span>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    end: u64,
}

/// One line of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line without its newline and trailing carriage returns; invalid
    /// UTF-8 replaced by U+FFFD.
    pub text: &'a str,
    /// File offset just after the line's newline: the position to store once
    /// this line is processed.
    pub end: u64,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn lines(&self) -> impl ExactSizeIterator<Item = Line<'_>> + '_ {
        self.lines.iter().map(|s| Line {
            text: &self.text[s.start as usize..(s.start + s.len) as usize],
            end: s.end,
        })
    }

    /// The position to store for `path` once every line is processed; None
    /// for lines of a rotated-away file.
    pub fn position(&self) -> Option<StoredPos> {
        let last = self.lines.last()?;
        self.current.then(|| StoredPos {
            pos: last.end,
            firstlinemd5: self.firstlinemd5.to_string(),
        })
    }

    fn push(&mut self, raw: &[u8], end: u64) {
        let mut raw = raw;
        while let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        let start = self.text.len();
        match std::str::from_utf8(raw) {
            Ok(s) => self.text.push_str(s),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(raw)),
        }
        let len = self.text.len() - start;
        self.lines.push(Span {
            start: start as u32,
            len: len as u32,
            end,
        });
    }

    fn full(&self) -> bool {
        self.text.len() >= BATCH_BYTES
    }
}

/// An open file being read: everything before `pos` has been delivered.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub file: File,
    pub id: FileId,
    /// Offset just after the last delivered line.
    pub pos: u64,
    /// Offset of the next byte to read (past `pending` and skipped bytes).
    read_pos: u64,
    /// The start of the line in progress (at most MAX_LINE_LEN bytes).
    pending: Vec<u8>,
    /// The line in progress outgrew MAX_LINE_LEN: drop bytes to its newline.
    skipping: bool,
    sig: [u8; SIG_LEN],
    sig_len: usize,
    pub md5: Arc<str>,
    pub backlog: bool,
    /// The last read found the file rewritten before the read position.
    pub stale: bool,
    /// When `md5` was last compared with the file.
    pub md5_at: Instant,
}

/// What `Cursor::check` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Same content as far as we read (maybe more after it).
    Same,
    /// Shorter than our read position, or rewritten before it.
    Truncated,
}

impl Cursor {
    /// A cursor at `pos`, which must be a line start.
    pub fn new(
        file: File,
        id: FileId,
        pos: u64,
        md5: Arc<str>,
        backlog: bool,
    ) -> io::Result<Cursor> {
        let mut c = Cursor {
            file,
            id,
            pos,
            read_pos: pos,
            pending: Vec::new(),
            skipping: false,
            sig: [0; SIG_LEN],
            sig_len: 0,
            md5,
            backlog,
            stale: false,
            md5_at: Instant::now(),
        };
        let n = (pos as usize).min(SIG_LEN);
        let mut sig = [0u8; SIG_LEN];
        read_full_at(&c.file, &mut sig[..n], pos - n as u64)?;
        c.push_sig(&sig[..n]);
        Ok(c)
    }

    /// Restarts at the beginning of a truncated file.
    pub fn restart(&mut self) -> io::Result<()> {
        self.pos = 0;
        self.read_pos = 0;
        self.pending.clear();
        self.skipping = false;
        self.sig_len = 0;
        self.md5 = first_line_md5(&self.file)?;
        self.md5_at = Instant::now();
        self.backlog = false;
        self.stale = false;
        Ok(())
    }

    /// Moves the reading state to `file` (a copy of this one).
    pub fn continue_in(&self, file: File, id: FileId) -> Cursor {
        Cursor {
            file,
            id,
            pos: self.pos,
            read_pos: self.read_pos,
            pending: self.pending.clone(),
            skipping: self.skipping,
            sig: self.sig,
            sig_len: self.sig_len,
            md5: self.md5.clone(),
            backlog: false,
            stale: false,
            md5_at: self.md5_at,
        }
    }

    pub fn check(&mut self) -> io::Result<Change> {
        let size = self.file.metadata()?.len();
        if size < self.read_pos || !self.sig_matches(&self.file)? {
            return Ok(Change::Truncated);
        }
        if !self.md5.is_empty() && self.md5_at.elapsed() >= MD5_RECHECK {
            self.md5_at = Instant::now();
            if first_line_md5(&self.file)? != self.md5 {
                return Ok(Change::Truncated);
            }
        }
        Ok(Change::Same)
    }

    /// Whether `file` holds the bytes this cursor read just before its read position.
    pub fn sig_matches(&self, file: &File) -> io::Result<bool> {
        let mut buf = [0u8; SIG_LEN];
        let want = &self.sig[SIG_LEN - self.sig_len..];
        let got = &mut buf[..self.sig_len];
        let n = read_full_at(file, got, self.read_pos - self.sig_len as u64)?;
        Ok(n == self.sig_len && got == want)
    }

    fn push_sig(&mut self, bytes: &[u8]) {
        if bytes.len() >= SIG_LEN {
            self.sig.copy_from_slice(&bytes[bytes.len() - SIG_LEN..]);
        } else {
            self.sig.copy_within(bytes.len().., 0);
            self.sig[SIG_LEN - bytes.len()..].copy_from_slice(bytes);
        }
        self.sig_len = (self.sig_len + bytes.len()).min(SIG_LEN);
    }

    /// Reads the next batch of complete lines, for `watches` following
    /// `path`; None when there is nothing new. `chunk` is scratch space of
    /// CHUNK bytes.
    pub fn read_batch(
        &mut self,
        path: &Arc<Path>,
        watches: &Arc<[super::WatchId]>,
        current: bool,
        chunk: &mut [u8],
    ) -> io::Result<Option<Batch>> {
        let mut batch = Batch {
            path: path.clone(),
            watches: watches.clone(),
            file: self.id,
            current,
            backlog: self.backlog,
            firstlinemd5: self.md5.clone(),
            text: String::new(),
            lines: Vec::new(),
        };
        while !batch.full() {
            let n = match self.file.read_at(chunk, self.read_pos) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                // First end of file: what follows is new.
                self.backlog = false;
                break;
            }
            // Truncated (and regrown) between the caller's check and this
            // read? Then the chunk is new content: leave it to the caller.
            if !self.sig_matches(&self.file)? {
                self.stale = true;
                break;
            }
            self.take(&chunk[..n], &mut batch);
        }
        if self.md5.is_empty() && self.pos > 0 {
            self.md5 = first_line_md5(&self.file)?;
            batch.firstlinemd5 = self.md5.clone();
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn take(&mut self, data: &[u8], batch: &mut Batch) {
        let base = self.read_pos;
        self.read_pos += data.len() as u64;
        self.push_sig(data);
        // One allocation for the chunk's lines instead of repeated doubling.
        batch.text.reserve(data.len());
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            let end = base + nl as u64 + 1;
            if self.pending.is_empty() && !self.skipping {
                batch.push(&data[start..nl], end);
            } else {
                self.keep(&data[start..nl], end);
                batch.push(&self.pending, end);
                self.pending.clear();
                self.skipping = false;
            }
            self.pos = end;
            start = nl + 1;
        }
        self.keep(&data[start..], self.read_pos);
    }

    /// Appends to the line in progress, cutting it at MAX_LINE_LEN.
    fn keep(&mut self, bytes: &[u8], offset: u64) {
        if self.skipping {
            return;
        }
        let room = MAX_LINE_LEN - self.pending.len();
        if bytes.len() <= room {
            self.pending.extend_from_slice(bytes);
            return;
        }
        self.pending.extend_from_slice(&bytes[..room]);
        // Cut at a character boundary so the kept part decodes cleanly.
        let cut = complete_prefix(&self.pending);
        self.pending.truncate(cut);
        self.skipping = true;
        tracing::warn!(
            "line at offset {} near {} is longer than {} bytes: cut",
            self.pos,
            offset,
            MAX_LINE_LEN
        );
    }
}

/// Length of `b` without a UTF-8 sequence cut short at its end.
fn complete_prefix(b: &[u8]) -> usize {
    let len = b.len();
    for back in 1..=len.min(4) {
        let i = len - back;
        let c = b[i];
        if c & 0xC0 != 0x80 {
            let width = match c {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            return if i + width > len { i } else { len };
        }
    }
    len
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], mut at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Fail2ban's `firstlinemd5`: hex md5 of the first line including its
/// newline; "" when the file has no complete line yet.
pub fn first_line_md5(file: &File) -> io::Result<Arc<str>> {
    let mut hasher = Md5::new();
    let mut buf = [0u8; 8192];
    let mut at = 0u64;
    loop {
        let n = read_full_at(file, &mut buf, at)?;
        if let Some(nl) = memchr::memchr(b'\n', &buf[..n]) {
            hasher.update(&buf[..=nl]);
            return Ok(format!("{:x}", hasher.finalize()).into());
        }
        if n < buf.len() {
            return Ok("".into());
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
}

/// Start of the last complete line's successor: where `tail` starts so that
/// a line being written when the file is opened is delivered whole.
pub(crate) fn tail_start(file: &File, size: u64) -> io::Result<u64> {
    let n = (size as usize).min(MAX_LINE_LEN);
    let mut buf = vec![0u8; n];
    let got = read_full_at(file, &mut buf, size - n as u64)?;
    Ok(match memchr::memrchr(b'\n', &buf[..got]) {
        Some(i) => size - n as u64 + i as u64 + 1,
        None if size as usize <= MAX_LINE_LEN => 0,
        None => size,
    })
}
