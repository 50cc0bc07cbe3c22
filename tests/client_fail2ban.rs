//! The same commands sent to logban and to Fail2ban's own server, with the
//! same configuration: fail2ban-client's output (stdout, exit code, and the
//! error lines on stderr) must be logban client's, byte for byte.

mod common;

use common::daemon::Sandbox;
use common::fail2ban::{self, normalize};

/// Two jails on their own logs, no actions (nothing outside the sandbox is
/// touched); syslogsocket set so that neither client warns about it.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new("");
    sb.write(
        "etc/fail2ban.conf",
        &sb.fail2ban_conf("syslogsocket = auto"),
    );
    sb.write(
        "etc/jail.local",
        &format!(
            "[other]\nenabled = true\nfilter = test-auth\nlogpath = {}\nmaxretry = 2\n",
            sb.path("other.log").display()
        ),
    );
    sb.write("other.log", "");
    sb
}

/// Commands in order (each side keeps its state across them); `true`: the
/// stderr lines are compared too.
const SCRIPT: &[(&str, bool)] = &[
    ("ping", true),
    ("ping 1", true),
    ("version", true),
    ("echo a b", true),
    ("status", true),
    ("status test", true),
    ("status test short", true),
    ("status test cymru", true),
    ("status other", true),
    ("get loglevel", true),
    ("get logtarget", true),
    ("get syslogsocket", true),
    ("get dbfile", true),
    ("get dbpurgeage", true),
    ("get dbmaxmatches", true),
    ("get test bantime", true),
    ("get test findtime", true),
    ("get test maxretry", true),
    ("get test maxmatches", true),
    ("get test maxlines", true),
    ("get test usedns", true),
    ("get test logencoding", true),
    ("get test ignoreself", true),
    ("get test ignorecommand", true),
    ("get test ignoreip", true),
    ("get test ignoreregex", true),
    ("get test prefregex", true),
    ("get test logtimezone", true),
    ("get test journalmatch", true),
    ("get test datepattern", true),
    ("get test logpath", true),
    ("get test actions", true),
    ("get test ignorecache", true),
    ("get test bantime.increment", true),
    ("banned", true),
    ("set test banip 192.0.2.7 198.51.100.0/24", true),
    ("set test banip 192.0.2.7", true),
    ("set test banip", true),
    ("set other banip 192.0.2.7 2001:db8::7", true),
    ("get test banned", true),
    ("get test banned 192.0.2.7", true),
    ("get test banned 192.0.2.7 192.0.2.8", true),
    ("get test banip", true),
    ("get test banip ,", true),
    ("banned", true),
    ("banned 192.0.2.7 203.0.113.5", true),
    ("status test", true),
    ("set test unbanip --report-absent 192.0.2.99", true),
    ("set test unbanip 192.0.2.99", true),
    ("set test unbanip 192.0.2.7", true),
    ("status test", true),
    ("unban 192.0.2.7", true),
    ("unban 203.0.113.9", true),
    ("banned", true),
    ("set test attempt 192.0.2.50 x", true),
    ("status test", true),
    ("set test maxretry 5", true),
    ("set test findtime 10m", true),
    ("set test bantime 2h", true),
    ("get test bantime", true),
    ("set test bantime -1", true),
    ("set test bantime 1h", true),
    ("set test maxmatches 3", true),
    ("set test idle on", true),
    ("set test idle off", true),
    ("set test usedns yes", true),
    ("set test usedns true", true),
    ("get test usedns", true),
    ("set test usedns no", true),
    ("get test usedns", true),
    ("set test maxlines 2", true),
    ("set test datepattern {^LN-BEG}", true),
    ("set test ignoreself true", true),
    ("set test ignorecommand /bin/true", true),
    ("get test ignorecommand", true),
    ("set test logencoding latin-1", true),
    ("get test logencoding", true),
    ("set test addignoreip 10.0.0.0/8 192.0.2.1", true),
    ("set test delignoreip 10.0.0.0/8", true),
    ("get test ignoreip", true),
    ("set test addignoreregex ^ignored \\S+$", true),
    ("set test addignoreregex ^also$", true),
    ("get test ignoreregex", true),
    ("set test delignoreregex 0", true),
    ("set test delignoreregex 7", true),
    ("set test prefregex x", true),
    ("set test addjournalmatch _SYSTEMD_UNIT=x.service", true),
    ("set test dellogpath /nonexistent/x.log", true),
    ("set test addlogpath /nonexistent/x.log", false),
    ("set loglevel DEBUG", true),
    ("get loglevel", true),
    ("set loglevel NOPE", true),
    ("set loglevel INFO", true),
    ("set dbpurgeage 2d", true),
    ("get dbpurgeage", true),
    ("set dbmaxmatches 20", true),
    ("get dbmaxmatches", true),
    ("flushlogs", true),
    // Refused commands: the message, exit 255, and the server stays.
    ("status nosuch", true),
    ("set nosuch maxretry 3", true),
    ("get nosuch maxretry", true),
    ("stop nosuch", true),
    ("start nosuch", true),
    ("set", true),
    ("get", true),
    ("set test", true),
    ("get test", true),
    ("set test unbanip", true),
    ("status test extra more", true),
    ("get test nosuchopt", true),
    ("set test nosuchopt 1", true),
    ("set test maxretry abc", true),
    ("set test idle maybe", true),
    ("get test action nosuch name", false),
    ("frobnicate", true),
    ("help-me", true),
    ("unban", true),
    ("unban --all", true),
    ("banned", true),
    ("stop other", true),
    ("status", true),
    ("reload a b", true),
    ("-V", true),
    ("--version", true),
    ("--str2sec 1h30m", true),
    ("--str2sec 1.5", true),
    ("ping", true),
];

/// Lines fail2ban-client writes while it reads the configuration files
/// itself (logban's client leaves that to the server).
fn reader_noise(line: &str) -> bool {
    line.contains("fail2ban.configreader") || line.contains("fail2ban.jailreader")
}

#[test]
fn the_same_commands_print_what_fail2ban_client_prints() {
    let sb = sandbox();
    let server = sb.start();
    let f2b = fail2ban::copy_of(&sb);
    let f2b_server = f2b.start();
    let mut differ = Vec::new();
    for (cmd, with_stderr) in SCRIPT {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let want = f2b.client(&words);
        let got = sb.client(&words);
        let want_err: String = normalize(&want.stderr, f2b.dir.path())
            .lines()
            .filter(|l| !reader_noise(l))
            .collect::<Vec<_>>()
            .join("\n");
        let got_err = normalize(&got.stderr, sb.dir.path());
        let same = want.code == got.code
            && want
                .stdout
                .replace(&*f2b.dir.path().to_string_lossy(), "SB")
                == got.stdout.replace(&*sb.dir.path().to_string_lossy(), "SB")
            && (!with_stderr || want_err == got_err);
        if !same {
            differ.push(format!(
                "$ {cmd}\nfail2ban-client ({}):\n{}{want_err}\nlogban client ({}):\n{}{got_err}\n",
                want.code, want.stdout, got.code, got.stdout
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    server.stop(&sb);
    f2b_server.stop(&f2b);
}
