//! Running the built `lambda-agent` binary as a user would: arguments, stdin piped, and what
//! it printed.

#![allow(dead_code)] // each test file uses its own part

pub mod fake_api;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Run {
    /// True when it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// A fresh empty directory under the system's temporary one (no `.dev/stack.json` above it
/// unless a test writes one), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "lambda-agent-cli-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `lambda-agent args...` in `cwd` with `stdin` piped in, the CLI's own environment
/// variables cleared and then `env` set.
pub fn lambda_agent(args: &[&str], stdin: &str, cwd: &Path, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lambda-agent"));
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in [
        "LAMBDA_AGENT_URL",
        "LAMBDA_AGENT_USER",
        "LAMBDA_AGENT_TOKEN",
        "LAMBDA_AGENT_STACK",
        "NO_COLOR",
        "RUST_BACKTRACE",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the lambda-agent binary runs");
    let mut input = child.stdin.take().expect("stdin");
    // A run that fails before reading its input may have closed it already.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let output = child.wait_with_output().expect("lambda-agent ends");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code(),
    }
}

/// The one line of stderr of a failed run (asserting there is exactly one).
pub fn one_error_line(run: &Run) -> &str {
    assert!(!run.ok(), "expected a failure: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {run:?}");
    assert!(
        lines[0].starts_with("lambda-agent: "),
        "prefixed with the program's name: {run:?}"
    );
    lines[0]
}
