//! Reads a Fail2ban configuration tree (or logban's embedded one) and builds the
//! settings of the server, the jails, their filters and their actions.
//!
//! The INI dialect, `.conf`/`.d/`/`.local` layering, `[INCLUDES]`, `%(x)s`
//! interpolation, `<tag>` substitution and `name[k=v]` parameters all live here;
//! the other modules only see the resolved definitions below.
//!
//! Entry point: [`load`] (the directory, or [`embedded`] when it does not
//! exist) or [`ConfigTree`] (`open(dir)` or `embedded(files)`), then
//! [`ConfigTree::server`], [`ConfigTree::jails`], [`ConfigTree::jail`],
//! [`ConfigTree::filter`], [`ConfigTree::action`], and [`dump`] for the
//! command stream `fail2ban-client -d` prints. [`tags`] holds the `<tag>`
//! substitution the action module uses at ban time; [`parse_time`] reads time
//! values.

mod build;
pub mod embedded;
mod error;
mod files;
mod glob;
mod ini;
mod layered;
mod omap;
mod options;
mod reader;
pub mod tags;
mod time;

#[cfg(test)]
mod tests;

pub use embedded::load;
pub use error::{ConfigError, ErrorDetails};
pub use reader::FAIL2BAN_VERSION;
pub use time::parse_time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a filter's `<HOST>` tag treats DNS names (`usedns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UseDns {
    Yes,
    #[default]
    Warn,
    No,
    Raw,
}

impl UseDns {
    /// A `usedns` value, in any case: `yes`, `warn`, `no`, `raw`.
    pub fn parse(v: &str) -> Option<UseDns> {
        Some(match v.to_ascii_lowercase().as_str() {
            "yes" => UseDns::Yes,
            "warn" => UseDns::Warn,
            "no" => UseDns::No,
            "raw" => UseDns::Raw,
            _ => return None,
        })
    }

    /// A value set at run time (`set <jail> usedns`, `fail2ban-regex
    /// --usedns`): one it does not know is logged in Fail2ban's words and
    /// read as the safe `no`, as Fail2ban's `setUseDns` does.
    pub fn parse_or_no(v: &str) -> UseDns {
        UseDns::parse(v).unwrap_or_else(|| {
            // Fail2ban shows the value lower-cased, as it compared it.
            let shown = crate::util::py_repr(&serde_json::Value::from(v.to_lowercase()));
            tracing::error!(target: "fail2ban.filter",
                "Incorrect value {shown} specified for usedns. Using safe 'no'");
            UseDns::No
        })
    }
}

/// A filter after layering, parameters, `%()` interpolation and `<tag>`
/// substitution. The regexes still hold Fail2ban's match tags (`<HOST>`,
/// `<F-USER>`, ...), which the filter engine expands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterDef {
    /// The filter's name as given (`postfix`), without parameters.
    pub name: String,
    pub prefregex: Option<String>,
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub maxlines: usize,
    /// `datepattern`, one pattern per line as in the config (`{^LN-BEG}`), None for the default set.
    pub datepattern: Option<String>,
    /// `journalmatch` terms, each a list of `FIELD=value` joined by `+` in the config
    /// (one entry per line of the value, as written).
    pub journalmatch: Vec<String>,
    /// `journalmatch` as the journal applies it: groups of `FIELD=value` terms
    /// that must all hold; a `+` starts a new group; an entry matches any group.
    pub journal_groups: Vec<Vec<String>>,
    pub usedns: UseDns,
    /// Every combined option, for `-d` dumps and diagnostics.
    pub options: BTreeMap<String, String>,
    /// Where the regexes and the date pattern were set (`file:line`), so
    /// that one that does not compile can be pointed at.
    pub sources: BTreeMap<String, String>,
}

