//! `logban regex` (also `fail2ban-regex`): tests a filter against a log and
//! prints what `fail2ban-regex` prints, with `--json` (one object per
//! failure) and `--now` added for scripts and tests. A thin layer over
//! [`crate::filter`]: argument handling (`args`), filter lookup (`load`),
//! reading the log (`input`) and the report (`output`).

mod args;
mod input;
mod load;
mod output;

use crate::config::UseDns;
use crate::filter::{Failure, Filter, FilterOptions, RegexReport, ReportOptions};
use crate::server::log::{Level, Log};
use args::{Options, Parsed};
use input::Encoding;
use std::io::{self, BufWriter, Write};
use std::time::Instant;

/// Exit code of every failure after the arguments were read (Fail2ban's).
const FAILED: i32 = 255;

/// Runs the program; `prog` is the name it was invoked by (for usage lines).
pub fn main(prog: &str, args: &[String]) -> i32 {
    let short = prog.rsplit('/').next().unwrap_or(prog);
    match args::parse(prog, args) {
        Parsed::Print(text) => {
            println!("{text}");
            0
        }
        Parsed::Usage(e) => {
            eprintln!("{}\n\n{short}: error: {e}", args::usage(prog));
            2
        }
        Parsed::Run(o) => {
            let mut errors = Vec::new();
            if o.print_no_missed && o.print_all_missed {
                errors.push(
                    "ERROR: --print-no-missed and --print-all-missed are mutually exclusive.",
                );
            }
            if o.print_no_ignored && o.print_all_ignored {
                errors.push(
                    "ERROR: --print-no-ignored and --print-all-ignored are mutually exclusive.",
                );
            }
            if !(2..=3).contains(&o.args.len()) {
                errors.push("ERROR: provide both <LOG> and <REGEX>.");
            }
            if !errors.is_empty() {
                println!("{}", args::help(prog));
                eprintln!("\n{}", errors.join("\n"));
                return FAILED;
            }
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
            let code = match run(&o, &mut w) {
                Ok(code) => code,
                Err(e) => {
                    // A closed pipe (`| head`) ends the run quietly.
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        eprintln!("{short}: {e}");
                    }
                    FAILED
                }
            };
            match w.flush() {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    eprintln!("{short}: {e}");
                    FAILED
                }
                _ => code,
            }
        }
    }
}

/// Log messages (bad input, regexes that give up) go to stderr; WARNING
/// unless `-l` says otherwise, so that they are seen.
fn start_log(level: &str) -> Result<(), String> {
    let level = if level.is_empty() {
        Level::Warning
    } else {
        Level::parse(level).ok_or_else(|| format!("ERROR: unknown log level {level:?}"))?
    };
    let log = Log::new(level, "STDERR", "auto").map_err(|e| format!("ERROR: {e}"))?;
    // A logger already installed (tests in one process) is fine.
    let _ = log.install();
    Ok(())
}

fn usedns(value: Option<&str>) -> UseDns {
    value.map_or(UseDns::Warn, UseDns::parse_or_no)
}

/// The LOG argument, read.
enum LogInput {
    File(std::fs::File),
    Lines(Vec<String>),
}

fn run(o: &Options, w: &mut dyn Write) -> io::Result<i32> {
    let quiet = o.out.is_some() || o.json;
    if !quiet {
        writeln!(w, "\nRunning tests\n=============\n")?;
    }
    // The `Use ...` lines Fail2ban prints while it reads the arguments.
    let mut uses = Vec::new();
    let prepared = start_log(&o.log_level).and_then(|()| {
        let encoding = Encoding::parse(&o.encoding)
            .ok_or_else(|| format!("ERROR: unknown encoding: {}", o.encoding))?;
        let (filter, src) = build_filter(o, &mut uses)?;
        let log = open_log(o, &filter, &mut uses)?;
        Ok((filter, src, log, encoding))
    });
    if !quiet {
        for u in &uses {
            writeln!(w, "{u}")?;
        }
    }
    let (mut filter, src, log, encoding) = match prepared {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("{msg}");
            return Ok(FAILED);
        }
    };
    if o.debuggex {
        tracing::warn!("-D/--debuggex is not supported by logban; ignored");
    }
    if quiet {
        failures(o, &mut filter, log, encoding, w)?;
    } else {
        report(o, &mut filter, &src, log, encoding, w)?;
    }
    Ok(0)
}

