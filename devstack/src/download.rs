//! `rfo-devstack download`: copies objects, such as overlays, from a bucket into a local folder.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::s3_client::{S3Settings, get_file};

/// Downloads each key into `out_dir` under the key's last `/`-separated part, and prints the
/// path written with its size.
pub async fn run(bucket: &str, out_dir: &Path, keys: &[String]) -> anyhow::Result<()> {
    let client = S3Settings::from_env()?.client();
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("failed to create folder {}", out_dir.display()))?;
    for key in keys {
        let path = local_path(out_dir, key)?;
        let size = get_file(&client, bucket, key, &path).await?;
        println!("{}\t{size}", path.display());
    }
    Ok(())
}

/// Returns where `key` is saved: its last part under `out_dir`.
fn local_path(out_dir: &Path, key: &str) -> anyhow::Result<PathBuf> {
    let name = key.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        anyhow::bail!("key {key:?} does not end in a file name; give the whole object key");
    }
    Ok(out_dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_path_uses_last_key_part() {
        let path = local_path(Path::new("out"), "overlays/0192.png").unwrap();
        assert_eq!(path, Path::new("out/0192.png"));
    }

    #[test]
    fn local_path_rejects_folder_keys() {
        assert!(local_path(Path::new("out"), "overlays/").is_err());
        assert!(local_path(Path::new("out"), "overlays/..").is_err());
    }
}
