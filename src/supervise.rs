//! The supervisor: a ticker that pings every long-lived actor ([`crate::actors::health::Ping`])
//! and tells systemd what it found.
//!
//! A round of pings runs every [`tick_period`] (every [`STATUS_EVERY`], or every half watchdog
//! timeout if that is shorter) and at once when poked (after a reload). After each round:
//!
//! - `WATCHDOG=1`, when systemd asked for a watchdog (`WATCHDOG_USEC`, see
//!   [`crate::notify::watchdog_timeout`]), only if the Listener, the CapabilityRegistry, the
//!   PolicyWatcher, the AuditWriter and, when the agent serves systemd credentials, the
//!   CredentialListener all answered within [`ping_timeout`] without a fault, and
//!   at most about every half watchdog timeout ([`watchdog_due`]). A wedged actor (or a dead
//!   writer thread) therefore means no keep-alive, and systemd restarts the agent; one slow
//!   round only delays the keep-alive by a tick.
//! - `STATUS=`: one line (socket, connections, active capabilities, policy generation, last
//!   error), sent when it differs from the last one sent.
//!
//! An actor that has stopped (its mailbox closed) stops the agent, non-zero, so that systemd
//! restarts it whole instead of leaving it half-alive ([`stopped`]).
//!
//! Which answers feed the watchdog, what the status says and what to log are decided by plain
//! functions ([`assess`], [`status_line`], [`changes`], [`stopped`]); the loop only wires them to
//! the actors.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, MailboxError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::actors::SharedRef;
use crate::actors::audit_writer::AuditWriter;
use crate::actors::credentials::CredentialListener;
use crate::actors::health::{Health, Ping};
use crate::actors::listener::Listener;
use crate::actors::policy_watcher::PolicyWatcher;
use crate::actors::registry::CapabilityRegistry;

/// How often the status is refreshed when there is no watchdog.
pub const STATUS_EVERY: Duration = Duration::from_secs(2);
/// The shortest tick, whatever `WATCHDOG_USEC` says.
const MIN_TICK: Duration = Duration::from_millis(10);
/// The longest piece of one error shown in the status line, in characters.
const ERROR_CHARS: usize = 160;

/// The actors that must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// Accepts connections.
    Listener,
    /// Owns the capabilities and their store's writer thread.
    CapabilityRegistry,
    /// Loads policies.
    PolicyWatcher,
    /// Owns the audit log's writer thread.
    AuditWriter,
    /// Serves the systemd credentials socket; pinged only when the agent serves one.
    CredentialListener,
}

impl Component {
    /// The components every agent has, in the order they are reported (the
    /// CredentialListener, when there is one, after them).
    pub const ALL: [Component; 4] = [
        Component::Listener,
        Component::CapabilityRegistry,
        Component::PolicyWatcher,
        Component::AuditWriter,
    ];

    /// The actor's name, as logs and the status line show it.
    pub fn name(self) -> &'static str {
        match self {
            Component::Listener => "Listener",
            Component::CapabilityRegistry => "CapabilityRegistry",
            Component::PolicyWatcher => "PolicyWatcher",
            Component::AuditWriter => "AuditWriter",
            Component::CredentialListener => "CredentialListener",
        }
    }
}

/// What came of one ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The actor answered in time.
    Answered(Health),
    /// No answer within the timeout.
    TimedOut(Duration),
    /// The actor has stopped (its mailbox is closed).
    Gone,
}

/// What one round of pings means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// The components that did not, and why (`no answer within 75 ms`).
    pub problems: BTreeMap<Component, String>,
    /// Active capabilities, if the registry answered.
    pub active_capabilities: Option<usize>,
    /// The policy generation, if the watcher answered.
    pub policy_generation: Option<u64>,
    /// The errors the actors reported (`audit log: …`, `policy: …`), in component order.
    pub errors: Vec<String>,
}

