//! Turning JavaScript values into text: for `console.log`, for the result and for errors.
//!
//! Rendering may run script code (`toJSON`, `toString`, getters); it never fails: a value that
//! cannot be rendered becomes a placeholder, and any exception it raises is cleared.

use rquickjs::{Coerced, Ctx, Value};

/// Where an error's stack names the script, `script.js:<line>:<column>`.
pub(crate) const SCRIPT_NAME: &str = "script.js";

/// How a value is printed by `console.log`: strings as they are, objects and arrays as JSON,
/// everything else as `String(value)` would.
pub(crate) fn printed<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    match value.as_string() {
        Some(text) => text.to_string().unwrap_or_else(|_| unprintable(ctx)),
        None => rendered(ctx, value),
    }
}

/// The result of a script: `None` for `undefined`, strings and objects as JSON, everything
/// else as `String(value)` would (so `NaN` stays `NaN`, where JSON would say `null`).
pub(crate) fn result<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Option<String> {
    if value.is_undefined() {
        return None;
    }
    Some(match value.as_string() {
        Some(text) => match text.to_string() {
            Ok(text) => serde_json::Value::String(text).to_string(),
            Err(_) => unprintable(ctx),
        },
        None => rendered(ctx, value),
    })
}

/// A thrown value as a one-line message: `Name: message at line N` for errors,
/// `uncaught exception: <value>` for anything else thrown.
pub(crate) fn thrown<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    let Some(error) = value.as_exception() else {
        return format!("uncaught exception: {}", printed(ctx, value));
    };
    let name = error
        .get::<_, Option<Coerced<String>>>("name")
        .ok()
        .flatten()
        .map_or_else(|| "Error".to_owned(), |name| name.0);
    let message = error.message().unwrap_or_default();
    let line = error.stack().as_deref().and_then(script_line);
    ctx.catch();
    let mut text = if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    };
    if let Some(line) = line {
        text.push_str(&format!(" at line {line}"));
    }
    text
}

/// The line of the first frame in `stack` that is in the script.
pub(crate) fn script_line(stack: &str) -> Option<u32> {
    let prefix = format!("{SCRIPT_NAME}:");
    stack.match_indices(&prefix).find_map(|(at, _)| {
        let rest = &stack[at + prefix.len()..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..digits].parse().ok()
    })
}

fn rendered<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    let plain_object = value.is_object() && !value.is_function() && !value.is_error();
    if plain_object {
        match ctx.json_stringify(value.clone()) {
            Ok(Some(json)) => {
                if let Ok(json) = json.to_string() {
                    return json;
                }
            }
            Ok(None) => {}
            Err(_) => {
                ctx.catch();
            }
        }
    }
    if let Some(symbol) = value.as_symbol() {
        let description = symbol
            .description()
            .and_then(|description| description.get::<Option<Coerced<String>>>());
        return match description {
            Ok(description) => format!("Symbol({})", description.map(|d| d.0).unwrap_or_default()),
            Err(_) => unprintable(ctx),
        };
    }
    let suffix = if value.is_big_int() { "n" } else { "" };
    match value.get::<Coerced<String>>() {
        Ok(text) => format!("{}{suffix}", text.0),
        Err(_) => unprintable(ctx),
    }
}

fn unprintable(ctx: &Ctx<'_>) -> String {
    ctx.catch();
    "[unprintable value]".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_comes_from_the_first_frame_in_the_script() {
        let stack = "    at f (native)\n    at g (script.js:7:3)\n    at <eval> (script.js:9:1)\n";
        assert_eq!(script_line(stack), Some(7));
        assert_eq!(script_line("    at script.js:2:14\n"), Some(2));
        assert_eq!(script_line("    at <anonymous>\n"), None);
    }
}
