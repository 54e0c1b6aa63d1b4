//! Who is on the other end of a connection, in the kernel's words only.
//!
//! At accept the agent reads `SO_PEERCRED` (pid, uid, gid as of `connect()`) and
//! `SO_PEERGROUPS` (the supplementary groups, also as of `connect()`), and pins the peer process
//! with `SO_PEERPIDFD` (falling back to `pidfd_open` plus an owner check on older kernels). It
//! then reads `/proc/PID` once — the executable and the systemd unit — and afterwards checks
//! through the pidfd that the process still exists. If it does, the pid cannot have been reused
//! while we read, so what we read belongs to the peer; if it does not, or anything cannot be
//! verified, those attributes are absent, never guessed, and listed in
//! [`PeerIdentity::unverified`]: a deny rule that needs one of them then applies to the caller
//! (see [`crate::policy::selector`]). Names (user, groups) come from NSS.
//!
//! The executable is kept only when it says what it seems to: the peer is in the agent's user
//! namespace (a mount namespace made by an unprivileged user, as `unshare -Urm` or a rootless
//! container does, lets its maker put any file behind any path) and the file at that path, as
//! the agent sees it, is the very file (device and inode) the process runs. It still does not
//! prove what code runs: a process of the same uid can inject into another (`LD_PRELOAD`,
//! ptrace), which is why policy never allows on `exe:` alone.
//!
//! Nothing a client says about itself ever enters a [`PeerIdentity`].

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Group, Uid, User};
use serde::Serialize;

/// `SO_PEERGROUPS` from `<asm-generic/socket.h>` (same value on every Linux architecture we
/// build for; not exported by the libc crate).
const SO_PEERGROUPS: libc::c_int = 59;
/// `SO_PEERPIDFD` (Linux 6.5+), from `<asm-generic/socket.h>`.
const SO_PEERPIDFD: libc::c_int = 77;

/// An attribute of a peer beyond its uid and gid, which the agent may fail to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribute {
    /// The user name of the uid (NSS).
    User,
    /// The supplementary groups and the names of all groups.
    Groups,
    /// The systemd unit (and user unit).
    Unit,
    /// The executable.
    Exe,
}

impl Attribute {
    /// The selector kind that tests it (`user`, `group`, `unit`, `exe`).
    pub fn selector_kind(self) -> &'static str {
        match self {
            Attribute::User => "user",
            Attribute::Groups => "group",
            Attribute::Unit => "unit",
            Attribute::Exe => "exe",
        }
    }
}

/// The verified identity of a connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerIdentity {
    /// Effective uid at `connect()`.
    pub uid: u32,
    /// Effective gid at `connect()`.
    pub gid: u32,
    /// Pid at `connect()`; absent when the peer is in another pid namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Supplementary groups at `connect()` (`SO_PEERGROUPS`).
    pub groups: Vec<u32>,
    /// User name of `uid`, when it resolves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Names of `gid` and `groups` that resolve.
    pub group_names: Vec<String>,
    /// Executable path, when readable and verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The systemd unit (as `sd_pid_get_unit`: the system unit, e.g. `nginx.service` or
    /// `user@1000.service`), when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For processes of a user manager: the user unit (`sd_pid_get_user_unit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_unit: Option<String>,
    /// Whether the /proc-derived attributes were verified through a pidfd.
    pub pinned: bool,
    /// Attributes that could not be verified (absent above, but not known to be absent): a
    /// deny rule that tests one applies, an allow rule that needs one does not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<Attribute>,
}

/// Why a connection's identity could not be read at all (the connection is then refused).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// `SO_PEERCRED` failed.
    #[error("cannot read peer credentials: {0}")]
    PeerCred(nix::Error),
}

impl PeerIdentity {
    /// An identity with only uid and gid, and nothing else to know (no name, groups, unit or
    /// executable): for tests and for `policy test`. A peer whose attributes could not be read
    /// lists them in [`PeerIdentity::unverified`] instead.
    pub fn bare(uid: u32, gid: u32) -> PeerIdentity {
        PeerIdentity {
            uid,
            gid,
            pid: None,
            groups: Vec::new(),
            user: None,
            group_names: Vec::new(),
            exe: None,
            unit: None,
            user_unit: None,
            pinned: false,
            unverified: Vec::new(),
        }
    }

    /// Whether `attr` could not be verified.
    pub fn is_unverified(&self, attr: Attribute) -> bool {
        self.unverified.contains(&attr)
    }

    fn unverify(&mut self, attr: Attribute) {
        if !self.unverified.contains(&attr) {
            self.unverified.push(attr);
            self.unverified.sort();
        }
    }

