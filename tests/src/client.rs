//! Real MQTT clients for end-to-end tests: rumqttc's MQTT 3.1.1 ([`V3`]) and MQTT 5
//! ([`V5`]) clients, each with its event loop polled by a task that forwards what arrives.
//!
//! The event loop is polled until its first error and never again, so rumqttc does not
//! reconnect behind a test's back. Dropping a client (or [`V3::kill`] / [`V5::kill`]) drops the
//! socket without DISCONNECT: an abrupt close, as far as the server can tell.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::raw::{QUIET, RECV_TIMEOUT};

pub use rumqttc::v5::mqttbytes::QoS as QoS5;
pub use rumqttc::{QoS as QoS3, v5};

/// What the event-loop task forwards.
#[derive(Debug)]
enum Item<P> {
    /// A packet from the server.
    Incoming(P),
    /// The client sent DISCONNECT (and flushed it).
    SentDisconnect,
    /// The event loop failed; it is not polled again.
    Ended(String),
}

/// Incoming packets of one client, with look-ahead: a test waiting for one kind of packet
/// keeps the others for later.
struct Inbox<P> {
    rx: mpsc::UnboundedReceiver<Item<P>>,
    pending: VecDeque<P>,
    ended: Option<String>,
    sent_disconnect: bool,
    task: JoinHandle<()>,
}

impl<P: Debug> Inbox<P> {
    /// The first packet (pending or arriving within `limit`) for which `pick` returns `Some`;
    /// `None` on timeout or when the connection ended first.
    async fn take<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&P) -> Option<T>,
    ) -> Option<T> {
        if let Some(pos) = self.pending.iter().position(|p| pick(p).is_some()) {
            let p = self.pending.remove(pos)?;
            return pick(&p);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let item = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) | Ok(None) => return None,
                Ok(Some(item)) => item,
            };
            match item {
                Item::Incoming(p) => match pick(&p) {
                    Some(t) => return Some(t),
                    None => self.pending.push_back(p),
                },
                Item::SentDisconnect => self.sent_disconnect = true,
                Item::Ended(e) => {
                    self.ended = Some(e);
                    return None;
                }
            }
        }
    }

    /// Waits up to `limit` for the event loop to end; returns its error text.
    async fn wait_end(&mut self, limit: Duration) -> Option<String> {
        if self.ended.is_some() {
            return self.ended.clone();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return None,
                Ok(None) => return Some("event loop gone".into()),
                Ok(Some(Item::Incoming(p))) => self.pending.push_back(p),
                Ok(Some(Item::SentDisconnect)) => self.sent_disconnect = true,
                Ok(Some(Item::Ended(e))) => {
                    self.ended = Some(e.clone());
                    return Some(e);
                }
            }
        }
    }

    /// Waits until the client has flushed its DISCONNECT.
    async fn wait_sent_disconnect(&mut self) {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        while !self.sent_disconnect {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => panic!("DISCONNECT not sent within {RECV_TIMEOUT:?}"),
                Ok(None) => return,
                Ok(Some(Item::Incoming(p))) => self.pending.push_back(p),
                Ok(Some(Item::SentDisconnect)) => self.sent_disconnect = true,
                Ok(Some(Item::Ended(e))) => {
                    self.ended = Some(e);
                    return;
                }
            }
        }
    }
}

impl<P> Drop for Inbox<P> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An MQTT 3.1.1 rumqttc client.
pub struct V3 {
    /// The rumqttc handle, for requests the helpers do not cover.
    pub client: rumqttc::AsyncClient,
    /// The CONNACK.
    pub connack: rumqttc::ConnAck,
    inbox: Inbox<rumqttc::Packet>,
}

