//! Scalar series kept as compact columns and reduced per screen column.
//!
//! A series holds the y values of a metric plus per-block minima and
//! maxima at four block sizes (16 to 65,536 points); its x values (step,
//! epoch or wall time, non-decreasing) are passed in, since one metric has
//! three x axes. Reducing a million points to a chart's 200 columns reads
//! a few dozen block summaries per column: a frame costs about the same for
//! a run of a million steps as for one of a hundred.

/// Points per summary block at each level: 16, 256, 4096, 65536.
const LEVELS: [usize; 4] = [16, 256, 4096, 65536];

#[derive(Debug, Clone, Default)]
pub struct Series {
    y: Vec<f32>,
    /// Per level of LEVELS: (min, max) of y over each full or partial
    /// block of that many points.
    blocks: [Vec<(f32, f32)>; 4],
}

impl Series {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    pub fn y(&self) -> &[f32] {
        &self.y
    }
    pub fn last(&self) -> Option<f32> {
        self.y.last().copied()
    }

    /// Append a value (the caller appends its x to the axes).
    pub fn push(&mut self, y: f32) {
        for (level, size) in self.blocks.iter_mut().zip(LEVELS) {
            if self.y.len().is_multiple_of(size) {
                level.push((y, y));
            } else if let Some(b) = level.last_mut() {
                b.0 = b.0.min(y);
                b.1 = b.1.max(y);
            }
        }
        self.y.push(y);
    }

    /// Min and max of y over points `lo..hi`.
    fn min_max(&self, lo: usize, hi: usize) -> Option<(f32, f32)> {
        if lo >= hi {
            return None;
        }
        let mut acc: Option<(f32, f32)> = None;
        let mut merge = |a: f32, b: f32| {
            acc = Some(acc.map_or((a, b), |(m, n)| (m.min(a), n.max(b))));
        };
        // Greedy: at each point take the largest aligned block that fits.
        let mut i = lo;
        while i < hi {
            let level = (0..LEVELS.len())
                .rev()
                .find(|&k| i.is_multiple_of(LEVELS[k]) && i + LEVELS[k] <= hi);
            match level {
                Some(k) => {
                    let (a, b) = self.blocks[k][i / LEVELS[k]];
                    merge(a, b);
                    i += LEVELS[k];
                }
                None => {
                    let end = hi.min((i / LEVELS[0] + 1) * LEVELS[0]);
                    for &v in &self.y[i..end] {
                        merge(v, v);
                    }
                    i = end;
                }
            }
        }
        acc
    }

    /// Per column of `columns` equal slices of `[x0, x1]`: the min and max
    /// of y of the points in it (None where a column has none). Spikes
    /// survive: a single outlier shows in its column's max.
    /// `xs` are the points' x values (sorted, as long as the series).
    pub fn reduce(&self, xs: &[f32], x0: f64, x1: f64, columns: usize) -> Vec<Option<(f32, f32)>> {
        let mut out = Vec::with_capacity(columns);
        if columns == 0 {
            return out;
        }
        let xs = &xs[..xs.len().min(self.y.len())];
        let width = (x1 - x0).max(f64::MIN_POSITIVE);
        let mut lo = xs.partition_point(|&x| f64::from(x) < x0);
        for c in 0..columns {
            let edge = x0 + width * (c + 1) as f64 / columns as f64;
            let hi = if c + 1 == columns {
                xs.partition_point(|&x| f64::from(x) <= x1)
            } else {
                xs.partition_point(|&x| f64::from(x) < edge)
            };
            out.push(self.min_max(lo, hi.max(lo)));
            lo = hi.max(lo);
        }
        out
    }

    /// Min and max of y over all points with x in `[x0, x1]`.
    pub fn y_range(&self, xs: &[f32], x0: f64, x1: f64) -> Option<(f32, f32)> {
        let xs = &xs[..xs.len().min(self.y.len())];
        let lo = xs.partition_point(|&x| f64::from(x) < x0);
        let hi = xs.partition_point(|&x| f64::from(x) <= x1);
        self.min_max(lo, hi)
    }
}

