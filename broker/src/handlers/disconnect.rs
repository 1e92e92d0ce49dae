//! DISCONNECT from a client (spec v5 3.14, v3.1.1 3.14).

use tenantmq_codec::{Disconnect, ReasonCode};
use tokio::time::Instant;

use crate::engine::{Close, Engine};

impl Engine {
    /// DISCONNECT: a normal end. The will is discarded unless MQTT 5 reason 0x04 asks for it
    /// (`MQTT-3.14.4-3`); MQTT 5 may change the session expiry on the way out, but not from 0
    /// to non-zero (`MQTT-3.14.2-2`).
    pub(crate) fn on_disconnect(
        &mut self,
        slot: u32,
        d: &Disconnect,
        now: Instant,
    ) -> Result<(), ReasonCode> {
        let cap = self.quotas.max_session_expiry_secs;
        if let Some(requested) = d.properties.session_expiry_interval
            && let Some(s) = self.session_mut(slot)
        {
            if s.expiry_interval == 0 && requested != 0 {
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
            s.expiry_interval = requested.min(cap);
        }
        let with_will = d.reason == ReasonCode::DISCONNECT_WITH_WILL;
        self.close(slot, Close::ClientDisconnect { with_will }, now);
        Ok(())
    }
}
