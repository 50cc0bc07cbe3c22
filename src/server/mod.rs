//! The daemon (`logban server`, `fail2ban-server`): reads the configuration,
//! starts the jails, wires sources to filters to jails to actions, serves the
//! control socket and writes Fail2ban-style log lines. See
//! docs/architecture.md for the threads and docs/protocol.md for the socket.
//!
//! Start: options and configuration are read and the socket is bound while
//! still attached to the terminal (errors show there); then the process goes
//! to the background (`-b`, the default) and reports back when it answers;
//! then logging, pid file, the store (bans restored, positions read), the
//! jails, the sources, the socket. Stop (`stop`, SIGTERM, SIGINT): sources
//! stop, what they read is still counted, every jail unbans and stops its
//! actions, positions are written, the store closes.

mod commands;
mod control;
mod core;
pub mod daemon;
mod enforce;
mod ingest;
pub mod log;
mod persist;
pub mod protocol;
mod setup;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use self::core::{Core, Event, History, JailRt, ServerState, SourceInfo};
use self::daemon::{ControlSocket, PidFile, Ready};
use self::enforce::{ActionWorker, Op};
use self::ingest::{FileJail, Sources, JOURNAL_LOG};
use self::log::{Level, Log};
use self::persist::StoreHandle;
use self::setup::Backend;
use crate::cli::Opts;
use crate::config::{ConfigError, ConfigTree, JailDef, ServerDef, FAIL2BAN_VERSION};
use crate::jail::{BanId, BanOutcome, IgnoreCheck, Jail, PastBan, IGNORE_COMMAND_TIMEOUT};
use crate::notice;
use crate::source::{FileBackend, StoredPos};
use crate::store::{Restore, Store, DEFAULT_MAX_MATCHES};

const USAGE: &str = "Usage: logban server [OPTIONS] [start]
  (also installed as fail2ban-server)

  -c <DIR>                configuration directory (default /etc/fail2ban; logban's
                          embedded defaults when it does not exist)
  -s <FILE>               socket path
  -p <FILE>               pid file path
  --loglevel <LEVEL>      logging level
  --logtarget <TARGET>    logging target: a file, STDOUT, STDERR or SYSLOG
  --syslogsocket auto|<FILE>
  -x                      remove the socket file left by a server that died
  -b                      start in the background (default)
  -f                      stay in the foreground
  -h, --help              this help
  -V, --version           the version";

/// `logban server ARGS`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let (opts, words) = match crate::cli::parse_opts(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return 255;
        }
    };
    if opts.help {
        println!("{USAGE}");
        return 0;
    }
    if opts.version {
        println!("{FAIL2BAN_VERSION}");
        return 0;
    }
    if !matches!(words.as_slice(), [] | [_]) || words.first().is_some_and(|w| w != "start") {
        eprintln!("unknown command {words:?}\n{USAGE}");
        return 255;
    }
    match run(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ERROR   {e}");
            255
        }
    }
}

/// The configuration tree: `-c DIR`, else /etc/fail2ban; logban's
/// embedded defaults when that directory does not exist.
pub fn config_tree(dir: Option<&str>) -> Result<ConfigTree, String> {
    crate::config::load(dir.map(Path::new)).map_err(|e| e.to_string())
}

/// The server settings with the command line's overrides.
pub fn server_settings(tree: &ConfigTree, opts: &Opts) -> Result<ServerDef, String> {
    let mut s = tree.server().map_err(|e| e.to_string())?;
    let over = |v: &Option<String>, field: &mut String| {
        if let Some(v) = v {
            *field = v.clone();
        }
    };
    over(&opts.socket, &mut s.socket);
    over(&opts.pidfile, &mut s.pidfile);
    over(&opts.loglevel, &mut s.loglevel);
    over(&opts.logtarget, &mut s.logtarget);
    over(&opts.syslogsocket, &mut s.syslogsocket);
    Ok(s)
}

