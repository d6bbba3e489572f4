//! Config errors that point at `file:line:col`.

use std::ops::Range;

/// One problem in one config file, already located.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A problem at a place in the file.
    #[error("{file}:{line}:{col}: {message}")]
    At {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A problem with the file as a whole (unreadable, not UTF-8).
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

/// The text of a config file and the name to show for it, used to turn byte
/// spans into 1-based line and column numbers.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at byte span `span` (its start is shown).
    pub fn at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, col) = self.line_col(span.start);
        ConfigError::At {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    /// 1-based line and column (in characters) of byte offset `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// Turn a TOML parse error into a located error; its message keeps only
    /// the first line (toml adds a source excerpt after it).
    pub fn locate_toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let message = err
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .trim();
        // Say it in the user's words, not Rust's.
        let message = message
            .replace("expected i64", "expected an integer")
            .replace("expected f64", "expected a number")
            .replace("expected a sequence", "expected an array");
        match err.span() {
            Some(span) => self.at(span, message),
            None => ConfigError::File {
                file: self.file.to_string(),
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let src = Source {
            file: "x.toml",
            text: "a = 1\nbé = 2\n",
        };
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(src.line_col(9), (2, 3));
        assert_eq!(
            src.at(6..7, "bad").to_string(),
            "x.toml:2:1: bad".to_string()
        );
    }
}