/// Options for a rumqttc 3.1.1 client of `addr`.
pub fn v3_options(addr: SocketAddr, client_id: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl V3 {
    /// Connects with default options and a clean session.
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Self {
        Self::connect_with(v3_options(addr, client_id)).await
    }

    /// Connects with `options`; panics unless the server accepts.
    pub async fn connect_with(options: rumqttc::MqttOptions) -> Self {
        match Self::try_connect(options).await {
            Ok(c) => c,
            Err(e) => panic!("3.1.1 connect failed: {e}"),
        }
    }

    /// Connects with `options`; the error text when the server refuses or closes.
    pub async fn try_connect(options: rumqttc::MqttOptions) -> Result<Self, String> {
        use rumqttc::{Event, Outgoing, Packet};
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let item = match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => Item::Incoming(p),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => Item::SentDisconnect,
                    Ok(Event::Outgoing(_)) => continue,
                    Err(e) => {
                        let _ = tx.send(Item::Ended(format!("{e:?}")));
                        return;
                    }
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        let mut inbox = Inbox {
            rx,
            pending: VecDeque::new(),
            ended: None,
            sent_disconnect: false,
            task,
        };
        let connack = inbox
            .take(RECV_TIMEOUT, |p| match p {
                Packet::ConnAck(a) => Some(a.clone()),
                _ => None,
            })
            .await;
        match connack {
            Some(connack) => Ok(Self {
                client,
                connack,
                inbox,
            }),
            None => Err(inbox.ended.clone().unwrap_or_else(|| "no CONNACK".into())),
        }
    }

    /// Subscribes and waits for the SUBACK; returns its return codes.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS3,
    ) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("subscribe request");
        self.inbox
            .take(RECV_TIMEOUT, |p| match p {
                rumqttc::Packet::SubAck(a) => Some(a.return_codes.clone()),
                _ => None,
            })
            .await
            .expect("SUBACK")
    }

    /// Publishes and waits until the server acknowledged (PUBACK / PUBCOMP); QoS 0 returns
    /// once the request is queued.
    pub async fn publish(
        &mut self,
        topic: &str,
        qos: QoS3,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .expect("publish request");
        let acked = match qos {
            QoS3::AtMostOnce => return,
            QoS3::AtLeastOnce => {
                self.inbox
                    .take(RECV_TIMEOUT, |p| {
                        matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
                    })
                    .await
            }
            QoS3::ExactlyOnce => {
                self.inbox
                    .take(RECV_TIMEOUT, |p| {
                        matches!(p, rumqttc::Packet::PubComp(_)).then_some(())
                    })
                    .await
            }
        };
        assert!(acked.is_some(), "publish to {topic} not acknowledged");
    }

    /// The next PUBLISH within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<rumqttc::Publish> {
        self.inbox
            .take(limit, |p| match p {
                rumqttc::Packet::Publish(p) => Some(p.clone()),
                _ => None,
            })
            .await
    }

    /// The next PUBLISH; panics if none arrives within [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> rumqttc::Publish {
        self.recv_within(RECV_TIMEOUT)
            .await
            .expect("a PUBLISH within the timeout")
    }

    /// Asserts that no PUBLISH arrives within [`QUIET`].
    pub async fn expect_no_publish(&mut self) {
        if let Some(p) = self.recv_within(QUIET).await {
            panic!("unexpected PUBLISH {p:?}");
        }
    }

    /// Sends DISCONNECT and closes.
    ///
    /// Returns once the server has closed the connection, i.e. once the engine has handled
    /// the DISCONNECT: anything it caused (or not) has happened.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect request");
        self.inbox.wait_sent_disconnect().await;
        assert!(
            self.inbox.wait_end(RECV_TIMEOUT).await.is_some(),
            "server kept the connection open after DISCONNECT"
        );
    }

    /// Drops the connection without DISCONNECT.
    pub fn kill(self) {}

    /// Waits for the server to close the connection; the event loop's error text.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<String> {
        self.inbox.wait_end(limit).await
    }
}

/// An MQTT 5 rumqttc client.
pub struct V5 {
    /// The rumqttc handle, for requests the helpers do not cover.
    pub client: v5::AsyncClient,
    /// The CONNACK.
    pub connack: v5::mqttbytes::v5::ConnAck,
    inbox: Inbox<v5::mqttbytes::v5::Packet>,
}

