//! Text shown to a user as one line.

/// `message` with control characters (a newline, a NUL from a file's
/// strings) escaped, so that it stays on one line.
pub fn one_line(message: String) -> String {
    if !message.chars().any(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
