//! Bans carried out by actions: Fail2ban's own hostsdeny action writing a
//! temp file (no host firewall is touched), and what `status` shows when an
//! action cannot carry bans out.

mod common;

use common::daemon::*;
use common::{fail2ban, wait_until};

const HOSTSDENY: &str = "/etc/fail2ban/action.d/hostsdeny.conf";

/// A sandbox whose jail bans through Fail2ban's installed hostsdeny action
/// into `hosts.deny` in the sandbox.
fn hostsdeny_sandbox(extra: &str) -> Sandbox {
    let conf = std::fs::read_to_string(fail2ban::installed(HOSTSDENY)).unwrap();
    let sb = Sandbox::new(extra);
    sb.write("etc/action.d/hostsdeny.conf", &conf);
    sb.write("hosts.deny", "# hosts.deny of the test\n");
    let action = format!(
        "[test]\naction = hostsdeny[file=\"{}\"]\n{extra}\n",
        sb.path("hosts.deny").display()
    );
    sb.write("etc/jail.local", &action);
    sb
}

fn denied(sb: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(sb.path("hosts.deny"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("ALL: ").map(String::from))
        .collect();
    v.sort();
    v
}

fn wait_denied(sb: &Sandbox, want: &[&str]) {
    wait_until(
        &format!("{want:?} in hosts.deny"),
        || {
            let got = denied(sb);
            if got == want {
                Ok(())
            } else {
                Err(got)
            }
        },
        |got| format!("hosts.deny holds {got:?}\nlog:\n{}", sb.log()),
    );
}

#[test]
fn bans_reach_the_action_and_come_back_after_a_restart() {
    let sb = hostsdeny_sandbox("maxretry = 2");
    let server = sb.start();
    sb.fail("192.0.2.91", 1);
    sb.append("auth.log", &rfc3339_line("root", "192.0.2.91"));
    wait_denied(&sb, &["192.0.2.91"]);
    // banip answers once the action has it.
    assert_eq!(sb.ok(&["set", "test", "banip", "198.51.100.91"]), "1\n");
    assert_eq!(denied(&sb), ["192.0.2.91", "198.51.100.91"]);
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.91"]), "1\n");
    assert_eq!(denied(&sb), ["198.51.100.91"]);
    let st = sb.status("test");
    assert!(!st.text.contains("NOT enforced"), "{}", st.text);
    // Stop unbans everything (as Fail2ban), the restart puts it back.
    server.stop(&sb);
    assert_eq!(denied(&sb), Vec::<String>::new());
    let server = sb.start();
    wait_denied(&sb, &["198.51.100.91"]);
    assert!(sb
        .log()
        .contains("NOTICE  [test] Restore Ban 198.51.100.91\n"));
    server.stop(&sb);
}

#[test]
fn bans_not_carried_out_are_shown_without_breaking_the_banned_list() {
    let sb = Sandbox::new("maxretry = 1\naction = refuse");
    sb.write(
        "etc/action.d/refuse.conf",
        "[Definition]\nactionban = echo 'Operation not permitted' >&2; exit 1\nactionunban = true\n",
    );
    let server = sb.start();
    sb.fail("203.0.113.91", 1);
    let st = sb.wait_status("test", "the ban and the failure shown", |s| {
        s.total_banned == 1 && s.text.contains("NOT enforced")
    });
    let lines: Vec<&str> = st.text.lines().collect();
    let n = lines.len();
    assert!(
        lines[n - 2].starts_with("   |- Bans NOT enforced:\trefuse"),
        "{}",
        st.text
    );
    assert_eq!(lines[n - 1], "   `- Banned IP list:\t203.0.113.91");
    // The admin script's grep still finds the list, and only the list.
    let listed: Vec<&str> = st
        .text
        .lines()
        .filter_map(|l| l.split_once("Banned IP list:\t").map(|(_, v)| v))
        .collect();
    assert_eq!(listed, ["203.0.113.91"]);
    assert!(sb.log().contains("NOT enforced"), "{}", sb.log());
    server.stop(&sb);
}
