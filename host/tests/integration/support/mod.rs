//! A test stack: the API in-process, workers as child processes, and the shared local servers
//! that `scripts/stack.sh` starts (PostgreSQL, the mock Kafka broker, the S3-protocol server).
//!
//! Each [`Stack`] gets its own database, topic, consumer group, buckets and plugin folder, so
//! tests run in parallel against one set of servers without seeing each other's jobs.

#![allow(dead_code)]

pub mod proxy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use rfo_api::App;
use rfo_api::config::ApiConfig;
use rfo_common::job::{JobStatus, JobView};
use rfo_common::kafka::KafkaConfig;
use rfo_common::s3::S3Config;
use serde_json::Value;
use uuid::Uuid;

/// The variables `scripts/stack.sh` exports that every test needs.
const STACK_VARS: [&str; 7] = [
    "KAFKA_BOOTSTRAP",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "S3_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

fn stack_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the local servers; run them with scripts/test.sh \
             (or source .rfo/stack.env after scripts/stack.sh start)"
        )
    })
}

/// Returns the repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Returns the path of a radiograph in `examples/radiographs`.
pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples/radiographs").join(name)
}

/// Returns the path of a built plugin in `target/plugins` (`testing/NAME` for the hostile ones).
pub fn built_plugin(name: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with plugins/build.sh",
        path.display()
    );
    path
}

/// Reads a built plugin, or returns `None` when it has not been built.
pub fn plugin_bytes(name: &str) -> Option<Vec<u8>> {
    std::fs::read(plugins_dir().join(format!("{name}.wasm"))).ok()
}

/// Returns the folder of built plugins: `RFO_TEST_PLUGINS`, by default `target/plugins`.
fn plugins_dir() -> PathBuf {
    std::env::var("RFO_TEST_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/plugins"))
}

pub struct Stack {
    pub name: String,
    pub env: HashMap<&'static str, String>,
    pub api_url: String,
    pub plugin_dir: PathBuf,
    pub s3: aws_sdk_s3::Client,
    pub http: reqwest::Client,
    pub input_bucket: String,
    pub output_bucket: String,
    api_task: tokio::task::JoinHandle<()>,
    workers: Vec<Child>,
    _plugin_tmp: TempDir,
}

impl Stack {
    /// Creates a database, topic and buckets named after `name`, and starts the API.
    pub async fn start(name: &str) -> Self {
        rfo_common::telemetry::init();
        for var in STACK_VARS {
            stack_var(var);
        }
        let suffix = &Uuid::new_v4().simple().to_string()[..8];
        let unique = format!("{}_{suffix}", name.replace('-', "_"));
        let database = format!("t_{unique}");
        create_database(&database).await;
        // The mock broker has no CreateTopics; it creates a topic with 4 partitions on first use.
        let topic = format!("rfo-jobs-{unique}");

        let plugin_tmp = TempDir::new(&format!("rfo-plugins-{unique}"));
        let mut env: HashMap<&'static str, String> = HashMap::new();
        for var in STACK_VARS {
            env.insert(var, stack_var(var));
        }
        env.insert("DB_PASS", std::env::var("DB_PASS").unwrap_or_default());
        env.insert("DB_NAME", database);
        env.insert("KAFKA_TOPIC", topic);
        env.insert("KAFKA_GROUP", format!("rfo-workers-{unique}"));
        env.insert("KAFKA_FETCH_WAIT_MAX_MS", "20".into());
        env.insert("KAFKA_SESSION_TIMEOUT_MS", "6000".into());
        env.insert(
            "S3_INPUT_BUCKET",
            format!("in-{}", unique.replace('_', "-")),
        );
        env.insert(
            "S3_OUTPUT_BUCKET",
            format!("out-{}", unique.replace('_', "-")),
        );
        env.insert("AWS_REGION", "us-east-1".into());
        env.insert("AWS_EC2_METADATA_DISABLED", "true".into());
        env.insert("RFO_PLUGIN_DIR", plugin_tmp.path().display().to_string());
        env.insert("RFO_WORKER_FRESHNESS_SECS", "30".into());

        let s3_config = S3Config::from_env(&as_env(&env)).unwrap();
        let s3 = s3_config.client().await;
        for bucket in [&s3_config.input_bucket, &s3_config.output_bucket] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }

