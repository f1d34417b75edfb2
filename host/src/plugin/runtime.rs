//! The wasmtime engine, the sandbox and the per-job limits.
//!
//! One [`wasmtime::Engine`] serves every plugin for the life of the process: each component is
//! compiled once into an [`InstancePre`](wasmtime::component::InstancePre), and every call gets
//! a fresh [`Store`] with its own memory cap and CPU deadline. The sandbox links WASI (Rust's
//! standard library imports it) but grants nothing: no preopened directories, no environment, no
//! sockets, clocks frozen at zero, random numbers from a fixed seed, standard output discarded
//! and standard error kept (up to a few KiB) for failure messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "detector",
        additional_derives: [PartialEq],
    });
}

pub use bindings::exports::rfo::detector::plugin::{
    DetectError, Detection as WitDetection, Image as WitImage, PluginInfo, Region as WitRegion,
};
use bindings::{Detector, DetectorPre};

impl From<WitDetection> for rfo_common::job::Detection {
    fn from(found: WitDetection) -> Self {
        rfo_common::job::Detection {
            label: found.label,
            score: found.score,
            region: rfo_common::job::Region {
                x: found.region.x,
                y: found.region.y,
                width: found.region.width,
                height: found.region.height,
            },
        }
    }
}

/// How often the engine's epoch advances; deadlines are whole multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of a plugin's standard error kept for failure messages.
const STDERR_CAPTURE_BYTES: usize = 4096;

/// Per-call limits. Defaults are documented on each field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// CPU deadline for one call, in milliseconds (default 10,000). Enforced with epoch
    /// interruption, so a call ends within one [`EPOCH_TICK`] after the deadline.
    pub deadline_ms: u64,
    /// Cap on a plugin's linear memory, in bytes (default 512 MiB). A detector needs about
    /// four times the image's size.
    pub memory_bytes: usize,
    /// Most detections a call may return (default 1,000).
    pub max_detections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline_ms: 10_000,
            memory_bytes: 512 << 20,
            max_detections: 1_000,
        }
    }
}

/// A plugin call that produced no usable result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    #[error("plugin exceeded its CPU deadline of {deadline_ms} ms (RFO_PLUGIN_DEADLINE_MS)")]
    Deadline { deadline_ms: u64 },
    #[error(
        "plugin exceeded its memory cap of {cap_mib} MiB (RFO_PLUGIN_MEMORY_MIB) by asking for {requested_mib} MiB"
    )]
    MemoryCap {
        cap_mib: usize,
        requested_mib: usize,
    },
    #[error("plugin returned {count} detections, more than the cap of {max} (RFO_MAX_DETECTIONS)")]
    TooManyDetections { count: usize, max: usize },
    #[error("plugin crashed ({trap}){}", stderr_suffix(.stderr))]
    Trap { trap: String, stderr: String },
    #[error("plugin rejected the image: {0}")]
    Rejected(String),
    #[error("plugin returned an invalid result: {0}")]
    InvalidOutput(String),
    #[error("failed to instantiate plugin: {0}")]
    Instantiate(String),
}

fn stderr_suffix(stderr: &str) -> String {
    // A Rust panic prints "thread ... panicked at FILE:LINE:" and the message, then a note about
    // RUST_BACKTRACE; keep the last two lines that are not notes.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note:"))
        .collect();
    let tail = &lines[lines.len().saturating_sub(2)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.join(" "))
    }
}

/// Clocks that always read zero, so a plugin cannot time anything or behave differently by
/// date.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A memory limiter that remembers whether it denied a request, so that a failed call can be
/// attributed to the cap rather than guessed from a message.
struct MemoryCap {
    cap: usize,
    denied: Option<usize>,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = Some(desired);
            // An error (not `Ok(false)`) traps at once: a Rust guest would otherwise abort with
            // an `unreachable` trap that looks like any other crash.
            wasmtime::bail!("memory cap of {} bytes reached", self.cap);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Per-store state: the sandboxed WASI context and the memory limiter.
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    stderr: MemoryOutputPipe,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl SandboxState {
    fn new(memory_cap: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(wasmtime_wasi::Deterministic::new(vec![
                0x5a, 0x17, 0xc3, 0x9e,
            ]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![
                0x2b, 0x81, 0x46, 0xd0,
            ]))
            .insecure_random_seed(0x0072_666f);
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: MemoryCap {
                cap: memory_cap,
                denied: None,
            },
            stderr,
        }
    }
}

/// A compiled plugin, ready to instantiate.
#[derive(Clone)]
pub struct Compiled {
    pre: DetectorPre<SandboxState>,
}

/// The engine, the linker and the epoch ticker shared by all plugins.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<SandboxState>,
    stop_ticker: Arc<AtomicBool>,
}

impl PluginRuntime {
    /// Builds a runtime that compiles every component from scratch.
    pub fn new() -> anyhow::Result<Self> {
        Self::with_compile_cache(None)
    }

