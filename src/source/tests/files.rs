//! File followers against real files in temp dirs, through the watcher
//! thread (real inotify, and the polling backend) or the FileSet directly
//! where a test needs to control when the file is looked at.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::source::cursor::Batch;
use crate::source::files::FileSet;
use crate::source::{
    first_line_md5, seek_to_time, FileBackend, FileEvent, FileWatcher, LogPath, SeekTime,
    StoredPos, WatchId, WatcherOptions, MAX_LINE_LEN,
};

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
struct Got {
    text: String,
    end: u64,
    path: PathBuf,
    current: bool,
    backlog: bool,
}

fn log_path(pattern: &Path) -> LogPath {
    LogPath {
        pattern: pattern.to_path_buf(),
        tail: false,
        stored: Vec::new(),
        seek: None,
    }
}

/// `pattern`, resuming `file` at `pos` if its first line still hashes to `md5`.
fn resumed(pattern: &Path, file: &Path, pos: u64, md5: String) -> LogPath {
    LogPath {
        stored: vec![(
            file.to_path_buf(),
            StoredPos {
                pos,
                firstlinemd5: md5,
            },
        )],
        ..log_path(pattern)
    }
}

fn md5_of(path: &Path) -> String {
    first_line_md5(&File::open(path).unwrap())
        .unwrap()
        .to_string()
}

fn opts(backend: FileBackend) -> WatcherOptions {
    WatcherOptions {
        backend,
        interval: Duration::from_millis(20),
        rescan: Duration::from_secs(10),
        retire_after: Duration::from_secs(5),
    }
}

struct Harness {
    backend: FileBackend,
    watcher: FileWatcher,
    rx: Receiver<FileEvent>,
    lines: Vec<Got>,
    added: Vec<(WatchId, PathBuf)>,
}

impl Harness {
    fn new(backend: FileBackend) -> Harness {
        let (tx, rx) = mpsc::sync_channel(16);
        let watcher = FileWatcher::start(opts(backend), tx).expect("start watcher");
        assert_eq!(watcher.backend(), backend, "inotify must be usable here");
        Harness {
            backend,
            watcher,
            rx,
            lines: Vec::new(),
            added: Vec::new(),
        }
    }

    fn take(&mut self, ev: FileEvent) {
        match ev {
            FileEvent::Added { watch, path } => self.added.push((watch, path.to_path_buf())),
            FileEvent::Lines(b) => {
                assert!(!b.is_empty());
                for l in b.lines() {
                    self.lines.push(Got {
                        text: l.text.to_string(),
                        end: l.end,
                        path: b.path.to_path_buf(),
                        current: b.current,
                        backlog: b.backlog,
                    });
                }
            }
        }
    }

    /// Receives until `done` holds, failing after DEADLINE.
    fn until(&mut self, what: &str, done: impl Fn(&Harness) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !done(self) {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) => self.take(ev),
                Err(_) => panic!(
                    "timed out waiting for {what}; got {} lines: {:?}",
                    self.lines.len(),
                    self.tail()
                ),
            }
        }
    }

    fn until_lines(&mut self, n: usize) {
        self.until(&format!("{n} lines"), |h| h.lines.len() >= n);
    }

    /// Everything already sent, after a watcher round that saw `marker`:
    /// appends a marker line and waits for it, so "nothing else arrived"
    /// is checked without sleeping.
    fn settle(&mut self, file: &Path, marker: &str) {
        append(file, format!("{marker}\n").as_bytes());
        self.until(marker, |h| h.lines.iter().any(|l| l.text == marker));
        let last = self.lines.pop().expect("marker");
        assert_eq!(last.text, marker, "marker must be the last line");
    }

    /// A harness following `name`, a new empty file in a new directory.
    fn with_new_log(backend: FileBackend, name: &str) -> (tempfile::TempDir, PathBuf, Harness) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        File::create(&path).unwrap();
        let h = Harness::new(backend);
        h.watcher.add(log_path(&path));
        (dir, path, h)
    }

    /// Waits for as many lines as `want` has, checks that nothing else
    /// arrives (see `settle`) and that they are `want`, in order.
    fn expect_all(&mut self, file: &Path, want: &[String]) {
        self.until_lines(want.len());
        self.settle(file, "marker");
        assert_eq!(
            self.texts(),
            want.iter().map(String::as_str).collect::<Vec<_>>(),
            "{:?}",
            self.backend
        );
    }

    fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }

    fn tail(&self) -> Vec<&str> {
        let t = self.texts();
        t[t.len().saturating_sub(5)..].to_vec()
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).expect("append");
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            format!(
                "2025-01-10T18:56:48 mail dovecot: line {i} from 192.0.2.{}",
                i % 250
            )
        })
        .collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.bytes().chain([b'\n']))
        .collect()
}