        let (api_url, api_task) = start_api(&env).await;
        Self {
            name: name.to_owned(),
            api_url,
            plugin_dir: plugin_tmp.path().to_owned(),
            s3,
            http: reqwest::Client::new(),
            input_bucket: s3_config.input_bucket,
            output_bucket: s3_config.output_bucket,
            api_task,
            workers: Vec::new(),
            env,
            _plugin_tmp: plugin_tmp,
        }
    }

    /// Copies a built plugin into this stack's plugin folder.
    pub fn install_plugin(&self, name: &str) {
        let source = built_plugin(name);
        let file = source.file_name().unwrap();
        std::fs::copy(&source, self.plugin_dir.join(file)).unwrap();
    }

    /// Starts a worker process with this stack's settings plus `extra`.
    pub fn start_worker(&mut self, extra: &[(&str, &str)]) -> usize {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rfo"));
        command.arg("worker").env_clear();
        for key in ["PATH", "HOME", "RUST_LOG"] {
            if let Ok(value) = std::env::var(key) {
                command.env(key, value);
            }
        }
        command.envs(&self.env);
        command.env(
            "RFO_WORKER_ID",
            format!("{}-w{}", self.name, self.workers.len()),
        );
        for (key, value) in extra {
            command.env(key, value);
        }
        command.stdin(Stdio::null());
        let child = command
            .spawn()
            .expect("failed to start the rfo worker binary");
        self.workers.push(child);
        self.workers.len() - 1
    }

    /// Waits for worker `index` to exit by itself; returns whether it exited within `timeout`.
    pub fn wait_worker_exit(&mut self, index: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.workers[index].try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends SIGKILL to worker `index`.
    pub fn kill_worker(&mut self, index: usize) {
        let _ = self.workers[index].kill();
        let _ = self.workers[index].wait();
    }

    /// Waits until a live worker has published `plugin` to PostgreSQL.
    pub async fn wait_plugin(&self, plugin: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let listing: Value = self.get_json("/plugins").await.1;
            let names: Vec<&str> = listing["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if names.contains(&plugin) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "plugin {plugin} not published within {timeout:?}; have {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn upload(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.input_bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap();
    }

    pub async fn upload_example(&self, name: &str) {
        self.upload(name, std::fs::read(example(name)).unwrap())
            .await;
    }

    pub async fn download_output(&self, key: &str) -> Vec<u8> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.output_bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("overlay {key} missing from the output bucket: {e:?}"));
        object.body.collect().await.unwrap().into_bytes().to_vec()
    }

    /// POSTs a raw body to `/submit`; returns the status and the JSON body.
    pub async fn submit_raw(&self, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/submit", self.api_url))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Submits a job and returns its id; panics unless the status is 202.
    pub async fn submit(&self, image_key: &str, plugin: Option<&str>) -> Uuid {
        let body = serde_json::json!({ "image_key": image_key, "plugin": plugin }).to_string();
        let (status, answer) = self.submit_raw(&body).await;
        assert_eq!(status, 202, "submit answered {status}: {answer}");
        answer["job_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.api_url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn job(&self, job_id: Uuid) -> JobView {
        let (status, body) = self.get_json(&format!("/jobs/{job_id}")).await;
        assert_eq!(status, 200, "GET /jobs/{job_id} answered {status}: {body}");
        serde_json::from_value(body).unwrap()
    }

    /// Polls a job until it is done or failed.
    pub async fn wait_finished(&self, job_id: Uuid, timeout: Duration) -> JobView {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(job_id).await;
            if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} still {:?} after {timeout:?}",
                job.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Produces raw bytes to this stack's jobs topic, as a client other than the API could.
    /// Returns the partition and offset the message landed at.
    pub async fn produce_raw(&self, key: &[u8], payload: &[u8]) -> (i32, i64) {
        let kafka = self.kafka_config();
        let producer: FutureProducer = kafka
            .producer_config()
            .set("message.max.bytes", "4000000")
            .create()
            .unwrap();
        let record = FutureRecord::to(&kafka.topic).key(key).payload(payload);
        let delivery = producer
            .send(record, Timeout::After(Duration::from_secs(15)))
            .await
            .map_err(|(error, _)| error)
            .unwrap();
        (delivery.partition, delivery.offset)
    }

    /// Reads every message on this stack's dead-letter topic, waiting up to `timeout` for at
    /// least `expected` of them, then half a second more for any extra.
    pub async fn dead_letters(&self, expected: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let kafka = self.kafka_config();
        let deadline = Instant::now() + timeout;
        let consumer: StreamConsumer = kafka
            .client_config()
            .set("group.id", format!("{}-reader", kafka.group))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        // Assign every partition from the start rather than join a group, which takes seconds.
        let partitions = loop {
            let metadata = consumer
                .fetch_metadata(Some(&kafka.dead_letter_topic), Duration::from_secs(5))
                .unwrap();
            let count = metadata.topics()[0].partitions().len();
            if count > 0 {
                break count;
            }
            assert!(
                Instant::now() < deadline,
                "dead-letter topic {} not created within {timeout:?}",
                kafka.dead_letter_topic
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(
                    &kafka.dead_letter_topic,
                    i32::try_from(partition).unwrap(),
                    Offset::Beginning,
                )
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();

        let mut letters = Vec::new();
        let mut settle = None;
        loop {
            let until = match settle {
                Some(until) => until,
                None if letters.len() >= expected => {
                    let until = Instant::now() + Duration::from_millis(500);
                    settle = Some(until);
                    until
                }
                None => deadline,
            };
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.recv()).await {
                Ok(message) => letters.push(message.unwrap().detach()),
                Err(_) => break,
            }
        }
        letters
    }

    /// Returns the offset this stack's worker group committed on a jobs topic partition.
    pub fn committed_offset(&self, partition: i32) -> Option<i64> {
        let kafka = self.kafka_config();
        let consumer: BaseConsumer = kafka
            .client_config()
            .set("group.id", &kafka.group)
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition(&kafka.topic, partition);
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(5))
            .unwrap();
        match committed.elements()[0].offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    }

    fn kafka_config(&self) -> KafkaConfig {
        KafkaConfig::from_env(&as_env(&self.env)).unwrap()
    }

    /// Opens a pool on this stack's database, for checks the API does not expose.
    pub fn pool(&self) -> deadpool_postgres::Pool {
        rfo_common::db::DbConfig::from_env(&as_env(&self.env))
            .unwrap()
            .pool()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.api_task.abort();
        for child in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn as_env<'a>(env: &'a HashMap<&'static str, String>) -> HashMap<&'static str, &'a str> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Starts the API on a free loopback port with `env`.
pub async fn start_api(
    env: &HashMap<&'static str, String>,
) -> (String, tokio::task::JoinHandle<()>) {
    let config = ApiConfig::from_env(&as_env(env)).unwrap();
    let app = App::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        app.serve(listener, std::future::pending()).await.unwrap();
    });
    (url, task)
}

async fn create_database(name: &str) {
    let mut config = tokio_postgres::Config::new();
    config
        .host(stack_var("DB_HOST"))
        .port(stack_var("DB_PORT").parse().unwrap())
        .user(stack_var("DB_USER"))
        .dbname(std::env::var("DB_NAME").unwrap_or_else(|_| "rfoapp".into()));
    if let Ok(password) = std::env::var("DB_PASS") {
        config.password(password);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
}

/// A temporary folder removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
