//! The results folder, a public interface (layout in README.md):
//!
//! ```text
//! results/<experiment>/
//!   .lock                     held while a `converge run` works here
//!   runs/<id>/spec.json       the run's canonical spec (its id is its hash)
//!   runs/<id>/metrics.csv     one row per epoch, epoch 0 before any update
//!   runs/<id>/status.json     state, times, host, device, versions, error
//!   report/ranking.csv        written by `converge report`
//! ```
//!
//! Every file is written to a temporary file in the same folder and renamed
//! over the old one, so a crash or kill leaves the old file or the new one,
//! never half of either.

mod status;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use status::{RunState, Status, StoredState};

use crate::train::EpochRecord;

/// Version of the results layout, written into every status file.
pub const LAYOUT_VERSION: u32 = 1;

pub struct Store {
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "another converge process is running experiment `{0}` (its lock {1} is held); wait for it or stop it"
    )]
    Locked(String, PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Held while a sweep writes into an experiment's folder.
pub struct ExperimentLock {
    _file: File,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn experiment_dir(&self, experiment: &str) -> PathBuf {
        self.root.join(experiment)
    }

    pub fn runs_dir(&self, experiment: &str) -> PathBuf {
        self.experiment_dir(experiment).join("runs")
    }

    pub fn run_dir(&self, experiment: &str, id: &str) -> PathBuf {
        self.runs_dir(experiment).join(id)
    }

    pub fn report_dir(&self, experiment: &str) -> PathBuf {
        self.experiment_dir(experiment).join("report")
    }

    fn lock_path(&self, experiment: &str) -> PathBuf {
        self.experiment_dir(experiment).join(".lock")
    }

    /// Take the experiment's lock, or fail at once if another process has it.
    pub fn lock(&self, experiment: &str) -> Result<ExperimentLock, StoreError> {
        let dir = self.experiment_dir(experiment);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = self.lock_path(experiment);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(ExperimentLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(StoreError::Locked(experiment.to_string(), path))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// Whether some process holds the experiment's lock right now.
    pub fn is_locked(&self, experiment: &str) -> bool {
        let Ok(file) = File::open(self.lock_path(experiment)) else {
            return false;
        };
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }

    /// Ids of every run folder of an experiment, sorted.
    pub fn stored_ids(&self, experiment: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.runs_dir(experiment);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.path().is_dir() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn read_status(&self, experiment: &str, id: &str) -> Result<Option<Status>, StoreError> {
        let path = self.run_dir(experiment, id).join("status.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        path,
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub fn write_status(
        &self,
        experiment: &str,
        id: &str,
        status: &Status,
    ) -> Result<(), StoreError> {
        let path = self.run_dir(experiment, id).join("status.json");
        let text = serde_json::to_string_pretty(status).expect("status serializes");
        write_atomic(&path, text.as_bytes())
    }

    pub fn write_spec(
        &self,
        experiment: &str,
        id: &str,
        canonical: &str,
    ) -> Result<(), StoreError> {
        let value: serde_json::Value = serde_json::from_str(canonical).expect("canonical JSON");
        let text = serde_json::to_string_pretty(&value).expect("JSON value serializes") + "\n";
        write_atomic(
            &self.run_dir(experiment, id).join("spec.json"),
            text.as_bytes(),
        )
    }

    pub fn metrics_path(&self, experiment: &str, id: &str) -> PathBuf {
        self.run_dir(experiment, id).join("metrics.csv")
    }

    /// Rewrite a run's whole metrics file (a few hundred rows at most).
    pub fn write_metrics(
        &self,
        experiment: &str,
        id: &str,
        rows: &[EpochRecord],
    ) -> Result<(), StoreError> {
        let path = self.metrics_path(experiment, id);
        write_atomic(&path, &metrics_csv(rows))
    }

    /// A file a model made at the end of a run, such as `samples.png`.
    pub fn write_artifact(
        &self,
        experiment: &str,
        id: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        write_atomic(&self.run_dir(experiment, id).join(name), bytes)
    }

    /// Whether this run's state means its results stand as they are.
    pub fn state(&self, experiment: &str, id: &str) -> Result<StoredState, StoreError> {
        Ok(match self.read_status(experiment, id)? {
            None => StoredState::New,
            Some(s) => match s.state {
                RunState::Done => StoredState::Done,
                RunState::Diverged => StoredState::Diverged,
                RunState::Failed => StoredState::Failed,
                RunState::Running if self.is_locked(experiment) => StoredState::Running,
                RunState::Running => StoredState::Interrupted,
            },
        })
    }
}

pub const METRICS_HEADER: [&str; 6] = [
    "epoch",
    "train_loss",
    "test_loss",
    "test_accuracy",
    "lr",
    "seconds",
];

/// Floats in their shortest round-trip form, so the file holds the exact
/// values training produced; a missing accuracy is an empty field.
fn metrics_csv(rows: &[EpochRecord]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(METRICS_HEADER).expect("write to memory");
    for r in rows {
        w.write_record([
            r.epoch.to_string(),
            r.train_loss.to_string(),
            r.test_loss.to_string(),
            r.test_accuracy.map(|a| a.to_string()).unwrap_or_default(),
            r.lr.to_string(),
            format!("{:.3}", r.seconds),
        ])
        .expect("write to memory");
    }
    w.into_inner().expect("flush to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.txt"]);
    }

    #[test]
    fn metrics_keep_full_precision_and_nan() {
        let rows = [EpochRecord {
            epoch: 1,
            train_loss: 0.1 + 0.2,
            test_loss: f64::NAN,
            test_accuracy: None,
            lr: 0.0003,
            seconds: 1.23456,
        }];
        let text = String::from_utf8(metrics_csv(&rows)).unwrap();
        assert_eq!(
            text,
            "epoch,train_loss,test_loss,test_accuracy,lr,seconds\n1,0.30000000000000004,NaN,,0.0003,1.235\n"
        );
    }

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let lock = store.lock("x").unwrap();
        assert!(store.is_locked("x"));
        assert!(matches!(store.lock("x"), Err(StoreError::Locked(..))));
        drop(lock);
        assert!(!store.is_locked("x"));
        store.lock("x").unwrap();
    }
}
