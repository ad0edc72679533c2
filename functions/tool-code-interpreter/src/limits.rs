//! The limits a script runs under, with their defaults and environment overrides.

use std::time::Duration;

/// Env var: the JavaScript heap limit in bytes.
pub const MEMORY_LIMIT_ENV: &str = "JS_MEMORY_LIMIT_BYTES";
/// Env var: the CPU-time limit in milliseconds.
pub const TIME_LIMIT_ENV: &str = "JS_TIME_LIMIT_MS";
/// Env var: the cap on printed output (and on the result and error texts) in bytes.
pub const OUTPUT_LIMIT_ENV: &str = "JS_OUTPUT_LIMIT_BYTES";
/// Env var: the JavaScript stack limit in bytes.
pub const STACK_LIMIT_ENV: &str = "JS_STACK_LIMIT_BYTES";

/// How long past its CPU-time limit a call may last on the wall clock before its sandbox
/// process is killed: room for starting the process and for being starved of CPU.
pub const KILL_GRACE: Duration = Duration::from_millis(1_000);

/// The limits of one run. The engine enforces each of them and ends the run with a readable
/// error; the time and memory limits are also enforced from outside the engine, on the sandbox
/// process (see [`crate::supervisor`]), so a script that the engine cannot stop is killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the JavaScript heap may hold.
    pub memory_bytes: usize,
    /// Most CPU time the script may use, checked by the engine's interrupt handler; the
    /// wall-clock bounds [`Limits::stop_after`] and [`Limits::kill_after`] derive from it.
    pub time: Duration,
    /// Most bytes of printed output kept; the result and error texts are capped the same way.
    pub output_bytes: usize,
    /// Most bytes of native stack the script may use (deep recursion is a `RangeError`).
    pub stack_bytes: usize,
}

impl Default for Limits {
    /// 32 MiB of heap, 2 s, 64 KiB of output, 512 KiB of stack.
    fn default() -> Self {
        Self {
            memory_bytes: 32 * 1024 * 1024,
            time: Duration::from_millis(2_000),
            output_bytes: 64 * 1024,
            stack_bytes: 512 * 1024,
        }
    }
}

impl Limits {
    /// Wall-clock time after which the engine stops a script that has not used up its CPU
    /// time (it was starved of CPU): halfway through the grace, so it still answers, with its
    /// output, before [`Limits::kill_after`].
    pub fn stop_after(&self) -> Duration {
        self.time.saturating_add(KILL_GRACE / 2)
    }

    /// Wall-clock time after which the executor kills the sandbox process and answers that
    /// the script exceeded its time limit.
    pub fn kill_after(&self) -> Duration {
        self.time.saturating_add(KILL_GRACE)
    }

    /// The defaults overridden by `JS_MEMORY_LIMIT_BYTES`, `JS_TIME_LIMIT_MS`,
    /// `JS_OUTPUT_LIMIT_BYTES` and `JS_STACK_LIMIT_BYTES` where set.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The defaults overridden by the values `lookup` returns for the env var names.
    /// A value that is not a positive integer is an error naming the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let defaults = Self::default();
        let read = |name: &str, default: u64| -> Result<u64, String> {
            match lookup(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(value) if value > 0 => Ok(value),
                    _ => Err(format!("{name} must be a positive integer, got '{text}'")),
                },
            }
        };
        let size = |name: &str, default: usize| -> Result<usize, String> {
            usize::try_from(read(name, default as u64)?)
                .map_err(|_| format!("{name} is too large for this platform"))
        };
        Ok(Self {
            memory_bytes: size(MEMORY_LIMIT_ENV, defaults.memory_bytes)?,
            time: Duration::from_millis(read(TIME_LIMIT_ENV, defaults.time.as_millis() as u64)?),
            output_bytes: size(OUTPUT_LIMIT_ENV, defaults.output_bytes)?,
            stack_bytes: size(STACK_LIMIT_ENV, defaults.stack_bytes)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_keep_the_defaults() {
        assert_eq!(Limits::from_lookup(|_| None), Ok(Limits::default()));
    }

    #[test]
    fn set_variables_override_the_defaults() {
        let limits = Limits::from_lookup(|name| match name {
            MEMORY_LIMIT_ENV => Some("1048576".into()),
            TIME_LIMIT_ENV => Some(" 500 ".into()),
            _ => None,
        });
        assert_eq!(
            limits,
            Ok(Limits {
                memory_bytes: 1_048_576,
                time: Duration::from_millis(500),
                ..Limits::default()
            })
        );
    }

    #[test]
    fn zero_or_garbage_values_are_errors_naming_the_variable() {
        let zero = Limits::from_lookup(|name| (name == OUTPUT_LIMIT_ENV).then(|| "0".into()));
        assert!(zero.is_err_and(|error| error.contains(OUTPUT_LIMIT_ENV)));
        let garbage = Limits::from_lookup(|name| (name == TIME_LIMIT_ENV).then(|| "2s".into()));
        assert!(garbage.is_err_and(|error| error.contains(TIME_LIMIT_ENV)));
    }
}
