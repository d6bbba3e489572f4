//! GPU utilisation, memory and temperature (or "no GPU"), CPU, RAM and free
//! disk under runs/, all of this machine (a run on a Slurm node says so).

use crate::tui::app::{App, Pane};
use crate::tui::draw::{paint, pane_block};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 30) as f64)
}

/// "▮▮▮▯▯▯▯▯▯▯" for a share in 0..1.
fn meter(share: f64, width: usize) -> String {
    let n = ((share.clamp(0.0, 1.0) * width as f64).round()) as usize;
    format!("{}{}", "▮".repeat(n), "▯".repeat(width - n))
}

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let block = pane_block(app, Pane::System, String::new());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let s = &app.system;
    let label = |t: &str| {
        Span::styled(
            format!("{t:<5}"),
            paint(app, Style::default().fg(Color::Cyan)),
        )
    };
    let mut lines = Vec::new();
    if s.gpus.is_empty() {
        lines.push(Line::from(vec![
            label("GPU"),
            Span::raw(s.gpu_note.clone().unwrap_or_else(|| "no GPU".into())),
        ]));
    }
    for g in &s.gpus {
        lines.push(Line::from(vec![
            label(&format!("GPU{}", g.index)),
            Span::raw(format!(
                "{} {:>3.0}% {:.0}°C",
                meter(g.utilization / 100.0, 10),
                g.utilization,
                g.temperature_c
            )),
        ]));
        lines.push(Line::from(vec![
            label(""),
            Span::raw(format!(
                "mem {:.1}/{:.1} GiB · {}",
                g.memory_used_mib / 1024.0,
                g.memory_total_mib / 1024.0,
                g.name
            )),
        ]));
    }
    let cpu = s.cpu_percent.unwrap_or(0.0);
    lines.push(Line::from(vec![
        label("CPU"),
        Span::raw(format!(
            "{} {:>3.0}% of {} cores",
            meter(cpu / 100.0, 10),
            cpu,
            s.cores
        )),
    ]));
    let mem_share = s.mem_used_bytes as f64 / s.mem_total_bytes.max(1) as f64;
    lines.push(Line::from(vec![
        label("RAM"),
        Span::raw(format!(
            "{} {}/{} GiB",
            meter(mem_share, 10),
            gib(s.mem_used_bytes),
            gib(s.mem_total_bytes)
        )),
    ]));
    lines.push(Line::from(vec![
        label("disk"),
        Span::raw(format!(
            "{} GiB free of {} under runs/",
            gib(s.disk_free_bytes),
            gib(s.disk_total_bytes)
        )),
    ]));
    // A run on a Slurm node: these figures are not its node's.
    if let Some(r) = app.state.snapshot.runs.get(app.selected)
        && r.executor.as_deref() == Some("slurm")
    {
        let node = r.node.as_deref().unwrap_or("a Slurm node");
        lines.push(Line::from(Span::styled(
            format!(
                "these figures are this machine's only; {} runs on {node}",
                r.name
            ),
            paint(app, Style::default().fg(Color::Yellow)),
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
