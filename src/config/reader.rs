//! Fail2ban's readers over layered files: the filter and action readers
//! (`[Definition]`, `[Init]`, parameters, `<tag>` resolution), the jail reader
//! (two passes so that a jail sees its filter's values as `known/...`), the
//! server reader, and the command stream they produce (what
//! `fail2ban-client -d` prints).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde_json::Value;

use super::error::{ConfigError, Origin};
use super::files::Files;
use super::ini::DEFAULT;
use super::layered::{split_conditional, Layered, Vars};
use super::omap::OMap;
use super::options::{
    as_bool, extract_options, py_int, shlex_split, split_with_options, splitwords,
};
use super::tags::{self, OMapOpt, ESCAPED_TAGS};
use super::{glob, ConfigTree};
use crate::util::py_str_repr;

/// The Fail2ban version logban answers as (`%(fail2ban_version)s`).
pub const FAIL2BAN_VERSION: &str = "1.0.2";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Ty {
    Str,
    Int,
    Bool,
}

/// A filter's own options, which a jail may override.
pub(crate) const FILTER_OPTS: [(&str, Ty); 7] = [
    ("usedns", Ty::Str),
    ("prefregex", Ty::Str),
    ("ignoreregex", Ty::Str),
    ("failregex", Ty::Str),
    ("maxlines", Ty::Int),
    ("datepattern", Ty::Str),
    ("journalmatch", Ty::Str),
];

/// An action's commands and flags.
pub(crate) const ACTION_OPTS: [(&str, Ty); 13] = [
    ("actionstart", Ty::Str),
    ("actionstart_on_demand", Ty::Bool),
    ("actionstop", Ty::Str),
    ("actionflush", Ty::Str),
    ("actionreload", Ty::Str),
    ("actioncheck", Ty::Str),
    ("actionrepair", Ty::Str),
    ("actionrepair_on_unban", Ty::Bool),
    ("actionban", Ty::Str),
    ("actionprolong", Ty::Str),
    ("actionreban", Ty::Str),
    ("actionunban", Ty::Str),
    ("norestored", Ty::Bool),
];

/// One option a reader asks for: name, type, value when absent (as text).
pub(crate) struct Spec {
    pub name: &'static str,
    pub ty: Ty,
    pub default: Option<&'static str>,
}

impl Spec {
    fn default_value(&self) -> Option<Value> {
        self.default.and_then(|d| convert(d, self.ty))
    }
}

pub(crate) const fn spec(name: &'static str, ty: Ty) -> Spec {
    Spec {
        name,
        ty,
        default: None,
    }
}

pub(crate) const fn spec_or(name: &'static str, ty: Ty, default: &'static str) -> Spec {
    Spec {
        name,
        ty,
        default: Some(default),
    }
}

const JAIL_FIRST: [Spec; 3] = [
    spec_or("enabled", Ty::Bool, "false"),
    spec_or("backend", Ty::Str, "auto"),
    spec_or("filter", Ty::Str, ""),
];

const JAIL_OPTS: [Spec; 29] = [
    spec_or("enabled", Ty::Bool, "false"),
    spec_or("backend", Ty::Str, "auto"),
    spec("maxretry", Ty::Int),
    spec("maxmatches", Ty::Int),
    spec("findtime", Ty::Str),
    spec("bantime", Ty::Str),
    spec("bantime.increment", Ty::Bool),
    spec("bantime.factor", Ty::Str),
    spec("bantime.formula", Ty::Str),
    spec("bantime.multipliers", Ty::Str),
    spec("bantime.maxtime", Ty::Str),
    spec("bantime.rndtime", Ty::Str),
    spec("bantime.overalljails", Ty::Bool),
    spec("ignorecommand", Ty::Str),
    spec("ignoreself", Ty::Bool),
    spec("ignoreip", Ty::Str),
    spec("ignorecache", Ty::Str),
    spec_or("filter", Ty::Str, ""),
    spec("logtimezone", Ty::Str),
    spec("logencoding", Ty::Str),
    spec("logpath", Ty::Str),
    spec_or("action", Ty::Str, ""),
    spec("usedns", Ty::Str),
    spec("prefregex", Ty::Str),
    spec("ignoreregex", Ty::Str),
    spec("failregex", Ty::Str),
    spec("maxlines", Ty::Int),
    spec("datepattern", Ty::Str),
    spec("journalmatch", Ty::Str),
];

