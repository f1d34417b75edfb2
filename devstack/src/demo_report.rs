//! The demo's per-image results and the table it prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::api_client::{Job, JobStatus};

/// Final state of one image's job.
pub enum Outcome {
    /// Never accepted by the API, with the reason.
    NotSubmitted(String),
    /// The API returned a final status (done or failed).
    Finished(Job),
    /// Still queued or processing when the demo stopped waiting.
    TimedOut(String),
}

/// One line of the result table.
pub struct Row {
    pub image_key: String,
    pub outcome: Outcome,
    /// Milliseconds from the API accepting the job to its final status.
    pub elapsed_ms: Option<u64>,
    pub overlay_path: Option<PathBuf>,
    pub download_error: Option<String>,
}

impl Row {
    pub fn new(image_key: String) -> Self {
        Self {
            image_key,
            outcome: Outcome::NotSubmitted("not submitted".to_owned()),
            elapsed_ms: None,
            overlay_path: None,
            download_error: None,
        }
    }

    /// Records a final job. The time comes from the job's own timestamps when both parse, so it
    /// excludes the demo's polling delay. Otherwise it is the time the demo measured.
    pub fn record_final(&mut self, job: Job, measured: Duration) {
        let server_ms = match (&job.created_at, &job.updated_at) {
            (Some(created), Some(updated)) => milliseconds_between(created, updated),
            _ => None,
        };
        let measured_ms = u64::try_from(measured.as_millis()).unwrap_or(u64::MAX);
        self.elapsed_ms = Some(server_ms.unwrap_or(measured_ms));
        self.outcome = Outcome::Finished(job);
    }

    /// True when the job is done and its overlay was downloaded.
    pub fn succeeded(&self) -> bool {
        matches!(&self.outcome, Outcome::Finished(job) if job.status == JobStatus::Done)
            && self.overlay_path.is_some()
    }

    pub fn status_text(&self) -> &'static str {
        match &self.outcome {
            Outcome::NotSubmitted(_) => "rejected",
            Outcome::Finished(job) => job.status.as_str(),
            Outcome::TimedOut(_) => "timed out",
        }
    }

    /// Returns why this row did not succeed, if it did not.
    fn problem(&self) -> Option<String> {
        match &self.outcome {
            Outcome::NotSubmitted(message) | Outcome::TimedOut(message) => Some(message.clone()),
            Outcome::Finished(job) if job.status == JobStatus::Failed => Some(
                job.error
                    .clone()
                    .unwrap_or_else(|| "failed without an error message".to_owned()),
            ),
            Outcome::Finished(_) => self.download_error.clone(),
        }
    }

    fn cells(&self) -> [String; 6] {
        let (plugin, detections) = match &self.outcome {
            Outcome::Finished(job) => (plugin_cell(job), detections_cell(job)),
            _ => ("-".to_owned(), "-".to_owned()),
        };
        let elapsed = self
            .elapsed_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        let overlay = self
            .overlay_path
            .as_ref()
            .map_or_else(|| "-".to_owned(), |path| path.display().to_string());
        [
            self.image_key.clone(),
            self.status_text().to_owned(),
            plugin,
            detections,
            elapsed,
            overlay,
        ]
    }
}

/// Prints the rows as an aligned table, then one line per row that did not succeed.
pub fn print_table(rows: &[Row]) {
    const HEADER: [&str; 6] = [
        "image",
        "status",
        "plugin",
        "detections",
        "time ms",
        "overlay",
    ];
    let cells: Vec<[String; 6]> = rows.iter().map(Row::cells).collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    println!();
    println!("{}", format_line(&HEADER.map(str::to_owned), &widths));
    println!(
        "{}",
        format_line(&widths.map(|width| "-".repeat(width)), &widths)
    );
    for row in &cells {
        println!("{}", format_line(row, &widths));
    }

    let problems: Vec<(String, String)> = rows
        .iter()
        .filter_map(|row| {
            row.problem()
                .map(|problem| (row.image_key.clone(), problem))
        })
        .collect();
    if !problems.is_empty() {
        println!();
        for (image, problem) in problems {
            println!("{image}: {problem}");
        }
    }
    println!();
}

/// Joins cells with two spaces, left-aligned, without trailing spaces.
fn format_line(cells: &[String; 6], widths: &[usize; 6]) -> String {
    let mut line = String::new();
    for (index, (cell, &width)) in cells.iter().zip(widths).enumerate() {
        if index + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let _ = write!(line, "{cell:<width$}  ");
        }
    }
    line.trim_end().to_owned()
}

/// Formats `name@version` of the plugin that ran the job, or the requested one if none ran.
fn plugin_cell(job: &Job) -> String {
    let Some(plugin) = &job.plugin else {
        return "-".to_owned();
    };
    match (&plugin.name, &plugin.version, &plugin.requested) {
        (Some(name), Some(version), _) => format!("{name}@{version}"),
        (Some(name), None, _) => name.clone(),
        (None, _, Some(requested)) => format!("{requested} (requested)"),
        (None, _, None) => "-".to_owned(),
    }
}

/// Formats the detection count followed by the labels, for example `3 (anatomy, metal x2)`.
fn detections_cell(job: &Job) -> String {
    if job.detections.is_empty() {
        return "0".to_owned();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for detection in &job.detections {
        *counts.entry(detection.label.as_str()).or_default() += 1;
    }
    let labels: Vec<String> = counts
        .into_iter()
        .map(|(label, count)| match count {
            1 => label.to_owned(),
            _ => format!("{label} x{count}"),
        })
        .collect();
    format!("{} ({})", job.detections.len(), labels.join(", "))
}

/// Returns the milliseconds from `start` to `end`, both RFC 3339, or `None` if either does not
/// parse or `end` is earlier.
fn milliseconds_between(start: &str, end: &str) -> Option<u64> {
    let start = DateTime::<FixedOffset>::parse_from_rfc3339(start).ok()?;
    let end = DateTime::<FixedOffset>::parse_from_rfc3339(end).ok()?;
    u64::try_from((end - start).num_milliseconds()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_client::Detection;

    fn job_with_labels(labels: &[&str]) -> Job {
        Job {
            status: JobStatus::Done,
            created_at: None,
            updated_at: None,
            overlay_key: None,
            detections: labels
                .iter()
                .map(|label| Detection {
                    label: (*label).to_owned(),
                })
                .collect(),
            plugin: None,
            error: None,
        }
    }

    #[test]
    fn detections_cell_counts_labels() {
        assert_eq!(detections_cell(&job_with_labels(&[])), "0");
        assert_eq!(detections_cell(&job_with_labels(&["metal"])), "1 (metal)");
        assert_eq!(
            detections_cell(&job_with_labels(&["metal", "anatomy", "metal"])),
            "3 (anatomy, metal x2)"
        );
    }

    #[test]
    fn milliseconds_between_uses_offsets() {
        let ms = milliseconds_between("2025-01-01T10:00:00.000Z", "2025-01-01T11:00:00.250+01:00");
        assert_eq!(ms, Some(250));
        assert_eq!(
            milliseconds_between("2025-01-01T10:00:01Z", "2025-01-01T10:00:00Z"),
            None
        );
        assert_eq!(
            milliseconds_between("yesterday", "2025-01-01T10:00:00Z"),
            None
        );
    }

    #[test]
    fn format_line_aligns_cells() {
        let cells = ["a", "done", "p@1", "0", "12", "/x.png"].map(str::to_owned);
        let line = format_line(&cells, &[3, 6, 3, 1, 4, 6]);
        assert_eq!(line, "a    done    p@1  0  12    /x.png");
    }
}
