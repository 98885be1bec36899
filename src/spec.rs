//! The vocabulary of an experiment: model hyperparameters, data and training
//! settings, and the fully resolved `RunSpec` whose canonical form is hashed
//! into a run id. Pure serde types with their own range checks; no I/O, no
//! toml, no tch. The manifest fills them, plan combines them, models and
//! train read them.

use serde::{Deserialize, Serialize};

/// Bumped whenever a change to data loading, a model or the training loop
/// would change the numbers a run produces: every run id changes with it, so
/// old results are never mistaken for new ones.
pub const TRAIN_REVISION: u32 = 1;

/// A value outside its allowed range, named by its field so the manifest can
/// point at the line that set it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn positive(field: &'static str, value: i64) -> Result<(), FieldError> {
    if value > 0 {
        Ok(())
    } else {
        Err(FieldError {
            field,
            message: format!("`{field}` must be a positive integer, got {value}"),
        })
    }
}

fn non_negative(field: &'static str, value: f64) -> Result<(), FieldError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(FieldError {
            field,
            message: format!("`{field}` must be a finite number >= 0, got {value}"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Rnn,
    Transformer,
    Diffusion,
}

impl ModelKind {
    pub const ALL: &'static [(&'static str, ModelKind)] = &[
        ("rnn", ModelKind::Rnn),
        ("transformer", ModelKind::Transformer),
        ("diffusion", ModelKind::Diffusion),
    ];

    pub fn from_name(name: &str) -> Option<ModelKind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Rnn => "rnn",
            ModelKind::Transformer => "transformer",
            ModelKind::Diffusion => "diffusion",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Lstm,
    Gru,
    Rnn,
}

/// The RNN family of the paper: the 28 image rows read as a sequence,
/// classified from the last hidden state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RnnParams {
    pub kind: ModelKind,
    pub cell: Cell,
    pub hidden: i64,
    pub layers: i64,
    pub bidirectional: bool,
}

impl Default for RnnParams {
    fn default() -> Self {
        RnnParams {
            kind: ModelKind::Rnn,
            cell: Cell::Lstm,
            hidden: 128,
            layers: 1,
            bidirectional: false,
        }
    }
}

impl RnnParams {
    pub fn check(&self) -> Result<(), FieldError> {
        positive("hidden", self.hidden)?;
        positive("layers", self.layers)
    }
}

fn field(field: &'static str, message: String) -> FieldError {
    FieldError { field, message }
}

fn fraction(name: &'static str, value: f64) -> Result<(), FieldError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(field(
            name,
            format!("`{name}` must be in [0, 1), got {value}"),
        ))
    }
}

/// A ViT-style classifier: patches of the image as tokens, a class token,
/// learned positions, pre-LayerNorm encoder blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformerParams {
    pub kind: ModelKind,
    /// Patch size in pixels; 7x7 gives 16 tokens, 1x28 the 28 rows.
    pub patch_height: i64,
    pub patch_width: i64,
    pub d_model: i64,
    pub heads: i64,
    pub layers: i64,
    /// Width of the hidden layer of each block's MLP.
    pub mlp: i64,
    pub dropout: f64,
}

impl Default for TransformerParams {
    fn default() -> Self {
        TransformerParams {
            kind: ModelKind::Transformer,
            patch_height: 7,
            patch_width: 7,
            d_model: 64,
            heads: 4,
            layers: 4,
            mlp: 128,
            dropout: 0.1,
        }
    }
}

impl TransformerParams {
    pub fn check(&self) -> Result<(), FieldError> {
        for (name, v) in [
            ("patch_height", self.patch_height),
            ("patch_width", self.patch_width),
        ] {
            positive(name, v)?;
            if 28 % v != 0 {
                return Err(field(name, format!("`{name}` must divide 28, got {v}")));
            }
        }
        positive("d_model", self.d_model)?;
        positive("heads", self.heads)?;
        positive("layers", self.layers)?;
        positive("mlp", self.mlp)?;
        if self.d_model % self.heads != 0 {
            return Err(field(
                "heads",
                format!(
                    "`heads` ({}) must divide `d_model` ({})",
                    self.heads, self.d_model
                ),
            ));
        }
        fraction("dropout", self.dropout)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Linear,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Ancestral sampling over all `steps`.
    Ddpm,
    /// Deterministic DDIM (eta = 0) over `sample_steps`.
    Ddim,
}

/// DDPM with epsilon prediction and a small U-Net (28 -> 14 -> 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffusionParams {
    pub kind: ModelKind,
    /// Diffusion steps T.
    pub steps: i64,
    pub schedule: Schedule,
    /// Ends of the linear beta schedule.
    pub beta_start: f64,
    pub beta_end: f64,
    /// U-Net channel widths at 28x28, 14x14 and 7x7.
    pub channels: Vec<i64>,
    /// GroupNorm groups; must divide every width.
    pub groups: i64,
    pub dropout: f64,
    pub sampler: Sampler,
    /// DDIM steps (ddim only).
    pub sample_steps: i64,
    /// Digits drawn into samples.png at the end of a run (0: none).
    pub samples: i64,
}

impl Default for DiffusionParams {
    fn default() -> Self {
        DiffusionParams {
            kind: ModelKind::Diffusion,
            steps: 1000,
            schedule: Schedule::Linear,
            beta_start: 1e-4,
            beta_end: 0.02,
            channels: vec![32, 64, 128],
            groups: 8,
            dropout: 0.0,
            sampler: Sampler::Ddim,
            sample_steps: 50,
            samples: 64,
        }
    }
}