/// Options for a rumqttc MQTT 5 client of `addr`.
pub fn v5_options(addr: SocketAddr, client_id: &str) -> v5::MqttOptions {
    let mut o = v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl V5 {
    /// Connects with default options and a clean start.
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Self {
        Self::connect_with(v5_options(addr, client_id)).await
    }

    /// Connects with `options`; panics unless the server accepts.
    pub async fn connect_with(options: v5::MqttOptions) -> Self {
        match Self::try_connect(options).await {
            Ok(c) => c,
            Err(e) => panic!("MQTT 5 connect failed: {e}"),
        }
    }

    /// Connects with `options`; the error text when the server refuses or closes.
    pub async fn try_connect(options: v5::MqttOptions) -> Result<Self, String> {
        use rumqttc::Outgoing;
        use v5::Event;
        use v5::mqttbytes::v5::Packet;
        let (client, mut eventloop) = v5::AsyncClient::new(options, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let item = match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => Item::Incoming(p),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => Item::SentDisconnect,
                    Ok(Event::Outgoing(_)) => continue,
                    Err(e) => {
                        let _ = tx.send(Item::Ended(format!("{e:?}")));
                        return;
                    }
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        let mut inbox = Inbox {
            rx,
            pending: VecDeque::new(),
            ended: None,
            sent_disconnect: false,
            task,
        };
        let connack = inbox
            .take(RECV_TIMEOUT, |p| match p {
                Packet::ConnAck(a) => Some(a.clone()),
                _ => None,
            })
            .await;
        match connack {
            Some(connack) => Ok(Self {
                client,
                connack,
                inbox,
            }),
            None => Err(inbox.ended.clone().unwrap_or_else(|| "no CONNACK".into())),
        }
    }

    /// Subscribes with `filter`'s options and `id`, and waits for the SUBACK; returns its
    /// reason codes.
    pub async fn subscribe_filter(
        &mut self,
        filter: v5::mqttbytes::v5::Filter,
        id: Option<usize>,
    ) -> Vec<v5::mqttbytes::v5::SubscribeReasonCode> {
        let props = v5::mqttbytes::v5::SubscribeProperties {
            id,
            user_properties: Vec::new(),
        };
        self.client
            .subscribe_many_with_properties(vec![filter], props)
            .await
            .expect("subscribe request");
        self.inbox
            .take(RECV_TIMEOUT, |p| match p {
                v5::mqttbytes::v5::Packet::SubAck(a) => Some(a.return_codes.clone()),
                _ => None,
            })
            .await
            .expect("SUBACK")
    }

    /// Subscribes to `filter` at `qos` with default options.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS5,
    ) -> Vec<v5::mqttbytes::v5::SubscribeReasonCode> {
        self.subscribe_filter(v5::mqttbytes::v5::Filter::new(filter, qos), None)
            .await
    }

    /// Publishes with `props` and waits until the server acknowledged (PUBACK / PUBCOMP);
    /// QoS 0 returns once the request is queued.
    pub async fn publish_with(
        &mut self,
        topic: &str,
        qos: QoS5,
        retain: bool,
        payload: impl Into<bytes::Bytes>,
        props: Option<v5::mqttbytes::v5::PublishProperties>,
    ) {
        use v5::mqttbytes::v5::Packet;
        let sent = match props {
            Some(props) => {
                self.client
                    .publish_with_properties(topic, qos, retain, payload, props)
                    .await
            }
            None => self.client.publish(topic, qos, retain, payload).await,
        };
        sent.expect("publish request");
        let acked = match qos {
            QoS5::AtMostOnce => return,
            QoS5::AtLeastOnce => {
                self.inbox
                    .take(RECV_TIMEOUT, |p| {
                        matches!(p, Packet::PubAck(_)).then_some(())
                    })
                    .await
            }
            QoS5::ExactlyOnce => {
                self.inbox
                    .take(RECV_TIMEOUT, |p| {
                        matches!(p, Packet::PubComp(_)).then_some(())
                    })
                    .await
            }
        };
        assert!(acked.is_some(), "publish to {topic} not acknowledged");
    }

    /// Publishes without properties.
    pub async fn publish(
        &mut self,
        topic: &str,
        qos: QoS5,
        retain: bool,
        payload: impl Into<bytes::Bytes>,
    ) {
        self.publish_with(topic, qos, retain, payload, None).await;
    }

    /// The next PUBLISH within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<v5::mqttbytes::v5::Publish> {
        self.inbox
            .take(limit, |p| match p {
                v5::mqttbytes::v5::Packet::Publish(p) => Some(p.clone()),
                _ => None,
            })
            .await
    }

    /// The next PUBLISH; panics if none arrives within [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> v5::mqttbytes::v5::Publish {
        self.recv_within(RECV_TIMEOUT)
            .await
            .expect("a PUBLISH within the timeout")
    }

    /// Asserts that no PUBLISH arrives within [`QUIET`].
    pub async fn expect_no_publish(&mut self) {
        if let Some(p) = self.recv_within(QUIET).await {
            panic!("unexpected PUBLISH {p:?}");
        }
    }

    /// Sends DISCONNECT (normal disconnection) and closes.
    ///
    /// Returns once the server has closed the connection, i.e. once the engine has handled
    /// the DISCONNECT: anything it caused (or not) has happened.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect request");
        self.inbox.wait_sent_disconnect().await;
        assert!(
            self.inbox.wait_end(RECV_TIMEOUT).await.is_some(),
            "server kept the connection open after DISCONNECT"
        );
    }

    /// Drops the connection without DISCONNECT.
    pub fn kill(self) {}

    /// Waits for the server to close the connection; the event loop's error text.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<String> {
        self.inbox.wait_end(limit).await
    }
}

/// The topic of a rumqttc MQTT 5 PUBLISH as text.
pub fn topic5(p: &v5::mqttbytes::v5::Publish) -> String {
    String::from_utf8_lossy(&p.topic).into_owned()
}
