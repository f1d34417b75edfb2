//! An S3-protocol server on loopback that stores objects as files (s3s-fs 0.14).
//!
//! Each bucket is a folder directly under the root folder and each object a file inside it, so a
//! test or a person can look at the overlays rfo wrote with ordinary tools. Requests must be
//! signed (SigV4) with the one configured access key. Path-style addressing only: clients must
//! set `force_path_style`.
//!
//! s3s-fs creates a missing bucket folder when an object is written into it, where Amazon S3
//! returns NoSuchBucket. [`RequireExistingBucket`] restores S3's behaviour for PutObject,
//! CopyObject and CreateMultipartUpload, so a misspelt bucket fails here as it would on AWS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::access::S3Access;
use s3s::auth::SimpleAuth;
use s3s::dto::{CopyObjectInput, CreateMultipartUploadInput, PutObjectInput};
use s3s::service::S3ServiceBuilder;
use s3s::{S3Request, S3Result, s3_error};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// How long a stopping server waits for requests in flight before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of the S3-protocol server.
pub struct S3ServerConfig {
    /// Folder that contains one subfolder per bucket.
    pub root: PathBuf,
    /// Address to listen on. Port 0 lets the OS pick a free one.
    pub listen: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    /// Buckets created (as folders) at start if missing.
    pub buckets: Vec<String>,
}

/// A bound, not yet serving, S3-protocol server.
pub struct S3Server {
    listener: TcpListener,
    service: s3s::service::S3Service,
}

impl S3Server {
    /// Creates the bucket folders, then binds the listening socket so the address is known
    /// before any client receives it.
    pub async fn bind(config: S3ServerConfig) -> anyhow::Result<Self> {
        create_buckets(&config.root, &config.buckets)?;
        // s3s_fs::Error implements Debug but not Display or std::error::Error.
        let filesystem = s3s_fs::FileSystem::new(&config.root).map_err(|error| {
            anyhow::anyhow!(
                "failed to open {} as the S3 root folder: {error:?}",
                config.root.display()
            )
        })?;

        let mut builder = S3ServiceBuilder::new(filesystem);
        builder.set_auth(SimpleAuth::from_single(
            config.access_key,
            config.secret_key,
        ));
        builder.set_access(RequireExistingBucket {
            root: config.root.clone(),
        });
        let service = builder.build();

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("failed to listen on {} for S3", config.listen))?;
        Ok(Self { listener, service })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("failed to read the S3 listener's address")
    }

    /// Serves connections until `shutdown` turns true, then waits up to [`SHUTDOWN_GRACE`] for
    /// requests in flight.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let connections = ConnectionBuilder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();

        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Typically EMFILE (too many open files), so back off instead of spinning.
                    error!(%error, "failed to accept an S3 connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            debug!(%peer, "S3 connection accepted");
            // Without TCP_NODELAY a response written in pieces waits on the client's delayed
            // ACK, about 40 ms per GetObject on Linux.
            if let Err(error) = socket.set_nodelay(true) {
                debug!(%error, "failed to set TCP_NODELAY on an S3 connection");
            }
            let connection =
                connections.serve_connection(TokioIo::new(socket), self.service.clone());
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    debug!(%peer, error = %error, "S3 connection ended with an error");
                }
            });
        }

        tokio::select! {
            () = graceful.shutdown() => info!("S3 server stopped"),
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                warn!(
                    grace_secs = SHUTDOWN_GRACE.as_secs(),
                    "S3 server stopped with requests still in flight"
                );
            }
        }
    }
}

/// Access hook that rejects writes into buckets that do not exist.
///
/// It leaves `check` at its default, which rejects unsigned requests.
/// Bucket names reach it already validated by s3s, so joining one to the root cannot escape it.
struct RequireExistingBucket {
    root: PathBuf,
}

impl RequireExistingBucket {
    fn require(&self, bucket: &str) -> S3Result<()> {
        if self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3_error!(NoSuchBucket, "bucket {bucket} does not exist"))
        }
    }
}

#[async_trait::async_trait]
impl S3Access for RequireExistingBucket {
    async fn put_object(&self, request: &mut S3Request<PutObjectInput>) -> S3Result<()> {
        self.require(&request.input.bucket)
    }

    async fn copy_object(&self, request: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.require(&request.input.bucket)
    }