/// Writes `bytes` through `f` in uneven chunks (cutting lines anywhere),
/// yielding now and then so the watcher sees many partial states.
fn write_chunked(f: &mut File, bytes: &[u8], seed: usize) {
    let mut at = 0;
    let mut k = seed;
    while at < bytes.len() {
        k = k.wrapping_mul(1103515245).wrapping_add(12345) % (1 << 31);
        let n = (k % 97 + 1).min(bytes.len() - at);
        f.write_all(&bytes[at..at + n]).expect("write");
        at += n;
        if k % 7 == 0 {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
}

fn both(test: fn(FileBackend)) {
    test(FileBackend::Inotify);
    test(FileBackend::Polling);
}

#[test]
fn chunked_appends_arrive_once_in_order() {
    both(|backend| {
        let (_dir, path, mut h) = Harness::with_new_log(backend, "mail.log");
        let want = numbered(0..3000);
        let bytes = joined(&want);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write_chunked(&mut f, &bytes, 7);
        h.expect_all(&path, &want);
        assert_eq!(h.lines.last().unwrap().end, bytes.len() as u64);
        assert!(h.lines.iter().all(|l| l.current && l.path == path));
        // Positions are the offsets just after each line.
        let mut off = 0u64;
        for (l, w) in h.lines.iter().zip(&want) {
            off += w.len() as u64 + 1;
            assert_eq!(l.end, off);
        }
    });
}

#[test]
fn rename_and_create_rotation_while_writing() {
    both(|backend| {
        let (_dir, path, mut h) = Harness::with_new_log(backend, "mail.log");
        h.settle(&path, "start");
        let want = numbered(0..3000);
        for (part, lines) in want.chunks(1000).enumerate() {
            if part > 0 {
                // logrotate: rename the old file away, create a new one,
                // while the previous part may still be being read.
                fs::rename(&path, path.with_extension(format!("log.{part}"))).unwrap();
                File::create(&path).unwrap();
            }
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            write_chunked(&mut f, &joined(lines), part);
            // One rotation per look at the file (see the module docs).
            h.until_lines(part * 1000 + 1);
        }
        h.expect_all(&path, &want);
    });
}

#[test]
fn writes_to_the_old_file_after_rename_are_still_read() {
    both(|backend| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        let mut old = File::create(&path).unwrap();
        let mut h = Harness::new(backend);
        h.watcher.add(log_path(&path));
        let want = numbered(0..40);
        old.write_all(&joined(&want[..10])).unwrap();
        h.until_lines(10);
        // The daemon has not reopened yet: it keeps writing to the renamed file.
        fs::rename(&path, dir.path().join("mail.log.1")).unwrap();
        append(&path, &joined(&want[10..20]));
        h.until_lines(20);
        old.write_all(&joined(&want[20..30])).unwrap();
        h.until_lines(30);
        append(&path, &joined(&want[30..]));
        h.until_lines(40);
        h.settle(&path, "marker");
        let mut got = h.texts();
        got.sort();
        let mut all: Vec<&str> = want.iter().map(String::as_str).collect();
        all.sort();
        assert_eq!(got, all, "{backend:?}");
        for l in &h.lines {
            let late = want[20..30].contains(&l.text);
            assert_eq!(l.current, !late, "{l:?}");
            assert_eq!(l.path, path);
        }
    });
}

#[test]
fn copytruncate_while_writing_loses_nothing_when_the_copy_is_there() {
    both(|backend| {
        let (dir, path, mut h) = Harness::with_new_log(backend, "mail.log");
        h.settle(&path, "start");
        let want = numbered(0..3000);
        // The writer keeps one O_APPEND descriptor, as a daemon does.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        for (part, lines) in want.chunks(1000).enumerate() {
            if part > 0 {
                // logrotate copytruncate: copy, then truncate in place.
                fs::copy(&path, dir.path().join(format!("mail.log.{part}"))).unwrap();
                f.set_len(0).unwrap();
            }
            write_chunked(&mut f, &joined(lines), part + 3);
            h.until_lines(part * 1000 + 1);
        }
        h.expect_all(&path, &want);
    });
}

