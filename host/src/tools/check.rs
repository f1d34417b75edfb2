//! `rfo plugin check`: the conformance suite a plugin must pass before operators deploy it.
//!
//! Every case runs on a fresh instance under the same limits as the worker. The suite uses
//! synthetic images, so it needs no files or servers: a plugin's own result of "I cannot handle
//! this image" (a `detect-error`) passes where a case allows it, but a trap never does.

use std::path::Path;
use std::time::Instant;

use crate::plugin::runtime::{Compiled, PluginInfo, WitDetection, WitImage};
use crate::plugin::{Limits, PluginError, PluginRuntime, selftest};

/// The result of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
    pub millis: f64,
}

/// Runs every case against the component at `path`.
pub fn check(path: &Path, limits: &Limits) -> anyhow::Result<Vec<CaseResult>> {
    let runtime = PluginRuntime::new()?;
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("failed to read plugin {}: {e}", path.display()))?;

    let mut results = Vec::new();
    let clock = Instant::now();
    let compiled = runtime.compile(&bytes);
    results.push(CaseResult {
        name: "exports rfo:detector/plugin@0.1",
        passed: compiled.is_ok(),
        detail: match &compiled {
            Ok(_) => format!("{} bytes compiled", bytes.len()),
            Err(reason) => reason.clone(),
        },
        millis: since(clock),
    });
    let Ok(compiled) = compiled else {
        return Ok(results);
    };

    let suite = Suite {
        runtime: &runtime,
        compiled: &compiled,
        limits,
    };
    let info = suite.metadata_case(&mut results);
    suite.detect_cases(info.as_ref(), &mut results);
    Ok(results)
}

struct Suite<'a> {
    runtime: &'a PluginRuntime,
    compiled: &'a Compiled,
    limits: &'a Limits,
}

/// The outcomes a case accepts from `detect`.
#[derive(Clone, Copy)]
enum Expect {
    /// Valid detections.
    Detections,
    /// Valid detections or a `detect-error`.
    DetectionsOrError,
    /// A `detect-error`.
    Error,
}

impl Suite<'_> {
    fn metadata_case(&self, results: &mut Vec<CaseResult>) -> Option<PluginInfo> {
        let clock = Instant::now();
        let metadata = self.runtime.metadata(self.compiled, self.limits);
        let (passed, detail, info) = match metadata {
            Err(error) => (false, error.to_string(), None),
            Ok(info) => match check_info(&info) {
                Ok(()) => (
                    true,
                    format!(
                        "{} {} detects {}",
                        info.name,
                        info.version,
                        info.detects.join(", ")
                    ),
                    Some(info),
                ),
                Err(problem) => (false, problem, Some(info)),
            },
        };
        results.push(CaseResult {
            name: "metadata is well formed",
            passed,
            detail,
            millis: since(clock),
        });
        info
    }

    fn detect_cases(&self, info: Option<&PluginInfo>, results: &mut Vec<CaseResult>) {
        let cases: [(&'static str, WitImage, Expect); 9] = [
            (
                "self-test image",
                selftest::test_image(),
                Expect::Detections,
            ),
            (
                "8-bit grey 512x512",
                scene(512, 512, 8, 1),
                Expect::Detections,
            ),
            (
                "16-bit grey 512x512",
                scene(512, 512, 16, 1),
                Expect::Detections,
            ),
            (
                "8-bit RGB 256x256",
                scene(256, 256, 8, 3),
                Expect::DetectionsOrError,
            ),
            ("1x1 image", scene(1, 1, 16, 1), Expect::DetectionsOrError),
            (
                "large 4096x4096 16-bit",
                scene(4096, 4096, 16, 1),
                Expect::Detections,
            ),
            (
                "pixel count mismatch",
                truncated(scene(64, 64, 16, 1)),
                Expect::Error,
            ),
            (
                "bit depth 12",
                with_bit_depth(scene(64, 64, 16, 1), 12),
                Expect::Error,
            ),
            (
                "zero-size image",
                scene(0, 0, 8, 1),
                Expect::DetectionsOrError,
            ),
        ];
        for (name, image, expect) in &cases {
            results.push(self.detect_case(name, image, *expect, info));
        }
        results.push(self.determinism_case());
    }

    fn detect_case(
        &self,
        name: &'static str,
        image: &WitImage,
        expect: Expect,
        info: Option<&PluginInfo>,
    ) -> CaseResult {
        let clock = Instant::now();
        let result = self.runtime.detect(self.compiled, image, self.limits);
        let millis = since(clock);
        let (passed, detail) = match (result, expect) {
            (Ok(found), Expect::Detections | Expect::DetectionsOrError) => {
                match check_labels(&found, info) {
                    Ok(()) => (true, format!("{} detection(s)", found.len())),
                    Err(problem) => (false, problem),
                }
            }
            (Ok(found), Expect::Error) => (
                false,
                format!(
                    "returned {} detection(s) for an invalid image instead of an error",
                    found.len()
                ),
            ),
            (Err(PluginError::Rejected(message)), Expect::Error | Expect::DetectionsOrError) => {
                (true, format!("rejected: {message}"))
            }
            (Err(error), _) => (false, error.to_string()),
        };
        CaseResult {
            name,
            passed,
            detail,
            millis,
        }
    }

    fn determinism_case(&self) -> CaseResult {
        let clock = Instant::now();
        let image = scene(512, 512, 16, 1);
        let first = self.runtime.detect(self.compiled, &image, self.limits);
        let second = self.runtime.detect(self.compiled, &image, self.limits);
        let (passed, detail) = match (first, second) {
            (Ok(a), Ok(b)) if a == b => (true, format!("{} detection(s) twice", a.len())),
            (Ok(_), Ok(_)) => (
                false,
                "two runs on the same image gave different detections".to_owned(),
            ),
            (Err(error), _) | (_, Err(error)) => (false, error.to_string()),
        };
        CaseResult {
            name: "same output for the same input",
            passed,
            detail,
            millis: since(clock),
        }
    }
}