fn run(opts: &Opts) -> Result<(), String> {
    let tree = config_tree(opts.conf.as_deref())?;
    let server = server_settings(&tree, opts)?;
    let level = Level::parse(&server.loglevel)
        .ok_or_else(|| format!("invalid log level {:?}", server.loglevel))?;
    let jails = tree.jail_results().map_err(|e| e.to_string())?;
    let socket =
        ControlSocket::bind(Path::new(&server.socket), opts.force).map_err(|e| e.to_string())?;
    let foreground = opts.foreground.unwrap_or(false);
    let mut ready = if foreground {
        Ready::foreground()
    } else {
        let to_terminal = matches!(
            server.logtarget.to_ascii_uppercase().as_str(),
            "STDOUT" | "STDERR" | "SYSOUT"
        );
        daemon::daemonize(to_terminal).map_err(|e| format!("cannot go to the background: {e}"))?
    };
    let conf = opts.conf.as_deref().map(Path::new);
    let result = serve(conf, &server, level, jails, socket, foreground, &mut ready);
    if let Err(e) = &result {
        tracing::error!(target: "fail2ban.server", "{e}");
        ready.failed(e);
    }
    result
}

fn serve(
    conf: Option<&Path>,
    server: &ServerDef,
    level: Level,
    jails: Vec<(String, Result<JailDef, ConfigError>)>,
    socket: ControlSocket,
    foreground: bool,
    ready: &mut Ready,
) -> Result<(), String> {
    let log = Log::new(level, &server.logtarget, &server.syslogsocket).map_err(|e| e.0)?;
    log.install().map_err(|e| e.0)?;
    tracing::info!(target: "fail2ban.server", "{}", "-".repeat(50));
    tracing::info!(target: "fail2ban.server",
        "Starting Fail2ban v{FAIL2BAN_VERSION} (logban {})", env!("CARGO_PKG_VERSION"));
    // Read before the log was set up: said again now.
    crate::config::embedded::report(conf).map_err(|e| e.to_string())?;
    if !foreground {
        tracing::info!(target: "fail2ban.server", "Daemon started");
    }
    let _pid = match PidFile::create(Path::new(&server.pidfile)) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(target: "fail2ban.server", "Unable to create PID file: {e}");
            None
        }
    };
    let mut store = open_store(server)?;
    let now = crate::util::now();

    let mut plans = Vec::new();
    for (name, def) in jails {
        match def
            .map_err(|e| e.to_string())
            .and_then(|d| plan(d, store.as_mut(), now))
        {
            Ok(p) => plans.push(p),
            Err(e) => {
                tracing::error!(target: "fail2ban.jailreader", "{e}");
                tracing::error!(target: "fail2ban.jailreader", "Errors in jail {name:?}. Skipping...");
            }
        }
    }
    let history = load_history(server, &plans);
    let (store, store_thread) =
        StoreHandle::start(store).map_err(|e| format!("cannot start the store thread: {e}"))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let state = ServerState {
        log,
        loglevel: server.loglevel.to_uppercase(),
        syslogsocket: server.syslogsocket.clone(),
        dbfile: db_path(&server.dbfile).map(|p| p.to_string_lossy().into_owned()),
        dbpurgeage: server.dbpurgeage,
        dbmaxmatches: server
            .dbmaxmatches
            .map_or(DEFAULT_MAX_MATCHES, |n| n as usize),
    };
    let result = runtime.block_on(async {
        let (ingest_tx, ingest_rx) = mpsc::channel(16);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let files_backend = if plans
            .iter()
            .all(|p| !matches!(p.backend, Backend::Files(FileBackend::Inotify)))
        {
            FileBackend::Polling
        } else {
            FileBackend::Inotify
        };
        let mut sources = Sources::start(files_backend, ingest_tx)
            .map_err(|e| format!("cannot follow log files: {e}"))?;
        let mut rts = Vec::new();
        for (id, p) in plans.into_iter().enumerate() {
            rts.push(start_jail(id, p, &mut sources, now));
        }
        sources.watch();
        let listener = socket
            .listener
            .try_clone()
            .map_err(|e| format!("control socket: {e}"))?;
        tokio::spawn(signals(events_tx.clone()));
        let ev = events_tx.clone();
        let inflight = Arc::new(control::InFlight::default());
        let served = inflight.clone();
        tokio::spawn(async move {
            if let Err(e) = control::serve(listener, ev, served).await {
                tracing::error!(target: "fail2ban.server", "control socket: {e}");
            }
        });
        let core = Core::new(
            rts,
            history,
            store,
            state,
            events_tx,
            Box::new(move || sources.stop()),
        );
        ready.ready();
        if foreground {
            println!("Server ready");
        }
        core.run(ingest_rx, events_rx).await;
        inflight.wait(std::time::Duration::from_secs(2)).await;
        Ok::<(), String>(())
    });
    drop(runtime);
    store_thread.join();
    tracing::info!(target: "fail2ban.server", "Exiting Fail2ban");
    drop(socket);
    result
}

