//! Publishes the plugins this worker has loaded to PostgreSQL.
//!
//! The list is rewritten whenever the registry changes and on a heartbeat, so the API can list
//! the plugins of live workers and reject jobs that name a plugin none of them has.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use rfo_common::db::workers::{self, LoadedPlugin};

use crate::config::WorkerConfig;
use crate::plugin::Registry;

/// How often a worker refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

pub struct Presence {
    pool: Pool,
    task: tokio::task::JoinHandle<()>,
}

/// Publishes the registry now and after every change or heartbeat.
pub fn spawn(pool: Pool, registry: Arc<Registry>, config: &WorkerConfig) -> Presence {
    let worker_id = config.worker_id.clone();
    let hostname = config.hostname.clone();
    let started_at = Utc::now();
    let task_pool = pool.clone();
    let task = tokio::spawn(async move {
        let mut changes = registry.subscribe();
        loop {
            publish(&task_pool, &registry, &worker_id, &hostname, started_at).await;
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
    });
    Presence { pool, task }
}

impl Presence {
    /// Stops publishing and removes the worker, so its plugins stop counting at once.
    pub async fn stop(self, worker_id: &str) {
        self.task.abort();
        if let Err(error) = workers::remove(&self.pool, worker_id).await {
            tracing::warn!(%error, "failed to remove this worker from PostgreSQL");
        }
    }
}

async fn publish(
    pool: &Pool,
    registry: &Registry,
    worker_id: &str,
    hostname: &str,
    started_at: DateTime<Utc>,
) {
    let snapshot = registry.snapshot();
    let plugins: Vec<LoadedPlugin> = snapshot
        .values()
        .map(|p| LoadedPlugin {
            name: p.name.clone(),
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            detects: p.detects.clone(),
            description: p.description.clone(),
            is_default: p.name == registry.default_name(),
            loaded_at: p.loaded_at,
        })
        .collect();
    if let Err(error) = workers::publish(pool, worker_id, hostname, started_at, &plugins).await {
        tracing::warn!(%error, "failed to publish loaded plugins to PostgreSQL");
    }
}
