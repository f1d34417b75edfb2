//! The rfo worker and its plugin tools.
//!
//! - [`config`]: settings from environment variables.
//! - [`imaging`]: decoding radiographs (PNG, JPEG, DICOM) and drawing overlays.
//! - [`plugin`]: the wasmtime runtime, the plugin registry and hot reload.
//! - [`worker`]: the Kafka consumer and the stages of a job.
//! - [`tools`]: `rfo plugin run` and `rfo plugin check` for plugin authors.

pub mod config;
pub mod imaging;
pub mod plugin;
pub mod tools;
pub mod worker;
