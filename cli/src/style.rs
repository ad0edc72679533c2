//! Colors: only when stdout is a terminal and `NO_COLOR` is unset (or empty).

use std::io::IsTerminal;

use anstyle::{AnsiColor, Effects, Style};

/// What a piece of output is, for its color.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Secondary text: summaries, ids, times.
    Dim,
    /// A tool call starting.
    Tool,
    /// Something that went well.
    Good,
    /// Something that failed.
    Bad,
    /// A model step.
    Model,
    /// A heading or a name.
    Strong,
}

/// Paints text, or leaves it plain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Painter {
    enabled: bool,
}

impl Painter {
    /// Colors for stdout as it is now.
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            enabled: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// No colors.
    #[cfg(test)]
    pub fn plain() -> Self {
        Self { enabled: false }
    }

    /// `text` in the color of `role`.
    pub fn paint(&self, role: Role, text: &str) -> String {
        if !self.enabled {
            return text.to_owned();
        }
        let style = match role {
            Role::Dim => Style::new().effects(Effects::DIMMED),
            Role::Tool => AnsiColor::Cyan.on_default(),
            Role::Good => AnsiColor::Green.on_default(),
            Role::Bad => AnsiColor::Red.on_default(),
            Role::Model => AnsiColor::Blue.on_default(),
            Role::Strong => Style::new().effects(Effects::BOLD),
        };
        format!("{style}{text}{style:#}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_leaves_text_alone_and_enabled_wraps_it_in_escapes() {
        assert_eq!(Painter::plain().paint(Role::Bad, "x"), "x");
        let painted = Painter { enabled: true }.paint(Role::Bad, "x");
        assert!(
            painted.starts_with("\u{1b}[") && painted.ends_with("\u{1b}[0m"),
            "{painted:?}"
        );
    }
}
