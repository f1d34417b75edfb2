//! `rfo-devstack demo`: uploads every radiograph in a folder, submits each to a running rfo API,
//! waits for the jobs, downloads the overlays and prints a table of results.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::api_client::{ApiClient, Job, JobStatus};
use crate::demo_report::{Outcome, Row, print_table};
use crate::s3_client::{S3Settings, get_file, put_file, required_var};

/// File extensions the demo treats as radiographs (compared case-insensitively).
const RADIOGRAPH_EXTENSIONS: [&str; 4] = ["dcm", "png", "jpg", "jpeg"];

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Base URL of the rfo API, for example http://127.0.0.1:8080.
    #[arg(long, env = "RFO_API_URL")]
    api: String,
    /// Folder of radiographs (.dcm, .png, .jpg). Files are uploaded under their names.
    #[arg(long, default_value = "examples/radiographs")]
    input: PathBuf,
    /// Folder the overlays are downloaded to, as <image stem>.png.
    #[arg(long)]
    out: PathBuf,
    /// Plugin to request for every job. Without it the API picks its default.
    #[arg(long)]
    plugin: Option<String>,
    /// Seconds to wait for all jobs to finish, counted from the last submission.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Milliseconds between two polls of a job's status.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
}

/// A job the demo has submitted and not yet seen finish.
struct Pending {
    row: usize,
    job_id: String,
    submitted: Instant,
    last_seen: Option<Job>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let s3 = S3Settings::from_env()?.client();
    let input_bucket = required_var("S3_INPUT_BUCKET")?;
    let output_bucket = required_var("S3_OUTPUT_BUCKET")?;
    let api = ApiClient::new(&args.api)?;

    let images = list_radiographs(&args.input)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;

    let mut rows = Vec::with_capacity(images.len());
    for path in &images {
        let key = file_name(path)?;
        let size = put_file(&s3, &input_bucket, &key, path).await?;
        eprintln!("uploaded s3://{input_bucket}/{key} ({size} bytes)");
        rows.push(Row::new(key));
    }

    let mut pending = submit_all(&api, &mut rows, args.plugin.as_deref()).await;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let poll_interval = Duration::from_millis(args.poll_ms.max(10));
    while !pending.is_empty() && Instant::now() < deadline {
        poll_once(&api, &mut pending, &mut rows).await;
        if !pending.is_empty() {
            tokio::time::sleep(poll_interval).await;
        }
    }
    for job in pending {
        let row = &mut rows[job.row];
        let status = job
            .last_seen
            .map_or("not recorded by the API", |seen| seen.status.as_str());
        row.outcome = Outcome::TimedOut(format!(
            "job {} still {status} after {} s",
            job.job_id, args.timeout_secs
        ));
    }

    for row in &mut rows {
        download_overlay(&s3, &output_bucket, &args.out, row).await;
    }

    print_table(&rows);
    println!("overlays: {}", args.out.display());

    let failed = rows.iter().filter(|row| !row.succeeded()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} jobs did not succeed", rows.len());
    }
    Ok(())
}

/// Lists the radiographs directly inside `folder`, sorted by name.
fn list_radiographs(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("failed to list the input folder {}", folder.display()))?;
    let mut images = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("failed to list {}", folder.display()))?
            .path();
        let is_radiograph = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| {
                RADIOGRAPH_EXTENSIONS
                    .iter()
                    .any(|known| extension.eq_ignore_ascii_case(known))
            });
        if is_radiograph && path.is_file() {
            images.push(path);
        }
    }
    images.sort();
    if images.is_empty() {
        anyhow::bail!(
            "no .dcm, .png or .jpg files in {}: pass --input with a folder of radiographs",
            folder.display()
        );
    }
    Ok(images)
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))
}

/// Submits every row. A rejected submission marks its row failed instead of stopping the demo.
async fn submit_all(api: &ApiClient, rows: &mut [Row], plugin: Option<&str>) -> Vec<Pending> {
    let mut pending = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter_mut().enumerate() {
        match api.submit(&row.image_key, plugin).await {
            Ok(job_id) => {
                eprintln!("submitted {} as job {job_id}", row.image_key);
                pending.push(Pending {
                    row: index,
                    job_id,
                    submitted: Instant::now(),
                    last_seen: None,
                });
            }
            Err(error) => row.outcome = Outcome::NotSubmitted(format!("{error:#}")),
        }
    }
    pending
}

/// Polls each pending job once and moves the finished ones into their rows.
async fn poll_once(api: &ApiClient, pending: &mut Vec<Pending>, rows: &mut [Row]) {
    let total = rows.len();
    let mut index = 0;
    while index < pending.len() {
        let job = &mut pending[index];
        match api.job(&job.job_id).await {
            Ok(Some(seen)) if seen.status.is_final() => {
                let finished = pending.swap_remove(index);
                rows[finished.row].record_final(seen, finished.submitted.elapsed());
                let finished_count = rows
                    .iter()
                    .filter(|row| matches!(row.outcome, Outcome::Finished(_)))
                    .count();
                let row = &rows[finished.row];
                eprintln!(
                    "[{finished_count}/{total}] {} {} in {} ms",
                    row.image_key,
                    row.status_text(),
                    row.elapsed_ms.unwrap_or_default()
                );
                continue;
            }
            Ok(Some(seen)) => job.last_seen = Some(seen),
            // Not recorded yet, or the API is briefly unreachable: try again until the deadline.
            Ok(None) => {}
            Err(error) => eprintln!("warning: {error:#}"),
        }
        index += 1;
    }
}

/// Downloads a finished job's overlay to `out/<image stem>.png` and records the path.
async fn download_overlay(s3: &aws_sdk_s3::Client, bucket: &str, out: &Path, row: &mut Row) {
    let Outcome::Finished(job) = &row.outcome else {
        return;
    };
    if job.status != JobStatus::Done {
        return;
    }
    let Some(key) = job.overlay_key.clone() else {
        row.download_error = Some("the job is done but has no overlay_key".to_owned());
        return;
    };
    let stem = Path::new(&row.image_key).file_stem().map_or_else(
        || row.image_key.clone(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let path = out.join(format!("{stem}.png"));
    match get_file(s3, bucket, &key, &path).await {
        Ok(_) => row.overlay_path = Some(path),
        Err(error) => row.download_error = Some(format!("{error:#}")),
    }
}
