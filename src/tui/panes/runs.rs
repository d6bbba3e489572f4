//! Runs: queue and history with state, stage, progress, epoch and step,
//! ETA, device and elapsed time; invalid configs with their first error.

use crate::tui::app::{App, Pane};
use crate::tui::draw::{duration, paint, pane_block};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

pub fn state_color(state: &str) -> Color {
    match state {
        "running" => Color::Green,
        "queued" => Color::Blue,
        "pending" => Color::Cyan,
        "paused" => Color::Yellow,
        "done" => Color::Gray,
        "failed" => Color::Red,
        "cancelled" => Color::Magenta,
        _ => Color::White,
    }
}

/// "█████░░░░░ 52%".
fn bar(fraction: f64, width: usize) -> String {
    let full = ((fraction * width as f64).round() as usize).min(width);
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(full),
        "░".repeat(width - full),
        fraction * 100.0
    )
}

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let snap = &app.state.snapshot;
    let block = pane_block(app, Pane::Runs, format!("{} runs", snap.runs.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if snap.runs.is_empty() && snap.invalid_configs.is_empty() {
        let text = format!(
            "No runs yet. Put a config into {} (see configs/examples/) or run: scintigan submit FILE",
            if snap.configs_dir.is_empty() {
                "configs/"
            } else {
                &snap.configs_dir
            }
        );
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    let wide = inner.width >= 90;
    let now = app.state.now;
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (i, r) in snap.runs.iter().enumerate() {
        let data = app.state.runs.get(&r.id);
        let marked = app.marked.contains(&r.id);
        let place = r.position.map_or(String::new(), |p| format!("{p}"));
        let state = if r.stalled {
            format!("{}!", r.state)
        } else {
            r.state.clone()
        };
        // From the run's events when the dashboard holds them, else from
        // the daemon's list (status.json, a few seconds behind).
        let listed = (r.stage_steps > 0).then(|| (r.step as f64 / r.stage_steps as f64).min(1.0));
        let progress = data
            .and_then(|d| d.stage_progress())
            .or(listed)
            .map_or_else(|| "-".to_string(), |f| bar(f, 8));
        let (epoch, step) = data
            .and_then(|d| d.position.as_ref())
            .map_or((r.epoch, r.step), |(_, e, s)| (*e, *s));
        let eta = match (data, r.state.as_str()) {
            (Some(d), "running") => eta(d).map_or("-".into(), duration),
            _ => "-".into(),
        };
        let elapsed = if matches!(r.state.as_str(), "running" | "paused") && r.pid.is_some() {
            now - r.created_at
        } else {
            r.updated_at - r.created_at
        };
        let stage = r.stage.clone().unwrap_or_else(|| "-".into());
        let mut cells = vec![
            Cell::from(if marked { "●" } else { " " }),
            Cell::from(place),
            if data.is_some_and(|d| d.has_collapse()) {
                // A GAN draws one image per class: the line below the table
                // (selected run) and the warning in its log say which.
                Cell::from(Line::from(vec![
                    Span::styled(
                        COLLAPSE_BADGE,
                        paint(app, Style::default().fg(Color::Black).bg(Color::Yellow)),
                    ),
                    Span::raw(format!(" {}", r.name)),
                ]))
            } else {
                Cell::from(r.name.clone())
            },
            Cell::from(Span::styled(
                state,
                paint(app, Style::default().fg(state_color(&r.state))),
            )),
            Cell::from(stage),
            Cell::from(progress),
            Cell::from(format!("{epoch}/{step}")),
        ];
        if wide {
            cells.push(Cell::from(eta));
            cells.push(Cell::from(r.device.clone().unwrap_or_else(|| "-".into())));
            cells.push(Cell::from(duration(elapsed)));
        }
        let mut row = Row::new(cells);
        if i == app.selected {
            row = row.style(paint(
                app,
                Style::default().add_modifier(Modifier::REVERSED),
            ));
        }
        rows.push(row);
    }
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(13),
        Constraint::Length(11),
    ];
    let mut header = vec!["", "#", "run", "state", "stage", "progress", "epoch/step"];
    if wide {
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
        ]);
        header.extend(["ETA", "device", "elapsed"]);
    }
    let invalid = &snap.invalid_configs;
    let selected = snap.runs.get(app.selected);
    let reason_lines: Vec<Line<'_>> = selected
        .and_then(slurm_line)
        .map(|text| {
            Line::from(Span::styled(
                text,
                paint(app, Style::default().fg(Color::Cyan)),
            ))
        })
        .into_iter()
        .chain(
            selected
                .and_then(|r| app.state.runs.get(&r.id))
                .and_then(collapse_line)
                .map(|text| {
                    Line::from(Span::styled(
                        text,
                        paint(app, Style::default().fg(Color::Yellow)),
                    ))
                }),
        )
        .chain(selected.and_then(|r| r.reason.clone()).map(|reason| {
            Line::from(Span::styled(
                format!("↳ {reason}"),
                paint(app, Style::default().fg(Color::Yellow)),
            ))
        }))
        .chain(invalid.iter().map(|bad| {
            Line::from(Span::styled(
                format!(
                    "✗ {}",
                    bad.errors
                        .first()
                        .cloned()
                        .unwrap_or_else(|| bad.file.clone())
                ),
                paint(app, Style::default().fg(Color::Red)),
            ))
        }))
        .collect();
    let below = (reason_lines.len() as u16).min(inner.height.saturating_sub(3));
    let table_area = Rect {
        height: inner.height - below,
        ..inner
    };
    // Keep the selected row in view.
    let visible = table_area.height.saturating_sub(1) as usize;
    let skip = (app.selected + 1).saturating_sub(visible);
    let rows: Vec<Row<'_>> = rows.into_iter().skip(skip).collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(paint(app, Style::default().add_modifier(Modifier::BOLD))))
        .column_spacing(1);
    frame.render_widget(table, table_area);
    if below > 0 {
        let area = Rect {
            y: inner.y + inner.height - below,
            height: below,
            ..inner
        };
        frame.render_widget(Paragraph::new(reason_lines), area);
    }
}

