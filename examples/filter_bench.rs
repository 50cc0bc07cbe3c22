//! Filter throughput on a generated mail-server log, with and without the
//! literal prefilter: `cargo run --release --example filter_bench [LINES]`.
//! Needs Fail2ban installed (its stock filters) and /work/shared/tools/genlog.py
//! or a log in `LOGBAN_BENCH_LOG`.

use logban::config::{FilterDef, UseDns};
use logban::filter::{Filter, FilterOptions};
use std::process::Command;
use std::time::Instant;

fn stock_filters() -> Vec<serde_json::Value> {
    let out = Command::new("/usr/bin/python3")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/filter/tests/oracle.py"),
            "filters",
        ])
        .output()
        .expect("python3 with Fail2ban");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn main() {
    let lines: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let log = match std::env::var("LOGBAN_BENCH_LOG") {
        Ok(p) => std::fs::read_to_string(p).unwrap(),
        Err(_) => {
            let out = Command::new("/usr/bin/python3")
                .args([
                    "/work/shared/tools/genlog.py",
                    &lines.to_string(),
                    "0.05",
                    "42",
                    "2025-01-10T00:00:00",
                ])
                .output()
                .expect("genlog.py");
            String::from_utf8(out.stdout).unwrap()
        }
    };
    // Syslog stamps (`Jan 10 00:00:00`) cut as the date detector cuts them.
    let split: Vec<(&str, &str)> = log
        .lines()
        .map(|l| {
            if l.len() > 15 {
                l.split_at(15)
            } else {
                ("", l)
            }
        })
        .collect();
    let filters = stock_filters();
    for name in ["postfix", "dovecot", "sshd"] {
        let v = filters
            .iter()
            .find(|f| f["name"] == name && f["opts"].as_object().unwrap().is_empty())
            .unwrap();
        let strings = |k: &str| {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let def = FilterDef {
            name: name.into(),
            prefregex: v["prefregex"].as_str().map(str::to_string),
            failregex: strings("failregex"),
            ignoreregex: strings("ignoreregex"),
            maxlines: v["maxlines"].as_u64().unwrap() as usize,
            usedns: UseDns::No,
            ..FilterDef::default()
        };
        if std::env::var("LOGBAN_BENCH_LITERALS").is_ok() {
            let f = Filter::new(&def, FilterOptions::regex_tool()).unwrap();
            println!("{name}: {:?}", f.prefilter().literals());
        }
        for (mode, prefilter) in [
            ("server", true),
            ("server", false),
            ("regex", true),
            ("regex", false),
        ] {
            let base = if mode == "server" {
                FilterOptions::server(600.0)
            } else {
                FilterOptions::regex_tool()
            };
            let opts = FilterOptions {
                prefilter,
                now: Some(1.7e9),
                find_time: None,
                ..base.clone()
            };
            let mut f = Filter::new(&def, opts.clone()).unwrap();
            let mut out = Vec::new();
            let mut rejected = 0usize;
            let t = Instant::now();
            for (tt, text) in &split {
                out.clear();
                rejected += f.process_dated(tt, text, 1.7e9, &mut out).rejected as usize;
            }
            let s = t.elapsed().as_secs_f64();
            let mut failures = 0;
            let mut g = Filter::new(&def, opts.clone()).unwrap();
            for (tt, text) in &split {
                out.clear();
                g.process_dated(tt, text, 1.7e9, &mut out);
                failures += out.iter().filter(|f| !f.nofail && !f.pending).count();
            }
            println!(
                "{name:8} {mode:6} prefilter={prefilter:5} {:>9.0} lines/s  {:>6.1} ns/line  rejected {:>5.1}%  failures {failures}",
                split.len() as f64 / s,
                s * 1e9 / split.len() as f64,
                100.0 * rejected as f64 / split.len() as f64
            );
        }
    }
}
