//! The errors a command can end with, each with its own exit code.

use crate::data::DataError;
use crate::manifest::ManifestError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("data: {0}")]
    Data(#[from] DataError),
    #[error("results: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Device(String),
    #[error("analysis: {0}")]
    Analysis(String),
    #[error("{0} run(s) failed; see their status.json for the error")]
    RunsFailed(usize),
}

impl Error {
    /// 2: a bad manifest or arguments (nothing was written); 3: the dataset
    /// is missing or corrupt; 4: the results folder cannot be used (locked,
    /// unwritable, corrupt); 5: some runs failed (the rest completed);
    /// 6: the requested device does not exist; 7: analysis failed.
    /// 1 is left for internal errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Manifest(_) => 2,
            Error::Data(_) => 3,
            Error::Store(_) => 4,
            Error::RunsFailed(_) => 5,
            Error::Device(_) => 6,
            Error::Analysis(_) => 7,
        }
    }
}
