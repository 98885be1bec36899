//! Grid expansion: an `Experiment` becomes its run matrix, every run with a
//! fully resolved `RunSpec` and its content-hash id. No I/O.

use crate::manifest::Experiment;
use crate::spec::{RunSpec, TRAIN_REVISION};

/// One cell of the run matrix.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub spec: RunSpec,
    /// Every swept key with this run's value, learning rate and seed last.
    pub labels: Vec<(String, String)>,
}

impl Run {
    /// `lr=0.0003 seed=0`, with any other swept keys first.
    pub fn label(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn lr_text(&self) -> &str {
        self.value_of("lr").unwrap_or_default()
    }

    pub fn value_of(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The matrix: every variant (product of the non-lr axes) x learning rate x
/// seed, in that nesting order.
pub fn expand(exp: &Experiment) -> Vec<Run> {
    let mut runs = Vec::new();
    for variant in &exp.variants {
        for lr in &exp.lrs {
            for &seed in &exp.seeds {
                let spec = RunSpec {
                    model: variant.model.clone(),
                    data: exp.data.clone(),
                    training: variant.training.clone(),
                    lr: lr.value,
                    seed,
                    revision: TRAIN_REVISION,
                };
                let mut labels = variant.labels.clone();
                labels.push(("lr".to_string(), lr.text.clone()));
                labels.push(("seed".to_string(), seed.to_string()));
                runs.push(Run {
                    id: spec.id(),
                    spec,
                    labels,
                });
            }
        }
    }
    runs
}
