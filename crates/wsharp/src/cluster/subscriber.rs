//! The node's connections to Redis and what arrives through them: connect (forever, with
//! jittered backoff), subscribe, probe the subscription, and hand each envelope to the
//! delivery task through a bounded queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};

use super::Shared;
use super::envelope::{Body, Envelope};
use super::sequence::{Sequences, Verdict};
use super::stats::add;
use crate::server::Health;

/// Runs until the backplane stops: connects, serves the connection until it breaks or goes
/// deaf, waits, and connects again.
pub(super) async fn run(
    shared: Arc<Shared>,
    inbound_tx: mpsc::Sender<Envelope>,
    refresh: Arc<Notify>,
) {
    let mut stop = shared.stop.subscribe();
    let mut attempt: u32 = 0;
    let mut ever_up = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let served = tokio::select! {
            _ = stop.changed() => break,
            served = connect_and_serve(&shared, &inbound_tx, &refresh, &mut attempt, &mut ever_up) => served,
        };
        *shared.commands.write().expect("not poisoned") = None;
        if let Err(e) = served {
            tracing::debug!(node = %shared.node, "Redis connection: {e}");
        }
        attempt = attempt.saturating_add(1);
        shared.set_health(Health::Reconnecting { attempt });
        let wait = backoff(&shared, attempt);
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The wait before attempt `attempt`: doubling from the minimum to the maximum, each drawn
/// between half and all of it.
fn backoff(shared: &Shared, attempt: u32) -> Duration {
    let (min, max) = shared.options.backoff;
    let full = min
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(max);
    full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// Connects both connections, subscribes, and serves until the subscription ends or a probe
/// does not come back.
async fn connect_and_serve(
    shared: &Arc<Shared>,
    inbound: &mpsc::Sender<Envelope>,
    refresh: &Notify,
    attempt: &mut u32,
    ever_up: &mut bool,
) -> redis::RedisResult<()> {
    let options = &shared.options;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.response_timeout))
        .set_response_timeout(Some(options.response_timeout));
    let commands = shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let timeout =
        |what: &'static str| move |_| redis::RedisError::from((redis::ErrorKind::Io, what));
    let mut pubsub =
        tokio::time::timeout(options.response_timeout, shared.client.get_async_pubsub())
            .await
            .map_err(timeout("subscriber connection timed out"))??;
    tokio::time::timeout(options.response_timeout, async {
        pubsub.psubscribe(format!("{}:b:*", options.prefix)).await?;
        pubsub.subscribe(options.channel_node(&shared.node)).await
    })
    .await
    .map_err(timeout("subscribe timed out"))??;
    *shared.commands.write().expect("not poisoned") = Some(commands);
    if *ever_up {
        add(&shared.counters.reconnects, 1);
    }
    *ever_up = true;
    *attempt = 0;
    // Redis may have restarted empty: write every record again now.
    refresh.notify_one();
    shared.set_health(Health::Up);

    let mut messages = pubsub.into_on_message();
    // Looked at often enough to catch a probe late by its timeout, not by the next interval.
    let mut probe = tokio::time::interval(options.probe_interval.min(options.probe_timeout));
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe.tick().await;
    // The probe in flight: its number and when it left; numbers start at random on each
    // connection, so a late probe of an earlier one never counts.
    let mut pending: Option<(u64, Instant)> = None;
    let mut probes: u64 = rand::random::<u64>() >> 1;
    let mut last_probe = Instant::now();
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err(redis::RedisError::from((redis::ErrorKind::Io, "subscription ended")));
                };
                let Ok(envelope) = Envelope::decode(bytes::Bytes::copy_from_slice(message.get_payload_bytes())) else {
                    add(&shared.counters.rejected, 1);
                    continue;
                };
                if envelope.origin == shared.node && envelope.incarnation == shared.incarnation {
                    if envelope.body == Body::Probe && pending.is_some_and(|(n, _)| n == envelope.seq) {
                        pending = None;
                    }
                    // Our own broadcasts come back too: their sessions have them already.
                    continue;
                }
                if inbound.try_send(envelope).is_err() {
                    // Dropped here, it shows as a gap when the sender's next one arrives.
                    add(&shared.counters.inbound_dropped, 1);
                }
            }
            _ = probe.tick() => {
                if let Some((_, sent)) = pending && sent.elapsed() >= options.probe_timeout {
                    add(&shared.counters.probe_failures, 1);
                    tracing::warn!(node = %shared.node, "the subscription stopped delivering: reconnecting");
                    return Err(redis::RedisError::from((redis::ErrorKind::Io, "probe lost")));
                }
                if pending.is_none() && last_probe.elapsed() >= options.probe_interval {
                    probes += 1;
                    last_probe = Instant::now();
                    pending = Some((probes, last_probe));
                    let channel = options.channel_node(&shared.node);
                    let payload = shared.envelope(probes, "", "", Body::Probe).encode();
                    let connection = shared.commands.read().expect("not poisoned").clone();
                    if let Some(mut connection) = connection {
                        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                            .arg(channel)
                            .arg(&payload[..])
                            .query_async(&mut connection)
                            .await;
                        // Nobody heard it: not even this node's own subscription.
                        if !matches!(sent, Ok(n) if n > 0) {
                            add(&shared.counters.probe_failures, 1);
                            return Err(redis::RedisError::from((redis::ErrorKind::Io, "probe not heard")));
                        }
                    }
                }
            }
        }
    }
}

/// Delivers what other nodes sent to this node's sessions, in order, never waiting on them.
pub(super) async fn deliver(shared: Arc<Shared>, mut inbound: mpsc::Receiver<Envelope>) {
    let mut sequences = Sequences::default();
    let mut held = shared.held.subscribe();
    while let Some(envelope) = inbound.recv().await {
        // While delivery is held, envelopes wait in the bounded queue.
        if held.wait_for(|h| *h == 0).await.is_err() {
            return;
        }
        let local = shared.local.read().expect("not poisoned").clone();
        let Some(local) = local else { continue };
        let too_old = shared.options.max_delay + shared.options.clock_tolerance;
        let age = super::registry::now_ms().saturating_sub(envelope.sent_ms);
        if age > too_old.as_millis() as u64 && envelope.body != Body::Beacon {
            // Never late: it counts as lost (a gap once the sender's next one arrives).
            add(&shared.counters.inbound_dropped, 1);
            continue;
        }
        match envelope.body {
            Body::Broadcast(message) => {
                match sequences.broadcast(&envelope.origin, envelope.incarnation, envelope.seq) {
                    Verdict::Duplicate => add(&shared.counters.duplicates, 1),
                    Verdict::Deliver { missed } => {
                        lost(&shared, &envelope.origin, missed);
                        local.broadcast(&envelope.path, message);
                        add(&shared.counters.delivered, 1);
                    }
                }
            }
            Body::Beacon => {
                let missed = sequences.beacon(&envelope.origin, envelope.incarnation, envelope.seq);
                lost(&shared, &envelope.origin, missed);
            }
            Body::Directed(directed) => {
                if !local.directed(&envelope.path, &envelope.target, directed) {
                    add(&shared.counters.rejected, 1);
                }
            }
            Body::Probe => {}
        }
    }
}

fn lost(shared: &Shared, origin: &str, missed: u64) {
    if missed > 0 {
        add(&shared.counters.gaps, missed);
        tracing::warn!(node = %shared.node, origin, missed, "broadcasts from another node were lost");
    }
}
