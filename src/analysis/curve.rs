//! Convergence measures of one loss curve, as `shared/notes/convergence.md`
//! defines them. `y[t]` is the loss of epoch t, `y[0]` measured before the
//! first update. Pure functions on slices.

/// Parameters of the measures (the defaults of convergence.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Weight `w` of the debiased EMA.
    pub smoothing: f64,
    /// `m`: epochs the smoothed curve must stay at or below a threshold.
    pub reach_epochs: usize,
    /// `delta`: T_tau's threshold is `L* (1 + delta)`.
    pub delta: f64,
    /// `eps`: T_eps's threshold is `L_fin + eps (L_0 - L_fin)`.
    pub eps: f64,
    /// `k` = max(final_min, ceil(final_frac T)) epochs make `L_fin`.
    pub final_min: usize,
    pub final_frac: f64,
    /// `kappa`: a loss above `kappa L_0` marks divergence.
    pub kappa: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            smoothing: 0.6,
            reach_epochs: 3,
            delta: 0.05,
            eps: 0.05,
            final_min: 5,
            final_frac: 0.1,
            kappa: 1.5,
        }
    }
}

/// TensorBoard's debiased exponential moving average; non-finite points pass
/// through unchanged and do not enter the average.
pub fn smooth(y: &[f64], w: f64) -> Vec<f64> {
    let (mut m, mut n) = (0.0, 0);
    y.iter()
        .map(|&v| {
            if v.is_finite() {
                m = w * m + (1.0 - w) * v;
                n += 1;
                m / (1.0 - w.powi(n))
            } else {
                v
            }
        })
        .collect()
}

pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// First epoch from which `s` stays at or below `tau` for `m` epochs (or
/// until the curve ends, when fewer than `m` remain).
pub fn first_reach(s: &[f64], tau: f64, m: usize) -> Option<usize> {
    let m = m.max(1);
    (0..s.len()).find(|&t| s[t..(t + m).min(s.len())].iter().all(|v| *v <= tau))
}

/// The measures of one curve on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Epochs trained (`T`); a diverged run may have fewer than planned.
    pub epochs: usize,
    pub l0: f64,
    pub l_fin: f64,
    pub l_fin_mean: f64,
    pub l_fin_sd: f64,
    pub l_best: f64,
    pub t_best: usize,
    pub t_eps: Option<usize>,
    pub diverged: bool,
}

pub fn summarize(y: &[f64], p: &Params) -> Summary {
    assert!(!y.is_empty(), "a curve has at least epoch 0");
    let t_max = y.len() - 1;
    let l0 = y[0];
    let k = p
        .final_min
        .max((p.final_frac * t_max as f64).ceil() as usize)
        .min(t_max);
    let window = if t_max == 0 {
        &y[..1]
    } else {
        &y[y.len() - k..]
    };
    let l_fin = median(window);
    let l_fin_mean = window.iter().sum::<f64>() / window.len() as f64;
    let l_fin_sd = if window.len() > 1 {
        (window.iter().map(|v| (v - l_fin_mean).powi(2)).sum::<f64>() / (window.len() - 1) as f64)
            .sqrt()
    } else {
        0.0
    };
    let s = smooth(y, p.smoothing);
    let (t_best, l_best) = s
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f64::NAN));
    let diverged = y.iter().any(|v| !v.is_finite()) || y.iter().any(|v| *v > p.kappa * l0);
    let t_eps = if diverged {
        None
    } else {
        first_reach(&s, l_fin + p.eps * (l0 - l_fin), p.reach_epochs)
    };
    Summary {
        epochs: t_max,
        l0,
        l_fin,
        l_fin_mean,
        l_fin_sd,
        l_best,
        t_best,
        t_eps,
        diverged,
    }
}

/// `T_tau`: first epoch reaching `L* (1 + delta)`; None when never (censored).
pub fn t_tau(y: &[f64], l_star: f64, p: &Params) -> Option<usize> {
    if !l_star.is_finite() {
        return None;
    }
    first_reach(
        &smooth(y, p.smoothing),
        l_star * (1.0 + p.delta),
        p.reach_epochs,
    )
}

