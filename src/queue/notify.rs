//! Wake-ups: a LISTEN on the queue's channel turns every enqueue, rescue, release and cancel into
//! an immediate claim attempt. Notifications can be lost (a reconnect drops them), so the worker
//! also polls; this only makes the common case fast.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channel the control schema's triggers and the queue's statements notify.
pub const CHANNEL: &str = "tenantd_jobs";

/// Listens on [`CHANNEL`] until `stop`, waking `wake` on every notification and after every
/// reconnect (notifications sent while disconnected are gone).
pub async fn listen(
    pool: PgPool,
    wake: Arc<Notify>,
    stop: CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => wake.notify_one(),
                    // The connection dropped and was re-established: we may have missed some.
                    Ok(None) => wake.notify_one(),
                    Err(e) => {
                        tracing::warn!(error = %e, "queue listener lost its connection");
                        wake.notify_one();
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                },
            }
        }
    });
    Ok(())
}