impl Assessment {
    /// What is wedged, in one line (`AuditWriter: no answer within 75 ms`), if anything.
    pub fn wedged(&self) -> Option<String> {
        if self.problems.is_empty() {
            return None;
        }
        Some(
            self.problems
                .iter()
                .map(|(c, why)| format!("{}: {why}", c.name()))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The components whose actor has stopped (its mailbox is closed): the agent cannot serve
/// without them.
pub fn stopped(probes: &[(Component, Probe)]) -> Vec<Component> {
    probes
        .iter()
        .filter(|(_, p)| *p == Probe::Gone)
        .map(|(c, _)| *c)
        .collect()
}

/// Decides from one round of pings whether to feed the watchdog, and gathers the status facts.
/// A component of [`Component::ALL`] missing from `probes` counts as not answering; the
/// CredentialListener counts when it was pinged.
pub fn assess(probes: &[(Component, Probe)]) -> Assessment {
    let mut a = Assessment::default();
    let optional = probes
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !Component::ALL.contains(c));
    for component in Component::ALL.into_iter().chain(optional) {
        let probe = probes.iter().find(|(c, _)| *c == component).map(|(_, p)| p);
        let health = match probe {
            None => {
                a.problems.insert(component, "not pinged".into());
                continue;
            }
            Some(Probe::Gone) => {
                a.problems.insert(component, "stopped".into());
                continue;
            }
            Some(Probe::TimedOut(t)) => {
                a.problems
                    .insert(component, format!("no answer within {}", millis(*t)));
                continue;
            }
            Some(Probe::Answered(h)) => h,
        };
        if let Some(fault) = &health.fault {
            a.problems.insert(component, fault.clone());
        }
        if health.active_capabilities.is_some() {
            a.active_capabilities = health.active_capabilities;
        }
        if health.policy_generation.is_some() {
            a.policy_generation = health.policy_generation;
        }
        if let Some(e) = &health.last_error {
            let what = match component {
                Component::AuditWriter => "audit log",
                Component::PolicyWatcher => "policy",
                Component::CapabilityRegistry => "capability store",
                Component::Listener => "listener",
                Component::CredentialListener => "credentials socket",
            };
            a.errors.push(format!(
                "{what}: {}",
                crate::notify::one_line(e, ERROR_CHARS)
            ));
        }
    }
    a
}

impl Assessment {
    /// Every component answered without a fault: `WATCHDOG=1` may be sent.
    pub fn feed_watchdog(&self) -> bool {
        self.problems.is_empty()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The status line: `serving PATH; N connections; M active capabilities; policy generation G;
/// last error: none`. What is wedged comes first, since it matters most.
pub fn status_line(socket: &str, connections: usize, a: &Assessment) -> String {
    let mut parts = Vec::with_capacity(6);
    if let Some(w) = a.wedged() {
        parts.push(format!("UNHEALTHY: {w}"));
    }
    parts.push(format!("serving {socket}"));
    parts.push(plural(connections, "connection", "connections"));
    parts.push(match a.active_capabilities {
        Some(n) => plural(n, "active capability", "active capabilities"),
        None => "active capabilities unknown".into(),
    });
    parts.push(match a.policy_generation {
        Some(g) => format!("policy generation {g}"),
        None => "policy generation unknown".into(),
    });
    parts.push(format!(
        "last error: {}",
        if a.errors.is_empty() {
            "none".to_string()
        } else {
            a.errors.join("; ")
        }
    ));
    crate::notify::one_line(&parts.join("; "), crate::notify::MAX_STATUS_CHARS)
}

/// A change in a component's health between two rounds, to be logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It stopped answering (or reported a fault).
    Failed(Component, String),
    /// It answers again.
    Recovered(Component),
}

/// What changed from `before` to `now` (problems by component).
pub fn changes(
    before: &BTreeMap<Component, String>,
    now: &BTreeMap<Component, String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (c, why) in now {
        if !before.contains_key(c) {
            out.push(Change::Failed(*c, why.clone()));
        }
    }
    for c in before.keys() {
        if !now.contains_key(c) {
            out.push(Change::Recovered(*c));
        }
    }
    out
}

/// The tick: [`STATUS_EVERY`], or half the watchdog timeout if that is shorter.
pub fn tick_period(watchdog: Option<Duration>) -> Duration {
    match watchdog {
        Some(w) => (w / 2).min(STATUS_EVERY).max(MIN_TICK),
        None => STATUS_EVERY,
    }
}

/// Whether a healthy round sends `WATCHDOG=1`, `since_last` after the last one: when waiting
/// for the next round (one `tick` later) would leave more than half the watchdog timeout
/// between two keep-alives. With a tick of half the timeout, that is every healthy round.
pub fn watchdog_due(since_last: Option<Duration>, watchdog: Duration, tick: Duration) -> bool {
    since_last.is_none_or(|d| d + tick > watchdog / 2)
}

/// How long an actor may take to answer: three quarters of a tick, so that a round finishes
/// (and `WATCHDOG=1` leaves) well before the watchdog timeout.
pub fn ping_timeout(period: Duration) -> Duration {
    period * 3 / 4
}

/// The actors to ping.
#[derive(Clone)]
pub struct Targets {
    /// The listener.
    pub listener: Addr<Listener>,
    /// The registry.
    pub registry: Addr<CapabilityRegistry>,
    /// The policy watcher.
    pub policy: Addr<PolicyWatcher>,
    /// The audit writer.
    pub audit: Addr<AuditWriter>,
    /// The credentials socket's listener, when the agent serves one.
    pub credentials: Option<Addr<CredentialListener>>,
}

async fn probe(
    ping: impl Future<Output = Result<Health, MailboxError>>,
    timeout: Duration,
) -> Probe {
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(h)) => Probe::Answered(h),
        Ok(Err(_)) => Probe::Gone,
        Err(_) => Probe::TimedOut(timeout),
    }
}

/// Pings every actor at once; each gets `timeout` to answer.
pub async fn probe_all(t: &Targets, timeout: Duration) -> Vec<(Component, Probe)> {
    let (l, r, p, a) = tokio::join!(
        probe(t.listener.send(Ping), timeout),
        probe(t.registry.send(Ping), timeout),
        probe(t.policy.send(Ping), timeout),
        probe(t.audit.send(Ping), timeout),
    );
    let mut probes = vec![
        (Component::Listener, l),
        (Component::CapabilityRegistry, r),
        (Component::PolicyWatcher, p),
        (Component::AuditWriter, a),
    ];
    if let Some(c) = &t.credentials {
        probes.push((
            Component::CredentialListener,
            probe(c.send(Ping), timeout).await,
        ));
    }
    probes
}

/// The running ticker.
pub struct Supervisor {
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Starts the ticker on the current runtime. `watchdog` is the timeout systemd asked for;
    /// `refresh`, when poked, makes it run a round at once; `last_status` is the status the
    /// agent already sent (with `READY=1`), so that it is not sent again unchanged.
    pub fn start(
        targets: Targets,
        shared: SharedRef,
        watchdog: Option<Duration>,
        refresh: Arc<Notify>,
        last_status: String,
    ) -> Supervisor {
        let period = tick_period(watchdog);
        let timeout = ping_timeout(period);
        match watchdog {
            Some(w) => tracing::info!(
                watchdog_ms = w.as_millis() as u64,
                every_ms = period.as_millis() as u64,
                "systemd watchdog enabled: WATCHDOG=1 after every actor answers a ping"
            ),
            None => tracing::debug!("no systemd watchdog"),
        }
        let task = actix_rt::spawn(async move {
            // The first round ran before READY=1 (server.rs); the next is one period later.
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_status = Some(last_status);
            let mut last_fed: Option<std::time::Instant> = None;
            let mut problems = BTreeMap::new();
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = refresh.notified() => {}
                }
                let probes = probe_all(&targets, timeout).await;
                if shared
                    .shutting_down
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    // The listener stopped for an idle exit: not a failure, and the server
                    // stops this ticker next.
                    continue;
                }
                let dead = stopped(&probes);
                if !dead.is_empty() {
                    // An actor that stopped never comes back: rather than answer INTERNAL_ERROR
                    // from now on, stop, non-zero, so that systemd restarts the agent whole.
                    let names: Vec<&str> = dead.iter().map(|c| c.name()).collect();
                    tracing::error!(
                        components = %names.join(", "),
                        "a part of the agent has stopped; stopping the agent so that it is restarted whole"
                    );
                    crate::notify::status(&format!("stopped: {} gone", names.join(", ")));
                    std::process::exit(crate::daemon::PANIC_EXIT);
                }
                let a = assess(&probes);
                for change in changes(&problems, &a.problems) {
                    match change {
                        Change::Failed(c, why) => tracing::warn!(
                            component = c.name(),
                            problem = %why,
                            watchdog = watchdog.is_some(),
                            "health ping failed; no WATCHDOG=1 until every actor answers"
                        ),
                        Change::Recovered(c) => {
                            tracing::info!(component = c.name(), "health ping answered again")
                        }
                    }
                }
                problems = a.problems.clone();
                if let Some(w) = watchdog {
                    let since = last_fed.map(|t| t.elapsed());
                    if a.feed_watchdog() && watchdog_due(since, w, period) {
                        crate::notify::watchdog();
                        last_fed = Some(std::time::Instant::now());
                    }
                }
                let line = status_line(&shared.socket_path, shared.connection_count(), &a);
                if last_status.as_deref() != Some(line.as_str()) {
                    crate::notify::status(&line);
                    last_status = Some(line);
                }
            }
        });
        Supervisor { task }
    }

    /// Stops the ticker; nothing is sent after this returns.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(h: Health) -> Probe {
        Probe::Answered(h)
    }

    fn all_well() -> Vec<(Component, Probe)> {
        vec![
            (Component::Listener, answered(Health::alive())),
            (
                Component::CapabilityRegistry,
                answered(Health {
                    active_capabilities: Some(12),
                    ..Health::alive()
                }),
            ),
            (
                Component::PolicyWatcher,
                answered(Health {
                    policy_generation: Some(4),
                    ..Health::alive()
                }),
            ),
            (Component::AuditWriter, answered(Health::alive())),
        ]
    }

    #[test]
    fn every_answer_feeds_the_watchdog() {
        let a = assess(&all_well());
        assert!(a.feed_watchdog());
        assert!(a.problems.is_empty());
        assert_eq!(a.wedged(), None);
        assert_eq!(
            status_line("/run/aether-vault/agent.sock", 3, &a),
            "serving /run/aether-vault/agent.sock; 3 connections; 12 active capabilities; \
             policy generation 4; last error: none"
        );
    }

    #[test]
    fn the_credential_listener_counts_when_the_agent_has_one() {
        // Without a credentials socket, the four actors are all there is.
        assert!(assess(&all_well()).feed_watchdog());
        let mut probes = all_well();
        probes.push((Component::CredentialListener, answered(Health::alive())));
        assert!(assess(&probes).feed_watchdog());
        for bad in [Probe::TimedOut(Duration::from_millis(75)), Probe::Gone] {
            probes[4].1 = bad.clone();
            let a = assess(&probes);
            assert!(!a.feed_watchdog(), "{bad:?}");
            assert!(
                a.wedged().unwrap().starts_with("CredentialListener: "),
                "{:?}",
                a.wedged()
            );
        }
        assert_eq!(stopped(&probes), vec![Component::CredentialListener]);
    }

    #[test]
    fn a_stopped_actor_is_named_and_a_slow_one_is_not() {
        let mut probes = all_well();
        assert!(stopped(&probes).is_empty());
        probes[1].1 = Probe::TimedOut(Duration::from_millis(75));
        assert!(stopped(&probes).is_empty());
        probes[3].1 = Probe::Gone;
        assert_eq!(stopped(&probes), vec![probes[3].0]);
    }

    #[test]
    fn one_silent_or_stopped_actor_starves_the_watchdog_and_is_named() {
        for (i, bad) in [Probe::TimedOut(Duration::from_millis(75)), Probe::Gone]
            .into_iter()
            .enumerate()
        {
            let mut probes = all_well();
            probes[3].1 = bad;
            let a = assess(&probes);
            assert!(!a.feed_watchdog(), "case {i}");
            let w = a.wedged().unwrap();
            assert!(w.starts_with("AuditWriter: "), "{w}");
            assert!(
                w.ends_with(if i == 0 {
                    "no answer within 75 ms"
                } else {
                    "stopped"
                }),
                "{w}"
            );
            let line = status_line("/s", 0, &a);
            assert!(line.starts_with("UNHEALTHY: AuditWriter: "), "{line}");
            assert!(line.contains("12 active capabilities"), "{line}");
        }
    }

    #[test]
    fn a_missing_answer_counts_as_silence() {
        let mut probes = all_well();
        probes.remove(0);
        let a = assess(&probes);
        assert!(!a.feed_watchdog());
        assert_eq!(a.wedged().as_deref(), Some("Listener: not pinged"));
        assert!(!assess(&[]).feed_watchdog());
    }

    #[test]
    fn a_dead_writer_thread_is_a_fault_even_though_the_actor_answered() {
        let mut probes = all_well();
        probes[1].1 = answered(Health {
            fault: Some("capability store writer thread is not working: stopped".into()),
            active_capabilities: Some(2),
            ..Health::alive()
        });
        let a = assess(&probes);
        assert!(!a.feed_watchdog());
        assert_eq!(a.active_capabilities, Some(2));
        assert!(
            a.wedged()
                .unwrap()
                .starts_with("CapabilityRegistry: capability store writer thread")
        );
    }

    #[test]
    fn reported_errors_do_not_starve_the_watchdog_but_show_in_the_status() {
        let mut probes = all_well();
        probes[2].1 = answered(Health {
            policy_generation: Some(4),
            last_error: Some("q.json:1:2: unknown selector \"everyone\"\nsecond line".into()),
            ..Health::alive()
        });
        probes[3].1 = answered(Health {
            last_error: Some("No space left on device".into()),
            ..Health::alive()
        });
        let a = assess(&probes);
        assert!(
            a.feed_watchdog(),
            "a failing policy load or disk is not a wedge"
        );
        let line = status_line("/s", 1, &a);
        assert_eq!(
            line,
            "serving /s; 1 connection; 12 active capabilities; policy generation 4; \
             last error: policy: q.json:1:2: unknown selector \"everyone\" second line; \
             audit log: No space left on device"
        );
    }

    #[test]
    fn singular_and_unknown_counts_read_well() {
        let a = assess(&[(
            Component::CapabilityRegistry,
            answered(Health {
                active_capabilities: Some(1),
                ..Health::alive()
            }),
        )]);
        let line = status_line("/s", 1, &a);
        assert!(
            line.contains("; 1 connection; 1 active capability; "),
            "{line}"
        );
        assert!(line.contains("policy generation unknown"), "{line}");
        let a = assess(&[]);
        assert!(status_line("/s", 0, &a).contains("0 connections; active capabilities unknown"));
    }

    #[test]
    fn the_status_line_is_bounded_and_one_line() {
        let mut probes = all_well();
        probes[2].1 = answered(Health {
            policy_generation: Some(4),
            last_error: Some("x\n".repeat(5000)),
            ..Health::alive()
        });
        let line = status_line(&"/very/long".repeat(100), 0, &assess(&probes));
        assert!(line.chars().count() <= crate::notify::MAX_STATUS_CHARS);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn each_failure_and_recovery_is_reported_once() {
        let none = BTreeMap::new();
        let audit: BTreeMap<_, _> = [(Component::AuditWriter, "no answer".to_string())].into();
        assert_eq!(
            changes(&none, &audit),
            vec![Change::Failed(Component::AuditWriter, "no answer".into())]
        );
        assert_eq!(
            changes(&audit, &audit),
            vec![],
            "still failing: nothing new"
        );
        assert_eq!(
            changes(&audit, &none),
            vec![Change::Recovered(Component::AuditWriter)]
        );
        assert_eq!(changes(&none, &none), vec![]);
    }

    #[test]
    fn ticks_are_half_the_watchdog_at_most_and_pings_end_within_a_tick() {
        assert_eq!(tick_period(None), STATUS_EVERY);
        assert_eq!(tick_period(Some(Duration::from_secs(30))), STATUS_EVERY);
        assert_eq!(
            tick_period(Some(Duration::from_secs(3))),
            Duration::from_millis(1500)
        );
        assert_eq!(tick_period(Some(Duration::from_micros(3))), MIN_TICK);
        let p = tick_period(Some(Duration::from_millis(200)));
        assert_eq!(ping_timeout(p), Duration::from_millis(75));
        // A round that ends at the latest moment still leaves WATCHDOG=1 before the timeout.
        assert!(p + ping_timeout(p) < Duration::from_millis(200));
    }

    #[test]
    fn keep_alives_come_about_every_half_timeout() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // A tick of half the timeout: every healthy round.
        assert!(watchdog_due(None, ms(200), ms(100)));
        assert!(watchdog_due(Some(ms(1)), ms(200), ms(100)));
        // A 30 s timeout, rounds every 2 s: the first round, then once 13+ s have passed.
        assert!(watchdog_due(None, s(30), s(2)));
        assert!(!watchdog_due(Some(s(2)), s(30), s(2)));
        assert!(!watchdog_due(Some(s(12)), s(30), s(2)));
        assert!(watchdog_due(Some(s(14)), s(30), s(2)));
        // Rounds that were unhealthy for a while: the first healthy one sends.
        assert!(watchdog_due(Some(s(20)), s(30), s(2)));
    }

    #[actix_rt::test]
    async fn a_ping_that_never_answers_times_out_and_a_closed_mailbox_is_gone() {
        let t = Duration::from_millis(30);
        let never = std::future::pending::<Result<Health, MailboxError>>();
        assert_eq!(probe(never, t).await, Probe::TimedOut(t));
        assert_eq!(
            probe(async { Err(MailboxError::Closed) }, t).await,
            Probe::Gone
        );
        assert_eq!(
            probe(async { Ok(Health::alive()) }, t).await,
            Probe::Answered(Health::alive())
        );
    }
}
