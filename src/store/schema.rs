//! The table layout of Fail2ban's database (schema version 4), its creation and the
//! upgrade of files written by older Fail2ban releases (versions 1 to 3).
//!
//! Columns, types, keys and index names match Fail2ban's so that either program opens
//! the other's file without touching it.

use rusqlite::{Connection, OptionalExtension};

/// The schema version this module creates and upgrades to.
pub const VERSION: i64 = 4;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS fail2banDb(version INTEGER);";

const JAILS: &str = "\
CREATE TABLE IF NOT EXISTS jails(
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS jails_name ON jails(name);";

const LOGS: &str = "\
CREATE TABLE IF NOT EXISTS logs(
    jail TEXT NOT NULL,
    path TEXT,
    firstlinemd5 TEXT,
    lastfilepos INTEGER DEFAULT 0,
    FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE,
    UNIQUE(jail, path),
    UNIQUE(jail, path, firstlinemd5)
);
CREATE INDEX IF NOT EXISTS logs_path ON logs(path);
CREATE INDEX IF NOT EXISTS logs_jail_path ON logs(jail, path);";

const BANS: &str = "\
CREATE TABLE IF NOT EXISTS bans(
    jail TEXT NOT NULL,
    ip TEXT,
    timeofban INTEGER NOT NULL,
    bantime INTEGER NOT NULL,
    bancount INTEGER NOT NULL DEFAULT 1,
    data JSON,
    FOREIGN KEY(jail) REFERENCES jails(name)
);
CREATE INDEX IF NOT EXISTS bans_jail_timeofban_ip ON bans(jail, timeofban);
CREATE INDEX IF NOT EXISTS bans_jail_ip ON bans(jail, ip);
CREATE INDEX IF NOT EXISTS bans_ip ON bans(ip);";

const BIPS: &str = "\
CREATE TABLE IF NOT EXISTS bips(
    ip TEXT NOT NULL,
    jail TEXT NOT NULL,
    timeofban INTEGER NOT NULL,
    bantime INTEGER NOT NULL,
    bancount INTEGER NOT NULL DEFAULT 1,
    data JSON,
    PRIMARY KEY(ip, jail),
    FOREIGN KEY(jail) REFERENCES jails(name)
);
CREATE INDEX IF NOT EXISTS bips_timeofban ON bips(timeofban);
CREATE INDEX IF NOT EXISTS bips_ip ON bips(ip);";

/// What an opened file holds before any change.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// No table at all: a new or empty file.
    Empty,
    /// A Fail2ban database of this schema version.
    Version(i64),
    /// Tables, but none of them is `fail2banDb`: someone else's database.
    Foreign,
}

/// Looks at the file without writing to it.
pub fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    if !table_exists(conn, "fail2banDb")? {
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        return Ok(if tables == 0 {
            Found::Empty
        } else {
            Found::Foreign
        });
    }
    let version: Option<i64> = conn
        .query_row("SELECT version FROM fail2banDb LIMIT 1", [], |r| r.get(0))
        .optional()?;
    // A version table without a row is what an interrupted creation leaves behind.
    Ok(version.map_or(Found::Empty, Found::Version))
}

/// Creates every missing table and index and records the version; run inside a
/// transaction. Idempotent, so it also completes a partly created file.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    for script in [VERSION_TABLE, JAILS, LOGS, BANS, BIPS] {
        conn.execute_batch(script)?;
    }
    conn.execute(
        "INSERT INTO fail2banDb(version) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM fail2banDb)",
        [VERSION],
    )?;
    Ok(())
}

/// Brings a file of an older schema version to version 4, as Fail2ban does: version 1
/// gains the `logs(jail, path, firstlinemd5)` uniqueness, version 2 bans gain `bantime`
/// (-2, "unknown", resolved to the jail's bantime on restore) and `bancount` (1), and
/// `bips` is filled with the latest ban of every address and jail. Run inside a
/// transaction so that a failed upgrade leaves the file as it was.
pub fn upgrade(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    if from < 2 && table_exists(conn, "logs")? {
        conn.execute_batch(&format!(
            "CREATE TEMPORARY TABLE logs_old AS SELECT * FROM logs;
             DROP TABLE logs;
             {LOGS}
             INSERT INTO logs SELECT * FROM logs_old;
             DROP TABLE logs_old;"
        ))?;
    }
    if from < 3 && table_exists(conn, "bans")? {
        conn.execute_batch(&format!(
            "CREATE TEMPORARY TABLE bans_old AS
                 SELECT jail, ip, timeofban, -2 AS bantime, 1 AS bancount, data FROM bans;
             DROP TABLE bans;
             {BANS}
             INSERT INTO bans SELECT * FROM bans_old;
             DROP TABLE bans_old;"
        ))?;
    }
    if from < 4 && !table_exists(conn, "bips")? {
        conn.execute_batch(BIPS)?;
        if table_exists(conn, "bans")? {
            // Oldest first, so that the latest ban of each (ip, jail) wins the replace.
            conn.execute_batch(
                "INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data)
                 SELECT ip, jail, timeofban, bantime, bancount, data FROM bans
                 WHERE ip IS NOT NULL ORDER BY timeofban",
            )?;
        }
    }
    create(conn)?;
    conn.execute("UPDATE fail2banDb SET version = ?1", [VERSION])?;
    Ok(())
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}
