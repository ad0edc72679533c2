//! The sandbox process: the executor's own binary started with [`CHILD_ARG`], running one
//! script and exiting.
//!
//! It reads a [`Request`] (the script and its limits) as JSON on stdin, puts the kernel's
//! limits on itself ([`crate::os`]: CPU time, address space, no core dumps), runs the script in
//! the engine ([`crate::sandbox::execute`]) and writes the [`Execution`] as JSON on stdout.
//! The exit status says how far it got: 0 with an answer, 2 for an unreadable request, 3 when
//! a kernel limit cannot be set (the script is then not run), 4 when the answer could not be
//! written.

use std::{
    io::{Read, Write},
    process::ExitCode,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{limits::Limits, os, sandbox};

/// The first argument that makes the executor's binary run as a sandbox process.
pub const CHILD_ARG: &str = "--run-javascript-sandbox";

/// Address space the sandbox process may use beyond the JavaScript heap limit: the binary,
/// the stack, the allocator's slack and the texts being rendered. Only a backstop: the
/// engine's heap limit is what normally stops a memory bomb, with a readable error.
const ADDRESS_SPACE_HEADROOM: u64 = 512 * 1024 * 1024;

/// How far past its time limit the kernel lets the sandbox process run on the CPU, so the
/// engine's own stop at the limit, with a readable error and the output so far, comes first.
const CPU_BACKSTOP_MARGIN: Duration = Duration::from_secs(1);

/// What the executor sends the sandbox process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) code: String,
    pub(crate) memory_bytes: usize,
    pub(crate) time_ms: u64,
    pub(crate) output_bytes: usize,
    pub(crate) stack_bytes: usize,
}

impl Request {
    pub(crate) fn new(code: &str, limits: &Limits) -> Self {
        Self {
            code: code.to_owned(),
            memory_bytes: limits.memory_bytes,
            time_ms: u64::try_from(limits.time.as_millis()).unwrap_or(u64::MAX),
            output_bytes: limits.output_bytes,
            stack_bytes: limits.stack_bytes,
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes,
            time: Duration::from_millis(self.time_ms),
            output_bytes: self.output_bytes,
            stack_bytes: self.stack_bytes,
        }
    }
}

/// True when this process was started as a sandbox process (its first argument is
/// [`CHILD_ARG`]); the executor's `main` then calls [`main`] and nothing else.
pub fn is_child() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == CHILD_ARG)
}

/// The sandbox process's whole life: request in, limits set, script run, answer out.
pub fn main() -> ExitCode {
    let mut input = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("run_javascript sandbox: cannot read the request: {error}");
        return ExitCode::from(2);
    }
    let request: Request = match serde_json::from_slice(&input) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("run_javascript sandbox: malformed request: {error}");
            return ExitCode::from(2);
        }
    };
    drop(input);
    let limits = request.limits();
    let address_space = u64::try_from(limits.memory_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(ADDRESS_SPACE_HEADROOM);
    let limited = os::limit_cpu_time(limits.time.saturating_add(CPU_BACKSTOP_MARGIN))
        .and_then(|()| os::limit_address_space(address_space))
        .and_then(|()| os::no_core_dumps());
    if let Err(error) = limited {
        eprintln!("run_javascript sandbox: cannot set a resource limit: {error}");
        return ExitCode::from(3);
    }
    let execution = sandbox::execute(&request.code, &limits);
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, &execution)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // The executor stopped listening (it gave up on this run): nothing left to do.
        Err(_) => ExitCode::from(4),
    }
}
