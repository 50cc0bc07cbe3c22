//! From a jail's definition to a running jail, at start, at reload and for
//! `start <jail>`: [`prepare`] checks it (settings, filter) without touching
//! anything, [`read_stored`] reads what the store keeps for it (positions,
//! active bans), [`finish`] puts the bans back in a new [`Jail`], and
//! [`start_jail`] starts its actions and sources.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::core::{History, JailRt, SourceInfo};
use super::enforce::{self, ActionWorker, Op};
use super::ingest::{FileJail, Sources, JOURNAL_LOG};
use super::persist::{MergedPair, Position};
use super::setup::{self, Backend};
use crate::config::{JailDef, ServerDef};
use crate::filter::Filter;
use crate::jail::IGNORE_COMMAND_TIMEOUT;
use crate::jail::{Ban, BanId, BanOutcome, IgnoreCheck, Jail, JailSettings, PastBan};
use crate::notice;
use crate::source::{FileBackend, StoredPos};
use crate::store::{BanRecord, Restore, Store};

/// What `get <jail> failregex` and the like show: the filter's regexes
/// with their tags expanded, and its date pattern as Fail2ban describes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterShow {
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub prefregex: Option<String>,
    /// `(pattern or None, name)`.
    pub datepattern: Value,
}

impl FilterShow {
    fn of(filter: Option<&Filter>) -> FilterShow {
        let Some(f) = filter else {
            return FilterShow {
                datepattern: Value::Null,
                ..FilterShow::default()
            };
        };
        let templates: Vec<_> = f.date_detector().templates().collect();
        // Fail2ban names the default set, else describes the first template.
        let datepattern = match templates.as_slice() {
            [t] | [t, _] => json!([(!t.pattern.is_empty()).then_some(t.pattern), t.name]),
            _ => json!([null, "Default Detectors"]),
        };
        FilterShow {
            failregex: f.failregexes().map(String::from).collect(),
            ignoreregex: f.ignoreregexes().map(String::from).collect(),
            prefregex: f.prefregex().map(String::from),
            datepattern,
        }
    }
}

/// A jail definition checked: its counting settings and its filter built.
pub(crate) struct Prepared {
    pub def: JailDef,
    pub settings: JailSettings,
    pub backend: Backend,
    pub backend_name: &'static str,
    pub filter: Option<Filter>,
    pub show: FilterShow,
}

/// Checks a definition: the jail's settings and its filter (every regex
/// compiled). Errors name the jail and the option.
pub(crate) fn prepare(def: JailDef) -> Result<Prepared, String> {
    let settings = setup::jail_settings(&def)?;
    let filter = setup::build_filter(&def)?;
    if matches!(def.backend.kind, crate::config::BackendKind::Systemd) {
        setup::journal_options(&def)?;
    }
    let (backend, backend_name) = setup::backend(&def);
    let show = FilterShow::of(filter.as_ref());
    Ok(Prepared {
        def,
        settings,
        backend,
        backend_name,
        filter,
        show,
    })
}

/// What the store keeps for a jail.
#[derive(Default)]
pub(crate) struct Stored {
    pub positions: Vec<(PathBuf, StoredPos)>,
    /// Active bans, with their merged bans when the actions use them.
    pub bans: Vec<(BanRecord, Option<MergedPair>)>,
}

/// Registers the jail in the store and reads its positions and, when
/// `bans`, its active bans.
pub(crate) fn read_stored(
    store: &mut Store,
    p: &Prepared,
    now: f64,
    bans: bool,
) -> Result<Stored, String> {
    let def = &p.def;
    let e = |e: crate::store::StoreError| e.to_string();
    store.add_jail(&def.name).map_err(e)?;
    let mut out = Stored::default();
    for path in store.log_paths(Some(&def.name)).map_err(e)? {
        if let Some(pos) = store.log_position(&def.name, &path).map_err(e)? {
            out.positions.push((
                PathBuf::from(path),
                StoredPos {
                    pos: pos.lastfilepos,
                    firstlinemd5: pos.firstlinemd5.unwrap_or_default(),
                },
            ));
        }
    }
    if !bans {
        return Ok(out);
    }
    let max_ban_time = p.settings.increment.max_ban_time(p.settings.bantime);
    let q = Restore {
        now: now as i64,
        within: (!def.bantime_increment.enabled).then_some(def.bantime as i64),
        jail_bantime: def.bantime as i64,
        max_bantime: Some(max_ban_time as i64),
        max_matches: Some(def.maxmatches as usize),
    };
    let merged = enforce::uses_merged(&def.actions);
    for r in store.current_bans(&def.name, &q).map_err(e)? {
        let m = if merged {
            Some((
                store.bans_merged(&r.ip, None).map_err(e)?,
                store.bans_merged(&r.ip, Some(&def.name)).map_err(e)?,
            ))
        } else {
            None
        };
        out.bans.push((r, m));
    }
    Ok(out)
}

