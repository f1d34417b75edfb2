//! The loaded plugins by name, swapped atomically.
//!
//! A job takes an `Arc` of the plugin it runs, so a swap or an unload never disturbs a job in
//! progress: the old version lives until its last job ends, and new jobs get the new one.

use rfo_common::job::check_plugin_name;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::runtime::{Compiled, Limits, PluginRuntime};
use super::selftest;

/// A plugin that passed its checks and serves jobs.
pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub detects: Vec<String>,
    pub description: String,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    pub path: PathBuf,
    pub loaded_at: DateTime<Utc>,
    pub compiled: Compiled,
}

/// A reason a file was not loaded. The previous version, if any, keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} was rejected: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path} failed its self-test: {reason}")]
    SelfTest { path: PathBuf, reason: String },
    /// The file is the component already serving from this path; nothing to do.
    #[error("{path} is already loaded")]
    Unchanged { path: PathBuf },
}

/// Largest plugin file read; the Python plugin, with its interpreter, is about 18 MiB.
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

enum ReadError {
    Io(std::io::Error),
    Invalid(String),
}

/// Reads a plugin file, rejecting anything but a regular file of at most [`MAX_PLUGIN_BYTES`]
/// (a FIFO would block the reader and `/dev/zero` would never end).
fn read_component(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;

    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Invalid("it is not a regular file".to_owned()));
    }
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(ReadError::Invalid(format!(
            "it is {} bytes, more than the {MAX_PLUGIN_BYTES}-byte limit for plugins",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PLUGIN_BYTES + 1).read_to_end(&mut bytes))
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_PLUGIN_BYTES {
        return Err(ReadError::Invalid(
            "it grew past the plugin size limit while being read".to_owned(),
        ));
    }
    Ok(bytes)
}

/// The result of a successful `load_file`.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// The version it replaced, if any.
    pub replaced: Option<String>,
    /// Milliseconds from reading the file to serving it.
    pub millis: f64,
}

/// A job named a plugin that is not loaded here.
#[derive(Debug, thiserror::Error)]
#[error("no plugin named {requested:?} is loaded on this worker; loaded: {loaded}")]
pub struct UnknownPlugin {
    pub requested: String,
    pub loaded: String,
}

pub struct Registry {
    runtime: Arc<PluginRuntime>,
    limits: Limits,
    default_name: String,
    plugins: ArcSwap<BTreeMap<String, Arc<LoadedPlugin>>>,
    /// Plugin name per file, so a removed or renamed file unloads the right plugin.
    files: Mutex<HashMap<PathBuf, String>>,
    generation: watch::Sender<u64>,
}

impl Registry {
    pub fn new(runtime: Arc<PluginRuntime>, limits: Limits, default_name: String) -> Self {
        Self {
            runtime,
            limits,
            default_name,
            plugins: ArcSwap::from_pointee(BTreeMap::new()),
            files: Mutex::new(HashMap::new()),
            generation: watch::channel(0).0,
        }
    }

