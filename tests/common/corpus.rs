//! Fail2ban's annotated sample logs (the corpus format) read the way
//! Fail2ban's own samples test reads them, and the expectations checked
//! against what a filter found; the filter itself is run by the caller
//! (`logban regex --json` in tests/corpus.rs, the library in
//! tests/profile_corpus.rs).
//!
//! Each sample file (one per filter) holds log lines; a `# failJSON: {...}`
//! line describes the line after it (`match`, `host`, `time`, `user`,
//! `users`, `attempts`, `dns`; `desc` and a per-line `constraint` too), and
//! lines without one must not match. `# filterOptions: [{...}, ...]` runs
//! the lines that follow through each variant of the filter (`test.*` keys
//! are not filter options; `test.condition` selects variants, `logtype =
//! journal` means no date parsing and `test.prefix-line` before each line),
//! `# fileOptions:` applies to every variant, `# addFILE: "name"` reads
//! another file after this one. Each variant is one filter instance that
//! sees its lines in order, checking every failregex, with "now" frozen at
//! [`NOW`] and the time zone [`TZ`].

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// The frozen "now" of the samples (2005-08-14 12:00 CEST).
pub const NOW: i64 = 1124013600;
/// The samples' time zone.
pub const TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";

/// What a run of one variant found: the failures' JSON objects (as
/// `logban regex --json` prints them) by item number, from 1.
pub type Found = HashMap<usize, Vec<Value>>;

/// One log line of a variant and what its annotation expects (empty for a
/// line without one: it must not match).
pub struct Item {
    pub place: String,
    pub text: Vec<u8>,
    pub expect: Map<String, Value>,
}

pub struct Variant {
    pub key: String,
    pub opts: Map<String, Value>,
    pub items: Vec<Item>,
}

impl Variant {
    /// `logtype = journal`: lines without a date.
    pub fn journal(&self) -> bool {
        self.opts.get("logtype").and_then(Value::as_str) == Some("journal")
    }

    /// The filter argument for filter `name`: `name[key=value, ...]`.
    pub fn spec(&self, name: &str) -> String {
        spec(name, &self.opts)
    }
}

/// Python's `str()` of an option value.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Python's `repr` of a dict of options (how the samples test names a variant).
fn py_dict(m: &Map<String, Value>) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "'{k}': ");
        match v {
            Value::String(t) => {
                let _ = write!(s, "'{}'", t.replace('\\', "\\\\").replace('\'', "\\'"));
            }
            other => s.push_str(&py_str(other)),
        }
    }
    s.push('}');
    s
}

