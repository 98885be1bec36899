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
    /// Training is over; the model makes its end-of-run files.
    Finishing,
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

/// What a finished (or diverged) run leaves besides its metrics.
pub struct Trained {
    pub outcome: Outcome,
    pub parameters: i64,
    /// Files the model made at the end (name, bytes), e.g. samples.png.
    pub artifacts: Vec<(String, Vec<u8>)>,
}

/// A model with its optimizer, seeded: the state one training step needs.
struct Session {
    vs: nn::VarStore,
    model: Box<dyn Model>,
    opt: nn::Optimizer,
}

impl Session {
    fn new(spec: &RunSpec, device: Device) -> Session {
        tch::manual_seed(spec.seed as i64);
        let vs = nn::VarStore::new(device);
        let model = models::build(&spec.model, &vs.root());
        let opt = optimizer(spec, &vs);
        Session { vs, model, opt }
    }

    /// One optimizer step on the examples `idx` of `split`; the loss,
    /// detached, still on the device.
    fn step(&mut self, split: &Split, idx: &Tensor) -> Tensor {
        let images = split.images.index_select(0, idx);
        let labels = split.labels.index_select(0, idx);
        let loss = self.model.train_loss(&images, &labels);
        self.opt.backward_step(&loss);
        loss.detach()
    }
}

/// A fresh random order of `n` examples, drawn from the CPU generator so
/// that CPU and GPU runs see the same batches.
fn shuffled(n: i64, device: Device) -> Tensor {
    Tensor::randperm(n, (Kind::Int64, Device::Cpu)).to_device(device)
}

/// Train one run from scratch. Same spec, seed and device: same numbers.
pub fn train(
    spec: &RunSpec,
    data: &Data,
    device: Device,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Trained {
    let start = Instant::now();
    let mut session = Session::new(spec, device);
    let parameters = models::parameter_count(&session.vs);
    let n = data.train.len();
    let batch = spec.training.batch_size.min(n);
    let steps = (n + batch - 1) / batch;
    on_event(TrainEvent::Started {
        parameters,
        steps_per_epoch: steps,
    });
    let record = |model: &dyn Model, epoch: i64, train_loss: f64| {
        let (test_loss, test_accuracy) = evaluate(model, &data.test);
        EpochRecord {
            epoch,
            train_loss,
            test_loss,
            test_accuracy,
            lr: spec.lr,
            seconds: start.elapsed().as_secs_f64(),
        }
    };
    let diverged = |epoch| Trained {
        outcome: Outcome::Diverged { epoch },
        parameters,
        artifacts: Vec::new(),
    };

    let first = record(
        session.model.as_ref(),
        0,
        evaluate(session.model.as_ref(), &data.train).0,
    );
    on_event(TrainEvent::Epoch(&first));
    for epoch in 1..=spec.training.epochs {
        let order = shuffled(n, device);
        let mut total = Tensor::zeros([], (Kind::Double, device));
        for step in 0..steps {
            let size = batch.min(n - step * batch);
            let loss = session.step(&data.train, &order.narrow(0, step * batch, size));
            let loss = loss.to_kind(Kind::Double);
            total += &loss * size as f64;
            let read = (step + 1) % READ_EVERY == 0 || step + 1 == steps;
            let value = read.then(|| loss.double_value(&[]));
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
            return diverged(epoch);
        }
        let row = record(session.model.as_ref(), epoch, train_loss);
        on_event(TrainEvent::Epoch(&row));
        if !row.test_loss.is_finite() {
            return diverged(epoch);
        }
    }
    on_event(TrainEvent::Finishing);
    let artifacts = tch::no_grad(|| session.model.artifacts());
    Trained {
        outcome: Outcome::Done,
        parameters,
        artifacts,
    }
}

/// Use `threads` CPU threads for libtorch's operators.
pub fn set_threads(threads: i32) {
    tch::set_num_threads(threads);
}

/// CPU threads libtorch's operators use.
pub fn threads() -> i32 {
    tch::get_num_threads()
}

/// Training speed of a run's model on `split`, as in `train` (shuffled
/// batches, one optimizer step each, the loss read back every
/// `READ_EVERY` steps) but with no evaluation.
pub struct BenchResult {
    pub parameters: i64,
    pub batch_size: i64,
    pub steps: i64,
    pub seconds: f64,
}

pub fn benchmark(
    spec: &RunSpec,
    split: &Split,
    device: Device,
    warmup: i64,
    steps: i64,
) -> BenchResult {
    let mut session = Session::new(spec, device);
    let n = split.len();
    let batch = spec.training.batch_size.min(n);
    let per_epoch = n / batch;
    let mut order = shuffled(n, device);
    let mut run = |count: i64, done: &mut i64| {
        for _ in 0..count {
            let k = *done % per_epoch;
            if k == 0 && *done > 0 {
                order = shuffled(n, device);
            }
            let loss = session.step(split, &order.narrow(0, k * batch, batch));
            *done += 1;
            if *done % READ_EVERY == 0 {
                loss.double_value(&[]);
            }
        }
    };
    let mut done = 0;
    run(warmup, &mut done);
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    let clock = Instant::now();
    run(steps, &mut done);
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    BenchResult {
        parameters: models::parameter_count(&session.vs),
        batch_size: batch,
        steps,
        seconds: clock.elapsed().as_secs_f64(),
    }
}

fn device_index(device: Device) -> i64 {
    match device {
        Device::Cuda(i) => i as i64,
        _ => 0,
    }
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
