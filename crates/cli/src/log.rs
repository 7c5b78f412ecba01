//! The progress lines `flux` writes to standard error (`►` action, `◎` waiting, `✔` success, `✗`
//! failure), coloured only on a terminal without `NO_COLOR`, and a one-line progress indicator that is
//! drawn only on a terminal.

use std::io::{IsTerminal, Write};

fn styled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn line(symbol: &str, colour: &str, text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = if styled() {
        writeln!(err, "\x1b[{colour}m{symbol}\x1b[0m {text}")
    } else {
        writeln!(err, "{symbol} {text}")
    };
}

/// `► text`: something being done.
pub fn action(text: &str) {
    line("►", "36", text);
}

/// `✚ text`: something generated.
pub fn line_generate(text: &str) {
    line("✚", "36", text);
}

/// `◎ text`: waiting on something.
pub fn waiting(text: &str) {
    line("◎", "33", text);
}

/// `✔ text`: done.
pub fn success(text: &str) {
    line("✔", "32", text);
}

/// `✗ text`: failed.
pub fn failure(text: &str) {
    line("✗", "31", text);
}

/// A line redrawn in place while waiting (a terminal only; elsewhere nothing).
pub struct Progress {
    on: bool,
    drawn: bool,
}

impl Progress {
    /// A new indicator.
    pub fn new() -> Self {
        Self {
            on: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Redraws it with `text`.
    pub fn show(&mut self, text: &str) {
        if self.on {
            let width = 100;
            let text: String = text.chars().take(width).collect();
            let _ = write!(std::io::stderr(), "\r\x1b[2K  {text}");
            self.drawn = true;
        }
    }

    /// Clears it.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
