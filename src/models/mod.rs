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

/// A model that predicts one of MNIST's ten classes: its loss is the
/// cross-entropy of its logits, and it has an accuracy.
pub trait Classifier {
    /// Logits [B, 10]; `train` turns dropout on.
    fn logits(&self, images: &Tensor, train: bool) -> Tensor;
}

impl<C: Classifier> Model for C {
    fn train_loss(&self, images: &Tensor, labels: &Tensor) -> Tensor {
        self.logits(images, true).cross_entropy_loss::<Tensor>(
            labels,
            None,
            Reduction::Mean,
            -100,
            0.0,
        )
    }

    fn eval_batch(
        &self,
        images: &Tensor,
        labels: &Tensor,
        _first: i64,
    ) -> (Tensor, Option<Tensor>) {
        let logits = self.logits(images, false);
        let loss = logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Sum, -100, 0.0);
        let correct = logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Int64);
        (loss, Some(correct))
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

/// Inverted dropout: each element kept with probability 1 - p and scaled
/// by 1 / (1 - p), as torch's dropout, but with the keep mask drawn as
/// `uniform >= p`. libtorch's CPU `bernoulli_` is not vectorised and took a
/// third of a Transformer step; `uniform_` is (see BENCHMARKS.md).
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p == 0.0 {
        return x.shallow_clone();
    }
    let keep = x.rand_like().ge(p).to_kind(x.kind()) * (1.0 / (1.0 - p));
    x * keep
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn dropout_keeps_one_minus_p_and_rescales() {
        let x = Tensor::ones([200_000], (Kind::Float, Device::Cpu));
        let y = dropout(&x, 0.25, true);
        let kept = y
            .ne(0.0)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        let max = y.max().double_value(&[]);
        let min_kept = y.masked_select(&y.ne(0.0)).min().double_value(&[]);
        assert!((max - 1.0 / 0.75).abs() < 1e-6 && (min_kept - max).abs() < 1e-6);
        assert!(dropout(&x, 0.25, false).equal(&x));
        assert!(dropout(&x, 0.0, true).equal(&x));
    }
}