/// Jail options that are not sent as plain `set` commands.
const JAIL_NOT_SET: [&str; 10] = [
    "action",
    "filter",
    "enabled",
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

pub(crate) fn py_repr_str(s: &str) -> String {
    let mut out = String::new();
    py_str_repr(&mut out, s);
    out
}

/// A typed value as Python's `str()` prints it (for `vars`).
pub(crate) fn py_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn vars_of(opts: &OMap<Value>) -> Vars {
    opts.iter()
        .filter_map(|(k, v)| py_str(v).map(|s| (k.to_string(), s)))
        .collect()
}

/// Converts a string to `ty`; None when it is not a valid integer.
fn convert(text: &str, ty: Ty) -> Option<Value> {
    match ty {
        Ty::Str => Some(Value::from(text)),
        Ty::Bool => Some(Value::Bool(as_bool(text))),
        Ty::Int => py_int(text).map(Value::from),
    }
}

fn bad_int(text: &str) -> ConfigError {
    ConfigError::new(format!("{text:?} is not an integer"))
}

/// Options read from one section with types, as Fail2ban's `getOptions`:
/// missing ones take their default (or stay absent); when the section does
/// not exist every option takes its default (None included). A value that
/// does not convert becomes None and is reported in `errors`.
pub(crate) struct Read {
    pub typed: OMap<Value>,
    pub errors: Vec<ConfigError>,
}

pub(crate) fn read_options(
    cfg: &Layered,
    section: &str,
    specs: &[Spec],
) -> Result<Read, ConfigError> {
    let mut out = Read {
        typed: OMap::new(),
        errors: Vec::new(),
    };
    let exists = section == DEFAULT || cfg.has_section(section);
    for s in specs {
        if !exists {
            out.typed
                .insert(s.name, s.default_value().unwrap_or(Value::Null));
            continue;
        }
        match cfg.get(section, s.name, &Vars::new())? {
            Some(text) => {
                let v = convert(&text, s.ty).unwrap_or_else(|| {
                    out.errors.push(
                        bad_int(&text)
                            .at(cfg.origin(section, s.name))
                            .section(section)
                            .key(s.name),
                    );
                    Value::Null
                });
                out.typed.insert(s.name, v);
            }
            None => {
                if let Some(d) = s.default_value() {
                    out.typed.insert(s.name, d);
                }
            }
        }
    }
    Ok(out)
}

/// Reading state shared by one pass over a tree: parsed files and merged
/// filter/action configurations, reused by every jail.
pub(crate) struct Session<'t> {
    pub tree: &'t ConfigTree,
    pub files: Files<'t>,
    defs: RefCell<HashMap<String, Option<Rc<Layered>>>>,
}