/// A jail ready to start: its settings checked, its stored state read.
pub(crate) struct Plan {
    pub def: JailDef,
    pub jail: Jail,
    pub backend: Backend,
    pub backend_name: &'static str,
    pub filter: Option<Filter>,
    pub show: FilterShow,
    pub stored: Vec<(PathBuf, StoredPos)>,
    /// Bans restored from the store, as the actions get them.
    pub restored: Vec<(Ban, crate::action::Ticket)>,
}

/// Puts the stored bans back (those the ignore rules let through).
pub(crate) fn finish(p: Prepared, stored: Stored, now: f64) -> Plan {
    let mut jail = Jail::new(p.settings);
    let mut restored = Vec::new();
    for (r, merged) in stored.bans {
        let ban = super::core::restored_ban(&r);
        if restored_is_ignored(&mut jail, &ban, now) {
            continue;
        }
        if let BanOutcome::New(b) = jail.restore(ban, now) {
            let t = enforce::ticket(&b, merged);
            restored.push((b, t));
        }
    }
    Plan {
        def: p.def,
        jail,
        backend: p.backend,
        backend_name: p.backend_name,
        filter: p.filter,
        show: p.show,
        stored: stored.positions,
        restored,
    }
}

/// Fail2ban checks restored bans against the ignore rules (and logs it).
fn restored_is_ignored(jail: &mut Jail, ban: &Ban, now: f64) -> bool {
    let by = match jail.check_ignore(&ban.id, &ban.data, now) {
        IgnoreCheck::Clear => return false,
        IgnoreCheck::Ignored(by) => by,
        IgnoreCheck::AskCommand(call) => {
            let ignored = call.run(IGNORE_COMMAND_TIMEOUT).unwrap_or_else(|e| {
                tracing::error!(target: "fail2ban.filter", "[{}] {e}", jail.name());
                false
            });
            match jail.command_verdict(&call, ignored, now) {
                IgnoreCheck::Ignored(by) => by,
                _ => return false,
            }
        }
    };
    if let Some(label) = by.label() {
        tracing::info!(target: "fail2ban.filter", "[{}] Ignore {} by {label}", jail.name(), ban.id);
    }
    true
}

/// The ban counts `bantime.increment` needs (Fail2ban's `bips`), read once,
/// when one of `defs` uses it.
pub(crate) fn load_history(server: &ServerDef, defs: &[&JailDef]) -> History {
    let enabled = defs.iter().any(|d| d.bantime_increment.enabled);
    let mut h = History::new(enabled);
    let Some(path) =
        super::db_path(&server.dbfile).filter(|p| enabled && p.as_os_str() != ":memory:")
    else {
        return h;
    };
    let names: BTreeMap<&str, Arc<str>> = defs
        .iter()
        .map(|d| (d.name.as_str(), Arc::from(d.name.as_str())))
        .collect();
    let read = || -> rusqlite::Result<Vec<(String, String, i64, i64)>> {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt = conn.prepare("SELECT jail, ip, bancount, timeofban FROM bips")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect()
    };
    match read() {
        Ok(rows) => {
            for (jail, ip, count, time) in rows {
                let jail = names
                    .get(jail.as_str())
                    .cloned()
                    .unwrap_or_else(|| jail.into());
                let past = PastBan {
                    count: u32::try_from(count).unwrap_or(0),
                    time: time as f64,
                };
                h.record(&jail, &BanId::parse(&ip), past);
            }
        }
        Err(e) => tracing::error!(target: "fail2ban.database",
            "database {}: cannot read ban counts: {e}", path.display()),
    }
    h
}

/// Starts a jail: actions with its restored bans (once `after` fires, when
/// it replaces a jail of the same name), then its sources (followed from
/// the next [`Sources::watch`]). Returns the jail and the signal that its
/// actions have started.
pub(crate) fn start_jail(
    id: usize,
    p: Plan,
    sources: &mut Sources,
    now: f64,
    after: Option<oneshot::Receiver<()>>,
) -> (JailRt, oneshot::Receiver<()>) {
    let def = &p.def;
    let name: Arc<str> = Arc::from(def.name.as_str());
    tracing::info!(target: "fail2ban.jail", "Creating new jail '{name}'");
    tracing::info!(target: "fail2ban.jail", "Jail '{name}' uses {} {{}}", p.backend_name);
    tracing::info!(target: "fail2ban.jail", "Initiated '{}' backend", match p.backend {
        Backend::Files(FileBackend::Polling) => "polling",
        Backend::Files(FileBackend::Inotify) => "pyinotify",
        Backend::Journal => "systemd",
    });
    log_settings(def);
    let actions = ActionWorker::start(&name, &def.actions, after);
    let source = start_sources(id, def, &p.backend, p.filter, &p.stored, sources, now);
    tracing::info!(target: "fail2ban.jail", "Jail '{name}' started");
    let mut tickets = Vec::with_capacity(p.restored.len());
    for (b, t) in p.restored {
        notice!(target: "fail2ban.actions", "[{name}] Restore Ban {}", b.id);
        tickets.push(t);
    }
    let (done, started) = oneshot::channel();
    actions.sender().send(Op::Start(tickets), Some(done));
    let rt = JailRt {
        name,
        jail: p.jail,
        source,
        actions,
        merged: enforce::uses_merged(&def.actions),
        one_source: Default::default(),
        def: p.def,
        show: p.show,
        idle: None,
        positions: Default::default(),
    };
    (rt, started)
}