    /// Builds a runtime that keeps compiled code in `cache_dir`, so a restart loads a large
    /// component (the Python plugin takes seconds to compile) without compiling it again.
    pub fn with_compile_cache(cache_dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        if let Some(dir) = cache_dir {
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(dir);
            let cache = wasmtime::Cache::new(cache_config).map_err(|e| {
                anyhow::anyhow!("failed to open compile cache {}: {e}", dir.display())
            })?;
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow::anyhow!("failed to link WASI: {e}"))?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = stop_ticker.clone();
        thread::Builder::new()
            .name("rfo-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self {
            engine,
            linker,
            stop_ticker,
        })
    }

    /// Compiles a component and checks that it exports the rfo detector world.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, String> {
        check_component_header(bytes)?;
        // `from_binary` rather than `new`, which would also try to parse text as WAT.
        let component = Component::from_binary(&self.engine, bytes)
            .map_err(|e| format!("not a valid component: {e:#}"))?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            format!("the component imports something the rfo sandbox does not provide: {e:#}")
        })?;
        let pre = DetectorPre::new(instance_pre).map_err(|e| {
            format!(
                "the component does not export the rfo:detector/plugin@0.1 interface \
                 (build it against wit/rfo-detector.wit): {e:#}"
            )
        })?;
        Ok(Compiled { pre })
    }

    /// Calls `metadata` on a fresh instance.
    pub fn metadata(
        &self,
        compiled: &Compiled,
        limits: &Limits,
    ) -> Result<PluginInfo, PluginError> {
        let (mut store, detector) = self.instantiate(compiled, limits)?;
        detector
            .rfo_detector_plugin()
            .call_metadata(&mut store)
            .map_err(|e| classify_trap(e, &store, limits))
    }

    /// Calls `detect` on a fresh instance and checks the result against `limits` and the image.
    pub fn detect(
        &self,
        compiled: &Compiled,
        image: &WitImage,
        limits: &Limits,
    ) -> Result<Vec<WitDetection>, PluginError> {
        let (mut store, detector) = self.instantiate(compiled, limits)?;
        let answer = detector
            .rfo_detector_plugin()
            .call_detect(&mut store, image)
            .map_err(|e| classify_trap(e, &store, limits))?;
        let detections = answer.map_err(|e| PluginError::Rejected(describe_detect_error(&e)))?;
        validate(&detections, image, limits)?;
        Ok(detections)
    }

    /// Creates a store and an instance and drops them: the fixed cost every call pays, for
    /// benchmarks.
    pub fn instantiate_only(
        &self,
        compiled: &Compiled,
        limits: &Limits,
    ) -> Result<(), PluginError> {
        self.instantiate(compiled, limits).map(drop)
    }

    /// Creates a store with the sandbox and limits but no instance, for benchmarks.
    pub fn store_only(&self, limits: &Limits) {
        let mut store = Store::new(&self.engine, SandboxState::new(limits.memory_bytes));
        store.limiter(|state| &mut state.limiter);
        drop(store);
    }

    fn instantiate(
        &self,
        compiled: &Compiled,
        limits: &Limits,
    ) -> Result<(Store<SandboxState>, Detector), PluginError> {
        let mut store = Store::new(&self.engine, SandboxState::new(limits.memory_bytes));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.deadline_ms));
        store.epoch_deadline_trap();
        let detector = compiled.pre.instantiate(&mut store).map_err(|e| {
            match classify_trap(e, &store, limits) {
                PluginError::Trap { trap, .. } => PluginError::Instantiate(trap),
                other => other,
            }
        })?;
        Ok((store, detector))
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

fn deadline_ticks(deadline_ms: u64) -> u64 {
    let tick = EPOCH_TICK.as_millis() as u64;
    deadline_ms.div_ceil(tick).max(1)
}