impl<'t> Session<'t> {
    pub fn new(tree: &'t ConfigTree) -> Session<'t> {
        Session {
            tree,
            files: Files::new(&tree.source),
            defs: RefCell::new(HashMap::new()),
        }
    }

    fn def_config(&self, rel: &str) -> Result<Option<Rc<Layered>>, ConfigError> {
        if let Some(hit) = self.defs.borrow().get(rel) {
            return Ok(hit.clone());
        }
        let loaded = self.files.load(rel)?.map(Rc::new);
        self.defs
            .borrow_mut()
            .insert(rel.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// A filter or action reader for `filter.d/NAME` / `action.d/NAME`;
    /// None when no file of that name exists.
    pub fn def_reader(
        &self,
        action: bool,
        file: &str,
        jail: &str,
        params: OMap<String>,
    ) -> Result<Option<DefReader>, ConfigError> {
        let dir = if action { "action.d" } else { "filter.d" };
        let Some(cfg) = self.def_config(&format!("{dir}/{file}"))? else {
            return Ok(None);
        };
        Ok(Some(self.reader_of(cfg, action, file, jail, params)))
    }

    /// A filter reader for the file at `path` itself (not under filter.d);
    /// None when it does not exist.
    pub fn explicit_filter_reader(
        &self,
        path: &str,
        params: OMap<String>,
    ) -> Result<Option<DefReader>, ConfigError> {
        let Some(cfg) = self.files.load_explicit(path)? else {
            return Ok(None);
        };
        Ok(Some(self.reader_of(
            Rc::new(cfg),
            false,
            path,
            "fail2ban-regex-jail",
            params,
        )))
    }

    fn reader_of(
        &self,
        cfg: Rc<Layered>,
        action: bool,
        file: &str,
        jail: &str,
        params: OMap<String>,
    ) -> DefReader {
        let mut init: OMapOpt = params.into_iter().map(|(k, v)| (k, Some(v))).collect();
        if action {
            // The action's name in its jail: `name` defaults to the jail,
            // `actname` to the file (suffixed when `name` differs).
            let name = match init.get("name").cloned().flatten() {
                Some(n) => n,
                None => {
                    init.insert("name", Some(jail.to_string()));
                    jail.to_string()
                }
            };
            if init.get("actname").cloned().flatten().is_none() {
                let mut actname = file.to_string();
                if name != jail {
                    match name.strip_prefix(jail) {
                        Some(rest) => actname.push_str(rest),
                        None => {
                            actname.push('-');
                            actname.push_str(&name);
                        }
                    }
                }
                init.insert("actname", Some(actname));
            }
        }
        DefReader {
            action,
            file: file.to_string(),
            cfg,
            init,
            opts: OMapOpt::new(),
            p_opts: Vars::new(),
            cache: RefCell::new(HashMap::new()),
        }
    }
}

/// A filter or an action being read: `[Definition]` values, `[Init]`
/// values and parameters, and the values a jail passes in.
pub(crate) struct DefReader {
    pub action: bool,
    pub file: String,
    cfg: Rc<Layered>,
    /// Parameters, then `[Init]` values (and `known/` copies of them).
    init: OMapOpt,
    /// `[Definition]` values.
    opts: OMapOpt,
    /// The variables `[Definition]` was interpolated with.
    p_opts: Vars,
    cache: RefCell<HashMap<String, Option<String>>>,
}

impl DefReader {
    fn table(&self) -> &'static [(&'static str, Ty)] {
        if self.action {
            &ACTION_OPTS
        } else {
            &FILTER_OPTS
        }
    }

    /// The first file of this filter or action, to name in errors.
    pub fn main_file(&self) -> &str {
        self.cfg
            .files
            .first()
            .map_or(self.file.as_str(), String::as_str)
    }

    /// Where `[Definition]` option `key` was set (a parameter has no place).
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        if self.init.get(key).is_some_and(Option::is_some) {
            return None;
        }
        self.cfg.origin("Definition", key)
    }

    pub fn actname(&self) -> String {
        self.init
            .get("actname")
            .cloned()
            .flatten()
            .unwrap_or_else(|| self.file.clone())
    }

    /// Sets `logtype` from the backend unless a parameter or the filter's
    /// own `[Definition]` sets it.
    pub fn apply_backend(&mut self, backend: &str) {
        let given = self
            .init
            .get("logtype")
            .and_then(|v| v.as_deref())
            .is_some_and(|v| !v.is_empty());
        let own = self
            .cfg
            .sections
            .get("Definition")
            .is_some_and(|s| s.contains_key("logtype"));
        if !given && !own {
            let lt = if backend.starts_with("systemd") {
                "journal"
            } else {
                "file"
            };
            self.init.insert("logtype", Some(lt.to_string()));
        }
    }

    /// Reads `[Definition]` (options the jail passes in are skipped) and
    /// `[Init]`; with `all`, every `[Definition]` and DEFAULT option too.
    pub fn read(&mut self, jail_opts: &Vars, all: bool) -> Result<(), ConfigError> {
        let mut p = jail_opts.clone();
        for (k, v) in self.init.iter() {
            if let Some(v) = v {
                p.insert(k, v.clone());
            }
        }
        let has_def = self.cfg.has_section("Definition");
        let mut opts = OMapOpt::new();
        for (name, _) in self.table() {
            if p.contains_key(name) {
                continue;
            }
            if !has_def {
                opts.insert(*name, None);
            } else if let Some(v) = self.get("Definition", name, &p)? {
                opts.insert(*name, Some(v));
            }
        }
        self.p_opts = p;
        if self.cfg.has_section("Init") {
            for opt in self.cfg.own_options("Init") {
                let mut v = None;
                if !opt.starts_with("known/") {
                    v = self.get("Init", &opt, &Vars::new())?;
                    self.init.insert(format!("known/{opt}"), v.clone());
                }
                if !self.init.contains_key(&opt) {
                    if v.is_none() {
                        v = self.get("Init", &opt, &Vars::new())?;
                    }
                    self.init.insert(opt, v);
                }
            }
        }
        if all && has_def {
            for opt in self.cfg.options_with_defaults("Definition") {
                if opts.contains_key(&opt) {
                    continue;
                }
                let v = self.get("Definition", &opt, &Vars::new())?;
                opts.insert(opt, v);
            }
        }
        self.opts = opts;
        Ok(())
    }

