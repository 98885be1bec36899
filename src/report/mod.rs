//! Ranking tables for people and scripts: `report/ranking.csv` (written
//! atomically) and the table printed by `converge report`.

use std::path::PathBuf;

use crate::analysis::{RankRow, Ranking};
use crate::store::{Store, StoreError, write_atomic};

fn fmt_opt_usize(v: Option<usize>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        v.to_string()
    }
}

/// Swept keys other than lr and seed, in the order of the first row.
fn extra_axes(rows: &[RankRow]) -> Vec<String> {
    rows.first()
        .map(|r| {
            r.labels
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "lr" && k != "seed")
                .collect()
        })
        .unwrap_or_default()
}

fn label<'a>(row: &'a RankRow, key: &str) -> &'a str {
    row.labels
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// Write `results/<experiment>/report/ranking.csv`; returns its path.
pub fn write_ranking(
    store: &Store,
    experiment: &str,
    ranking: &Ranking,
) -> Result<PathBuf, StoreError> {
    let axes = extra_axes(&ranking.rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = ["rank", "experiment", "id", "model"]
        .map(String::from)
        .to_vec();
    header.extend(axes.iter().cloned());
    header.extend(
        [
            "lr",
            "seed",
            "state",
            "series",
            "epochs",
            "L_0",
            "L_fin",
            "L_fin_mean",
            "L_fin_sd",
            "L_best",
            "t_best",
            "T_tau",
            "AUC",
            "T_eps",
            "final_accuracy",
        ]
        .map(String::from),
    );
    w.write_record(&header).expect("write to memory");
    for r in &ranking.rows {
        let s = &r.summary;
        let mut rec = vec![
            r.rank.to_string(),
            experiment.to_string(),
            r.id.clone(),
            r.model.clone(),
        ];
        rec.extend(axes.iter().map(|k| label(r, k).to_string()));
        rec.extend([
            label(r, "lr").to_string(),
            r.seed.to_string(),
            r.state.name().to_string(),
            r.series.name().to_string(),
            s.epochs.to_string(),
            fmt_float(s.l0),
            fmt_float(s.l_fin),
            fmt_float(s.l_fin_mean),
            fmt_float(s.l_fin_sd),
            fmt_float(s.l_best),
            s.t_best.to_string(),
            fmt_opt_usize(r.t_tau),
            fmt_float(r.auc),
            fmt_opt_usize(s.t_eps),
            r.final_accuracy.map(|a| a.to_string()).unwrap_or_default(),
        ]);
        w.write_record(&rec).expect("write to memory");
    }
    let path = store.report_dir(experiment).join("ranking.csv");
    write_atomic(&path, &w.into_inner().expect("flush to memory"))?;
    Ok(path)
}

/// The ranking as an aligned text table.
pub fn table(experiment: &str, ranking: &Ranking) -> String {
    let axes = extra_axes(&ranking.rows);
    let mut header: Vec<String> = vec!["rank".into()];
    header.extend(axes.iter().cloned());
    header.extend(
        [
            "lr", "seed", "state", "L_0", "L_fin", "L_best", "T_tau", "AUC", "acc", "id",
        ]
        .map(String::from),
    );
    let mut cells = vec![header];
    for r in &ranking.rows {
        let s = &r.summary;
        let mut row = vec![r.rank.to_string()];
        row.extend(axes.iter().map(|k| label(r, k).to_string()));
        row.extend([
            label(r, "lr").to_string(),
            r.seed.to_string(),
            r.state.name().to_string(),
            format!("{:.4}", s.l0),
            format!("{:.4}", s.l_fin),
            format!("{:.4}", s.l_best),
            r.t_tau.map_or("censored".to_string(), |t| t.to_string()),
            format!("{:.3}", r.auc),
            r.final_accuracy
                .map_or(String::new(), |a| format!("{:.2}%", 100.0 * a)),
            r.id.clone(),
        ]);
        cells.push(row);
    }
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let series = ranking
        .rows
        .first()
        .map_or("test_loss", |r| r.series.name());
    let mut out = format!("{experiment}: ranked by L_fin of {series}\n");
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if !ranking.missing.is_empty() {
        out.push_str(&format!(
            "{} run(s) of the matrix have no results yet and are not ranked\n",
            ranking.missing.len()
        ));
    }
    out
}
