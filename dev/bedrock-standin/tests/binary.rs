//! The `bedrock-standin` binary: announces its address on one stdout line,
//! serves, and exits 0 on SIGTERM; refuses non-loopback addresses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-standin");

#[test]
fn prints_its_address_serves_and_stops_on_sigterm() -> TestResult {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port: u16 = line
        .trim_end()
        .strip_prefix("bedrock-standin listening on http://127.0.0.1:")
        .ok_or_else(|| format!("unexpected line {line:?}"))?
        .parse()?;
    assert_ne!(port, 0);

    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /__stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"converse":0,"converse_stream":0,"invoke":0,"models":{}}"#),
        "{response}"
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
fn refuses_a_non_loopback_address() -> TestResult {
    let output = Command::new(BIN).args(["--listen", "0.0.0.0:0"]).output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8(output.stderr)?.contains("loopback"));
    Ok(())
}

#[test]
fn refuses_a_bad_context_window_naming_the_variable() -> TestResult {
    let output = Command::new(BIN)
        .env("STANDIN_CONTEXT_TOKENS", "lots")
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr)?;
    assert!(
        stderr.contains("STANDIN_CONTEXT_TOKENS=\"lots\" is not a number of tokens"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn refuses_bad_cache_settings_naming_the_variable() -> TestResult {
    for (name, value, expected) in [
        (
            "STANDIN_CACHE_MIN_TOKENS",
            "1k",
            "STANDIN_CACHE_MIN_TOKENS=\"1k\" is not a number of tokens",
        ),
        (
            "STANDIN_CACHE_TTL_SECS",
            "5m",
            "STANDIN_CACHE_TTL_SECS=\"5m\" is not a number of seconds",
        ),
    ] {
        let output = Command::new(BIN).env(name, value).output()?;
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8(output.stderr)?;
        assert!(stderr.contains(expected), "{stderr}");
    }
    Ok(())
}
