//! Learning-rate grids in exact decimal arithmetic: `start + i * step` is
//! computed on decimals, so 1e-4..1e-3 step 1e-4 gives 0.0003, never
//! 0.00030000000000000003.

use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Most points one grid axis may expand to: a typo such as a step of 1e-9
/// must not silently plan a million runs.
pub const MAX_POINTS: usize = 10_000;

/// Significant digits kept of a log-spaced value: enough to tell points
/// apart, few enough that the id does not depend on the last ulp of `exp`.
const LOG_DIGITS: usize = 6;

/// One learning rate, as a float for training and as its exact decimal text
/// for display and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Lr {
    pub value: f64,
    pub text: String,
}

impl Lr {
    pub fn from_decimal(d: Decimal) -> Lr {
        let text = d.normalize().to_string();
        let value = f64::from_str(&text).expect("a decimal's text is a valid float");
        Lr { value, text }
    }
}

/// The decimal a float literal stands for: the shortest text that round-trips
/// to the same f64 (so `1e-4` and `0.0001` agree).
pub fn decimal_of(value: f64) -> Result<Decimal, String> {
    if !value.is_finite() {
        return Err(format!("expected a finite number, got {value}"));
    }
    Decimal::from_str(&value.to_string())
        .map(|d| d.normalize())
        .map_err(|_| format!("{value} is outside the range converge can represent exactly"))
}

/// `start, start + step, ...` up to and including `stop`.
pub fn linear(start: Decimal, stop: Decimal, step: Decimal) -> Result<Vec<Decimal>, String> {
    if step <= Decimal::ZERO {
        return Err(format!("`step` must be > 0, got {step}"));
    }
    if start > stop {
        return Err(format!("`start` ({start}) must not exceed `stop` ({stop})"));
    }
    let count = ((stop - start) / step).floor();
    let count = count
        .to_usize()
        .filter(|c| *c < MAX_POINTS)
        .ok_or_else(|| format!("the grid would have more than {MAX_POINTS} points"))?;
    Ok((0..=count)
        .map(|i| (start + step * Decimal::from(i)).normalize())
        .collect())
}

/// `num` points from `start` to `stop`, evenly spaced in log(lr); the ends are
/// exact, the inner points are kept to six significant digits.
pub fn log(start: Decimal, stop: Decimal, num: i64) -> Result<Vec<Decimal>, String> {
    if start > stop {
        return Err(format!("`start` ({start}) must not exceed `stop` ({stop})"));
    }
    if num < 1 || num as usize > MAX_POINTS {
        return Err(format!(
            "`num` must be between 1 and {MAX_POINTS}, got {num}"
        ));
    }
    if num == 1 {
        if start != stop {
            return Err("`num = 1` needs `start` equal to `stop`".to_string());
        }
        return Ok(vec![start]);
    }
    let (a, b) = (
        start.to_f64().unwrap_or(f64::NAN).ln(),
        stop.to_f64().unwrap_or(f64::NAN).ln(),
    );
    let last = num - 1;
    (0..num)
        .map(|i| {
            if i == 0 {
                return Ok(start);
            }
            if i == last {
                return Ok(stop);
            }
            let v = (a + (b - a) * i as f64 / last as f64).exp();
            let rounded: f64 = format!("{:.*e}", LOG_DIGITS - 1, v)
                .parse()
                .expect("formatted float parses");
            decimal_of(rounded)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn texts(v: &[Decimal]) -> Vec<String> {
        v.iter().map(|d| Lr::from_decimal(*d).text).collect()
    }

    #[test]
    fn paper_grid_is_ten_exact_values() {
        let grid = linear(
            decimal_of(1e-4).unwrap(),
            decimal_of(1e-3).unwrap(),
            decimal_of(1e-4).unwrap(),
        )
        .unwrap();
        assert_eq!(
            texts(&grid),
            [
                "0.0001", "0.0002", "0.0003", "0.0004", "0.0005", "0.0006", "0.0007", "0.0008",
                "0.0009", "0.001"
            ]
        );
        let values: Vec<f64> = grid.iter().map(|d| Lr::from_decimal(*d).value).collect();
        assert_eq!(values[2], 0.0003);
        assert_eq!(values[2].to_string(), "0.0003");
        // The naive float loop drifts; the decimal one must not.
        assert_ne!(1e-4 + 2.0 * 1e-4, 0.0003);
    }

    #[test]
    fn linear_stops_before_overshoot_and_includes_exact_stop() {
        assert_eq!(
            texts(&linear(d("1"), d("2"), d("0.4")).unwrap()),
            ["1", "1.4", "1.8"]
        );
        assert_eq!(
            texts(&linear(d("0.5"), d("0.5"), d("0.1")).unwrap()),
            ["0.5"]
        );
    }

    #[test]
    fn linear_rejects_bad_steps() {
        assert!(linear(d("1"), d("2"), d("0")).unwrap_err().contains("step"));
        assert!(
            linear(d("1"), d("2"), d("-1"))
                .unwrap_err()
                .contains("step")
        );
        assert!(
            linear(d("3"), d("2"), d("1"))
                .unwrap_err()
                .contains("exceed")
        );
        assert!(
            linear(d("0"), d("1"), d("0.00001"))
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn log_grid_has_exact_ends_and_geometric_inner_points() {
        let grid = log(d("0.0001"), d("0.001"), 4).unwrap();
        assert_eq!(
            texts(&grid),
            ["0.0001", "0.000215443", "0.000464159", "0.001"]
        );
        let decade = log(d("0.0001"), d("0.01"), 3).unwrap();
        assert_eq!(texts(&decade), ["0.0001", "0.001", "0.01"]);
        assert!(log(d("0.1"), d("0.01"), 3).is_err());
        assert!(log(d("0.1"), d("1"), 0).is_err());
    }

    #[test]
    fn decimal_of_normalises_float_spellings() {
        assert_eq!(decimal_of(1e-4).unwrap(), decimal_of(0.0001).unwrap());
        assert_eq!(decimal_of(3e-4).unwrap().to_string(), "0.0003");
        assert!(decimal_of(f64::NAN).is_err());
    }
}