/// The badge beside a run whose GAN collapsed.
const COLLAPSE_BADGE: &str = "⚠";

/// "⚠ mode collapse in bone: metastasis, benign (...)" for a run whose
/// newest SSIM event found classes collapsed.
fn collapse_line(data: &crate::tui::state::RunData) -> Option<String> {
    let parts: Vec<String> = data
        .collapsed
        .iter()
        .filter(|(_, classes)| !classes.is_empty())
        .map(|(stage, classes)| format!("{stage}: {}", classes.join(", ")))
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "{COLLAPSE_BADGE} mode collapse in {}: its samples are far more alike than the real images (see the log)",
            parts.join("; ")
        )
    })
}

/// "slurm job 12 · RUNNING on gpu07" for a run submitted to Slurm.
pub fn slurm_line(r: &crate::daemon::protocol::RunInfo) -> Option<String> {
    let job = r.job_id.as_deref()?;
    let mut text = format!("⎈ slurm job {job}");
    if let Some(state) = &r.job_state {
        text.push_str(&format!(" · {state}"));
    }
    if let Some(node) = &r.node {
        text.push_str(&format!(" on {node}"));
    }
    Some(text)
}

/// Seconds left in the current stage at the pace so far.
fn eta(d: &crate::tui::state::RunData) -> Option<f64> {
    let stage = d.current_stage()?;
    let (_, _, step) = d.position.as_ref()?;
    let total = stage.epochs * stage.steps_per_epoch;
    let key = d
        .metrics
        .keys()
        .find(|k| k.starts_with(&format!("{}/", stage.name)))?;
    let m = &d.metrics[key];
    let (t0, t1) = (*m.time.first()?, *m.time.last()?);
    let (s0, s1) = (*m.step.first()?, *m.step.last()?);
    if s1 <= s0 || t1 <= t0 {
        return None;
    }
    let rate = f64::from(s1 - s0) / f64::from(t1 - t0);
    Some(total.saturating_sub(*step) as f64 / rate)
}
