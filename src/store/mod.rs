//! SQLite persistence in Fail2ban's schema (version 4): jails, log positions,
//! ban history and the active bans restored at start.
//!
//! A [`Store`] is one connection owned by one thread; every method is synchronous and
//! every write is its own transaction, committed before the method returns. The file is
//! interchangeable with Fail2ban's `fail2ban.sqlite3` in both directions.

mod schema;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{
    FromSql, FromSqlError, FromSqlResult, ToSqlOutput, Value as SqlValue, ValueRef,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde_json::{Map, Value};

pub use schema::VERSION as SCHEMA_VERSION;

/// Fail2ban's default `dbmaxmatches`: matches kept in the `data` of a stored ban.
pub const DEFAULT_MAX_MATCHES: usize = 10;
/// Fail2ban's default `dbpurgeage`: one day, in seconds.
pub const DEFAULT_PURGE_AGE: i64 = 24 * 60 * 60;
/// A `bips` row outlives its ban by this factor of its ban time before purge removes
/// it, so that `bantime.increment` still finds recent offenders (Fail2ban's default).
const OUTDATED_FACTOR: i64 = 3;
/// Ban time of bans upgraded from schema version 2, which did not record one.
pub const UNKNOWN_BANTIME: i64 = -2;
/// Ban time of a permanent ban.
pub const PERMANENT: i64 = -1;

/// Errors name the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {}: schema version {version} is newer than version {SCHEMA_VERSION}, \
         the newest this program reads",
        path.display()
    )]
    FutureVersion { path: PathBuf, version: i64 },
    #[error(
        "database {}: not a Fail2ban database (it has tables but no fail2banDb table)",
        path.display()
    )]
    Foreign { path: PathBuf },
    #[error("database {}: backup to {} before the schema upgrade failed: {source}", path.display(), backup.display())]
    Backup {
        path: PathBuf,
        backup: PathBuf,
        source: rusqlite::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One ban as Fail2ban stores it, in the `bans` history and in `bips` (the latest ban
/// of an address in a jail).
#[derive(Debug, Clone, PartialEq)]
pub struct BanRecord {
    pub jail: String,
    /// An address or a subnet in CIDR form, as text.
    pub ip: String,
    /// Start of the ban, seconds since the epoch.
    pub timeofban: i64,
    /// Seconds; [`PERMANENT`] (-1) for ever, [`UNKNOWN_BANTIME`] (-2) after an upgrade.
    pub bantime: i64,
    /// How many times the address has been banned (`bantime.increment`).
    pub bancount: i64,
    /// Fail2ban's ticket data: an object with `matches` (log lines), `failures` and
    /// whatever else the ticket carried.
    pub data: Value,
}

impl BanRecord {
    /// Failures behind the ban (`data.failures`).
    pub fn failures(&self) -> Option<i64> {
        self.data.get("failures").and_then(Value::as_i64)
    }

    /// The matched log lines (`data.matches`), parts of split lines joined.
    pub fn matches(&self) -> Vec<String> {
        match_lines(&self.data)
    }
}

/// The bans of one address merged into one ticket, as Fail2ban's `getBansMerged` gives
/// them to actions (`<ipmatches>`, `<ipfailures>`, `<ipjailmatches>`...).
#[derive(Debug, Clone, PartialEq)]
pub struct MergedBans {
    pub ip: String,
    /// Start of the oldest ban.
    pub timeofban: i64,
    /// All keys of the bans' data (older bans override newer for other keys), with
    /// `failures` summed and the newest `matches` (at most the store's max matches).
    pub data: Value,
}

impl MergedBans {
    pub fn failures(&self) -> i64 {
        self.data
            .get("failures")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    pub fn matches(&self) -> Vec<String> {
        match_lines(&self.data)
    }
}

#[cfg(test)]
/// How often an address was banned, as Fail2ban's `getBan` reads `bips` for
/// `bantime.increment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanCount {
    /// Ban count in the jail, or the sum over all jails.
    pub bancount: i64,
    /// Start of the latest ban.
    pub timeofban: i64,
    /// Ban time of the latest ban in the jail; over all jails the sum of the jails'
    /// ban times, as Fail2ban returns it (Fail2ban itself does not use it).
    pub bantime: i64,
}

/// A log position: where reading resumes when the first line is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    /// md5 of the file's first line (hex), or the journal's ISO time.
    pub firstlinemd5: Option<String>,
    pub lastfilepos: u64,
}

/// The rules of Fail2ban's restore of the bans still active at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restore {
    pub now: i64,
    /// Only bans started less than this many seconds before `now` (Fail2ban's
    /// `forbantime`: the jail's bantime unless `bantime.increment`); `None` or -1: all.
    pub within: Option<i64>,
    /// The jail's bantime, which replaces the unknown ban time of upgraded bans.
    pub jail_bantime: i64,
    /// The longest ban the jail gives now (`bantime.maxtime` with increment, else
    /// `bantime`): longer and permanent bans are shortened to it. `None` or -1: no limit.
    pub max_bantime: Option<i64>,
    /// Matches kept per ban (the jail's `maxmatches`); 0 drops them; `None`: the
    /// store's max matches.
    pub max_matches: Option<usize>,
}

