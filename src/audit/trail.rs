//! A request's audit trail: who asked, from where, and what the request turned out to be about
//! (learnt as it goes, like a span's fields). The function that makes the change writes the
//! row in its transaction ([`commit`]); a request that ends any other way (a refusal, a replay
//! that changed nothing, a failure after which the transaction rolled back) has its row written
//! once answered ([`Trail::finish`]). Either way: one row per request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::config::Role;
use crate::store::audit::{Channel, Entry, insert};
use crate::store::events::{self, NewEvent};

#[derive(Debug, Default)]
struct Inner {
    entry: Mutex<Entry>,
    /// The row went in with a transaction that committed.
    committed: AtomicBool,
}

/// Cheap to clone; every clone is the same request's trail.
#[derive(Debug, Clone, Default)]
pub struct Trail(Arc<Inner>);

impl Trail {
    pub fn new(entry: Entry) -> Self {
        Trail(Arc::new(Inner {
            entry: Mutex::new(entry),
            committed: AtomicBool::new(false),
        }))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Entry) -> T) -> T {
        f(&mut self.0.entry.lock().expect("trail lock"))
    }

    /// Who asked: a token's name and role (a failed authentication may know a name only).
    pub fn token(&self, name: Option<&str>, role: Option<Role>) {
        self.with(|e| {
            e.token_name = name.map(str::to_string);
            e.role = role;
        });
    }

    /// The request is about this tenant.
    pub fn tenant(&self, id: &str) {
        self.with(|e| e.tenant_id = Some(id.to_string()));
    }

    pub fn rollout(&self, id: Uuid) {
        self.with(|e| e.rollout_id = Some(id));
    }

    pub fn job(&self, id: Uuid) {
        self.with(|e| e.job_id = Some(id));
    }

    /// Who asked: the token's name and role, and the channel.
    pub fn asker(&self) -> (Option<String>, Option<Role>, Channel) {
        self.with(|e| (e.token_name.clone(), e.role, e.channel))
    }

    /// "by <token> (<role>) through the <channel>", for notes in a job's history.
    pub fn by(&self) -> String {
        let (name, role, channel) = self.asker();
        format!(
            "by {} ({}) through the {}",
            name.as_deref().unwrap_or("an unknown caller"),
            role.map(Role::as_str).unwrap_or("no role"),
            match channel {
                Channel::Api => "API",
                Channel::Cli => "CLI",
                Channel::Console => "console",
            }
        )
    }

    pub fn entry(&self) -> Entry {
        self.with(|e| e.clone())
    }

    /// Whether the row is in the database with the change.
    pub fn committed(&self) -> bool {
        self.0.committed.load(Ordering::Acquire)
    }

    /// Writes the row with `status` in the caller's transaction.
    pub async fn write(&self, conn: &mut PgConnection, status: u16) -> Result<(), sqlx::Error> {
        let entry = self.with(|e| {
            e.status = status;
            e.code = None;
            e.clone()
        });
        insert(conn, &entry).await
    }

    /// Once the request is answered with `status` (and `code`, for a refusal): writes the row
    /// unless it went in with the change. A failure is logged: the answer has gone already.
    pub async fn finish(&self, pool: &PgPool, status: u16, code: Option<&str>) {
        if self.committed() {
            return;
        }
        let entry = self.with(|e| {
            e.status = status;
            e.code = code.map(str::to_string);
            e.clone()
        });
        if let Err(e) = insert(pool, &entry).await {
            tracing::error!(error = %e, request_id = %entry.request_id, "audit event not written");
        }
    }
}

/// Commits `tx` with the trail's row in it (answered `status`), when there is a trail.
pub async fn commit(
    tx: Transaction<'_, Postgres>,
    trail: Option<&Trail>,
    status: u16,
) -> Result<(), sqlx::Error> {
    commit_with(tx, trail, status, &[]).await
}

/// [`commit`] with the change's lifecycle events, written last (they take the events' lock
/// until the commit).
pub async fn commit_with(
    mut tx: Transaction<'_, Postgres>,
    trail: Option<&Trail>,
    status: u16,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    if let Some(t) = trail {
        t.write(&mut tx, status).await?;
    }
    events::record(&mut tx, events).await?;
    tx.commit().await?;
    if let Some(t) = trail {
        t.0.committed.store(true, Ordering::Release);
    }
    Ok(())
}
