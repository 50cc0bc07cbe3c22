//! Batching of per-address commands: when every ban (or unban) command of a
//! batch is one plain `ipset ... add|del` or `iptables ... -I|-A|-D` command,
//! they run as one `ipset restore` or one `iptables-restore --noflush`
//! instead of one process each. Anything else runs command by command.

/// One process that does the work of many commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub program: String,
    pub args: Vec<String>,
    pub input: String,
}

/// The words of a command made only of plain words (no quoting, expansion,
/// redirection or second command), else None.
fn plain_words(cmd: &str) -> Option<Vec<&str>> {
    let cmd = cmd.trim();
    let plain = cmd.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\t' | b'_' | b'.' | b'/' | b':' | b',' | b'=' | b'@' | b'%' | b'+' | b'-'
            )
    });
    (plain && !cmd.is_empty()).then(|| cmd.split_whitespace().collect())
}

fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// The shared part of a command and its line in the batch input.
#[derive(PartialEq, Eq)]
struct Parsed<'a> {
    head: Vec<&'a str>,
    line: String,
}

/// `ipset -exist add SET ADDR ...`: only with `-exist`, so that a batch
/// stopped half-way can be run again command by command.
fn parse_ipset<'a>(w: &[&'a str]) -> Option<Parsed<'a>> {
    if base_name(w[0]) != "ipset" {
        return None;
    }
    let sub = 1 + w[1..].iter().position(|a| !a.starts_with('-'))?;
    let opts = &w[1..sub];
    if !matches!(w[sub], "add" | "del") || !opts.iter().any(|o| matches!(*o, "-exist" | "-!")) {
        return None;
    }
    Some(Parsed {
        head: w[..sub].to_vec(),
        line: w[sub..].join(" "),
    })
}

/// `iptables [-w [N]] [-t TABLE] -I|-A|-D CHAIN RULE...`.
fn parse_iptables<'a>(w: &[&'a str]) -> Option<Parsed<'a>> {
    if !matches!(
        base_name(w[0]),
        "iptables"
            | "ip6tables"
            | "iptables-nft"
            | "ip6tables-nft"
            | "iptables-legacy"
            | "ip6tables-legacy"
    ) {
        return None;
    }
    let mut i = 1;
    let mut table = "filter";
    while i < w.len() {
        match w[i] {
            "-w" | "--wait" => {
                i += 1;
                if w.get(i)
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                {
                    i += 1;
                }
            }
            "-t" | "--table" => {
                table = w.get(i + 1)?;
                i += 2;
            }
            "-I" | "-A" | "-D" | "--insert" | "--append" | "--delete" => break,
            _ => return None,
        }
    }
    if i + 1 >= w.len() {
        return None;
    }
    let mut head = w[..i].to_vec();
    head.push(table);
    Some(Parsed {
        head,
        line: w[i..].join(" "),
    })
}

/// One process for all of `cmds`, when they allow it (at least two).
pub fn plan(cmds: &[String]) -> Option<Batch> {
    if cmds.len() < 2 {
        return None;
    }
    let mut parsed = Vec::with_capacity(cmds.len());
    for c in cmds {
        let w = plain_words(c)?;
        parsed.push(parse_ipset(&w).or_else(|| parse_iptables(&w))?);
    }
    let head = &parsed[0].head;
    if parsed.iter().any(|p| p.head != *head) {
        return None;
    }
    if base_name(head[0]) == "ipset" {
        let mut input = String::new();
        for p in &parsed {
            input.push_str(&p.line);
            input.push('\n');
        }
        let mut args: Vec<String> = head[1..].iter().map(|s| s.to_string()).collect();
        args.push("restore".into());
        return Some(Batch {
            program: head[0].to_string(),
            args,
            input,
        });
    }
    let (table, opts) = head[1..].split_last()?;
    let mut input = format!("*{table}\n");
    for p in &parsed {
        input.push_str(&p.line);
        input.push('\n');
    }
    input.push_str("COMMIT\n");
    let mut args = vec!["--noflush".to_string()];
    // iptables-restore takes the wait option as iptables does.
    args.extend(opts.iter().map(|s| s.to_string()));
    Some(Batch {
        program: format!("{}-restore", head[0]),
        args,
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(cmds: &[&str]) -> Vec<String> {
        cmds.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ipset_batches_with_exist_only() {
        let b = plan(&v(&[
            "ipset -exist add f2b-sshd 192.0.2.1 timeout 0",
            "ipset -exist add f2b-sshd 192.0.2.2 timeout 0",
        ]))
        .unwrap();
        assert_eq!(b.program, "ipset");
        assert_eq!(b.args, ["-exist", "restore"]);
        assert_eq!(
            b.input,
            "add f2b-sshd 192.0.2.1 timeout 0\nadd f2b-sshd 192.0.2.2 timeout 0\n"
        );
        assert!(plan(&v(&["ipset add s 192.0.2.1", "ipset add s 192.0.2.2"])).is_none());
    }

    #[test]
    fn iptables_batches() {
        let b = plan(&v(&[
            "iptables -w -I f2b-sshd 1 -s 192.0.2.1 -j REJECT --reject-with icmp-port-unreachable",
            "iptables -w -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable",
        ]))
        .unwrap();
        assert_eq!(b.program, "iptables-restore");
        assert_eq!(b.args, ["--noflush", "-w"]);
        assert_eq!(
            b.input,
            "*filter\n-I f2b-sshd 1 -s 192.0.2.1 -j REJECT --reject-with icmp-port-unreachable\n\
             -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n"
        );
    }

    #[test]
    fn anything_else_runs_one_by_one() {
        assert!(plan(&v(&["iptables -w -I c 1 -s 192.0.2.1 -j DROP"])).is_none());
        assert!(plan(&v(&[
            "iptables -I c -s 192.0.2.1 -j DROP",
            "ip6tables -I c -s ::1 -j DROP"
        ]))
        .is_none());
        assert!(plan(&v(&[
            "iptables -I c -s \"$x\" -j DROP",
            "iptables -I c -s y -j DROP"
        ]))
        .is_none());
        assert!(plan(&v(&[
            "iptables -I c -j DROP; reboot",
            "iptables -I c -j DROP"
        ]))
        .is_none());
        assert!(plan(&v(&["iptables -N f2b", "iptables -N f2b"])).is_none());
        assert!(plan(&v(&[
            "ip route add unreachable 192.0.2.1",
            "ip route add unreachable 192.0.2.2"
        ]))
        .is_none());
    }
}