/// The database file, None for `dbfile = None`.
fn db_path(dbfile: &str) -> Option<PathBuf> {
    (!dbfile.trim().is_empty() && !dbfile.trim().eq_ignore_ascii_case("none"))
        .then(|| PathBuf::from(dbfile.trim()))
}

fn open_store(server: &ServerDef) -> Result<Option<Store>, String> {
    let Some(path) = db_path(&server.dbfile) else {
        return Ok(None);
    };
    let memory = path.as_os_str() == ":memory:";
    if !memory {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "database {}: cannot create {}: {e}",
                    path.display(),
                    dir.display()
                )
            })?;
        }
    }
    let new = !memory && std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
    let mut store = Store::open(&path).map_err(|e| e.to_string())?;
    tracing::info!(target: "fail2ban.database",
        "Connected to fail2ban persistent database '{}'", path.display());
    if new {
        tracing::warn!(target: "fail2ban.database",
            "New database created. Version '{}'", crate::store::SCHEMA_VERSION);
    }
    store.set_purge_age(server.dbpurgeage as i64);
    store.set_max_matches(
        server
            .dbmaxmatches
            .map_or(DEFAULT_MAX_MATCHES, |n| n as usize),
    );
    // Old rows go at start, then hourly (the store thread).
    if let Err(e) = store.purge(crate::util::now() as i64) {
        tracing::error!(target: "fail2ban.database", "{e}");
    }
    Ok(Some(store))
}

/// A jail ready to start: its settings checked, its stored state read.
struct Plan {
    def: JailDef,
    jail: Jail,
    backend: Backend,
    backend_name: &'static str,
    filter: Option<crate::filter::Filter>,
    stored: Vec<(PathBuf, StoredPos)>,
    /// Bans restored from the store, as the actions get them.
    restored: Vec<(crate::jail::Ban, crate::action::Ticket)>,
}

fn plan(def: JailDef, store: Option<&mut Store>, now: f64) -> Result<Plan, String> {
    let settings = setup::jail_settings(&def)?;
    let filter = setup::build_filter(&def)?;
    let (backend, backend_name) = setup::backend(&def);
    let mut jail = Jail::new(settings);
    let mut stored = Vec::new();
    let mut restored = Vec::new();
    if let Some(store) = store {
        let e = |e: crate::store::StoreError| e.to_string();
        store.add_jail(&def.name).map_err(e)?;
        for path in store.log_paths(Some(&def.name)).map_err(e)? {
            if let Some(p) = store.log_position(&def.name, &path).map_err(e)? {
                stored.push((
                    PathBuf::from(path),
                    StoredPos {
                        pos: p.lastfilepos,
                        firstlinemd5: p.firstlinemd5.unwrap_or_default(),
                    },
                ));
            }
        }
        let q = Restore {
            now: now as i64,
            within: (!def.bantime_increment.enabled).then_some(def.bantime as i64),
            jail_bantime: def.bantime as i64,
            max_bantime: Some(jail.max_ban_time() as i64),
            max_matches: Some(def.maxmatches as usize),
        };
        let merged = enforce::uses_merged(&def.actions);
        for r in store.current_bans(&def.name, &q).map_err(e)? {
            let ban = core::restored_ban(&r);
            if restored_is_ignored(&mut jail, &ban, now) {
                continue;
            }
            if let BanOutcome::New(b) = jail.restore(ban, now) {
                let m = if merged {
                    Some((
                        store.bans_merged(&r.ip, None).map_err(e)?,
                        store.bans_merged(&r.ip, Some(&def.name)).map_err(e)?,
                    ))
                } else {
                    None
                };
                let t = enforce::ticket(&b, m);
                restored.push((b, t));
            }
        }
    }
    Ok(Plan {
        def,
        jail,
        backend,
        backend_name,
        filter,
        stored,
        restored,
    })
}

