//! `rfo-devstack upload`: copies local files into a bucket and prints each key with its size.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::s3_client::{S3Settings, put_file};

/// Uploads every path (files as they are, folders recursively, skipping hidden entries).
pub async fn run(bucket: &str, prefix: &str, paths: &[PathBuf]) -> anyhow::Result<()> {
    let client = S3Settings::from_env()?.client();
    let files = collect_files(paths)?;
    if files.is_empty() {
        anyhow::bail!("no files found under the given paths");
    }
    for (path, key) in files {
        let key = format!("{prefix}{key}");
        let size = put_file(&client, bucket, &key, &path).await?;
        println!("{key}\t{size}");
    }
    Ok(())
}

/// Lists `(path, key)` pairs. A file's key is its name, and a file under a folder is keyed by
/// its `/`-separated path relative to that folder.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        if metadata.is_dir() {
            walk_folder(path, path, &mut files)?;
        } else {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .with_context(|| format!("{} has no UTF-8 file name", path.display()))?;
            files.push((path.clone(), name.to_owned()));
        }
    }
    Ok(files)
}

fn walk_folder(
    base: &Path,
    folder: &Path,
    files: &mut Vec<(PathBuf, String)>,
) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(folder)
        .with_context(|| format!("failed to list {}", folder.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("failed to list {}", folder.display()))?;
    entries.sort_by_key(|entry| entry.file_name());

    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk_folder(base, &path, files)?;
            continue;
        }
        let relative = path.strip_prefix(base).unwrap_or(&path);
        let key = relative
            .components()
            .map(|part| part.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{} has a non-UTF-8 path", path.display()))?
            .join("/");
        files.push((path, key));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_keys_are_relative_paths() {
        let root = std::env::temp_dir().join(format!("rfo-devstack-upload-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.png"), b"a").unwrap();
        std::fs::write(root.join("sub/b.dcm"), b"b").unwrap();
        std::fs::write(root.join(".hidden"), b"h").unwrap();

        let files = collect_files(std::slice::from_ref(&root)).unwrap();
        let keys: Vec<&str> = files.iter().map(|(_, key)| key.as_str()).collect();
        std::fs::remove_dir_all(&root).unwrap();

        assert_eq!(keys, ["a.png", "sub/b.dcm"]);
    }
}
