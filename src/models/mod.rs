//! The model families, each one struct behind the `Model` trait the training
//! loop drives. tch lives here, in data/ and in train.rs only.

pub mod diffusion;
pub mod rnn;
pub mod transformer;

use tch::nn::{self, Init};
use tch::{Kind, Reduction, Tensor};

use crate::spec::ModelSpec;

/// What the training loop needs of a model.
pub trait Model {
    /// Mean loss over a training batch, with the graph for backward.
    fn train_loss(&self, images: &Tensor, labels: &Tensor) -> Tensor;

    /// Summed loss over an evaluation batch (no dropout) and, for a
    /// classifier, the number of correct predictions; both stay on the
    /// device. `first` is the batch's offset in its split, for models whose
    /// held-out loss uses fixed per-example noise.
    fn eval_batch(&self, images: &Tensor, labels: &Tensor, first: i64) -> (Tensor, Option<Tensor>);

    /// Files the model makes at the end of a run (name, bytes), written
    /// into the run's folder: the diffusion model's samples.png.
    fn artifacts(&self) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }
}

/// Build the model a spec names, its parameters created under `vs`.
pub fn build(spec: &ModelSpec, vs: &nn::Path) -> Box<dyn Model> {
    match spec {
        ModelSpec::Rnn(p) => Box::new(rnn::RnnClassifier::new(vs, p)),
        ModelSpec::Transformer(p) => Box::new(transformer::VisionTransformer::new(vs, p)),
        ModelSpec::Diffusion(p) => Box::new(diffusion::Ddpm::new(vs, p)),
    }
}

/// PyTorch's default initialisation of linear and convolution layers:
/// weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)). (tch's
/// default Kaiming init is sqrt(6) times wider, which changes how a
/// learning-rate sweep behaves; converge follows PyTorch.)
fn torch_uniform(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A linear layer initialised as PyTorch's `nn.Linear`.
pub fn linear(vs: nn::Path, inputs: i64, outputs: i64) -> nn::Linear {
    let init = torch_uniform(inputs);
    let config = nn::LinearConfig {
        ws_init: init,
        bs_init: Some(init),
        bias: true,
    };
    nn::linear(vs, inputs, outputs, config)
}

/// A square-kernel convolution initialised as PyTorch's `nn.Conv2d`.
pub fn conv2d(
    vs: nn::Path,
    inputs: i64,
    outputs: i64,
    kernel: i64,
    stride: i64,
    padding: i64,
) -> nn::Conv2D {
    let init = torch_uniform(inputs * kernel * kernel);
    let config = nn::ConvConfig {
        stride,
        padding,
        ws_init: init,
        bs_init: init,
        ..Default::default()
    };
    nn::conv2d(vs, inputs, outputs, kernel, config)
}

/// Number of trainable scalars.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(Tensor::numel)
        .map(|n| n as i64)
        .sum()
}

/// MNIST's mean and standard deviation, for classifiers' inputs.
pub const MNIST_MEAN: f64 = 0.1307;
pub const MNIST_STD: f64 = 0.3081;

/// Shared by the classifiers: loss sum and correct count of a batch.
pub fn classifier_eval(logits: &Tensor, labels: &Tensor) -> (Tensor, Option<Tensor>) {
    let loss = logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Sum, -100, 0.0);
    let correct = logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Int64);
    (loss, Some(correct))
}
