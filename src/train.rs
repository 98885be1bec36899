//! The generic training loop: seeding, epoch 0 measured before any update,
//! shuffled minibatches, held-out evaluation after each epoch, and the
//! divergence guard. It never prints: it reports `TrainEvent`s.

use std::time::Instant;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::{Data, Split};
use crate::models::{self, Model};
use crate::spec::{Optimizer, RunSpec};

/// Examples per evaluation batch.
const EVAL_BATCH: i64 = 1000;
/// A training step's loss is read back (a device sync) every this many steps.
const READ_EVERY: i64 = 10;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    pub epoch: i64,
    /// Mean over the epoch's minibatches; for epoch 0 the loss over the
    /// training set before any update.
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_accuracy: Option<f64>,
    pub lr: f64,
    /// Wall-clock seconds since the run started.
    pub seconds: f64,
}

pub enum TrainEvent<'a> {
    Started {
        parameters: i64,
        steps_per_epoch: i64,
    },
    Step {
        epoch: i64,
        step: i64,
        loss: Option<f64>,
    },
    Epoch(&'a EpochRecord),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// A non-finite loss stopped the run at this epoch.
    Diverged {
        epoch: i64,
    },
}

/// Resolve a manifest's device choice: "auto" takes the first CUDA device
/// when there is one.
pub fn device(choice: &str) -> Result<Device, String> {
    match choice {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "cuda:0" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        other => match other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if (n as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(n)),
            _ => Err(format!(
                "device {other:?} is not available (CUDA devices here: {})",
                tch::Cuda::device_count()
            )),
        },
    }
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Train one run from scratch. Same spec, seed and device: same numbers.
pub fn train(
    spec: &RunSpec,
    data: &Data,
    device: Device,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Outcome {
    let start = Instant::now();
    tch::manual_seed(spec.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = models::build(&spec.model, &vs.root());
    let mut opt = optimizer(spec, &vs);
    let n = data.train.len();
    let batch = spec.training.batch_size.min(n);
    let steps = (n + batch - 1) / batch;
    on_event(TrainEvent::Started {
        parameters: models::parameter_count(&vs),
        steps_per_epoch: steps,
    });

    let record = |epoch: i64, train_loss: f64| {
        let (test_loss, test_accuracy) = evaluate(model.as_ref(), &data.test);
        EpochRecord {
            epoch,
            train_loss,
            test_loss,
            test_accuracy,
            lr: spec.lr,
            seconds: start.elapsed().as_secs_f64(),
        }
    };
    let first = record(0, evaluate(model.as_ref(), &data.train).0);
    on_event(TrainEvent::Epoch(&first));

    for epoch in 1..=spec.training.epochs {
        // Shuffle on the CPU generator, so CPU and GPU see the same order.
        let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu)).to_device(device);
        let mut total = Tensor::zeros([], (Kind::Double, device));
        for step in 0..steps {
            let size = batch.min(n - step * batch);
            let idx = order.narrow(0, step * batch, size);
            let images = data.train.images.index_select(0, &idx);
            let labels = data.train.labels.index_select(0, &idx);
            let loss = model.train_loss(&images, &labels);
            opt.backward_step(&loss);
            let detached = loss.detach().to_kind(Kind::Double);
            total += &detached * size as f64;
            let read = (step + 1) % READ_EVERY == 0 || step + 1 == steps;
            let value = read.then(|| detached.double_value(&[]));
            on_event(TrainEvent::Step {
                epoch,
                step: step + 1,
                loss: value,
            });
            if value.is_some_and(|v| !v.is_finite()) {
                break;
            }
        }
        let train_loss = total.double_value(&[]) / n as f64;
        if !train_loss.is_finite() {
            let row = EpochRecord {
                epoch,
                train_loss: f64::NAN,
                test_loss: f64::NAN,
                test_accuracy: None,
                lr: spec.lr,
                seconds: start.elapsed().as_secs_f64(),
            };
            on_event(TrainEvent::Epoch(&row));
            return Outcome::Diverged { epoch };
        }
        let row = record(epoch, train_loss);
        let diverged = !row.test_loss.is_finite();
        on_event(TrainEvent::Epoch(&row));
        if diverged {
            return Outcome::Diverged { epoch };
        }
    }
    Outcome::Done
}

fn optimizer(spec: &RunSpec, vs: &nn::VarStore) -> nn::Optimizer {
    let t = &spec.training;
    let built = match t.optimizer {
        Optimizer::Adam => nn::Adam::default().wd(t.weight_decay).build(vs, spec.lr),
        Optimizer::Adamw => nn::AdamW::default().wd(t.weight_decay).build(vs, spec.lr),
        Optimizer::Sgd => {
            nn::sgd(t.momentum.unwrap_or(0.0), 0.0, t.weight_decay, false).build(vs, spec.lr)
        }
    };
    built.expect("optimizer over a fresh VarStore")
}

/// Mean loss over a split and, for classifiers, accuracy; no gradients.
fn evaluate(model: &dyn Model, split: &Split) -> (f64, Option<f64>) {
    tch::no_grad(|| {
        let n = split.len();
        let mut loss = 0.0;
        let mut correct: Option<i64> = None;
        let mut first = 0;
        while first < n {
            let size = EVAL_BATCH.min(n - first);
            let images = split.images.narrow(0, first, size);
            let labels = split.labels.narrow(0, first, size);
            let (l, c) = model.eval_batch(&images, &labels, first);
            loss += l.double_value(&[]);
            if let Some(c) = c {
                *correct.get_or_insert(0) += c.int64_value(&[]);
            }
            first += size;
        }
        (loss / n as f64, correct.map(|c| c as f64 / n as f64))
    })
}