#[test]
fn truncation_is_seen_even_when_the_file_regrows_past_the_old_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, b"first 1\nfirst 2\n");
    let mut m = Manual::new(1, log_path(&path));
    // Truncated and rewritten with more than we had read before we look again.
    fs::write(&path, b"second 1 is longer\nsecond 2 is longer\n").unwrap();
    m.poll(&path);
    let texts = m.texts();
    assert_eq!(
        texts,
        [
            "first 1",
            "first 2",
            "second 1 is longer",
            "second 2 is longer"
        ]
    );
}

#[test]
fn a_new_first_line_is_seen_as_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let long = "b".repeat(100);
    append(&path, format!("aaa\n{long}\n").as_bytes());
    let mut m = Manual::new(1, log_path(&path));
    // Rewritten in place: same inode, same size, same bytes just before our
    // position; only the first line differs.
    let w = OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_at(&w, b"ccc", 0).unwrap();
    m.poll(&path);
    assert_eq!(
        m.got().len(),
        2,
        "the first line is hashed again only every 30 s"
    );
    let f = m.set.followers.get_mut(path.as_path()).unwrap();
    f.current.as_mut().unwrap().md5_at -= Duration::from_secs(31);
    m.poll(&path);
    let texts = m.texts();
    assert_eq!(texts, ["aaa", &long, "ccc", &long]);
}

#[test]
fn partial_last_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, b"one\ntw");
    let mut m = Manual::new(1, log_path(&path));
    m.poll(&path);
    append(&path, b"o\r\nthr");
    m.poll(&path);
    append(&path, b"ee\n");
    m.poll(&path);
    assert_eq!(
        m.lines(|end, _| end),
        [
            ("one".to_string(), 4),
            ("two".to_string(), 9),
            ("three".to_string(), 15)
        ]
    );
}

#[test]
fn resumes_from_a_stored_position_when_the_first_line_is_unchanged() {
    both(|backend| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        let want = numbered(0..20);
        fs::write(&path, joined(&want)).unwrap();
        let pos: u64 = want[..5].iter().map(|l| l.len() as u64 + 1).sum();
        let mut h = Harness::new(backend);
        h.watcher.add(resumed(&path, &path, pos, md5_of(&path)));
        h.expect_all(&path, &want[5..]);
        assert!(
            h.lines.iter().all(|l| l.backlog),
            "lines present at start are backlog"
        );

        // Same stored position, but the file was replaced: read it whole.
        let path2 = dir.path().join("other.log");
        let mut changed = want.clone();
        changed[0] = "a different first line".into();
        fs::write(&path2, joined(&changed)).unwrap();
        let mut h = Harness::new(backend);
        h.watcher.add(resumed(&path2, &path2, pos, md5_of(&path)));
        h.expect_all(&path2, &changed);
    });
}

