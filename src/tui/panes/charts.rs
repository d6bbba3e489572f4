//! Charts of the selected run (and marked runs, overlaid): G and D loss, D
//! accuracy, SSIM per class, classifier loss and accuracy. Each series is
//! reduced to min/max per screen column before drawing, so spikes stay
//! visible and a million points cost no more than a hundred.

use crate::tui::app::{App, Pane};
use crate::tui::draw::{paint, pane_block};
use crate::tui::state::{SsimKind, XAxis};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

/// A chart: its title and which metric keys (by suffix) it shows.
struct ChartSpec {
    title: &'static str,
    matches: fn(&str) -> bool,
}

const CHARTS: [ChartSpec; 5] = [
    ChartSpec {
        title: "G and D loss",
        matches: |k| k.ends_with("/g_loss") || k.ends_with("/d_loss"),
    },
    ChartSpec {
        title: "D accuracy",
        matches: |k| {
            k.ends_with("/d_real_acc") || k.ends_with("/d_fake_acc") || k.ends_with("/d_class_acc")
        },
    },
    ChartSpec {
        title: "SSIM: gen-real ⣿ gen-gen • real ▄",
        matches: |k| SsimKind::parse(k).is_some(),
    },
    ChartSpec {
        title: "Classifier loss",
        matches: |k| k.ends_with("/train_loss") || k.ends_with("/test_loss"),
    },
    ChartSpec {
        title: "Classifier accuracy",
        matches: |k| k.ends_with("/train_accuracy") || k.ends_with("/test_accuracy"),
    },
];

const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Yellow,
    Color::Green,
    Color::Magenta,
    Color::LightRed,
    Color::LightBlue,
    Color::White,
    Color::LightGreen,
];

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let mut extra = format!("x: {}", app.x_axis.label());
    if let Some(w) = app.smoothing {
        extra.push_str(&format!(" · EMA {w:.2}"));
    }
    if app.log_y {
        extra.push_str(" · log y");
    }
    let block = pane_block(app, Pane::Charts, extra);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let runs = app.watched();
    let specs: Vec<&ChartSpec> = CHARTS
        .iter()
        .filter(|spec| {
            runs.iter().any(|id| {
                app.state.runs.get(id).is_some_and(|d| {
                    d.metrics
                        .iter()
                        .any(|(k, m)| (spec.matches)(k) && !m.raw.is_empty())
                })
            })
        })
        .collect();
    if specs.is_empty() {
        let text = if runs.is_empty() {
            "Select a run to see its charts."
        } else {
            "No metrics yet: the charts fill as the run logs its steps."
        };
        frame.render_widget(Paragraph::new(text), inner);
        return;
    }
    let cols = if specs.len() == 1 || inner.width < 70 {
        1
    } else {
        2
    };
    let rows_n = specs.len().div_ceil(cols);
    let max_rows = (inner.height / 6).max(1) as usize;
    let rows_n = rows_n.min(max_rows);
    let row_areas =
        Layout::vertical(vec![Constraint::Ratio(1, rows_n as u32); rows_n]).split(inner);
    let mut cells: Vec<Rect> = Vec::new();
    for r in row_areas.iter() {
        let c = Layout::horizontal(vec![Constraint::Ratio(1, cols as u32); cols]).split(*r);
        cells.extend(c.iter().copied());
    }
    for (spec, cell) in specs.iter().zip(cells) {
        draw_chart(frame, app, spec, &runs, cell);
    }
}

