//! The confusion matrix of an evaluation (counts and row percentages,
//! cells shaded by value) and per-class precision, recall, specificity and
//! F1 with a macro row; left/right step through the epochs.

use crate::tui::app::{App, Pane};
use crate::tui::draw::{paint, pane_block};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

/// A grey from the 256-colour ramp for a share in 0..1 (dark to light).
fn shade(share: f64) -> Color {
    Color::Indexed(232 + (share.clamp(0.0, 1.0) * 23.0).round() as u8)
}

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let evals = app
        .selected_id()
        .and_then(|id| app.state.runs.get(&id))
        .map(|d| d.evals.clone())
        .unwrap_or_default();
    if evals.is_empty() {
        let block = pane_block(app, Pane::Confusion, String::new());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(
                "No evaluation yet: classifier stages evaluate on the test split after each epoch.",
            ),
            inner,
        );
        return;
    }
    app.eval_back = app.eval_back.min(evals.len() - 1);
    let e = &evals[evals.len() - 1 - app.eval_back];
    let title = format!(
        "{} epoch {} ({}/{}) · acc {:.3} · ←/→",
        e.stage,
        e.epoch,
        evals.len() - app.eval_back,
        evals.len(),
        e.accuracy
    );
    let block = pane_block(app, Pane::Confusion, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let n = e.classes.len();
    let [matrix_area, metrics_area] =
        Layout::vertical([Constraint::Length(n as u16 + 2), Constraint::Min(0)]).areas(inner);
    let name_w = e
        .classes
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 12) as u16;
    let cell_w = ((matrix_area.width.saturating_sub(name_w + 1)) / n.max(1) as u16).clamp(5, 16);
    let bold = paint(app, Style::default().add_modifier(Modifier::BOLD));
    let mut header = vec![Cell::from("true\\pred")];
    header.extend(
        e.classes
            .iter()
            .map(|c| Cell::from(truncate(c, cell_w as usize))),
    );
    let rows: Vec<Row<'_>> = e
        .confusion
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let total: u64 = row.iter().sum();
            let mut cells = vec![Cell::from(truncate(&e.classes[i], name_w as usize)).style(bold)];
            for &v in row {
                let share = if total > 0 {
                    v as f64 / total as f64
                } else {
                    0.0
                };
                let text = if cell_w >= 10 {
                    format!("{v} ({:.0}%)", share * 100.0)
                } else {
                    format!("{v}")
                };
                let fg = if share > 0.5 {
                    Color::Black
                } else {
                    Color::White
                };
                cells.push(
                    Cell::from(text).style(paint(app, Style::default().bg(shade(share)).fg(fg))),
                );
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(name_w.max(9))];
    widths.extend(std::iter::repeat_n(Constraint::Length(cell_w), n));
    frame.render_widget(
        Table::new(rows, widths).header(Row::new(header).style(bold)),
        matrix_area,
    );
    if metrics_area.height < 2 {
        return;
    }
    let mut rows: Vec<Row<'_>> = (0..n)
        .map(|i| {
            Row::new(vec![
                truncate(&e.classes[i], 12),
                format!("{:.3}", e.precision.get(i).copied().unwrap_or(0.0)),
                format!("{:.3}", e.recall.get(i).copied().unwrap_or(0.0)),
                format!("{:.3}", e.specificity.get(i).copied().unwrap_or(0.0)),
                format!("{:.3}", e.f1.get(i).copied().unwrap_or(0.0)),
            ])
        })
        .collect();
    rows.push(
        Row::new(vec![
            "macro".to_string(),
            format!("{:.3}", e.macro_precision),
            format!("{:.3}", e.macro_recall),
            format!("{:.3}", e.macro_specificity),
            format!("{:.3}", e.macro_f1),
        ])
        .style(bold),
    );
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(vec!["class", "precision", "recall", "specif.", "F1"]).style(bold)),
        metrics_area,
    );
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).chain(['…']).collect()
    }
}
