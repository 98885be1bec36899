//! DDPM (Ho et al. 2020) with epsilon prediction on a small U-Net: residual
//! blocks with GroupNorm and SiLU, a sinusoidal time embedding, and two
//! down- and up-sampling stages (28 -> 14 -> 7 -> 14 -> 28) with skips.
//!
//! The training loss is the MSE between the predicted and the true noise at
//! a uniformly drawn step. The held-out loss uses, for the i-th example of a
//! split, a step and a noise image drawn from a generator seeded by i alone:
//! every epoch and every run sees the same noise, so the curve shows
//! learning, not sampling noise. At the end of a run the model draws digits
//! (ancestral DDPM or DDIM) into `samples.png`.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::Model;
use crate::spec::{DiffusionParams, Sampler, Schedule};

/// Seeds the held-out noise; fixed forever so curves stay comparable.
const EVAL_SEED: u64 = 0x5eed_d1ff;
const SIDE: i64 = 28;

struct ResBlock {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    time: nn::Linear,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    skip: Option<nn::Conv2D>,
    dropout: f64,
}

fn conv3(vs: nn::Path, cin: i64, cout: i64, stride: i64) -> nn::Conv2D {
    super::conv2d(vs, cin, cout, 3, stride, 1)
}

impl ResBlock {
    fn new(vs: &nn::Path, cin: i64, cout: i64, tdim: i64, p: &DiffusionParams) -> ResBlock {
        let gn = Default::default();
        ResBlock {
            norm1: nn::group_norm(vs / "norm1", p.groups, cin, gn),
            conv1: conv3(vs / "conv1", cin, cout, 1),
            time: super::linear(vs / "time", tdim, cout),
            norm2: nn::group_norm(vs / "norm2", p.groups, cout, gn),
            conv2: conv3(vs / "conv2", cout, cout, 1),
            skip: (cin != cout).then(|| super::conv2d(vs / "skip", cin, cout, 1, 1, 0)),
            dropout: p.dropout,
        }
    }

    fn forward(&self, x: &Tensor, temb: &Tensor, train: bool) -> Tensor {
        let h = self.norm1.forward(x).silu().apply(&self.conv1);
        let h = h + temb.silu().apply(&self.time).unsqueeze(-1).unsqueeze(-1);
        let h =
            super::dropout(&self.norm2.forward(&h).silu(), self.dropout, train).apply(&self.conv2);
        match &self.skip {
            Some(skip) => h + x.apply(skip),
            None => h + x,
        }
    }
}

