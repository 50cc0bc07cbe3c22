//! Our filters (defaults/filter.d) through the library, as the server builds
//! them (`ConfigTree`, `Filter` checking every failregex), over our own
//! annotated samples (tests/data/logs) and over Fail2ban's sample corpus
//! for the services they replace (sshd, postfix, dovecot): at least 97% of
//! the expectations hold in each.

mod common;

use std::path::Path;

use common::corpus::{self, Found, Tally, Variant, NOW, TZ};
use common::fail2ban::{installed, SAMPLES};
use common::{defaults_dir, repo};
use logban::config::ConfigTree;
use logban::filter::date::DateDetector;
use logban::filter::{decode_line, Failure, Filter, FilterOptions};
use serde_json::{Map, Value};

/// A failure as `logban regex --json` prints it (what the expectations
/// are checked against).
fn as_json(f: &Failure) -> Value {
    let mut m = Map::new();
    m.insert("fid".into(), f.fid.clone().into());
    m.insert("time".into(), f.time.into());
    m.insert("matches".into(), f.matches.clone().into());
    for (k, v) in f.data.iter().filter(|(k, _)| !k.starts_with("nofail")) {
        m.insert(k.clone(), v.clone().into());
    }
    if let Some(ip) = &f.ip {
        m.insert("ip".into(), ip.clone().into());
    }
    if !f.users.is_empty() {
        let mut users = f.users.clone();
        users.sort();
        m.insert("users".into(), users.into());
    }
    Value::Object(m)
}

/// One variant through one filter instance: the variant's lines in order,
/// dates in the samples' zone, "now" frozen.
fn run(conf: &Path, name: &str, v: &Variant) -> Result<Found, String> {
    let tree = ConfigTree::open(conf).map_err(|e| e.to_string())?;
    let mut def = tree.filter(&v.spec(name)).map_err(|e| e.to_string())?;
    if v.journal() {
        def.datepattern = Some("{NONE}".into());
    }
    let now = NOW as f64;
    let opts = FilterOptions {
        check_all: true,
        // Ids as the log writes them: nothing resolved, as the samples test.
        raw_hosts: true,
        report: false,
        now: Some(now),
        ..FilterOptions::regex_tool()
    };
    let mut filter = Filter::new(&def, opts).map_err(|e| e.to_string())?;
    let mut dates = DateDetector::with_tz(def.datepattern.as_deref(), None, TZ)
        .map_err(|e| format!("{e:?}"))?;
    let mut found = Found::new();
    let mut out: Vec<Failure> = Vec::new();
    for (n, it) in v.items.iter().enumerate() {
        let line = decode_line(&it.text);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.clear();
        let hit = dates.find(&line, now);
        filter.process_line_found(&line, hit, now, &mut out);
        let kept: Vec<Value> = out
            .iter()
            .filter(|f| !f.nofail && !f.pending)
            .map(as_json)
            .collect();
        if !kept.is_empty() {
            found.insert(n + 1, kept);
        }
    }
    Ok(found)
}

fn assert_holds(tally: &Tally, title: &str, at_least: usize) {
    println!("{}", tally.table(title));
    let (_, total) = tally.totals();
    assert!(total >= at_least, "only {total} expectations found");
    assert!(tally.ratio() >= 0.97, "{}", tally.table("below 97%"));
}

#[test]
fn our_filters_hold_on_our_samples() {
    let tally = corpus::corpus(&defaults_dir(), &repo().join("tests/data/logs"), None, run);
    for name in ["sshd", "postfix", "dovecot", "recidive", "nginx-http-auth"] {
        assert!(
            tally.variants.keys().any(|k| k.starts_with(name)),
            "no samples of {name}"
        );
    }
    assert_holds(&tally, "logban's filters on logban's samples", 100);
}

#[test]
fn our_filters_hold_on_the_stock_samples_of_their_services() {
    let defaults = defaults_dir();
    // (filter, fewer expectations than this means the samples were misread)
    for (name, at_least) in [("sshd", 400), ("postfix", 100), ("dovecot", 50)] {
        let tally = corpus::corpus(&defaults, installed(SAMPLES), Some(&[name]), run);
        assert_holds(
            &tally,
            &format!("logban's {name} filter on Fail2ban's {name} samples"),
            at_least,
        );
    }
}