/// Fail2ban checks restored bans against the ignore rules (and logs it).
fn restored_is_ignored(jail: &mut Jail, ban: &crate::jail::Ban, now: f64) -> bool {
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
/// when some jail uses it.
fn load_history(server: &ServerDef, plans: &[Plan]) -> History {
    let enabled = plans.iter().any(|p| p.def.bantime_increment.enabled);
    let mut h = History::new(enabled);
    let Some(path) = db_path(&server.dbfile).filter(|p| enabled && p.as_os_str() != ":memory:")
    else {
        return h;
    };
    let names: BTreeMap<&str, Arc<str>> = plans
        .iter()
        .map(|p| (p.def.name.as_str(), Arc::from(p.def.name.as_str())))
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

/// Starts a jail: actions with its restored bans, then its sources.
fn start_jail(id: usize, p: Plan, sources: &mut Sources, now: f64) -> JailRt {
    let def = &p.def;
    let name: Arc<str> = Arc::from(def.name.as_str());
    tracing::info!(target: "fail2ban.jail", "Creating new jail '{name}'");
    tracing::info!(target: "fail2ban.jail", "Jail '{name}' uses {} {{}}", p.backend_name);
    tracing::info!(target: "fail2ban.jail", "Initiated '{}' backend", match p.backend {
        Backend::Files(FileBackend::Polling) => "polling",
        Backend::Files(FileBackend::Inotify) => "pyinotify",
        Backend::Journal => "systemd",
    });
    if let Some(f) = &def.filter {
        if f.maxlines > 1 {
            tracing::info!(target: "fail2ban.filter", "  maxLines: {}", f.maxlines);
        }
    }
    tracing::info!(target: "fail2ban.filter", "  maxRetry: {}", def.maxretry);
    tracing::info!(target: "fail2ban.filter", "  findtime: {}", setup::seconds(def.findtime));
    tracing::info!(target: "fail2ban.actions", "  banTime: {}", setup::seconds(def.bantime));
    tracing::info!(target: "fail2ban.filter", "  encoding: {}", encoding(&def.logencoding));
    let actions = ActionWorker::start(&name, &def.actions);
    let source = match (&p.backend, p.filter) {
        (Backend::Journal, filter) => {
            let info = SourceInfo::Journal(setup::journal_matches(def));
            if let Some(filter) = filter {
                match journal(def, &p.stored, now).and_then(|o| sources.add_journal(id, filter, o))
                {
                    Ok(()) => {}
                    Err(e) => tracing::error!(target: "fail2ban.jail", "[{name}] {e}"),
                }
            }
            info
        }
        (Backend::Files(_), filter) => {
            if filter.is_none() && !def.logpath.is_empty() {
                tracing::warn!(target: "fail2ban.jail",
                    "[{name}] no filter: the log files of the jail are not read");
            }
            if let (Some(fdef), Some(filter)) = (&def.filter, filter) {
                let fj = Arc::new(FileJail {
                    jail: id,
                    name: name.clone(),
                    filter: fdef.clone(),
                    opts: setup::filter_options(def),
                    stored: p.stored.clone(),
                    spare: std::sync::Mutex::new(Some(filter)),
                });
                for lp in &def.logpath {
                    let seek = setup::seek_time(def, now - def.findtime);
                    sources.add_file(&fj, &lp.pattern, lp.tail, seek);
                }
            }
            SourceInfo::Files(Vec::new())
        }
    };
    tracing::info!(target: "fail2ban.jail", "Jail '{name}' started");
    let mut tickets = Vec::with_capacity(p.restored.len());
    for (b, t) in p.restored {
        notice!(target: "fail2ban.actions", "[{name}] Restore Ban {}", b.id);
        tickets.push(t);
    }
    actions.sender().send(Op::Start(tickets), None);
    JailRt {
        name,
        jail: p.jail,
        source,
        actions,
        merged: enforce::uses_merged(&def.actions),
        one_source: Default::default(),
    }
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

fn encoding(e: &str) -> &str {
    if e.eq_ignore_ascii_case("auto") {
        "UTF-8"
    } else {
        e
    }
}

/// SIGTERM and SIGINT stop the server, SIGUSR1 reopens the log.
async fn signals(events: mpsc::UnboundedSender<Event>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!(target: "fail2ban.server", "cannot install signal handlers");
        return;
    };
    loop {
        let ev = tokio::select! {
            _ = term.recv() => Event::Stop,
            _ = int.recv() => Event::Stop,
            _ = usr1.recv() => Event::FlushLogs,
        };
        if events.send(ev).is_err() {
            return;
        }
    }
}