    fn get(&self, section: &str, opt: &str, vars: &Vars) -> Result<Option<String>, ConfigError> {
        self.cfg.get(section, opt, vars)
    }

    /// A `[Definition]` value for a tag that is not an option (`known/x`,
    /// `sec/x`, or a DEFAULT/`[Definition]` value not read yet).
    fn comb_option(&self, name: &str) -> Result<Option<String>, ConfigError> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return Ok(hit.clone());
        }
        let v = self.cfg.get_ex("Definition", name, &self.p_opts)?;
        self.cache.borrow_mut().insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// `[Definition]` and `[Init]`/parameter values merged, tags resolved
    /// (conditional options and `ignore` left alone).
    pub fn combined(&self, ignore: &[&str]) -> Result<OMapOpt, ConfigError> {
        let mut combined = self.opts.clone();
        for (k, v) in self.init.iter() {
            combined.insert(k, v.clone());
        }
        if combined.is_empty() {
            return Ok(combined);
        }
        let mut skip: HashSet<String> = ignore.iter().map(|s| s.to_string()).collect();
        for k in combined.keys() {
            if let Some((base, _)) = split_conditional(k) {
                skip.insert(base.to_string());
            }
        }
        tags::resolve(&mut combined, "", &|t| skip.contains(t), &mut |t| {
            self.comb_option(t)
        })
        .map_err(|e| e.in_file(self.main_file()))?;
        Ok(combined)
    }

    /// Typed values (integers and booleans of the option table); values that
    /// do not convert become None and are reported.
    pub fn typed(&self, combined: &OMapOpt) -> (OMap<Value>, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let mut out = OMap::new();
        for (k, v) in combined.iter() {
            let ty = self
                .table()
                .iter()
                .find(|(n, _)| *n == k)
                .map_or(Ty::Str, |(_, t)| *t);
            let value = match v {
                None => Value::Null,
                Some(text) => convert(text, ty).unwrap_or_else(|| {
                    errors.push(
                        bad_int(text)
                            .in_file(self.main_file())
                            .section("Definition")
                            .key(k),
                    );
                    Value::Null
                }),
            };
            out.insert(k, value);
        }
        (out, errors)
    }

    /// The `known/` copies for the jail: the filter's combined values.
    pub fn combined_strings(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let combined = self.combined(&[])?;
        let (typed, _) = self.typed(&combined);
        Ok(typed
            .iter()
            .filter_map(|(k, v)| py_str(v).map(|s| (k.to_string(), s)))
            .collect())
    }

    /// The action's option list as the stream sends it: commands and flags
    /// (resolved), then parameters and `[Init]` values (as written).
    pub fn action_options(&self) -> Result<(OptionList, Vec<ConfigError>), ConfigError> {
        let mut ignore: Vec<&str> = ESCAPED_TAGS.to_vec();
        ignore.extend(["timeout", "bantime"]);
        let combined = self.combined(&ignore)?;
        let (typed, errors) = self.typed(&combined);
        let is_cmd = |k: &str| ACTION_OPTS.iter().any(|(n, _)| *n == k);
        let mut multi: Vec<(String, Value)> = typed
            .iter()
            .filter(|(k, _)| is_cmd(k) && !k.starts_with("known/"))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (k, v) in self.init.iter() {
            if !is_cmd(k) && !k.starts_with("known/") {
                multi.push((k.to_string(), v.clone().map_or(Value::Null, Value::from)));
            }
        }
        Ok((multi, errors))
    }
}

