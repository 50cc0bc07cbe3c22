//! The conformance test: Fail2ban's annotated sample logs run through
//! `logban regex --json` with the rules of Fail2ban's own samples test
//! (tests/common/corpus.rs reads the samples and checks the results;
//! tests/profile_corpus.rs runs our filters through the library instead).

mod common;

use common::corpus::{self, Found, Variant, NOW, TZ};
use common::fail2ban::{installed, CONF, SAMPLES};
use common::{defaults_dir, repo, BIN};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs a variant; returns the failures by line number (from 1).
fn run(conf: &Path, name: &str, v: &Variant) -> Result<Found, String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sample.log");
    let mut data = Vec::new();
    for it in &v.items {
        data.extend_from_slice(&it.text);
        data.push(b'\n');
    }
    std::fs::write(&log, data).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env("TZ", TZ)
        .args(["regex", "--json", "--now", &NOW.to_string(), "-c"])
        .arg(conf);
    if v.journal() {
        cmd.args(["-d", "{NONE}"]);
    }
    let out = cmd
        .arg(&log)
        .arg(v.spec(name))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let mut found = Found::new();
    for row in String::from_utf8_lossy(&out.stdout).lines() {
        let o: Value = serde_json::from_str(row).map_err(|e| format!("bad JSON {row:?}: {e}"))?;
        let line = o["line"].as_u64().ok_or("no line number")? as usize;
        found.entry(line).or_default().push(o);
    }
    Ok(found)
}

#[test]
fn stock_filters_hold_on_the_stock_samples() {
    let tally = corpus::corpus(installed(CONF), installed(SAMPLES), None, run);
    println!(
        "{}",
        tally.table("Fail2ban's filters on Fail2ban's samples")
    );
    let (_, total) = tally.totals();
    assert!(total > 1300, "only {total} expectations found");
    assert!(tally.ratio() >= 0.99, "{}", tally.table("below 99%"));
}

#[test]
fn every_stock_filter_loads() {
    let conf = installed(CONF);
    let tree = logban::config::ConfigTree::open(conf).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(conf.join("filter.d"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".conf").map(str::to_string))
        .collect();
    names.sort();
    // Files other filters include (`before = common.conf`) are parts, not
    // filters: Fail2ban cannot load them alone either.
    let mut parts = std::collections::HashSet::new();
    for name in &names {
        let text = std::fs::read_to_string(conf.join(format!("filter.d/{name}.conf"))).unwrap();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if matches!(key.trim(), "before" | "after") {
                for f in value.split_whitespace() {
                    parts.insert(
                        f.trim_end_matches(".conf")
                            .trim_end_matches(".local")
                            .to_string(),
                    );
                }
            }
        }
    }
    names.retain(|n| !parts.contains(n));
    let mut failed = Vec::new();
    for name in &names {
        let built = tree
            .filter(name)
            .map_err(|e| e.to_string())
            .and_then(|def| {
                logban::filter::Filter::new(&def, logban::filter::FilterOptions::regex_tool())
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = built {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(
        names.len() > 80,
        "only {} filters in {}",
        names.len(),
        conf.display()
    );
    assert!(
        failed.is_empty(),
        "filters that do not load:\n{}",
        failed.join("\n")
    );
}

#[test]
fn our_filters_hold_on_our_samples() {
    let tally = corpus::corpus(&defaults_dir(), &repo().join("tests/data/logs"), None, run);
    println!("{}", tally.table("logban's filters on logban's samples"));
    let (_, total) = tally.totals();
    assert!(total > 100, "only {total} expectations found");
    assert!(tally.ratio() >= 0.97, "{}", tally.table("below 97%"));
}

#[test]
fn our_filters_hold_on_the_stock_samples_of_their_services() {
    let only = ["sshd", "postfix", "dovecot"];
    let tally = corpus::corpus(&defaults_dir(), installed(SAMPLES), Some(&only), run);
    println!(
        "{}",
        tally.table("logban's filters on Fail2ban's sshd, postfix, dovecot samples")
    );
    let (_, total) = tally.totals();
    assert!(total > 600, "only {total} expectations found");
    assert!(tally.ratio() >= 0.97, "{}", tally.table("below 97%"));
}
