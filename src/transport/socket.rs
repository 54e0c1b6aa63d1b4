//! The listening socket: bound by the agent itself, or inherited from systemd socket activation.
//!
//! Binding: the parent directory is created (0755), a stale socket file is replaced only when
//! nothing answers on it (a live agent is never displaced), and the socket gets
//! `ipc.socket_mode` (0666 by default: access is decided by kernel-verified identity, not by
//! file mode). On exit the agent removes the socket file only if it bound it itself and the
//! path still names that very socket (same device and inode).
//!
//! Activation: `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES` are read and unset by
//! [`take_activated`], which must run before any thread starts (environment access is not
//! thread-safe). The fd named `agent`, or the single fd passed, must be a listening Unix stream
//! socket.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{getsockopt, sockopt};

/// Why no listening socket could be had.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
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
pub fn bind(path: &Path, mode: u32) -> Result<AgentListener, SocketError> {
    let err = |source: io::Error| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(err)?;
        }
    }
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
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
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

/// Takes the socket systemd passed, if any, and unsets the activation variables.
///
/// Call this first thing in `main`, before any thread exists. Returns `Ok(None)` when the
/// process was not socket-activated.
pub fn take_activated() -> Result<Option<AgentListener>, SocketError> {
    let fds: Vec<(RawFd, String)> = sd_notify::listen_fds_with_names(true)
        .map_err(|e| SocketError::Activation(e.to_string()))?
        .collect();
    let chosen = match fds.as_slice() {
        [] => return Ok(None),
        [(fd, _)] => *fd,
        many => many
            .iter()
            .find(|(_, name)| name == "agent")
            .map(|(fd, _)| *fd)
            .ok_or_else(|| {
                SocketError::Activation(format!(
                    "{} sockets passed and none is named 'agent' (FileDescriptorName=agent)",
                    many.len()
                ))
            })?,
    };
    // SAFETY: systemd passed this fd to us (LISTEN_PID matched); we take sole ownership of it.
    let listener = unsafe { UnixListener::from_raw_fd(chosen) };
    check_listening_unix_stream(&listener)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| SocketError::Activation(e.to_string()))?;
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    Ok(Some(AgentListener {
        listener,
        origin: Origin::Activated { path },
    }))
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
    fn activation_check_refuses_a_non_listening_socket() {
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: the fd is owned by `a`, which we forget so it is not closed twice.
        let l = unsafe { UnixListener::from_raw_fd(a.as_raw_fd()) };
        std::mem::forget(a);
        assert!(check_listening_unix_stream(&l).is_err());
    }
}
