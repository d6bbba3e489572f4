//! The selected run's events (as log lines) and its worker.log, merged in
//! time order and filtered by level.

use crate::tui::app::{App, Pane};
use crate::tui::draw::{paint, pane_block};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use std::path::PathBuf;
use std::time::SystemTime;

/// worker.log's tail, re-read when the file changes.
#[derive(Debug, Clone, Default)]
pub struct LogCache {
    key: Option<(PathBuf, Option<SystemTime>, u64)>,
    lines: Vec<(f64, String, String)>,
}

/// Lines of worker.log read at most.
const TAIL_BYTES: u64 = 64 * 1024;

fn read_worker_log(cache: &mut LogCache, path: PathBuf) {
    let meta = std::fs::metadata(&path).ok();
    let key = (
        path.clone(),
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.as_ref().map_or(0, |m| m.len()),
    );
    if cache.key.as_ref() == Some(&key) {
        return;
    }
    cache.key = Some(key);
    cache.lines.clear();
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let start = bytes.len().saturating_sub(TAIL_BYTES as usize);
    let text = String::from_utf8_lossy(&bytes[start..]);
    // Lines without a timestamp (plain output) take the one before theirs.
    let mut last_t = 0.0;
    for line in text.lines().skip(usize::from(start > 0)) {
        let (t, level, msg) = parse_tracing_line(line);
        let t = if t > 0.0 { t } else { last_t };
        last_t = t;
        cache.lines.push((t, level, msg));
    }
    // Plain lines before the first timestamp take that one.
    if let Some(first) = cache.lines.iter().map(|l| l.0).find(|t| *t > 0.0) {
        for line in cache.lines.iter_mut().take_while(|l| l.0 == 0.0) {
            line.0 = first;
        }
    }
}

/// `2026-11-25T21:02:29.011059Z  INFO target: message` -> (unix, level, rest).
fn parse_tracing_line(line: &str) -> (f64, String, String) {
    let mut parts = line.split_whitespace();
    let (Some(ts), Some(level)) = (parts.next(), parts.next()) else {
        return (0.0, "info".into(), line.to_string());
    };
    match parse_utc(ts) {
        Some(t) => {
            let msg = line
                .trim_start_matches(ts)
                .trim_start()
                .trim_start_matches(level)
                .trim_start()
                .to_string();
            (t, level.to_lowercase(), msg)
        }
        None => (0.0, "info".into(), line.to_string()),
    }
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
pub fn parse_utc(ts: &str) -> Option<f64> {
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let ss: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}

fn level_color(level: &str) -> Color {
    match level {
        "error" => Color::Red,
        "warn" | "warning" => Color::Yellow,
        "info" => Color::Green,
        _ => Color::DarkGray,
    }
}

/// "21:02:29" in UTC.
fn clock(t: f64) -> String {
    let s = t.rem_euclid(86_400.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let block = pane_block(
        app,
        Pane::Logs,
        format!("level {} (f)", app.log_filter.label()),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(id) = app.selected_id() else {
        return;
    };
    let path = PathBuf::from(&app.state.snapshot.runs_dir)
        .join(&id)
        .join("worker.log");
    read_worker_log(&mut app.logs, path);
    let mut lines: Vec<(f64, String, String)> = app
        .state
        .runs
        .get(&id)
        .map(|d| {
            d.logs
                .iter()
                .map(|l| (l.t, l.level.clone(), format!("event: {}", l.message)))
                .collect()
        })
        .unwrap_or_default();
    lines.extend(app.logs.lines.iter().cloned());
    lines.retain(|(_, level, _)| app.log_filter.admits(level));
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let height = inner.height as usize;
    let end = lines.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(height);
    let shown: Vec<Line<'_>> = lines[start..end]
        .iter()
        .map(|(t, level, msg)| {
            Line::from(vec![
                Span::styled(
                    format!("{} ", clock(*t)),
                    paint(app, Style::default().fg(Color::DarkGray)),
                ),
                Span::styled(
                    format!("{:<5} ", level),
                    paint(app, Style::default().fg(level_color(level))),
                ),
                Span::raw(msg.clone()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(shown).wrap(Wrap { trim: false }), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_timestamps_are_read_as_unix_seconds() {
        // date -u -d 2026-11-25T21:02:29Z +%s -> 1795640549
        assert_eq!(parse_utc("2026-11-25T21:02:29Z"), Some(1_795_640_549.0));
        assert_eq!(parse_utc("1970-01-01T00:00:00.5Z"), Some(0.5));
        let (t, level, msg) = parse_tracing_line(
            "2026-11-25T21:02:29.011059Z  INFO scintigan::worker: stage starting",
        );
        assert!((t - 1_795_640_549.011059).abs() < 1e-3);
        assert_eq!(level, "info");
        assert_eq!(msg, "scintigan::worker: stage starting");
    }
}
