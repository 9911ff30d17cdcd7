//! The control schema, migrated once per run of the suite into a template database: each test's
//! database is a copy of it (`CREATE DATABASE ... TEMPLATE`), quicker than running every
//! migration again in each of the suite's tests (each a process of its own).

use std::hash::{DefaultHasher, Hash, Hasher};

use secrecy::SecretString;
use sqlx::PgConnection;

use super::with_database;

/// The template's name for this set of migrations: a changed or added migration gets a new one.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    for m in sqlx::migrate!("./state-migrations").iter() {
        (m.version, &m.checksum[..]).hash(&mut hasher);
    }
    format!("schema_template_{:016x}", hasher.finish())
}

/// Creates the template if no test of this run has yet (under an advisory lock, so that one
/// process builds it while the others wait) and returns its name.
pub async fn template(admin: &mut PgConnection, control_url: &str) -> String {
    let name = template_name();
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&name)
        .execute(&mut *admin)
        .await
        .expect("lock the schema template");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut *admin)
            .await
            .expect("look for the schema template");
    if !exists {
        // Built under another name and renamed when complete: a test process killed half-way
        // leaves no half-migrated template behind.
        let building = format!("{name}_building");
        for sql in [
            format!("DROP DATABASE IF EXISTS {building}"),
            format!("CREATE DATABASE {building}"),
        ] {
            sqlx::query(&sql)
                .execute(&mut *admin)
                .await
                .expect("create the schema template");
        }
        let url = with_database(control_url, &building);
        let pool = tenantd::db::connect(&SecretString::from(url), 1)
            .await
            .expect("connect to the schema template");
        tenantd::db::migrate(&pool).await.expect("migrate");
        pool.close().await;
        // The server ends a closed connection's session a moment after the client has gone,
        // and a rename needs the database to itself: wait until no client's session is left on
        // it (an autovacuum worker visiting the new database is ended by the rename itself).
        // A session the pool left behind (seen idle after the migrator's advisory unlock, its
        // connection no longer the pool's to close) is ended here: the migrations are complete.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut looked = 0u32;
        loop {
            let sessions: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND backend_type = 'client backend'",
            )
            .bind(&building)
            .fetch_one(&mut *admin)
            .await
            .expect("count the schema template's sessions");
            if sessions == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sessions} sessions still on {building} after 30 s"
            );
            looked += 1;
            if looked.is_multiple_of(50) {
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = $1 AND backend_type = 'client backend'",
                )
                .bind(&building)
                .execute(&mut *admin)
                .await
                .expect("end the sessions left on the schema template");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // No connections to it from now on: a copy needs the template to itself.
        for sql in [
            format!("ALTER DATABASE {building} RENAME TO {name}"),
            format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"),
        ] {
            sqlx::query(&sql)
                .execute(&mut *admin)
                .await
                .expect("finish the schema template");
        }
    }
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&name)
        .execute(&mut *admin)
        .await
        .expect("unlock the schema template");
    name
}
