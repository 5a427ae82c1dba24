//! Figures as edgevit reports them: latencies rounded to the microsecond, quantiles by nearest
//! rank (bench, the MQTT statistics).

/// Rounded to three decimals: milliseconds to the microsecond, which is all a timer on a
/// shared machine can tell apart.
pub fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

/// The `q` quantile (nearest rank) of `values`, which it sorts; 0 for none.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}
