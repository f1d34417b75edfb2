//! PostgreSQL: connection pool, migrations and the queries of both services.
//!
//! - [`jobs`]: job rows and their detections.
//! - [`workers`]: running workers and the plugins each has loaded.

pub mod jobs;
pub mod workers;

use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use postgres_openssl::MakeTlsConnector;

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
    /// `DB_SSLMODE`, default `prefer`.
    pub ssl_mode: SslMode,
    /// `DB_SSLROOTCERT`: the file the CA certificates were read from, and the certificates.
    pub ssl_root_cert: Option<(PathBuf, Vec<X509>)>,
}

/// The TLS use of connections: `DB_SSLMODE`, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, else plain text. The certificate is not checked.
    Prefer,
    /// TLS, without checking the certificate.
    Require,
    /// TLS with a certificate signed by a trusted CA, for any host name.
    VerifyCa,
    /// TLS with a certificate signed by a trusted CA and naming `DB_HOST`.
    VerifyFull,
}

impl SslMode {
    const NAMES: [(&'static str, SslMode); 5] = [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];

    fn parse(value: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value.trim()))
            .map(|&(_, mode)| mode)
    }

    fn verifies_certificate(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("pool_size", &self.pool_size)
            .field("ssl_mode", &self.ssl_mode)
            .field(
                "ssl_root_cert",
                &self.ssl_root_cert.as_ref().map(|(path, _)| path),
            )
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let pool_size = parsed_or(env, "DB_POOL_SIZE", 8usize, "a number of connections")?;
        let ssl_mode = match optional(env, "DB_SSLMODE") {
            None => SslMode::Prefer,
            Some(value) => SslMode::parse(&value).ok_or_else(|| {
                ConfigError::new(
                    "DB_SSLMODE",
                    format!(
                        "is {value:?}: expected disable, prefer, require, verify-ca or verify-full"
                    ),
                )
            })?,
        };
        let ssl_root_cert = optional(env, "DB_SSLROOTCERT")
            .map(|path| read_root_cert(PathBuf::from(path)))
            .transpose()?;
        Ok(Self {
            host: required(env, "DB_HOST", "the PostgreSQL host name or address")?,
            port: parsed_or(env, "DB_PORT", 5432, "a TCP port")?,
            user: required(env, "DB_USER", "the PostgreSQL user")?,
            password: optional(env, "DB_PASS"),
            name: optional(env, "DB_NAME").unwrap_or_else(|| "rfoapp".to_owned()),
            pool_size: crate::config::in_range("DB_POOL_SIZE", pool_size, 1, 1000)?,
            ssl_mode,
            ssl_root_cert,
        })
    }

    /// Builds the TLS connector that `DB_SSLMODE` and `DB_SSLROOTCERT` ask for.
    fn tls_connector(&self) -> MakeTlsConnector {
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .expect("OpenSSL makes a TLS client context");
        if self.ssl_mode.verifies_certificate() {
            builder.set_verify(SslVerifyMode::PEER);
            // Without DB_SSLROOTCERT, OpenSSL's default store (the system's CAs) is used.
            if let Some((_, certificates)) = &self.ssl_root_cert {
                for certificate in certificates {
                    // A certificate listed twice in a bundle is already in the store.
                    let _ = builder.cert_store_mut().add_cert(certificate.clone());
                }
            }
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        if self.ssl_mode != SslMode::VerifyFull {
            connector.set_callback(|config, _| {
                config.set_verify_hostname(false);
                Ok(())
            });
        }
        connector
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.name)
            .application_name("rfo")
            .connect_timeout(Duration::from_secs(5))
            .ssl_mode(match self.ssl_mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }

    /// Builds a pool. Connections open lazily, so this succeeds while the server is down.
    pub fn pool(&self) -> Pool {
        let manager = Manager::from_config(
            self.pg_config(),
            self.tls_connector(),
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

/// Reads the PEM certificates in `path`, for `DB_SSLROOTCERT`.
fn read_root_cert(path: PathBuf) -> Result<(PathBuf, Vec<X509>), ConfigError> {
    let pem = std::fs::read(&path).map_err(|error| {
        ConfigError::new(
            "DB_SSLROOTCERT",
            format!("is {}: failed to read it ({error})", path.display()),
        )
    })?;
    let certificates = X509::stack_from_pem(&pem).unwrap_or_default();
    if certificates.is_empty() {
        return Err(ConfigError::new(
            "DB_SSLROOTCERT",
            format!(
                "is {}: it contains no PEM certificate; give a CA bundle such as RDS's \
                 global-bundle.pem",
                path.display()
            ),
        ));
    }
    Ok((path, certificates))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(extra: &[(&'static str, &'static str)]) -> Result<DbConfig, ConfigError> {
        let mut env = HashMap::from([("DB_HOST", "127.0.0.1"), ("DB_USER", "app")]);
        env.extend(extra.iter().copied());
        DbConfig::from_env(&env)
    }

    #[test]
    fn ssl_mode_defaults_to_prefer() {
        assert_eq!(config(&[]).unwrap().ssl_mode, SslMode::Prefer);
    }

    #[test]
    fn ssl_mode_takes_libpq_names() {
        let config = config(&[("DB_SSLMODE", "verify-full")]).unwrap();
        assert_eq!(config.ssl_mode, SslMode::VerifyFull);
    }

    #[test]
    fn unknown_ssl_mode_is_rejected() {
        let error = config(&[("DB_SSLMODE", "on")]).unwrap_err();
        assert_eq!(error.var, "DB_SSLMODE");
        assert!(error.to_string().contains("verify-full"), "{error}");
    }

    #[test]
    fn missing_root_cert_file_is_rejected() {
        let error = config(&[("DB_SSLROOTCERT", "/nonexistent/ca.pem")]).unwrap_err();
        assert_eq!(error.var, "DB_SSLROOTCERT");
    }

    #[test]
    fn root_cert_without_certificates_is_rejected() {
        let error = config(&[("DB_SSLROOTCERT", "Cargo.toml")]).unwrap_err();
        assert_eq!(error.var, "DB_SSLROOTCERT");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }
}