fn check_info(info: &PluginInfo) -> Result<(), String> {
    rfo_common::job::check_plugin_name(&info.name)?;
    let parts: Vec<&str> = info
        .version
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .collect();
    if parts.len() != 3 || parts.iter().any(|p| p.parse::<u64>().is_err()) {
        return Err(format!(
            "version {:?} is not semver (MAJOR.MINOR.PATCH)",
            info.version
        ));
    }
    if info.detects.is_empty() {
        return Err("detects is empty: list the labels detect() can return".to_owned());
    }
    Ok(())
}

fn check_labels(found: &[WitDetection], info: Option<&PluginInfo>) -> Result<(), String> {
    let Some(info) = info else {
        return Ok(());
    };
    match found.iter().find(|d| !info.detects.contains(&d.label)) {
        Some(d) => Err(format!(
            "label {:?} is not among the labels metadata() declares ({})",
            d.label,
            info.detects.join(", ")
        )),
        None => Ok(()),
    }
}

/// Builds a synthetic radiograph: a soft gradient for anatomy with a few small dense squares for
/// metal.
fn scene(width: u32, height: u32, bit_depth: u8, channels: u8) -> WitImage {
    let bytes_per_sample = usize::from(bit_depth / 8);
    let mut pixels = Vec::with_capacity(
        width as usize * height as usize * usize::from(channels) * bytes_per_sample,
    );
    let max = if bit_depth == 16 { 65_535.0 } else { 255.0 };
    for y in 0..height {
        for x in 0..width {
            let dense = [(0.2, 0.3), (0.6, 0.5), (0.4, 0.8)]
                .iter()
                .any(|&(cx, cy)| {
                    let dx = (x as f32 / width.max(1) as f32 - cx).abs();
                    let dy = (y as f32 / height.max(1) as f32 - cy).abs();
                    dx < 0.02 && dy < 0.02
                });
            let level = if dense {
                0.95
            } else {
                0.15 + 0.35 * (x as f32 / width.max(1) as f32)
                    + 0.1 * (y as f32 / height.max(1) as f32)
            };
            let value = (level * max) as u16;
            for _ in 0..channels {
                if bit_depth == 16 {
                    pixels.extend_from_slice(&value.to_le_bytes());
                } else {
                    pixels.push(value as u8);
                }
            }
        }
    }
    WitImage {
        width,
        height,
        bit_depth,
        channels,
        pixels,
    }
}

fn truncated(mut image: WitImage) -> WitImage {
    image.pixels.truncate(image.pixels.len() / 2);
    image
}

fn with_bit_depth(mut image: WitImage, bit_depth: u8) -> WitImage {
    image.bit_depth = bit_depth;
    image
}

fn since(clock: Instant) -> f64 {
    clock.elapsed().as_secs_f64() * 1e3
}

/// Prints the results as a table; returns whether every case passed.
pub fn print_table(plugin: &Path, results: &[CaseResult]) -> bool {
    println!("conformance of {}", plugin.display());
    println!("  {:<4} {:<34} {:>9}  detail", "", "case", "ms");
    for r in results {
        let mark = if r.passed { "pass" } else { "FAIL" };
        println!("  {mark:<4} {:<34} {:>9.1}  {}", r.name, r.millis, r.detail);
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    failed == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_has_expected_length() {
        let image = scene(10, 7, 16, 3);
        assert_eq!(image.pixels.len(), 10 * 7 * 3 * 2);
        assert_eq!(scene(0, 0, 8, 1).pixels.len(), 0);
    }

    #[test]
    fn info_check_rejects_bad_version() {
        let info = PluginInfo {
            name: "x".into(),
            version: "one".into(),
            detects: vec!["metal".into()],
            description: String::new(),
        };
        assert!(check_info(&info).unwrap_err().contains("semver"));
    }
}