/// Appends a filter's commands (Fail2ban's `_fillStream`): `usedns` first,
/// then `prefregex`/`maxlines` in order before the rest.
pub(crate) fn fill_filter_stream<'a>(
    stream: &mut Vec<Value>,
    opts: impl Iterator<Item = (&'a str, &'a Value)>,
    jail: &str,
) -> Result<(), ConfigError> {
    let mut front = 0;
    for (opt, value) in opts {
        if value.is_null() {
            continue;
        }
        match opt {
            "failregex" | "ignoreregex" => {
                let text = value.as_str().unwrap_or_default();
                let multi: Vec<&str> = text.split('\n').filter(|r| !r.is_empty()).collect();
                let cmd = format!("add{opt}");
                match multi.as_slice() {
                    [] => {}
                    [one] => stream.push(serde_json::json!(["set", jail, cmd, one])),
                    many => stream.push(serde_json::json!(["multi-set", jail, cmd, many])),
                }
            }
            "usedns" | "maxlines" | "prefregex" => {
                let at = if opt == "usedns" { 0 } else { front };
                stream.insert(
                    at.min(stream.len()),
                    serde_json::json!(["set", jail, opt, value]),
                );
                front += 1;
            }
            "journalmatch" => {
                let text = value.as_str().unwrap_or_default();
                for line in text.split('\n').filter(|l| !l.is_empty()) {
                    let words = shlex_split(line).map_err(|e| {
                        ConfigError::new(format!("{e} in {line:?}")).key("journalmatch")
                    })?;
                    let mut cmd = vec![
                        Value::from("set"),
                        Value::from(jail),
                        Value::from("addjournalmatch"),
                    ];
                    cmd.extend(words.into_iter().map(Value::from));
                    stream.push(Value::Array(cmd));
                }
            }
            // Fail2ban tests `opt in ('datepattern')`, a substring test.
            o if !o.is_empty() && "datepattern".contains(o) => {
                stream.push(serde_json::json!(["set", jail, opt, value]))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Options in order with their typed values.
pub(crate) type OptionList = Vec<(String, Value)>;

/// An action of a jail as read.
pub(crate) enum ActionRead {
    Command(DefReader),
    /// A Python action file (`smtp.py`): name, file, parameters.
    Python {
        name: String,
        file: String,
        params: OMap<String>,
    },
}

impl ActionRead {
    /// A Python action (`smtp.py[actname=mailer, ...]`): named by its
    /// `actname` parameter, else by the file name without `.py`.
    pub fn python(file: String, mut params: OMap<String>) -> ActionRead {
        let name = params.get("actname").cloned().unwrap_or_else(|| {
            file.rsplit_once('.')
                .map_or(file.as_str(), |(s, _)| s)
                .to_string()
        });
        params = params.into_iter().filter(|(k, _)| k != "actname").collect();
        ActionRead::Python { name, file, params }
    }
}

/// A jail as read, before validation.
pub(crate) struct JailRead {
    pub name: String,
    pub opts: OMap<Value>,
    pub errors: Vec<ConfigError>,
    /// The filter's name (without parameters) and its reader.
    pub filter: Option<(String, DefReader)>,
    pub actions: Vec<ActionRead>,
}

pub(crate) enum JailOutcome {
    Disabled,
    /// Fail2ban skips this jail (and says so in a `config-error` command).
    Broken(ConfigError),
    Read(Box<JailRead>),
}

fn skip(cfg: &Layered, jail: &str, key: &str, f2b: String, message: String) -> JailOutcome {
    JailOutcome::Broken(
        ConfigError::new(message)
            .at(cfg.origin(jail, key))
            .section(jail)
            .key(key)
            .jail_skip(f2b),
    )
}

/// Reads jail `name` of the jail configuration `cfg` (which gains the
/// filter's values as `known/...`). `force` reads a disabled jail too.
pub(crate) fn read_jail(
    session: &Session,
    cfg: &mut Layered,
    name: &str,
    force: bool,
) -> Result<JailOutcome, ConfigError> {
    cfg.merge_defaults(&[
        ("fail2ban_version", FAIL2BAN_VERSION),
        ("fail2ban_confpath", &session.tree.basedir),
    ]);
    let first = read_options(cfg, name, &JAIL_FIRST)?;
    let enabled = first.typed.get("enabled") == Some(&Value::Bool(true));
    if !enabled && !force {
        return Ok(JailOutcome::Disabled);
    }
    let backend = first
        .typed
        .get("backend")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let flt = first
        .typed
        .get("filter")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut filter = None;
    if !flt.is_empty() {
        let (fname, params) = match extract_options(&flt) {
            Ok(x) => x,
            Err(e) => {
                let f2b = format!("Invalid filter definition {}: {e}", py_repr_str(&flt));
                let msg = format!("invalid filter {flt:?}: {e}");
                return Ok(skip(cfg, name, "filter", f2b, msg));
            }
        };
        let Some(mut reader) = session.def_reader(false, &fname, name, params)? else {
            let f2b = format!("Unable to read the filter {}", py_repr_str(&fname));
            let msg = format!(
                "no filter {fname:?}: found none of filter.d/{fname}.conf, .local under {}",
                session.tree.basedir
            );
            return Ok(skip(cfg, name, "filter", f2b, msg));
        };
        reader.apply_backend(&backend);
        reader.read(&vars_of(&first.typed), true)?;
        let known = reader.combined_strings()?;
        let origin = Origin {
            file: reader.main_file().into(),
            line: 0,
        };
        cfg.merge_section(
            name,
            known.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            "known/",
            &origin,
        );
        filter = Some((fname, reader));
    }
    let all = read_options(cfg, name, &JAIL_OPTS)?;
    let vars = vars_of(&all.typed);
    if let Some((_, reader)) = filter.as_mut() {
        reader.read(&vars, false)?;
    }
    let mut actions = Vec::new();
    let action_value = all
        .typed
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for act in split_with_options(&action_value) {
        let act = act.trim();
        if act.is_empty() {
            continue;
        }
        let (aname, params) = match extract_options(act) {
            Ok(x) => x,
            Err(e) => {
                let f2b = format!("Invalid action definition {}: {e}", py_repr_str(act));
                let msg = format!("invalid action {act:?}: {e}");
                return Ok(skip(cfg, name, "action", f2b, msg));
            }
        };
        if aname.ends_with(".py") {
            actions.push(ActionRead::python(aname, params));
            continue;
        }
        let Some(mut reader) = session.def_reader(true, &aname, name, params)? else {
            let f2b = format!("Unable to read action {}", py_repr_str(&aname));
            let msg = format!(
                "no action {aname:?}: found none of action.d/{aname}.conf, .local under {}",
                session.tree.basedir
            );
            return Ok(skip(cfg, name, "action", f2b, msg));
        };
        reader
            .read(&vars, false)
            .map_err(|e| e.section(name).key("action"))?;
        actions.push(ActionRead::Command(reader));
    }
    let mut errors = first.errors;
    errors.extend(all.errors);
    Ok(JailOutcome::Read(Box::new(JailRead {
        name: name.to_string(),
        opts: all.typed,
        errors,
        filter,
        actions,
    })))
}

/// The names of the jails of a jail configuration, in order.
pub(crate) fn jail_names(cfg: &Layered) -> Vec<String> {
    cfg.sections
        .keys()
        .filter(|s| *s != "INCLUDES" && !s.starts_with("KNOWN/"))
        .map(str::to_string)
        .collect()
}

/// `path` and `head`/`tail` of a `logpath` line (split at its last space).
pub(crate) fn split_logpath(line: &str) -> (&str, &str) {
    line.rsplit_once(' ').unwrap_or((line, "head"))
}

/// Python's `json.dumps` of string parameters (ASCII only, `", "`/`": "`).
fn json_dumps(params: &OMap<String>) -> String {
    fn quote(out: &mut String, s: &str) {
        use std::fmt::Write;
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    let mut out = String::from("{");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quote(&mut out, k);
        out.push_str(": ");
        quote(&mut out, v);
    }
    out.push('}');
    out
}

/// The command stream of one read jail (Fail2ban's `JailReader.convert`).
pub(crate) fn jail_stream(tree: &ConfigTree, jail: &JailRead) -> Result<Vec<Value>, ConfigError> {
    let name = jail.name.as_str();
    let mut stream = Vec::new();
    if let Some((_, reader)) = &jail.filter {
        let combined = reader.combined(&[])?;
        let (typed, _) = reader.typed(&combined);
        let mut own = Vec::new();
        fill_filter_stream(&mut own, typed.iter(), name).map_err(|e| e.section(name))?;
        stream.extend(own);
    }
    fill_filter_stream(&mut stream, jail.opts.iter(), name).map_err(|e| e.section(name))?;
    let systemd = jail
        .opts
        .get("backend")
        .and_then(Value::as_str)
        .is_some_and(|b| b.starts_with("systemd"));
    let mut backend = Value::from("auto");
    let mut logpaths = Vec::new();
    for (opt, value) in jail.opts.iter() {
        match opt {
            "logpath" => {
                if systemd {
                    continue;
                }
                for line in value.as_str().unwrap_or_default().split('\n') {
                    let (path, tail) = split_logpath(line);
                    for p in glob::expand(path) {
                        logpaths.push(serde_json::json!(["set", name, "addlogpath", p, tail]));
                    }
                }
            }
            "backend" => backend = value.clone(),
            "ignoreip" => {
                let mut cmd = vec![
                    Value::from("set"),
                    Value::from(name),
                    Value::from("addignoreip"),
                ];
                cmd.extend(
                    splitwords(value.as_str().unwrap_or_default())
                        .into_iter()
                        .map(Value::from),
                );
                stream.push(Value::Array(cmd));
            }
            o if !JAIL_NOT_SET.contains(&o) => {
                stream.push(serde_json::json!(["set", name, opt, value]))
            }
            _ => {}
        }
    }
    stream.extend(logpaths);
    for action in &jail.actions {
        match action {
            ActionRead::Command(reader) => {
                let actname = reader.actname();
                stream.push(serde_json::json!(["set", name, "addaction", actname]));
                let (multi, _) = reader.action_options().map_err(|e| e.section(name))?;
                let pairs: Vec<Value> = multi
                    .iter()
                    .map(|(k, v)| serde_json::json!([k, v]))
                    .collect();
                match pairs.len() {
                    0 => {}
                    1 => {
                        let (k, v) = &multi[0];
                        stream.push(serde_json::json!(["set", name, "action", actname, k, v]));
                    }
                    _ => stream.push(serde_json::json!([
                        "multi-set",
                        name,
                        "action",
                        actname,
                        pairs
                    ])),
                }
            }
            ActionRead::Python {
                name: actname,
                file,
                params,
            } => {
                let path = format!("{}/action.d/{file}", tree.basedir);
                stream.push(serde_json::json!([
                    "set",
                    name,
                    "addaction",
                    actname,
                    path,
                    json_dumps(params)
                ]));
            }
        }
    }
    stream.insert(0, serde_json::json!(["add", name, backend]));
    Ok(stream)
}

/// `config-error` command of a skipped jail.
pub(crate) fn config_error_cmd(jail: &str, err: &ConfigError) -> Value {
    let why = err.jail_skip.as_deref().unwrap_or(&err.message);
    serde_json::json!([
        "config-error",
        format!("Jail '{jail}' skipped, because of wrong configuration: {why}")
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_python() {
        let mut p = OMap::new();
        p.insert("a", "x \"y\"".to_string());
        p.insert("b", "é\n".to_string());
        assert_eq!(json_dumps(&p), r#"{"a": "x \"y\"", "b": "\u00e9\n"}"#);
    }

    #[test]
    fn filter_stream_order() {
        let opts: OMap<Value> = [
            ("prefregex", Value::from("^p")),
            ("failregex", Value::from("a\n\nb")),
            ("ignoreregex", Value::from("")),
            ("maxlines", Value::from(2)),
            ("datepattern", Value::from("{^LN-BEG}")),
            ("journalmatch", Value::from("_COMM=x + _COMM=y")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut s = Vec::new();
        fill_filter_stream(&mut s, opts.iter(), "j").unwrap();
        let mut jail = OMap::new();
        jail.insert("usedns", Value::from("no"));
        fill_filter_stream(&mut s, jail.iter(), "j").unwrap();
        let lines: Vec<String> = s.iter().map(crate::util::py_repr).collect();
        assert_eq!(
            lines,
            [
                "['set', 'j', 'usedns', 'no']",
                "['set', 'j', 'prefregex', '^p']",
                "['set', 'j', 'maxlines', 2]",
                "['multi-set', 'j', 'addfailregex', ['a', 'b']]",
                "['set', 'j', 'datepattern', '{^LN-BEG}']",
                "['set', 'j', 'addjournalmatch', '_COMM=x', '+', '_COMM=y']",
            ]
        );
    }
}
