//! The paper's own numbers (its private data, 77 test images judging by
//! the accuracies, which are all k/77), row by row in our row order, for
//! the report to print beside ours.
//!
//! Table 4 prints its last two columns swapped: the column headed
//! "specificity" equals 2PR/(P+R) of its row in all five rows, so it is F1,
//! and the one headed "F1" is specificity (Table 7's ResNet34 row, the same
//! run as Table 4's set 4, prints them in the right order). We print them
//! under their true names.

use super::Table;

/// `(metric, value per row)`; `None` where the paper prints no number.
pub type PaperColumns = Vec<(&'static str, Vec<Option<f64>>)>;

pub fn numbers(table: Table) -> PaperColumns {
    let s = |v: &[f64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
    match table {
        Table::T3 => vec![
            ("healthy", s(&[0.4585, 0.5390])),
            ("metastasis", s(&[0.5160, 0.5572])),
            ("benign", s(&[0.5068, 0.5485])),
        ],
        Table::T4 => vec![
            ("accuracy", s(&[0.7013, 0.7273, 0.7403, 0.7792, 0.8052])),
            ("precision", s(&[0.6953, 0.7301, 0.7375, 0.8032, 0.8662])),
            ("recall", s(&[0.6657, 0.6878, 0.6752, 0.6928, 0.7284])),
            ("specificity", s(&[0.8416, 0.8452, 0.8508, 0.8688, 0.8825])),
            ("f1", s(&[0.6801, 0.7083, 0.7050, 0.7439, 0.7913])),
        ],
        Table::T5 => vec![
            ("accuracy", s(&[0.8052, 0.6623, 0.5974])),
            ("recall", s(&[0.7284, 0.5899, 0.5276])),
        ],
        Table::T6 => vec![
            ("accuracy", s(&[0.7662, 0.8052, 0.7662, 0.8312])),
            ("recall", s(&[0.6663, 0.7550, 0.6968, 0.7639])),
            ("f1", s(&[0.7436, 0.7677, 0.7367, 0.8178])),
        ],
        Table::T7 => vec![
            ("accuracy", s(&[0.7792, 0.7792, 0.7922, 0.8052, 0.8312])),
            ("precision", s(&[0.8032, 0.7857, 0.8477, 0.8684, 0.8799])),
            ("recall", s(&[0.6928, 0.7459, 0.7506, 0.7418, 0.7639])),
            ("specificity", s(&[0.8688, 0.8756, 0.8742, 0.8806, 0.8992])),
            ("f1", s(&[0.7439, 0.7652, 0.7962, 0.8001, 0.8178])),
        ],
        Table::T8 => vec![
            ("accuracy", s(&[0.8312, 0.8571])),
            ("recall", s(&[0.7639, 0.8040])),
            ("specificity", s(&[0.8992, 0.9120])),
        ],
    }
}
