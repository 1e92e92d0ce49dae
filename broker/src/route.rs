//! Routing: which sessions receive a message, and handing it to them.
//!
//! Each filter in the trie carries a [`FilterSubs`]: the sessions subscribed to it directly,
//! and its shared-subscription groups (`$share/<group>/<filter>`, one delivery per group,
//! round robin among members that can take it). A message's matches are collected into a
//! reused scratch vector, sorted by session, and merged: a client with overlapping
//! subscriptions gets one copy, at the highest granted QoS, carrying every matching
//! subscription identifier (MQTT 5 3.3.4, `MQTT-3.3.4-2`, `MQTT-3.3.4-3`).

use bytestring::ByteString;
use tenantmq_codec::{QoS, SubscriptionOptions, TopicName};
use tenantmq_common::usage::RejectReason;
use tokio::time::Instant;

use crate::engine::{Engine, Slot};
use crate::message::Message;
use crate::session::{Outcome, SubIds, Subscription};

/// One session's subscription to a filter, as stored in the trie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubEntry {
    /// Session slot.
    pub slot: u32,
    /// Granted options.
    pub options: SubscriptionOptions,
    /// Subscription Identifier.
    pub id: Option<u32>,
}

/// A shared-subscription group on one filter.
#[derive(Debug, Clone)]
pub(crate) struct ShareGroup {
    /// Share name.
    pub name: ByteString,
    /// Member subscriptions.
    pub members: Vec<SubEntry>,
    /// Round-robin position.
    next: usize,
}

/// The subscribers of one filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterSubs {
    /// Non-shared subscriptions.
    pub direct: Vec<SubEntry>,
    /// Shared-subscription groups.
    pub groups: Vec<ShareGroup>,
}

impl FilterSubs {
    /// True when nothing subscribes to the filter any more.
    pub fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.groups.is_empty()
    }

    /// Adds or replaces a subscription (`MQTT-3.8.4-3`: a repeated filter replaces options).
    pub fn upsert(&mut self, group: Option<&ByteString>, entry: SubEntry) {
        let list = match group {
            None => &mut self.direct,
            Some(name) => {
                let idx = match self.groups.iter().position(|g| g.name == *name) {
                    Some(i) => i,
                    None => {
                        self.groups.push(ShareGroup {
                            name: name.clone(),
                            members: Vec::new(),
                            next: 0,
                        });
                        self.groups.len() - 1
                    }
                };
                &mut self.groups[idx].members
            }
        };
        match list.iter_mut().find(|e| e.slot == entry.slot) {
            Some(e) => *e = entry,
            None => list.push(entry),
        }
    }

    /// Removes the subscription of `slot`.
    pub fn remove(&mut self, group: Option<&ByteString>, slot: u32) {
        match group {
            None => self.direct.retain(|e| e.slot != slot),
            Some(name) => {
                if let Some(g) = self.groups.iter_mut().find(|g| g.name == *name) {
                    g.members.retain(|e| e.slot != slot);
                }
                self.groups.retain(|g| !g.members.is_empty());
            }
        }
    }
}

impl ShareGroup {
    /// The member to deliver the next message to: round robin over connected members that are
    /// not congested, else (to queue a QoS 1/2 message) simply the next member.
    fn pick(&mut self, slots: &[Slot]) -> Option<SubEntry> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        for k in 0..n {
            let i = (self.next + k) % n;
            let m = self.members[i];
            let ready = slots
                .get(m.slot as usize)
                .and_then(|s| s.session.as_ref())
                .and_then(|s| s.conn.as_ref())
                .is_some_and(|c| !c.congested());
            if ready {
                self.next = (i + 1) % n;
                return Some(m);
            }
        }
        let m = self.members[self.next % n];
        self.next = (self.next + 1) % n;
        Some(m)
    }
}

/// One matching subscription of a message, before merging per session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    slot: u32,
    qos: QoS,
    retain_as_published: bool,
    id: Option<u32>,
}

impl Engine {
    /// Delivers `msg` to every matching subscription. `publisher` is the slot of the
    /// publishing session (for No Local). Returns the number of sessions it went to.
    pub fn route(&mut self, msg: &Message, publisher: Option<u32>, now: Instant) -> usize {
        let mut targets = std::mem::take(&mut self.scratch);
        targets.clear();
        let slots = &self.slots;
        self.subs.for_each_match_mut(&msg.topic, |fs| {
            for e in &fs.direct {
                // No Local: not back to the publishing connection (`MQTT-3.8.3-3`).
                if e.options.no_local && Some(e.slot) == publisher {
                    continue;
                }
                targets.push(Target::new(e));
            }
            for g in &mut fs.groups {
                if let Some(e) = g.pick(slots) {
                    targets.push(Target::new(&e));
                }
            }
        });
        if targets.len() > 1 {
            targets.sort_unstable_by_key(|t| t.slot);
        }
        let mut delivered = 0;
        let mut i = 0;
        while i < targets.len() {
            let first = targets[i];
            let (mut qos, mut rap, mut ids) = (first.qos, first.retain_as_published, SubIds::new());
            let mut j = i;
            while j < targets.len() && targets[j].slot == first.slot {
                let t = targets[j];
                qos = qos.max(t.qos);
                rap |= t.retain_as_published;
                if let Some(id) = t.id {
                    ids.push(id);
                }
                j += 1;
            }
            i = j;
            // The delivery QoS is the lower of published and granted (`MQTT-3.8.4-8`); RETAIN
            // is kept only for Retain As Published (`MQTT-3.3.1-12`, `MQTT-3.3.1-13`).
            self.deliver(
                first.slot,
                msg,
                qos.min(msg.qos),
                rap && msg.retain,
                ids,
                now,
            );
            delivered += 1;
        }
        self.scratch = targets;
        delivered
    }