#[test]
fn a_file_rotated_while_down_resumes_under_its_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let want = numbered(0..10);
    let rotated = dir.path().join("app.log.1");
    fs::write(&rotated, joined(&want)).unwrap();
    let pos: u64 = want[..7].iter().map(|l| l.len() as u64 + 1).sum();
    let mut h = Harness::new(FileBackend::Inotify);
    // Stored when the file was still called app.log.
    h.watcher.add(resumed(
        &dir.path().join("app.log*"),
        &dir.path().join("app.log"),
        pos,
        md5_of(&rotated),
    ));
    h.expect_all(&rotated, &want[7..]);
}

#[test]
fn a_missing_file_is_followed_once_it_appears() {
    both(|backend| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.log");
        let mut h = Harness::new(backend);
        let id = h.watcher.add(log_path(&path));
        h.until("added", |h| !h.added.is_empty());
        assert_eq!(h.added, [(id, path.clone())]);
        let want = numbered(0..50);
        let mut f = File::create(&path).unwrap();
        write_chunked(&mut f, &joined(&want), 1);
        h.expect_all(&path, &want);
    });
}

#[test]
fn a_missing_directory_is_followed_once_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/later.log");
    let mut h = Harness::new(FileBackend::Inotify);
    h.watcher.add(log_path(&path));
    h.until("added", |h| !h.added.is_empty());
    fs::create_dir(dir.path().join("sub")).unwrap();
    append(&path, b"hello\n");
    h.until_lines(1);
    assert_eq!(h.texts(), ["hello"]);
}

#[test]
fn a_glob_picks_up_files_that_appear_later() {
    both(|backend| {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        append(&a, b"a old\n");
        let mut h = Harness::new(backend);
        let id = h.watcher.add(log_path(&dir.path().join("*.log")));
        h.until_lines(1);
        let b = dir.path().join("b.log");
        append(&b, b"b 1\nb 2\n");
        fs::write(dir.path().join("c.txt"), b"not matched\n").unwrap();
        h.until_lines(3);
        append(&a, b"a new\n");
        h.until_lines(4);
        h.settle(&b, "marker");
        assert_eq!(h.added, [(id, a.clone()), (id, b.clone())]);
        let of = |p: &Path| {
            h.lines
                .iter()
                .filter(|l| l.path == p)
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(of(&a), ["a old", "a new"]);
        assert_eq!(of(&b), ["b 1", "b 2"]);
        assert!(h.lines.iter().all(|l| l.path != dir.path().join("c.txt")));
    });
}

#[test]
fn a_log_renamed_into_the_glob_is_not_read_twice() {
    both(|backend| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &joined(&numbered(0..5)));
        let mut h = Harness::new(backend);
        h.watcher.add(log_path(&dir.path().join("app.log*")));
        h.until_lines(5);
        fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&path, &joined(&numbered(5..10)));
        h.expect_all(&path, &numbered(0..10));
    });
}

#[test]
fn two_names_for_one_file_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    append(&path, b"one\n");
    std::os::unix::fs::symlink(&path, dir.path().join("link.log")).unwrap();
    let mut h = Harness::new(FileBackend::Inotify);
    h.watcher.add(log_path(&path));
    h.watcher.add(log_path(&dir.path().join("link.log")));
    h.until("both added", |h| h.added.len() == 2);
    h.settle(&path, "marker");
    assert_eq!(h.texts(), ["one"]);
}