    /// Whether `gid` is the primary or a supplementary group.
    pub fn has_gid(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// Whether a group called `name` is the primary or a supplementary group.
    pub fn has_group_name(&self, name: &str) -> bool {
        self.group_names.iter().any(|g| g == name)
    }

    /// A short description for logs: `uid=1000(alice) pid=42 unit=foo.service`.
    pub fn describe(&self) -> String {
        let mut s = format!("uid={}", self.uid);
        if let Some(u) = &self.user {
            s.push_str(&format!("({u})"));
        }
        if let Some(p) = self.pid {
            s.push_str(&format!(" pid={p}"));
        }
        if let Some(u) = &self.unit {
            s.push_str(&format!(" unit={u}"));
        }
        s
    }
}

/// Reads the peer identity of a connected Unix stream socket: [`peer_credentials`], then
/// [`complete`].
pub fn from_socket(fd: BorrowedFd<'_>) -> Result<PeerIdentity, IdentityError> {
    let mut id = peer_credentials(fd)?;
    complete(&mut id, fd);
    Ok(id)
}

/// What the kernel recorded at `connect()` (SO_PEERCRED): uid, gid and pid, one `getsockopt`.
/// Enough for the connection limits; [`complete`] adds the rest for a connection that is served.
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Result<PeerIdentity, IdentityError> {
    let cred = getsockopt(&fd, sockopt::PeerCredentials).map_err(IdentityError::PeerCred)?;
    let mut id = PeerIdentity::bare(cred.uid(), cred.gid());
    id.pid = u32::try_from(cred.pid()).ok().filter(|p| *p > 0);
    Ok(id)
}

/// Adds to the kernel's credentials of `fd`'s peer (from [`peer_credentials`] of the same
/// socket) its supplementary groups, user and group names (NSS), and, pinned by a pidfd, its
/// executable and systemd units (/proc).
pub fn complete(id: &mut PeerIdentity, fd: BorrowedFd<'_>) {
    let (uid, gid, pid) = (id.uid, id.gid, id.pid);
    match peer_groups(fd.as_raw_fd()) {
        Some(groups) => id.groups = groups,
        None => id.unverify(Attribute::Groups),
    }
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(user) => id.user = user.map(|u| u.name),
        Err(_) => id.unverify(Attribute::User),
    }
    let mut names = Vec::new();
    let mut lookups_failed = false;
    for g in std::iter::once(gid).chain(id.groups.iter().copied()) {
        match Group::from_gid(Gid::from_raw(g)) {
            Ok(Some(grp)) if !names.contains(&grp.name) => names.push(grp.name),
            Ok(_) => {}
            Err(_) => lookups_failed = true,
        }
    }
    id.group_names = names;
    if lookups_failed {
        id.unverify(Attribute::Groups);
    }
    match pid {
        Some(pid) => read_pinned(id, fd.as_raw_fd(), pid),
        None => {
            id.unverify(Attribute::Unit);
            id.unverify(Attribute::Exe);
        }
    }
}

/// Reads the /proc attributes and keeps them only if the pidfd shows the process still exists;
/// what cannot be read or verified is marked unverified.
fn read_pinned(id: &mut PeerIdentity, sock: RawFd, pid: u32) {
    let Some(pidfd) = peer_pidfd(sock, pid, id.uid) else {
        id.unverify(Attribute::Unit);
        id.unverify(Attribute::Exe);
        return;
    };
    let exe = verified_exe(pid);
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
    // A process that has exited but not been reaped still answers the pidfd; its /proc entry
    // no longer says where it ran (on cgroup-v1-only hosts it shows the root group).
    let exited = has_exited(pid);
    if exited || !process_alive(&pidfd) {
        tracing::debug!(
            pid,
            "peer exited before its attributes were verified; its unit and executable are unverified"
        );
        id.unverify(Attribute::Unit);
        id.unverify(Attribute::Exe);
        return;
    }
    match exe {
        Ok(path) => id.exe = Some(path),
        Err(why) => {
            tracing::debug!(pid, why, "peer executable not verified");
            id.unverify(Attribute::Exe);
        }
    }
    match cgroup {
        Some(text) => {
            let (unit, user_unit) = units_from_cgroup(&text);
            id.unit = unit;
            id.user_unit = user_unit;
        }
        None => id.unverify(Attribute::Unit),
    }
    id.pinned = true;
}

/// Whether `pid` has exited (a zombie, or dead), by the state in `/proc/PID/stat`, read after
/// the last `)` since the command name before it is the process's to choose. Unknown counts as
/// exited.
fn has_exited(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, Some(c) if c != 'Z' && c != 'X' && c != 'x')
}

/// The executable of `pid`, if it says what it seems to: the process is in the agent's user
/// namespace, and the file at its path, as the agent sees it, is the file the process runs.
fn verified_exe(pid: u32) -> Result<String, &'static str> {
    use std::os::unix::fs::MetadataExt;
    let same =
        |a: &std::fs::Metadata, b: &std::fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/user"))
        .map_err(|_| "its user namespace cannot be read")?;
    let ours = std::fs::metadata("/proc/self/ns/user")
        .map_err(|_| "the agent's user namespace cannot be read")?;
    if !same(&theirs, &ours) {
        return Err("it runs in another user namespace, whose maker controls its mounts");
    }
    let link = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|_| "its executable link cannot be read")?;
    let running = std::fs::metadata(format!("/proc/{pid}/exe"))
        .map_err(|_| "its executable cannot be examined")?;
    let at_path = std::fs::metadata(&link)
        .map_err(|_| "its executable's path names no file the agent can see")?;
    if !same(&running, &at_path) {
        return Err("the file at its executable's path is not the file it runs");
    }
    link.into_os_string()
        .into_string()
        .map_err(|_| "its executable's path is not UTF-8")
}