    async fn create_multipart_upload(
        &self,
        request: &mut S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<()> {
        self.require(&request.input.bucket)
    }
}

/// Creates `root/<bucket>` for each bucket, rejecting names S3 would reject.
fn create_buckets(root: &Path, buckets: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("failed to create the S3 root folder {}", root.display()))?;
    for bucket in buckets {
        validate_bucket_name(bucket)?;
        let folder = root.join(bucket);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("failed to create bucket folder {}", folder.display()))?;
    }
    Ok(())
}

/// Checks the core S3 bucket naming rules: 3 to 63 characters of a-z, 0-9, '.' and '-',
/// starting and ending with a letter or digit.
pub fn validate_bucket_name(name: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = (3..=63).contains(&name.len())
        && name.chars().all(allowed)
        && edge(name.chars().next())
        && edge(name.chars().last());
    if !valid {
        anyhow::bail!(
            "invalid bucket name {name:?}: use 3 to 63 of a-z, 0-9, '.', '-', starting and ending \
             with a letter or digit"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3_client::S3Settings;

    /// Starts a server on a free port over a fresh folder and returns its settings for clients.
    async fn start_server(name: &str) -> (S3Settings, PathBuf, watch::Sender<bool>) {
        let root = std::env::temp_dir().join(format!("rfo-devstack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let server = S3Server::bind(S3ServerConfig {
            root: root.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            access_key: "test-key".to_owned(),
            secret_key: "test-secret".to_owned(),
            buckets: vec!["input".to_owned()],
        })
        .await
        .unwrap();
        let settings = S3Settings {
            endpoint: format!("http://{}", server.local_addr().unwrap()),
            region: "us-east-1".to_owned(),
            access_key: "test-key".to_owned(),
            secret_key: "test-secret".to_owned(),
        };
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(server.serve(stopped));
        (settings, root, stop)
    }

    #[tokio::test]
    async fn s3_server_round_trips_objects() {
        let (settings, root, stop) = start_server("round-trip").await;
        let client = settings.client();
        let body: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();

        client
            .put_object()
            .bucket("input")
            .key("nested/image.dcm")
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        let fetched = client
            .get_object()
            .bucket("input")
            .key("nested/image.dcm")
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let missing = client
            .get_object()
            .bucket("input")
            .key("absent.png")
            .send()
            .await;

        assert_eq!(fetched.as_ref(), body.as_slice());
        assert_eq!(
            std::fs::read(root.join("input/nested/image.dcm")).unwrap(),
            body
        );
        let missing = missing.unwrap_err().into_service_error();
        assert!(
            missing.is_no_such_key(),
            "expected NoSuchKey, got {missing:?}"
        );
        let _ = stop.send(true);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn s3_server_rejects_missing_bucket_and_bad_secret() {
        let (settings, root, stop) = start_server("rejects").await;
        let wrong_secret = S3Settings {
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
            access_key: settings.access_key.clone(),
            secret_key: "wrong".to_owned(),
        };

        let into_missing_bucket = settings
            .client()
            .put_object()
            .bucket("no-such-bucket")
            .key("a.png")
            .body(b"x".to_vec().into())
            .send()
            .await;
        let with_wrong_secret = wrong_secret
            .client()
            .put_object()
            .bucket("input")
            .key("a.png")
            .body(b"x".to_vec().into())
            .send()
            .await;

        let error = into_missing_bucket.unwrap_err().into_service_error();
        assert_eq!(error.meta().code(), Some("NoSuchBucket"));
        assert!(!root.join("no-such-bucket").exists());
        let error = with_wrong_secret.unwrap_err().into_service_error();
        assert_eq!(error.meta().code(), Some("SignatureDoesNotMatch"));
        assert!(!root.join("input/a.png").exists());
        let _ = stop.send(true);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for name in ["rfo-input", "rfo-output", "abc", "a.b-c1"] {
            assert!(validate_bucket_name(name).is_ok(), "{name:?} was rejected");
        }
        for name in [
            "ab",
            "Rfo",
            "rfo_input",
            "-rfo",
            "rfo-",
            "",
            &"a".repeat(64),
        ] {
            assert!(validate_bucket_name(name).is_err(), "{name:?} was accepted");
        }
    }
}
