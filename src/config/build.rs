//! From what the readers found to the typed, validated definitions other
//! modules use ([`ServerDef`], [`JailDef`], [`FilterDef`], [`ActionDef`]),
//! and the whole command stream.

use std::collections::BTreeMap;

use serde_json::Value;

use super::layered::{Layered, Vars};
use super::omap::OMap;
use super::options::{extract_options, py_int, shlex_split, splitwords};
use super::reader::{
    config_error_cmd, jail_names, jail_stream, py_str, read_jail, read_options, spec, spec_or,
    split_logpath, ActionRead, DefReader, JailOutcome, JailRead, Session, Spec, Ty, FILTER_OPTS,
};
use super::tags::{self, OMapOpt, ESCAPED_TAGS};
use super::time::parse_time;
use super::{
    ActionDef, ActionProperties, Backend, BackendKind, BanTimeIncrement, ConfigError, FilterDef,
    IgnoreCache, JailDef, LogPath, ServerDef, UseDns,
};

const SERVER_EARLY: [Spec; 5] = [
    spec_or("socket", Ty::Str, "/var/run/fail2ban/fail2ban.sock"),
    spec_or("pidfile", Ty::Str, "/var/run/fail2ban/fail2ban.pid"),
    spec_or("loglevel", Ty::Str, "INFO"),
    spec_or("logtarget", Ty::Str, "/var/log/fail2ban.log"),
    spec_or("syslogsocket", Ty::Str, "auto"),
];

const SERVER_OPTS: [Spec; 7] = [
    spec_or("loglevel", Ty::Str, "INFO"),
    spec_or("logtarget", Ty::Str, "STDERR"),
    spec_or("syslogsocket", Ty::Str, "auto"),
    spec_or("allowipv6", Ty::Str, "auto"),
    spec_or("dbfile", Ty::Str, "/var/lib/fail2ban/fail2ban.sqlite3"),
    spec("dbmaxmatches", Ty::Int),
    spec_or("dbpurgeage", Ty::Str, "1d"),
];

const THREAD_OPTS: [Spec; 1] = [spec("stacksize", Ty::Int)];

/// The server's options as Fail2ban's client computes them (the early
/// options win for socket, pid file and logging), plus `[Thread]`.
struct ServerRead {
    cfg: Layered,
    opts: OMap<Value>,
    thread: Option<OMap<Value>>,
    errors: Vec<ConfigError>,
}

fn read_server(session: &Session) -> Result<ServerRead, ConfigError> {
    let cfg = session.files.load("fail2ban")?.unwrap_or_default();
    let early = read_options(&cfg, "Definition", &SERVER_EARLY)?;
    let mut main = read_options(&cfg, "Definition", &SERVER_OPTS)?;
    main.typed.update(&early.typed);
    let mut errors = main.errors;
    let mut thread = None;
    if cfg.has_section("Thread") {
        let t = read_options(&cfg, "Thread", &THREAD_OPTS)?;
        errors.extend(t.errors);
        if !t.typed.is_empty() {
            thread = Some(t.typed);
        }
    }
    Ok(ServerRead {
        cfg,
        opts: main.typed,
        thread,
        errors,
    })
}

fn server_stream(read: &ServerRead) -> Vec<Value> {
    const ORDER: [&str; 7] = [
        "syslogsocket",
        "loglevel",
        "logtarget",
        "allowipv6",
        "dbfile",
        "dbmaxmatches",
        "dbpurgeage",
    ];
    let mut out = Vec::new();
    if let Some(t) = &read.thread {
        let dict: serde_json::Map<String, Value> =
            t.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        out.push(serde_json::json!(["set", "thread", dict]));
    }
    for opt in ORDER {
        if let Some(v) = read.opts.get(opt) {
            out.push(serde_json::json!(["set", opt, v]));
        }
    }
    out
}

fn valid_loglevel(level: &str) -> bool {
    const NAMES: [&str; 13] = [
        "CRITICAL",
        "FATAL",
        "ERROR",
        "WARN",
        "WARNING",
        "NOTICE",
        "INFO",
        "MSG",
        "DEBUG",
        "TRACEDEBUG",
        "HEAVYDEBUG",
        "NOTSET",
        "TRACE",
    ];
    (!level.is_empty() && level.chars().all(|c| c.is_ascii_digit()))
        || NAMES.contains(&level.to_uppercase().as_str())
}

