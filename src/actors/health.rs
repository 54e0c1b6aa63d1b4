//! The health ping every long-lived actor answers, for the watchdog and the status line
//! ([`crate::supervise`]).
//!
//! An answer comes out of the actor's own mailbox, so it proves the actor is taking messages.
//! The actors that own a writer thread (the audit log's, the capability store's) answer only
//! after that thread has taken a no-op job, so a wedged or dead writer thread is seen too. The
//! answer also carries the few facts the status line shows.

use actix::Message;

/// Are you alive? Answered with [`Health`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Health")]
pub struct Ping;

/// One actor's answer to [`Ping`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Set when the actor answers but cannot do its work (its writer thread has stopped).
    pub fault: Option<String>,
    /// Active capabilities (the registry).
    pub active_capabilities: Option<usize>,
    /// The policy generation in force (the policy watcher).
    pub policy_generation: Option<u64>,
    /// The last error the actor saw that is not cleared yet: a failed policy load, a failed
    /// audit write.
    pub last_error: Option<String>,
}

impl Health {
    /// Alive, with nothing to report.
    pub fn alive() -> Health {
        Health::default()
    }
}

/// What a writer thread's no-op job answered: a fault when the thread has stopped.
pub fn writer_fault(thread: &str, answer: Result<(), String>) -> Option<String> {
    answer
        .err()
        .map(|e| format!("{thread} writer thread is not working: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_writer_is_a_fault() {
        assert_eq!(writer_fault("audit", Ok(())), None);
        assert_eq!(
            writer_fault("audit", Err("the writer thread has stopped".into())).as_deref(),
            Some("audit writer thread is not working: the writer thread has stopped")
        );
    }
}
