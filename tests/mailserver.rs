//! The mail server's own checks (reference mailserver.md: its test suite and
//! the admin command it wraps), replayed by tests/mailserver/check.sh against
//! this build, in network namespaces with an attacker. The same script passes
//! against Fail2ban (`SERVER=fail2ban-server CLIENT=fail2ban-client`).

use std::process::Command;

#[test]
fn every_check_of_the_mail_server_passes_against_logban() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mailserver/check.sh");
    let bin = env!("CARGO_BIN_EXE_logban");
    let out = Command::new("bash")
        .arg(script)
        .env("SERVER", format!("{bin} server"))
        .env("CLIENT", format!("{bin} client"))
        .env("BUILD", "0")
        .output()
        .expect("bash runs check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let passed = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(failed.is_empty(), "failed checks: {failed:?}\n{report}");
    assert!(
        out.status.success(),
        "check.sh exited {}\n{report}",
        out.status
    );
    // Every check of mailserver.md ran (a script that stopped early passes none).
    assert!(
        passed >= 47,
        "{passed} checks passed, 47 expected\n{report}"
    );
}