pub(crate) fn server(session: &Session) -> Result<ServerDef, ConfigError> {
    let read = read_server(session)?;
    if let Some(e) = read.errors.first() {
        return Err(e.clone());
    }
    let text = |k: &str| {
        read.opts
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let err = |k: &str, msg: String| {
        ConfigError::new(msg)
            .at(read.cfg.origin("Definition", k))
            .section("Definition")
            .key(k)
    };
    let loglevel = text("loglevel");
    if !valid_loglevel(&loglevel) {
        return Err(err("loglevel", format!("invalid log level {loglevel:?}")));
    }
    let dbpurgeage =
        parse_time(&text("dbpurgeage")).map_err(|e| err("dbpurgeage", e.message.clone()))?;
    let dbmaxmatches = match read.opts.get("dbmaxmatches").and_then(Value::as_i64) {
        Some(n) => {
            Some(u32::try_from(n).map_err(|_| err("dbmaxmatches", format!("{n} is not a count")))?)
        }
        None => None,
    };
    let stacksize = match read
        .thread
        .as_ref()
        .and_then(|t| t.get("stacksize"))
        .and_then(Value::as_i64)
    {
        Some(n) => Some(u64::try_from(n).map_err(|_| {
            ConfigError::new(format!("{n} is not a size"))
                .at(read.cfg.origin("Thread", "stacksize"))
                .section("Thread")
                .key("stacksize")
        })?),
        None => None,
    };
    Ok(ServerDef {
        loglevel,
        logtarget: text("logtarget"),
        syslogsocket: text("syslogsocket"),
        socket: text("socket"),
        pidfile: text("pidfile"),
        allowipv6: text("allowipv6"),
        dbfile: text("dbfile"),
        dbpurgeage,
        dbmaxmatches,
        stacksize,
    })
}

/// Every jail (or only `only`, read even when disabled): the enabled ones in
/// order with their results.
#[allow(clippy::type_complexity)]
pub(crate) fn jails(
    session: &Session,
    only: Option<&str>,
) -> Result<Vec<(String, Result<JailDef, ConfigError>)>, ConfigError> {
    let mut cfg = session.files.load("jail")?.unwrap_or_default();
    let names = match only {
        Some(n) if jail_names(&cfg).iter().any(|j| j == n) => vec![n.to_string()],
        Some(n) => {
            return Err(ConfigError::new(format!(
                "no jail [{n}] in jail.conf, jail.d/, jail.local under {}",
                session.tree.basedir()
            )))
        }
        None => jail_names(&cfg),
    };
    let mut out = Vec::new();
    for name in names {
        match read_jail(session, &mut cfg, &name, only.is_some())? {
            JailOutcome::Disabled => {}
            JailOutcome::Broken(e) => out.push((name, Err(e))),
            JailOutcome::Read(read) => {
                let def = jail_def(session, &read, &cfg);
                out.push((name, def));
            }
        }
    }
    Ok(out)
}

pub(crate) fn stream(session: &Session) -> Result<Vec<Value>, ConfigError> {
    let mut out = server_stream(&read_server(session)?);
    let mut cfg = session.files.load("jail")?.unwrap_or_default();
    let mut started = Vec::new();
    for name in jail_names(&cfg) {
        match read_jail(session, &mut cfg, &name, false)? {
            JailOutcome::Disabled => {}
            JailOutcome::Broken(e) => out.push(config_error_cmd(&name, &e)),
            JailOutcome::Read(read) => {
                out.extend(jail_stream(session.tree, &read)?);
                started.push(name);
            }
        }
    }
    out.extend(started.into_iter().map(|n| serde_json::json!(["start", n])));
    Ok(out)
}

fn lines(v: &str) -> Vec<String> {
    v.split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The filter as the server ends up with it: the filter's values, the
/// jail's own values of the filter options on top.
fn filter_def(
    name: &str,
    reader: &DefReader,
    jail: Option<(&JailRead, &Layered)>,
) -> Result<FilterDef, ConfigError> {
    let combined = reader.combined(&[])?;
    let (mut eff, errors) = reader.typed(&combined);
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let mut options: BTreeMap<String, String> = eff
        .iter()
        .filter_map(|(k, v)| py_str(v).map(|s| (k.to_string(), s)))
        .collect();
    let mut from_jail = Vec::new();
    if let Some((j, _)) = jail {
        for (k, _) in FILTER_OPTS {
            if let Some(v) = j.opts.get(k) {
                eff.insert(k, v.clone());
                from_jail.push(k);
                if let Some(s) = py_str(v) {
                    options.insert(k.to_string(), s);
                }
            }
        }
    }
    let origin = |k: &str| match jail {
        Some((j, cfg)) if from_jail.contains(&k) => cfg.origin(&j.name, k),
        _ => reader.origin(k),
    };
    let err = |k: &str, msg: String| match jail {
        Some((j, _)) if from_jail.contains(&k) => {
            ConfigError::new(msg).at(origin(k)).section(&j.name).key(k)
        }
        _ => ConfigError::new(msg)
            .at(origin(k))
            .in_file(reader.main_file())
            .section("Definition")
            .key(k),
    };
    let sources = ["prefregex", "failregex", "ignoreregex", "datepattern"]
        .into_iter()
        .filter_map(|k| {
            let o = origin(k)?;
            Some((k.to_string(), format!("{}:{}", o.file, o.line)))
        })
        .collect();
    let text = |k: &str| eff.get(k).and_then(Value::as_str);
    let maxlines = match eff.get("maxlines").and_then(Value::as_i64) {
        None => 1,
        Some(n) if n > 0 => n as usize,
        Some(n) => {
            return Err(err(
                "maxlines",
                format!("maxlines must be greater than zero, not {n}"),
            ))
        }
    };
    let usedns = match text("usedns") {
        None => UseDns::default(),
        Some(v) => UseDns::parse(v)
            .ok_or_else(|| err("usedns", format!("{v:?} is not one of yes, warn, no, raw")))?,
    };
    let journalmatch = lines(text("journalmatch").unwrap_or_default());
    let mut journal_groups = Vec::new();
    for line in &journalmatch {
        let words =
            shlex_split(line).map_err(|e| err("journalmatch", format!("{e} in {line:?}")))?;
        let mut groups = vec![Vec::new()];
        for w in words {
            if w == "+" {
                groups.push(Vec::new());
            } else if let Some(g) = groups.last_mut() {
                g.push(w);
            }
        }
        journal_groups.extend(groups);
    }
    Ok(FilterDef {
        name: name.to_string(),
        prefregex: text("prefregex")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        failregex: lines(text("failregex").unwrap_or_default()),
        ignoreregex: lines(text("ignoreregex").unwrap_or_default()),
        maxlines,
        datepattern: text("datepattern").map(str::to_string),
        journalmatch,
        journal_groups,
        usedns,
        options,
        sources,
    })
}

fn action_def(session: &Session, action: &ActionRead) -> Result<ActionDef, ConfigError> {
    match action {
        ActionRead::Command(reader) => {
            let (multi, errors) = reader.action_options()?;
            if let Some(e) = errors.into_iter().next() {
                return Err(e);
            }
            Ok(ActionDef {
                name: reader.actname(),
                file: reader.file.clone(),
                options: multi
                    .into_iter()
                    .filter_map(|(k, v)| py_str(&v).map(|s| (k, s)))
                    .collect(),
                script: None,
            })
        }
        ActionRead::Python { name, file, params } => Ok(ActionDef {
            name: name.clone(),
            file: file.clone(),
            options: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            script: Some(format!("{}/action.d/{file}", session.tree.basedir())),
        }),
    }
}

fn parse_backend(spec: &str) -> Result<Backend, String> {
    let (name, params) = extract_options(spec)?;
    let kind = match name.to_lowercase().as_str() {
        "auto" => BackendKind::Auto,
        "pyinotify" => BackendKind::Pyinotify,
        "gamin" => BackendKind::Gamin,
        "polling" => BackendKind::Polling,
        "systemd" => BackendKind::Systemd,
        other => {
            return Err(format!(
                "unknown backend {other:?}, must be one of auto, pyinotify, gamin, polling, systemd"
            ))
        }
    };
    Ok(Backend {
        kind,
        params: params.into_iter().collect(),
    })
}

fn jail_def(session: &Session, read: &JailRead, cfg: &Layered) -> Result<JailDef, ConfigError> {
    if let Some(e) = read.errors.first() {
        return Err(e.clone());
    }
    let name = read.name.as_str();
    let err = |k: &str, msg: String| {
        ConfigError::new(msg)
            .at(cfg.origin(name, k))
            .section(name)
            .key(k)
    };
    let text = |k: &str| read.opts.get(k).and_then(Value::as_str);
    let flag =
        |k: &str, default: bool| read.opts.get(k).and_then(Value::as_bool).unwrap_or(default);
    let set = |k: &str| text(k).filter(|v| !v.is_empty());
    let time = |k: &str| -> Result<Option<f64>, ConfigError> {
        set(k)
            .map(|v| parse_time(v).map_err(|e| err(k, e.message.clone())))
            .transpose()
    };
    let count = |k: &str, default: u32| -> Result<u32, ConfigError> {
        match read.opts.get(k).and_then(Value::as_i64) {
            None => Ok(default),
            Some(n) => u32::try_from(n).map_err(|_| err(k, format!("{n} is not a count"))),
        }
    };

    let backend =
        parse_backend(text("backend").unwrap_or("auto")).map_err(|e| err("backend", e))?;
    let filter = match &read.filter {
        Some((fname, reader)) => Some(filter_def(fname, reader, Some((read, cfg)))?),
        None => None,
    };
    let mut logpath = Vec::new();
    if backend.kind != BackendKind::Systemd {
        for line in text("logpath")
            .unwrap_or_default()
            .split('\n')
            .filter(|l| !l.is_empty())
        {
            let (pattern, tail) = split_logpath(line);
            let tail = match tail.to_lowercase().as_str() {
                "head" => false,
                "tail" => true,
                _ => {
                    return Err(err(
                        "logpath",
                        format!("{line:?}: a path may only be followed by head or tail"),
                    ))
                }
            };
            logpath.push(LogPath {
                pattern: pattern.to_string(),
                tail,
            });
        }
    }
    let multipliers = match set("bantime.multipliers") {
        None => Vec::new(),
        Some(v) => v
            .split_whitespace()
            .map(|m| {
                py_int(m)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        err(
                            "bantime.multipliers",
                            format!("{m:?} is not a whole number"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let factor = match set("bantime.factor") {
        None => 1.0,
        Some(v) => {
            parse_time(v).map_err(|_| err("bantime.factor", format!("{v:?} is not a number")))?
        }
    };
    let ignorecache = match set("ignorecache") {
        None => None,
        Some(v) => {
            let (_, o) =
                extract_options(&format!("cache[{v}]")).map_err(|e| err("ignorecache", e))?;
            let key = o
                .get("key")
                .cloned()
                .ok_or_else(|| err("ignorecache", "needs key=..., e.g. key=\"<ip>\"".into()))?;
            let max_count = match o.get("max-count") {
                None => 100,
                Some(c) => py_int(c)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| err("ignorecache", format!("max-count {c:?} is not a count")))?,
            };
            let max_time = match o.get("max-time") {
                None => 300.0,
                Some(t) => parse_time(t).map_err(|e| err("ignorecache", e.message.clone()))?,
            };
            Some(IgnoreCache {
                key,
                max_count,
                max_time,
            })
        }
    };
    let actions = read
        .actions
        .iter()
        .map(|a| action_def(session, a).map_err(|e| e.section(name)))
        .collect::<Result<_, _>>()?;
    Ok(JailDef {
        name: name.to_string(),
        enabled: flag("enabled", false),
        backend,
        filter,
        logpath,
        logencoding: text("logencoding").unwrap_or("auto").to_string(),
        logtimezone: set("logtimezone").map(str::to_string),
        maxretry: count("maxretry", 3)?,
        maxmatches: count("maxmatches", 5)?,
        findtime: time("findtime")?.unwrap_or(600.0),
        bantime: time("bantime")?.unwrap_or(600.0),
        bantime_increment: BanTimeIncrement {
            enabled: flag("bantime.increment", false),
            factor,
            formula: set("bantime.formula").map(str::to_string),
            multipliers,
            maxtime: time("bantime.maxtime")?,
            rndtime: time("bantime.rndtime")?,
            overalljails: flag("bantime.overalljails", false),
        },
        ignoreip: splitwords(text("ignoreip").unwrap_or_default()),
        ignoreself: flag("ignoreself", true),
        ignorecommand: set("ignorecommand").map(str::to_string),
        ignorecache,
        actions,
        options: all_options(cfg, name),
    })
}

/// Every option a jail sees (its own and DEFAULT's), interpolated; the raw
/// text for the ones that do not interpolate (action shortcuts of unused
/// services refer to options nobody set).
fn all_options(cfg: &Layered, jail: &str) -> BTreeMap<String, String> {
    cfg.options_with_defaults(jail)
        .into_iter()
        .filter(|k| !k.starts_with("known/"))
        .filter_map(|k| {
            let v = match cfg.get(jail, &k, &Vars::new()) {
                Ok(v) => v,
                Err(_) => cfg.raw_text(jail, &k).map(str::to_string),
            };
            v.map(|v| (k, v))
        })
        .collect()
}

fn spec_parts(spec: &str, what: &str) -> Result<(String, OMap<String>), ConfigError> {
    extract_options(spec).map_err(|e| ConfigError::new(format!("invalid {what} {spec:?}: {e}")))
}

pub(crate) fn standalone_filter(
    session: &Session,
    spec: &str,
    backend: &str,
) -> Result<FilterDef, ConfigError> {
    let (name, params) = spec_parts(spec, "filter")?;
    let Some(mut reader) = session.def_reader(false, &name, "fail2ban-regex-jail", params)? else {
        return Err(ConfigError::new(format!(
            "no filter {name:?}: found none of filter.d/{name}.conf, .local under {}",
            session.tree.basedir()
        )));
    };
    reader.apply_backend(backend);
    reader.read(&Vars::new(), false)?;
    filter_def(&name, &reader, None)
}

/// A filter read from the file at `path[params]` itself (`fail2ban-regex`
/// given a filter file outside a filter.d directory).
pub(crate) fn explicit_filter(session: &Session, spec: &str) -> Result<FilterDef, ConfigError> {
    let (path, params) = spec_parts(spec, "filter")?;
    let Some(mut reader) = session.explicit_filter_reader(&path, params)? else {
        return Err(ConfigError::new(format!("no filter file {path}")));
    };
    reader.apply_backend("auto");
    reader.read(&Vars::new(), false)?;
    let name = std::path::Path::new(&path)
        .file_stem()
        .map_or(path.clone(), |s| s.to_string_lossy().into_owned());
    filter_def(&name, &reader, None)
}

pub(crate) fn standalone_action(
    session: &Session,
    spec: &str,
    jail: &str,
) -> Result<ActionDef, ConfigError> {
    let (name, params) = spec_parts(spec, "action")?;
    if name.ends_with(".py") {
        return action_def(session, &ActionRead::python(name, params));
    }
    let Some(mut reader) = session.def_reader(true, &name, jail, params)? else {
        return Err(ConfigError::new(format!(
            "no action {name:?}: found none of action.d/{name}.conf, .local under {}",
            session.tree.basedir()
        )));
    };
    reader.read(&Vars::new(), false)?;
    action_def(session, &ActionRead::Command(reader))
}

/// Python's `str()` of a number of seconds from `str2seconds`.
fn seconds_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub(crate) fn action_properties(
    def: &ActionDef,
    family: Option<&str>,
) -> Result<ActionProperties, ConfigError> {
    let mut props = OMapOpt::new();
    props.insert("timeout", Some("60".to_string()));
    for cmd in [
        "actionstart",
        "actionban",
        "actionreban",
        "actionunban",
        "actioncheck",
        "actionrepair",
        "actionflush",
        "actionstop",
        "actionreload",
    ] {
        props.insert(cmd, Some(String::new()));
    }
    for (k, v) in &def.options {
        match k.as_str() {
            "bantime" => {}
            "timeout" => {
                let secs = parse_time(v).map_err(|e| e.key("timeout"))?;
                props.insert(k.as_str(), Some(seconds_text(secs)));
            }
            _ => props.insert(k.as_str(), Some(v.clone())),
        }
    }
    let conditional = family.map(|f| format!("family={f}")).unwrap_or_default();
    tags::resolve(
        &mut props,
        &conditional,
        &|t| ESCAPED_TAGS.contains(&t),
        &mut |_| Ok(None),
    )
    .map_err(|e| e.in_file(&def.file))?;
    Ok(ActionProperties {
        values: props
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        conditional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_and_levels() {
        let b = parse_backend("systemd[journalpath=/var/log/journal, journalflags=1]").unwrap();
        assert_eq!(b.kind, BackendKind::Systemd);
        assert_eq!(
            b.params[0],
            ("journalpath".to_string(), "/var/log/journal".to_string())
        );
        assert_eq!(parse_backend("Polling").unwrap().kind, BackendKind::Polling);
        assert!(parse_backend("inotify")
            .unwrap_err()
            .contains("unknown backend"));
        assert!(valid_loglevel("debug") && valid_loglevel("10") && !valid_loglevel("loud"));
        assert_eq!(seconds_text(60.0), "60");
        assert_eq!(seconds_text(1.5), "1.5");
    }
}