/// An action of a jail after layering, parameters and `%()` interpolation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionDef {
    /// The action's name in its jail (`actname`, else the action.d file name).
    pub name: String,
    /// The action.d file it was read from (`nftables-multiport`).
    pub file: String,
    /// Options in Fail2ban's order: the `[Definition]` commands (`actionstart`,
    /// `actionban`, ...), then the `[Init]` values and parameters, conditional
    /// values under their full key (`addr_set?family=inet6`). Runtime tags
    /// (`<ip>`, `<addr_set>`, `<known/chain>`) are still in the text.
    /// Booleans read as `True`/`False`.
    pub options: Vec<(String, String)>,
    /// For a Python action (`action = smtp.py[...]`): the script's path.
    /// logban does not run Python actions; `options` holds its parameters.
    pub script: Option<String>,
}

impl ActionDef {
    /// The value of option `key` (exact key, conditional keys included).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The properties for `family` (`inet4`, `inet6`, or None when the
    /// action does not depend on the family). See [`tags`] for the runtime
    /// substitution that follows.
    pub fn properties(&self, family: Option<&str>) -> Result<ActionProperties, ConfigError> {
        build::action_properties(self, family)
    }

    /// True when the action has `?family=` values (`addr_set?family=inet6`,
    /// Fail2ban's `^\w+\?family=`), so that it starts per family on the first
    /// ban of that family (unless `actionstart_on_demand` says otherwise).
    pub fn has_family_sections(&self) -> bool {
        self.options.iter().any(|(k, _)| {
            k.split_once("?family=").is_some_and(|(name, _)| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        })
    }
}

/// The properties of an action resolved for one address family, as
/// Fail2ban's server holds them: defaults (`timeout` 60, empty commands),
/// then the action's options (`bantime` ignored, `timeout` in seconds), with
/// tags resolved among them and `opt?family=inet6` preferred for `inet6`.
#[derive(Debug, Clone)]
pub struct ActionProperties {
    values: Vec<(String, String)>,
    conditional: String,
}

impl ActionProperties {
    /// A property, the family's conditional value first.
    pub fn get(&self, name: &str) -> Option<&str> {
        let find = |key: &str| {
            self.values
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        if !self.conditional.is_empty() {
            if let Some(v) = find(&format!("{name}?{}", self.conditional)) {
                return Some(v);
            }
        }
        find(name)
    }

    /// Command `name` (`actionban`, `actionstart`, ...) with every static tag
    /// replaced (Fail2ban's `replaceTag("<actionban>", properties)`): tags of
    /// the properties recursively, then the built-ins; unknown tags such as
    /// `<ip>` stay for the ban's values. Escaped tags (`<matches>`
    /// ...) that are properties are escaped with [`tags::escape_tag`].
    pub fn command(&self, name: &str) -> Result<String, ConfigError> {
        tags::substitute(&format!("<{name}>"), |tag| {
            let v = self.get(tag)?;
            Some(if tags::ESCAPED_TAGS.contains(&tag) {
                tags::escape_tag(v).into()
            } else {
                v.into()
            })
        })
    }
}

/// fail2ban.conf `[Definition]` (with fail2ban.d/ and .local), Fail2ban's
/// defaults where absent.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerDef {
    /// `INFO` unless set: CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG,
    /// TRACEDEBUG, HEAVYDEBUG or a number.
    pub loglevel: String,
    /// A file, `STDOUT`, `STDERR`, `SYSLOG`, `SYSOUT` (default /var/log/fail2ban.log).
    pub logtarget: String,
    pub syslogsocket: String,
    pub socket: String,
    pub pidfile: String,
    /// `auto`, or a yes/no value.
    pub allowipv6: String,
    /// `None` disables the database, `:memory:` keeps it in memory.
    pub dbfile: String,
    /// Seconds (`dbpurgeage = 1d` -> 86400).
    pub dbpurgeage: f64,
    pub dbmaxmatches: Option<u32>,
    /// `[Thread] stacksize` in KiB.
    pub stacksize: Option<u64>,
}

/// The backend of a jail with its parameters (`systemd[journalpath=/x]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub kind: BackendKind,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Auto,
    Pyinotify,
    Gamin,
    Polling,
    Systemd,
}