#[test]
fn garbage_nul_bytes_invalid_utf8_and_a_5mb_line() {
    both(|backend| {
        let (_dir, path, mut h) = Harness::with_new_log(backend, "garbage.log");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"nul\0in\0line\n");
        bytes.extend_from_slice(b"bad \xff\xfe utf8 \xc3\n");
        bytes.extend_from_slice(b"crlf\r\n");
        bytes.extend_from_slice("caf\u{e9} ok\n".as_bytes());
        let huge_start = bytes.len();
        // 5 MB of multi-byte characters, so the cut falls inside one.
        let huge: String = "\u{e9}".repeat(5 * 1024 * 1024 / 2 + 1);
        bytes.extend_from_slice(huge.as_bytes());
        bytes.push(b'\n');
        let huge_end = bytes.len() as u64;
        bytes.extend_from_slice(b"after\n");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write_chunked_fast(&mut f, &bytes);
        h.until_lines(6);
        h.settle(&path, "marker");
        let t = h.texts();
        assert_eq!(t[0], "nul\0in\0line");
        assert_eq!(t[1], "bad \u{fffd}\u{fffd} utf8 \u{fffd}");
        assert_eq!(t[2], "crlf");
        assert_eq!(t[3], "caf\u{e9} ok");
        assert!(
            t[4].len() <= MAX_LINE_LEN && t[4].len() >= MAX_LINE_LEN - 3,
            "cut to the limit"
        );
        assert!(
            t[4].chars().all(|c| c == '\u{e9}'),
            "cut at a character boundary"
        );
        assert_eq!(h.lines[4].end, huge_end);
        assert_eq!(t[5], "after");
        assert_eq!(t.len(), 6);
        assert_eq!(h.lines[3].end, huge_start as u64);
    });
}

/// Large writes in 1 MB pieces (the 5 MB line arrives over several reads).
fn write_chunked_fast(f: &mut File, bytes: &[u8]) {
    for piece in bytes.chunks(1 << 20) {
        f.write_all(piece).unwrap();
    }
}

/// Polls a FileSet by hand, keeping the batches of lines.
struct Manual {
    set: FileSet,
    batches: Vec<Batch>,
}

impl Manual {
    fn new(id: u32, lp: LogPath) -> Manual {
        let mut set = FileSet::new(Duration::from_secs(10));
        let mut batches = Vec::new();
        let mut sink = keep(&mut batches);
        for p in set.add(WatchId(id), lp, &mut sink) {
            set.poll(&p, &mut sink);
        }
        drop(sink);
        Manual { set, batches }
    }

    fn poll(&mut self, path: &Path) {
        self.set.poll(path, &mut keep(&mut self.batches));
    }

    /// (text, backlog) of every line.
    fn got(&self) -> Vec<(String, bool)> {
        self.lines(|_, b| b.backlog)
    }

    fn texts(&self) -> Vec<String> {
        self.got().into_iter().map(|(t, _)| t).collect()
    }

    fn lines<T>(&self, with: impl Fn(u64, &Batch) -> T) -> Vec<(String, T)> {
        self.batches
            .iter()
            .flat_map(|b| b.lines().map(move |l| (l.text.to_string(), l.end, b)))
            .map(|(text, end, b)| (text, with(end, b)))
            .collect()
    }
}

fn keep(batches: &mut Vec<Batch>) -> impl FnMut(FileEvent) + '_ {
    |ev| {
        if let FileEvent::Lines(b) = ev {
            batches.push(b);
        }
    }
}

#[test]
fn tail_starts_after_the_last_complete_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    append(&path, b"old 1\nold 2\nbeing writ");
    let mut lp = log_path(&path);
    lp.tail = true;
    let mut m = Manual::new(1, lp);
    append(&path, b"ten\nnew\n");
    m.poll(&path);
    assert_eq!(
        m.got(),
        [
            ("being written".to_string(), false),
            ("new".to_string(), false)
        ]
    );
}

#[test]
fn backlog_ends_at_the_first_end_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    append(&path, b"old 1\nold 2\n");
    let later = dir.path().join("later.log");
    let mut m = Manual::new(1, log_path(&path));
    let mut l = Manual::new(2, log_path(&later));
    append(&path, b"new\n");
    m.poll(&path);
    append(&later, b"appeared\n");
    l.poll(&later);
    let t = |s: &str, b| (s.to_string(), b);
    assert_eq!(
        m.got(),
        [t("old 1", true), t("old 2", true), t("new", false)]
    );
    assert_eq!(
        l.got(),
        [t("appeared", false)],
        "a file that appears later is new"
    );
}

#[test]
fn start_skips_lines_older_than_findtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dated.log");
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("T={} event {i}", 1000 + i))
        .collect();
    fs::write(&path, joined(&lines)).unwrap();
    let mut h = Harness::new(FileBackend::Inotify);
    let mut lp = log_path(&path);
    lp.seek = Some(SeekTime {
        since: 1900.0,
        date: Box::new(parse_t),
    });
    h.watcher.add(lp);
    h.expect_all(&path, &lines[900..]);
}