/// The lines Fail2ban logs with a jail's settings (at start and reload).
pub(crate) fn log_settings(def: &JailDef) {
    if let Some(f) = &def.filter {
        if f.maxlines > 1 {
            tracing::info!(target: "fail2ban.filter", "  maxLines: {}", f.maxlines);
        }
    }
    tracing::info!(target: "fail2ban.filter", "  maxRetry: {}", def.maxretry);
    tracing::info!(target: "fail2ban.filter", "  findtime: {}", setup::seconds(def.findtime));
    tracing::info!(target: "fail2ban.actions", "  banTime: {}", setup::seconds(def.bantime));
    tracing::info!(target: "fail2ban.filter", "  encoding: {}", encoding(&def.logencoding));
}

/// Follows the jail's log files or journal; `stored`: where it had got to.
pub(crate) fn start_sources(
    id: usize,
    def: &JailDef,
    backend: &Backend,
    filter: Option<Filter>,
    stored: &[(PathBuf, StoredPos)],
    sources: &mut Sources,
    now: f64,
) -> SourceInfo {
    match backend {
        Backend::Journal => {
            let info = SourceInfo::Journal(setup::journal_matches(def));
            if let Some(filter) = filter {
                let started =
                    journal(def, stored, now).and_then(|o| sources.add_journal(id, filter, o));
                if let Err(e) = started {
                    tracing::error!(target: "fail2ban.jail", "[{}] {e}", def.name);
                }
            }
            info
        }
        Backend::Files(_) => {
            if filter.is_none() && !def.logpath.is_empty() {
                tracing::warn!(target: "fail2ban.jail",
                    "[{}] no filter: the log files of the jail are not read", def.name);
            }
            if let Some(fj) = file_jail(id, def, filter, stored) {
                for lp in &def.logpath {
                    sources.add_file(&fj, &lp.pattern, lp.tail, seek(def, now));
                }
            }
            SourceInfo::Files(Vec::new())
        }
    }
}

/// What the filter workers need for a jail's files (None without a filter).
pub(crate) fn file_jail(
    id: usize,
    def: &JailDef,
    filter: Option<Filter>,
    stored: &[(PathBuf, StoredPos)],
) -> Option<Arc<FileJail>> {
    let fdef = def.filter.as_ref()?;
    Some(Arc::new(FileJail {
        jail: id,
        name: Arc::from(def.name.as_str()),
        filter: fdef.clone(),
        opts: setup::filter_options(def),
        stored: stored.to_vec(),
        spare: std::sync::Mutex::new(filter),
    }))
}

/// Skips, in files present at start, lines older than findtime.
pub(crate) fn seek(def: &JailDef, now: f64) -> Option<crate::source::SeekTime> {
    setup::seek_time(def, now - def.findtime)
}

/// Positions the core saw go by, as the sources take stored ones.
pub(crate) fn positions_seen<'a>(
    seen: impl Iterator<Item = &'a Position>,
) -> Vec<(PathBuf, StoredPos)> {
    seen.map(|p| {
        (
            PathBuf::from(&p.path),
            StoredPos {
                pos: p.pos,
                firstlinemd5: p.hash.clone(),
            },
        )
    })
    .collect()
}

/// The journal options with where to resume: after the stored cursor, else
/// from the stored time or findtime ago, whichever is later.
fn journal(
    def: &JailDef,
    stored: &[(PathBuf, StoredPos)],
    now: f64,
) -> Result<crate::source::JournalOptions, String> {
    let mut o = setup::journal_options(def)?;
    let pos = stored
        .iter()
        .find(|(p, _)| p.as_os_str() == JOURNAL_LOG)
        .map(|(_, s)| s);
    // Fail2ban writes `TODO` where logban keeps the cursor.
    match pos {
        Some(s) if !s.firstlinemd5.is_empty() && s.firstlinemd5 != "TODO" => {
            o.cursor = Some(s.firstlinemd5.clone())
        }
        _ => o.since = Some((now - def.findtime).max(pos.map_or(0.0, |s| s.pos as f64))),
    }
    Ok(o)
}

/// `logencoding` as Fail2ban reports it (`auto` is the locale's, UTF-8).
pub(crate) fn encoding(e: &str) -> &str {
    if e.eq_ignore_ascii_case("auto") {
        "UTF-8"
    } else {
        e
    }
}