impl Restore {
    /// Every ban active at `now`, ban times as stored (Fail2ban's fallback of 600 s for
    /// upgraded bans of unknown ban time).
    pub fn at(now: i64) -> Restore {
        Restore {
            now,
            within: None,
            jail_bantime: 600,
            max_bantime: None,
            max_matches: None,
        }
    }
}

/// Rows removed by [`Store::purge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub bans: usize,
    pub bips: usize,
    pub jails: usize,
}

/// The database: one connection, used from one thread (it may move to that thread).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    max_matches: usize,
    purge_age: i64,
}

// The server moves the store into the thread that owns it.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Store>();
};

impl Store {
    /// Opens a Fail2ban database, creating it (schema version 4) if the file is new or
    /// empty and upgrading it (after a backup to `<path>.<YYYYmmdd-HHMMSS>`, as Fail2ban
    /// does) if it is of an older version. Refuses a newer version, a database without
    /// Fail2ban's tables and a file that is not SQLite. `":memory:"` opens a private
    /// in-memory database.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(sqlite)?;
        // Another process (fail2ban, the sqlite3 shell) may hold a lock for a moment.
        conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite)?;

        let found = schema::inspect(&conn).map_err(sqlite)?;
        match found {
            schema::Found::Foreign => return Err(StoreError::Foreign { path }),
            schema::Found::Version(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::FutureVersion { path, version: v })
            }
            schema::Found::Version(v) if v < SCHEMA_VERSION => backup(&conn, &path)?,
            _ => {}
        }

        // Durability: a ban is reported only after its commit returns, and it must
        // survive a crash of this process (kill -9, OOM, panic). In WAL mode a commit
        // write()s its frames to the WAL before returning, so the OS holds them whatever
        // happens to the process; `synchronous = NORMAL` defers only the fsync to the
        // checkpoint. Power loss can therefore roll back the last transactions (never
        // corrupt the file); the firewall's kernel rules die with the power as well, so
        // this costs no more than the fsync per batch that FULL would add to every ban.
        // Fail2ban itself runs with `synchronous = OFF` and an in-memory journal, which
        // can corrupt the file on a crash. WAL also lets readers (the sqlite3 shell)
        // look while the server writes.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sqlite)?;
        if mode != "wal" && mode != "memory" {
            tracing::warn!(
                "database {}: journal mode {mode} instead of WAL",
                path.display()
            );
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        match found {
            schema::Found::Version(v) if v < SCHEMA_VERSION => {
                schema::upgrade(&tx, v).map_err(sqlite)?;
                tracing::warn!(
                    "database {}: upgraded from schema version {v} to {SCHEMA_VERSION}",
                    path.display()
                );
            }
            _ => schema::create(&tx).map_err(sqlite)?,
        }
        tx.commit().map_err(sqlite)?;

        Ok(Store {
            conn,
            path,
            max_matches: DEFAULT_MAX_MATCHES,
            purge_age: DEFAULT_PURGE_AGE,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `dbmaxmatches`: matches kept in the data of each stored ban (the newest);
    /// 0 stores none.
    pub fn set_max_matches(&mut self, n: usize) {
        self.max_matches = n;
    }

    pub fn max_matches(&self) -> usize {
        self.max_matches
    }

    /// `dbpurgeage` in seconds: [`purge`](Store::purge) removes bans older than this.
    pub fn set_purge_age(&mut self, seconds: i64) {
        self.purge_age = seconds;
    }

    pub fn purge_age(&self) -> i64 {
        self.purge_age
    }

    /// Adds a jail, or enables it again.
    pub fn add_jail(&mut self, name: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO jails(name, enabled) VALUES(?1, 1)
                 ON CONFLICT(name) DO UPDATE SET enabled = 1 WHERE enabled != 1",
                [name],
            )?;
            Ok(())
        })
    }

    /// Marks a jail disabled (stopped); purge deletes it once it has no bans left.
    pub fn disable_jail(&mut self, name: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE jails SET enabled = 0 WHERE name = ?1", [name])?;
            Ok(())
        })
    }

    /// Marks every jail disabled, as the server does before (re)loading its jails.
    pub fn disable_all_jails(&mut self) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE jails SET enabled = 0", [])?;
            Ok(())
        })
    }

    #[cfg(test)]
    /// Names of the jails, sorted: all of them, or the enabled or disabled ones.
    pub fn jail_names(&mut self, enabled: Option<bool>) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name FROM jails WHERE ?1 IS NULL OR enabled = ?1 ORDER BY name",
            )?;
            let names = stmt.query_map([enabled], |r| r.get(0))?;
            names.collect()
        })
    }

    /// The stored position of a log of a jail.
    pub fn log_position(&mut self, jail: &str, path: &str) -> Result<Option<LogPosition>> {
        self.read(|conn| log_row(conn, jail, path))
    }

    #[cfg(test)]
    /// Registers a log as a jail starts following it, with the md5 of its first line
    /// and the position it would start at, and tells where to resume: the stored
    /// position if the first line is unchanged (or `firstlinemd5` is `None`), else
    /// `None`. Records the log if it was not known yet, as Fail2ban's `addLog` does.
    pub fn add_log(
        &mut self,
        jail: &str,
        path: &str,
        firstlinemd5: Option<&str>,
        pos: u64,
    ) -> Result<Option<u64>> {
        self.write(|tx| {
            let stored = log_row(tx, jail, path)?;
            let known_md5 = stored.as_ref().and_then(|s| s.firstlinemd5.as_deref());
            if known_md5.is_none() && (pos != 0 || firstlinemd5.is_some()) {
                put_log(tx, jail, path, firstlinemd5, pos)?;
            }
            Ok(match (stored, firstlinemd5) {
                (Some(s), Some(md5)) if s.firstlinemd5.as_deref() != Some(md5) => None,
                (stored, _) => stored.map(|s| s.lastfilepos),
            })
        })
    }

    /// Stores the position reached in a log and the md5 of its first line.
    pub fn set_log_position(
        &mut self,
        jail: &str,
        path: &str,
        firstlinemd5: Option<&str>,
        pos: u64,
    ) -> Result<()> {
        self.write(|tx| put_log(tx, jail, path, firstlinemd5, pos))
    }

    /// Paths of the logs of a jail, or of all jails, sorted and without repeats.
    pub fn log_paths(&mut self, jail: Option<&str>) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT path FROM logs WHERE (?1 IS NULL OR jail = ?1)
                 AND path IS NOT NULL ORDER BY path",
            )?;
            let paths = stmt.query_map([jail], |r| r.get(0))?;
            paths.collect()
        })
    }

    #[cfg(test)]
    /// Stores one ban: see [`add_bans`](Store::add_bans).
    pub fn add_ban(&mut self, ban: &BanRecord) -> Result<()> {
        self.add_bans(std::slice::from_ref(ban))
    }

    /// Stores bans in one transaction: each is appended to the `bans` history and
    /// replaces the latest ban of its address in its jail (`bips`). Matches beyond the
    /// store's max matches are dropped (the oldest first). The jails must have been
    /// added. When this returns `Ok` the bans are committed and may be reported; on
    /// error none of them is stored.
    pub fn add_bans(&mut self, bans: &[BanRecord]) -> Result<()> {
        let max_matches = self.max_matches;
        self.write(|tx| {
            let mut history = tx.prepare_cached(
                "INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut latest = tx.prepare_cached(
                "INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut json = Vec::new();
            for ban in bans {
                json.clear();
                write_json(&mut json, &stored_data(&ban.data, max_matches));
                // Fail2ban's adapter writes the JSON as bytes; text reads the same to it
                // and stays readable to SQLite's JSON functions.
                let data = std::str::from_utf8(&json).expect("serde_json writes UTF-8");
                history.execute(params![
                    ban.jail,
                    ban.ip,
                    ban.timeofban,
                    ban.bantime,
                    ban.bancount,
                    data
                ])?;
                latest.execute(params![
                    ban.ip,
                    ban.jail,
                    ban.timeofban,
                    ban.bantime,
                    ban.bancount,
                    data
                ])?;
            }
            Ok(())
        })
    }

    /// Forgets addresses in a jail, history and ban count included, as Fail2ban does
    /// on `unbanip` (not when a ban merely expires). Returns how many were banned.
    pub fn remove_bans<S: AsRef<str>>(&mut self, jail: &str, ips: &[S]) -> Result<usize> {
        self.write(|tx| {
            let mut latest = tx.prepare_cached("DELETE FROM bips WHERE jail = ?1 AND ip = ?2")?;
            let mut history = tx.prepare_cached("DELETE FROM bans WHERE jail = ?1 AND ip = ?2")?;
            let mut removed = 0;
            for ip in ips {
                removed += latest.execute([jail, ip.as_ref()])?;
                history.execute([jail, ip.as_ref()])?;
            }
            Ok(removed)
        })
    }

    /// Forgets every ban of a jail (`unban --all`, a flush). Returns how many
    /// addresses were banned.
    pub fn remove_all_bans(&mut self, jail: &str) -> Result<usize> {
        self.write(|tx| {
            let removed = tx.execute("DELETE FROM bips WHERE jail = ?1", [jail])?;
            tx.execute("DELETE FROM bans WHERE jail = ?1", [jail])?;
            Ok(removed)
        })
    }

    /// The bans of a jail still active at `q.now` (permanent bans always are), one per
    /// address, sorted by address, with their ban time corrected and matches trimmed as
    /// Fail2ban's `getCurrentBans` does when a jail restores its bans at start.
    pub fn current_bans(&mut self, jail: &str, q: &Restore) -> Result<Vec<BanRecord>> {
        let max_matches = q.max_matches.unwrap_or(self.max_matches);
        let within = q.within.filter(|&w| w != PERMANENT);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT jail, ip, timeofban, bantime, bancount, data FROM bips
                 WHERE jail = ?1 AND (timeofban + bantime > ?2 OR bantime <= -1)
                 AND (?3 IS NULL OR timeofban > ?2 - ?3)
                 ORDER BY ip",
            )?;
            let rows = stmt.query_map(params![jail, q.now, within], ban_record)?;
            let mut bans = Vec::new();
            for ban in rows {
                let mut ban = ban?;
                if ban.bantime == UNKNOWN_BANTIME {
                    ban.bantime = q.jail_bantime;
                } else if let Some(max) = q.max_bantime.filter(|&m| m >= 0) {
                    if ban.bantime == PERMANENT || ban.bantime > max {
                        ban.bantime = max;
                    }
                }
                if ban.bantime != PERMANENT && ban.timeofban.saturating_add(ban.bantime) <= q.now {
                    continue;
                }
                if let Cow::Owned(data) = stored_data(&ban.data, max_matches) {
                    ban.data = data;
                }
                bans.push(ban);
            }
            Ok(bans)
        })
    }

    /// The ban history (`bans`), newest first per address, addresses sorted; for one
    /// jail and/or one address, or all.
    pub fn history(&mut self, jail: Option<&str>, ip: Option<&str>) -> Result<Vec<BanRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&history_query(jail, ip))?;
            let rows = stmt.query_map(
                rusqlite::params_from_iter(jail.into_iter().chain(ip)),
                ban_record,
            )?;
            rows.collect()
        })
    }

    #[cfg(test)]
    /// The bans of an address in a jail or in all jails, as Fail2ban's `getBan` gives
    /// them to `bantime.increment`: `None` if the address was not banned (or was
    /// purged or unbanned since).
    pub fn ban_count(&mut self, ip: &str, jail: Option<&str>) -> Result<Option<BanCount>> {
        self.read(|conn| {
            let count = |r: &Row| {
                Ok(BanCount {
                    bancount: r.get::<_, Int>(0)?.0,
                    timeofban: r.get::<_, Int>(1)?.0,
                    bantime: r.get::<_, Int>(2)?.0,
                })
            };
            match jail {
                Some(jail) => conn
                    .prepare_cached(
                        "SELECT bancount, timeofban, bantime FROM bips WHERE ip = ?1 AND jail = ?2",
                    )?
                    .query_row([ip, jail], count),
                None => conn
                    .prepare_cached(
                        "SELECT sum(bancount), max(timeofban), sum(bantime) FROM bips
                         WHERE ip = ?1 GROUP BY ip",
                    )?
                    .query_row([ip], count),
            }
            .optional()
        })
    }

    /// The history of an address (in a jail or in all jails) merged into one ticket,
    /// as Fail2ban's `getBansMerged` does; `None` if it has none.
    pub fn bans_merged(&mut self, ip: &str, jail: Option<&str>) -> Result<Option<MergedBans>> {
        let max_matches = self.max_matches;
        let history = self.history(jail, Some(ip))?;
        let Some(oldest) = history.last() else {
            return Ok(None);
        };
        let timeofban = oldest.timeofban;
        let mut matches: Vec<Value> = Vec::new();
        let mut failures = 0;
        let mut merged = Map::new();
        // Newest first: each older ban adds its newest matches in front, while room.
        for ban in history {
            let Value::Object(mut data) = ban.data else {
                continue;
            };
            if let Some(Value::Array(m)) = data.get("matches") {
                let room = max_matches.saturating_sub(matches.len());
                let take = &m[m.len().saturating_sub(room)..];
                matches.splice(0..0, take.iter().cloned());
            }
            let own = data
                .get("failures")
                .map_or(Some(1), Value::as_i64)
                .unwrap_or(1);
            failures = own.saturating_add(failures);
            data.insert("failures".into(), failures.into());
            data.remove("matches");
            merged.extend(data);
        }
        merged.insert("matches".into(), Value::Array(matches));
        Ok(Some(MergedBans {
            ip: ip.to_owned(),
            timeofban,
            data: Value::Object(merged),
        }))
    }

    /// Removes what is older than the purge age, as Fail2ban does periodically: ban
    /// history started before `now - purge_age`; latest bans (`bips`, the ban counts of
    /// `bantime.increment`) whose start plus three ban times is before that, never
    /// permanent ones; disabled jails left without bans, with their log positions.
    pub fn purge(&mut self, now: i64) -> Result<Purged> {
        let before = now - self.purge_age;
        self.write(|tx| {
            let bans = tx.execute("DELETE FROM bans WHERE timeofban < ?1", [before])?;
            let bips = tx.execute(
                "DELETE FROM bips WHERE timeofban < ?1 AND bantime != -1
                 AND timeofban + bantime * ?2 < ?1",
                [before, OUTDATED_FACTOR],
            )?;
            let jails = tx.execute(
                "DELETE FROM jails WHERE enabled = 0
                 AND NOT EXISTS(SELECT 1 FROM bans WHERE jail = jails.name)
                 AND NOT EXISTS(SELECT 1 FROM bips WHERE jail = jails.name)",
                [],
            )?;
            Ok(Purged { bans, bips, jails })
        })
    }

    fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> rusqlite::Result<T>) -> Result<T> {
        // Immediate: take the write lock up front rather than fail to upgrade a read
        // lock half way when another process reads.
        let run = |conn: &mut Connection| -> rusqlite::Result<T> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run(&mut self.conn).map_err(|source| self.error(source))
    }

    fn read<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.conn).map_err(|source| self.error(source))
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// Copies a database about to be upgraded to `<path>.<YYYYmmdd-HHMMSS>` (UTC), as
/// Fail2ban does, unless that file exists. `VACUUM INTO` makes a consistent copy even
/// with a journal pending.
fn backup(conn: &Connection, path: &Path) -> Result<()> {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{stamp}"));
    let backup = PathBuf::from(name);
    if backup.exists() {
        return Ok(());
    }
    conn.execute("VACUUM INTO ?1", [backup.to_string_lossy()])
        .map_err(|source| StoreError::Backup {
            path: path.to_path_buf(),
            backup: backup.clone(),
            source,
        })?;
    tracing::info!(
        "database {}: backup in {}",
        path.display(),
        backup.display()
    );
    Ok(())
}

