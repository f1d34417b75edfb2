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
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::config::ApiConfig;
use crate::queue::JobQueue;

/// Time a client has to send a complete request head, on a new connection or between requests
/// on a kept-alive one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Serves requests on `listener` until `shutdown` completes, lets requests in progress
    /// finish (up to 10 s), then flushes the producer.
    ///
    /// A connection that does not send a complete request head within [`HEADER_READ_TIMEOUT`],
    /// whether new or idle between requests, is closed, so slow or silent clients cannot
    /// hold connections open.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        // HTTP/1 only, through `serve_connection`: detecting the version, which
        // `serve_connection_with_upgrades` always does, waits for the client's first bytes with
        // no time limit, so a silent client would hold its connection for ever.
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors; the next accept may succeed.
                        tracing::warn!(%error, "failed to accept a connection; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in progress 10 s after shutdown began; closing them");
        }
        self.state.queue.flush(Duration::from_secs(10));
        Ok(())
    }
}