/// An exponential moving average of a series, debiased as TensorBoard
/// does (`ema_t / (1 - w^t)`), extended as the series grows and rebuilt
/// when the weight changes.
#[derive(Debug, Clone, Default)]
pub struct Smoothed {
    weight: f64,
    ema: f64,
    /// w^t so far.
    decay: f64,
    pub series: Series,
}

impl Smoothed {
    /// Bring the smoothed copy up to date with `raw` at `weight` (0..1).
    pub fn update(&mut self, raw: &Series, weight: f64) -> &Series {
        if weight != self.weight || raw.len() < self.series.len() {
            *self = Smoothed {
                weight,
                ema: 0.0,
                decay: 1.0,
                series: Series::default(),
            };
        }
        for i in self.series.len()..raw.len() {
            let y = f64::from(raw.y[i]);
            self.ema = weight * self.ema + (1.0 - weight) * y;
            self.decay *= weight;
            let debiased = self.ema / (1.0 - self.decay).max(1e-12);
            self.series.push(debiased as f32);
        }
        &self.series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_keep_the_min_and_max_of_their_points() {
        let mut s = Series::default();
        let mut xs = Vec::new();
        for i in 0..10_000 {
            let spike = if i == 7777 { 100.0 } else { 0.0 };
            s.push((i % 10) as f32 + spike);
            xs.push(i as f32);
        }
        let cols = s.reduce(&xs, 0.0, 9999.0, 10);
        assert_eq!(cols.len(), 10);
        for (c, col) in cols.iter().enumerate() {
            let (lo, hi) = col.expect("points in every column");
            assert_eq!(lo, 0.0);
            assert_eq!(hi, if c == 7 { 107.0 } else { 9.0 }, "column {c}");
        }
        // Against a direct computation, at an awkward width.
        let cols = s.reduce(&xs, 1234.5, 8765.25, 37);
        let width = (8765.25 - 1234.5) / 37.0;
        for (c, col) in cols.iter().enumerate() {
            let a = 1234.5 + width * c as f64;
            let b = a + width;
            let pts: Vec<f32> = (0..10_000)
                .filter(|&i| {
                    let x = i as f64;
                    x >= a && (x < b || (c == 36 && x <= 8765.25))
                })
                .map(|i| s.y()[i])
                .collect();
            let want = (!pts.is_empty()).then(|| {
                (
                    pts.iter().copied().fold(f32::MAX, f32::min),
                    pts.iter().copied().fold(f32::MIN, f32::max),
                )
            });
            assert_eq!(*col, want, "column {c}");
        }
    }

    #[test]
    fn columns_without_points_are_empty() {
        let mut s = Series::default();
        s.push(1.0);
        s.push(2.0);
        let cols = s.reduce(&[0.0, 10.0], 0.0, 10.0, 5);
        assert_eq!(cols[0], Some((1.0, 1.0)));
        assert_eq!(cols[2], None);
        assert_eq!(cols[4], Some((2.0, 2.0)));
    }

    #[test]
    fn debiased_ema_matches_a_hand_computation() {
        let mut raw = Series::default();
        for y in [1.0, 2.0, 3.0] {
            raw.push(y);
        }
        let mut sm = Smoothed::default();
        let out = sm.update(&raw, 0.5).y().to_vec();
        // ema: 0.5, 1.25, 2.125; debiased by 1-0.5, 1-0.25, 1-0.125.
        let want = [1.0, 1.25 / 0.75, 2.125 / 0.875];
        for (a, b) in out.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{a} vs {b}");
        }
        raw.push(4.0);
        assert_eq!(sm.update(&raw, 0.5).len(), 4);
        assert_eq!(sm.update(&raw, 0.9).len(), 4);
    }
}
