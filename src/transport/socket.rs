//! The listening socket: bound by the agent itself, or inherited from systemd socket activation.
//!
//! Binding: the parent directory is created (0755) and must be writable by no other user
//! (a root-owned sticky directory such as `/tmp` is accepted), a stale socket file is replaced
//! only when nothing answers on it (a live agent is never displaced), and the socket is created
//! with `ipc.socket_mode` (0666 by default: access is decided by kernel-verified identity, not
//! by file mode) — never changed by path afterwards, which could follow a link swapped in. On exit the agent removes the socket file only if it bound it itself and the
//! path still names that very socket (same device and inode).
//!
//! Activation: `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES` are read and unset by
//! [`take_activated`], which must run before any thread starts (environment access is not
//! thread-safe). Every fd passed must be a listening Unix stream socket; which is the agent's
//! and which the systemd credentials socket is told by their paths and names ([`choose`]) once
//! the configuration is read.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{getsockopt, sockopt};

/// Why no listening socket could be had.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket's directory is one another user could write.
    #[error(transparent)]
    Untrusted(#[from] crate::trust::FileError),
    /// Another agent answers on the path.
    #[error("another agent is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Creating the parent directory, binding or chmod failed.
    #[error("cannot bind {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The activation environment was inconsistent or the fd was not usable.
    #[error("socket activation: {0}")]
    Activation(String),
}

/// Where the listening socket came from, which decides what happens to its file on exit.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Bound by this process: removed on exit if the path still names it.
    Bound {
        /// The socket path.
        path: PathBuf,
        /// Device of the socket file at bind time.
        dev: u64,
        /// Inode of the socket file at bind time.
        ino: u64,
    },
    /// Passed by systemd: never removed (the socket unit owns it).
    Activated {
        /// The path the socket is bound to, when it could be read.
        path: Option<PathBuf>,
    },
}

/// A listening socket and where it came from.
#[derive(Debug)]
pub struct AgentListener {
    /// The listening socket (non-blocking, close-on-exec).
    pub listener: UnixListener,
    /// Bound or inherited.
    pub origin: Origin,
}

impl AgentListener {
    /// The filesystem path of the socket, if known.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::Bound { path, .. } => Some(path),
            Origin::Activated { path } => path.as_deref(),
        }
    }

    /// Removes the socket file if this process bound it and the path still names that socket.
    pub fn cleanup(&self) {
        self.origin.cleanup();
    }
}

