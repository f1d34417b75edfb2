//! Job rows and their detections.
//!
//! Every write is keyed by the job id, so that a job delivered twice (after a worker crashed
//! between recording it and committing its offset) still leaves exactly one row.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::job::{Detection, JobStatus, JobView, PluginUse, Region, StageTimings};

/// Inserts the row of a job the API has just accepted.
pub async fn insert_queued(
    pool: &Pool,
    job_id: Uuid,
    image_key: &str,
    requested_plugin: Option<&str>,
    created_at: DateTime<Utc>,
) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO jobs (job_id, image_key, requested_plugin, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (job_id) DO NOTHING",
            &[&job_id, &image_key, &requested_plugin, &created_at],
        )
        .await?;
    Ok(())
}

/// Marks a job failed before it reached the queue (the broker rejected it).
pub async fn mark_rejected(pool: &Pool, job_id: Uuid, error: &str) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE jobs SET status = 'failed', error = $2, updated_at = now() WHERE job_id = $1",
            &[&job_id, &error],
        )
        .await?;
    Ok(())
}

/// The action a worker takes on a job it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Process it; this is attempt number `n`, counting from 1.
    Run(i32),
    /// It already reached a final status; only its offset needs committing.
    AlreadyFinished(JobStatus),
}

/// Records that `worker_id` starts a job, creating the row if the API's insert is missing.
pub async fn start_attempt(
    pool: &Pool,
    job_id: Uuid,
    image_key: &str,
    requested_plugin: Option<&str>,
    submitted_at: DateTime<Utc>,
    worker_id: &str,
) -> Result<Attempt, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "INSERT INTO jobs (job_id, image_key, requested_plugin, status, attempts, worker_id, \
                               created_at, updated_at, started_at) \
             VALUES ($1, $2, $3, 'processing', 1, $4, $5, now(), now()) \
             ON CONFLICT (job_id) DO UPDATE \
               SET status = 'processing', attempts = jobs.attempts + 1, \
                   worker_id = EXCLUDED.worker_id, started_at = now(), updated_at = now() \
               WHERE jobs.status IN ('queued', 'processing') \
             RETURNING attempts",
            &[
                &job_id,
                &image_key,
                &requested_plugin,
                &worker_id,
                &submitted_at,
            ],
        )
        .await?;
    if let Some(row) = row {
        return Ok(Attempt::Run(row.get(0)));
    }
    let status: String = client
        .query_one("SELECT status FROM jobs WHERE job_id = $1", &[&job_id])
        .await?
        .get(0);
    Ok(Attempt::AlreadyFinished(
        JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
    ))
}

/// The result of a job that succeeded.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub job_id: Uuid,
    pub overlay_key: &'a str,
    pub plugin_name: &'a str,
    pub plugin_version: &'a str,
    pub plugin_sha256: &'a str,
    pub detections: &'a [Detection],
    pub timings: &'a StageTimings,
}

/// Records a finished job and replaces its detections, in one transaction.
pub async fn finish_done(pool: &Pool, done: &Finished<'_>) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let timings = serde_json::to_value(done.timings).expect("timings serialise");
    tx.execute(
        "UPDATE jobs SET status = 'done', overlay_key = $2, plugin_name = $3, plugin_version = $4, \
                plugin_sha256 = $5, error = NULL, timings_ms = $6, finished_at = now(), \
                updated_at = now() \
         WHERE job_id = $1",
        &[
            &done.job_id,
            &done.overlay_key,
            &done.plugin_name,
            &done.plugin_version,
            &done.plugin_sha256,
            &timings,
        ],
    )
    .await?;
    tx.execute("DELETE FROM detections WHERE job_id = $1", &[&done.job_id])
        .await?;
    if !done.detections.is_empty() {
        insert_detections(&tx, done.job_id, done.detections).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_detections(
    tx: &deadpool_postgres::Transaction<'_>,
    job_id: Uuid,
    detections: &[Detection],
) -> Result<(), DbError> {
    // One statement for all rows: arrays of columns unnested server-side.
    let mut idx = Vec::with_capacity(detections.len());
    let mut labels = Vec::with_capacity(detections.len());
    let mut scores = Vec::with_capacity(detections.len());
    let mut xs = Vec::with_capacity(detections.len());
    let mut ys = Vec::with_capacity(detections.len());
    let mut widths = Vec::with_capacity(detections.len());
    let mut heights = Vec::with_capacity(detections.len());
    for (i, d) in detections.iter().enumerate() {
        idx.push(i as i32);
        labels.push(d.label.as_str());
        scores.push(d.score);
        xs.push(d.region.x as i32);
        ys.push(d.region.y as i32);
        widths.push(d.region.width as i32);
        heights.push(d.region.height as i32);
    }
    tx.execute(
        "INSERT INTO detections (job_id, idx, label, score, x, y, width, height) \
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::real[], $5::int[], $6::int[], \
                                  $7::int[], $8::int[])",
        &[&job_id, &idx, &labels, &scores, &xs, &ys, &widths, &heights],
    )
    .await?;
    Ok(())
}

/// Stores the time the finishing transaction took, which it cannot record about itself.
pub async fn set_record_time(pool: &Pool, job_id: Uuid, millis: f64) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE jobs SET timings_ms = jsonb_set(timings_ms, '{record}', to_jsonb($2::float8)) \
             WHERE job_id = $1 AND timings_ms IS NOT NULL",
            &[&job_id, &millis],
        )
        .await?;
    Ok(())
}

