//! The executor's side of a run: one sandbox process per call ([`crate::child`]), fed the
//! script on stdin, read on stdout, killed by its pid when it overruns, always reaped.
//!
//! The engine stops most scripts itself (interrupt handler, heap limit), and the sandbox
//! process then answers normally. What the engine cannot stop, native code that never polls
//! the interrupt handler (`'a'.repeat(1<<21).indexOf('a'.repeat(1<<20) + 'b')`), is stopped
//! from outside: the executor sends `SIGKILL` once [`Limits::kill_after`] has passed on the
//! wall clock, and the kernel kills it once it has used a second more than its CPU-time limit
//! (rounded up to whole seconds), even if the executor is gone. Either way no CPU is spent on a call after it has
//! been answered, and nothing is left behind: the process is waited for (no zombie), and
//! dropping a run before it ends kills its process too.

use std::{path::Path, process::Stdio};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
};

use crate::{
    child::{Request, CHILD_ARG},
    limits::Limits,
    output::TRUNCATION_MARKER,
    sandbox::{Execution, Failure},
};

/// Runs `code` under `limits` in a new sandbox process started from `program` (the executor's
/// own binary, which serves as one when given [`CHILD_ARG`]). Never fails: a process that
/// cannot be started, is killed or answers nonsense is an [`Execution`] with a [`Failure`].
pub async fn run(program: &Path, code: &str, limits: &Limits) -> Execution {
    let request = match serde_json::to_vec(&Request::new(code, limits)) {
        Ok(request) => request,
        Err(error) => return failed(Failure::Engine(format!("unsendable script: {error}"))),
    };
    let mut child = match spawn(program) {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(%error, program = %program.display(), "cannot start the sandbox process");
            return failed(Failure::Engine(format!(
                "could not start the sandbox process: {error}"
            )));
        }
    };
    let exchanged =
        tokio::time::timeout(limits.kill_after(), exchange(&mut child, &request, limits)).await;
    match exchanged {
        Ok(Ok(execution)) => execution,
        Ok(Err(failure)) => {
            kill(&mut child).await;
            failed(failure)
        }
        Err(_elapsed) => {
            let pid = child.id();
            kill(&mut child).await;
            tracing::warn!(
                pid,
                "a script ran past its time limit in native code: its process was killed"
            );
            failed(Failure::TimeLimit(limits.time))
        }
    }
}

/// Starts the sandbox process: pipes for stdin and stdout, the executor's stderr (so a panic
/// reaches its log), and no environment but `TZ` (no credentials in the sandbox's reach).
fn spawn(program: &Path) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    command
        .arg(CHILD_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(zone) = std::env::var_os("TZ") {
        command.env("TZ", zone);
    }
    command.spawn()
}

/// Sends the request, reads at most [`answer_cap`] bytes of answer, waits for the process to
/// exit and reads its answer.
async fn exchange(
    child: &mut Child,
    request: &[u8],
    limits: &Limits,
) -> Result<Execution, Failure> {
    let cap = answer_cap(limits);
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Failure::Engine(
            "the sandbox process has no pipes".to_owned(),
        ));
    };
    let send = async move {
        let sent = stdin.write_all(request).await;
        // Dropping stdin closes it: the end of the request.
        drop(stdin);
        sent
    };
    let receive = async move {
        let mut answer = Vec::new();
        stdout
            .take(cap.saturating_add(1))
            .read_to_end(&mut answer)
            .await
            .map(|_| answer)
    };
    let (sent, received) = tokio::join!(send, receive);
    let answer = received
        .map_err(|error| Failure::Engine(format!("cannot read the sandbox's answer: {error}")))?;
    if answer.len() as u64 > cap {
        return Err(Failure::Engine(
            "the sandbox's answer was too long".to_owned(),
        ));
    }
    let status = child
        .wait()
        .await
        .map_err(|error| Failure::Engine(format!("cannot wait for the sandbox: {error}")))?;
    if status.success() {
        return serde_json::from_slice(&answer).map_err(|error| {
            Failure::Engine(format!("the sandbox's answer is unreadable: {error}"))
        });
    }
    if killed_by_cpu_limit(&status) {
        return Ok(failed(Failure::TimeLimit(limits.time)));
    }
    let detail = match sent {
        Err(error) => format!("{status}; the script could not be sent: {error}"),
        Ok(()) => status.to_string(),
    };
    Err(Failure::Engine(format!(
        "the sandbox process ended without an answer ({detail})"
    )))
}

/// Kills the process by its pid (if it is still running) and waits for it, so it neither
/// runs nor lingers as a zombie.
async fn kill(child: &mut Child) {
    if let Err(error) = child.start_kill() {
        // Already exited: nothing to kill, only to reap.
        tracing::debug!(%error, "the sandbox process could not be signalled");
    }
    if let Err(error) = child.wait().await {
        tracing::error!(%error, "cannot reap the sandbox process");
    }
}

/// Whether the kernel killed the process for going over its CPU-time limit.
fn killed_by_cpu_limit(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGXCPU)
}

/// The most bytes a well-behaved sandbox process answers: output, result and error are each
/// capped at the output limit, and JSON escaping at most sextuples a text.
fn answer_cap(limits: &Limits) -> u64 {
    let text = limits.output_bytes.saturating_add(TRUNCATION_MARKER.len()) as u64;
    text.saturating_mul(3 * 6).saturating_add(4096)
}

fn failed(failure: Failure) -> Execution {
    Execution {
        output: String::new(),
        outcome: Err(failure),
    }
}
