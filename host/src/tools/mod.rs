//! Tools for plugin authors that need no servers.
//!
//! - [`run`]: `rfo plugin run PLUGIN.wasm IMAGE -o OUT.png` runs a plugin on one image.
//! - [`check`]: `rfo plugin check PLUGIN.wasm` runs the conformance suite.

pub mod check;
pub mod run;
