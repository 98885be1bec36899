//! The sweep: which runs of a study need training, and training them one
//! after another on the experiment's device.

use serde::Serialize;

use crate::data;
use crate::error::Error;
use crate::events::Observer;
use crate::exec::{self, Provenance, RunContext};
use crate::manifest::Experiment;
use crate::plan;
use crate::store::{RunState, Store, StoredState};
use crate::train;

/// One row of `converge plan`.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub experiment: String,
    pub id: String,
    pub state: StoredState,
    /// `lr=... seed=...`; empty for an orphaned run.
    pub label: String,
    pub spec: Option<serde_json::Value>,
}

/// Every run of an experiment's matrix with its stored state, then the runs
/// in its results that the manifest no longer names.
pub fn plan_rows(store: &Store, exp: &Experiment) -> Result<Vec<PlanRow>, Error> {
    let runs = plan::expand(exp);
    let mut rows = Vec::new();
    for run in &runs {
        rows.push(PlanRow {
            experiment: exp.name.clone(),
            id: run.id.clone(),
            state: store.state(&exp.name, &run.id)?,
            label: run.label(),
            spec: Some(serde_json::from_str(&run.spec.canonical_json()).expect("canonical JSON")),
        });
    }
    for id in store.stored_ids(&exp.name)? {
        if !runs.iter().any(|r| r.id == id) {
            rows.push(PlanRow {
                experiment: exp.name.clone(),
                id,
                state: StoredState::Orphaned,
                label: String::new(),
                spec: None,
            });
        }
    }
    Ok(rows)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub computed: usize,
    pub reused: usize,
    pub diverged: usize,
    pub failed: usize,
}

/// Train every run of the study that is not done. Each experiment is locked
/// while it runs; its data is loaded once, only if something needs training.
pub fn run_study(
    store: &Store,
    experiments: &[Experiment],
    observer: &mut dyn Observer,
) -> Result<Summary, Error> {
    let mut locks = Vec::new();
    let mut work = Vec::new();
    let mut summary = Summary::default();
    for exp in experiments {
        locks.push(store.lock(&exp.name)?);
        let runs = plan::expand(exp);
        let mut todo = Vec::new();
        for run in runs {
            if store.state(&exp.name, &run.id)?.is_final() {
                summary.reused += 1;
            } else {
                todo.push(run);
            }
        }
        work.push((exp, todo));
    }
    let count: usize = work.iter().map(|(_, todo)| todo.len()).sum();
    let mut index = 0;
    for (exp, todo) in work {
        if todo.is_empty() {
            continue;
        }
        let device = train::device(&exp.device).map_err(Error::Device)?;
        let data = data::load(&exp.data, &exp.data_dir, device)?;
        let provenance = Provenance::collect(&exp.path);
        let ctx = RunContext {
            store,
            experiment: &exp.name,
            data: &data,
            device,
            provenance: &provenance,
        };
        for run in &todo {
            index += 1;
            let state = exec::execute(&ctx, run, index, count, observer)?;
            summary.computed += 1;
            match state {
                RunState::Diverged => summary.diverged += 1,
                RunState::Failed => summary.failed += 1,
                RunState::Done | RunState::Running => {}
            }
        }
    }
    drop(locks);
    Ok(summary)
}
