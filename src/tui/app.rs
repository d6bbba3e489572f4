//! The dashboard's UI state (focus, selection, chart settings, dialogs)
//! and what each key does to it.

use super::keys::{Action, Bindings};
use super::state::{State, XAxis};
use super::system::SystemInfo;
use crate::daemon::protocol::{MoveTo, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Runs,
    Charts,
    Confusion,
    Samples,
    Logs,
    System,
    Config,
}

impl Pane {
    pub const ALL: [Pane; 7] = [
        Pane::Runs,
        Pane::Charts,
        Pane::Confusion,
        Pane::Samples,
        Pane::Logs,
        Pane::System,
        Pane::Config,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Pane::Runs => "Runs",
            Pane::Charts => "Charts",
            Pane::Confusion => "Confusion matrix",
            Pane::Samples => "Generated scans",
            Pane::Logs => "Logs",
            Pane::System => "System",
            Pane::Config => "Config",
        }
    }
    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// Log lines shown: at least this level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFilter {
    #[default]
    All,
    Info,
    Warn,
    Error,
}

impl LogFilter {
    pub fn next(self) -> Self {
        match self {
            LogFilter::All => LogFilter::Info,
            LogFilter::Info => LogFilter::Warn,
            LogFilter::Warn => LogFilter::Error,
            LogFilter::Error => LogFilter::All,
        }
    }
    pub fn admits(self, level: &str) -> bool {
        let rank = |l: &str| match l.to_ascii_lowercase().as_str() {
            "error" => 3,
            "warn" | "warning" => 2,
            "info" => 1,
            _ => 0,
        };
        let min = match self {
            LogFilter::All => 0,
            LogFilter::Info => 1,
            LogFilter::Warn => 2,
            LogFilter::Error => 3,
        };
        rank(level) >= min
    }
    pub fn label(self) -> &'static str {
        match self {
            LogFilter::All => "all",
            LogFilter::Info => "info+",
            LogFilter::Warn => "warn+",
            LogFilter::Error => "error",
        }
    }
}

/// What a key asks the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send(Request),
    Edit(std::path::PathBuf),
    Export(String),
    Quit,
}

#[derive(Debug)]
pub struct App {
    pub state: State,
    pub bindings: Bindings,
    pub focus: Pane,
    /// The pane shown in the shared bottom-right slot (System or Config).
    pub side: Pane,
    pub zoomed: bool,
    pub help: bool,
    /// A destructive request waiting for y/n.
    pub confirm: Option<(String, Request)>,
    /// Index into the snapshot's runs.
    pub selected: usize,
    /// Runs overlaid on the charts besides the selected one.
    pub marked: Vec<String>,
    pub smoothing: Option<f64>,
    pub smoothing_weight: f64,
    pub log_y: bool,
    pub x_axis: XAxis,
    pub log_filter: LogFilter,
    /// Evaluation shown in the confusion pane, counted back from the newest.
    pub eval_back: usize,
    pub log_scroll: usize,
    pub config_scroll: usize,
    /// One-line message in the footer (result of the last command).
    pub message: Option<String>,
    pub system: SystemInfo,
    pub color: bool,
    /// Caches of what panes read from disk.
    pub samples: super::panes::samples::SampleCache,
    pub logs: super::panes::logs::LogCache,
    pub config_text: Option<(std::path::PathBuf, String)>,
}

impl App {
    pub fn new(bindings: Bindings, color: bool) -> Self {
        Self {
            state: State::default(),
            bindings,
            focus: Pane::Runs,
            side: Pane::System,
            zoomed: false,
            help: false,
            confirm: None,
            selected: 0,
            marked: Vec::new(),
            smoothing: None,
            smoothing_weight: 0.6,
            log_y: false,
            x_axis: XAxis::Step,
            log_filter: LogFilter::All,
            eval_back: 0,
            log_scroll: 0,
            config_scroll: 0,
            message: None,
            system: SystemInfo::default(),
            color,
            samples: Default::default(),
            logs: Default::default(),
            config_text: None,
        }
    }

    pub fn selected_id(&self) -> Option<String> {
        self.state
            .snapshot
            .runs
            .get(self.selected)
            .map(|r| r.id.clone())
    }

    /// The runs whose events the dashboard needs: the selected one and the
    /// marked ones.
    pub fn watched(&self) -> Vec<String> {
        let mut v: Vec<String> = self.selected_id().into_iter().collect();
        for m in &self.marked {
            if !v.contains(m) {
                v.push(m.clone());
            }
        }
        v
    }

    fn focus_to(&mut self, pane: Pane) {
        self.focus = pane;
        if matches!(pane, Pane::System | Pane::Config) {
            self.side = pane;
        }
    }