/// The filter the REGEX (and IGNOREREGEX) arguments define, with the
/// command line's settings; its `Use` lines are added to `uses`.
fn build_filter(o: &Options, uses: &mut Vec<String>) -> Result<(Filter, load::Source), String> {
    // Fail2ban prints the command line's settings first, the filter file's
    // after its name; the date pattern's description needs the built filter.
    if o.maxlines > 0 {
        uses.push(format!("Use         maxlines : {}", o.maxlines));
    }
    let mut date_line = None;
    if let Some(p) = &o.datepattern {
        date_line = Some((uses.len(), p.clone()));
        uses.push(String::new());
    }
    let mut src = load::failregex(&o.config, &o.args[1], o.maxlines.max(1), &mut |l| {
        uses.push(l)
    })?;
    if o.maxlines > 0 {
        src.def.maxlines = o.maxlines;
    } else if src.file_maxlines {
        uses.push(format!("Use         maxlines : {}", src.def.maxlines));
    }
    if o.datepattern.is_some() {
        src.def.datepattern = o.datepattern.clone();
    } else if let Some(p) = src.def.datepattern.clone().filter(|_| src.file_datepattern) {
        date_line = Some((uses.len(), p));
        uses.push(String::new());
    }
    if let Some(ignore) = o.args.get(2) {
        load::ignoreregex(&mut src, ignore, &mut |l| uses.push(l));
    }
    let quiet = o.out.is_some() || o.json;
    let opts = FilterOptions {
        usedns: Some(usedns(o.usedns.as_deref())),
        logtimezone: o.timezone.clone(),
        maxlines: Some(src.def.maxlines.max(1)),
        check_all: o.check_all && o.out.is_none(),
        ignore_pending: o.out.is_some(),
        // `--json` reports ids as the log writes them, as Fail2ban's sample
        // test does: no name is resolved.
        raw_hosts: o.raw || o.json,
        // One "now" for the whole run (Fail2ban reads the clock per line; a
        // run is short, and a fixed now keeps the result reproducible).
        now: Some(o.now.unwrap_or_else(crate::util::now)),
        report: !quiet,
        counts_only: !quiet,
        ..FilterOptions::regex_tool()
    };
    let filter = Filter::new(&src.def, opts).map_err(|e| match src.def.sources.get(e.option) {
        Some(at) => format!("ERROR: {at}: [Definition] {}: {e}", e.option),
        None => format!("ERROR: {e}"),
    })?;
    if let Some((i, p)) = date_line {
        let t: Vec<_> = filter.date_detector().templates().collect();
        let name = match t.len() {
            1 | 2 => t[0].name,
            _ => "Default Detectors",
        };
        uses[i] = format!("Use      datepattern : {p} : {name}");
    }
    Ok((filter, src))
}

/// The LOG argument: a file, or lines given on the command line.
fn open_log(o: &Options, filter: &Filter, uses: &mut Vec<String>) -> Result<LogInput, String> {
    let arg = &o.args[0];
    let log = if std::path::Path::new(arg).is_file() {
        let file = std::fs::File::open(arg).map_err(|e| format!("ERROR: {arg}: {e}"))?;
        uses.push(format!("Use         log file : {arg}"));
        uses.push(format!("Use         encoding : {}", o.encoding));
        LogInput::File(file)
    } else if arg.starts_with("systemd-journal") {
        return Err(
            "ERROR: logban regex does not read the journal; export it first \
                    (journalctl -o short-iso > FILE) and give the file"
                .into(),
        );
    } else if filter.maxlines() <= 1 && !arg.contains('\n') {
        uses.push(format!(
            "Use      single line : {}",
            load::shortstr(arg, 53)
        ));
        LogInput::Lines(vec![arg.clone()])
    } else {
        let lines: Vec<String> = arg.split('\n').map(str::to_string).collect();
        uses.push(format!("Use      multi line : {} line(s)", lines.len()));
        for (i, l) in lines.iter().enumerate() {
            if i >= 5 {
                uses.push("| ...".into());
                break;
            }
            let n = (i + 1).to_string();
            uses.push(format!(
                "| {:>2}: {}",
                &n[..n.len().min(2)],
                load::shortstr(l, 53)
            ));
        }
        uses.push("`-".into());
        LogInput::Lines(lines)
    };
    uses.push(String::new());
    Ok(log)
}

