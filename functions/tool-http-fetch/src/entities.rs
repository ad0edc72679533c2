//! Decoding HTML character references: numeric ones and the named ones that matter for text.

use std::borrow::Cow;

/// Named references decoded; anything else is kept as written.
#[rustfmt::skip]
const NAMED: &[(&str, &str)] = &[
    ("amp", "&"), ("lt", "<"), ("gt", ">"), ("quot", "\""), ("apos", "'"),
    ("nbsp", "\u{a0}"), ("ensp", " "), ("emsp", " "), ("thinsp", " "), ("shy", ""),
    ("zwnj", ""), ("zwj", ""), ("lrm", ""), ("rlm", ""),
    ("copy", "©"), ("reg", "®"), ("trade", "™"), ("hellip", "…"), ("mdash", "—"),
    ("ndash", "–"), ("minus", "−"), ("lsquo", "‘"), ("rsquo", "’"), ("sbquo", "‚"),
    ("ldquo", "“"), ("rdquo", "”"), ("bdquo", "„"), ("laquo", "«"), ("raquo", "»"),
    ("lsaquo", "‹"), ("rsaquo", "›"), ("bull", "•"), ("middot", "·"), ("deg", "°"),
    ("euro", "€"), ("pound", "£"), ("yen", "¥"), ("cent", "¢"), ("sect", "§"),
    ("para", "¶"), ("times", "×"), ("divide", "÷"), ("plusmn", "±"), ("micro", "µ"),
    ("frac12", "½"), ("frac14", "¼"), ("frac34", "¾"), ("sup1", "¹"), ("sup2", "²"),
    ("sup3", "³"), ("iexcl", "¡"), ("iquest", "¿"), ("dagger", "†"), ("Dagger", "‡"),
    ("larr", "←"), ("rarr", "→"), ("uarr", "↑"), ("darr", "↓"), ("harr", "↔"),
    ("le", "≤"), ("ge", "≥"), ("ne", "≠"), ("asymp", "≈"), ("infin", "∞"),
    ("check", "✓"), ("star", "☆"), ("hearts", "♥"), ("alpha", "α"), ("beta", "β"),
    ("gamma", "γ"), ("delta", "δ"), ("pi", "π"), ("sigma", "σ"), ("mu", "μ"),
    ("lambda", "λ"), ("Omega", "Ω"), ("omega", "ω"), ("auml", "ä"), ("ouml", "ö"),
    ("uuml", "ü"), ("Auml", "Ä"), ("Ouml", "Ö"), ("Uuml", "Ü"), ("szlig", "ß"),
    ("eacute", "é"), ("egrave", "è"), ("ecirc", "ê"), ("aacute", "á"), ("agrave", "à"),
    ("acirc", "â"), ("iacute", "í"), ("oacute", "ó"), ("uacute", "ú"), ("ntilde", "ñ"),
    ("ccedil", "ç"), ("Eacute", "É"), ("aring", "å"), ("Aring", "Å"), ("oslash", "ø"),
    ("Oslash", "Ø"), ("aelig", "æ"), ("AElig", "Æ"),
];

/// Names browsers decode even without the closing `;`.
const LEGACY: &[&str] = &["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"];

/// `text` with its character references decoded.
pub fn decode(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match reference(&rest[1..]) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &rest[1 + used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The reference at the start of `after` (the text after `&`): its text and bytes used.
fn reference(after: &str) -> Option<(Cow<'static, str>, usize)> {
    if let Some(number) = after.strip_prefix('#') {
        let (digits, radix, skip) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (number, 10, 1),
        };
        let len = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        if len == 0 {
            return None;
        }
        let value = digits[..len]
            .chars()
            .try_fold(0u32, |acc, c| {
                acc.checked_mul(radix)?.checked_add(c.to_digit(radix)?)
            })
            .unwrap_or(u32::MAX);
        let c = match value {
            0 => '\u{fffd}',
            _ => char::from_u32(value).unwrap_or('\u{fffd}'),
        };
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some((Cow::Owned(c.to_string()), skip + len + semicolon));
    }
    let len = after
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(after.len());
    let name = &after[..len];
    let lookup = |name: &str| NAMED.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    if after[len..].starts_with(';') {
        lookup(name).map(|value| (Cow::Borrowed(value), len + 1))
    } else if LEGACY.contains(&name) {
        lookup(name).map(|value| (Cow::Borrowed(value), len))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn named_and_numeric_references_are_decoded() {
        assert_eq!(
            decode("Fish &amp; Chips &mdash; &quot;hot&quot;"),
            "Fish & Chips — \"hot\""
        );
        assert_eq!(decode("&#65;&#x42;&#X43;&#100"), "ABCd");
        assert_eq!(decode("a&nbsp;b"), "a\u{a0}b");
        assert_eq!(decode("AT&T R&D &copy 2024"), "AT&T R&D © 2024");
    }

    #[test]
    fn unknown_or_invalid_references_are_kept_or_replaced_safely() {
        assert_eq!(
            decode("&unknown; & &; &#; &#xZZ;"),
            "&unknown; & &; &#; &#xZZ;"
        );
        assert_eq!(
            decode("&#0;&#xD800;&#99999999999;"),
            "\u{fffd}\u{fffd}\u{fffd}"
        );
        assert_eq!(decode("no references"), "no references");
    }
}