/// Records a job that cannot succeed, with the reason.
pub async fn finish_failed(
    pool: &Pool,
    job_id: Uuid,
    plugin: Option<&PluginUse>,
    error: &str,
) -> Result<(), DbError> {
    let client = pool.get().await?;
    let (name, version, sha256) = match plugin {
        Some(p) => (p.name.as_deref(), p.version.as_deref(), p.sha256.as_deref()),
        None => (None, None, None),
    };
    client
        .execute(
            "UPDATE jobs SET status = 'failed', error = $2, plugin_name = $3, plugin_version = $4, \
                    plugin_sha256 = $5, finished_at = now(), updated_at = now() \
             WHERE job_id = $1",
            &[&job_id, &error, &name, &version, &sha256],
        )
        .await?;
    Ok(())
}

const JOB_COLUMNS: &str = "job_id, created_at, updated_at, image_key, status, overlay_key, \
    requested_plugin, plugin_name, plugin_version, plugin_sha256, error, attempts, timings_ms";

/// Reads one job with its detections.
pub async fn find(pool: &Pool, job_id: Uuid) -> Result<Option<JobView>, DbError> {
    let client = pool.get().await?;
    let query = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1");
    let Some(row) = client.query_opt(&query, &[&job_id]).await? else {
        return Ok(None);
    };
    let mut detections = detections_of(&client, &[job_id]).await?;
    Ok(Some(job_from_row(
        &row,
        detections.remove(&job_id).unwrap_or_default(),
    )))
}

/// Reads the `limit` newest jobs, newest first.
pub async fn recent(pool: &Pool, limit: i64) -> Result<Vec<JobView>, DbError> {
    let client = pool.get().await?;
    let query =
        format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, job_id DESC LIMIT $1");
    let rows = client.query(&query, &[&limit]).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get("job_id")).collect();
    let mut detections = detections_of(&client, &ids).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let id: Uuid = row.get("job_id");
            job_from_row(row, detections.remove(&id).unwrap_or_default())
        })
        .collect())
}

async fn detections_of(
    client: &deadpool_postgres::Client,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Detection>>, DbError> {
    let rows = client
        .query(
            "SELECT job_id, label, score, x, y, width, height FROM detections \
             WHERE job_id = ANY($1) ORDER BY job_id, idx",
            &[&ids],
        )
        .await?;
    let mut by_job: HashMap<Uuid, Vec<Detection>> = HashMap::new();
    for row in rows {
        by_job.entry(row.get(0)).or_default().push(Detection {
            label: row.get(1),
            score: row.get(2),
            region: Region {
                x: row.get::<_, i32>(3) as u32,
                y: row.get::<_, i32>(4) as u32,
                width: row.get::<_, i32>(5) as u32,
                height: row.get::<_, i32>(6) as u32,
            },
        });
    }
    Ok(by_job)
}

fn job_from_row(row: &Row, detections: Vec<Detection>) -> JobView {
    let status: String = row.get("status");
    let timings: Option<serde_json::Value> = row.get("timings_ms");
    let top_box = detections
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .map(|d| d.region);
    JobView {
        job_id: row.get("job_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        image_key: row.get("image_key"),
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        overlay_key: row.get("overlay_key"),
        top_box,
        detections,
        plugin: PluginUse {
            requested: row.get("requested_plugin"),
            name: row.get("plugin_name"),
            version: row.get("plugin_version"),
            sha256: row.get("plugin_sha256"),
        },
        error: row.get("error"),
        attempts: row.get("attempts"),
        timings_ms: timings.and_then(|v| serde_json::from_value(v).ok()),
    }
}
