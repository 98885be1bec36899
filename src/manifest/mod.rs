//! TOML manifest -> validated `Experiment`. The only module that knows toml.
//!
//! Two passes over one file: serde structs with `deny_unknown_fields` catch
//! unknown keys and wrong types (toml gives their spans), then range checks
//! on the typed values point back into the document through `Doc`.

mod doc;
mod error;
pub mod grid;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::de::DeValue;

use crate::spec::{
    DataSpec, Dataset, DiffusionParams, FieldError, ModelKind, ModelSpec, RnnParams, TrainSettings,
    TrainSpec, TransformerParams, UNSWEEPABLE_TRAINING_KEYS,
};
use doc::{Doc, Seg, toml_error};
pub use error::ManifestError;
pub use grid::Lr;

/// One validated manifest.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    pub path: PathBuf,
    pub data: DataSpec,
    /// Where the dataset files are read from, resolved against the
    /// manifest's folder.
    pub data_dir: PathBuf,
    /// One entry per point of the non-learning-rate axes (just one when only
    /// `lr` is swept).
    pub variants: Vec<Variant>,
    pub lrs: Vec<Lr>,
    pub seeds: Vec<u64>,
    pub device: String,
}

/// A model and training settings with every swept key but `lr` fixed.
#[derive(Debug, Clone)]
pub struct Variant {
    pub model: ModelSpec,
    pub training: TrainSpec,
    /// The swept keys and the values this variant takes, in axis order.
    pub labels: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest<M> {
    name: Option<String>,
    data: RawData,
    model: M,
    #[serde(default)]
    training: TrainSettings,
    grid: toml::Table,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    dataset: Dataset,
    #[serde(default = "default_data_dir")]
    dir: String,
    train_subset: Option<i64>,
    test_subset: Option<i64>,
}

fn default_data_dir() -> String {
    "data/mnist".to_string()
}

/// Every manifest at `path`: the file itself, or each `*.toml` beneath a
/// folder (a study), in path order.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(ManifestError::whole(
            path,
            "no such manifest file or study folder",
        ));
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(|e| ManifestError::whole(path, e.to_string()))?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "toml") {
            files.push(entry.into_path());
        }
    }
    if files.is_empty() {
        return Err(ManifestError::whole(
            path,
            "this folder holds no *.toml manifest",
        ));
    }
    Ok(files)
}

/// Load and validate every manifest at `path`; experiment names must be
/// unique within a study.
pub fn load_all(path: &Path) -> Result<Vec<Experiment>, ManifestError> {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut out = Vec::new();
    for file in discover(path)? {
        let exp = load(&file)?;
        if let Some(first) = seen.insert(exp.name.clone(), file.clone()) {
            return Err(ManifestError::whole(
                &file,
                format!(
                    "experiment name `{}` is already used by {}: names pick the results folder and must be unique",
                    exp.name,
                    first.display()
                ),
            ));
        }
        out.push(exp);
    }
    Ok(out)
}

/// Load and validate one manifest file.
pub fn load(path: &Path) -> Result<Experiment, ManifestError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ManifestError::whole(path, format!("cannot read manifest: {e}")))?;
    let src = String::from_utf8(bytes)
        .map_err(|_| ManifestError::whole(path, "manifest is not valid UTF-8"))?;
    parse(path, &src)
}

/// Validate manifest text; `path` names it in errors and anchors relative
/// data folders.
pub fn parse(path: &Path, src: &str) -> Result<Experiment, ManifestError> {
    let doc = Doc::parse(path, src)?;
    for (table, purpose) in [
        ("data", "the dataset to train on"),
        ("model", "the model family and its hyperparameters"),
        ("grid", "the learning rates to sweep"),
    ] {
        if doc.get(&[Seg::Key(table)]).is_none() {
            return Err(doc.error(
                &[],
                format!("missing table `[{table}]`: it declares {purpose}"),
            ));
        }
    }
    let kind = model_kind(&doc)?;
    match kind {
        ModelKind::Rnn => build(&doc, ModelSpec::Rnn, RnnParams::check),
        ModelKind::Transformer => build(&doc, ModelSpec::Transformer, TransformerParams::check),
        ModelKind::Diffusion => build(&doc, ModelSpec::Diffusion, DiffusionParams::check),
    }
}

