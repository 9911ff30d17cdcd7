//! Electing the maintenance leader: the process holding a session advisory lock in the control
//! database. Every process tries for the lock at each election; the winner begins a new
//! [`Term`] (the leadership epoch goes up) and confirms, at each election, that its session
//! still holds the lock.
//!
//! A leader must not go on believing it leads after another process took over. So:
//! - the lock session asks the server to end it once it has not heard from the leader for its
//!   hold, twice `TENANTD_LEASE` (`idle_session_timeout`; TCP keepalives and `tcp_user_timeout`
//!   for a peer that vanished from the network), and the lock goes with the session. Twice, so
//!   that a leader whose process is starved of CPU for a moment (confirming every third of a
//!   lease) keeps its lock;
//! - the leader confirms its lock with a ping that must answer within
//!   `TENANTD_LEADER_PING_TIMEOUT` (so a partitioned leader learns within a lease), and in any
//!   case stops leading the hold (less `TENANTD_LEASE_MARGIN`) after its last confirmation was
//!   sent, before the server can have freed the lock. Stopping cancels the term: the rounds in
//!   progress are dropped at once;
//! - its services write through [`Term::fence`], refused once a later term has begun.
//!
//! When the leader's process dies its session and lock go with it, and another process takes
//! over at its next election.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::service::{RoundError, Service};
use super::term::{self, Limits, Term};
use crate::config::WorkerSettings;

/// The advisory lock whose holder leads ("tenantd" in ASCII; the instance poller of earlier
/// releases elected itself on the same lock, so one process polls during a rolling upgrade).
const LEADER_LOCK: i64 = 0x0074_656e_616e_7464;

/// How the election runs.
#[derive(Debug, Clone, Copy)]
pub struct Election {
    /// How often a process tries for the lock, and the leader confirms it.
    pub every: Duration,
    /// The server ends a lock session it has not heard from for this long, freeing the lock.
    pub hold: Duration,
    /// A leader stops this long before the server could have freed its lock.
    pub margin: Duration,
    /// Longest wait for a confirmation of the lock.
    pub ping_timeout: Duration,
    /// How long the server lets a leader's fenced transaction be.
    pub limits: Limits,
}

impl Election {
    /// From the worker's settings: every third of a lease (0.1-5 s), so that a dead leader is
    /// replaced about as fast as its jobs' leases expire, and a partitioned one within two
    /// leases and a third.
    pub fn of(worker: &WorkerSettings) -> Self {
        Election {
            every: (worker.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(5)),
            hold: worker.lease * 2,
            margin: worker.lease_margin,
            ping_timeout: worker.leader_ping_timeout,
            limits: Limits::for_lease(worker.lease),
        }
    }

    /// How long after a confirmation was sent the leader may go on without another: the hold
    /// less the margin, at least half the hold.
    fn keep(&self) -> Duration {
        self.hold.saturating_sub(self.margin).max(self.hold / 2)
    }
}

/// The lock session and, while this process leads, its term and when its lock was last
/// confirmed (the confirmation's sending).
#[derive(Default)]
struct Seat {
    session: Option<PgConnection>,
    term: Option<(Term, Instant)>,
}