impl DiffusionParams {
    pub fn check(&self) -> Result<(), FieldError> {
        if self.steps < 2 {
            return Err(field(
                "steps",
                format!("`steps` must be at least 2, got {}", self.steps),
            ));
        }
        if !(self.beta_start > 0.0 && self.beta_start < self.beta_end && self.beta_end < 1.0) {
            return Err(field(
                "beta_end",
                format!(
                    "need 0 < beta_start < beta_end < 1, got {} and {}",
                    self.beta_start, self.beta_end
                ),
            ));
        }
        positive("groups", self.groups)?;
        if self.channels.len() != 3 {
            return Err(field(
                "channels",
                format!(
                    "`channels` needs 3 widths (28, 14, 7 pixels), got {}",
                    self.channels.len()
                ),
            ));
        }
        for &c in &self.channels {
            if c <= 0 || c % self.groups != 0 || c % 2 != 0 {
                return Err(field(
                    "channels",
                    format!(
                        "each width must be even, positive and divisible by `groups` ({}), got {c}",
                        self.groups
                    ),
                ));
            }
        }
        fraction("dropout", self.dropout)?;
        if self.sample_steps < 1 || self.sample_steps > self.steps {
            return Err(field(
                "sample_steps",
                format!(
                    "`sample_steps` must be between 1 and `steps` ({}), got {}",
                    self.steps, self.sample_steps
                ),
            ));
        }
        if !(0..=1024).contains(&self.samples) {
            return Err(field(
                "samples",
                format!("`samples` must be between 0 and 1024, got {}", self.samples),
            ));
        }
        Ok(())
    }
}

/// One model, its kind plus every fixed hyperparameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ModelSpec {
    Rnn(RnnParams),
    Transformer(TransformerParams),
    Diffusion(DiffusionParams),
}

impl ModelSpec {
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelSpec::Rnn(_) => ModelKind::Rnn,
            ModelSpec::Transformer(_) => ModelKind::Transformer,
            ModelSpec::Diffusion(_) => ModelKind::Diffusion,
        }
    }

    /// Whether the model predicts labels (and so has an accuracy).
    pub fn classifies(&self) -> bool {
        !matches!(self, ModelSpec::Diffusion(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Mnist,
}

impl Dataset {
    /// (train, test) sizes of the full dataset.
    pub fn sizes(self) -> (u32, u32) {
        match self {
            Dataset::Mnist => (60_000, 10_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Adam,
    Adamw,
    Sgd,
}

/// The `[training]` table of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub epochs: i64,
    pub batch_size: i64,
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    /// Used by sgd only.
    pub momentum: f64,
    /// Replicates of every grid point, never an axis.
    pub seeds: Vec<u64>,
    /// "auto" (first CUDA device, else CPU), "cpu", "cuda" or "cuda:N".
    pub device: String,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 10,
            batch_size: 128,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            momentum: 0.9,
            seeds: vec![0],
            device: "auto".to_string(),
        }
    }
}

/// Keys of `[training]` that are not hyperparameters and so cannot be swept.
pub const UNSWEEPABLE_TRAINING_KEYS: &[&str] = &["seeds", "device"];

impl TrainSettings {
    pub fn check(&self) -> Result<(), FieldError> {
        positive("epochs", self.epochs)?;
        positive("batch_size", self.batch_size)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("momentum", self.momentum)?;
        if self.momentum >= 1.0 {
            return Err(FieldError {
                field: "momentum",
                message: format!("`momentum` must be below 1, got {}", self.momentum),
            });
        }
        if self.seeds.is_empty() {
            return Err(FieldError {
                field: "seeds",
                message: "`seeds` must name at least one seed".to_string(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(FieldError {
                field: "seeds",
                message: format!("seed {dup} is listed twice"),
            });
        }
        if !valid_device(&self.device) {
            return Err(FieldError {
                field: "device",
                message: format!(
                    "`device` must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got {:?}",
                    self.device
                ),
            });
        }
        Ok(())
    }

    /// The part of the settings that shapes the numbers a run produces.
    pub fn to_spec(&self) -> TrainSpec {
        TrainSpec {
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            weight_decay: self.weight_decay,
            momentum: (self.optimizer == Optimizer::Sgd).then_some(self.momentum),
        }
    }
}

fn valid_device(device: &str) -> bool {
    match device {
        "auto" | "cpu" | "cuda" => true,
        other => other
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok()),
    }
}

/// Training settings as they enter a run's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub epochs: i64,
    pub batch_size: i64,
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    /// Only for sgd: a momentum the optimizer ignores must not change the id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub momentum: Option<f64>,
}

/// Which data a run sees. The directory it is read from is not part of the
/// identity: moving the dataset must not invalidate results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub dataset: Dataset,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_subset: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_subset: Option<u32>,
}

/// Everything that determines the numbers one run produces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    pub model: ModelSpec,
    pub data: DataSpec,
    pub training: TrainSpec,
    pub lr: f64,
    pub seed: u64,
    pub revision: u32,
}

impl RunSpec {
    /// The canonical form: JSON with keys sorted (serde_json's map is a
    /// BTreeMap) and floats in their shortest round-trip form, so `1e-4` and
    /// `0.0001`, key order, layout and comments all give the same bytes.
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a RunSpec always serializes");
        serde_json::to_string(&value).expect("a JSON value always serializes")
    }

    /// The run id: the first 16 hex digits of the BLAKE3 hash of the
    /// canonical form.
    pub fn id(&self) -> String {
        let hash = blake3::hash(self.canonical_json().as_bytes());
        hash.to_hex()[..16].to_string()
    }
}