fn model_kind(doc: &Doc) -> Result<ModelKind, ManifestError> {
    let known = ModelKind::ALL
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let model = [Seg::Key("model")];
    let table = doc.get(&model).expect("checked by parse");
    if !table.get_ref().is_table() {
        return Err(doc.error(&model, "`model` must be a table"));
    }
    let kind_path = [Seg::Key("model"), Seg::Key("kind")];
    let Some(kind) = doc.get(&kind_path) else {
        return Err(doc.error(&model, format!("`[model]` needs `kind`, one of {known}")));
    };
    let Some(name) = kind.get_ref().as_str() else {
        return Err(doc.error(
            &kind_path,
            format!("`kind` must be a string, one of {known}"),
        ));
    };
    ModelKind::from_name(name).ok_or_else(|| {
        doc.error(
            &kind_path,
            format!("unknown model kind `{name}`, expected one of {known}"),
        )
    })
}

fn build<P>(
    doc: &Doc,
    wrap: fn(P) -> ModelSpec,
    check: fn(&P) -> Result<(), FieldError>,
) -> Result<Experiment, ManifestError>
where
    P: Serialize + DeserializeOwned + Clone,
{
    let raw: RawManifest<P> =
        toml::from_str(doc.src).map_err(|e| toml_error(doc.path, doc.src, &e))?;
    let field_error = |section: &'static str, e: FieldError| {
        doc.error(&[Seg::Key(section), Seg::Key(e.field)], e.message)
    };
    check(&raw.model).map_err(|e| field_error("model", e))?;
    raw.training
        .check()
        .map_err(|e| field_error("training", e))?;

    let name = experiment_name(doc, raw.name.as_deref())?;
    let (data, data_dir) = data_settings(doc, &raw.data)?;
    let lrs = lr_axis(doc, &raw.grid)?;
    let variants = variants(doc, &raw, wrap, check)?;
    Ok(Experiment {
        name,
        path: doc.path.to_path_buf(),
        data,
        data_dir,
        variants,
        lrs,
        seeds: raw.training.seeds.clone(),
        device: raw.training.device.clone(),
    })
}

fn experiment_name(doc: &Doc, name: Option<&str>) -> Result<String, ManifestError> {
    let Some(name) = name else {
        let stem = doc
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("experiment");
        return Ok(stem.to_string());
    };
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(doc.error(
            &[Seg::Key("name")],
            format!(
                "`name` picks the folder results/<name>/: use letters, digits, '-', '_' and '.', got {name:?}"
            ),
        ))
    }
}

fn data_settings(doc: &Doc, raw: &RawData) -> Result<(DataSpec, PathBuf), ManifestError> {
    let (train_max, test_max) = raw.dataset.sizes();
    let subset = |key: &'static str, value: Option<i64>, max: u32| match value {
        None => Ok(None),
        Some(n) if n >= 1 && n <= i64::from(max) => Ok(Some(n as u32)),
        Some(n) => Err(doc.error(
            &[Seg::Key("data"), Seg::Key(key)],
            format!("`{key}` must be between 1 and {max} (the dataset's size), got {n}"),
        )),
    };
    let spec = DataSpec {
        dataset: raw.dataset,
        train_subset: subset("train_subset", raw.train_subset, train_max)?,
        test_subset: subset("test_subset", raw.test_subset, test_max)?,
    };
    let base = doc.path.parent().unwrap_or(Path::new("."));
    let dir = base.join(&raw.dir);
    if !dir.is_dir() {
        return Err(doc.error(
            &[Seg::Key("data"), Seg::Key("dir")],
            format!(
                "data folder {} does not exist (a relative `dir` is read from the manifest's folder)",
                dir.display()
            ),
        ));
    }
    Ok((spec, dir))
}

