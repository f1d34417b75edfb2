//! Publishes the plugins this worker has loaded to PostgreSQL.
//!
//! The list is rewritten whenever the registry changes, and a heartbeat keeps the worker's
//! `last_seen` fresh, so the API can list the plugins of live workers and reject jobs that name a
//! plugin none of them has.

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

/// Publishes the registry now and after every change, and refreshes the heartbeat between.
pub fn spawn(pool: Pool, registry: Arc<Registry>, config: &WorkerConfig) -> Presence {
    let worker_id = config.worker_id.clone();
    let hostname = config.hostname.clone();
    let started_at = Utc::now();
    let task_pool = pool.clone();
    let task = tokio::spawn(async move {
        let mut changes = registry.subscribe();
        // The plugin rows are rewritten only when the registry changes (or a publish failed);
        // a heartbeat only refreshes `last_seen`.
        let mut published = false;
        loop {
            if !published {
                published = publish(&task_pool, &registry, &worker_id, &hostname, started_at).await;
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    published = false;
                }
                () = tokio::time::sleep(HEARTBEAT) => {
                    published = match workers::heartbeat(&task_pool, &worker_id).await {
                        Ok(row_exists) => published && row_exists,
                        Err(error) => {
                            tracing::warn!(%error, %worker_id, "failed to refresh the worker heartbeat");
                            false
                        }
                    };
                }
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
) -> bool {
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
    match workers::publish(pool, worker_id, hostname, started_at, &plugins).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, %worker_id, "failed to publish loaded plugins to PostgreSQL");
            false
        }
    }
}
