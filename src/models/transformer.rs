//! A ViT-style classifier: the image cut into patches (7x7 by default: 16
//! tokens; 1x28 reads the 28 rows), a linear patch embedding, a class token,
//! learned positions, pre-LayerNorm encoder blocks with multi-head
//! self-attention (libtorch's scaled dot-product attention) and a GELU MLP,
//! and a linear head on the class token.

use tch::Tensor;
use tch::nn::{self, Init, Module};

use super::{Classifier, MNIST_MEAN, MNIST_STD};
use crate::spec::TransformerParams;

const SIDE: i64 = 28;
const CLASSES: i64 = 10;

struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Block {
    fn new(vs: &nn::Path, p: &TransformerParams) -> Block {
        let d = p.d_model;
        Block {
            ln1: nn::layer_norm(vs / "ln1", vec![d], Default::default()),
            qkv: super::linear(vs / "qkv", d, 3 * d),
            proj: super::linear(vs / "proj", d, d),
            ln2: nn::layer_norm(vs / "ln2", vec![d], Default::default()),
            fc1: super::linear(vs / "fc1", d, p.mlp),
            fc2: super::linear(vs / "fc2", p.mlp, d),
        }
    }

    fn forward(&self, x: &Tensor, heads: i64, dropout: f64, train: bool) -> Tensor {
        let (b, t, d) = x.size3().expect("tokens are [batch, tokens, d_model]");
        let qkv = self
            .ln1
            .forward(x)
            .apply(&self.qkv)
            .reshape([b, t, 3, heads, d / heads])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let attention = if train && dropout > 0.0 {
            // Attention dropout needs the probabilities: the math path of
            // scaled dot-product attention, with our faster dropout.
            let scale = 1.0 / ((d / heads) as f64).sqrt();
            let probs = (q.matmul(&k.transpose(-2, -1)) * scale).softmax(-1, q.kind());
            super::dropout(&probs, dropout, true).matmul(&v)
        } else {
            Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<Tensor>,
                0.0,
                false,
                None,
                false,
            )
        };
        let attention = super::dropout(
            &attention
                .transpose(1, 2)
                .reshape([b, t, d])
                .apply(&self.proj),
            dropout,
            train,
        );
        let x = x + attention;
        let hidden = self.ln2.forward(&x).apply(&self.fc1).gelu("none");
        let mlp = super::dropout(&hidden, dropout, train).apply(&self.fc2);
        x + super::dropout(&mlp, dropout, train)
    }
}

pub struct VisionTransformer {
    patch: (i64, i64),
    heads: i64,
    dropout: f64,
    embed: nn::Linear,
    cls: Tensor,
    pos: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    head: nn::Linear,
}

impl VisionTransformer {
    pub fn new(vs: &nn::Path, p: &TransformerParams) -> Self {
        let tokens = (SIDE / p.patch_height) * (SIDE / p.patch_width);
        let d = p.d_model;
        let blocks = (0..p.layers)
            .map(|i| Block::new(&(vs / "blocks" / i), p))
            .collect();
        VisionTransformer {
            patch: (p.patch_height, p.patch_width),
            heads: p.heads,
            dropout: p.dropout,
            embed: super::linear(vs / "embed", p.patch_height * p.patch_width, d),
            cls: vs.var("cls", &[1, 1, d], Init::Const(0.0)),
            pos: vs.var(
                "pos",
                &[1, tokens + 1, d],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            blocks,
            norm: nn::layer_norm(vs / "norm", vec![d], Default::default()),
            head: super::linear(vs / "head", d, CLASSES),
        }
    }
}

impl Classifier for VisionTransformer {
    fn logits(&self, images: &Tensor, train: bool) -> Tensor {
        let b = images.size()[0];
        let (ph, pw) = self.patch;
        let patches = ((images - MNIST_MEAN) / MNIST_STD)
            .reshape([b, SIDE / ph, ph, SIDE / pw, pw])
            .permute([0, 1, 3, 2, 4])
            .reshape([b, (SIDE / ph) * (SIDE / pw), ph * pw]);
        let d = self.cls.size()[2];
        let tokens = Tensor::cat(
            &[
                self.cls.expand([b, 1, d], false),
                patches.apply(&self.embed),
            ],
            1,
        ) + &self.pos;
        let mut x = super::dropout(&tokens, self.dropout, train);
        for block in &self.blocks {
            x = block.forward(&x, self.heads, self.dropout, train);
        }
        self.norm.forward(&x).select(1, 0).apply(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Model;
    use tch::nn::OptimizerConfig;
    use tch::{Device, Kind};

    /// The parameter count of torch modules of the same sizes.
    fn torch_count(p: &TransformerParams) -> i64 {
        let d = p.d_model;
        let tokens = (28 / p.patch_height) * (28 / p.patch_width);
        let embed = p.patch_height * p.patch_width * d + d;
        let block = 2 * d
            + (3 * d * d + 3 * d)
            + (d * d + d)
            + 2 * d
            + (d * p.mlp + p.mlp)
            + (p.mlp * d + d);
        embed + d + (tokens + 1) * d + p.layers * block + 2 * d + (10 * d + 10)
    }

    #[test]
    fn patches_of_any_shape_give_ten_logits_and_torch_sized_parameters() {
        for (ph, pw) in [(7, 7), (1, 28), (4, 4)] {
            let p = TransformerParams {
                patch_height: ph,
                patch_width: pw,
                d_model: 32,
                heads: 4,
                layers: 2,
                mlp: 64,
                ..TransformerParams::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let model = VisionTransformer::new(&vs.root(), &p);
            let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
            assert_eq!(model.logits(&x, true).size(), [3, 10]);
            assert_eq!(model.logits(&x, false).size(), [3, 10]);
            assert_eq!(crate::models::parameter_count(&vs), torch_count(&p));
        }
    }

    #[test]
    fn loss_falls_on_a_fixed_batch() {
        tch::manual_seed(0);
        let p = TransformerParams {
            d_model: 32,
            layers: 2,
            mlp: 64,
            dropout: 0.0,
            ..TransformerParams::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let model = VisionTransformer::new(&vs.root(), &p);
        let x = Tensor::rand([32, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
        let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
        let first = model.train_loss(&x, &y).double_value(&[]);
        for _ in 0..40 {
            opt.backward_step(&model.train_loss(&x, &y));
        }
        let last = model.train_loss(&x, &y).double_value(&[]);
        assert!((first - 10f64.ln()).abs() < 0.5, "initial loss {first}");
        assert!(last < 0.5 * first, "loss {first} -> {last}");
    }
}
