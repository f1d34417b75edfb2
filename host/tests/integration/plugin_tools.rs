//! Plugin loading, hot reload, limits and the author tools, without servers.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TempDir, built_plugin};
use rfo_host::plugin::registry::LoadError;
use rfo_host::plugin::runtime::WitImage;
use rfo_host::plugin::{Limits, PluginError, PluginRuntime, Registry, selftest};

fn registry() -> Registry {
    Registry::new(
        Arc::new(PluginRuntime::new().unwrap()),
        Limits {
            deadline_ms: 3_000,
            memory_bytes: 128 << 20,
            max_detections: 1_000,
        },
        "foreign-object".into(),
    )
}

fn copy_into(dir: &Path, plugin: &str, file_name: &str) -> std::path::PathBuf {
    let target = dir.join(file_name);
    std::fs::copy(built_plugin(plugin), &target).unwrap();
    target
}

#[test]
fn shipped_plugins_load_and_pass_self_test() {
    let registry = registry();
    let dir = TempDir::new("rfo-load");
    for plugin in ["foreign-object", "anatomy", "template"] {
        let path = copy_into(dir.path(), plugin, &format!("{plugin}.wasm"));
        let loaded = registry.load_file(&path).unwrap();
        assert_eq!(loaded.name, plugin);
        assert_eq!(loaded.sha256.len(), 64);
    }
    assert_eq!(registry.resolve(None).unwrap().name, "foreign-object");
    assert!(registry.resolve(Some("anatomy")).is_ok());
}

#[test]
fn wrong_world_is_rejected_with_reason() {
    let registry = registry();
    let dir = TempDir::new("rfo-wrong-world");
    let path = copy_into(dir.path(), "testing/wrong-world", "wrong-world.wasm");
    let err = registry.load_file(&path).unwrap_err();
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("rfo:detector/plugin@0.1"), "{err}");
}

