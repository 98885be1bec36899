//! A run's status file and the states a run can be in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Done,
    /// A non-finite loss stopped training; the curve is kept and ranked.
    Diverged,
    Failed,
}

/// What plan reports for a run of the matrix (or one the manifest dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredState {
    New,
    Done,
    Diverged,
    Failed,
    /// Another converge process is training it now.
    Running,
    /// Marked running, but no process holds the experiment: it was killed.
    Interrupted,
    /// In the results, but no longer named by the manifest.
    Orphaned,
}

impl StoredState {
    /// Whether `converge run` keeps the stored result instead of training.
    pub fn is_final(self) -> bool {
        matches!(self, StoredState::Done | StoredState::Diverged)
    }

    pub fn name(self) -> &'static str {
        match self {
            StoredState::New => "new",
            StoredState::Done => "done",
            StoredState::Diverged => "diverged",
            StoredState::Failed => "failed",
            StoredState::Running => "running",
            StoredState::Interrupted => "interrupted",
            StoredState::Orphaned => "orphaned",
        }
    }
}

/// `status.json` of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub layout_version: u32,
    pub state: RunState,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: Option<String>,
    pub host: String,
    pub device: String,
    pub converge_version: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub torch_version: String,
    pub parameters: Option<i64>,
    /// The epoch at which a diverged run stopped.
    pub diverged_at_epoch: Option<i64>,
    pub error: Option<String>,
}
