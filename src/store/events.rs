//! The `events` table, the transactional outbox of lifecycle events: [`record`] writes a
//! change's events in the change's own transaction, [`page`] reads them in id order for the
//! stream and the senders, [`prune`] drops the old ones. Ids increase in commit order (see
//! [`record`]), so a reader that pages `id > last` misses nothing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::tenants::Tenant;

/// The `pg_advisory_xact_lock` key every event writer holds while it draws its ids and until
/// it commits ("tenantd" + "ev" in ASCII).
pub const LOCK_KEY: i64 = 0x7465_6e61_6e74_6576;

/// The `LISTEN` channel [`record`] notifies on commit (payload: the largest id written).
pub const CHANNEL: &str = "tenantd_events";

/// What happened. The wire name (`tenantd.tenant.ready`, ...) is the CloudEvents `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    TenantRequested,
    TenantReady,
    TenantFailed,
    TenantTierChanged,
    TenantSuspended,
    TenantResumed,
    TenantDriftFound,
    TenantDriftRepaired,
    TenantLost,
    TenantDeleted,
    JobFailed,
    RolloutStarted,
    RolloutHalted,
    RolloutSucceeded,
    PoolClaimed,
}

impl EventType {
    /// Every type, in the order above.
    pub const ALL: [EventType; 15] = [
        EventType::TenantRequested,
        EventType::TenantReady,
        EventType::TenantFailed,
        EventType::TenantTierChanged,
        EventType::TenantSuspended,
        EventType::TenantResumed,
        EventType::TenantDriftFound,
        EventType::TenantDriftRepaired,
        EventType::TenantLost,
        EventType::TenantDeleted,
        EventType::JobFailed,
        EventType::RolloutStarted,
        EventType::RolloutHalted,
        EventType::RolloutSucceeded,
        EventType::PoolClaimed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TenantRequested => "tenantd.tenant.requested",
            EventType::TenantReady => "tenantd.tenant.ready",
            EventType::TenantFailed => "tenantd.tenant.failed",
            EventType::TenantTierChanged => "tenantd.tenant.tier_changed",
            EventType::TenantSuspended => "tenantd.tenant.suspended",
            EventType::TenantResumed => "tenantd.tenant.resumed",
            EventType::TenantDriftFound => "tenantd.tenant.drift_found",
            EventType::TenantDriftRepaired => "tenantd.tenant.drift_repaired",
            EventType::TenantLost => "tenantd.tenant.lost",
            EventType::TenantDeleted => "tenantd.tenant.deleted",
            EventType::JobFailed => "tenantd.job.failed",
            EventType::RolloutStarted => "tenantd.rollout.started",
            EventType::RolloutHalted => "tenantd.rollout.halted",
            EventType::RolloutSucceeded => "tenantd.rollout.succeeded",
            EventType::PoolClaimed => "tenantd.pool.claimed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One event to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventType,
    /// What it is about: the tenant's id, the job's or the rollout's.
    pub subject: String,
    /// The tenant it concerns, if any (the stream's `tenant` filter).
    pub tenant_id: Option<String>,
    /// Public fields only: never a password or a secret's value.
    pub data: serde_json::Value,
}

impl NewEvent {
    /// An event about a tenant: the subject is the tenant's id.
    pub fn tenant(kind: EventType, tenant_id: &str, data: serde_json::Value) -> Self {
        NewEvent {
            kind,
            subject: tenant_id.to_string(),
            tenant_id: Some(tenant_id.to_string()),
            data,
        }
    }
}

/// The `data` of a tenant's events: its public fields (never its secret's ARN or a password).
pub fn tenant_data(tenant: &Tenant) -> serde_json::Value {
    let endpoint = match (&tenant.endpoint_host, tenant.endpoint_port) {
        (Some(host), Some(port)) => json!({"host": host, "port": port}),
        _ => serde_json::Value::Null,
    };
    json!({
        "id": tenant.id,
        "tier": tenant.tier,
        "status": tenant.status.as_str(),
        "engine_version": tenant.engine_version,
        "endpoint": endpoint,
        "schema_version": tenant.schema_version,
        "storage_gib": tenant.storage_gib,
        "pending_tier": tenant.pending_tier,
        "from_pool": tenant.from_pool,
        "note": tenant.note,
        "error": tenant.error,
        "created_at": tenant.created_at,
        "updated_at": tenant.updated_at,
    })
}

impl NewEvent {
    /// An event about `tenant` as it is now, with its public fields as `data`.
    pub fn about(kind: EventType, tenant: &Tenant) -> Self {
        NewEvent::tenant(kind, &tenant.id, tenant_data(tenant))
    }