/// Holds or competes for the lock until `stop`, publishing this process's term while it leads.
/// `me` names the process in logs and in the term's record.
pub async fn elect(
    pool: PgPool,
    me: String,
    election: Election,
    leading: watch::Sender<Option<Term>>,
    stop: CancellationToken,
) {
    let mut seat = Seat::default();
    loop {
        match seat.term.take() {
            Some((term, confirmed)) => {
                let sent = Instant::now();
                let left = (confirmed + election.keep()).saturating_duration_since(sent);
                let limit = election.ping_timeout.min(left);
                match tokio::time::timeout(limit, confirm(seat.session.as_mut())).await {
                    Ok(Ok(true)) => seat.term = Some((term, sent)),
                    failed => {
                        let why = match failed {
                            Ok(Ok(_)) => "the lock session no longer holds the lock".to_string(),
                            Ok(Err(e)) => format!("the lock session failed: {e}"),
                            Err(_) => format!("no confirmation of the lock within {limit:?}"),
                        };
                        step_down(&me, &term, &why, &leading);
                        // Closing the session frees the lock as soon as the server hears of it.
                        seat.session = None;
                    }
                }
            }
            None => match tokio::time::timeout(
                election.ping_timeout,
                try_lead(&pool, &mut seat.session, &election),
            )
            .await
            {
                Ok(Ok(true)) => {
                    // The term is raised on the lock session; it may wait for the fenced
                    // writes of a deposed leader (which the server ends). The session is busy
                    // meanwhile, not idle: the lock is safe until a hold after this is sent.
                    let conn = seat.session.as_mut().expect("the session that won");
                    let sent = Instant::now();
                    let began = tokio::time::timeout(
                        election.limits.wait() + election.ping_timeout,
                        term::begin(conn, &me),
                    )
                    .await;
                    match began {
                        Ok(Ok(epoch)) => {
                            let term = Term::new(epoch, election.limits);
                            info!(leader = %me, epoch, "this process now leads maintenance");
                            crate::metrics::record_leadership(true);
                            leading.send_replace(Some(term.clone()));
                            seat.term = Some((term, sent));
                        }
                        failed => {
                            warn!(error = ?failed, "could not begin a leadership term; trying again");
                            seat.session = None;
                        }
                    }
                }
                Ok(Ok(false)) => {}
                failed => {
                    warn!(error = ?failed, "leader election failed; trying again");
                    seat.session = None;
                }
            },
        }
        crate::metrics::record_leadership(seat.term.is_some());
        // The next election; a leader wakes for its deadline if that comes first.
        let wait = match &seat.term {
            Some((_, confirmed)) => election
                .every
                .min((*confirmed + election.keep()).saturating_duration_since(Instant::now())),
            None => election.every,
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if let Some((term, _)) = seat.term.take() {
        term.end();
    }
    leading.send_replace(None);
    crate::metrics::record_leadership(false);
    if let Some(conn) = seat.session {
        let _ = tokio::time::timeout(election.ping_timeout, conn.close()).await;
    }
}

/// Runs one round of `service` as the leader, outside the daemon (tools, tests): takes the lock
/// (refused while another process leads), begins a term, runs the round in it, and gives the lock
/// back.
pub async fn lead_once(pool: &PgPool, me: &str, service: &dyn Service) -> Result<(), RoundError> {
    let mut session = pool.acquire().await?.detach();
    let won: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut session)
        .await?;
    if !won {
        return Err("another process leads maintenance".into());
    }
    let epoch = term::begin(&mut session, me).await?;
    let term = Term::new(epoch, Limits::for_lease(Duration::from_secs(30)));
    let round = service.lead(&term).await;
    term.end();
    session.close().await?;
    round
}

/// Ends this process's term: its rounds are dropped at once, then the others learn of it.
fn step_down(me: &str, term: &Term, why: &str, leading: &watch::Sender<Option<Term>>) {
    term.end();
    crate::metrics::record_leadership(false);
    leading.send_replace(None);
    warn!(leader = %me, epoch = term.epoch(), reason = why, "this process no longer leads maintenance");
}

/// Tries for the lock on the lock session (opened and set up first if there is none); whether it
/// won.
async fn try_lead(
    pool: &PgPool,
    session: &mut Option<PgConnection>,
    election: &Election,
) -> Result<bool, sqlx::Error> {
    if session.is_none() {
        let mut conn = pool.acquire().await?.detach();
        configure(&mut conn, election).await?;
        *session = Some(conn);
    }
    let conn = session.as_mut().expect("just set");
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut *conn)
        .await
}

/// Asks the server to end the lock session, and so free the lock, once it has not heard from
/// this process for its hold: `idle_session_timeout` (PostgreSQL 14 and later) for a leader that
/// stopped pinging, TCP keepalives and `tcp_user_timeout` for one gone from the network. Settings
/// the server does not know are left out.
async fn configure(conn: &mut PgConnection, election: &Election) -> Result<(), sqlx::Error> {
    let hold_ms = election.hold.as_millis().max(1).to_string();
    let probe_s = election.hold.as_secs().div_ceil(3).max(1).to_string();
    // A new term may wait for a deposed leader's fenced transactions, which the server ends.
    let statement_ms = election.limits.wait().as_millis().to_string();
    sqlx::query(
        "SELECT set_config(s.name, s.value, false)
         FROM (VALUES ('idle_session_timeout', $1), ('tcp_user_timeout', $1),
                      ('tcp_keepalives_idle', $2), ('tcp_keepalives_interval', $2),
                      ('tcp_keepalives_count', '3'), ('statement_timeout', $3)) AS s(name, value)
         WHERE s.name IN (SELECT name FROM pg_settings)",
    )
    .bind(&hold_ms)
    .bind(&probe_s)
    .bind(&statement_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether the lock session still holds the lock.
async fn confirm(session: Option<&mut PgConnection>) -> Result<bool, sqlx::Error> {
    let Some(conn) = session else {
        return Ok(false);
    };
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND pid = pg_backend_pid() AND objsubid = 1
             AND classid::bigint = ($1 >> 32) AND objid::bigint = ($1 & 4294967295))",
    )
    .bind(LEADER_LOCK)
    .fetch_one(conn)
    .await
}