/// Normalised area above `L*`, over `planned` epochs: an epoch that is
/// missing or non-finite (after divergence) counts as 1, the initial level.
pub fn auc(y: &[f64], planned: usize, l_star: f64, l0_med: f64) -> f64 {
    let scale = l0_med - l_star;
    if planned == 0 || !(scale.is_finite() && scale > 0.0) {
        return f64::NAN;
    }
    let area: f64 = (1..=planned)
        .map(|t| match y.get(t) {
            Some(v) if v.is_finite() => ((v - l_star) / scale).max(0.0),
            _ => 1.0,
        })
        .sum();
    area / planned as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_debiased() {
        let s = smooth(&[2.0, 2.0, 2.0], 0.6);
        for v in s {
            assert!((v - 2.0).abs() < 1e-12);
        }
        let s = smooth(&[1.0, f64::NAN, 3.0], 0.5);
        assert_eq!(s[0], 1.0);
        assert!(s[1].is_nan());
        // m = 0.5*0.5 + 0.5*3 = 1.75; debias 1 - 0.25 = 0.75.
        assert!((s[2] - 1.75 / 0.75).abs() < 1e-12);
    }

    #[test]
    fn final_value_is_the_median_of_the_last_k_epochs() {
        // T = 10: k = max(5, 1) = 5 -> epochs 6..10.
        let y = [2.3, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.9, 0.3, 0.2];
        let s = summarize(&y, &Params::default());
        assert_eq!(s.epochs, 10);
        assert_eq!(s.l0, 2.3);
        assert_eq!(s.l_fin, 0.4);
        assert!(!s.diverged);
        // Short runs use every epoch after 0.
        let short = summarize(&[2.3, 0.5, 0.3], &Params::default());
        assert_eq!(short.l_fin, 0.4);
    }

    #[test]
    fn best_is_taken_on_the_smoothed_curve() {
        let y = [1.0, 0.5, 0.01, 0.5, 0.5];
        let s = summarize(&y, &Params::default());
        assert_eq!(s.t_best, 2);
        assert!(s.l_best > 0.01, "a one-epoch dip is smoothed: {}", s.l_best);
    }

    #[test]
    fn divergence_is_nan_or_a_rise_above_kappa_l0() {
        assert!(summarize(&[2.3, 1.0, f64::NAN], &Params::default()).diverged);
        assert!(summarize(&[2.0, 1.0, 3.5], &Params::default()).diverged);
        assert!(!summarize(&[2.0, 1.0, 2.9], &Params::default()).diverged);
    }

    #[test]
    fn reach_needs_m_epochs_below_the_threshold() {
        let s = [5.0, 1.0, 5.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(first_reach(&s, 1.5, 3), Some(3));
        assert_eq!(first_reach(&s, 0.5, 3), None);
        // Near the end, the remaining epochs suffice.
        assert_eq!(first_reach(&[5.0, 5.0, 1.0], 1.5, 3), Some(2));
    }

    #[test]
    fn auc_is_normalised_and_penalises_missing_epochs() {
        // L* = 0, L0med = 2: epochs 1..2 at 1.0 and 0.0 -> (0.5 + 0) / 2.
        assert!((auc(&[2.0, 1.0, 0.0], 2, 0.0, 2.0) - 0.25).abs() < 1e-12);
        // A run that stopped after epoch 1 of 2 counts the missing one as 1.
        assert!((auc(&[2.0, 1.0], 2, 0.0, 2.0) - 0.75).abs() < 1e-12);
        assert!(auc(&[2.0, 1.0], 2, 2.0, 2.0).is_nan());
    }

    #[test]
    fn t_tau_uses_the_group_best_final_value() {
        let y = [2.0, 1.0, 0.5, 0.5, 0.5, 0.5];
        let p = Params {
            smoothing: 0.0,
            ..Params::default()
        };
        assert_eq!(t_tau(&y, 0.5, &p), Some(2));
        assert_eq!(t_tau(&y, 0.1, &p), None);
    }
}
