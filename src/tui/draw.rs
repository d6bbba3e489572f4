//! Layout and the frame: header, panes, footer, overlays. The layout adapts
//! from 80x24 (runs above one detail pane) to wide screens (every pane).

use super::app::{App, Pane};
use super::panes;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Screens at least this wide and tall show every pane at once.
const WIDE: (u16, u16) = (120, 32);

/// A style, or plain text when colour is off (`NO_COLOR`).
pub fn paint(app: &App, style: Style) -> Style {
    if app.color {
        style
    } else {
        let mut plain = Style::default();
        if style.add_modifier.contains(Modifier::BOLD) {
            plain = plain.add_modifier(Modifier::BOLD);
        }
        if style.add_modifier.contains(Modifier::REVERSED) {
            plain = plain.add_modifier(Modifier::REVERSED);
        }
        plain
    }
}

/// A pane's frame: its number and title, highlighted when focused.
pub fn pane_block<'a>(app: &App, pane: Pane, extra: String) -> Block<'a> {
    let number = Pane::ALL.iter().position(|p| *p == pane).unwrap_or(0) + 1;
    let focused = app.focus == pane;
    let border = if focused {
        paint(
            app,
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        )
    } else {
        paint(app, Style::default().fg(Color::DarkGray))
    };
    let title = if extra.is_empty() {
        format!(" {number} {} ", pane.title())
    } else {
        format!(" {number} {} · {extra} ", pane.title())
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(
            title,
            if focused { border } else { Style::default() },
        ))
}

pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, app, header);
    draw_footer(frame, app, footer);
    if app.zoomed {
        draw_pane(frame, app, app.focus, body);
    } else if area.width >= WIDE.0 && area.height >= WIDE.1 {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        let [runs, charts] =
            Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(top);
        let [confusion, samples, logs, side] = Layout::horizontal([
            Constraint::Percentage(30),
            Constraint::Percentage(18),
            Constraint::Percentage(32),
            Constraint::Percentage(20),
        ])
        .areas(bottom);
        draw_pane(frame, app, Pane::Runs, runs);
        draw_pane(frame, app, Pane::Charts, charts);
        draw_pane(frame, app, Pane::Confusion, confusion);
        draw_pane(frame, app, Pane::Samples, samples);
        draw_pane(frame, app, Pane::Logs, logs);
        draw_pane(frame, app, app.side, side);
    } else {
        let runs_height = (body.height * 2 / 5).max(6).min(body.height);
        let [runs, detail] =
            Layout::vertical([Constraint::Length(runs_height), Constraint::Min(1)]).areas(body);
        draw_pane(frame, app, Pane::Runs, runs);
        let other = if app.focus == Pane::Runs {
            Pane::Charts
        } else {
            app.focus
        };
        draw_pane(frame, app, other, detail);
    }
    if let Some((question, _)) = &app.confirm {
        let text = question.clone();
        overlay(frame, app, "Confirm", vec![Line::from(text)], 60, 5);
    } else if app.help {
        let lines = help_lines(app);
        let height = lines.len() as u16 + 2;
        overlay(frame, app, "Keys (any key closes)", lines, 72, height);
    }
}

fn draw_pane(frame: &mut Frame<'_>, app: &mut App, pane: Pane, area: Rect) {
    if area.width < 4 || area.height < 3 {
        return;
    }
    match pane {
        Pane::Runs => panes::runs::draw(frame, app, area),
        Pane::Charts => panes::charts::draw(frame, app, area),
        Pane::Confusion => panes::confusion::draw(frame, app, area),
        Pane::Samples => panes::samples::draw(frame, app, area),
        Pane::Logs => panes::logs::draw(frame, app, area),
        Pane::System => panes::system::draw(frame, app, area),
        Pane::Config => panes::config::draw(frame, app, area),
    }
}

fn draw_header(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let snap = &app.state.snapshot;
    let count = |s: &str| snap.runs.iter().filter(|r| r.state == s).count();
    let mut spans = vec![
        Span::styled(
            " scintigan ",
            paint(
                app,
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ),
        ),
        Span::raw(format!(
            " {} running · {} queued · {} paused · {} done · {} failed",
            count("running"),
            count("queued"),
            count("paused"),
            count("done"),
            count("failed")
        )),
    ];
    if !snap.invalid_configs.is_empty() {
        spans.push(Span::styled(
            format!(" · {} invalid config(s)", snap.invalid_configs.len()),
            paint(app, Style::default().fg(Color::Red)),
        ));
    }
    if let Some(reason) = &app.state.connection_lost {
        spans = vec![Span::styled(
            format!(" daemon connection lost: {reason}; reconnecting… "),
            paint(
                app,
                Style::default()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            ),
        )];
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let text = match &app.message {
        Some(m) => m.clone(),
        None => {
            let k = |a| {
                app.bindings
                    .keys_for(a)
                    .first()
                    .cloned()
                    .unwrap_or_default()
            };
            use super::keys::Action as A;
            format!(
                "{} help  {} pause  {} cancel  {} retry  {}/{} move  tab focus  {} zoom  {} smooth  {} log-y  {} x-axis  {} detach",
                k(A::Help),
                k(A::Pause),
                k(A::Cancel),
                k(A::Retry),
                k(A::MoveUp),
                k(A::MoveDown),
                k(A::Zoom),
                k(A::Smooth),
                k(A::LogY),
                k(A::XAxis),
                k(A::Quit)
            )
        }
    };
    frame.render_widget(
        Paragraph::new(text).style(paint(app, Style::default().fg(Color::DarkGray))),
        area,
    );
}

fn help_lines(app: &App) -> Vec<Line<'static>> {
    use super::keys::Action;
    let mut lines: Vec<Line<'static>> = Action::ALL
        .iter()
        .map(|a| {
            let keys = app.bindings.keys_for(*a).join(", ");
            Line::from(vec![
                Span::styled(
                    format!("{keys:>14}  "),
                    paint(app, Style::default().fg(Color::Cyan)),
                ),
                Span::raw(a.describe()),
            ])
        })
        .collect();
    lines.push(Line::from(format!(
        "{:>14}  focus a pane: 1 runs 2 charts 3 confusion 4 scans 5 logs 6 system 7 config",
        "1-7"
    )));
    lines.push(Line::from(format!("{:>14}  leave zoom", "esc")));
    lines
}

fn overlay(
    frame: &mut Frame<'_>,
    app: &App,
    title: &str,
    lines: Vec<Line<'static>>,
    width: u16,
    height: u16,
) {
    let area = frame.area();
    let w = width.min(area.width);
    let h = height.min(area.height);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} "))
        .border_style(paint(app, Style::default().fg(Color::Yellow)));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

/// "1h02m", "3m05s", "12s".
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