fn parse_t(line: &str) -> Option<f64> {
    line.strip_prefix("T=")?.split(' ').next()?.parse().ok()
}

#[test]
fn seek_to_time_matches_a_linear_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dated.log");
    // Dated lines with repeats, undated lines between, and a long line.
    let mut lines = Vec::new();
    for i in 0..300u32 {
        lines.push(format!("T={} event {i}", 1000 + i / 3 * 2));
        if i % 17 == 0 {
            lines.push("  continuation without a date".to_string());
        }
        if i == 150 {
            lines.push(format!(
                "T={} {}",
                1000 + i / 3 * 2,
                "x".repeat(MAX_LINE_LEN + 10)
            ));
        }
    }
    let bytes = joined(&lines);
    fs::write(&path, &bytes).unwrap();
    let file = File::open(&path).unwrap();
    let mut starts = vec![0u64];
    for l in &lines {
        starts.push(starts.last().unwrap() + l.len() as u64 + 1);
    }
    for since in [
        0.0, 999.0, 1000.0, 1001.0, 1100.0, 1101.5, 1198.0, 1199.0, 2000.0,
    ] {
        let got = seek_to_time(&file, 0, bytes.len() as u64, since, &mut parse_t).unwrap();
        // First dated line at or after `since`, moved back over the undated
        // lines just before it (they belong to it).
        let first = lines
            .iter()
            .position(|l| parse_t(l).is_some_and(|t| t >= since));
        let want = match first {
            None => bytes.len() as u64,
            Some(mut i) => {
                while i > 0 && parse_t(&lines[i - 1]).is_none() {
                    i -= 1;
                }
                starts[i]
            }
        };
        assert_eq!(got, want, "since {since}");
    }
}

#[test]
fn removing_a_watch_stops_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    let mut h = Harness::new(FileBackend::Inotify);
    let ia = h.watcher.add(log_path(&a));
    h.watcher.add(log_path(&b));
    h.until("added", |h| h.added.len() == 2);
    append(&a, b"a 1\n");
    h.until_lines(1);
    // Let the round that read "a 1" finish before removing.
    h.settle(&b, "marker");
    h.watcher.remove(ia);
    append(&a, b"a 2\n");
    h.settle(&b, "marker");
    assert_eq!(h.texts(), ["a 1"]);
}

#[test]
fn first_line_md5_is_fail2bans() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    fs::write(&path, b"hello\nworld\n").unwrap();
    // md5(b"hello\n"), the newline included as in Fail2ban's readline().
    assert_eq!(
        &*first_line_md5(&File::open(&path).unwrap()).unwrap(),
        "b1946ac92492d2347c6235b4d2611184"
    );
    fs::write(&path, b"no newline yet").unwrap();
    assert_eq!(&*first_line_md5(&File::open(&path).unwrap()).unwrap(), "");
}

#[test]
fn batches_carry_the_position_to_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    append(&path, b"one\ntwo\n");
    let m = Manual::new(3, log_path(&path));
    let b = &m.batches[0];
    assert_eq!(&*b.watches, [WatchId(3)]);
    assert_eq!(&*b.path, path.as_path());
    let md5 = md5_of(&path);
    assert_eq!(
        b.position(),
        Some(StoredPos {
            pos: 8,
            firstlinemd5: md5
        })
    );
}

#[test]
fn backend_names() {
    for name in ["auto", "pyinotify", "gamin", " auto "] {
        assert_eq!(
            FileBackend::from_name(name),
            Some(FileBackend::Inotify),
            "{name}"
        );
    }
    assert_eq!(
        FileBackend::from_name("polling"),
        Some(FileBackend::Polling)
    );
    assert_eq!(FileBackend::from_name("systemd"), None);
    assert_eq!(FileBackend::from_name("bogus"), None);
}