    pub fn runtime(&self) -> &Arc<PluginRuntime> {
        &self.runtime
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn default_name(&self) -> &str {
        &self.default_name
    }

    /// Returns the plugins loaded now.
    pub fn snapshot(&self) -> Arc<BTreeMap<String, Arc<LoadedPlugin>>> {
        self.plugins.load_full()
    }

    /// Notifies on every load or unload.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Returns the plugin a job runs: the one it names, or the default.
    pub fn resolve(&self, requested: Option<&str>) -> Result<Arc<LoadedPlugin>, UnknownPlugin> {
        let name = requested.unwrap_or(&self.default_name);
        let plugins = self.plugins.load();
        plugins.get(name).cloned().ok_or_else(|| UnknownPlugin {
            requested: name.to_owned(),
            loaded: describe_names(&plugins),
        })
    }

    /// Loads every `.wasm` file in `dir`; returns each file's result.
    pub fn load_dir(
        &self,
        dir: &Path,
    ) -> std::io::Result<Vec<(PathBuf, Result<Loaded, LoadError>)>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| is_plugin_file(path))
            .collect();
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| {
                let result = self.load_file(&path);
                (path, result)
            })
            .collect())
    }

    /// Compiles, checks and swaps in the component at `path`.
    pub fn load_file(&self, path: &Path) -> Result<Loaded, LoadError> {
        let started = Instant::now();
        let invalid = |reason: String| LoadError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let bytes = read_component(path).map_err(|source| match source {
            ReadError::Io(source) => LoadError::Read {
                path: path.to_owned(),
                source,
            },
            ReadError::Invalid(reason) => invalid(reason),
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if self.serves(path, &sha256) {
            return Err(LoadError::Unchanged {
                path: path.to_owned(),
            });
        }

        let compiled = self.runtime.compile(&bytes).map_err(invalid)?;
        let info = self
            .runtime
            .metadata(&compiled, &self.limits)
            .map_err(|e| invalid(format!("metadata() failed: {e}")))?;
        check_plugin_name(&info.name).map_err(invalid)?;
        check_metadata_text(&info.version, &info.detects, &info.description).map_err(invalid)?;
        selftest::run(&self.runtime, &compiled, &self.limits).map_err(|e| LoadError::SelfTest {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;

        let plugin = Arc::new(LoadedPlugin {
            name: info.name.clone(),
            version: info.version.clone(),
            detects: info.detects,
            description: info.description,
            sha256: sha256.clone(),
            path: path.to_owned(),
            loaded_at: Utc::now(),
            compiled,
        });
        let replaced = self.install(path, plugin);
        Ok(Loaded {
            name: info.name,
            version: info.version,
            sha256,
            replaced,
            millis: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Returns whether the plugin loaded from `path` is the component with this hash.
    fn serves(&self, path: &Path, sha256: &str) -> bool {
        let files = self.files.lock().expect("registry lock is never poisoned");
        let Some(name) = files.get(path) else {
            return false;
        };
        self.plugins
            .load()
            .get(name)
            .is_some_and(|p| p.sha256 == sha256 && p.path == path)
    }

    /// Unloads the plugin that `path` provided; returns its name. Running jobs keep their copy.
    pub fn unload_file(&self, path: &Path) -> Option<String> {
        let mut files = self.files.lock().expect("registry lock is never poisoned");
        let name = files.remove(path)?;
        let still_provided = files.values().any(|n| *n == name);
        if !still_provided {
            self.plugins.rcu(|current| {
                let mut next = BTreeMap::clone(current);
                next.remove(&name);
                next
            });
            self.generation.send_modify(|g| *g += 1);
        }
        Some(name)
    }

    fn install(&self, path: &Path, plugin: Arc<LoadedPlugin>) -> Option<String> {
        let mut files = self.files.lock().expect("registry lock is never poisoned");
        let name = plugin.name.clone();
        // A file that now provides another name no longer provides its old one.
        let old_name = files.insert(path.to_owned(), name.clone());
        let mut replaced = None;
        self.plugins.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            replaced = next
                .insert(name.clone(), plugin.clone())
                .map(|p| p.version.clone());
            if let Some(old) = &old_name
                && *old != name
                && !files.values().any(|n| n == old)
            {
                next.remove(old);
            }
            next
        });
        self.generation.send_modify(|g| *g += 1);
        replaced
    }
}

/// Returns whether the watcher and `load_dir` treat `path` as a plugin: a visible `*.wasm` file.
pub fn is_plugin_file(path: &Path) -> bool {
    let visible = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.'));
    visible && path.extension().is_some_and(|ext| ext == "wasm")
}

fn describe_names(plugins: &BTreeMap<String, Arc<LoadedPlugin>>) -> String {
    if plugins.is_empty() {
        return "none".to_owned();
    }
    plugins
        .values()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the text that `metadata()` returns besides the name, which is stored in PostgreSQL and
/// shown by the API: a version and labels of 1 to 64 printable characters, and a description
/// without NUL, which PostgreSQL cannot store.
fn check_metadata_text(version: &str, detects: &[String], description: &str) -> Result<(), String> {
    let printable =
        |text: &str| !text.is_empty() && text.len() <= 64 && !text.chars().any(char::is_control);
    if !printable(version) {
        return Err(format!(
            "metadata() version {version:?} is invalid: use 1 to 64 printable characters"
        ));
    }
    if let Some(label) = detects.iter().find(|label| !printable(label)) {
        return Err(format!(
            "metadata() label {label:?} is invalid: use 1 to 64 printable characters"
        ));
    }
    if description.contains('\0') {
        return Err("metadata() description contains a NUL character".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_text_rejects_control_characters() {
        let labels = vec!["metal".to_owned()];
        assert!(check_metadata_text("1.0.0", &labels, "finds metal").is_ok());
        assert!(check_metadata_text("1.0\0", &labels, "").is_err());
        assert!(check_metadata_text("", &labels, "").is_err());
        assert!(check_metadata_text("1.0.0", &["me\ntal".to_owned()], "").is_err());
        assert!(check_metadata_text("1.0.0", &labels, "nul \0 here").is_err());
    }

    #[test]
    fn plugin_files_are_visible_wasm_files() {
        assert!(is_plugin_file(Path::new("/p/foreign-object.wasm")));
        assert!(!is_plugin_file(Path::new("/p/.foreign-object.wasm")));
        assert!(!is_plugin_file(Path::new("/p/foreign-object.wasm.part")));
        assert!(!is_plugin_file(Path::new("/p/notes.txt")));
    }

    #[test]
    fn names_are_lowercase_words() {
        assert!(check_plugin_name("foreign-object").is_ok());
        assert!(check_plugin_name("v2-detector").is_ok());
        assert!(check_plugin_name("").is_err());
        assert!(check_plugin_name("Foreign").is_err());
        assert!(check_plugin_name("a b").is_err());
    }
}