#[test]
fn half_written_file_is_rejected_and_old_version_keeps_serving() {
    let registry = registry();
    let dir = TempDir::new("rfo-half");
    let path = copy_into(dir.path(), "foreign-object", "foreign-object.wasm");
    let first = registry.load_file(&path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = registry.load_file(&path).unwrap_err();
    assert!(err.to_string().contains("not a valid component"), "{err}");
    assert_eq!(registry.resolve(None).unwrap().sha256, first.sha256);
}

#[test]
fn failing_self_test_is_rejected_and_old_version_keeps_serving() {
    let dir = TempDir::new("rfo-self-test");
    let path = copy_into(dir.path(), "template", "template.wasm");
    let lenient = registry();
    lenient.load_file(&path).unwrap();

    // With a cap of zero detections, the template's one box on the self-test image fails it.
    let strict = Registry::new(
        lenient.runtime().clone(),
        Limits {
            max_detections: 0,
            ..*lenient.limits()
        },
        "template".into(),
    );
    let err = strict.load_file(&path).unwrap_err();
    assert!(matches!(err, LoadError::SelfTest { .. }), "{err}");
    assert!(err.to_string().contains("RFO_MAX_DETECTIONS"), "{err}");
    assert!(strict.resolve(None).is_err());
    assert!(lenient.resolve(Some("template")).is_ok());
}

#[test]
fn special_files_are_rejected_without_reading() {
    let registry = registry();
    let dir = TempDir::new("rfo-special");
    let fifo = dir.path().join("pipe.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let zero = dir.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();

    for path in [fifo, zero] {
        let err = registry.load_file(&path).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}

#[test]
fn unload_keeps_running_job_copy() {
    let registry = registry();
    let dir = TempDir::new("rfo-unload");
    let path = copy_into(dir.path(), "anatomy", "anatomy.wasm");
    registry.load_file(&path).unwrap();
    let held = registry.resolve(Some("anatomy")).unwrap();

    assert_eq!(registry.unload_file(&path).as_deref(), Some("anatomy"));
    assert!(registry.resolve(Some("anatomy")).is_err());
    let still_runs =
        registry
            .runtime()
            .detect(&held.compiled, &selftest::test_image(), registry.limits());
    assert!(still_runs.is_ok(), "{still_runs:?}");
}

fn hostile_error(plugin: &str) -> PluginError {
    let registry = registry();
    let runtime = registry.runtime();
    let compiled = runtime
        .compile(&std::fs::read(built_plugin(plugin)).unwrap())
        .unwrap();
    // Hostile plugins pass the self-test and misbehave on anything larger.
    assert!(
        runtime
            .detect(&compiled, &selftest::test_image(), registry.limits())
            .is_ok()
    );
    let image = WitImage {
        width: 256,
        height: 256,
        bit_depth: 8,
        channels: 1,
        pixels: vec![100; 256 * 256],
    };
    runtime
        .detect(&compiled, &image, registry.limits())
        .unwrap_err()
}

#[test]
fn spinning_plugin_hits_deadline() {
    let started = Instant::now();
    let err = hostile_error("testing/spin");
    assert_eq!(err, PluginError::Deadline { deadline_ms: 3_000 });
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn memory_bomb_hits_memory_cap() {
    let err = hostile_error("testing/memory-bomb");
    assert!(
        matches!(err, PluginError::MemoryCap { cap_mib: 128, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("RFO_PLUGIN_MEMORY_MIB"));
}

#[test]
fn panicking_plugin_is_a_crash_with_its_message() {
    let err = hostile_error("testing/panic");
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
}

#[test]
fn flooding_plugin_hits_detection_cap() {
    let err = hostile_error("testing/flood");
    assert!(
        matches!(err, PluginError::TooManyDetections { max: 1_000, .. }),
        "{err}"
    );
}

#[test]
fn plugin_sandbox_is_deterministic() {
    let registry = registry();
    let runtime = registry.runtime();
    let compiled = runtime
        .compile(&std::fs::read(built_plugin("foreign-object")).unwrap())
        .unwrap();
    let image = WitImage {
        width: 300,
        height: 200,
        bit_depth: 8,
        channels: 1,
        pixels: (0..60_000u32).map(|i| (i * 7 % 251) as u8).collect(),
    };
    let first = runtime.detect(&compiled, &image, registry.limits());
    let second = runtime.detect(&compiled, &image, registry.limits());
    assert_eq!(first, second);
}

#[test]
fn folder_watch_swaps_and_unloads() {
    let registry = Arc::new(registry());
    let dir = TempDir::new("rfo-watch");
    let _watch = rfo_host::plugin::watch::spawn(registry.clone(), dir.path()).unwrap();

    // A new file appears through a rename, as `mv` does.
    let staged = dir.path().join(".anatomy.wasm.part");
    std::fs::copy(built_plugin("anatomy"), &staged).unwrap();
    std::fs::rename(&staged, dir.path().join("anatomy.wasm")).unwrap();
    wait_until(
        || registry.resolve(Some("anatomy")).is_ok(),
        "anatomy loaded",
    );

    // Loading reads the file; that read must not count as a change and start a reload loop.
    let changes = registry.subscribe();
    let seen = *changes.borrow();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        *changes.borrow(),
        seen,
        "the watcher reloaded an unchanged file"
    );

    std::fs::remove_file(dir.path().join("anatomy.wasm")).unwrap();
    wait_until(
        || registry.resolve(Some("anatomy")).is_err(),
        "anatomy unloaded",
    );
}

fn wait_until(condition: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rfo(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rfo"))
        .args(args)
        .output()
        .expect("failed to run the rfo binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn check_passes_shipped_plugins() {
    for plugin in ["foreign-object", "anatomy", "template", "exposure"] {
        let path = built_plugin(plugin);
        let (ok, output) = rfo(&["plugin", "check", path.to_str().unwrap()]);
        assert!(ok, "rfo plugin check failed {plugin}:\n{output}");
        assert!(output.contains(" 0 failed"), "{output}");
    }
}

#[test]
fn check_fails_hostile_plugins() {
    for plugin in ["spin", "memory-bomb", "panic", "flood", "wrong-world"] {
        let path = built_plugin(&format!("testing/{plugin}"));
        let (ok, output) = rfo(&[
            "plugin",
            "check",
            "--deadline-ms",
            "500",
            "--memory-mib",
            "128",
            path.to_str().unwrap(),
        ]);
        assert!(
            !ok,
            "rfo plugin check passed hostile plugin {plugin}:\n{output}"
        );
        assert!(output.contains("FAIL"), "{output}");
    }
}

#[test]
fn run_writes_overlay_and_prints_detections() {
    let dir = TempDir::new("rfo-run");
    let output = dir.path().join("leg.png");
    let leg = support::example("leg-ap-cr-lead-marker-j2k-lossless.dcm");
    let plugin = built_plugin("foreign-object");
    let (ok, text) = rfo(&[
        "plugin",
        "run",
        plugin.to_str().unwrap(),
        leg.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("metal"), "{text}");
    assert!(text.contains("detect"), "{text}");
    let overlay = image::open(&output).unwrap();
    assert!(overlay.width() > 0);
}

#[test]
fn python_plugin_processes_a_radiograph() {
    let dir = TempDir::new("rfo-python");
    let output = dir.path().join("chest.png");
    let chest = support::example("chest-pa-rsna.dcm");
    let plugin = built_plugin("exposure");
    let (ok, text) = rfo(&[
        "plugin",
        "run",
        plugin.to_str().unwrap(),
        chest.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("plugin   exposure"), "{text}");
    assert!(output.exists());
}

#[test]
fn compile_cache_stores_compiled_plugin() {
    let cache = TempDir::new("rfo-compile-cache");
    let bytes = std::fs::read(built_plugin("anatomy")).unwrap();
    for _ in 0..2 {
        let runtime = PluginRuntime::with_compile_cache(Some(cache.path())).unwrap();
        runtime.compile(&bytes).unwrap();
    }
    let entries = walk_files(cache.path());
    assert!(entries > 0, "the compile cache folder is empty");
}

fn walk_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| if path.is_dir() { walk_files(&path) } else { 1 })
        .sum()
}
