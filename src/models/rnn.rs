//! The RNN family: the 28 rows of an image read as a sequence of 28 vectors
//! by an LSTM, GRU or tanh RNN (optionally bidirectional, several layers),
//! classified by a linear layer from the last layer's final hidden state.
//! Weights are initialised as PyTorch's nn.LSTM does: U(-1/sqrt(h), 1/sqrt(h)).

use tch::Tensor;
use tch::nn::{self, Init, Module};

use super::{Classifier, MNIST_MEAN, MNIST_STD};
use crate::spec::{Cell, RnnParams};

const ROWS: i64 = 28;
const CLASSES: i64 = 10;

pub struct RnnClassifier {
    cell: Cell,
    layers: i64,
    bidirectional: bool,
    weights: Vec<Tensor>,
    head: nn::Linear,
}

impl RnnClassifier {
    pub fn new(vs: &nn::Path, p: &RnnParams) -> Self {
        let gates = match p.cell {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        };
        let directions = if p.bidirectional { 2 } else { 1 };
        let bound = 1.0 / (p.hidden as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let rnn = vs / "rnn";
        let mut weights = Vec::new();
        for layer in 0..p.layers {
            let input = if layer == 0 {
                ROWS
            } else {
                p.hidden * directions
            };
            for direction in 0..directions {
                let suffix = if direction == 1 { "_reverse" } else { "" };
                let g = gates * p.hidden;
                weights.push(rnn.var(&format!("weight_ih_l{layer}{suffix}"), &[g, input], init));
                weights.push(rnn.var(&format!("weight_hh_l{layer}{suffix}"), &[g, p.hidden], init));
                weights.push(rnn.var(&format!("bias_ih_l{layer}{suffix}"), &[g], init));
                weights.push(rnn.var(&format!("bias_hh_l{layer}{suffix}"), &[g], init));
            }
        }
        let head = super::linear(vs / "head", p.hidden * directions, CLASSES);
        RnnClassifier {
            cell: p.cell,
            layers: p.layers,
            bidirectional: p.bidirectional,
            weights,
            head,
        }
    }
}

impl Classifier for RnnClassifier {
    fn logits(&self, images: &Tensor, train: bool) -> Tensor {
        let batch = images.size()[0];
        let seq = ((images - MNIST_MEAN) / MNIST_STD).view([batch, ROWS, ROWS]);
        let directions = if self.bidirectional { 2 } else { 1 };
        let hidden = self.weights[1].size()[1];
        let h0 = Tensor::zeros(
            [self.layers * directions, batch, hidden],
            (seq.kind(), seq.device()),
        );
        let (layers, bi) = (self.layers, self.bidirectional);
        let w: Vec<&Tensor> = self.weights.iter().collect();
        let h_n = match self.cell {
            Cell::Lstm => {
                let c0 = h0.zeros_like();
                seq.lstm(&[&h0, &c0], &w, true, layers, 0.0, train, bi, true)
                    .1
            }
            Cell::Gru => seq.gru(&h0, &w, true, layers, 0.0, train, bi, true).1,
            Cell::Rnn => seq.rnn_tanh(&h0, &w, true, layers, 0.0, train, bi, true).1,
        };
        // h_n: [layers * directions, batch, hidden]; keep the last layer's.
        let last = h_n
            .narrow(0, (self.layers - 1) * directions, directions)
            .permute([1, 0, 2])
            .reshape([batch, directions * hidden]);
        self.head.forward(&last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Model;
    use tch::{Device, Kind, nn::OptimizerConfig};

    fn params(cell: Cell, layers: i64, bidirectional: bool) -> RnnParams {
        RnnParams {
            cell,
            hidden: 16,
            layers,
            bidirectional,
            ..RnnParams::default()
        }
    }

    #[test]
    fn every_cell_gives_ten_logits_and_torch_sized_parameters() {
        for (cell, gates) in [(Cell::Lstm, 4), (Cell::Gru, 3), (Cell::Rnn, 1)] {
            for (layers, bi) in [(1, false), (2, true)] {
                let vs = nn::VarStore::new(Device::Cpu);
                let model = RnnClassifier::new(&vs.root(), &params(cell, layers, bi));
                let x = Tensor::rand([5, 1, 28, 28], (Kind::Float, Device::Cpu));
                assert_eq!(model.logits(&x, false).size(), [5, 10]);
                // torch.nn.LSTM/GRU/RNN parameter counts, plus the head.
                let d = if bi { 2 } else { 1 };
                let h = 16;
                let g = gates * h;
                let first = d * (g * 28 + g * h + 2 * g);
                let rest = (layers - 1) * d * (g * d * h + g * h + 2 * g);
                let head = d * h * 10 + 10;
                assert_eq!(crate::models::parameter_count(&vs), first + rest + head);
            }
        }
    }

    #[test]
    fn loss_falls_on_a_fixed_batch() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = RnnClassifier::new(&vs.root(), &params(Cell::Lstm, 1, false));
        let x = Tensor::rand([32, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
        let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
        let first = model.train_loss(&x, &y).double_value(&[]);
        for _ in 0..40 {
            opt.backward_step(&model.train_loss(&x, &y));
        }
        let last = model.train_loss(&x, &y).double_value(&[]);
        assert!((first - 10f64.ln()).abs() < 0.3, "initial loss {first}");
        assert!(last < 0.5 * first, "loss {first} -> {last}");
    }
}
