//! A thread that signs capabilities, so that the registry's event loop does not spend an
//! Ed25519 signature (most of a grant's CPU) per grant while other requests wait.
//!
//! One thread, fed by a channel: under load it signs one job after another without sleeping,
//! and each answer wakes only the grant that waits for it. If the thread is gone, the caller
//! gets nothing back and refuses the grant.

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::signing::Signer;
use crate::protocol::types::Capability;

/// A capability to sign for a holder uid, and where the signed capability goes.
type Job = (Capability, u32, oneshot::Sender<Capability>);

/// The handle to the signing thread.
pub struct SignWorker {
    jobs: mpsc::Sender<Job>,
}

impl SignWorker {
    /// Starts the thread `capability-sign` signing with `signer`.
    pub fn start(signer: Arc<Signer>) -> std::io::Result<SignWorker> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("capability-sign".into())
            .spawn(move || {
                while let Ok((mut cap, uid, done)) = rx.recv() {
                    cap.signature = signer.sign(&cap, uid);
                    let _ = done.send(cap);
                }
            })?;
        Ok(SignWorker { jobs: tx })
    }

    /// `cap` signed for `holder_uid`, or `None` if the thread is gone.
    pub fn sign(
        &self,
        cap: Capability,
        holder_uid: u32,
    ) -> impl Future<Output = Option<Capability>> + use<> {
        let (done, wait) = oneshot::channel();
        let sent = self.jobs.send((cap, holder_uid, done)).is_ok();
        async move { if sent { wait.await.ok() } else { None } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn signs_what_the_signer_would_in_order_of_asking() {
        let signer = Arc::new(Signer::from_seed([9; 32]));
        let worker = SignWorker::start(signer.clone()).unwrap();
        let caps: Vec<Capability> = (0..20)
            .map(|i| super::super::issue::sample(&format!("cap_{i}"), 1_700_000_000, 60))
            .collect();
        let waits: Vec<_> = caps.iter().map(|c| worker.sign(c.clone(), 1000)).collect();
        for (want, wait) in caps.iter().zip(waits) {
            let got = wait.await.expect("signed");
            assert_eq!(got.id, want.id);
            assert_eq!(got.signature, signer.sign(want, 1000));
            assert!(signer.verify(&got, 1000));
            assert!(!signer.verify(&got, 1001), "bound to the holder");
        }
    }
}
