//! Running the programs actions use (`sh`, `nft`, `ipset`, ...): a timeout
//! that kills the whole process group, captured output, input on stdin; and
//! the host's own names.

use std::ffi::OsString;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// How long output is still read after the program ended (a background
/// grandchild may hold the pipe open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Settings every spawned program shares.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// PATH for the programs and the commands they run; None inherits logban's.
    pub path: Option<OsString>,
}

impl Env {
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        if let Some(path) = &self.path {
            cmd.env("PATH", path);
        }
        cmd
    }
}

/// What a program did.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "returned 2", "killed by signal 9", "timed out after 60 s".
    pub fn describe(&self, timeout: Duration) -> String {
        if self.timed_out {
            return format!("timed out after {} s", timeout.as_secs_f64());
        }
        match self.status {
            Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => format!("returned {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "ended abnormally".to_string(),
            },
            None => "did not end".to_string(),
        }
    }

    /// The first non-empty line of stderr, for short error messages.
    pub fn first_error_line(&self) -> &str {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }
}

/// Runs `cmd` in its own process group, feeding `stdin`, and kills the whole
/// group (TERM, then KILL) when it runs longer than `timeout`.
pub async fn run(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> io::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child.id().map(|p| p as libc::pid_t);
    let writer = child.stdin.take().zip(stdin).map(|(mut w, data)| {
        tokio::spawn(async move {
            // A program that exits early closes the pipe: its status tells why.
            let _ = w.write_all(&data).await;
        })
    });
    let read = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf).await;
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = read(child.stdout.take().map(|r| Box::new(r) as _));
    let err = read(child.stderr.take().map(|r| Box::new(r) as _));
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (Some(status?), false),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: signals the process group this function created.
                unsafe { libc::killpg(pid, libc::SIGTERM) };
                tokio::time::sleep(Duration::from_millis(100)).await;
                unsafe { libc::killpg(pid, libc::SIGKILL) };
            }
            (child.wait().await.ok(), true)
        }
    };
    if let Some(w) = writer {
        w.abort();
    }
    let collect = |h: tokio::task::JoinHandle<String>| async move {
        match tokio::time::timeout(OUTPUT_GRACE, h).await {
            Ok(Ok(s)) => s,
            _ => String::new(),
        }
    };
    Ok(Output {
        status,
        timed_out,
        stdout: collect(out).await,
        stderr: collect(err).await,
    })
}

/// The host name of `addr` from the resolver (reverse lookup), if any.
pub fn reverse_name(addr: std::net::IpAddr) -> Option<String> {
    let sa = std::net::SocketAddr::new(addr, 0);
    let (storage, len) = socket_addr_raw(&sa);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: storage holds a valid sockaddr of `len` bytes; host is writable.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo NUL-terminates on success.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn socket_addr_raw(sa: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is large enough for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("sleep 30 & echo $!; wait; echo done");
        let out = run(cmd, None, Duration::from_millis(300)).await.unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        let bg: u32 = out.stdout.trim().parse().expect("background pid");
        // The background `sleep` was in the group: gone, or a zombie awaiting its reaper.
        let stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .chars()
            .next();
        assert!(
            matches!(state, None | Some('Z')),
            "background child still alive: {stat}"
        );
    }

    #[tokio::test]
    async fn feeds_stdin_and_captures() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("cat; echo err >&2; exit 3");
        let data = vec![b'x'; 1 << 20];
        let out = run(cmd, Some(data), Duration::from_secs(20)).await.unwrap();
        assert_eq!(out.stdout.len(), 1 << 20);
        assert_eq!(out.first_error_line(), "err");
        assert_eq!(out.describe(Duration::from_secs(1)), "returned 3");
    }
}
