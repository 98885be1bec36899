//! Reading runs' metrics (polars) and ranking runs by convergence. The only
//! module that knows polars.

pub mod curve;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use crate::plan::Run;
use crate::store::{Store, StoredState};
use curve::Params;

/// The loss series a run is ranked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    TestLoss,
    TrainLoss,
}

impl Series {
    pub fn name(self) -> &'static str {
        match self {
            Series::TestLoss => "test_loss",
            Series::TrainLoss => "train_loss",
        }
    }
}

/// One run's stored curve.
#[derive(Debug, Clone)]
pub struct Curve {
    pub epochs: Vec<i64>,
    pub train_loss: Vec<f64>,
    pub test_loss: Vec<f64>,
    pub test_accuracy: Vec<f64>,
}

impl Curve {
    /// The held-out loss where the model has one, else the training loss.
    pub fn default_series(&self) -> (Series, &[f64]) {
        if self.test_loss.iter().skip(1).any(|v| v.is_finite()) || self.train_loss.len() <= 1 {
            (Series::TestLoss, &self.test_loss)
        } else {
            (Series::TrainLoss, &self.train_loss)
        }
    }
}

fn metrics_schema() -> SchemaRef {
    Arc::new(Schema::from_iter([
        Field::new("epoch".into(), DataType::Int64),
        Field::new("train_loss".into(), DataType::Float64),
        Field::new("test_loss".into(), DataType::Float64),
        Field::new("test_accuracy".into(), DataType::Float64),
        Field::new("lr".into(), DataType::Float64),
        Field::new("seconds".into(), DataType::Float64),
    ]))
}

fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    Ok(df
        .column(name)?
        .f64()?
        .to_vec()
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// Read one `metrics.csv`.
pub fn read_curve(path: &Path) -> Result<Curve, String> {
    let read = || -> PolarsResult<Curve> {
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_schema(Some(metrics_schema()))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))?
            .finish()?;
        Ok(Curve {
            epochs: df
                .column("epoch")?
                .i64()?
                .to_vec()
                .into_iter()
                .map(|v| v.unwrap_or(-1))
                .collect(),
            train_loss: floats(&df, "train_loss")?,
            test_loss: floats(&df, "test_loss")?,
            test_accuracy: floats(&df, "test_accuracy")?,
        })
    };
    let curve = read().map_err(|e| format!("{}: {e}", path.display()))?;
    if curve.epochs.is_empty() || curve.epochs.iter().enumerate().any(|(i, e)| *e != i as i64) {
        return Err(format!(
            "{}: expected epochs 0, 1, 2, ... in order",
            path.display()
        ));
    }
    Ok(curve)
}

/// One row of the ranking table.
#[derive(Debug, Clone)]
pub struct RankRow {
    pub rank: usize,
    pub id: String,
    pub model: String,
    /// Swept keys and values, learning rate and seed included.
    pub labels: Vec<(String, String)>,
    pub lr: f64,
    pub seed: u64,
    pub state: StoredState,
    pub series: Series,
    pub summary: curve::Summary,
    /// `L_fin`, or `L_0` for a diverged run.
    pub score: f64,
    pub t_tau: Option<usize>,
    pub auc: f64,
    pub final_accuracy: Option<f64>,
}

pub struct Ranking {
    pub rows: Vec<RankRow>,
    /// Runs of the matrix with no results yet (new, failed, interrupted).
    pub missing: Vec<(String, StoredState)>,
}

/// Rank an experiment's finished runs by their final loss (diverged runs
/// score their initial loss), ties broken by AUC then T_tau. `L*` and the
/// median `L_0` are taken within each group of runs that differ only in
/// learning rate and seed.
pub fn rank(store: &Store, experiment: &str, runs: &[Run], p: &Params) -> Result<Ranking, String> {
    let mut finished = Vec::new();
    let mut missing = Vec::new();
    for run in runs {
        let state = store
            .state(experiment, &run.id)
            .map_err(|e| e.to_string())?;
        if state.is_final() {
            let curve = read_curve(&store.metrics_path(experiment, &run.id))?;
            finished.push((run, state, curve));
        } else {
            missing.push((run.id.clone(), state));
        }
    }

    let group_of = |run: &Run| {
        let others: Vec<_> = run
            .labels
            .iter()
            .filter(|(k, _)| k != "lr" && k != "seed")
            .collect();
        format!("{:?} {others:?}", run.spec.model.kind())
    };
    let mut groups: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut rows = Vec::new();
    for (run, state, curve) in &finished {
        let (series, y) = curve.default_series();
        let summary = curve::summarize(y, p);
        let diverged = summary.diverged || *state == StoredState::Diverged;
        let entry = groups.entry(group_of(run)).or_default();
        if !diverged {
            entry.0.push(summary.l_fin);
        }
        entry.1.push(summary.l0);
        let final_accuracy = curve
            .test_accuracy
            .last()
            .copied()
            .filter(|a| a.is_finite());
        rows.push(RankRow {
            rank: 0,
            id: run.id.clone(),
            model: run.spec.model.kind().name().to_string(),
            labels: run.labels.clone(),
            lr: run.spec.lr,
            seed: run.spec.seed,
            state: *state,
            series,
            score: if diverged { summary.l0 } else { summary.l_fin },
            summary,
            t_tau: None,
            auc: f64::NAN,
            final_accuracy,
        });
    }
    for (row, (run, _, curve)) in rows.iter_mut().zip(&finished) {
        let (l_fins, l0s) = &groups[&group_of(run)];
        let l_star = l_fins.iter().copied().fold(f64::INFINITY, f64::min);
        let l0_med = curve::median(l0s);
        let y = curve.default_series().1;
        row.t_tau = curve::t_tau(y, l_star, p);
        row.auc = curve::auc(y, run.spec.training.epochs as usize, l_star, l0_med);
    }
    rows.sort_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then(a.auc.total_cmp(&b.auc))
            .then(
                a.t_tau
                    .unwrap_or(usize::MAX)
                    .cmp(&b.t_tau.unwrap_or(usize::MAX)),
            )
            .then(a.id.cmp(&b.id))
    });
    for (i, row) in rows.iter_mut().enumerate() {
        row.rank = i + 1;
    }
    Ok(Ranking { rows, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metrics_with_nan_and_missing_accuracy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(
            &path,
            "epoch,train_loss,test_loss,test_accuracy,lr,seconds\n0,2.3,2.31,0.1,0.001,0.5\n1,NaN,NaN,,0.001,1.0\n",
        )
        .unwrap();
        let c = read_curve(&path).unwrap();
        assert_eq!(c.epochs, [0, 1]);
        assert_eq!(c.train_loss[0], 2.3);
        assert!(c.train_loss[1].is_nan() && c.test_loss[1].is_nan());
        assert!(c.test_accuracy[1].is_nan());
    }

    #[test]
    fn rejects_epochs_out_of_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(
            &path,
            "epoch,train_loss,test_loss,test_accuracy,lr,seconds\n1,2.3,2.31,,0.001,0.5\n",
        )
        .unwrap();
        assert!(read_curve(&path).unwrap_err().contains("epochs"));
    }
}