/// One `logpath` line: a glob, read from the start (`head`, the default) or
/// from the end (`tail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPath {
    pub pattern: String,
    pub tail: bool,
}

impl LogPath {
    /// The existing files matching the glob now, in directory order.
    pub fn expand(&self) -> Vec<String> {
        glob::expand(&self.pattern)
    }
}

/// `bantime.*`: ban times growing with the number of bans of an address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BanTimeIncrement {
    pub enabled: bool,
    /// `bantime.factor` (default 1).
    pub factor: f64,
    /// `bantime.formula`, a Python expression over `ban.Time`, `ban.Count`,
    /// `banFactor` (None: `bantime * 2^min(count,20) * factor`).
    pub formula: Option<String>,
    /// `bantime.multipliers`: replace the formula, indexed by ban count, the
    /// last one repeating.
    pub multipliers: Vec<u64>,
    pub maxtime: Option<f64>,
    pub rndtime: Option<f64>,
    pub overalljails: bool,
}

/// `ignorecache = key="<ip>", max-count=100, max-time=5m`.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoreCache {
    pub key: String,
    pub max_count: u64,
    pub max_time: f64,
}

/// A jail with every option resolved, validated and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct JailDef {
    pub name: String,
    pub enabled: bool,
    pub backend: Backend,
    /// The filter with the jail's overrides applied (`failregex`, `usedns`,
    /// ... set in the jail win); None when `filter` is empty.
    pub filter: Option<FilterDef>,
    /// Empty for the systemd backend (Fail2ban ignores logpath there).
    pub logpath: Vec<LogPath>,
    /// `auto` unless set.
    pub logencoding: String,
    pub logtimezone: Option<String>,
    /// Default 3.
    pub maxretry: u32,
    /// Default 5.
    pub maxmatches: u32,
    /// Seconds, default 600.
    pub findtime: f64,
    /// Seconds, default 600; negative means permanent.
    pub bantime: f64,
    pub bantime_increment: BanTimeIncrement,
    /// Addresses, networks and DNS names, as written.
    pub ignoreip: Vec<String>,
    /// Default true.
    pub ignoreself: bool,
    pub ignorecommand: Option<String>,
    pub ignorecache: Option<IgnoreCache>,
    pub actions: Vec<ActionDef>,
    /// Every jail option found, interpolated, as text.
    pub options: BTreeMap<String, String>,
}

/// A configuration tree: a directory such as /etc/fail2ban or logban's
/// embedded defaults. Every read goes to the files again (call it at start
/// and at reload).
#[derive(Debug, Clone)]
pub struct ConfigTree {
    source: files::Source,
    /// `%(fail2ban_confpath)s` and the base of Python action paths.
    basedir: String,
}

