//! Code shared by the rfo worker (`host/`) and the HTTP API (`api/`).
//!
//! - [`config`]: settings read from environment variables, with errors that name the variable.
//! - [`error`]: error text that includes the causes libraries keep in `source()`.
//! - [`job`]: the job message on the queue and the job record the API returns.
//! - [`db`]: PostgreSQL pool, migrations and the queries both services run.
//! - [`kafka`]: client settings for the broker, including SASL/SCRAM for Amazon MSK.
//! - [`s3`]: the S3 client, with an endpoint override for S3-compatible servers.
//! - [`telemetry`]: logging setup.

pub mod config;
pub mod db;
pub mod error;
pub mod job;
pub mod kafka;
pub mod s3;
pub mod telemetry;
