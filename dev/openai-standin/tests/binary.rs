//! The `openai-standin` binary: announces its address on one stdout line, serves, exits 0 on
//! SIGTERM; refuses non-loopback addresses and bad variables.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_openai-standin");

fn get(port: u16, path: &str, key: Option<&str>) -> Result<String, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn prints_its_address_serves_with_the_key_from_the_environment_and_stops_on_sigterm() -> TestResult
{
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .env("OPENAI_STANDIN_API_KEY", "sk-binary-test-key")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port: u16 = line
        .trim_end()
        .strip_prefix("openai-standin listening on http://127.0.0.1:")
        .ok_or_else(|| format!("unexpected line {line:?}"))?
        .parse()?;
    let health = get(port, "/__health", None)?;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(get(port, "/v1/models", None)?.starts_with("HTTP/1.1 401"));
    let models = get(port, "/v1/models", Some("sk-binary-test-key"))?;
    assert!(
        models.starts_with("HTTP/1.1 200") && models.contains("gpt-4o-mini"),
        "{models}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = child.try_wait()? {
            assert_eq!(exit.code(), Some(0));
            return Ok(());
        }
        if Instant::now() > deadline {
            child.kill()?;
            return Err("did not exit after SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refuses_a_non_loopback_address_and_a_bad_variable() -> TestResult {
    let output = Command::new(BIN).args(["--listen", "0.0.0.0:0"]).output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8(output.stderr)?.contains("loopback"));
    let output = Command::new(BIN)
        .env("OPENAI_STANDIN_CONTEXT_TOKENS", "lots")
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr)?.contains("OPENAI_STANDIN_CONTEXT_TOKENS=\"lots\""));
    Ok(())
}