struct UNet {
    base: i64,
    time1: nn::Linear,
    time2: nn::Linear,
    conv_in: nn::Conv2D,
    down0: ResBlock,
    ds0: nn::Conv2D,
    down1: ResBlock,
    ds1: nn::Conv2D,
    mid1: ResBlock,
    mid2: ResBlock,
    us1: nn::Conv2D,
    up1: ResBlock,
    us0: nn::Conv2D,
    up0: ResBlock,
    norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl UNet {
    fn new(vs: &nn::Path, p: &DiffusionParams) -> UNet {
        let (c0, c1, c2) = (p.channels[0], p.channels[1], p.channels[2]);
        let tdim = 4 * c0;
        let block = |name: &str, cin, cout| ResBlock::new(&(vs / name), cin, cout, tdim, p);
        UNet {
            base: c0,
            time1: super::linear(vs / "time1", c0, tdim),
            time2: super::linear(vs / "time2", tdim, tdim),
            conv_in: conv3(vs / "conv_in", 1, c0, 1),
            down0: block("down0", c0, c0),
            ds0: conv3(vs / "ds0", c0, c0, 2),
            down1: block("down1", c0, c1),
            ds1: conv3(vs / "ds1", c1, c1, 2),
            mid1: block("mid1", c1, c2),
            mid2: block("mid2", c2, c2),
            us1: conv3(vs / "us1", c2, c2, 1),
            up1: block("up1", c2 + c1, c1),
            us0: conv3(vs / "us0", c1, c1, 1),
            up0: block("up0", c1 + c0, c0),
            norm_out: nn::group_norm(vs / "norm_out", p.groups, c0, Default::default()),
            conv_out: conv3(vs / "conv_out", c0, 1, 1),
        }
    }

    /// Sinusoidal embedding of the steps `t` (int64 [B]) into `base` dims.
    fn time_embedding(&self, t: &Tensor) -> Tensor {
        let half = self.base / 2;
        let freqs = (Tensor::arange(half, (Kind::Float, t.device()))
            * (-(10000f64.ln()) / half as f64))
            .exp();
        let args = t.to_kind(Kind::Float).unsqueeze(1) * freqs.unsqueeze(0);
        Tensor::cat(&[args.sin(), args.cos()], 1)
    }

    /// Predicted noise for noisy images `x` [B, 1, 28, 28] at steps `t`.
    fn forward(&self, x: &Tensor, t: &Tensor, train: bool) -> Tensor {
        let temb = self
            .time_embedding(t)
            .apply(&self.time1)
            .silu()
            .apply(&self.time2);
        let h = x.apply(&self.conv_in);
        let s0 = self.down0.forward(&h, &temb, train);
        let s1 = self.down1.forward(&s0.apply(&self.ds0), &temb, train);
        let h = self.mid1.forward(&s1.apply(&self.ds1), &temb, train);
        let h = self.mid2.forward(&h, &temb, train);
        let half = SIDE / 2;
        let h = h
            .upsample_nearest2d([half, half], None, None)
            .apply(&self.us1);
        let h = self.up1.forward(&Tensor::cat(&[&h, &s1], 1), &temb, train);
        let h = h
            .upsample_nearest2d([SIDE, SIDE], None, None)
            .apply(&self.us0);
        let h = self.up0.forward(&Tensor::cat(&[&h, &s0], 1), &temb, train);
        self.norm_out.forward(&h).silu().apply(&self.conv_out)
    }
}

/// The noise schedule, computed in f64 and kept as f32 on the device.
fn betas(p: &DiffusionParams) -> Vec<f64> {
    let t = p.steps as usize;
    match p.schedule {
        Schedule::Linear => (0..t)
            .map(|i| p.beta_start + (p.beta_end - p.beta_start) * i as f64 / (t - 1) as f64)
            .collect(),
        // Nichol & Dhariwal 2021, s = 0.008, betas clipped at 0.999.
        Schedule::Cosine => {
            let f = |i: usize| {
                let s = 0.008;
                (((i as f64 / t as f64) + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
                    .cos()
                    .powi(2)
            };
            (0..t).map(|i| (1.0 - f(i + 1) / f(i)).min(0.999)).collect()
        }
    }
}

pub struct Ddpm {
    params: DiffusionParams,
    net: UNet,
    betas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
    /// `alphas_cumprod` as a tensor on the model's device.
    ab: Tensor,
    device: Device,
}

impl Ddpm {
    pub fn new(vs: &nn::Path, p: &DiffusionParams) -> Self {
        let betas = betas(p);
        let alphas_cumprod: Vec<f64> = betas
            .iter()
            .scan(1.0, |acc, b| {
                *acc *= 1.0 - b;
                Some(*acc)
            })
            .collect();
        let ab = Tensor::from_slice(&alphas_cumprod)
            .to_kind(Kind::Float)
            .to_device(vs.device());
        Ddpm {
            params: p.clone(),
            net: UNet::new(vs, p),
            betas,
            alphas_cumprod,
            ab,
            device: vs.device(),
        }
    }

    /// MSE between predicted and true noise, per example (mean over pixels).
    fn noise_loss(&self, x0: &Tensor, t: &Tensor, eps: &Tensor, train: bool) -> Tensor {
        let b = x0.size()[0];
        let ab = self.ab.index_select(0, t).view([b, 1, 1, 1]);
        let xt = ab.sqrt() * x0 + (-&ab + 1.0).sqrt() * eps;
        let pred = self.net.forward(&xt, t, train);
        (pred - eps)
            .square()
            .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float)
    }

    /// The fixed step and noise of examples `first..first + n`.
    fn held_out_noise(&self, first: i64, n: i64) -> (Tensor, Tensor) {
        let pixels = (SIDE * SIDE) as usize;
        let mut steps = Vec::with_capacity(n as usize);
        let mut noise = Vec::with_capacity(n as usize * pixels);
        for i in first..first + n {
            let mut rng = ChaCha8Rng::seed_from_u64(
                EVAL_SEED ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            steps.push(rng.random_range(0..self.params.steps));
            noise.extend((0..pixels).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
        }
        (
            Tensor::from_slice(&steps).to_device(self.device),
            Tensor::from_slice(&noise)
                .view([n, 1, SIDE, SIDE])
                .to_device(self.device),
        )
    }

    /// Draw `n` images in [-1, 1] with the configured sampler.
    pub fn sample(&self, n: i64) -> Tensor {
        self.sample_with(n, |x, t| {
            let steps = Tensor::full([n], t as i64, (Kind::Int64, self.device));
            self.net.forward(x, &steps, false)
        })
    }

    /// The sampler on any noise predictor `eps(x_t, t)`.
    fn sample_with(&self, n: i64, eps: impl Fn(&Tensor, usize) -> Tensor) -> Tensor {
        tch::no_grad(|| {
            let mut x = Tensor::randn([n, 1, SIDE, SIDE], (Kind::Float, self.device));
            match self.params.sampler {
                Sampler::Ddpm => {
                    for t in (0..self.betas.len()).rev() {
                        let e = eps(&x, t);
                        let (b, ab) = (self.betas[t], self.alphas_cumprod[t]);
                        let mean = (&x - e * (b / (1.0 - ab).sqrt())) / (1.0 - b).sqrt();
                        x = if t > 0 {
                            mean + x.randn_like() * b.sqrt()
                        } else {
                            mean
                        };
                    }
                }
                Sampler::Ddim => {
                    let taus = ddim_steps(self.betas.len(), self.params.sample_steps as usize);
                    for (j, &t) in taus.iter().enumerate().rev() {
                        let e = eps(&x, t);
                        let ab = self.alphas_cumprod[t];
                        let x0 = ((&x - &e * (1.0 - ab).sqrt()) / ab.sqrt()).clamp(-1.0, 1.0);
                        let ab_prev = if j == 0 {
                            1.0
                        } else {
                            self.alphas_cumprod[taus[j - 1]]
                        };
                        x = x0 * ab_prev.sqrt() + e * (1.0 - ab_prev).sqrt();
                    }
                }
            }
            x.clamp(-1.0, 1.0)
        })
    }
}

/// `k` steps of 0..total spread evenly, first 0 and last total - 1.
fn ddim_steps(total: usize, k: usize) -> Vec<usize> {
    let last = total - 1;
    if k == 1 {
        return vec![last];
    }
    (0..k).map(|i| (i * last + (k - 1) / 2) / (k - 1)).collect()
}

impl Model for Ddpm {
    fn train_loss(&self, images: &Tensor, _labels: &Tensor) -> Tensor {
        let x0 = images * 2.0 - 1.0;
        let b = x0.size()[0];
        let t = Tensor::randint(self.params.steps, [b], (Kind::Int64, self.device));
        let eps = x0.randn_like();
        self.noise_loss(&x0, &t, &eps, true).mean(Kind::Float)
    }

    fn eval_batch(
        &self,
        images: &Tensor,
        _labels: &Tensor,
        first: i64,
    ) -> (Tensor, Option<Tensor>) {
        let x0 = images * 2.0 - 1.0;
        let (t, eps) = self.held_out_noise(first, x0.size()[0]);
        let loss = self.noise_loss(&x0, &t, &eps, false);
        (loss.sum(Kind::Float), None)
    }

    fn artifacts(&self) -> Vec<(String, Vec<u8>)> {
        if self.params.samples == 0 {
            return Vec::new();
        }
        let images = self.sample(self.params.samples);
        vec![("samples.png".to_string(), grid_png(&images))]
    }
}

/// Images in [-1, 1], [N, 1, 28, 28], tiled into a square grey PNG.
pub fn grid_png(images: &Tensor) -> Vec<u8> {
    let n = images.size()[0];
    let cols = (n as f64).sqrt().ceil() as i64;
    let rows = (n + cols - 1) / cols;
    let pixels = ((images.to_device(Device::Cpu) + 1.0) * 127.5)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8);
    let (w, h) = (cols * SIDE, rows * SIDE);
    let canvas = Tensor::zeros([h, w], (Kind::Uint8, Device::Cpu));
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        canvas
            .narrow(0, r * SIDE, SIDE)
            .narrow(1, c * SIDE, SIDE)
            .copy_(&pixels.get(i).get(0));
    }
    let data = Vec::<u8>::try_from(canvas.flatten(0, -1)).expect("u8 tensor to bytes");
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w as u32, h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("PNG header to memory");
    writer.write_image_data(&data).expect("PNG data to memory");
    writer.finish().expect("PNG end to memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;

    fn small() -> DiffusionParams {
        DiffusionParams {
            steps: 50,
            channels: vec![8, 16, 16],
            groups: 4,
            sample_steps: 5,
            samples: 4,
            ..DiffusionParams::default()
        }
    }

    /// torch's count for the same modules (see bench/reference.py).
    fn torch_count(p: &DiffusionParams) -> i64 {
        let (c0, c1, c2) = (p.channels[0], p.channels[1], p.channels[2]);
        let td = 4 * c0;
        let conv = |i: i64, o: i64, k: i64| i * o * k * k + o;
        let res = |i: i64, o: i64| {
            2 * i
                + conv(i, o, 3)
                + (td * o + o)
                + 2 * o
                + conv(o, o, 3)
                + if i != o { conv(i, o, 1) } else { 0 }
        };
        (c0 * td + td)
            + (td * td + td)
            + conv(1, c0, 3)
            + res(c0, c0)
            + conv(c0, c0, 3)
            + res(c0, c1)
            + conv(c1, c1, 3)
            + res(c1, c2)
            + res(c2, c2)
            + conv(c2, c2, 3)
            + res(c2 + c1, c1)
            + conv(c1, c1, 3)
            + res(c1 + c0, c0)
            + 2 * c0
            + conv(c0, 1, 3)
    }

    #[test]
    fn unet_predicts_noise_of_the_input_shape_with_torch_sized_parameters() {
        for p in [small(), DiffusionParams::default()] {
            let vs = nn::VarStore::new(Device::Cpu);
            let model = Ddpm::new(&vs.root(), &p);
            let x = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
            let t = Tensor::from_slice(&[0i64, p.steps - 1]);
            assert_eq!(model.net.forward(&x, &t, false).size(), [2, 1, 28, 28]);
            assert_eq!(crate::models::parameter_count(&vs), torch_count(&p));
        }
    }

    #[test]
    fn schedules_are_increasing_and_bounded() {
        for schedule in [Schedule::Linear, Schedule::Cosine] {
            let p = DiffusionParams {
                schedule,
                ..DiffusionParams::default()
            };
            let b = betas(&p);
            assert_eq!(b.len(), 1000);
            assert!(b.iter().all(|v| *v > 0.0 && *v <= 0.999));
            assert!(b.windows(2).all(|w| w[0] <= w[1] + 1e-12));
        }
        let linear = betas(&DiffusionParams::default());
        assert_eq!((linear[0], linear[999]), (1e-4, 0.02));
    }

    #[test]
    fn held_out_noise_depends_on_the_example_only() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Ddpm::new(&vs.root(), &small());
        let (t_all, e_all) = model.held_out_noise(0, 6);
        let (t_tail, e_tail) = model.held_out_noise(4, 2);
        assert!(t_all.narrow(0, 4, 2).equal(&t_tail));
        assert!(e_all.narrow(0, 4, 2).equal(&e_tail));
        let std = e_all.std(true).double_value(&[]);
        assert!((std - 1.0).abs() < 0.1, "noise std {std}");
    }

    #[test]
    fn loss_falls_on_a_fixed_batch() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Ddpm::new(&vs.root(), &small());
        let x = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu))
            .gt(0.7)
            .to_kind(Kind::Float);
        let y = Tensor::zeros([16], (Kind::Int64, Device::Cpu));
        let held_out = |m: &Ddpm| m.eval_batch(&x, &y, 0).0.double_value(&[]) / 16.0;
        let first = held_out(&model);
        let mut opt = nn::Adam::default().build(&vs, 2e-3).unwrap();
        for _ in 0..60 {
            opt.backward_step(&model.train_loss(&x, &y));
        }
        let last = held_out(&model);
        assert!(first > 0.5, "epsilon MSE starts near 1: {first}");
        assert!(last < 0.7 * first, "held-out loss {first} -> {last}");
    }

    /// For data that is one image x*, the best noise predictor is known:
    /// eps(x_t, t) = (x_t - sqrt(ab_t) x*) / sqrt(1 - ab_t). Both samplers
    /// driven by it must land on x*.
    #[test]
    fn samplers_recover_the_data_with_an_oracle_noise_predictor() {
        let target = Tensor::rand([1, 1, 28, 28], (Kind::Float, Device::Cpu)) * 1.6 - 0.8;
        for sampler in [Sampler::Ddpm, Sampler::Ddim] {
            let p = DiffusionParams {
                sampler,
                steps: 200,
                sample_steps: 10,
                ..small()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let model = Ddpm::new(&vs.root(), &p);
            let oracle = |x: &Tensor, t: usize| {
                let ab = model.alphas_cumprod[t];
                (x - &target * ab.sqrt()) / (1.0 - ab).sqrt()
            };
            let out = model.sample_with(3, oracle);
            let err = (out - &target).abs().max().double_value(&[]);
            assert!(err < 1e-3, "{sampler:?}: max error {err}");
        }
        assert_eq!(ddim_steps(1000, 5), [0, 250, 500, 749, 999]);
    }

    #[test]
    fn both_samplers_give_finite_images_and_a_png() {
        for sampler in [Sampler::Ddpm, Sampler::Ddim] {
            let p = DiffusionParams { sampler, ..small() };
            let vs = nn::VarStore::new(Device::Cpu);
            let model = Ddpm::new(&vs.root(), &p);
            let images = model.sample(4);
            assert_eq!(images.size(), [4, 1, 28, 28]);
            assert!(bool::try_from(images.isfinite().all()).unwrap());
            let art = model.artifacts();
            assert_eq!(art[0].0, "samples.png");
            let decoder = png::Decoder::new(std::io::Cursor::new(art[0].1.clone()));
            let reader = decoder.read_info().unwrap();
            assert_eq!((reader.info().width, reader.info().height), (56, 56));
        }
    }
}
