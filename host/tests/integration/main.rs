//! rfo's integration tests, built as one binary so that wasmtime, rdkafka and the AWS SDK are
//! linked once rather than once per file.
//!
//! `api`, `database`, `pipeline` and `hot_swap` need the local servers that `scripts/test.sh`
//! starts;
//! `imaging` and `plugin_tools` need only the built plugins and the sample radiographs.

mod support;

mod api;
mod database;
mod hot_swap;
mod imaging;
mod pipeline;
mod plugin_tools;