    /// Apply one key; what the outside world must do, if anything.
    pub fn on_key(&mut self, key: &crossterm::event::KeyEvent) -> Option<Command> {
        use crossterm::event::KeyCode;
        if let Some((_, request)) = &self.confirm {
            let request = request.clone();
            self.confirm = None;
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => Some(Command::Send(request)),
                _ => {
                    self.message = Some("not cancelled".into());
                    None
                }
            };
        }
        if self.help {
            self.help = false;
            return None;
        }
        if let KeyCode::Char(c @ '1'..='7') = key.code {
            let i = c as usize - '1' as usize;
            self.focus_to(Pane::ALL[i]);
            return None;
        }
        if key.code == KeyCode::Esc && self.zoomed {
            self.zoomed = false;
            return None;
        }
        let action = super::keys::key_of(key).and_then(|k| self.bindings.action(&k))?;
        self.on_action(action)
    }

    pub fn on_action(&mut self, action: Action) -> Option<Command> {
        let run = self.selected_id();
        let info = run.as_deref().and_then(|id| self.state.info(id)).cloned();
        let count = self.state.snapshot.runs.len();
        match action {
            Action::Quit => return Some(Command::Quit),
            Action::Help => self.help = true,
            Action::FocusNext => self.focus_to(Pane::ALL[(self.focus.index() + 1) % 7]),
            Action::FocusPrev => self.focus_to(Pane::ALL[(self.focus.index() + 6) % 7]),
            Action::Zoom => self.zoomed = !self.zoomed,
            Action::Up | Action::Down => {
                let down = action == Action::Down;
                match self.focus {
                    Pane::Logs => {
                        self.log_scroll = if down {
                            self.log_scroll.saturating_sub(1)
                        } else {
                            self.log_scroll + 1
                        }
                    }
                    Pane::Config => {
                        self.config_scroll = if down {
                            self.config_scroll + 1
                        } else {
                            self.config_scroll.saturating_sub(1)
                        }
                    }
                    _ if count > 0 => {
                        self.selected = if down {
                            (self.selected + 1).min(count - 1)
                        } else {
                            self.selected.saturating_sub(1)
                        };
                        self.eval_back = 0;
                        self.log_scroll = 0;
                        self.config_scroll = 0;
                    }
                    _ => {}
                }
            }
            Action::Left => self.eval_back += 1,
            Action::Right => self.eval_back = self.eval_back.saturating_sub(1),
            Action::Mark => {
                if let Some(id) = run {
                    if let Some(i) = self.marked.iter().position(|m| *m == id) {
                        self.marked.remove(i);
                    } else {
                        self.marked.push(id);
                    }
                }
            }
            Action::Pause => {
                let info = info?;
                let request = if info.state == "paused" {
                    Request::Resume { run: info.id }
                } else {
                    Request::Pause {
                        run: info.id,
                        release: false,
                    }
                };
                return Some(Command::Send(request));
            }
            Action::Cancel => {
                let info = info?;
                self.confirm = Some((
                    format!("Cancel {}? It checkpoints and stops. y/n", info.id),
                    Request::Cancel {
                        run: info.id,
                        now: false,
                    },
                ));
            }
            Action::Retry => {
                let info = info?;
                let request = if info.state == "paused" {
                    Request::Resume { run: info.id }
                } else {
                    Request::Retry { run: info.id }
                };
                return Some(Command::Send(request));
            }
            Action::MoveUp | Action::MoveDown => {
                let info = info?;
                let to = if action == Action::MoveUp {
                    MoveTo::Up
                } else {
                    MoveTo::Down
                };
                return Some(Command::Send(Request::Move { run: info.id, to }));
            }
            Action::Edit => {
                let info = info?;
                let Some(file) = info.config_file else {
                    self.message = Some(format!(
                        "{} was not queued from configs/; nothing to edit",
                        info.id
                    ));
                    return None;
                };
                let dir = std::path::Path::new(&self.state.snapshot.configs_dir);
                return Some(Command::Edit(dir.join(file)));
            }
            Action::Smooth => {
                self.smoothing = match self.smoothing {
                    Some(_) => None,
                    None => Some(self.smoothing_weight),
                };
            }
            Action::SmoothMore | Action::SmoothLess => {
                let step = if action == Action::SmoothMore {
                    0.1
                } else {
                    -0.1
                };
                self.smoothing_weight = (self.smoothing_weight + step).clamp(0.0, 0.99);
                self.smoothing_weight = (self.smoothing_weight * 100.0).round() / 100.0;
                self.smoothing = Some(self.smoothing_weight);
            }
            Action::LogY => self.log_y = !self.log_y,
            Action::XAxis => self.x_axis = self.x_axis.next(),
            Action::LogLevel => self.log_filter = self.log_filter.next(),
            Action::Export => return run.map(Command::Export),
        }
        None
    }
}