fn log_row(conn: &Connection, jail: &str, path: &str) -> rusqlite::Result<Option<LogPosition>> {
    conn.prepare_cached("SELECT firstlinemd5, lastfilepos FROM logs WHERE jail = ?1 AND path = ?2")?
        .query_row([jail, path], |r| {
            Ok(LogPosition {
                firstlinemd5: r.get(0)?,
                lastfilepos: r.get::<_, Option<Int>>(1)?.map_or(0, |p| p.0.max(0) as u64),
            })
        })
        .optional()
}

fn put_log(
    tx: &Transaction,
    jail: &str,
    path: &str,
    firstlinemd5: Option<&str>,
    pos: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?1, ?2, ?3, ?4)",
    )?
    .execute(params![jail, path, firstlinemd5, Pos(pos)])?;
    Ok(())
}

fn history_query(jail: Option<&str>, ip: Option<&str>) -> String {
    let mut sql =
        String::from("SELECT jail, ip, timeofban, bantime, bancount, data FROM bans WHERE 1");
    if jail.is_some() {
        sql.push_str(" AND jail = ?");
    }
    if ip.is_some() {
        sql.push_str(" AND ip = ?");
    }
    sql.push_str(" ORDER BY ip, timeofban DESC");
    sql
}

/// Reads the columns `jail, ip, timeofban, bantime, bancount, data`.
fn ban_record(r: &Row) -> rusqlite::Result<BanRecord> {
    Ok(BanRecord {
        jail: r.get(0)?,
        ip: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        timeofban: r.get::<_, Int>(2)?.0,
        bantime: r.get::<_, Int>(3)?.0,
        bancount: r.get::<_, Int>(4)?.0,
        data: r.get::<_, Json>(5)?.0,
    })
}

