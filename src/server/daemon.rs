//! Process plumbing of the server: going to the background, the pid file and
//! the control socket file. Nothing here walks the descriptor table (Fail2ban
//! closes every possible descriptor and hangs for minutes when the open-files
//! limit is huge); Rust opens every descriptor close-on-exec instead.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Detaches from the terminal: fork, setsid, fork again, stdio to /dev/null
/// (unless the log goes there). Must run before any thread is started.
/// Returns only in the daemon, with the handle through which it tells the
/// original process how the start went; that process waits for it and exits
/// 0 once the daemon is ready, 255 (after printing the reason) if it failed.
pub fn daemonize(keep_stdio: bool) -> io::Result<Ready> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptors were just created and are owned here.
    let (reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: called while the process is single-threaded, so fork is sound.
    unsafe {
        match libc::fork() {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            _ => {
                drop(writer);
                libc::_exit(wait_ready(reader));
            }
        }
        drop(reader);
        if libc::setsid() == -1 {
            return Err(io::Error::last_os_error());
        }
        match libc::fork() {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        let _ = libc::chdir(c"/".as_ptr());
        if !keep_stdio {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
                if null > 2 {
                    libc::close(null);
                }
            }
        }
    }
    Ok(Ready(Some(writer)))
}

/// The original process: waits for the daemon's word. A daemon that dies
/// without a word closes the pipe: a failed start.
fn wait_ready(mut reader: File) -> i32 {
    let mut word = Vec::new();
    let _ = reader.read_to_end(&mut word);
    match word.split_first() {
        Some((0, _)) => 0,
        Some((_, reason)) => {
            eprintln!("{}", String::from_utf8_lossy(reason).trim_end());
            255
        }
        None => {
            eprintln!("the server exited during its start");
            255
        }
    }
}

/// The daemon's side of the start report (does nothing in the foreground).
pub struct Ready(Option<File>);

impl Ready {
    /// For a server that stays in the foreground.
    pub fn foreground() -> Ready {
        Ready(None)
    }

    /// The server answers on its socket: the original process may exit 0.
    pub fn ready(&mut self) {
        if let Some(mut w) = self.0.take() {
            let _ = w.write_all(&[0]);
        }
    }

    /// The start failed: the original process prints `reason`, exits 255.
    pub fn failed(&mut self, reason: &str) {
        if let Some(mut w) = self.0.take() {
            let _ = w.write_all(&[1]);
            let _ = w.write_all(reason.as_bytes());
        }
    }
}

fn make_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// The pid file, removed when dropped.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn create(path: &Path) -> io::Result<PidFile> {
        make_parent(path)?;
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Why the control socket could not be opened.
#[derive(Debug)]
pub enum SocketError {
    /// A server answers on it already.
    InUse(PathBuf),
    /// The file exists but nobody answers; `-x` removes it.
    Stale(PathBuf),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::InUse(p) => write!(f, "Server already running (socket {} answers)", p.display()),
            SocketError::Stale(p) => write!(
                f,
                "Fail2ban seems to be in unexpected state (not running but the socket exists): {} (use -x to remove it)",
                p.display()
            ),
            SocketError::Io(p, e) => write!(f, "Could not create the socket {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for SocketError {}

/// The bound control socket; the file is removed when dropped.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` with mode 0600. An existing file is taken over only when
    /// nobody answers on it and `force` (`-x`) is set.
    pub fn bind(path: &Path, force: bool) -> Result<ControlSocket, SocketError> {
        let io_err = |e| SocketError::Io(path.to_path_buf(), e);
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_path_buf()));
            }
            if !force {
                return Err(SocketError::Stale(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        make_parent(path).map_err(io_err)?;
        // Created under a restrictive umask so there is no window in which
        // another user could connect before the chmod.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        unsafe { libc::umask(old) };
        let listener = bound.map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_is_private_and_guarded_against_a_second_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/f2b.sock");
        let sock = ControlSocket::bind(&path, false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(
            ControlSocket::bind(&path, true),
            Err(SocketError::InUse(_))
        ));
        drop(sock);
        assert!(!path.exists());
    }

    #[test]
    fn stale_socket_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.sock");
        // A socket file nobody listens on any more.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let err = ControlSocket::bind(&path, false).err().unwrap();
        assert!(matches!(err, SocketError::Stale(_)));
        assert!(err.to_string().contains("-x"));
        ControlSocket::bind(&path, true).unwrap();
    }

    #[test]
    fn pid_file_holds_our_pid_and_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/f2b.pid");
        let pid = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid);
        assert!(!path.exists());
    }
}