fn filter_opts(opts: &Map<String, Value>) -> Map<String, Value> {
    opts.iter()
        .filter(|(k, _)| !k.starts_with("test."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The variant's name as the samples test groups lines by it.
fn variant_key(name: &str, opts: &Map<String, Value>) -> String {
    if let Some(n) = opts
        .get("test.filter-name")
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
    {
        return py_str(n);
    }
    let o = filter_opts(opts);
    if o.is_empty() {
        name.to_string()
    } else {
        format!("{name}{}", py_dict(&o))
    }
}

/// The filter argument: `name[key=value, ...]`, values with `,`, `]`,
/// blanks or `"` quoted.
fn spec(name: &str, opts: &Map<String, Value>) -> String {
    let o = filter_opts(opts);
    if o.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = o
        .iter()
        .map(|(k, v)| {
            let v = py_str(v);
            if v.contains([',', ']', '"']) || v.chars().any(char::is_whitespace) {
                format!("{k}=\"{v}\"")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    format!("{name}[{}]", parts.join(", "))
}

/// The few Python expressions the samples use in `test.condition` and
/// `constraint`: `name == '...'`, `opts.get('k') != '...'`.
fn holds(expr: &str, name: &str, opts: &Map<String, Value>) -> bool {
    let (lhs, rhs, equal) = match (expr.split_once("!="), expr.split_once("==")) {
        (Some((l, r)), _) => (l, r, false),
        (None, Some((l, r))) => (l, r, true),
        _ => panic!("unsupported condition in the corpus: {expr:?}"),
    };
    let literal = |s: &str| {
        let s = s.trim();
        s.strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("unsupported condition in the corpus: {expr:?}"))
    };
    let lhs = lhs.trim();
    let value = if lhs == "name" {
        Some(name.to_string())
    } else if let Some(key) = lhs
        .strip_prefix("opts.get(")
        .and_then(|k| k.strip_suffix(')'))
    {
        opts.get(&literal(key)).filter(|v| !v.is_null()).map(py_str)
    } else {
        panic!("unsupported condition in the corpus: {expr:?}")
    };
    (value.as_deref() == Some(literal(rhs).as_str())) == equal
}

/// An annotation line: its kind and JSON text.
fn annotation(line: &[u8]) -> Option<(&str, String)> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix('#')?.trim_start_matches('#');
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    ["failJSON", "fileOptions", "filterOptions", "addFILE"]
        .into_iter()
        .find_map(|kind| {
            let body = rest.strip_prefix(kind)?.strip_prefix(':')?;
            (!body.is_empty()).then(|| (kind, body.to_string()))
        })
}

/// The lines of a sample file as Python reads it in text mode (universal
/// newlines).
fn read_lines(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match (data[i], data.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                text.push(b'\n');
                i += 2;
                continue;
            }
            (b'\r', _) => text.push(b'\n'),
            (b, _) => text.push(b),
        }
        i += 1;
    }
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

/// The variants of filter `name` with their lines, in processing order.
pub fn collect(logs: &Path, name: &str) -> Vec<Variant> {
    let mut files = vec![name.to_string()];
    let mut variants: Vec<Variant> = Vec::new();
    let mut current: Option<Vec<usize>> = None;
    let mut common = Map::new();
    let mut at = 0;
    while at < files.len() {
        let file = files[at].clone();
        at += 1;
        let lines = read_lines(&logs.join(&file));
        let mut ignore = false;
        let mut k = 0;
        while k < lines.len() {
            let mut line = &lines[k];
            k += 1;
            let mut place = format!("{file}:{k}");
            let expect = match annotation(line) {
                Some((kind, body)) => {
                    let data: Value = serde_json::from_str(body.trim())
                        .unwrap_or_else(|e| panic!("{place}: bad annotation: {e}"));
                    match kind {
                        "fileOptions" => {
                            common = data.as_object().cloned().unwrap_or_default();
                            continue;
                        }
                        "filterOptions" => {
                            let mut cur = Vec::new();
                            ignore = false;
                            let list = match data {
                                Value::Array(v) => v,
                                other => vec![other],
                            };
                            for d in list {
                                let mut opts = common.clone();
                                for (key, v) in d.as_object().cloned().unwrap_or_default() {
                                    opts.insert(key, v);
                                }
                                if let Some(c) = opts.get("test.condition").and_then(Value::as_str)
                                {
                                    ignore = !holds(c, name, &opts);
                                }
                                if !ignore {
                                    let key = variant_key(name, &opts);
                                    let i = match variants.iter().position(|v| v.key == key) {
                                        Some(i) => i,
                                        None => {
                                            variants.push(Variant {
                                                key,
                                                opts,
                                                items: Vec::new(),
                                            });
                                            variants.len() - 1
                                        }
                                    };
                                    cur.push(i);
                                }
                            }
                            current = Some(cur);
                            continue;
                        }
                        "addFILE" => {
                            files.push(py_str(&data));
                            continue;
                        }
                        _ => {}
                    }
                    if k >= lines.len() {
                        break;
                    }
                    line = &lines[k];
                    k += 1;
                    place = format!("{file}:{k}");
                    data.as_object().cloned().unwrap_or_default()
                }
                None => {
                    let blank = String::from_utf8_lossy(line).trim().is_empty();
                    if ignore || line.starts_with(b"#") || blank {
                        continue;
                    }
                    Map::new()
                }
            };
            if ignore {
                continue;
            }
            let cur = current.get_or_insert_with(|| {
                let key = variant_key(name, &Map::new());
                if !variants.iter().any(|v| v.key == key) {
                    variants.push(Variant {
                        key: key.clone(),
                        opts: Map::new(),
                        items: Vec::new(),
                    });
                }
                vec![variants.iter().position(|v| v.key == key).unwrap()]
            });
            for &i in cur.iter() {
                let v = &mut variants[i];
                if let Some(c) = expect.get("constraint").and_then(Value::as_str) {
                    if !holds(c, name, &v.opts) {
                        continue;
                    }
                }
                let mut text = Vec::new();
                if let Some(prefix) = v.opts.get("test.prefix-line").and_then(Value::as_str) {
                    if v.journal() {
                        text.extend_from_slice(prefix.as_bytes());
                    }
                }
                text.extend_from_slice(line);
                v.items.push(Item {
                    place: place.clone(),
                    text,
                    expect: expect.clone(),
                });
            }
        }
    }
    variants
}

/// Local time (in the test's zone) of an expected `time`, read as Python's
/// `strptime("%Y-%m-%dT%H:%M:%S[.%f]")` reads it (one-digit fields too).
fn expected_time(t: &str) -> f64 {
    let bad = || -> ! { panic!("expected time {t:?} is not %Y-%m-%dT%H:%M:%S[.%f]") };
    let (date, time) = t.split_once('T').unwrap_or_else(|| bad());
    let (time, frac) = time.split_once('.').unwrap_or((time, ""));
    let num = |s: &str| s.parse::<i32>().unwrap_or_else(|_| bad());
    let d: Vec<i32> = date.split('-').map(num).collect();
    let h: Vec<i32> = time.split(':').map(num).collect();
    if d.len() != 3 || h.len() != 3 {
        bad();
    }
    let dt = jiff::civil::date(d[0] as i16, d[1] as i8, d[2] as i8)
        .at(h[0] as i8, h[1] as i8, h[2] as i8, 0);
    let tz = jiff::tz::TimeZone::posix(TZ).unwrap();
    let secs = dt.to_zoned(tz).unwrap().timestamp().as_second() as f64;
    let micros = match frac {
        "" => 0.0,
        f => num(&format!("{f:0<6}")[..6]) as f64,
    };
    secs + micros / 1e6
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or(x.to_string(), str::to_string))
            .collect(),
        Value::Null => Vec::new(),
        // Python's `map(str, text)`: the characters.
        Value::String(t) => t.chars().map(String::from).collect(),
        other => vec![other.to_string()],
    };
    out.sort();
    out
}

/// None when the expectation holds, else why not.
pub fn check(expect: &Map<String, Value>, found: &[Value]) -> Option<String> {
    let want_match = expect
        .get("match")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if found.is_empty() {
        return want_match.then(|| "not matched".to_string());
    }
    if !want_match {
        return Some("matched, should not".into());
    }
    if found.len() != 1 {
        return Some(format!("{} results", found.len()));
    }
    let o = &found[0];
    for (k, want) in expect {
        if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let got = match (o.get(k).filter(|v| !v.is_null()), k.as_str()) {
            (Some(v), _) => v.clone(),
            (None, "host") => o.get("fid").cloned().unwrap_or(Value::Null),
            (None, "attempts") => o["matches"].as_array().map_or(0, Vec::len).into(),
            (None, _) => Value::Null,
        };
        if want.is_array() || got.is_array() {
            if strings(want) != strings(&got) {
                return Some(format!("{k}: {got} != {want}"));
            }
        } else if got != *want {
            return Some(format!("{k}: {got} != {want}"));
        }
    }
    if let Some(t) = expect.get("time").and_then(Value::as_str) {
        let want = expected_time(t);
        match o.get("time").and_then(Value::as_f64) {
            Some(got) if (got - want).abs() <= 1e-3 => {}
            got => return Some(format!("time: {got:?} != {want}")),
        }
    }
    None
}

/// What held and what did not, per variant.
#[derive(Default)]
pub struct Tally {
    /// variant -> (expectations held, counted, failures)
    pub variants: BTreeMap<String, (usize, usize, Vec<String>)>,
}

impl Tally {
    pub fn totals(&self) -> (usize, usize) {
        self.variants
            .values()
            .fold((0, 0), |(h, t), (vh, vt, _)| (h + vh, t + vt))
    }

    /// The per-filter table, and every expectation that did not hold.
    pub fn table(&self, title: &str) -> String {
        let mut s = format!("{title}\n{:<58} {:>6} {:>6}\n", "variant", "held", "of");
        for (key, (held, total, fails)) in &self.variants {
            let _ = writeln!(s, "{key:<58} {held:>6} {total:>6}");
            for f in fails {
                let _ = writeln!(s, "    {f}");
            }
        }
        let (held, total) = self.totals();
        let _ = writeln!(
            s,
            "corpus: {held}/{total} expectations hold ({:.1}%)",
            100.0 * held as f64 / total.max(1) as f64
        );
        s
    }

    pub fn ratio(&self) -> f64 {
        let (held, total) = self.totals();
        held as f64 / total.max(1) as f64
    }
}

/// Runs the samples of `logs` (or only `only`) with the filters of `conf`,
/// each variant through `run(conf, name, variant)`.
pub fn corpus(
    conf: &Path,
    logs: &Path,
    only: Option<&[&str]>,
    run: impl Fn(&Path, &str, &Variant) -> Result<Found, String>,
) -> Tally {
    let mut names: Vec<String> = std::fs::read_dir(logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| only.map_or(true, |o| o.contains(&n.as_str())))
        .filter(|n| conf.join("filter.d").join(format!("{n}.conf")).is_file())
        .collect();
    names.sort();
    let mut tally = Tally::default();
    for name in &names {
        for v in collect(logs, name) {
            let res = run(conf, name, &v);
            let entry = tally.variants.entry(v.key.clone()).or_default();
            for (n, it) in v.items.iter().enumerate() {
                let found = match &res {
                    Ok(found) => found.get(&(n + 1)).map_or(&[][..], |f| &f[..]),
                    Err(_) => &[][..],
                };
                if it.expect.is_empty() && res.is_ok() && found.is_empty() {
                    continue;
                }
                entry.1 += 1;
                let why = match &res {
                    Err(e) => Some(format!("error: {e}")),
                    Ok(_) => check(&it.expect, found),
                };
                match why {
                    None => entry.0 += 1,
                    Some(why) => entry.2.push(format!("{}: {why}", it.place)),
                }
            }
        }
    }
    tally
}
