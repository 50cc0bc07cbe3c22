//! From a jail's configuration to what the server runs: the jail's counting
//! settings, its filter options, its journal options, the date parser that
//! skips old lines at start. Errors name the jail and the option.

use std::sync::Arc;

use crate::config::{BackendKind, JailDef};
use crate::filter::date::DateDetector;
use crate::filter::{Filter, FilterOptions};
use crate::jail::Ignore;
use crate::jail::{
    BanTimeIncrement, IgnoreCache, IgnoreCommand, JailSettings, PrefixSet, DEFAULT_MAX_FAILURES,
};
use crate::source::{FileBackend, JournalOptions, SeekTime};

/// logban's own jail option: how many failure tickets a jail holds at most
/// (the least recently failing are dropped beyond). Dotted, like
/// `bantime.increment`, so that no Fail2ban option can ever have the name.
pub(crate) const MAX_FAILURES_KEY: &str = "logban.maxfailures";

/// The counting and ban settings of a jail.
pub(crate) fn jail_settings(def: &JailDef) -> Result<JailSettings, String> {
    let err = |opt: &str, e: String| format!("jail '{}': {opt}: {e}", def.name);
    let mut s = JailSettings::new(&def.name);
    s.maxretry = def.maxretry;
    s.findtime = def.findtime;
    s.maxmatches = def.maxmatches as usize;
    s.bantime = def.bantime;
    s.increment = increment(def).map_err(|e| err("bantime.increment", e))?;
    // The host's own addresses (followed as interfaces change) only when
    // they are needed.
    let mut ignore = if def.ignoreself {
        Ignore::default()
    } else {
        Ignore::with_self_addresses(Arc::new(PrefixSet::default()))
    };
    ignore.ignoreself = def.ignoreself;
    ignore
        .list
        .add_all(&def.ignoreip.join(" "))
        .map_err(|e| err("ignoreip", e.to_string()))?;
    ignore.command = def.ignorecommand.as_deref().and_then(IgnoreCommand::new);
    ignore.cache = def
        .ignorecache
        .as_ref()
        .map(|c| IgnoreCache::new(&c.key, c.max_count as usize, c.max_time));
    s.ignore = ignore;
    s.max_failures = match def.options.get(MAX_FAILURES_KEY) {
        None => DEFAULT_MAX_FAILURES,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(err(
                    MAX_FAILURES_KEY,
                    format!("{v:?} is not a positive whole number"),
                ))
            }
        },
    };
    Ok(s)
}

fn increment(def: &JailDef) -> Result<BanTimeIncrement, String> {
    let c = &def.bantime_increment;
    let mut inc = BanTimeIncrement::default();
    inc.enabled = c.enabled;
    inc.overalljails = c.overalljails;
    inc.maxtime = c.maxtime;
    inc.rndtime = c.rndtime;
    // The factor as written (Fail2ban evaluates it), else the number read.
    match def.options.get("bantime.factor") {
        Some(v) => inc.set_factor(v),
        None => inc.set_factor(&c.factor.to_string()),
    }
    .map_err(|e| e.to_string())?;
    if let Some(f) = &c.formula {
        inc.set_formula(f).map_err(|e| e.to_string())?;
    }
    if !c.multipliers.is_empty() {
        let m: Vec<String> = c.multipliers.iter().map(u64::to_string).collect();
        inc.set_multipliers(&m.join(" "))
            .map_err(|e| e.to_string())?;
    }
    Ok(inc)
}

/// The server's filter options for a jail.
pub(crate) fn filter_options(def: &JailDef) -> FilterOptions {
    FilterOptions {
        logtimezone: def.logtimezone.clone(),
        ..FilterOptions::server(def.findtime)
    }
}

/// The jail's filter, built once to check it (regexes, date pattern).
pub(crate) fn build_filter(def: &JailDef) -> Result<Option<Filter>, String> {
    let Some(f) = &def.filter else {
        return Ok(None);
    };
    Filter::new(f, filter_options(def))
        .map(Some)
        .map_err(|e| format!("jail '{}': {e}", def.name))
}

/// Where a jail's lines come from.
pub(crate) enum Backend {
    Files(FileBackend),
    Journal,
}

/// Fail2ban's name for the backend in its start lines.
pub(crate) fn backend(def: &JailDef) -> (Backend, &'static str) {
    match def.backend.kind {
        BackendKind::Systemd => (Backend::Journal, "systemd"),
        BackendKind::Polling => (Backend::Files(FileBackend::Polling), "poller"),
        BackendKind::Gamin | BackendKind::Auto | BackendKind::Pyinotify => {
            (Backend::Files(FileBackend::Inotify), "pyinotify")
        }
    }
}

/// Skips lines older than `since` at start, with the jail's date rules.
pub(crate) fn seek_time(def: &JailDef, since: f64) -> Option<SeekTime> {
    let f = def.filter.as_ref()?;
    let mut dates = DateDetector::new(f.datepattern.as_deref(), def.logtimezone.as_deref()).ok()?;
    let now = crate::util::now();
    Some(SeekTime {
        since,
        date: Box::new(move |line| dates.find(line, now).and_then(|h| h.time)),
    })
}

/// `systemd[journalpath=..., journalfiles=..., journalflags=..., namespace=...]`
/// and the jail's `journalmatch`.
pub(crate) fn journal_options(def: &JailDef) -> Result<JournalOptions, String> {
    let matches = def
        .filter
        .as_ref()
        .map(|f| f.journalmatch.join("\n"))
        .unwrap_or_default();
    let mut o = JournalOptions::new(&matches);
    for (k, v) in &def.backend.params {
        match k.as_str() {
            "journalpath" => o.path = Some(v.into()),
            "journalfiles" => o.files = Some(v.clone()),
            "journalflags" => {
                o.flags = Some(v.trim().parse().map_err(|_| {
                    format!(
                        "jail '{}': backend systemd: journalflags {v:?} is not a number",
                        def.name
                    )
                })?)
            }
            "namespace" => o.namespace = Some(v.clone()),
            other => tracing::warn!(target: "fail2ban.jail",
                "[{}] backend systemd: unknown parameter {other:?} ignored", def.name),
        }
    }
    Ok(o)
}

/// `Journal matches` as Fail2ban's status prints them: groups joined by ` + `.
pub(crate) fn journal_matches(def: &JailDef) -> String {
    let Some(f) = &def.filter else {
        return String::new();
    };
    f.journal_groups
        .iter()
        .map(|g| g.join(" "))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// A time value as Fail2ban's start lines print it: whole seconds bare.
pub(crate) fn seconds(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
