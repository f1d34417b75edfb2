//! The rfo HTTP API: accepts jobs, produces them to Kafka and reads results from PostgreSQL.
//!
//! - [`config`]: settings from environment variables.
//! - [`error`]: the JSON error type every route returns.
//! - [`queue`]: the Kafka producer.
//! - [`routes`]: one module per endpoint.
//!
//! [`App::serve`] runs the service on a listener, so tests start it in-process on port 0.

pub mod config;
pub mod error;
pub mod queue;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use deadpool_postgres::Pool;
use tokio::net::TcpListener;

use crate::config::ApiConfig;
use crate::queue::JobQueue;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub queue: Arc<JobQueue>,
    /// Workers whose heartbeat is older than this many seconds no longer count as serving
    /// their plugins.
    pub worker_freshness_secs: f64,
}

/// The API, connected and migrated, ready to serve.
pub struct App {
    state: AppState,
}

impl App {
    /// Connects to the broker, migrates the database and builds the service.
    pub async fn build(config: &ApiConfig) -> anyhow::Result<Self> {
        let pool = config.db.pool();
        rfo_common::db::migrate(&pool).await.context(
            "failed to prepare the database; check DB_HOST, DB_PORT, DB_USER and DB_PASS",
        )?;
        let queue = JobQueue::new(&config.kafka).context("failed to create the Kafka producer")?;
        Ok(Self {
            state: AppState {
                pool,
                queue: Arc::new(queue),
                worker_freshness_secs: config.worker_freshness_secs,
            },
        })
    }

    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
    }

    /// Serves requests on `listener` until `shutdown` completes, then flushes the producer.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server failed")?;
        self.state.queue.flush(Duration::from_secs(10));
        Ok(())
    }
}
