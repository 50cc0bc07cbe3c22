//! What `fail2ban-regex` prints after the run (the "Results" report and the
//! line lists), the `-o` forms of a failure, and logban's `--json` objects.

use super::args::Options;
use crate::filter::{Failure, Filter, RegexReport};
use serde_json::{Map, Value};
use std::io::{self, Write};

/// Fail2ban's `pprint_list`: nothing for an empty list, else the entries
/// framed by `|` and a closing `` `- ``.
fn pprint_list(w: &mut dyn Write, list: &[String], header: Option<&str>) -> io::Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    if let Some(h) = header {
        writeln!(w, "|- {h}")?;
    }
    writeln!(w, "|  {}\n`-", list.join("\n|  "))
}

/// Python's `time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(t))`.
fn local_time(t: f64) -> String {
    jiff::Timestamp::from_second(t.floor() as i64)
        .map(|ts| {
            ts.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%a %b %d %H:%M:%S %Y")
                .to_string()
        })
        .unwrap_or_else(|_| format!("{t}"))
}

/// A value as Python's `repr` shows it in a dict.
fn py_opt(v: &Option<String>) -> Value {
    v.clone().map_or(Value::Null, Value::String)
}

/// Everything the report needs besides the counts.
pub struct Run<'a> {
    pub opts: &'a Options,
    pub filter: &'a Filter,
    pub report: &'a RegexReport,
    /// The failregexes and ignoreregexes as written.
    pub failregex: &'a [String],
    pub ignoreregex: &'a [String],
    /// The prefregex's groups of the first matched lines (`-v`).
    pub pref_groups: &'a [String],
    pub elapsed: f64,
}

/// The "Results" part and the line lists.
pub fn report(w: &mut dyn Write, r: &Run) -> io::Result<()> {
    let o = r.opts;
    let verbose = o.verbose > 0;
    writeln!(w, "\nResults\n=======")?;
    if let Some(p) = r.filter.prefregex() {
        writeln!(w, "\nPrefregex: {} total", r.report.prefregex)?;
        let mut list = vec![p.to_string()];
        if verbose {
            list.extend(r.pref_groups.iter().map(|g| format!("    {g}")));
        }
        pprint_list(w, &list, None)?;
    }
    let hits = |i: usize| r.report.failregex.get(i).map_or(&[][..], |h| &h[..]);
    regex_list(
        w,
        "Failregex",
        r.failregex,
        |i| hits(i).len(),
        verbose,
        |i, out| {
            for h in hits(i) {
                let fid = if h.fid.is_empty() {
                    "None"
                } else {
                    h.fid.as_str()
                };
                out.push(format!(
                    "    {fid}  {}{}",
                    local_time(h.time),
                    if h.multiple {
                        " (multiple regex matched)"
                    } else {
                        ""
                    }
                ));
            }
        },
    )?;
    let ignored = |i: usize| r.report.ignoreregex.get(i).copied().unwrap_or(0);
    regex_list(w, "Ignoreregex", r.ignoreregex, ignored, verbose, |_, _| {})?;

    writeln!(w, "\nDate template hits:")?;
    let mut list = Vec::new();
    for t in r.filter.date_detector().templates() {
        if verbose || t.hits > 0 {
            list.push(format!("[{}] {}", t.hits, t.name));
            if o.verbose_date {
                list.push(format!(
                    "    # weight: {:.3} ({:.3}), pattern: {}",
                    t.weight, t.base_weight, t.pattern
                ));
                list.push(format!("    # regex:   {}", t.regex));
            }
        }
    }
    pprint_list(w, &list, Some("[# of hits] date format"))?;

    writeln!(w, "\nLines: {}", r.report.summary())?;
    writeln!(w, "[processed in {:.2} sec]\n", r.elapsed)?;

    let rep = r.report;
    if o.print_all_matched {
        lines(w, r, "matched", rep.matched, &rep.matched_lines, true)?;
    }
    if !o.print_no_ignored {
        lines(
            w,
            r,
            "ignored",
            rep.ignored,
            &rep.ignored_lines,
            o.print_all_ignored,
        )?;
    }
    if !o.print_no_missed {
        lines(
            w,
            r,
            "missed",
            rep.missed,
            &rep.missed_lines,
            o.print_all_missed,
        )?;
    }
    Ok(())
}