    /// Delivers one message to one session and keeps the bookkeeping.
    pub fn deliver(
        &mut self,
        slot: u32,
        msg: &Message,
        qos: QoS,
        retain: bool,
        sub_ids: SubIds,
        now: Instant,
    ) {
        let max_inflight = self.quotas.max_inflight;
        let max_queue = crate::session::QueueLimit {
            messages: self.quotas.max_offline_queue_len as usize,
            bytes: self.quotas.max_offline_queue_bytes,
        };
        let empty = &self.empty_props;
        let Some(session) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.session.as_mut())
        else {
            return;
        };
        match session.deliver(
            msg,
            qos,
            retain,
            sub_ids,
            max_inflight,
            max_queue,
            now,
            empty,
        ) {
            Outcome::Sent => {
                // The broker's own `$SYS` messages are not the tenant's traffic (usage, stats).
                if !crate::sys::is_sys(&msg.topic) {
                    self.stats.messages_out += 1;
                    self.stats.bytes_out += msg.payload.len() as u64;
                }
                if let Some(conn) = session.conn.as_mut()
                    && !conn.dirty
                {
                    conn.dirty = true;
                    self.dirty.push(slot);
                }
            }
            Outcome::Queued => {
                if session.blocked_by_congestion(max_inflight) && !session.congestion_listed {
                    session.congestion_listed = true;
                    self.congested.push(slot);
                }
            }
            Outcome::Dropped => self.stats.messages_dropped += 1,
            Outcome::QueueFull => {
                self.stats.messages_dropped += 1;
                self.stats.rejections.add(RejectReason::QueueFull);
            }
        }
    }

    /// Stores or deletes the retained message of `msg`'s topic (`MQTT-3.3.1-5` to `-7`): an
    /// empty payload deletes; otherwise the message replaces the previous one.
    pub fn store_retained(&mut self, msg: &Message) {
        if msg.payload.is_empty() {
            if let Some(old) = self.retained.remove(&msg.topic) {
                self.retained_bytes -= old.size() as u64;
            }
            return;
        }
        let size = msg.size() as u64;
        if let Some(old) = self.retained.insert(&msg.topic, msg.detached()) {
            self.retained_bytes -= old.size() as u64;
        }
        self.retained_bytes += size;
    }

    /// Whether storing a retained message of `payload_len` bytes on `topic` keeps the tenant
    /// within `max_retained_messages` and `max_retained_bytes` (bytes count topic and
    /// payload, as [`Message::size`] does). Replacing a topic's message only counts the
    /// difference; deleting (an empty payload) always fits, so a tenant at its limit can
    /// always make room.
    pub fn retained_fits(&self, topic: &TopicName, payload_len: usize) -> bool {
        if payload_len == 0 {
            return true;
        }
        let old = self.retained.get(topic).map(|m| m.size() as u64);
        let count = self.tenant_retained_count() as u64 + u64::from(old.is_none());
        let size = (topic.as_str().len() + payload_len) as u64;
        let bytes = self.retained_bytes - old.unwrap_or(0) + size;
        count <= u64::from(self.quotas.max_retained_messages)
            && bytes <= self.quotas.max_retained_bytes
    }

    /// Sends the retained messages matching a new subscription, with RETAIN set
    /// (`MQTT-3.3.1-9`... v5 3.3.1.3) at the lower of their QoS and the granted one.
    pub fn send_retained(&mut self, slot: u32, sub: &Subscription, now: Instant) {
        let mut found: Vec<Message> = Vec::new();
        self.retained
            .for_each_matching(&sub.filter, |m| found.push(m.clone()));
        for m in found {
            let ids: SubIds = sub.id.into_iter().collect();
            self.deliver(slot, &m, m.qos.min(sub.options.qos), true, ids, now);
        }
    }

    /// Publishes a will message on the client's behalf. A retained will beyond the retained
    /// quota is refused entirely, like a retained PUBLISH (nobody is left to tell).
    pub fn publish_will(&mut self, msg: Message, now: Instant) {
        if msg.retain && !self.retained_fits(&msg.topic, msg.payload.len()) {
            self.stats.rejections.add(RejectReason::RetainedQuota);
            return;
        }
        self.stats.messages_in += 1;
        self.stats.bytes_in += msg.payload.len() as u64;
        if msg.retain {
            self.store_retained(&msg);
        }
        self.route(&msg, None, now);
    }

    /// Removes one of `slot`'s subscriptions from the trie (every path that drops a
    /// subscription comes here once: UNSUBSCRIBE, a clean start, the session's end).
    pub fn unlink_subscription(&mut self, slot: u32, sub: &Subscription) {
        self.subscription_count = self.subscription_count.saturating_sub(1);
        let emptied = match self.subs.get_mut(&sub.filter) {
            Some(fs) => {
                fs.remove(sub.group.as_ref(), slot);
                fs.is_empty()
            }
            None => false,
        };
        if emptied {
            self.subs.remove(&sub.filter);
        }
    }
}

impl Target {
    fn new(e: &SubEntry) -> Self {
        Self {
            slot: e.slot,
            qos: e.options.qos,
            retain_as_published: e.options.retain_as_published,
            id: e.id,
        }
    }
}
