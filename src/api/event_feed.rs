//! What wakes the event streams: one `LISTEN` connection per server on the channel the events'
//! writers notify on commit, its latest id shared with every stream through a watch channel,
//! and the streams themselves (read from the `events` table, never from the notification: a
//! missed notification delays an event by the fallback poll at most, it loses nothing).

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::response::sse::Event as SseEvent;
use futures::Stream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::events::{self, EventFilter};
use crate::wire::events::CloudEvent;

/// How often a stream looks for events when no notification came (a lost `LISTEN`
/// connection, a notification missed while it reconnected).
pub const FALLBACK_POLL: Duration = Duration::from_secs(2);
/// Events a stream reads at once.
const BATCH: i64 = 200;

/// The streams' shared wake-up. Cheap to clone.
#[derive(Clone)]
pub struct EventFeed {
    db: PgPool,
    /// The CloudEvents `source`'s environment.
    environment: Arc<str>,
    latest: watch::Sender<i64>,
    listening: Arc<OnceLock<()>>,
    /// Ends every stream (the server is shutting down: it waits for open connections).
    stop: CancellationToken,
}

impl EventFeed {
    pub fn new(db: PgPool, environment: &str, stop: CancellationToken) -> Self {
        EventFeed {
            db,
            environment: environment.into(),
            latest: watch::Sender::new(0),
            listening: Arc::default(),
            stop,
        }
    }

    /// The CloudEvents document of `event` from this server.
    pub fn document(&self, event: &events::Event) -> CloudEvent {
        CloudEvent::new(event, &self.environment)
    }

    /// A receiver woken by every commit of events; the first call starts the listener.
    fn subscribe(&self) -> watch::Receiver<i64> {
        self.listening.get_or_init(|| {
            tokio::spawn(listen(
                self.db.clone(),
                self.latest.clone(),
                self.stop.clone(),
            ));
        });
        self.latest.subscribe()
    }

    /// The events after `after` that pass `filter`, as Server-Sent Events (`id:` the event's
    /// id, `data:` its CloudEvents document), then each new one as it commits, until the
    /// client goes or the server stops.
    pub fn stream(
        &self,
        after: i64,
        filter: EventFilter,
    ) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> + Send + 'static {
        let state = Streaming {
            feed: self.clone(),
            wake: self.subscribe(),
            cursor: after,
            filter,
            ready: VecDeque::new(),
        };
        futures::stream::unfold(state, |mut s| async move {
            let event = s.next().await?;
            let sse = SseEvent::default()
                .id(event.id.to_string())
                .json_data(s.feed.document(&event))
                .expect("a CloudEvent serializes");
            Some((Ok(sse), s))
        })
    }
}

/// One stream's position.
struct Streaming {
    feed: EventFeed,
    wake: watch::Receiver<i64>,
    cursor: i64,
    filter: EventFilter,
    ready: VecDeque<events::Event>,
}

impl Streaming {
    /// The next event; `None` ends the stream.
    async fn next(&mut self) -> Option<events::Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.cursor = event.id;
                return Some(event);
            }
            // Marked seen before the read: a commit after it wakes the wait below.
            self.wake.borrow_and_update();
            match events::page(&self.feed.db, self.cursor, &self.filter, BATCH).await {
                Ok(page) if !page.is_empty() => {
                    self.ready.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    // The client reconnects with Last-Event-ID and misses nothing.
                    tracing::warn!(error = %e, "an event stream ends: reading events failed");
                    return None;
                }
            }
            tokio::select! {
                _ = self.feed.stop.cancelled() => return None,
                changed = self.wake.changed() => if changed.is_err() { return None },
                _ = tokio::time::sleep(FALLBACK_POLL) => {}
            }
        }
    }
}

/// Listens on the events' channel until `stop`, reconnecting after a failure.
async fn listen(db: PgPool, latest: watch::Sender<i64>, stop: CancellationToken) {
    loop {
        let mut listener = match PgListener::connect_with(&db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listening for events failed; streams poll");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(FALLBACK_POLL) => continue,
                }
            }
        };
        if let Err(e) = listener.listen(events::CHANNEL).await {
            tracing::warn!(error = %e, "listening for events failed; streams poll");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(FALLBACK_POLL) => continue,
            }
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(n)) => {
                        let id = n.payload().parse().unwrap_or(0);
                        latest.send_modify(|l| *l = id.max(*l + 1));
                    }
                    // The connection was lost (and notifications with it): wake every stream
                    // to read, then listen again.
                    Ok(None) | Err(_) => {
                        latest.send_modify(|l| *l += 1);
                        break;
                    }
                },
            }
        }
    }
}