    /// [`NewEvent::about`] with `extra`'s fields added to `data`.
    pub fn about_with(kind: EventType, tenant: &Tenant, extra: serde_json::Value) -> Self {
        let mut event = NewEvent::about(kind, tenant);
        if let (Some(data), serde_json::Value::Object(extra)) = (event.data.as_object_mut(), extra)
        {
            data.extend(extra);
        }
        event
    }
}

/// The `data` of a rollout's events: what it moves to, how, and why it stopped.
pub fn rollout_data(rollout: &super::rollouts::Rollout) -> serde_json::Value {
    json!({
        "id": rollout.id,
        "kind": rollout.kind,
        "target_version": rollout.target_version,
        "target": rollout.target,
        "apply": rollout.apply,
        "state": rollout.state.as_str(),
        "stages": rollout.stages.0,
        "canary": rollout.canary,
        "concurrency": rollout.concurrency,
        "max_failures": rollout.max_failures,
        "reason": rollout.reason,
    })
}

impl NewEvent {
    /// An event about `rollout` (its subject: the rollout's id; no tenant).
    pub fn rollout(kind: EventType, rollout: &super::rollouts::Rollout) -> Self {
        NewEvent {
            kind,
            subject: rollout.id.to_string(),
            tenant_id: None,
            data: rollout_data(rollout),
        }
    }
}

/// Records `kind` about the tenant `id` as its row is now in `conn`'s transaction (nothing when
/// there is no such tenant). Like [`record`], the transaction's last statements.
pub async fn record_about(
    conn: &mut PgConnection,
    kind: EventType,
    id: &str,
    extra: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let Some(tenant) = super::tenants::get(&mut *conn, id).await? else {
        return Ok(());
    };
    record(conn, &[NewEvent::about_with(kind, &tenant, extra)]).await
}

/// One event as read back. `kind` is a string: a newer version's types read as they are.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub tenant_id: Option<String>,
    pub time: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl Event {
    /// The event's type, when this version knows it.
    pub fn event_type(&self) -> Option<EventType> {
        self.kind.parse().ok()
    }
}

/// Which events to read: of these types (all when empty), about this tenant (any when none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub types: Vec<EventType>,
    pub tenant: Option<String>,
}

/// Writes `events` (in this order) in `conn`'s transaction. It must be the transaction's last
/// statement before its commit: it takes the advisory lock [`LOCK_KEY`], which the transaction
/// holds until it ends, and only then draws the ids, so ids increase in commit order. It also
/// notifies [`CHANNEL`], delivered when (and only if) the transaction commits.
pub async fn record(conn: &mut PgConnection, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    let tenants: Vec<Option<&str>> = events.iter().map(|e| e.tenant_id.as_deref()).collect();
    let data: Vec<&serde_json::Value> = events.iter().map(|e| &e.data).collect();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "WITH written AS (
             INSERT INTO events (id, type, subject, tenant_id, data)
             SELECT nextval('events_id_seq'), k, s, t, d
             FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
                       WITH ORDINALITY AS u(k, s, t, d, n)
                   ORDER BY n) ordered
             RETURNING id)
         SELECT pg_notify($5, max(id)::text) FROM written",
    )
    .bind(&kinds)
    .bind(&subjects)
    .bind(&tenants)
    .bind(&data)
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Up to `limit` events with ids above `after`, in id order.
pub async fn page(
    executor: impl PgExecutor<'_>,
    after: i64,
    filter: &EventFilter,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let types: Vec<&str> = filter.types.iter().map(|t| t.as_str()).collect();
    sqlx::query_as(
        "SELECT id, type, subject, tenant_id, time, data FROM events
         WHERE id > $1
           AND (cardinality($2::text[]) = 0 OR type = ANY($2))
           AND ($3::text IS NULL OR tenant_id = $3)
         ORDER BY id
         LIMIT $4",
    )
    .bind(after)
    .bind(&types)
    .bind(&filter.tenant)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// The largest id written so far (0 when there is none): where a reader that wants only new
/// events starts.
pub async fn last_id(executor: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
        .fetch_one(executor)
        .await
}

/// Deletes the events older than `before`; returns how many.
pub async fn prune(
    executor: impl PgExecutor<'_>,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    prune_some(executor, before, i64::MAX).await
}

/// Deletes up to `batch` of the oldest events older than `before`; returns how many.
pub async fn prune_some(
    executor: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM events WHERE id IN (
             SELECT id FROM events WHERE time < $1 ORDER BY time LIMIT $2
             FOR UPDATE SKIP LOCKED)",
    )
    .bind(before)
    .bind(batch)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert!(t.as_str().starts_with("tenantd."));
        }
        assert_eq!(
            "tenantd.tenant.nope".parse::<EventType>(),
            Err(UnknownEventType("tenantd.tenant.nope".into()))
        );
    }
}