impl Origin {
    /// Removes the socket file if this process bound it and the path still names that socket;
    /// never touches an inherited socket.
    pub fn cleanup(&self) {
        if let Origin::Bound { path, dev, ino } = self {
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if meta.dev() == *dev && meta.ino() == *ino {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// Binds `path` with `mode`, replacing a stale socket file only when nothing answers on it.
///
/// The socket's directory must be one that no other user can write (or root's and sticky):
/// [`crate::trust::socket_dir`]. The socket file has `mode` from the moment it exists
/// ([`bind_with_mode`]); nothing changes it by path afterwards.
pub fn bind(path: &Path, mode: u32) -> Result<AgentListener, SocketError> {
    let err = |source: io::Error| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(err)?;
    }
    crate::trust::socket_dir(parent, nix::unistd::geteuid().as_raw())?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(SocketError::AlreadyRunning(path.to_path_buf())),
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused
                    || e.kind() == io::ErrorKind::NotFound =>
            {
                tracing::info!(path = %path.display(), "replacing stale socket file");
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        },
        Ok(_) => return Err(SocketError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = bind_with_mode(path, mode).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    let meta = std::fs::symlink_metadata(path).map_err(err)?;
    Ok(AgentListener {
        listener,
        origin: Origin::Bound {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    })
}

/// A listening Unix socket bound at `path` whose file has exactly `mode` when `bind` creates
/// it: Linux gives the new file the mode of the unbound socket (set with `fchmod`) less the
/// umask, and `bind` runs with umask 0. The umask is changed in a thread of its own that first
/// detaches its umask from the process's (`unshare(CLONE_FS)`), so no other thread ever sees
/// it; only where that is not allowed (a seccomp filter) is the process's umask cleared for
/// the `bind` — the daemon binds before it starts any other thread.
fn bind_with_mode(path: &Path, mode: u32) -> io::Result<UnixListener> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use nix::sys::stat::Mode;
    let bind = || -> io::Result<UnixListener> {
        // SAFETY: unshare(CLONE_FS) gives this thread its own copy of the working directory,
        // root and umask; it touches nothing else.
        let own_umask = unsafe { libc::unshare(libc::CLONE_FS) } == 0;
        if !own_umask {
            tracing::debug!("unshare(CLONE_FS) refused; clearing the process umask to bind");
        }
        let fd = nix::sys::socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode & 0o777))?;
        let addr = UnixAddr::new(path)?;
        let old = nix::sys::stat::umask(Mode::empty());
        let bound = nix::sys::socket::bind(fd.as_raw_fd(), &addr);
        nix::sys::stat::umask(old);
        bound?;
        nix::sys::socket::listen(&fd, Backlog::MAXCONN)?;
        Ok(UnixListener::from(fd))
    };
    std::thread::scope(|scope| {
        scope
            .spawn(bind)
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread binding the socket panicked")))
    })
}

/// The sockets systemd passed, with their names (`LISTEN_FDNAMES`). Which is the agent's and
/// which the credentials socket is decided once the configuration is known ([`Activated::split`]).
#[derive(Debug, Default)]
pub struct Activated {
    sockets: Vec<(String, AgentListener)>,
}

impl Activated {
    /// Whether systemd passed no socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The agent's socket and the credentials socket among those passed ([`choose`]), for an
    /// agent configured with `socket_path` and `credentials_path`; a socket that is neither is
    /// closed, with a warning.
    pub fn split(
        self,
        socket_path: &Path,
        credentials_path: &Path,
    ) -> Result<(Option<AgentListener>, Option<AgentListener>), SocketError> {
        let described: Vec<(&str, Option<&Path>)> = self
            .sockets
            .iter()
            .map(|(name, l)| (name.as_str(), l.path()))
            .collect();
        let (agent, credentials) =
            choose(&described, socket_path, credentials_path).map_err(SocketError::Activation)?;
        let (mut a, mut c) = (None, None);
        for (i, (name, l)) in self.sockets.into_iter().enumerate() {
            if Some(i) == agent {
                a = Some(l);
            } else if Some(i) == credentials {
                c = Some(l);
            } else {
                tracing::warn!(name, path = ?l.path(), "socket activation: closing a socket that is neither the agent's nor the credentials socket");
            }
        }
        Ok((a, c))
    }
}

/// Which of the sockets systemd passed (`(name, path it is bound to)`) is the credentials
/// socket and which the agent's, as indexes `(agent, credentials)`:
///
/// - the credentials socket is the one bound at `credentials_path` (the
///   `credentials.socket_path` key), else the one named `credentials`;
/// - the agent's is, of the others, the one bound at `socket_path`, else the one named `agent`,
///   else the only one.
///
/// Paths come first because `FileDescriptorName=` names every socket of its socket unit: a unit
/// with both `ListenStream=` lines passes two sockets of the same name.
pub fn choose(
    sockets: &[(&str, Option<&Path>)],
    socket_path: &Path,
    credentials_path: &Path,
) -> Result<(Option<usize>, Option<usize>), String> {
    let at = |want: &Path, skip: Option<usize>| {
        let found: Vec<usize> = (0..sockets.len())
            .filter(|i| Some(*i) != skip)
            .filter(|i| !want.as_os_str().is_empty() && sockets[*i].1 == Some(want))
            .collect();
        (found.len() == 1).then(|| found[0])
    };
    let named = |name: &str, skip: Option<usize>| -> Vec<usize> {
        (0..sockets.len())
            .filter(|i| Some(*i) != skip && sockets[*i].0 == name)
            .collect()
    };
    let credentials = match at(credentials_path, None) {
        Some(i) => Some(i),
        None => match named("credentials", None).as_slice() {
            [] => None,
            [i] => Some(*i),
            many => {
                return Err(format!(
                    "{} sockets are named 'credentials' and none is bound at credentials.socket_path ({}); FileDescriptorName= names every socket of its socket unit: give the credentials socket a socket unit of its own, or set credentials.socket_path to its path",
                    many.len(),
                    credentials_path.display()
                ));
            }
        },
    };
    let rest: Vec<usize> = (0..sockets.len())
        .filter(|i| Some(*i) != credentials)
        .collect();
    let agent = match at(socket_path, credentials) {
        Some(i) => Some(i),
        None => match (named("agent", credentials).as_slice(), rest.as_slice()) {
            ([i], _) => Some(*i),
            (_, []) => None,
            (_, [i]) => Some(*i),
            (_, many) => {
                return Err(format!(
                    "{} sockets passed and none is bound at socket_path ({}) or named 'agent' (FileDescriptorName=agent)",
                    many.len(),
                    socket_path.display()
                ));
            }
        },
    };
    Ok((agent, credentials))
}

/// Takes the sockets systemd passed, if any, and unsets the activation variables.
///
/// Call this first thing in `main`, before any thread exists. Returns no sockets when the
/// process was not socket-activated.
pub fn take_activated() -> Result<Activated, SocketError> {
    let fds: Vec<(RawFd, String)> = sd_notify::listen_fds_with_names(true)
        .map_err(|e| SocketError::Activation(e.to_string()))?
        .collect();
    let mut sockets = Vec::with_capacity(fds.len());
    for (fd, name) in fds {
        sockets.push((name, inherit(fd)?));
    }
    Ok(Activated { sockets })
}

/// Takes ownership of an fd systemd passed, which must be a listening Unix stream socket.
fn inherit(fd: RawFd) -> Result<AgentListener, SocketError> {
    // SAFETY: systemd passed this fd to us (LISTEN_PID matched); we take sole ownership of it,
    // and each fd is taken once.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    check_listening_unix_stream(&listener)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| SocketError::Activation(e.to_string()))?;
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    Ok(AgentListener {
        listener,
        origin: Origin::Activated { path },
    })
}

fn check_listening_unix_stream(listener: &UnixListener) -> Result<(), SocketError> {
    let fd = listener.as_fd();
    let bad =
        |what: &str| SocketError::Activation(format!("fd {} is not {what}", listener.as_raw_fd()));
    let ty = getsockopt(&fd, sockopt::SockType).map_err(|_| bad("a socket"))?;
    if ty != nix::sys::socket::SockType::Stream {
        return Err(bad("a stream socket"));
    }
    let listening = getsockopt(&fd, sockopt::AcceptConn).map_err(|_| bad("a socket"))?;
    if !listening {
        return Err(bad("a listening socket"));
    }
    let is_unix = listener.local_addr().is_ok();
    if !is_unix {
        return Err(bad("a Unix socket"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn binds_with_mode_and_creates_parent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent.sock");
        let l = bind(&path, 0o666).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o755);
        l.cleanup();
        assert!(!path.exists());
    }

    #[test]
    fn the_mode_is_exact_whatever_the_umask_and_the_process_umask_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o660, 0o666] {
            let path = dir.path().join(format!("{mode:o}.sock"));
            let l = bind(&path, mode).unwrap();
            let got = std::fs::symlink_metadata(&path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(got, mode, "{mode:o}");
            l.cleanup();
        }
        let umask = || {
            std::fs::read_to_string("/proc/thread-self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_string()))
        };
        let before = umask();
        let path = dir.path().join("again.sock");
        bind(&path, 0o666).unwrap().cleanup();
        assert_eq!(umask(), before, "binding left this thread's umask alone");
    }

    #[test]
    fn a_socket_directory_others_can_write_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = open.join("agent.sock");
        let e = bind(&path, 0o666).unwrap_err();
        assert!(matches!(e, SocketError::Untrusted(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&*open.display().to_string()) && text.contains("chmod go-w"),
            "{text}"
        );
        assert!(!path.exists(), "nothing was bound");
    }

    #[test]
    fn live_socket_is_not_replaced_but_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let live = bind(&path, 0o600).unwrap();
        assert!(matches!(
            bind(&path, 0o600),
            Err(SocketError::AlreadyRunning(_))
        ));
        drop(live); // closes the socket; the file stays behind, stale
        assert!(path.exists());
        let again = bind(&path, 0o600).unwrap();
        again.cleanup();
    }

    #[test]
    fn regular_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        std::fs::write(&path, "precious").unwrap();
        assert!(matches!(
            bind(&path, 0o600),
            Err(SocketError::NotASocket(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn cleanup_leaves_a_socket_that_replaced_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let ours = bind(&path, 0o600).unwrap();
        std::fs::remove_file(&path).unwrap();
        let theirs = bind(&path, 0o600).unwrap();
        ours.cleanup();
        assert!(
            path.exists(),
            "another process's socket must survive our cleanup"
        );
        theirs.cleanup();
    }

    #[test]
    fn activated_sockets_are_told_apart_by_path_then_by_name() {
        let (agent, creds) = (
            Path::new("/run/a/agent.sock"),
            Path::new("/run/a/creds.sock"),
        );
        let none = Path::new("");
        let pick = |s: &[(&str, Option<&Path>)], sp: &Path, cp: &Path| choose(s, sp, cp);
        // Two socket units, each naming its own.
        let two = [("agent", Some(agent)), ("credentials", Some(creds))];
        assert_eq!(pick(&two, Path::new("/x"), none), Ok((Some(0), Some(1))));
        // One unit: FileDescriptorName= named both; the paths tell them apart.
        let same = [("credentials", Some(agent)), ("credentials", Some(creds))];
        assert_eq!(pick(&same, agent, creds), Ok((Some(0), Some(1))));
        let same = [("agent", Some(creds)), ("agent", Some(agent))];
        assert_eq!(pick(&same, agent, creds), Ok((Some(1), Some(0))));
        let e = pick(
            &[("credentials", Some(agent)), ("credentials", Some(creds))],
            agent,
            Path::new("/elsewhere"),
        )
        .unwrap_err();
        assert!(e.contains("socket unit of its own"), "{e}");
        // One socket: the agent's whatever its name, unless it is the credentials socket.
        assert_eq!(
            pick(&[("unknown", None)], agent, creds),
            Ok((Some(0), None))
        );
        assert_eq!(
            pick(&[("credentials", None)], agent, creds),
            Ok((None, Some(0)))
        );
        assert_eq!(
            pick(&[("x", Some(creds))], agent, creds),
            Ok((None, Some(0)))
        );
        assert_eq!(pick(&[], agent, creds), Ok((None, None)));
        let e = pick(&[("x", None), ("y", None)], agent, creds).unwrap_err();
        assert!(e.contains("named 'agent'"), "{e}");
    }

    #[test]
    fn activation_check_refuses_a_non_listening_socket() {
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: the fd is owned by `a`, which we forget so it is not closed twice.
        let l = unsafe { UnixListener::from_raw_fd(a.as_raw_fd()) };
        std::mem::forget(a);
        assert!(check_listening_unix_stream(&l).is_err());
    }
}