/// A number from the document, integer or float, checked to be positive.
fn positive_number(
    doc: &Doc,
    path: &[Seg],
    what: &str,
) -> Result<rust_decimal::Decimal, ManifestError> {
    let Some(value) = doc.get(path) else {
        return Err(doc.error(path, format!("missing `{what}`")));
    };
    let number = match value.get_ref() {
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().replace('_', "").parse::<f64>().ok(),
        _ => None,
    };
    let Some(number) = number else {
        return Err(doc.error(
            path,
            format!(
                "`{what}` must be a number, got {}",
                value.get_ref().type_str()
            ),
        ));
    };
    if !(number.is_finite() && number > 0.0) {
        return Err(doc.error(
            path,
            format!("`{what}` must be a positive number, got {number}"),
        ));
    }
    grid::decimal_of(number).map_err(|m| doc.error(path, m))
}

fn lr_axis(doc: &Doc, grid: &toml::Table) -> Result<Vec<Lr>, ManifestError> {
    let lr_path = [Seg::Key("grid"), Seg::Key("lr")];
    if !grid.contains_key("lr") {
        return Err(doc.error(
            &[Seg::Key("grid")],
            "`[grid]` needs `lr`: a list, { start, stop, step } or { start, stop, num, scale = \"log\" }",
        ));
    }
    let value = doc.get(&lr_path).expect("lr is in the document");
    let decimals = match value.get_ref() {
        DeValue::Array(items) => {
            if items.is_empty() {
                return Err(doc.error(
                    &lr_path,
                    "`lr` is an empty list: give at least one learning rate",
                ));
            }
            (0..items.len())
                .map(|i| {
                    let p = [Seg::Key("grid"), Seg::Key("lr"), Seg::Index(i)];
                    positive_number(doc, &p, "lr")
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        DeValue::Table(table) => {
            let keys: Vec<&str> = table.iter().map(|(k, _)| k.get_ref().as_ref()).collect();
            for (k, _) in table.iter() {
                if !matches!(
                    k.get_ref().as_ref(),
                    "start" | "stop" | "step" | "num" | "scale"
                ) {
                    return Err(doc.error_at(
                        k.span(),
                        format!(
                            "unknown key `{}` in `lr`, expected `start`, `stop` and `step`, or `start`, `stop`, `num` and `scale`",
                            k.get_ref()
                        ),
                    ));
                }
            }
            let at = |k: &'static str| [Seg::Key("grid"), Seg::Key("lr"), Seg::Key(k)];
            let start = positive_number(doc, &at("start"), "start")?;
            let stop = positive_number(doc, &at("stop"), "stop")?;
            if start > stop {
                return Err(doc.error(
                    &at("start"),
                    format!("`start` ({start}) must not exceed `stop` ({stop})"),
                ));
            }
            let scale = match doc.get(&at("scale")) {
                None => "linear",
                Some(v) => match v.get_ref().as_str() {
                    Some(s @ ("linear" | "log")) => s,
                    _ => {
                        return Err(
                            doc.error(&at("scale"), "`scale` must be \"linear\" or \"log\"")
                        );
                    }
                },
            };
            let has = |k: &str| keys.contains(&k);
            match (scale, has("step"), has("num")) {
                ("linear", true, false) => {
                    let step_path = at("step");
                    let step = match doc.get(&step_path).map(|v| v.get_ref()) {
                        Some(DeValue::Integer(i)) if i.as_str() == "0" => {
                            return Err(doc.error(&step_path, "`step` must be > 0, got 0"));
                        }
                        _ => positive_number(doc, &step_path, "step").map_err(|mut e| {
                            e.message = e.message.replace("a positive number", "> 0");
                            e
                        })?,
                    };
                    grid::linear(start, stop, step).map_err(|m| doc.error(&lr_path, m))
                }
                ("log", false, true) => {
                    let num_path = at("num");
                    let num = doc
                        .get(&num_path)
                        .and_then(|v| v.get_ref().as_integer())
                        .and_then(|i| i.as_str().replace('_', "").parse::<i64>().ok())
                        .ok_or_else(|| doc.error(&num_path, "`num` must be an integer"))?;
                    grid::log(start, stop, num).map_err(|m| doc.error(&lr_path, m))
                }
                ("linear", false, true) => Err(doc.error(
                    &lr_path,
                    "`num` needs `scale = \"log\"`; a linear grid takes `step`",
                )),
                ("log", true, _) => {
                    Err(doc.error(&at("step"), "a log grid takes `num`, not `step`"))
                }
                ("linear", true, true) => {
                    Err(doc.error(&lr_path, "give either `step` or `num`, not both"))
                }
                _ => Err(doc.error(
                    &lr_path,
                    "`lr` needs `step` (linear) or `num` with `scale = \"log\"`",
                )),
            }?
        }
        other => {
            return Err(doc.error(
                &lr_path,
                format!(
                    "`lr` must be a list or a table {{ start, stop, step }}, got {}",
                    other.type_str()
                ),
            ));
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, d) in decimals.iter().enumerate() {
        if !seen.insert(*d) {
            return Err(doc.error(
                &[Seg::Key("grid"), Seg::Key("lr"), Seg::Index(i)],
                format!("learning rate {d} is listed twice"),
            ));
        }
    }
    Ok(decimals.into_iter().map(Lr::from_decimal).collect())
}

/// Which table a swept key belongs to.
#[derive(Clone, Copy)]
enum Section {
    Model,
    Training,
}

/// The product of every non-`lr` grid axis, in key order.
fn variants<P>(
    doc: &Doc,
    raw: &RawManifest<P>,
    wrap: fn(P) -> ModelSpec,
    check: fn(&P) -> Result<(), FieldError>,
) -> Result<Vec<Variant>, ManifestError>
where
    P: Serialize + DeserializeOwned + Clone,
{
    let model_keys = table_of(&raw.model);
    let training_keys = table_of(&raw.training);
    let mut current = vec![(raw.model.clone(), raw.training.clone(), Vec::new())];
    for (key, value) in raw.grid.iter().filter(|(k, _)| k.as_str() != "lr") {
        let key_path = [Seg::Key("grid"), Seg::Key(key)];
        let section = if key != "kind" && model_keys.contains_key(key) {
            Section::Model
        } else if training_keys.contains_key(key)
            && !UNSWEEPABLE_TRAINING_KEYS.contains(&key.as_str())
        {
            Section::Training
        } else {
            let sweepable: Vec<&str> = model_keys
                .keys()
                .chain(training_keys.keys())
                .map(String::as_str)
                .filter(|k| *k != "kind" && !UNSWEEPABLE_TRAINING_KEYS.contains(k))
                .collect();
            return Err(doc.error(
                &key_path,
                format!(
                    "unknown grid key `{key}`: expected `lr` or one of {}",
                    sweepable.join(", ")
                ),
            ));
        };
        let Some(values) = value.as_array() else {
            return Err(doc.error(
                &key_path,
                format!("grid key `{key}` must be a list of values"),
            ));
        };
        if values.is_empty() {
            return Err(doc.error(&key_path, format!("grid key `{key}` is an empty list")));
        }
        let mut next = Vec::new();
        for (model, training, labels) in &current {
            for (i, v) in values.iter().enumerate() {
                let at = [Seg::Key("grid"), Seg::Key(key), Seg::Index(i)];
                let mut labels = labels.clone();
                labels.push((key.clone(), label_of(v)));
                let (model, training) = match section {
                    Section::Model => {
                        let m = with_value(model, key, v).map_err(|m| doc.error(&at, m))?;
                        check(&m).map_err(|e| doc.error(&at, e.message))?;
                        (m, training.clone())
                    }
                    Section::Training => {
                        let t = with_value(training, key, v).map_err(|m| doc.error(&at, m))?;
                        t.check().map_err(|e| doc.error(&at, e.message))?;
                        (model.clone(), t)
                    }
                };
                next.push((model, training, labels));
            }
        }
        current = next;
    }
    Ok(current
        .into_iter()
        .map(|(model, training, labels)| Variant {
            model: wrap(model),
            training: training.to_spec(),
            labels,
        })
        .collect())
}

/// Settings as a TOML table: every key, defaults included.
fn table_of<T: Serialize>(settings: &T) -> toml::Table {
    toml::Table::try_from(settings).expect("settings serialize to a table")
}

/// `base` with `key` set to `value`, deserialized (and so type-checked) again.
fn with_value<T: Serialize + DeserializeOwned>(
    base: &T,
    key: &str,
    value: &toml::Value,
) -> Result<T, String> {
    let mut table = table_of(base);
    table.insert(key.to_string(), value.clone());
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("invalid value for `{key}`: {}", e.message().trim()))
}

fn label_of(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
