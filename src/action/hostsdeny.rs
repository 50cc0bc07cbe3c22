//! Fail2ban's hostsdeny action (TCP Wrapper) carried out by logban: the same
//! lines (`ALL: 192.0.2.1`, `ALL: [2001:db8::1]`) in the same file, but a
//! batch is one append, an unban batch one rewrite, and a line is never
//! written twice.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::tags::{Commands, Family};
use super::{ActionError, Cause, Outcome, Ticket};
use crate::config::ActionDef;

/// Jails sharing the file must not interleave a rewrite with an append.
static FILE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct HostsDeny {
    file: PathBuf,
    /// The line per family, with `<ip>` where the address goes.
    lines: [String; 2],
    /// Bans whose write failed, by failure id: written again later.
    pending: HashMap<String, Ticket>,
}

/// `printf %b "LINE\n" >> FILE` -> (LINE, FILE), when LINE holds `<ip>` and
/// nothing the shell would expand.
fn append_command(cmd: &str) -> Option<(String, String)> {
    let rest = cmd.trim().strip_prefix("printf %b \"")?;
    let (line, file) = rest.split_once("\\n\" >> ")?;
    let file = file.trim();
    let ok = line.contains("<ip>")
        && !line
            .replace("<ip>", "")
            .contains(['<', '$', '`', '"', '\\', '\'', '\n'])
        && file.starts_with('/')
        && file.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+' | b'@' | b',')
        });
    ok.then(|| (line.to_string(), file.to_string()))
}

impl HostsDeny {
    /// The stock hostsdeny action, when its commands are the stock ones.
    pub fn recognise(def: &ActionDef) -> Option<HostsDeny> {
        if def.file != "hostsdeny" {
            return None;
        }
        for op in ["actionstart", "actionstop", "actioncheck", "actionflush"] {
            if def.get(op).is_some_and(|v| !v.trim().is_empty()) {
                return None;
            }
        }
        let mut commands = Commands::new(def);
        let mut lines = Vec::with_capacity(2);
        let mut file = None;
        for fam in [Family::Inet4, Family::Inet6] {
            let ban = commands.get("actionban", Some(fam)).ok()?;
            let (line, f) = append_command(&ban)?;
            if file.get_or_insert_with(|| f.clone()) != &f {
                return None;
            }
            lines.push(line);
        }
        Some(HostsDeny {
            file: PathBuf::from(file?),
            lines: [lines.remove(0), lines.remove(0)],
            pending: HashMap::new(),
        })
    }

    pub fn healthy(&self) -> bool {
        self.pending.is_empty()
    }

    fn line(&self, t: &Ticket) -> Result<String, ActionError> {
        // An id that is not an address could smuggle its own lines in.
        let net = t.target().ok_or_else(|| {
            ActionError::new(Cause::Config, "hosts.deny bans addresses and subnets only").on(&t.fid)
        })?;
        let fam = super::prefix::family_of(&net);
        let shown = super::prefix::Prefix::from_net(&net).display(fam);
        let i = usize::from(fam == Family::Inet6);
        Ok(self.lines[i].replace("<ip>", &shown))
    }

    fn io_error(&self, e: std::io::Error) -> ActionError {
        ActionError::new(
            Cause::Io,
            format!("cannot write {}: {e}", self.file.display()),
        )
    }

    fn read(&self) -> Result<String, ActionError> {
        match std::fs::read_to_string(&self.file) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Appends the lines of `tickets` that the file does not have yet.
    pub fn ban(&mut self, tickets: &[Ticket]) -> Outcome {
        let mut bad = Ok(());
        let mut lines = Vec::with_capacity(tickets.len());
        let mut banned = Vec::with_capacity(tickets.len());
        for t in tickets {
            match self.line(t) {
                Ok(l) => {
                    lines.push(l);
                    banned.push(t);
                }
                Err(e) => bad = bad.and(Err(e)),
            }
        }
        let written = self.append(&lines);
        for t in banned {
            match &written {
                Ok(()) => self.pending.remove(&t.fid),
                Err(_) => self.pending.insert(t.fid.clone(), t.clone()),
            };
        }
        written.and(bad)
    }

    fn append(&self, lines: &[String]) -> Outcome {
        let _guard = FILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let text = self.read()?;
        let mut have: HashSet<&str> = text.lines().collect();
        let mut out = String::new();
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
        for l in lines {
            if have.insert(l) {
                out.push_str(l);
                out.push('\n');
            }
        }
        if out.trim().is_empty() {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .and_then(|mut f| f.write_all(out.as_bytes()))
            .map_err(|e| self.io_error(e))
    }

    /// Removes every line of `tickets` (as Fail2ban's `sed -i` does).
    pub fn unban(&mut self, tickets: &[Ticket]) -> Outcome {
        for t in tickets {
            self.pending.remove(&t.fid);
        }
        let gone: HashSet<String> = tickets.iter().filter_map(|t| self.line(t).ok()).collect();
        if gone.is_empty() {
            return Ok(());
        }
        let _guard = FILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let text = self.read()?;
        let mut out = String::with_capacity(text.len());
        let mut removed = false;
        for l in text.split_inclusive('\n') {
            if gone.contains(l.trim_end_matches('\n')) {
                removed = true;
            } else {
                out.push_str(l);
            }
        }
        if !removed {
            return Ok(());
        }
        replace_file(&self.file, &out).map_err(|e| self.io_error(e))
    }

    pub fn retry(&mut self) -> Outcome {
        let pending: Vec<Ticket> = self.pending.values().cloned().collect();
        self.ban(&pending)
    }
}

/// Writes `text` to a temporary file beside `path` and renames it over
/// `path`, keeping the permissions.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("hosts.deny");
    let tmp = dir.join(format!(".{name}.logban.{}", std::process::id()));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_ban_command_shape() {
        assert_eq!(
            append_command("printf %b \"ALL: <ip>\\n\" >> /etc/hosts.deny"),
            Some(("ALL: <ip>".into(), "/etc/hosts.deny".into()))
        );
        assert_eq!(
            append_command("printf %b \"sshd: [<ip>]\\n\" >> /tmp/x"),
            Some(("sshd: [<ip>]".into(), "/tmp/x".into()))
        );
        assert_eq!(
            append_command("printf %b \"ALL: <ip> $x\\n\" >> /tmp/x"),
            None
        );
        assert_eq!(
            append_command("printf %b \"ALL: <ip>\\n\" >> /tmp/x; reboot"),
            None
        );
        assert_eq!(
            append_command("printf %b \"ALL: <ip>\\n\" >> /tmp/x;reboot"),
            None
        );
        assert_eq!(append_command("echo <ip> >> /tmp/x"), None);
    }
}
