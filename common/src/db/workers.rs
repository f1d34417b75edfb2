//! Running workers and the plugins each has loaded.
//!
//! A worker rewrites its plugin list whenever it changes and refreshes `last_seen` on a
//! heartbeat. Readers count only workers seen within a freshness window, so a crashed worker's
//! plugins drop out of `GET /plugins` by themselves.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::DbError;

/// One loaded plugin, as a worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub detects: Vec<String>,
    pub description: String,
    pub is_default: bool,
    pub loaded_at: DateTime<Utc>,
}

/// Replaces a worker's plugin rows in PostgreSQL and marks the worker alive.
pub async fn publish(
    pool: &Pool,
    worker_id: &str,
    hostname: &str,
    started_at: DateTime<Utc>,
    plugins: &[LoadedPlugin],
) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO workers (worker_id, hostname, started_at, last_seen) VALUES ($1, $2, $3, now()) \
         ON CONFLICT (worker_id) DO UPDATE SET last_seen = now()",
        &[&worker_id, &hostname, &started_at],
    )
    .await?;
    tx.execute(
        "DELETE FROM worker_plugins WHERE worker_id = $1",
        &[&worker_id],
    )
    .await?;
    for plugin in plugins {
        tx.execute(
            "INSERT INTO worker_plugins \
               (worker_id, name, version, sha256, detects, description, is_default, loaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &worker_id,
                &plugin.name,
                &plugin.version,
                &plugin.sha256,
                &plugin.detects,
                &plugin.description,
                &plugin.is_default,
                &plugin.loaded_at,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks a worker alive. Returns false if its row is gone, so the caller can publish again.
pub async fn heartbeat(pool: &Pool, worker_id: &str) -> Result<bool, DbError> {
    let client = pool.get().await?;
    let updated = client
        .execute(
            "UPDATE workers SET last_seen = now() WHERE worker_id = $1",
            &[&worker_id],
        )
        .await?;
    Ok(updated > 0)
}

/// Removes a worker that is shutting down.
pub async fn remove(pool: &Pool, worker_id: &str) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute("DELETE FROM workers WHERE worker_id = $1", &[&worker_id])
        .await?;
    Ok(())
}

/// A plugin available on at least one live worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvailablePlugin {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub detects: Vec<String>,
    pub description: String,
    /// Whether some live worker runs it for jobs that name no plugin.
    pub is_default: bool,
    /// How many live workers have this version loaded.
    pub workers: i64,
}

/// Lists plugins loaded by workers seen within the last `fresh_secs` seconds.
pub async fn available(pool: &Pool, fresh_secs: f64) -> Result<Vec<AvailablePlugin>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT p.name, p.version, p.sha256, p.detects, p.description, \
                    bool_or(p.is_default), count(*) \
             FROM worker_plugins p JOIN workers w USING (worker_id) \
             WHERE w.last_seen > now() - make_interval(secs => $1) \
             GROUP BY p.name, p.version, p.sha256, p.detects, p.description \
             ORDER BY p.name, p.version",
            &[&fresh_secs],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| AvailablePlugin {
            name: row.get(0),
            version: row.get(1),
            sha256: row.get(2),
            detects: row.get(3),
            description: row.get(4),
            is_default: row.get(5),
            workers: row.get(6),
        })
        .collect())
}
