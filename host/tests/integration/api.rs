//! The HTTP API against the local servers: validation, `/recent`, `/health`, `/jobs/{id}`.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{Stack, proxy::Proxy};
use chrono::{TimeDelta, Utc};
use rfo_common::job::JobView;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread")]
async fn submit_rejects_invalid_requests() {
    let stack = Stack::start("bad-requests").await;
    let cases = [
        ("{not json", "not valid JSON"),
        ("{}", "image_key is missing"),
        (r#"{"image_key": ""}"#, "image_key is empty"),
        (r#"{"image_key": 42}"#, "must be a string"),
        (r#"{"image_key": "a\u0000b"}"#, "control character"),
        (
            r#"{"image_key": "a.png", "plugn": "anatomy"}"#,
            "unknown field",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = stack.submit_raw(body).await;
        assert_eq!(status, 400, "body {body:?} answered {status}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "body {body:?}: {message:?} lacks {expected:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_answers_original_fields_and_queues_row() {
    let stack = Stack::start("submit-fields").await;
    let (status, answer) = stack.submit_raw(r#"{"image_key": "a.png"}"#).await;

    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["queued"], true);
    assert_eq!(answer["topic"], stack.env["KAFKA_TOPIC"].as_str());
    assert_eq!(answer["image_key"], "a.png");
    let job_id: Uuid = answer["job_id"].as_str().unwrap().parse().unwrap();
    let job = stack.job(job_id).await;
    assert_eq!(job.status, rfo_common::job::JobStatus::Queued);
    assert_eq!(job.image_key, "a.png");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_job_id_answers_404_and_bad_id_400() {
    let stack = Stack::start("job-lookup").await;
    let (status, _) = stack.get_json(&format!("/jobs/{}", Uuid::now_v7())).await;
    assert_eq!(status, 404);
    let (status, body) = stack.get_json("/jobs/not-a-uuid").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not a job id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_naming_plugin_without_workers_is_503() {
    let stack = Stack::start("no-workers").await;
    let (status, answer) = stack
        .submit_raw(r#"{"image_key": "a.png", "plugin": "x-ray-vision"}"#)
        .await;
    assert_eq!(status, 503, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("no worker is running"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_path_answers_json_404() {
    let stack = Stack::start("unknown-path").await;
    let (status, body) = stack.get_json("/nowhere").await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("/nowhere"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recent_is_newest_first_and_clamped() {
    let stack = Stack::start("recent").await;
    let pool = stack.pool();
    let start = Utc::now() - TimeDelta::hours(1);
    let mut ids = Vec::new();
    for i in 0..105 {
        let id = Uuid::now_v7();
        let created = start + TimeDelta::seconds(i);
        rfo_common::db::jobs::insert_queued(&pool, id, &format!("img-{i}.png"), None, created)
            .await
            .unwrap();
        ids.push(id);
    }

    let recent = |query: &'static str| {
        let stack = &stack;
        async move {
            let (status, body) = stack.get_json(&format!("/recent{query}")).await;
            assert_eq!(status, 200, "{query}: {body}");
            serde_json::from_value::<Vec<JobView>>(body).unwrap()
        }
    };

    let default = recent("").await;
    assert_eq!(default.len(), 10);
    assert_eq!(default[0].job_id, ids[104]);
    assert!(
        default
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );

    assert_eq!(recent("?n=3").await.len(), 3);
    assert_eq!(recent("?n=0").await.len(), 1);
    assert_eq!(recent("?n=-7").await.len(), 1);
    let clamped = recent("?n=1000").await;
    assert_eq!(clamped.len(), 100);
    assert_eq!(clamped[99].job_id, ids[5]);

    let (status, body) = stack.get_json("/recent?n=lots").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_names_postgresql_when_it_is_down() {
    let stack = Stack::start("health").await;
    let (status, body) = stack.get_json("/health").await;
    assert_eq!(status, 200, "{body}");

    // A second API whose PostgreSQL connection goes through a forwarder the test can cut.
    let db: SocketAddr = format!("{}:{}", stack.env["DB_HOST"], stack.env["DB_PORT"])
        .parse()
        .unwrap();
    let proxy = Proxy::start(db).await;
    let mut env = stack.env.clone();
    env.insert("DB_PORT", proxy.port.to_string());
    let (url, task) = support::start_api(&env).await;
    let health = || async {
        let response = stack
            .http
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(health().await.0, 200);

    proxy.cut();
    let (status, body) = health().await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("PostgreSQL"), "{error}");
    assert!(!error.contains("Kafka"), "{error}");
    assert_eq!(body["dependencies"]["postgresql"]["ok"], false);
    assert_eq!(body["dependencies"]["kafka"]["ok"], true);

    // Submissions fail cleanly while the database is down.
    let response = stack
        .http
        .post(format!("{url}/submit"))
        .body(r#"{"image_key": "a.png"}"#)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_answers_json_413() {
    let stack = Stack::start("big-body").await;
    let body = format!(r#"{{"image_key": "{}"}}"#, "k".repeat(70 * 1024));
    let (status, answer) = stack.submit_raw(&body).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("larger than 64 KiB"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_answers_json_405_with_allow() {
    let stack = Stack::start("wrong-method").await;
    let response = stack
        .http
        .delete(format!("{}/submit", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(allow.as_deref(), Some("POST"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("DELETE is not allowed"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_body_answers_json_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stack = Stack::start("stalled-body").await;
    let address = stack.api_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The body is announced as 40 bytes, and only 1 arrives.
    stream
        .write_all(
            b"POST /submit HTTP/1.1\r\nhost: rfo\r\ncontent-type: application/json\r\n\
              content-length: 40\r\n\r\n{",
        )
        .await
        .unwrap();

    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("no answer within 60 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not finish within 30 s"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connection_is_closed() {
    use tokio::io::AsyncReadExt;

    let stack = Stack::start("silent-client").await;
    let address = stack.api_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();

    // The client sends nothing; the server closes the connection after its header timeout.
    let limit = rfo_api::HEADER_READ_TIMEOUT + Duration::from_secs(15);
    let mut answer = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut answer))
        .await
        .expect("the API kept a silent connection open")
        .unwrap();
}
