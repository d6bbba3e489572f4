//! The selected run's resolved config (its frozen `config.toml`).

use crate::tui::app::{App, Pane};
use crate::tui::draw::pane_block;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;
use std::path::PathBuf;

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let id = app.selected_id();
    let block = pane_block(app, Pane::Config, id.clone().unwrap_or_default());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(id) = id else { return };
    let path = PathBuf::from(&app.state.snapshot.runs_dir)
        .join(&id)
        .join("config.toml");
    if app.config_text.as_ref().map(|(p, _)| p) != Some(&path) {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| format!("{}: {e}", path.display()));
        app.config_text = Some((path, text));
    }
    let text = app.config_text.as_ref().map_or("", |(_, t)| t.as_str());
    let lines: Vec<&str> = text.lines().collect();
    app.config_scroll = app.config_scroll.min(lines.len().saturating_sub(1));
    let shown = lines[app.config_scroll.min(lines.len())..].join("\n");
    frame.render_widget(Paragraph::new(shown), inner);
}
