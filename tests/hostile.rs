//! Hostile and broken clients against the real agent: every limit holds, the offender gets an
//! `error_response` with a code (or, if it does not read, is cut off), refusals are audited
//! (beyond a non-administrator's budget, counted into summaries), and every test ends with the
//! agent still answering a normal client.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Agent, RawClient};
use serde_json::{Value, json};

/// The agent's resident memory, KiB.
fn rss_kib(agent: &Agent) -> u64 {
    let pid = agent.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A normal client is still answered.
fn still_serves(agent: &Agent) {
    let r = agent.client().call("ping_request", Value::Null);
    assert_eq!(r["type"], "ping_response", "{r}");
}

fn connection_count(agent: &Agent) -> u64 {
    agent.client().call("status_request", Value::Null)["payload"]["connectionCount"]
        .as_u64()
        .unwrap()
        - 1
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first response line on `s` (with a timeout), or `None` at EOF.
fn first_line(s: &mut UnixStream) -> Option<Value> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) => panic!("read: {e}"),
        }
    }
    serde_json::from_slice(&buf).ok()
}

/// Raises this process's open-file limit (the agent inherits it).
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = n.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

#[test]
fn ten_thousand_connections_at_once_hold_the_caps_and_others_are_served() {
    raise_nofile(25_000);
    let mut agent = Agent::builder()
        .config("ipc:\n  max_connections: 300\n  max_connections_per_uid: 200\n")
        .start();
    let before = rss_kib(&agent);
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        conns.push(UnixStream::connect(&agent.socket).expect("connect"));
    }
    let opened = t0.elapsed();
    // Let the agent answer every refused one, then see who got what. The refusals are polled
    // for (up to 30 s), not waited for with a fixed sleep: a busy machine can take longer than
    // a second to write 9,800 answers. A served connection never gets a byte.
    let mut answered = vec![false; conns.len()];
    let mut refused = 0;
    for c in &conns {
        c.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (c, done) in conns.iter_mut().zip(answered.iter_mut()) {
            if *done {
                continue;
            }
            let mut buf = [0u8; 512];
            match c.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Ok(n) if n > 0 => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    assert!(text.contains("TOO_MANY_CONNECTIONS"), "{text}");
                    *done = true;
                    refused += 1;
                }
                other => panic!("neither served nor refused with a code: {other:?}"),
            }
        }
        if refused >= 9_800 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Past the count, give a wrongly refused extra one a moment to show up.
    std::thread::sleep(Duration::from_millis(200));
    for (c, done) in conns.iter_mut().zip(answered.iter_mut()) {
        let mut buf = [0u8; 512];
        if !*done && matches!(c.read(&mut buf), Ok(n) if n > 0) {
            refused += 1;
        }
    }
    let served = conns.len() - refused;
    assert_eq!(served, 200, "the per-uid cap holds");
    assert_eq!(refused, 9_800, "every other connection was told why");
    let peak = rss_kib(&agent);

    // Another uid is still served while this one is at its cap; this one is refused.
    if common::is_root() {
        let out = agent.cli_as(65534, &["agent", "status", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    }
    let mut extra = UnixStream::connect(&agent.socket).unwrap();
    let r = first_line(&mut extra).expect("an error response");
    assert_eq!(r["payload"]["code"], "TOO_MANY_CONNECTIONS", "{r}");
    assert!(
        r["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("already has 200 connections"),
        "{r}"
    );
    // A burst more, and then no refusal until the agent stops.
    for _ in 0..100 {
        let mut c = UnixStream::connect(&agent.socket).unwrap();
        let r = first_line(&mut c).expect("an error response");
        assert_eq!(r["payload"]["code"], "TOO_MANY_CONNECTIONS", "{r}");
    }

    drop(conns);
    wait_until(
        "the connections are closed",
        Duration::from_secs(10),
        || connection_count(&agent) == 0,
    );
    let after = rss_kib(&agent);
    eprintln!(
        "10,000 connections opened in {opened:?}; RSS {before} KiB before, {peak} KiB at the peak, {after} KiB after"
    );
    assert!(
        after < before + 16 * 1024,
        "memory did not come back: {before} KiB before, {after} KiB after"
    );
    still_serves(&agent);
    // Nothing is lost from the count. This client is an administrator (root, or the agent's own
    // user), whose refusals are each recorded; a non-administrator's beyond its budget would be
    // counted into refusal_summary records (tests/audit_limits.rs), added up here too.
    assert!(agent.stop().success());
    let mut counted = 0;
    for r in agent.audit() {
        if r["type"] == "connection_rejected" {
            counted += 1;
        } else if r["type"] == "refusal_summary" {
            counted += r["summary"]["total"].as_u64().unwrap();
        }
    }
    assert_eq!(
        counted, 9_901,
        "the 9,800 refused at once, the extra one and the burst of 100"
    );
}

#[test]
fn a_slow_drip_request_is_cut_at_the_deadline() {
    let agent = Agent::builder()
        .config("ipc:\n  request_deadline: 1\n")
        .start();
    let mut c = agent.client();
    let t0 = Instant::now();
    let request = br#"{"version":"1.0","type":"ping_request","id":"drip","payload":null}"#;
    // One byte every 100 ms: the whole request would take 7 s; the deadline is 1 s.
    for b in request.iter().take(request.len() - 1) {
        if c.stream.write_all(&[*b]).is_err() || t0.elapsed() > Duration::from_millis(1500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = c
        .read_quietly()
        .expect("an error response before the close");
    assert_eq!(r["payload"]["code"], "REQUEST_TIMEOUT", "{r}");
    assert!(c.closed(), "closed after the error");
    still_serves(&agent);
    // A request sent at once on a connection that was idle for longer is fine.
    let mut c = agent.client();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
}

#[test]
fn a_hundred_megabyte_request_is_refused_early_and_memory_stays_flat() {
    let agent = Agent::dev();
    let before = rss_kib(&agent);
    let mut c = agent.client();
    let mut sent = 0usize;
    c.send(b"{\"type\":\"ping_request\",\"pad\":\"");
    let pad = vec![b'a'; 1 << 20];
    for _ in 0..100 {
        if c.stream.write_all(&pad).is_err() {
            break;
        }
        sent += pad.len();
    }
    let r = c.read_quietly().expect("an error response");
    assert_eq!(r["payload"]["code"], "REQUEST_TOO_LARGE", "{r}");
    assert!(
        sent < 100 << 20,
        "the agent stopped reading long before 100 MB ({sent} bytes sent)"
    );
    let after = rss_kib(&agent);
    assert!(after < before + 8 * 1024, "RSS {before} -> {after} KiB");
    still_serves(&agent);
}

#[test]
fn deep_nesting_invalid_utf8_and_garbage_get_codes_and_the_agent_serves_on() {
    let agent = Agent::dev();
    // Nesting beyond 64 inside a small request.
    let mut c = agent.client();
    let deep = format!(
        "{{\"type\":\"ping_request\",\"payload\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    c.send(deep.as_bytes());
    let r = c.read_quietly().expect("an error response");
    assert_eq!(r["payload"]["code"], "MALFORMED_REQUEST", "{r}");
    assert!(
        r["payload"]["error"].as_str().unwrap().contains("nest"),
        "{r}"
    );
    assert!(c.closed());
    // Invalid UTF-8 inside a string of an otherwise well-formed request.
    let mut c = agent.client();
    c.send(
        b"{\"version\":\"1.0\",\"type\":\"ping_request\",\"id\":\"\xff\xfe\",\"payload\":null}\n",
    );
    let r = c.read_quietly().expect("an error response");
    assert_eq!(r["type"], "error_response", "{r}");
    assert!(r["payload"]["code"].is_string(), "{r}");
    // Not JSON at all.
    let mut c = agent.client();
    c.send(b"\x00\x01GET / HTTP/1.1\r\n\r\n");
    let r = c.read_quietly().expect("an error response");
    assert_eq!(r["payload"]["code"], "MALFORMED_REQUEST", "{r}");
    assert!(c.closed());
    still_serves(&agent);
}

#[test]
fn rapid_connect_and_close_leaves_nothing_behind() {
    let agent = Agent::dev();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = agent.socket.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let mut s = UnixStream::connect(&path).expect("connect");
                    if i % 2 == 0 {
                        let _ = s.write_all(b"{\"type\":\"ping_req");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_until("every connection is gone", Duration::from_secs(10), || {
        connection_count(&agent) == 0
    });
    still_serves(&agent);
}

#[test]
fn a_client_that_never_reads_is_cut_off_and_memory_stays_flat() {
    let agent = Agent::builder()
        .config("ipc:\n  write_timeout: 1\n  max_queued_bytes: 16384\n  rate_limit_per_uid: 0\n")
        .start();
    let before = rss_kib(&agent);
    let mut s = UnixStream::connect(&agent.socket).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let ping = br#"{"version":"1.0","type":"ping_request","id":"p","payload":null}"#;
    let t0 = Instant::now();
    let mut written = 0usize;
    // Write requests and never read: the agent's answers fill the socket, then it gives up.
    let cut = loop {
        match s.write_all(ping) {
            Ok(()) => written += ping.len(),
            Err(e) => break e,
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "still connected after {written} bytes"
        );
    };
    assert!(
        matches!(
            cut.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{cut}"
    );
    let after = rss_kib(&agent);
    assert!(after < before + 8 * 1024, "RSS {before} -> {after} KiB");
    wait_until("the refusal is audited", Duration::from_secs(5), || {
        agent.audit().iter().any(|r| {
            r["type"] == "connection_rejected"
                && r["reason"]
                    .as_str()
                    .is_some_and(|m| m.contains("NOT_READING"))
        })
    });
    still_serves(&agent);
}

#[test]
fn the_request_rate_per_uid_is_limited_with_a_code_and_the_connection_stays() {
    let agent = Agent::builder()
        .config("ipc:\n  rate_limit_per_uid: 5\n  rate_burst_per_uid: 5\n")
        .start();
    let mut c = agent.client();
    let codes: Vec<Value> = (0..10)
        .map(|_| {
            let r = c.call("ping_request", Value::Null);
            r["payload"]["code"].clone()
        })
        .collect();
    // The burst is 5 (the harness's readiness ping took one): served, then limited.
    let served = codes.iter().take_while(|c| c.is_null()).count();
    assert!((4..=5).contains(&served), "{codes:?}");
    assert!(
        codes[served..].iter().all(|c| *c == "RATE_LIMITED"),
        "{codes:?}"
    );
    // The same connection works again once tokens come back.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
    // Another uid has its own bucket.
    if common::is_root() {
        for _ in 0..3 {
            let out = agent.cli_as(65534, &["agent", "status"]);
            assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
        }
    }
}

#[test]
fn active_capabilities_per_uid_are_capped_with_a_message_that_says_so() {
    let agent = Agent::builder()
        .config("capability_engine:\n  max_active_per_uid: 3\n")
        .start();
    let ids: Vec<String> = (0..3)
        .map(|i| agent.grant(&format!("secret:/q{i}"), &["read"]))
        .collect();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/q9","actions":["read"]}),
    );
    assert_eq!(r["payload"]["status"], "denied", "{r}");
    let msg = r["payload"]["message"].as_str().unwrap();
    assert!(
        msg.contains("3 active capabilities") && msg.contains("max_active_per_uid"),
        "{msg}"
    );
    let r = c.call(
        "capability_revoke",
        json!({"capability_id": ids[0], "reason": "make room"}),
    );
    assert_ne!(r["type"], "error_response", "{r}");
    agent.grant("secret:/q9", &["read"]);
}

#[test]
fn concurrent_grants_never_overshoot_the_per_uid_active_cap() {
    // Grants are signed off the event loop: one admitted and still being signed must count,
    // or grants racing on many connections would all be admitted.
    let agent = Agent::builder()
        .config("capability_engine:\n  max_active_per_uid: 5\n  grant_rate_per_uid: 0\n")
        .start();
    let mut clients: Vec<_> = (0..24).map(|_| agent.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let env = json!({"version":"1.0","type":"capability_request","id":format!("g{i}"),
                         "timestamp":"2026-01-01T00:00:00Z",
                         "payload":{"resource":format!("secret:/race{i}"),"actions":["read"]}});
        c.send(format!("{env}\n").as_bytes());
    }
    let statuses: Vec<String> = clients
        .iter_mut()
        .map(|c| c.read().expect("an answer")["payload"]["status"].to_string())
        .collect();
    let granted = statuses.iter().filter(|s| *s == "\"granted\"").count();
    assert_eq!(granted, 5, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| *s == "\"denied\"").count(),
        19,
        "{statuses:?}"
    );
}

#[test]
fn a_dead_peer_whose_pid_is_reused_lends_nothing_but_uid_and_gid() {
    require_root!();
    // A policy that grants only to the binary that will take over the pid.
    let sleep = std::fs::canonicalize("/usr/bin/sleep").unwrap();
    let policy = json!({"id":"p","rules":[
        {"id":"by-exe","effect":"allow","resources":["secret:/exe"],"actions":["read"],
         "identities":[format!("uid:0+exe:{}", sleep.display())]},
        {"id":"by-uid","effect":"allow","resources":["secret:/uid"],"actions":["read"],
         "identities":["uid:0"]}]});
    let agent = Agent::builder()
        .mode("standard")
        .policy("p.json", &policy.to_string())
        .start();
    for attempt in 0..5 {
        // Hold the agent still so it accepts only after the connecting process is gone.
        agent.signal(nix::sys::signal::Signal::SIGSTOP);
        let (parent, child) = UnixStream::pair().unwrap();
        let script = format!(
            "import socket,os\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\nc=socket.socket(fileno=3)\nsocket.send_fds(c,[b'x'],[s.fileno()])\n",
            agent.socket.display().to_string()
        );
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c").arg(&script);
        common::pass_as_fd3(&mut cmd, std::os::fd::AsRawFd::as_raw_fd(&child));
        let mut py = cmd.spawn().unwrap();
        let old_pid = py.id();
        let mut buf = [0u8; 1];
        let mut fds = [0i32; 1];
        let conn = recv_fd(&parent, &mut buf, &mut fds);
        assert!(py.wait().unwrap().success());
        drop(child);
        // Make the next process take the dead peer's pid.
        std::fs::write("/proc/sys/kernel/ns_last_pid", (old_pid - 1).to_string()).unwrap();
        let mut taker = std::process::Command::new(&sleep)
            .arg("30")
            .spawn()
            .unwrap();
        let reused = taker.id() == old_pid;
        agent.signal(nix::sys::signal::Signal::SIGCONT);
        if !reused {
            let _ = taker.kill();
            let _ = taker.wait();
            eprintln!(
                "attempt {attempt}: pid {old_pid} not reused (got {}); again",
                taker.id()
            );
            continue;
        }
        let mut c = RawClient::from_stream(conn);
        let ask = |c: &mut RawClient, res: &str| {
            c.call(
                "capability_request",
                json!({"resource":res,"actions":["read"]}),
            )["payload"]["status"]
                .clone()
        };
        assert_eq!(
            ask(&mut c, "secret:/exe"),
            "denied",
            "the pid's new owner ({}) lent its exe to the old connection",
            sleep.display()
        );
        assert_eq!(ask(&mut c, "secret:/uid"), "granted", "uid and gid stay");
        let _ = taker.kill();
        let _ = taker.wait();
        still_serves(&agent);
        return;
    }
    panic!("could not make a pid be reused in 5 attempts");
}

/// Receives one fd over a Unix socket (SCM_RIGHTS).
fn recv_fd(sock: &UnixStream, buf: &mut [u8], _fds: &mut [i32]) -> UnixStream {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just gave us this descriptor; we own it from here.
            return unsafe { UnixStream::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}