/// Points of one series reduced to `columns` min/max pairs over `[x0, x1]`.
fn reduced_points(
    app: &mut App,
    run: &str,
    key: &str,
    x0: f64,
    x1: f64,
    columns: usize,
) -> Vec<(f64, f64)> {
    let (axis, smoothing, log_y) = (app.x_axis, app.smoothing, app.log_y);
    let Some(metric) = app
        .state
        .runs
        .get_mut(run)
        .and_then(|d| d.metrics.get_mut(key))
    else {
        return Vec::new();
    };
    let (xs, series) = metric.view(axis, smoothing);
    let width = (x1 - x0).max(1e-12);
    let transform = |v: f32| -> Option<f64> {
        let v = f64::from(v);
        if log_y {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    };
    let mut points = Vec::with_capacity(columns * 2);
    for (c, col) in series.reduce(xs, x0, x1, columns).into_iter().enumerate() {
        let Some((lo, hi)) = col else { continue };
        let x = x0 + width * (c as f64 + 0.5) / columns as f64;
        if let Some(y) = transform(lo) {
            points.push((x, y));
        }
        if hi != lo
            && let Some(y) = transform(hi)
        {
            points.push((x, y));
        }
    }
    points
}

fn draw_chart(frame: &mut Frame<'_>, app: &mut App, spec: &ChartSpec, runs: &[String], area: Rect) {
    let axis = app.x_axis;
    // Every (run, key) of this chart, with the x range they span.
    let mut series: Vec<(String, String, String)> = Vec::new();
    // SSIM series take their class's colour and their kind's marker.
    let mut ssim_classes: Vec<String> = Vec::new();
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    for id in runs {
        let Some(data) = app.state.runs.get(id) else {
            continue;
        };
        let name = app.state.info(id).map_or(id.clone(), |i| i.name.clone());
        let stages_with = data.metrics.keys().filter(|k| (spec.matches)(k)).count();
        for (key, m) in data.metrics.iter().filter(|(k, _)| (spec.matches)(k)) {
            let xs = m.xs(axis);
            let (Some(a), Some(b)) = (xs.first(), xs.last()) else {
                continue;
            };
            x0 = x0.min(f64::from(*a));
            x1 = x1.max(f64::from(*b));
            let short = key.rsplit_once('/').map_or(key.as_str(), |(_, s)| s);
            let short = if let Some((kind, _, class)) = SsimKind::parse(key) {
                if !ssim_classes.iter().any(|c| c == class) {
                    ssim_classes.push(class.to_string());
                }
                format!("{class} {}", kind.label())
            } else if stages_with > 2 && runs.len() == 1 {
                key.split_once('/').map_or(short, |x| x.1).to_string()
            } else {
                short.to_string()
            };
            let label = if runs.len() > 1 {
                format!("{name}:{short}")
            } else {
                short
            };
            series.push((id.clone(), key.clone(), label));
        }
    }
    if series.is_empty() || !x0.is_finite() {
        return;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let columns = (area.width.saturating_sub(10) as usize * 2).max(2);
    let mut data: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut looks: Vec<(Color, Marker)> = Vec::new();
    for (i, (id, key, label)) in series.iter().enumerate() {
        data.push((label.clone(), reduced_points(app, id, key, x0, x1, columns)));
        looks.push(match SsimKind::parse(key) {
            Some((kind, _, class)) => {
                let c = ssim_classes.iter().position(|x| x == class).unwrap_or(0);
                let marker = match kind {
                    SsimKind::VsReal => Marker::Braille,
                    SsimKind::VsGenerated => Marker::Dot,
                    SsimKind::RealVsReal => Marker::HalfBlock,
                };
                (PALETTE[c % PALETTE.len()], marker)
            }
            None => (PALETTE[i % PALETTE.len()], Marker::Braille),
        });
    }
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, pts) in &data {
        for &(_, y) in pts {
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if y1 - y0 < 1e-9 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    }
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let fmt_y = |v: f64| {
        if app.log_y {
            format!("{:.3}", 10f64.powf(v))
        } else if v.abs() >= 1000.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        }
    };
    let datasets: Vec<Dataset<'_>> = data
        .iter()
        .zip(&looks)
        .map(|((label, pts), &(color, marker))| {
            Dataset::default()
                .name(label.clone())
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(paint(app, Style::default().fg(color)))
                .data(pts)
        })
        .collect();
    let x_labels = vec![Span::raw(format_x(x0, axis)), Span::raw(format_x(x1, axis))];
    let y_labels = vec![Span::raw(fmt_y(y0)), Span::raw(fmt_y(y1))];
    let chart = Chart::new(datasets)
        .block(Block::default().borders(Borders::TOP).title(Span::styled(
            spec.title,
            paint(app, Style::default().fg(Color::Gray)),
        )))
        .x_axis(Axis::default().bounds([x0, x1]).labels(x_labels))
        .y_axis(Axis::default().bounds([y0, y1]).labels(y_labels))
        .hidden_legend_constraints((Constraint::Ratio(2, 3), Constraint::Ratio(2, 3)));
    frame.render_widget(chart, area);
}

fn format_x(x: f64, axis: XAxis) -> String {
    match axis {
        XAxis::Step => format!("{x:.0}"),
        XAxis::Epoch => format!("{x:.1}"),
        XAxis::Time => crate::tui::draw::duration(x),
    }
}
