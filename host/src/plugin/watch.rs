//! Watches the plugin folder and loads, reloads or unloads plugins as files change.
//!
//! The folder is watched, not each file, because `mv` over a file and editors' atomic saves
//! replace the file's inode. Events are debounced per path: a file is loaded once it has been
//! quiet for [`DEBOUNCE`], so a slow copy is read when it ends. A file still changing while it is
//! read, or one that fails to compile, is rejected with a logged reason and the previous version
//! keeps serving.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};

use super::registry::{LoadError, Registry, is_plugin_file};

/// How long a path must be quiet before it is loaded.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Keeps the watch running; dropping it stops the watcher thread.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts watching `dir`.
pub fn spawn(registry: Arc<Registry>, dir: &Path) -> notify::Result<WatchHandle> {
    let (events_tx, events_rx) = mpsc::channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                // Opening and reading a file (the loader does both) is not a change; a finished
                // write is.
                let relevant = match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    EventKind::Access(_) => false,
                    _ => true,
                };
                if relevant {
                    for path in event.paths {
                        let _ = events_tx.send(path);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "plugin folder watch reported an error"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;

    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = thread::Builder::new()
        .name("rfo-plugin-watch".into())
        .spawn(move || debounce_loop(&registry, &events_rx, &thread_stop))
        .map_err(notify::Error::io)?;
    tracing::info!(dir = %dir.display(), "watching plugin folder");
    Ok(WatchHandle {
        _watcher: watcher,
        stop,
        thread: Some(thread),
    })
}

fn debounce_loop(registry: &Registry, events: &mpsc::Receiver<PathBuf>, stop: &AtomicBool) {
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        match events.recv_timeout(Duration::from_millis(25)) {
            Ok(path) => {
                if is_plugin_file(&path) {
                    pending.insert(path, Instant::now());
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let ripe: Vec<PathBuf> = pending
            .iter()
            .filter(|(_, last)| last.elapsed() >= DEBOUNCE)
            .map(|(path, _)| path.clone())
            .collect();
        for path in ripe {
            pending.remove(&path);
            if !apply_change(registry, &path) {
                // Still being written: try again after another quiet period.
                pending.insert(path, Instant::now());
            }
        }
    }
}

/// Loads or unloads `path`. Returns false if the file changed while it was read.
fn apply_change(registry: &Registry, path: &Path) -> bool {
    let Some(before) = file_stamp(path) else {
        if let Some(name) = registry.unload_file(path) {
            tracing::info!(plugin = %name, file = %path.display(), "plugin unloaded: file removed");
        }
        return true;
    };
    let result = registry.load_file(path);
    if file_stamp(path) != Some(before) {
        tracing::info!(file = %path.display(), "plugin file changed while loading; loading again");
        return false;
    }
    match result {
        Ok(loaded) => tracing::info!(
            plugin = %loaded.name,
            version = %loaded.version,
            replaced = loaded.replaced.as_deref().unwrap_or("-"),
            sha256 = %loaded.sha256,
            millis = format!("{:.1}", loaded.millis),
            file = %path.display(),
            "plugin loaded"
        ),
        Err(LoadError::Unchanged { .. }) => {}
        Err(error) => {
            tracing::warn!(%error, "plugin rejected; any version loaded before keeps serving")
        }
    }
    true
}

fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}
