//! Detection plugins: WebAssembly components run in wasmtime.
//!
//! - [`runtime`]: the engine, the sandbox every call runs in, and the per-job limits.
//! - [`registry`]: the loaded plugins by name, swapped atomically when a file changes.
//! - [`watch`]: watches the plugin folder and feeds changes to the registry.
//! - [`selftest`]: the check a component must pass before it serves jobs.

pub mod registry;
pub mod runtime;
pub mod selftest;
pub mod watch;

pub use registry::{LoadedPlugin, Registry};
pub use runtime::{Limits, PluginError, PluginRuntime};
