//! Classification metrics from a confusion matrix (the paper's eq. 15-19):
//! one-vs-rest precision, recall, specificity and F1 per class, their macro
//! averages, and overall accuracy (trace / total). A ratio with a zero
//! denominator is 0, as scikit-learn's `zero_division=0` reports it.

/// `counts[true][predicted]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    pub counts: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassMetrics {
    pub accuracy: f64,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub specificity: Vec<f64>,
    pub f1: Vec<f64>,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_specificity: f64,
    pub macro_f1: f64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

impl Confusion {
    pub fn new(n_classes: usize) -> Self {
        Self {
            counts: vec![vec![0; n_classes]; n_classes],
        }
    }

    /// Count pairs of (true, predicted) class indices; out-of-range ones are ignored.
    pub fn add(&mut self, truth: &[i64], predicted: &[i64]) {
        let n = self.counts.len();
        for (&t, &p) in truth.iter().zip(predicted) {
            if (0..n as i64).contains(&t) && (0..n as i64).contains(&p) {
                self.counts[t as usize][p as usize] += 1;
            }
        }
    }

    pub fn metrics(&self) -> ClassMetrics {
        let n = self.counts.len();
        let total: u64 = self.counts.iter().flatten().sum();
        let trace: u64 = (0..n).map(|i| self.counts[i][i]).sum();
        let (mut precision, mut recall, mut specificity, mut f1) = (vec![], vec![], vec![], vec![]);
        for c in 0..n {
            let tp = self.counts[c][c];
            let row: u64 = self.counts[c].iter().sum();
            let col: u64 = (0..n).map(|r| self.counts[r][c]).sum();
            let (fn_, fp) = (row - tp, col - tp);
            let tn = total - tp - fn_ - fp;
            let p = ratio(tp, tp + fp);
            let r = ratio(tp, tp + fn_);
            precision.push(p);
            recall.push(r);
            specificity.push(ratio(tn, tn + fp));
            f1.push(if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            });
        }
        ClassMetrics {
            accuracy: ratio(trace, total),
            macro_precision: mean(&precision),
            macro_recall: mean(&recall),
            macro_specificity: mean(&specificity),
            macro_f1: mean(&f1),
            precision,
            recall,
            specificity,
            f1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn hand_computed_three_class_example() {
        // truth rows, predicted columns
        let m = Confusion {
            counts: vec![vec![5, 1, 0], vec![2, 3, 1], vec![0, 0, 4]],
        }
        .metrics();
        close(m.accuracy, 12.0 / 16.0);
        // class 0: tp 5, fp 2, fn 1, tn 8
        close(m.precision[0], 5.0 / 7.0);
        close(m.recall[0], 5.0 / 6.0);
        close(m.specificity[0], 8.0 / 10.0);
        close(
            m.f1[0],
            2.0 * (5.0 / 7.0) * (5.0 / 6.0) / (5.0 / 7.0 + 5.0 / 6.0),
        );
        // class 2: tp 4, fp 1, fn 0, tn 11
        close(m.precision[2], 4.0 / 5.0);
        close(m.recall[2], 1.0);
        close(m.specificity[2], 11.0 / 12.0);
        close(m.macro_recall, (5.0 / 6.0 + 3.0 / 6.0 + 1.0) / 3.0);
    }

    #[test]
    fn sklearn_reference_values() {
        // Recorded with scikit-learn: precision_recall_fscore_support(
        //   [0,0,1,1,2,2,2,1], [0,1,1,2,2,2,0,1], zero_division=0)
        // precision [0.5, 0.6667, 0.6667], recall [0.5, 0.6667, 0.6667]
        let mut c = Confusion::new(3);
        c.add(&[0, 0, 1, 1, 2, 2, 2, 1], &[0, 1, 1, 2, 2, 2, 0, 1]);
        let m = c.metrics();
        close(m.precision[0], 0.5);
        close(m.recall[1], 2.0 / 3.0);
        close(m.f1[2], 2.0 / 3.0);
        close(m.accuracy, 5.0 / 8.0);
    }

    #[test]
    fn never_predicted_class_matches_sklearn_zero_division_0() {
        // Recorded with scikit-learn: precision_recall_fscore_support(
        //   [0,0,1,1,2,2], [0,0,0,1,1,1], zero_division=0), per class and macro.
        let mut c = Confusion::new(3);
        c.add(&[0, 0, 1, 1, 2, 2], &[0, 0, 0, 1, 1, 1]);
        let m = c.metrics();
        for (got, want) in m.precision.iter().zip([2.0 / 3.0, 1.0 / 3.0, 0.0]) {
            close(*got, want);
        }
        for (got, want) in m.recall.iter().zip([1.0, 0.5, 0.0]) {
            close(*got, want);
        }
        for (got, want) in m.f1.iter().zip([0.8, 0.4, 0.0]) {
            close(*got, want);
        }
        close(m.macro_precision, 1.0 / 3.0);
        close(m.macro_recall, 0.5);
        close(m.macro_f1, 0.4);
        // specificity from the matrix: class 2 is never predicted, tn = 4, fp = 0
        close(m.specificity[2], 1.0);
    }

    #[test]
    fn empty_class_gives_zeros_not_nan() {
        let m = Confusion::new(2).metrics();
        assert_eq!(m.precision, vec![0.0, 0.0]);
        assert_eq!(m.accuracy, 0.0);
    }
}
