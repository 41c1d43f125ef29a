//! Versioned schema migrations, applied when a store opens.
//!
//! `schema_migrations` lists the versions applied. Each migration runs once, in its
//! own transaction together with its row there, so a crash leaves it applied whole or
//! not at all. Servers starting at the same time on one database take turns through
//! an advisory lock held by each of those transactions.

use deadpool_postgres::Object;

/// One step of the schema.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first. Never edit one that was released: add another.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "documents, chunks, sync states, meta and the change log",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "the store's origin, to notice a restore",
        sql: include_str!("migrations/0002_store_origin.sql"),
    },
];

/// The advisory lock that serialises migrations ("coachsyn" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_6163_6873_796e;

/// The newest schema version this build knows.
pub(super) fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Apply the migrations the database lacks. Refuses a database migrated by a newer
/// coachsync, whose tables this build may misread.
pub(super) async fn migrate(client: &mut Object) -> Result<(), String> {
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| e.to_string())?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(|e| format!("creating schema_migrations: {e}"))?;
    tx.commit().await.map_err(|e| e.to_string())?;

    for migration in MIGRATIONS {
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| e.to_string())?;
        let newest: Option<i32> = tx
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        if let Some(newest) = newest
            && newest > latest_version()
        {
            return Err(format!(
                "the database's schema is at version {newest}, newer than this coachsync knows ({}): run a newer coachsync",
                latest_version()
            ));
        }
        let applied = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&migration.version],
            )
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if applied {
            continue;
        }
        tx.batch_execute(migration.sql).await.map_err(|e| {
            format!(
                "schema migration {} ({}): {e}",
                migration.version, migration.name
            )
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "database schema migrated"
        );
    }
    Ok(())
}
