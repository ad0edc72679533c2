//! Numbers as people read them: tokens, dollars, durations, times.

use chrono::{DateTime, Utc};

use crate::wire::{Cost, Usage};

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars with the digits that matter: `$0.0123`, `$0.000456`, `$1.2345`.
pub fn dollars(usd: f64) -> String {
    if usd != 0.0 && usd.abs() < 0.01 {
        format!("${usd:.6}")
    } else {
        format!("${usd:.4}")
    }
}

/// A cost, or `cost unknown` when the price of a model is not known.
pub fn cost(cost: Option<Cost>) -> String {
    cost.map_or_else(|| "cost unknown".to_owned(), |c| dollars(c.total_usd))
}

/// `3 ms`, `1.52 s`, `2 min 5 s`.
pub fn millis(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.2} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `1,200 in / 40 out`.
pub fn tokens(usage: Usage) -> String {
    format!(
        "{} in / {} out",
        thousands(usage.input_tokens),
        thousands(usage.output_tokens)
    )
}

/// `(cache 100 read / 20 write)`.
pub fn cache(usage: Usage) -> String {
    format!(
        "(cache {} read / {} write)",
        thousands(usage.cache_read_tokens),
        thousands(usage.cache_write_tokens)
    )
}

/// An RFC 3339 time as `2026-01-31 14:05 UTC`; anything else as it is.
pub fn time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        },
    )
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `1 step`, `2 steps`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(dollars(0.0), "$0.0000");
        assert_eq!(dollars(0.000456), "$0.000456");
        assert_eq!(dollars(1.23456), "$1.2346");
        assert_eq!(cost(None), "cost unknown");
        assert_eq!(millis(3), "3 ms");
        assert_eq!(millis(1520), "1.52 s");
        assert_eq!(millis(125_000), "2 min 5 s");
        assert_eq!(time("2026-01-31T14:05:09.123Z"), "2026-01-31 14:05 UTC");
        assert_eq!(time("yesterday"), "yesterday");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(count(1, "step", "steps"), "1 step");
        assert_eq!(count(2, "step", "steps"), "2 steps");
    }
}