/// Turns a wasmtime error from a call into the limit it hit, or a crash.
fn classify_trap(
    error: wasmtime::Error,
    store: &Store<SandboxState>,
    limits: &Limits,
) -> PluginError {
    if let Some(requested) = store.data().limiter.denied {
        return PluginError::MemoryCap {
            cap_mib: limits.memory_bytes >> 20,
            requested_mib: requested.div_ceil(1 << 20),
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return PluginError::Deadline {
            deadline_ms: limits.deadline_ms,
        };
    }
    let trap = match error.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => {
            "unreachable code reached: the plugin panicked or aborted".to_owned()
        }
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
    PluginError::Trap { trap, stderr }
}

fn describe_detect_error(error: &DetectError) -> String {
    match error {
        DetectError::InvalidImage(m) => format!("invalid image: {m}"),
        DetectError::Unsupported(m) => format!("unsupported image: {m}"),
        DetectError::Internal(m) => format!("internal error: {m}"),
    }
}

/// Checks the count, boxes and scores of a plugin's result.
fn validate(
    detections: &[WitDetection],
    image: &WitImage,
    limits: &Limits,
) -> Result<(), PluginError> {
    if detections.len() > limits.max_detections {
        return Err(PluginError::TooManyDetections {
            count: detections.len(),
            max: limits.max_detections,
        });
    }
    for (i, d) in detections.iter().enumerate() {
        let r = &d.region;
        let right = u64::from(r.x) + u64::from(r.width);
        let bottom = u64::from(r.y) + u64::from(r.height);
        if r.width == 0
            || r.height == 0
            || right > u64::from(image.width)
            || bottom > u64::from(image.height)
        {
            return Err(PluginError::InvalidOutput(format!(
                "detection {i} has box x={} y={} width={} height={}, which is empty or outside the {}x{} image",
                r.x, r.y, r.width, r.height, image.width, image.height
            )));
        }
        if !(0.0..=1.0).contains(&d.score) {
            return Err(PluginError::InvalidOutput(format!(
                "detection {i} has score {}, outside 0..1",
                d.score
            )));
        }
        if d.label.is_empty() || d.label.len() > 64 {
            return Err(PluginError::InvalidOutput(format!(
                "detection {i} has a label of {} bytes; labels are 1 to 64 bytes",
                d.label.len()
            )));
        }
        if let Some(c) = d.label.chars().find(|c| c.is_control()) {
            return Err(PluginError::InvalidOutput(format!(
                "detection {i} has a label with the control character {c:?}; labels are printable text"
            )));
        }
    }
    Ok(())
}

/// Checks the 8-byte preamble: the `\0asm` magic, then the version and layer of a component.
/// A core module, or a file that is not WebAssembly at all, gets a message on how to build a
/// component instead of a parser error.
fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    if !bytes.starts_with(MAGIC) {
        return Err(
            "not a WebAssembly binary (it does not start with the \\0asm magic bytes); build the \
             plugin with `cargo build --target wasm32-wasip2` or another component toolchain"
                .to_owned(),
        );
    }
    if bytes.get(4..8) == Some(&CORE_MODULE[..]) {
        return Err(
            "a core WebAssembly module, not a component; build for wasm32-wasip2, or wrap the \
             module with `wasm-tools component new`"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_rejects_text_file() {
        let error = check_component_header(b"# A README, not a plugin\n").unwrap_err();
        assert!(error.starts_with("not a WebAssembly binary"), "{error}");
    }

    #[test]
    fn header_check_rejects_core_module() {
        let error = check_component_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(error.contains("core WebAssembly module"), "{error}");
    }

    #[test]
    fn header_check_accepts_component() {
        assert!(check_component_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(1), 1);
        assert_eq!(deadline_ticks(10), 1);
        assert_eq!(deadline_ticks(11), 2);
        assert_eq!(deadline_ticks(10_000), 1000);
    }

    fn image(width: u32, height: u32) -> WitImage {
        WitImage {
            width,
            height,
            bit_depth: 8,
            channels: 1,
            pixels: vec![0; (width * height) as usize],
        }
    }

    fn detection(x: u32, y: u32, width: u32, height: u32, score: f32) -> WitDetection {
        WitDetection {
            region: WitRegion {
                x,
                y,
                width,
                height,
            },
            label: "metal".into(),
            score,
        }
    }

    #[test]
    fn validate_rejects_box_outside_image() {
        let limits = Limits::default();
        let err = validate(&[detection(5, 5, 6, 1, 0.5)], &image(10, 10), &limits).unwrap_err();
        assert!(matches!(err, PluginError::InvalidOutput(_)), "{err}");
    }

    #[test]
    fn validate_rejects_score_above_one() {
        let limits = Limits::default();
        let err = validate(&[detection(0, 0, 1, 1, 1.5)], &image(10, 10), &limits).unwrap_err();
        assert!(err.to_string().contains("score 1.5"), "{err}");
    }

    #[test]
    fn validate_rejects_control_character_in_label() {
        let limits = Limits::default();
        let mut bad = detection(0, 0, 1, 1, 0.5);
        bad.label = "me\0tal".into();
        let err = validate(&[bad], &image(10, 10), &limits).unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn validate_rejects_nan_score() {
        let limits = Limits::default();
        assert!(validate(&[detection(0, 0, 1, 1, f32::NAN)], &image(10, 10), &limits).is_err());
    }

    #[test]
    fn validate_caps_detection_count() {
        let limits = Limits {
            max_detections: 2,
            ..Limits::default()
        };
        let many = vec![detection(0, 0, 1, 1, 0.5); 3];
        let err = validate(&many, &image(10, 10), &limits).unwrap_err();
        assert_eq!(err, PluginError::TooManyDetections { count: 3, max: 2 });
    }

    #[test]
    fn validate_accepts_box_touching_edges() {
        let limits = Limits::default();
        assert!(validate(&[detection(0, 0, 10, 10, 1.0)], &image(10, 10), &limits).is_ok());
    }
}
