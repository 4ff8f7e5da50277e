//! The JSON results document, for machines.

use std::path::Path;

use serde::Serialize;

use crate::error::{IoContext, Result};
use crate::gate::{self, Verdict};
use crate::suites::{Status, SuiteResult};

/// The version of the document's shape; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// The whole document: verdict, totals, properties and every result.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub format_version: u32,
    pub verdict: Verdict,
    pub totals: Totals,
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// Benchmark suites' scores: suite name → overall and per-section score.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scores: std::collections::BTreeMap<String, gate::Scorecard>,
    pub suites: &'a [SuiteResult],
}

/// Counts of results by status over all suites.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub checks: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
    pub not_applicable: usize,
    pub not_reviewed: usize,
    pub waived: usize,
}

/// Builds the document for `results`.
pub fn document<'a>(results: &'a [SuiteResult], properties: &[(String, String)]) -> Document<'a> {
    let mut totals = Totals::default();
    for sr in results {
        totals.checks += sr.results.len();
        totals.passed += sr.count(Status::Passed);
        totals.failed += sr.count(Status::Failed);
        totals.errors += sr.count(Status::Error);
        totals.skipped += sr.count(Status::Skipped);
        totals.not_applicable += sr.count(Status::NotApplicable);
        totals.not_reviewed += sr.count(Status::NotReviewed);
        totals.waived += sr.count(Status::Waived);
    }
    Document {
        format_version: FORMAT_VERSION,
        verdict: gate::evaluate(results),
        totals,
        properties: properties
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect(),
        scores: results
            .iter()
            .filter_map(|sr| Some((sr.suite.clone(), gate::scorecard(sr)?)))
            .collect(),
        suites: results,
    }
}

/// The document as pretty-printed JSON.
pub fn render(results: &[SuiteResult], properties: &[(String, String)]) -> String {
    serde_json::to_string_pretty(&document(results, properties)).expect("results serialize")
}

/// Writes the document to `path`, creating parent directories.
pub fn write(path: &Path, results: &[SuiteResult], properties: &[(String, String)]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at("creating", dir)?;
    }
    std::fs::write(path, render(results, properties) + "\n").at("writing", path)
}

/// Writes the promotion's outcome: `promotion.json` beside the results document, and, when
/// this run verified the image (`verified`, the results document it wrote), a `promotion`
/// object in that document too.
pub fn write_promotion(
    results: &Path,
    promotion: &crate::promote::Promotion,
    verified: Option<&Path>,
) -> Result<()> {
    let value = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "complete": promotion.failed().is_empty(),
        "image": promotion.image,
        "images": promotion.images(),
        "regions": promotion.regions,
        "deleted": promotion.deleted,
        "warnings": promotion.warnings,
        "rerun": promotion.rerun,
    });
    let own = results.with_file_name("promotion.json");
    if let Some(dir) = own.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at("creating", dir)?;
    }
    let text = serde_json::to_string_pretty(&value).expect("a promotion serializes");
    std::fs::write(&own, text + "\n").at("writing", &own)?;
    if let Some(doc) = verified {
        let text = std::fs::read_to_string(doc).at("reading", doc)?;
        if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(&text) {
            map.insert("promotion".into(), value);
            let text = serde_json::to_string_pretty(&map).expect("a document serializes");
            std::fs::write(doc, text + "\n").at("writing", doc)?;
        }
    }
    Ok(())
}

/// Adds `key: value` to the results document at `path` (written by [`write`]).
pub fn add(path: &Path, key: &str, value: serde_json::Value) -> Result<()> {
    let text = std::fs::read_to_string(path).at("reading", path)?;
    if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(&text) {
        map.insert(key.into(), value);
        let text = serde_json::to_string_pretty(&map).expect("a document serializes");
        std::fs::write(path, text + "\n").at("writing", path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::CheckResult;
    use std::time::Duration;

    #[test]
    fn document_has_verdict_totals_and_results() {
        let sr = SuiteResult {
            suite: "smoke".into(),
            probe: "vm-1".into(),
            results: vec![CheckResult {
                id: "a".into(),
                title: "A".into(),
                kind: "command".into(),
                tags: vec!["t".into()],
                status: Status::Failed,
                expected: Some("exit-status: 0".into()),
                actual: Some("exit-status: 1".into()),
                message: "m".into(),
                output: "o".into(),
                duration: Duration::from_millis(1500),
                attempts: 2,
                control: None,
                experiment: None,
            }],
            duration: Duration::from_secs(2),
            benchmark: None,
        };
        let v: serde_json::Value =
            serde_json::from_str(&render(&[sr], &[("image".into(), "img-1".into())])).unwrap();
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["verdict"]["passed"], false);
        assert_eq!(v["totals"]["failed"], 1);
        assert_eq!(v["properties"]["image"], "img-1");
        let r = &v["suites"][0]["results"][0];
        assert_eq!(r["status"], "failed");
        assert_eq!(r["duration_secs"], 1.5);
        assert_eq!(r["expected"], "exit-status: 0");
        assert_eq!(r["attempts"], 2);
    }
}
