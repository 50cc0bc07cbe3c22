//! The daemon (`logban server`, `fail2ban-server`): reads the configuration,
//! starts the jails, wires sources to filters to jails to actions, serves the
//! control socket and writes Fail2ban-style log lines. See
//! docs/architecture.md for the threads and docs/protocol.md for the socket.
//!
//! Start: options and configuration are read and the socket is bound while
//! still attached to the terminal (errors show there); then the process goes
//! to the background (`-b`, the default) and reports back when it answers;
//! then logging, pid file, the store (bans restored, positions read), the
//! jails, the sources, the socket. Reload (`reload`, SIGHUP): see
//! `server/reload.rs`. Stop (`stop`, SIGTERM, SIGINT): sources stop, what
//! they read is still counted, every jail unbans and stops its actions,
//! positions are written, the store closes.

mod commands;
mod control;
mod core;
pub mod daemon;
mod enforce;
mod ingest;
pub(crate) mod launch;
pub mod log;
mod persist;
pub mod protocol;
mod reload;
mod setup;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

pub(crate) use self::commands::number;
use self::core::{Core, Event, ServerState};
use self::daemon::{ControlSocket, PidFile, Ready};
use self::ingest::Sources;
use self::launch::{Plan, Stored};
use self::log::{Level, Log};
use self::persist::StoreHandle;
use self::setup::Backend;
use crate::cli::Opts;
use crate::config::{ConfigError, ConfigTree, JailDef, ServerDef, FAIL2BAN_VERSION};
use crate::source::FileBackend;
use crate::store::{Store, DEFAULT_MAX_MATCHES};

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
    if let Some(text) = opts.help_or_version(USAGE) {
        println!("{text}");
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
    let result = serve(opts, &server, level, jails, socket, foreground, &mut ready);
    if let Err(e) = &result {
        tracing::error!(target: "fail2ban.server", "{e}");
        ready.failed(e);
    }
    result
}

fn serve(
    opts: &Opts,
    server: &ServerDef,
    level: Level,
    jails: Vec<(String, Result<JailDef, ConfigError>)>,
    socket: ControlSocket,
    foreground: bool,
    ready: &mut Ready,
) -> Result<(), String> {
    let log = Log::new(level, &server.logtarget, &server.syslogsocket).map_err(|e| e.0)?;
    log.install().map_err(|e| e.0)?;
    log.log_panics();
    tracing::info!(target: "fail2ban.server", "{}", "-".repeat(50));
    tracing::info!(target: "fail2ban.server",
        "Starting Fail2ban v{FAIL2BAN_VERSION} (logban {})", env!("CARGO_PKG_VERSION"));
    // Read before the log was set up: said again now.
    crate::config::embedded::report(opts.conf.as_deref().map(Path::new))
        .map_err(|e| e.to_string())?;
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

    // Every jail of the configuration, those with errors too: their sets stay.
    let names: Vec<String> = jails.iter().map(|(n, _)| n.clone()).collect();
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
    let defs: Vec<&JailDef> = plans.iter().map(|p| &p.def).collect();
    let history = launch::load_history(server, &defs);
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
        conf: opts.conf.clone(),
        opts: opts.clone(),
        server: server.clone(),
    };
    let result = runtime.block_on(async {
        // Batches of failures on their way to the core (see ingest::QUEUE).
        let (ingest_tx, ingest_rx) = mpsc::channel(4);
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
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let actions = plans.iter().flat_map(|p| &p.def.actions);
        if let Some(sweep) =
            crate::action::sweep_stale_sets(&names, actions, &crate::action::Settings::default())
        {
            tokio::spawn(sweep);
        }
        let mut rts = Vec::new();
        for (id, p) in plans.into_iter().enumerate() {
            rts.push(launch::start_jail(id, p, &mut sources, now, None).0);
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
        let core = Core::new(rts, history, store, state, events_tx, sources);
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
pub(crate) fn db_path(dbfile: &str) -> Option<PathBuf> {
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
    // Old rows go at start, then hourly (the store thread). Then every jail
    // is marked disabled, as Fail2ban does on opening its database; the
    // jails that start enable themselves again, so those no longer
    // configured go at a later purge once their bans have.
    let marked = store
        .purge(crate::util::now() as i64)
        .map(drop)
        .and_then(|()| store.disable_all_jails());
    if let Err(e) = marked {
        tracing::error!(target: "fail2ban.database", "{e}");
    }
    Ok(Some(store))
}

/// A jail ready to start at server start: checked, its stored state read.
fn plan(def: JailDef, store: Option<&mut Store>, now: f64) -> Result<Plan, String> {
    let p = launch::prepare(def)?;
    let stored = match store {
        Some(store) => launch::read_stored(store, &p, now, true)?,
        None => Stored::default(),
    };
    Ok(launch::finish(p, stored, now))
}

/// SIGTERM and SIGINT stop the server, SIGUSR1 reopens the log, SIGHUP
/// reloads the configuration.
async fn signals(events: mpsc::UnboundedSender<Event>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(target: "fail2ban.server", "cannot install signal handlers");
        return;
    };
    loop {
        let ev = tokio::select! {
            _ = term.recv() => Event::Stop,
            _ = int.recv() => Event::Stop,
            _ = usr1.recv() => Event::FlushLogs,
            _ = hup.recv() => Event::Reload,
        };
        if events.send(ev).is_err() {
            return;
        }
    }
}