/// `Failregex: N total` and the regexes that hit (all with `-v`).
fn regex_list(
    w: &mut dyn Write,
    title: &str,
    regexes: &[String],
    count: impl Fn(usize) -> usize,
    verbose: bool,
    mut details: impl FnMut(usize, &mut Vec<String>),
) -> io::Result<()> {
    let mut total = 0;
    let mut list = Vec::new();
    for (i, re) in regexes.iter().enumerate() {
        let n = count(i);
        total += n;
        if n > 0 || verbose {
            list.push(format!("{:2}) [{n}] {re}", i + 1));
        }
        if verbose {
            details(i, &mut list);
        }
    }
    writeln!(w, "\n{title}: {total} total")?;
    pprint_list(w, &list, Some(" #) [# of hits] regular expression"))
}

/// Fail2ban's `printLines`: the kept lines, or a note that there are too many.
fn lines(
    w: &mut dyn Write,
    r: &Run,
    kind: &str,
    count: i64,
    kept: &[String],
    all: bool,
) -> io::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let mut cap = kind.to_string();
    cap[..1].make_ascii_uppercase();
    let header = format!("{cap} line(s):");
    let keep = if r.opts.maxlines > 0 {
        r.opts.maxlines
    } else {
        20
    };
    if count < keep as i64 || all {
        let list: Vec<String> = kept.iter().map(|l| l.trim_end().to_string()).collect();
        pprint_list(w, &list, Some(&header))
    } else {
        writeln!(
            w,
            "{header} too many to print.  Use --print-all-{kind} to print all {count} lines"
        )
    }
}

/// The failure's data as Fail2ban's dict holds it (captures, `ip`, `users`).
fn data_map(f: &Failure) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &f.data {
        if !k.starts_with("nofail") {
            m.insert(k.clone(), Value::String(v.clone()));
        }
    }
    if let Some(ip) = &f.ip {
        m.insert("ip".into(), Value::String(ip.clone()));
    }
    if !f.users.is_empty() {
        let mut users = f.users.clone();
        users.sort();
        m.insert("users".into(), users.into());
    }
    m
}

/// The failure as one JSON object (`--json`); `line` is its LOG line number.
pub fn json(w: &mut dyn Write, line: usize, f: &Failure) -> io::Result<()> {
    let mut m = Map::new();
    m.insert("line".into(), line.into());
    m.insert("fid".into(), Value::String(f.fid.clone()));
    m.insert("time".into(), Value::from(f.time));
    m.insert("regex".into(), f.regex.into());
    m.insert("matches".into(), f.matches.clone().into());
    for (k, v) in data_map(f) {
        m.entry(k).or_insert(v);
    }
    serde_json::to_writer(&mut *w, &Value::Object(m))?;
    w.write_all(b"\n")
}

