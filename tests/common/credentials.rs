//! Callers of the systemd credentials socket for the tests, as the service manager would be
//! (`CALLER`: binds `\0RANDOM/unit/UNIT/ID`, connects, reads until end of file), and a cgroup
//! named like a unit for one to run in (`UnitCgroup`), so that delivery is tested without
//! systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{stderr, stdout};

/// A caller as systemd's would be: binds `\0NAME` (unless NAME is `-`), joins the cgroup whose
/// `cgroup.procs` is given (unless `-`) first, connects, waits `delay` seconds, reads until end of
/// file and writes what it read to stdout; with `exit_early`, the connecting process exits at
/// once and a child it forked keeps the connection and reads.
pub const CALLER: &str = r#"
import os, socket, sys, time
path, name, procs, delay, exit_early = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "1"
if procs != "-":
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if name != "-":
    s.bind(b"\0" + name.encode())
s.connect(path)
if exit_early:
    if os.fork() != 0:
        os._exit(0)
time.sleep(delay)
out = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
"#;

/// How a test caller runs.
#[derive(Default, Clone, Copy)]
pub struct Ask<'a> {
    /// Its uid (root when `None`).
    pub uid: Option<u32>,
    /// The cgroup it joins first.
    pub cgroup: Option<&'a UnitCgroup>,
    /// Seconds it waits before reading.
    pub delay: f64,
    /// Whether the connecting process exits at once.
    pub exit_early: bool,
}

/// `name` with a leading `x/` made unique, as systemd's random prefix is: abstract names are
/// one namespace for every test running at once.
pub fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match name.strip_prefix("x/") {
        Some(rest) => format!(
            "{:x}{:x}/{rest}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
        None => name.to_string(),
    }
}

/// Runs [`CALLER`] against `socket` bound to `name` (a leading `x/` made [`unique`]); its
/// output (stdout: the bytes read).
pub fn ask_with(socket: &Path, name: &str, how: Ask<'_>) -> Output {
    let mut cmd = match how.uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg("/usr/bin/python3");
            c
        }
        None => Command::new("/usr/bin/python3"),
    };
    let procs = how
        .cgroup
        .map(|c| c.procs().display().to_string())
        .unwrap_or_else(|| "-".into());
    cmd.args(["-c", CALLER])
        .arg(socket)
        .arg(unique(name))
        .arg(procs)
        .arg(how.delay.to_string())
        .arg(if how.exit_early { "1" } else { "0" })
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

/// What a root caller outside any unit's cgroup reads when bound to `name`.
pub fn ask(socket: &Path, name: &str) -> Vec<u8> {
    let out = ask_with(socket, name, Ask::default());
    assert!(out.status.success(), "caller failed: {}", stderr(&out));
    out.stdout
}

/// A cgroup named like a unit, `SLICE/billing.service`, at the root of the cgroup v2
/// hierarchy, where systemd would put the unit's processes; removed when dropped.
pub struct UnitCgroup {
    slice: PathBuf,
    unit: PathBuf,
}

impl UnitCgroup {
    /// Creates it, if this machine lets a root process join it and then reads as in the unit
    /// (`0::/SLICE/billing.service` in /proc/PID/cgroup); `None`, saying why, otherwise.
    pub fn create(tag: &str) -> Option<UnitCgroup> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let Some(mount) = mounts.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            (right.starts_with("cgroup2 ") && fields.get(3) == Some(&"/"))
                .then(|| PathBuf::from(fields[4]))
        }) else {
            eprintln!("SKIPPED: no cgroup v2 hierarchy mounted at its root");
            return None;
        };
        let slice = mount.join(format!("av-test-{}-{tag}.slice", std::process::id()));
        let unit = slice.join("billing.service");
        if let Err(e) = std::fs::create_dir_all(&unit) {
            eprintln!("SKIPPED: cannot create {}: {e}", unit.display());
            return None;
        }
        let cg = UnitCgroup { slice, unit };
        let probe = Command::new("sh")
            .arg("-c")
            .arg("echo $$ > \"$0\" && cat /proc/self/cgroup")
            .arg(cg.procs())
            .output()
            .unwrap();
        let (unit, _) = aether_vault_agent::identity::units_from_cgroup(&stdout(&probe));
        if unit.as_deref() != Some("billing.service") {
            eprintln!(
                "SKIPPED: a process moved into {} reads as unit {unit:?}: {}{}",
                cg.unit.display(),
                stdout(&probe),
                stderr(&probe)
            );
            return None;
        }
        Some(cg)
    }

    pub fn procs(&self) -> PathBuf {
        self.unit.join("cgroup.procs")
    }
}

impl Drop for UnitCgroup {
    fn drop(&mut self) {
        // The last process may take a moment to leave after it was reaped.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.unit).is_ok() || !self.unit.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.slice);
    }
}