/// The supplementary groups `fd`'s peer had at `connect()` (`SO_PEERGROUPS`, one
/// `getsockopt`); empty if they cannot be read.
pub fn supplementary_groups(fd: BorrowedFd<'_>) -> Vec<u32> {
    peer_groups(fd.as_raw_fd()).unwrap_or_default()
}

/// The supplementary groups the peer had at `connect()`.
fn peer_groups(sock: RawFd) -> Option<Vec<u32>> {
    let mut buf: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..2 {
        let mut len = (buf.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: buf has room for `len` bytes; the kernel writes at most that and updates len.
        let rc = unsafe {
            libc::getsockopt(
                sock,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            buf.truncate(n);
            return Some(buf);
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) && n > buf.len() {
            buf.resize(n, 0);
            continue;
        }
        return None;
    }
    None
}

/// A pidfd for the peer: `SO_PEERPIDFD` (the kernel's own pin on the connecting process), else
/// `pidfd_open(pid)` accepted only if that process's effective uid is the peer's.
fn peer_pidfd(sock: RawFd, pid: u32, uid: u32) -> Option<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a c_int-sized out buffer and `len` says so.
    let rc = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 && fd >= 0 {
        // SAFETY: the kernel just gave us this new fd.
        return Some(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    // Fallback for kernels before 6.5: the pid may already name another process, so only accept
    // it if that process belongs to the same uid (as SPIRE does).
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: pidfd_open returned a new fd we now own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok())?;
    (euid == uid).then_some(pidfd)
}

/// Whether the pinned process still exists (has not been reaped, so its pid is not reused).
fn process_alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: signal 0 only checks existence and permission; no signal is sent.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    // EPERM still proves the process exists (we may not signal other users' processes).
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The system unit and user unit of a process from its `/proc/PID/cgroup`, as systemd's
/// `sd_pid_get_unit` / `sd_pid_get_user_unit` do: slices are skipped, the first other component
/// is the unit. Below a `user@UID.service`, the user manager's unit follows the same rule. Deeper
/// components are left alone: a delegated subtree is under its owner's control.
pub fn units_from_cgroup(text: &str) -> (Option<String>, Option<String>) {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| {
            text.lines()
                .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
        });
    let Some(path) = path else {
        return (None, None);
    };
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let unit = parts
        .by_ref()
        .find(|p| !p.ends_with(".slice"))
        .map(str::to_string);
    let Some(unit) = unit.filter(|u| u.contains('.')) else {
        return (None, None);
    };
    let user_unit = if unit.starts_with("user@") && unit.ends_with(".service") {
        parts
            .find(|p| !p.ends_with(".slice"))
            .filter(|u| u.contains('.'))
            .map(str::to_string)
    } else {
        None
    };
    (Some(unit), user_unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn units_follow_systemd_rules() {
        let cases = [
            (
                "0::/system.slice/nginx.service\n",
                Some("nginx.service"),
                None,
            ),
            (
                "0::/system.slice/system-getty.slice/getty@tty1.service\n",
                Some("getty@tty1.service"),
                None,
            ),
            (
                "0::/user.slice/user-1000.slice/session-3.scope\n",
                Some("session-3.scope"),
                None,
            ),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n",
                Some("user@1000.service"),
                Some("foo.service"),
            ),
            // A service with Delegate=yes controls what lies below it: never trusted.
            (
                "0::/system.slice/docker.service/fake/postgres.service\n",
                Some("docker.service"),
                None,
            ),
            ("0::/\n", None, None),
            (
                "12:name=systemd:/system.slice/cron.service\n",
                Some("cron.service"),
                None,
            ),
            ("", None, None),
        ];
        for (text, unit, user_unit) in cases {
            let (u, uu) = units_from_cgroup(text);
            assert_eq!(u.as_deref(), unit, "{text}");
            assert_eq!(uu.as_deref(), user_unit, "{text}");
        }
    }

    #[test]
    fn reads_our_own_identity_from_a_socketpair() {
        let (a, _b) = UnixStream::pair().unwrap();
        let id = from_socket(a.as_fd()).unwrap();
        assert_eq!(id.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(id.gid, nix::unistd::getegid().as_raw());
        assert_eq!(id.pid, Some(std::process::id()));
        assert!(id.pinned, "our own process is alive, so /proc reads verify");
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(id.exe.as_deref(), Some(exe.to_string_lossy().as_ref()));
    }

    #[test]
    fn group_membership_checks_primary_and_supplementary() {
        let mut id = PeerIdentity::bare(1000, 1000);
        id.groups = vec![27, 100];
        id.group_names = vec!["alice".into(), "sudo".into()];
        assert!(id.has_gid(1000) && id.has_gid(27) && !id.has_gid(0));
        assert!(id.has_group_name("sudo") && !id.has_group_name("root"));
    }
}