/// `-o` and `--json`: the failures of each line, nothing else.
fn failures(
    o: &Options,
    filter: &mut Filter,
    log: LogInput,
    encoding: Encoding,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut found = Vec::new();
    for_each_line(log, encoding, None, &mut |n, line, _| {
        if line.starts_with('#') || line.is_empty() {
            return Ok(());
        }
        found.clear();
        filter.process_line(line, &mut found);
        let kept: Vec<&Failure> = found
            .iter()
            .filter(|f| !(f.nofail || o.json && f.pending))
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        match &o.out {
            Some(fmt) => output::out(w, fmt, &kept),
            None => kept.iter().try_for_each(|f| output::json(w, n, f)),
        }
    })
}

/// The report: every line counted, then the results.
fn report(
    o: &Options,
    filter: &mut Filter,
    src: &load::Source,
    log: LogInput,
    encoding: Encoding,
    w: &mut dyn Write,
) -> io::Result<()> {
    let started = Instant::now();
    let keep = if o.maxlines > 0 { o.maxlines } else { 20 };
    let ropts = ReportOptions {
        print_all_matched: o.print_all_matched,
        print_all_missed: o.print_all_missed,
        print_all_ignored: o.print_all_ignored,
        print_no_missed: o.print_no_missed,
        print_no_ignored: o.print_no_ignored,
        keep,
        hit_ids: o.verbose > 0,
    };
    let mut report = RegexReport::new(filter, ropts);
    let mut pref_groups: Vec<String> = Vec::new();
    let has_pref = filter.prefregex().is_some() && o.verbose > 0;
    // One scan per block finds the lines that may matter.
    let prefilter = filter.prefilter().clone();
    let gate = |block: &[u8], from: usize| prefilter.next_candidate(block, from);
    let gate: Option<input::Gate> = filter.prefilter_rejects().then_some(&gate);
    for_each_line(log, encoding, gate, &mut |_, line, open| {
        let before = report.prefregex;
        report.line_gated(filter, line, open);
        if has_pref && report.prefregex > before && pref_groups.len() <= keep {
            pref_groups.push(if pref_groups.len() < keep {
                output::groups_repr(&filter.prefregex_groups())
            } else {
                "...".into()
            });
        }
        Ok(())
    })?;
    let run = output::Run {
        opts: o,
        filter,
        report: &report,
        failregex: &src.failregex,
        ignoreregex: &src.ignoreregex,
        pref_groups: &pref_groups,
        elapsed: started.elapsed().as_secs_f64(),
    };
    output::report(w, &run)
}

/// What is done with each line: its number, text, and whether it holds a
/// literal of the filter's first gate (None: not known).
type Each<'a> = dyn FnMut(usize, &str, Option<bool>) -> io::Result<()> + 'a;

/// Feeds each line of the log, decoded, to `each` with its number and,
/// when `gate` is given and could run, whether it holds a literal.
fn for_each_line(
    log: LogInput,
    encoding: Encoding,
    gate: Option<input::Gate>,
    each: &mut Each,
) -> io::Result<()> {
    match log {
        LogInput::File(file) => input::each_line(file, encoding, gate, each),
        LogInput::Lines(lines) => lines
            .iter()
            .enumerate()
            .try_for_each(|(i, l)| each(i + 1, l.trim_end_matches(['\r', '\n']), None)),
    }
}
