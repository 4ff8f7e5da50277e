//! The state one run's stages share: its id, pipeline, provider, ledger, login key and timings.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cloud::{Provider, Tags, RUN_ID_TAG};
use crate::config::LoadedPipeline;
use crate::git::Commit;
use crate::ledger::Ledger;
use crate::transport::ssh::KeyPair;

/// How long each stage and step took, in order.
#[derive(Debug, Default)]
pub struct Timings(Mutex<Vec<(String, Duration)>>);

impl Timings {
    /// Adds a measurement.
    pub fn record(&self, name: &str, took: Duration) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), took));
    }

    /// Every measurement so far.
    pub fn all(&self) -> Vec<(String, Duration)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The state every stage of one run shares.
pub struct Run {
    pub id: String,
    pub loaded: LoadedPipeline,
    pub provider: Arc<dyn Provider>,
    pub ledger: Arc<Ledger>,
    /// The run's login key; its private half never leaves this process.
    pub key: KeyPair,
    pub commit: Option<Commit>,
    pub started: chrono::DateTime<chrono::Utc>,
    pub timings: Timings,
}

impl Run {
    /// Tags every resource of the run carries.
    pub fn resource_tags(&self) -> Tags {
        Tags::from([
            (RUN_ID_TAG.to_string(), self.id.clone()),
            ("bakery:created-by".to_string(), "bakery".to_string()),
        ])
    }

    /// The values of the `{{…}}` template variables.
    pub fn template_vars(&self) -> BTreeMap<&'static str, String> {
        let mut vars = BTreeMap::from([
            (
                "timestamp",
                self.started.format("%Y%m%d-%H%M%S").to_string(),
            ),
            ("run_id", self.id.clone()),
        ]);
        if let Some(c) = &self.commit {
            vars.insert("git.sha", c.sha.clone());
            vars.insert("git.short_sha", c.short_sha().to_string());
        }
        vars
    }
}