impl ConfigTree {
    /// The tree under `dir`, which must exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<ConfigTree, ConfigError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(ConfigError::new(format!(
                "base configuration directory {} does not exist",
                dir.display()
            )));
        }
        let shown = dir.to_string_lossy();
        let trimmed = shown.trim_end_matches('/');
        let basedir = if trimmed.is_empty() { "/" } else { trimmed };
        Ok(ConfigTree {
            source: files::Source::Dir(PathBuf::from(basedir)),
            basedir: basedir.to_string(),
        })
    }

    /// A tree compiled into the binary: relative path (`jail.conf`,
    /// `filter.d/sshd.conf`) -> content. `%(fail2ban_confpath)s` is
    /// /etc/logban unless [`ConfigTree::with_basedir`] says otherwise.
    pub fn embedded(files: &'static [(&'static str, &'static str)]) -> ConfigTree {
        ConfigTree {
            source: files::Source::Embedded(files),
            basedir: "/etc/logban".to_string(),
        }
    }

    /// Sets the directory the tree is said to live in.
    pub fn with_basedir(mut self, dir: &str) -> ConfigTree {
        self.basedir = dir.trim_end_matches('/').to_string();
        self
    }

    pub fn basedir(&self) -> &str {
        &self.basedir
    }

    /// fail2ban.conf and friends.
    pub fn server(&self) -> Result<ServerDef, ConfigError> {
        build::server(&reader::Session::new(self))
    }

    /// The enabled jails in Fail2ban's order; the first error stops.
    pub fn jails(&self) -> Result<Vec<JailDef>, ConfigError> {
        self.jail_results()?.into_iter().map(|(_, r)| r).collect()
    }

    /// The enabled jails in order, each with its own result, as Fail2ban
    /// starts the good ones and skips the others. The outer error is one
    /// that stops Fail2ban altogether (a syntax or interpolation error).
    #[allow(clippy::type_complexity)]
    pub fn jail_results(&self) -> Result<Vec<(String, Result<JailDef, ConfigError>)>, ConfigError> {
        build::jails(&reader::Session::new(self), None)
    }

    /// Jail `name` whether enabled or not (`enabled` tells).
    pub fn jail(&self, name: &str) -> Result<JailDef, ConfigError> {
        let mut all = build::jails(&reader::Session::new(self), Some(name))?;
        match all.pop() {
            Some((_, r)) => r,
            None => Err(ConfigError::new(format!(
                "no jail [{name}] in jail.conf/jail.local/jail.d"
            ))),
        }
    }

    /// A filter by name with parameters (`postfix[mode=extra]`), as
    /// `fail2ban-regex LOG postfix[mode=extra]` reads it (file backend).
    pub fn filter(&self, spec: &str) -> Result<FilterDef, ConfigError> {
        self.filter_for_backend(spec, "auto")
    }

    /// Like [`ConfigTree::filter`] for a backend (`systemd` selects the
    /// journal `logtype`).
    pub fn filter_for_backend(&self, spec: &str, backend: &str) -> Result<FilterDef, ConfigError> {
        build::standalone_filter(&reader::Session::new(self), spec, backend)
    }

    /// The filter in the file `path` itself (with its includes and `.local`),
    /// with parameters (`/tmp/my.conf[mode=x]`), as `fail2ban-regex` reads a
    /// filter file outside a filter.d directory.
    pub fn explicit_filter(&self, spec: &str) -> Result<FilterDef, ConfigError> {
        build::explicit_filter(&reader::Session::new(self), spec)
    }

    /// An action by name with parameters (`nftables[type=allports]`) for
    /// jail `jail`, without the jail's options.
    pub fn action(&self, spec: &str, jail: &str) -> Result<ActionDef, ConfigError> {
        build::standalone_action(&reader::Session::new(self), spec, jail)
    }
}

/// Splits `name[k=v, ...]` into the name and its parameters in order, as
/// Fail2ban's `extractOptions` does.
pub fn split_spec(spec: &str) -> Result<(String, Vec<(String, String)>), String> {
    let (name, opts) = options::extract_options(spec)?;
    Ok((
        name,
        opts.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    ))
}

/// The command stream `fail2ban-client -d` prints, one Python list repr per
/// line: server settings, then each jail (`add`, filter, options, log paths,
/// actions), then `start` for each jail. Missing log files are allowed, as
/// in Fail2ban's dump.
pub fn dump(tree: &ConfigTree) -> Result<Vec<String>, ConfigError> {
    Ok(stream(tree)?.iter().map(crate::util::py_repr).collect())
}

/// The command stream of [`dump`] as JSON values (the commands Fail2ban's
/// client sends to its server).
pub fn stream(tree: &ConfigTree) -> Result<Vec<serde_json::Value>, ConfigError> {
    build::stream(&reader::Session::new(tree))
}