/// Ticket data as stored: at most `max_matches` matches (the newest), none if 0.
fn stored_data(data: &Value, max_matches: usize) -> Cow<'_, Value> {
    let Some(Value::Array(matches)) = data.get("matches") else {
        return Cow::Borrowed(data);
    };
    if max_matches != 0 && matches.len() <= max_matches {
        return Cow::Borrowed(data);
    }
    let mut data = data.clone();
    let obj = data.as_object_mut().expect("has a key");
    if max_matches == 0 {
        obj.remove("matches");
    } else if let Some(Value::Array(m)) = obj.get_mut("matches") {
        m.drain(..m.len() - max_matches);
    }
    Cow::Owned(data)
}

fn match_lines(data: &Value) -> Vec<String> {
    let Some(Value::Array(matches)) = data.get("matches") else {
        return Vec::new();
    };
    matches
        .iter()
        .map(|m| match m {
            Value::String(s) => s.clone(),
            // Fail2ban keeps a line split around the matched part as a list of parts.
            Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
            other => other.to_string(),
        })
        .collect()
}

/// Writes JSON spaced like Python's `json.dumps` (`", "` and `": "`), so that our rows
/// look like Fail2ban's to anyone reading the file with the sqlite3 shell.
fn write_json(out: &mut Vec<u8>, value: &Value) {
    struct PythonStyle;
    impl serde_json::ser::Formatter for PythonStyle {
        fn begin_array_value<W: ?Sized + io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> io::Result<()> {
            self.begin_array_value(w, first)
        }
        fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut ser = serde_json::Serializer::with_formatter(out, PythonStyle);
    serde::Serialize::serialize(value, &mut ser).expect("a Value serializes into a Vec");
}

/// An integer column as Fail2ban may have left it: times of bans upgraded from schema
/// version 1 and journal positions are REAL.
struct Int(i64);

impl FromSql for Int {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Integer(i) => Ok(Int(i)),
            ValueRef::Real(f) => Ok(Int(f.floor() as i64)),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// A file position bound as SQLite's signed integer.
struct Pos(u64);

impl rusqlite::ToSql for Pos {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let pos =
            i64::try_from(self.0).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        Ok(ToSqlOutput::Owned(SqlValue::Integer(pos)))
    }
}

/// The `data` column: JSON text or bytes (Fail2ban's adapter writes bytes). Like
/// Fail2ban, an unreadable value reads as empty data rather than failing the query.
struct Json(Value);

impl FromSql for Json {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let parsed = match value {
            ValueRef::Text(b) | ValueRef::Blob(b) => serde_json::from_slice(b).ok(),
            _ => None,
        };
        Ok(Json(match parsed {
            Some(v @ Value::Object(_)) => v,
            _ => {
                if !matches!(value, ValueRef::Null) {
                    tracing::warn!("ban data is not a JSON object: {value:?}");
                }
                Value::Object(Map::new())
            }
        }))
    }
}
