//! Control frames: requests of the control plane about the tenant as a whole — new quotas,
//! listing the connected clients and disconnecting one (`EngineControl`). They arrive through
//! the mailbox like device frames, so they see and change the engine's state in order with
//! everything else and need no lock.

use tenantmq_codec::ReasonCode;
use tenantmq_common::link::{ClientInfo, EngineControl};
use tokio::time::Instant;

use crate::engine::{Close, Engine};

impl Engine {
    /// Handles a request of the control plane.
    pub(crate) fn on_control(&mut self, control: EngineControl, now: Instant) {
        match control {
            EngineControl::Quotas(quotas) => self.set_quotas(quotas, now),
            EngineControl::ListClients(reply) => {
                let _ = reply.send(self.clients());
            }
            EngineControl::Kick { client_id, reply } => {
                let slot = self.by_client_id.get(client_id.as_str()).copied();
                let connected =
                    slot.is_some_and(|s| self.session(s).is_some_and(|s| s.conn.is_some()));
                if let (Some(slot), true) = (slot, connected) {
                    self.close(
                        slot,
                        Close::Violation(ReasonCode::ADMINISTRATIVE_ACTION),
                        now,
                    );
                }
                let _ = reply.send(connected);
            }
        }
    }

    /// The connected clients.
    fn clients(&self) -> Vec<ClientInfo> {
        self.slots
            .iter()
            .filter_map(|slot| slot.session.as_ref())
            .filter_map(|s| s.conn.as_ref().map(|c| (s, c)))
            .map(|(s, c)| ClientInfo {
                client_id: s.client_id.to_string(),
                username: c.username.clone(),
                protocol_level: c.version.level(),
                peer: c.peer,
                connected_at_unix: c.connected_at_unix,
                subscriptions: u32::try_from(s.subscriptions.len()).unwrap_or(u32::MAX),
                inflight: u32::try_from(s.inflight.len()).unwrap_or(u32::MAX),
                queued: u32::try_from(s.queue.len()).unwrap_or(u32::MAX),
            })
            .collect()
    }
}
