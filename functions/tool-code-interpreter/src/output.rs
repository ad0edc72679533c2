//! What a script prints: a buffer with a byte cap that stops taking text, visibly, once full.

/// Appended where output (or a long result or error) was cut.
pub const TRUNCATION_MARKER: &str = "…[output truncated]";

/// The printed output of one run, at most `cap` bytes plus [`TRUNCATION_MARKER`].
#[derive(Debug)]
pub(crate) struct Output {
    text: String,
    cap: usize,
    truncated: bool,
}

impl Output {
    /// An empty buffer that keeps at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            text: String::new(),
            cap,
            truncated: false,
        }
    }

    /// True once the cap was reached: further text is dropped, so callers skip formatting it.
    pub(crate) fn is_full(&self) -> bool {
        self.truncated
    }

    /// Appends `line` and a newline, or as much of it as fits followed by the marker.
    pub(crate) fn push_line(&mut self, line: &str) {
        self.push(line);
        self.push("\n");
    }

    fn push(&mut self, text: &str) {
        if self.truncated {
            return;
        }
        let room = self.cap.saturating_sub(self.text.len());
        if text.len() <= room {
            self.text.push_str(text);
        } else {
            self.text.push_str(&text[..floor_char_boundary(text, room)]);
            self.text.push_str(TRUNCATION_MARKER);
            self.truncated = true;
        }
    }

    /// The text printed so far.
    pub(crate) fn into_text(self) -> String {
        self.text
    }
}

/// `text` cut to at most `cap` bytes (on a character boundary) with the marker appended when cut.
pub(crate) fn truncate(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        text.truncate(floor_char_boundary(&text, cap));
        text.push_str(TRUNCATION_MARKER);
    }
    text
}

/// The largest index `<= index` that is a character boundary of `text`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_within_the_cap_is_kept_whole() {
        let mut output = Output::new(16);
        output.push_line("hello");
        output.push_line("world");
        assert!(!output.is_full());
        assert_eq!(output.into_text(), "hello\nworld\n");
    }

    #[test]
    fn output_beyond_the_cap_is_cut_with_a_marker_and_then_dropped() {
        let mut output = Output::new(8);
        output.push_line("0123456789");
        output.push_line("more");
        assert!(output.is_full());
        assert_eq!(output.into_text(), format!("01234567{TRUNCATION_MARKER}"));
    }

    #[test]
    fn cuts_never_split_a_character() {
        let mut output = Output::new(3);
        output.push_line("aéé");
        assert_eq!(output.into_text(), format!("aé{TRUNCATION_MARKER}"));
        assert_eq!(truncate("éé".into(), 1), TRUNCATION_MARKER);
        assert_eq!(truncate("short".into(), 10), "short");
    }
}