/// Python's `repr` of a float (`1124013600.0`).
fn py_float(t: f64) -> String {
    let s = format!("{t:?}");
    if s.contains(['.', 'e', 'n', 'i']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// The failures of one line in the `-o` form `fmt`.
pub fn out(w: &mut dyn Write, fmt: &str, failures: &[&Failure]) -> io::Result<()> {
    let mut multiline = Vec::new();
    for f in failures {
        match fmt {
            "id" | "fid" => writeln!(w, "{}", f.fid)?,
            "ip" => writeln!(w, "{}", f.ip.as_deref().unwrap_or(&f.fid))?,
            "msg" => {
                for m in &f.matches {
                    writeln!(w, "{m}")?;
                }
            }
            "row" => writeln!(
                w,
                "[{},\t{},\t{}],",
                crate::util::py_repr(&Value::String(f.fid.clone())),
                py_float(f.time),
                crate::util::py_repr(&Value::Object(data_map(f)))
            )?,
            key if !key.contains('<') => {
                let v = match key {
                    "matches" => crate::util::py_repr(&f.matches.clone().into()),
                    "fid" => f.fid.clone(),
                    _ => match data_map(f).get(key) {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => crate::util::py_repr(v),
                        None => "None".into(),
                    },
                };
                writeln!(w, "{v}")?;
            }
            template => {
                // `<msg>` of a failure of several lines: one row per line, after the others.
                if template.contains("<msg>") && f.matches.len() > 1 {
                    multiline.push(*f);
                    continue;
                }
                writeln!(w, "{}", substitute(template, f, &f.matches.join("\n")))?;
            }
        }
    }
    for f in multiline {
        for m in &f.matches {
            writeln!(w, "{}", substitute(fmt, f, m))?;
        }
    }
    Ok(())
}

/// Replaces the `<tag>`s of an `-o` template with the failure's values;
/// unknown tags stay as written.
fn substitute(template: &str, f: &Failure, msg: &str) -> String {
    let data = data_map(f);
    let value = |tag: &str| -> Option<String> {
        let v = match tag {
            "msg" => return Some(msg.to_string()),
            "fid" => f.fid.clone(),
            "ip" => f.ip.clone().unwrap_or_else(|| f.fid.clone()),
            "time" => py_float(f.time),
            "matches" => f.matches.join("\n"),
            "failures" => "1".into(),
            t => match t.strip_prefix("F-") {
                // A capture the failure does not have reads empty.
                Some(name) => match data.get(&name.to_lowercase()) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => crate::util::py_repr(v),
                    None => String::new(),
                },
                None => match data.get(t)? {
                    Value::String(s) => s.clone(),
                    v => crate::util::py_repr(v),
                },
            },
        };
        Some(v.replace('\0', "\\x00"))
    };
    let mut s = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        s.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('>')
            .and_then(|close| Some((close, value(&after[..close])?)))
        {
            Some((close, v)) => {
                s.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                s.push('<');
                rest = after;
            }
        }
    }
    s.push_str(rest);
    s
}

/// A prefregex's groups as Python prints the dict.
pub fn groups_repr(groups: &[(String, Option<String>)]) -> String {
    let m: Map<String, Value> = groups.iter().map(|(k, v)| (k.clone(), py_opt(v))).collect();
    crate::util::py_repr(&Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Failure {
        Failure {
            fid: "192.0.2.1".into(),
            addr: None,
            time: 1124013600.0,
            matches: vec!["a line".into(), "b line".into()],
            data: vec![
                ("user".into(), "root".into()),
                ("ip4".into(), "192.0.2.1".into()),
            ],
            nofail: false,
            regex: 2,
            prefix_len: None,
            ip: None,
            users: vec![],
            pending: false,
            dated: true,
        }
    }

    fn text(fmt: &str) -> String {
        let f = failure();
        let mut v = Vec::new();
        out(&mut v, fmt, &[&f]).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn out_forms() {
        assert_eq!(text("id"), "192.0.2.1\n");
        assert_eq!(text("user"), "root\n");
        assert_eq!(text("dns"), "None\n");
        assert_eq!(text("msg"), "a line\nb line\n");
        assert_eq!(
            text("row"),
            "['192.0.2.1',\t1124013600.0,\t{'user': 'root', 'ip4': '192.0.2.1'}],\n"
        );
        assert_eq!(text("<ip> <F-USER> <F-X> <x>"), "192.0.2.1 root  <x>\n");
        assert_eq!(
            text("<ip>: <msg>"),
            "192.0.2.1: a line\n192.0.2.1: b line\n"
        );
    }

    #[test]
    fn json_object_names_the_line_and_the_captures() {
        let mut v = Vec::new();
        json(&mut v, 7, &failure()).unwrap();
        let o: Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(o["line"], 7);
        assert_eq!(o["fid"], "192.0.2.1");
        assert_eq!(o["time"], 1124013600.0);
        assert_eq!(o["user"], "root");
        assert_eq!(o["matches"][1], "b line");
    }
}
