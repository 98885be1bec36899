//! Datasets: MNIST read straight from its gzipped IDX files, checked, and
//! turned into tensors on the run's device.

pub mod mnist;

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::spec::{DataSpec, Dataset};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

impl DataError {
    pub fn file(path: &Path, reason: impl Into<String>) -> Self {
        DataError::File {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// A labelled image split: pixels in [0, 1], shape [N, 1, 28, 28]; labels
/// int64 [N].
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Data {
    pub train: Split,
    pub test: Split,
}

/// Load the data a run asks for, cut to its subset sizes, onto `device`.
pub fn load(spec: &DataSpec, dir: &Path, device: Device) -> Result<Data, DataError> {
    match spec.dataset {
        Dataset::Mnist => {
            let train = mnist::read(dir, mnist::Part::Train)?;
            let test = mnist::read(dir, mnist::Part::Test)?;
            Ok(Data {
                train: to_split(&train, spec.train_subset, device),
                test: to_split(&test, spec.test_subset, device),
            })
        }
    }
}

fn to_split(raw: &mnist::Images, subset: Option<u32>, device: Device) -> Split {
    let n = subset.map_or(raw.count, |s| (s as usize).min(raw.count));
    let pixels = raw.rows * raw.cols;
    let images = Tensor::from_slice(&raw.pixels[..n * pixels])
        .view([n as i64, 1, raw.rows as i64, raw.cols as i64])
        .to_kind(Kind::Float)
        / 255.0;
    let labels = Tensor::from_slice(&raw.labels[..n]).to_kind(Kind::Int64);
    Split {
        images: images.to_device(device),
        labels: labels.to_device(device),
    }
}
