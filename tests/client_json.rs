//! `--json` against a real server: the documented shapes (docs/protocol.md).

mod common;

use common::daemon::*;
use serde_json::{json, Value};

fn json_of(sb: &Sandbox, args: &[&str]) -> (i32, Value) {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let r = sb.client(&full);
    let v = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {:?}", r.stdout));
    (r.code, v)
}

#[test]
fn status_get_and_banned_as_objects() {
    let sb = Sandbox::new("maxretry = 2");
    let server = sb.start();
    sb.fail("192.0.2.8", 1);
    sb.wait_status("test", "one failure", |s| s.total_failed == 1);
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.7"]), "1\n");
    let log = sb.path("auth.log").display().to_string();
    assert_eq!(
        json_of(&sb, &["status"]),
        (0, json!({"number_of_jails": 1, "jails": ["test"]}))
    );
    assert_eq!(
        json_of(&sb, &["status", "test"]),
        (
            0,
            json!({
                "jail": "test",
                "filter": {"currently_failed": 1, "total_failed": 1, "files": [log]},
                "actions": {"currently_banned": 1, "total_banned": 1,
                    "banned": ["192.0.2.7"], "enforced": true}
            })
        )
    );
    assert_eq!(
        json_of(&sb, &["get", "test", "bantime"]),
        (0, json!({"jail": "test", "bantime": 3600}))
    );
    assert_eq!(
        json_of(&sb, &["get", "loglevel"]),
        (0, json!({"loglevel": "INFO"}))
    );
    assert_eq!(
        json_of(&sb, &["get", "test", "banned", "192.0.2.7", "192.0.2.8"]),
        (
            0,
            json!({"jail": "test", "banned": {"192.0.2.7": true, "192.0.2.8": false}})
        )
    );
    let (code, v) = json_of(&sb, &["get", "test", "banip", "--with-time"]);
    assert_eq!(code, 0);
    let entry = &v["banip"][0];
    assert_eq!(entry["ip"], "192.0.2.7");
    assert_eq!(entry["bantime"], 3600);
    assert!(
        entry["banned_at"].as_str().is_some_and(|t| t.len() == 19),
        "{v}"
    );
    assert!(entry["ends"].as_str().is_some_and(|t| t.len() == 19), "{v}");
    assert_eq!(
        json_of(&sb, &["banned"]),
        (0, json!({"test": ["192.0.2.7"]}))
    );
    assert_eq!(
        json_of(&sb, &["banned", "192.0.2.7", "203.0.113.1"]),
        (0, json!({"192.0.2.7": ["test"], "203.0.113.1": []}))
    );
    // Other commands: the value as is; errors as an object, exit 255.
    assert_eq!(
        json_of(&sb, &["set", "test", "banip", "192.0.2.9"]),
        (0, json!(1))
    );
    assert_eq!(
        json_of(&sb, &["status", "nosuch"]),
        (
            255,
            json!({"error": {"kind": "unknown-jail", "message": "nosuch"}})
        )
    );
    server.stop(&sb);
}

#[test]
fn bans_not_carried_out_show_in_the_status_object() {
    let sb = Sandbox::new("action = refuse");
    sb.write(
        "etc/action.d/refuse.conf",
        "[Definition]\nactionban = exit 1\nactionunban = true\n",
    );
    let server = sb.start();
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.7"]), "1\n");
    let (_, v) = json_of(&sb, &["status", "test"]);
    assert_eq!(v["actions"]["enforced"], false, "{v}");
    assert!(
        v["actions"]["not_enforced"]
            .as_str()
            .is_some_and(|r| r.starts_with("refuse")),
        "{v}"
    );
    assert_eq!(v["actions"]["banned"], json!(["192.0.2.7"]));
    server.stop(&sb);
}
