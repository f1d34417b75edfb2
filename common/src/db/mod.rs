//! PostgreSQL: connection pool, migrations and the queries of both services.
//!
//! - [`jobs`]: job rows and their detections.
//! - [`workers`]: running workers and the plugins each has loaded.

pub mod jobs;
pub mod workers;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::{ConfigError, Env, optional, parsed_or, required};
use crate::error::chain;

refinery::embed_migrations!("../migrations");

/// Advisory lock id that serialises migrations when several processes start at once.
const MIGRATION_LOCK_ID: i64 = 0x7266_6f5f_6d69_6772;

/// Connection settings for PostgreSQL.
#[derive(Clone)]
pub struct DbConfig {
    /// `DB_HOST`.
    pub host: String,
    /// `DB_PORT`, default 5432.
    pub port: u16,
    /// `DB_USER`.
    pub user: String,
    /// `DB_PASS`; may be unset where the server trusts loopback connections.
    pub password: Option<String>,
    /// `DB_NAME`, default `rfoapp`.
    pub name: String,
    /// `DB_POOL_SIZE`, default 8: connections each process keeps at most.
    pub pool_size: usize,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let pool_size = parsed_or(env, "DB_POOL_SIZE", 8usize, "a number of connections")?;
        Ok(Self {
            host: required(env, "DB_HOST", "the PostgreSQL host name or address")?,
            port: parsed_or(env, "DB_PORT", 5432, "a TCP port")?,
            user: required(env, "DB_USER", "the PostgreSQL user")?,
            password: optional(env, "DB_PASS"),
            name: optional(env, "DB_NAME").unwrap_or_else(|| "rfoapp".to_owned()),
            pool_size: crate::config::in_range("DB_POOL_SIZE", pool_size, 1, 1000)?,
        })
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.name)
            .application_name("rfo")
            .connect_timeout(Duration::from_secs(5));
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }

    /// Builds a pool. Connections open lazily, so this succeeds while the server is down.
    pub fn pool(&self) -> Pool {
        let manager = Manager::from_config(
            self.pg_config(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .expect("a pool with a runtime and timeouts always builds")
    }
}

/// A database operation that failed. The message includes every cause, so the variants do not
/// expose the error they wrap as `source()`: formatters that walk sources would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("failed to get a PostgreSQL connection: {}", chain(.0))]
    Pool(deadpool_postgres::PoolError),
    #[error("PostgreSQL query failed: {}", chain(.0))]
    Query(tokio_postgres::Error),
    #[error("failed to migrate the database: {}", chain(.0))]
    Migration(refinery::Error),
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Pool(error)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Query(error)
    }
}

impl From<refinery::Error> for DbError {
    fn from(error: refinery::Error) -> Self {
        Self::Migration(error)
    }
}

/// Applies pending migrations from `migrations/`. Safe to call from several processes at once:
/// an advisory lock lets one migrate while the others wait.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_ID])
        .await?;
    let result = migrations::runner().run_async(&mut **client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_ID])
        .await?;
    let report = result?;
    for migration in report.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    Ok(())
}

/// Checks that PostgreSQL runs a query.
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client.query_one("SELECT 1", &[]).await?;
    Ok(())
}
