//! `fail2ban-regex`'s bookkeeping over a run: the `Lines: N lines, X ignored,
//! Y matched, Z missed` counts (multi-line windows included), the hits of
//! each regex, and the matched, missed and ignored lines it would print.

use super::{Failure, Filter, LineResult};

/// Which lines are kept for printing (`--print-all-*`, `--print-no-*`).
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    pub print_all_matched: bool,
    pub print_all_missed: bool,
    pub print_all_ignored: bool,
    pub print_no_missed: bool,
    pub print_no_ignored: bool,
    /// `-L` when given, else 20: without `--print-all-*`, at most this many
    /// plus one missed or ignored lines are kept.
    pub keep: usize,
    /// Keep each hit's id (`-v` lists them), not only the count.
    pub hit_ids: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            print_all_matched: false,
            print_all_missed: false,
            print_all_ignored: false,
            print_no_missed: false,
            print_no_ignored: false,
            keep: 20,
            hit_ids: true,
        }
    }
}

/// One failure as `fail2ban-regex -v` lists it under its regex.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The failure id (empty for a pending multi-line match).
    pub fid: String,
    pub time: f64,
    /// Fail2ban's "(multiple regex matched)" flag: set from the third
    /// failure of a line on.
    pub multiple: bool,
}

/// The statistics of a `fail2ban-regex` run.
#[derive(Debug, Clone, Default)]
pub struct RegexReport {
    opts: ReportOptions,
    pub tested: i64,
    pub ignored: i64,
    pub matched: i64,
    /// Can go below zero, as Fail2ban's does when a multi-line match takes
    /// lines it had not counted as missed.
    pub missed: i64,
    /// Lines the prefregex matched (Fail2ban's count, see [`LineResult::prefregex`]).
    pub prefregex: usize,
    /// Per failregex: its hits, in order.
    pub failregex: Vec<Vec<Hit>>,
    /// Per ignoreregex: how many lines it ignored.
    pub ignoreregex: Vec<usize>,
    pub matched_lines: Vec<String>,
    pub missed_lines: Vec<String>,
    pub ignored_lines: Vec<String>,
    failures: Vec<Failure>,
}

impl RegexReport {
    pub fn new(filter: &Filter, opts: ReportOptions) -> RegexReport {
        RegexReport {
            opts,
            failregex: vec![Vec::new(); filter.failregexes().count()],
            ignoreregex: vec![0; filter.ignoreregexes().count()],
            ..RegexReport::default()
        }
    }

    /// Feeds one line of a log (end of line stripped here); comments and
    /// empty lines are skipped as `fail2ban-regex` skips them. Returns the
    /// failures of the line that count (no-fail ones left out).
    pub fn line(&mut self, filter: &mut Filter, line: &str) -> &[Failure] {
        self.line_gated(filter, line, None)
    }

    /// As [`RegexReport::line`], with `open` from a scan of many lines
    /// (see [`Filter::process_line_gated`]).
    pub fn line_gated(
        &mut self,
        filter: &mut Filter,
        line: &str,
        open: Option<bool>,
    ) -> &[Failure] {
        let line = line.trim_end_matches(['\r', '\n']);
        self.failures.clear();
        if line.starts_with('#') || line.is_empty() {
            return &self.failures;
        }
        let r = match open {
            Some(open) => filter.process_line_gated(line, open, &mut self.failures),
            None => filter.process_line(line, &mut self.failures),
        };
        self.count(filter, line, r)
    }

    /// Feeds a line whose date is known (a journal entry).
    pub fn dated(
        &mut self,
        filter: &mut Filter,
        time_text: &str,
        text: &str,
        time: f64,
    ) -> &[Failure] {
        self.failures.clear();
        let r = filter.process_dated(time_text, text, time, &mut self.failures);
        let line = format!("{time_text}{text}");
        self.count(filter, &line, r)
    }

    fn count(&mut self, filter: &Filter, line: &str, r: LineResult) -> &[Failure] {
        let mut ignored = r.ignored;
        let mut counted = 0;
        for (n, f) in self.failures.iter().enumerate() {
            if let Some(hits) = self.failregex.get_mut(f.regex) {
                hits.push(Hit {
                    fid: if self.opts.hit_ids {
                        f.fid.clone()
                    } else {
                        String::new()
                    },
                    time: f.time,
                    multiple: n - count_nofail(&self.failures[..n]) > 1,
                });
            }
            if f.nofail {
                ignored = true;
            } else {
                counted += 1;
            }
        }
        for &i in filter.ignore_hits() {
            if let Some(c) = self.ignoreregex.get_mut(i) {
                *c += 1;
            }
        }
        if r.prefregex {
            self.prefregex += 1;
        }
        for taken in filter.taken_lines() {
            if let Some(p) = self.missed_lines.iter().position(|l| l == taken) {
                self.missed_lines.remove(p);
            }
            if self.opts.print_all_matched {
                self.matched_lines.push(taken.clone());
            }
            self.matched += 1;
            self.missed -= 1;
        }
        let o = self.opts;
        if ignored {
            self.ignored += 1;
            if !o.print_no_ignored && (o.print_all_ignored || self.ignored <= o.keep as i64 + 1) {
                self.ignored_lines.push(line.to_string());
            }
        } else if counted > 0 {
            self.matched += 1;
            if o.print_all_matched {
                self.matched_lines.push(line.to_string());
            }
        } else {
            self.missed += 1;
            if !o.print_no_missed && (o.print_all_missed || self.missed <= o.keep as i64 + 1) {
                self.missed_lines.push(line.to_string());
            }
        }
        self.tested += 1;
        self.failures.retain(|f| !f.nofail);
        &self.failures
    }

    /// The summary line after `Lines: `.
    pub fn summary(&self) -> String {
        format!(
            "{} lines, {} ignored, {} matched, {} missed",
            self.tested, self.ignored, self.matched, self.missed
        )
    }
}

/// Fail2ban appends no-fail entries to its list of failures too; the
/// "multiple" flag counts only the ones kept before it.
fn count_nofail(f: &[Failure]) -> usize {
    f.iter().filter(|f| f.nofail).count()
}
