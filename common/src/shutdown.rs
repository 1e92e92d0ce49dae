//! The shutdown signal passed down to every task (after mini-redis `src/shutdown.rs`).
//!
//! One [`ShutdownTrigger`] is held by whoever decides to stop (the binary on SIGINT/SIGTERM, a
//! test at its end); every task holds a cloned [`Shutdown`] and selects on
//! [`Shutdown::recv`] next to its work.

use tokio::sync::watch;

/// Fires the shutdown. Dropping it also fires it, so a forgotten trigger cannot leave tasks
/// running forever.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A task's view of the shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Creates a linked trigger and signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Asks every holder of a [`Shutdown`] to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Another signal linked to this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// A signal that never fires, for components run without an owner (benchmarks).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive for the life of the process: the receiver then never sees a
        // change and `recv` stays pending.
        std::mem::forget(tx);
        Self { rx }
    }

    /// True once shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when shutdown is requested (at once if it already was).
    pub async fn recv(&mut self) {
        // An error means the trigger is gone, which also means shut down.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_and_drop_both_fire() {
        let (trigger, mut s) = channel();
        assert!(!s.is_shutdown());
        trigger.trigger();
        s.recv().await;
        assert!(s.is_shutdown());

        let (trigger, mut s) = channel();
        drop(trigger);
        s.recv().await;
    }
}
