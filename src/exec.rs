//! One run, start to finish: its status and spec written first, training
//! with metrics rewritten after every epoch, and a final status whatever
//! happens (a panic in libtorch becomes a `failed` run, not a crash).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Instant, SystemTime};

use tch::Device;

use crate::data::Data;
use crate::events::{Observer, SweepEvent};
use crate::plan::Run;
use crate::store::{LAYOUT_VERSION, RunState, Status, Store, StoreError};
use crate::train::{self, EpochRecord, Outcome, TrainEvent};

/// Facts about this process recorded in every status file.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub host: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
}

impl Provenance {
    /// Read the host name and the git state of the folder holding `path`.
    pub fn collect(path: &std::path::Path) -> Provenance {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let git_commit = git(&["rev-parse", "HEAD"]);
        let git_dirty = git_commit
            .as_ref()
            .and_then(|_| git(&["status", "--porcelain"]))
            .map(|s| !s.is_empty());
        Provenance {
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            git_commit,
            git_dirty,
        }
    }
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub struct RunContext<'a> {
    pub store: &'a Store,
    pub experiment: &'a str,
    pub data: &'a Data,
    pub device: Device,
    pub provenance: &'a Provenance,
}

/// Train `run` and record it. Errors are only those of the results folder
/// itself; a failing run is recorded as `failed` and returns Ok.
pub fn execute(
    ctx: &RunContext,
    run: &Run,
    index: usize,
    count: usize,
    observer: &mut dyn Observer,
) -> Result<RunState, StoreError> {
    let (store, exp) = (ctx.store, ctx.experiment);
    let device_name = train::device_name(ctx.device);
    let mut status = Status {
        layout_version: LAYOUT_VERSION,
        state: RunState::Running,
        started: now(),
        finished: None,
        host: ctx.provenance.host.clone(),
        device: device_name.clone(),
        converge_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: ctx.provenance.git_commit.clone(),
        git_dirty: ctx.provenance.git_dirty,
        torch_version: env!("CONVERGE_TORCH_VERSION").to_string(),
        parameters: None,
        diverged_at_epoch: None,
        error: None,
    };
    store.write_spec(exp, &run.id, &run.spec.canonical_json())?;
    store.write_status(exp, &run.id, &status)?;
    // Stale metrics of an interrupted attempt must not outlive it.
    store.write_metrics(exp, &run.id, &[])?;
    observer.event(&SweepEvent::RunStarted {
        experiment: exp,
        run,
        index,
        count,
        device: &device_name,
    });

    let clock = Instant::now();
    let mut rows: Vec<EpochRecord> = Vec::new();
    let mut write_error: Option<StoreError> = None;
    let result = {
        let mut on_event = |event: TrainEvent| {
            match &event {
                TrainEvent::Epoch(row) => {
                    rows.push((*row).clone());
                    if write_error.is_none() {
                        write_error = store.write_metrics(exp, &run.id, &rows).err();
                    }
                }
                TrainEvent::Started { .. } | TrainEvent::Step { .. } | TrainEvent::Finishing => {}
            }
            observer.event(&SweepEvent::Train(event));
        };
        catch_unwind(AssertUnwindSafe(|| {
            train::train(&run.spec, ctx.data, ctx.device, &mut on_event)
        }))
    };
    status.finished = Some(now());
    match result {
        Ok(trained) => {
            status.parameters = Some(trained.parameters);
            match trained.outcome {
                Outcome::Done => status.state = RunState::Done,
                Outcome::Diverged { epoch } => {
                    status.state = RunState::Diverged;
                    status.diverged_at_epoch = Some(epoch);
                }
            }
            for (name, bytes) in &trained.artifacts {
                store.write_artifact(exp, &run.id, name, bytes)?;
            }
        }
        Err(payload) => {
            status.state = RunState::Failed;
            status.error = Some(crate::panic_message(payload.as_ref()));
        }
    }
    if let Some(e) = write_error {
        status.state = RunState::Failed;
        status.error = Some(format!("could not write metrics: {e}"));
        store.write_status(exp, &run.id, &status)?;
        return Err(e);
    }
    store.write_status(exp, &run.id, &status)?;
    observer.event(&SweepEvent::RunFinished {
        experiment: exp,
        run,
        state: status.state,
        seconds: clock.elapsed().as_secs_f64(),
        last: rows.last(),
        error: status.error.as_deref(),
    });
    Ok(status.state)
}
