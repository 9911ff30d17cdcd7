//! What an upgrade reads in the tenant database itself, logged in with the tenant's secret at
//! an endpoint RDS reported: its extensions (for the precheck), and its schema version and the
//! row count of every table (to compare green with blue).

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::super::aws::AwsContext;
use super::super::error::{Context, StepError};
use crate::tenant_db::{self, DbCredentials};

/// The tenant's master credentials from its secret, pointed at `endpoint` (the host and port in
/// the secret are for clients, never trusted).
pub async fn credentials(
    t: &AwsContext,
    tenant: &str,
    endpoint: &(String, i32),
) -> Result<DbCredentials, StepError> {
    let value = t
        .cloud
        .get_secret_value(&t.secret_name(tenant))
        .await
        .during("reading the tenant secret")?;
    let port = u16::try_from(endpoint.1).unwrap_or(5432);
    Ok(DbCredentials::from_json(&value)?.at(&endpoint.0, port))
}

async fn connect(t: &AwsContext, credentials: &DbCredentials) -> Result<PgConnection, StepError> {
    let s = &t.settings;
    Ok(tenant_db::connect(credentials, &s.tenant_db_tls, s.tenant_db_connect_timeout).await?)
}

fn query_failed(what: &str) -> impl Fn(sqlx::Error) -> StepError + '_ {
    move |e| StepError::retry("tenant_db", format!("{what}: {e}"))
}

/// The extensions installed in the tenant database.
pub async fn extensions(
    t: &AwsContext,
    credentials: &DbCredentials,
) -> Result<Vec<String>, StepError> {
    let mut conn = connect(t, credentials).await?;
    let names = sqlx::query_scalar("SELECT extname::text FROM pg_extension ORDER BY 1")
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed("listing the extensions"));
    let _ = sqlx::Connection::close(conn).await;
    names
}

/// A tenant database's schema version and the row count of each of its tables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub schema_version: i64,
    pub rows: BTreeMap<String, i64>,
}

/// Reads the inventory of the database `credentials` open (and so proves they open it).
pub async fn inventory(
    t: &AwsContext,
    credentials: &DbCredentials,
) -> Result<Inventory, StepError> {
    let s = &t.settings;
    let schema_version =
        tenant_db::schema_version(credentials, &s.tenant_db_tls, s.tenant_db_connect_timeout)
            .await?;
    let mut conn = connect(t, credentials).await?;
    let result = async {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed("listing the tables"))?;
        let mut rows = BTreeMap::new();
        for table in tables {
            // The name comes from the catalog, quoted by format('%I').
            let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut conn)
                .await
                .map_err(query_failed("counting rows"))?;
            rows.insert(table, count);
        }
        Ok::<_, StepError>(rows)
    }
    .await;
    let _ = sqlx::Connection::close(conn).await;
    Ok(Inventory {
        schema_version,
        rows: result?,
    })
}

/// What differs between green and blue, in a sentence; `None` when they agree. Blue is read
/// before and after green: while people write to blue, green (replicating) agrees when each of
/// its counts lies between blue's two (on a quiet table: equals them).
pub fn difference(before: &Inventory, green: &Inventory, after: &Inventory) -> Option<String> {
    let mut parts = Vec::new();
    if before.schema_version != green.schema_version || after.schema_version != green.schema_version
    {
        parts.push(format!(
            "schema version {} on blue, {} on green",
            after.schema_version, green.schema_version
        ));
    }
    for (table, count) in &after.rows {
        let earlier = before.rows.get(table).copied().unwrap_or(*count);
        let (low, high) = (earlier.min(*count), earlier.max(*count));
        match green.rows.get(table) {
            None => parts.push(format!("table {table} missing on green")),
            Some(g) if !(low..=high).contains(g) => {
                parts.push(format!("table {table}: {count} rows on blue, {g} on green"))
            }
            Some(_) => {}
        }
    }
    for table in green.rows.keys().filter(|t| !after.rows.contains_key(*t)) {
        parts.push(format!("table {table} only on green"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(version: i64, rows: &[(&str, i64)]) -> Inventory {
        Inventory {
            schema_version: version,
            rows: rows.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn green_equal_to_blue_has_no_difference_and_each_difference_is_named() {
        let blue = inv(3, &[("public.notes", 10), ("public.users", 2)]);
        assert_eq!(difference(&blue, &blue, &blue), None);
        // Written to meanwhile: green between blue's two looks agrees.
        let later = inv(3, &[("public.notes", 14), ("public.users", 2)]);
        let between = inv(3, &[("public.notes", 12), ("public.users", 2)]);
        assert_eq!(difference(&blue, &between, &later), None);
        let green = inv(2, &[("public.notes", 9), ("public.extra", 0)]);
        let d = difference(&blue, &green, &blue).unwrap();
        assert!(d.contains("schema version 3 on blue, 2 on green"), "{d}");
        assert!(
            d.contains("public.notes: 10 rows on blue, 9 on green"),
            "{d}"
        );
        assert!(d.contains("public.users missing on green"), "{d}");
        assert!(d.contains("public.extra only on green"), "{d}");
    }
}
