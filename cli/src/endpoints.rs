//! Where the API is: `--url`, or the local stack's `.dev/stack.json` (written by `make dev`),
//! found by walking up from the current directory or named by `LAMBDA_AGENT_STACK`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The stack file `make dev` writes in the repository root.
pub const STACK_FILE: &str = ".dev/stack.json";

/// What to say when there is neither `--url` nor a stack file.
pub const NO_STACK: &str = "no local stack found (no .dev/stack.json in this directory or above): \
     run `make dev` in the repository first, or pass --url";

/// The URLs the commands call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Base URL of the buffered API.
    pub api: String,
    /// Base URL of the streaming function, when known.
    pub stream: Option<String>,
    /// True when the stream URL is not known yet and the API's `/console/config.json` may
    /// tell it.
    pub ask_config: bool,
}

#[derive(Debug, Deserialize)]
struct StackFile {
    api: String,
    #[serde(default)]
    stream: Option<String>,
}

/// The endpoints from the options, else from the stack file (`stack_env` is
/// `LAMBDA_AGENT_STACK`; otherwise the file is looked for from `cwd` up).
pub fn resolve(
    url: Option<&str>,
    stream_url: Option<&str>,
    cwd: &Path,
    stack_env: Option<PathBuf>,
) -> Result<Endpoints> {
    let (api, stream) = match url {
        Some(url) => (url.to_owned(), stream_url.map(str::to_owned)),
        None => {
            let path = find_stack(cwd, stack_env)?.context(NO_STACK)?;
            let stack = read_stack(&path)?;
            (stack.api, stream_url.map(str::to_owned).or(stack.stream))
        }
    };
    let stream = stream.filter(|s| !s.trim().is_empty()).map(trimmed);
    Ok(Endpoints {
        api: trimmed(api),
        ask_config: stream.is_none(),
        stream,
    })
}

/// The stack file: the one `stack_env` names (which must exist), else the first
/// `.dev/stack.json` in `start` or one of its parents.
pub fn find_stack(start: &Path, stack_env: Option<PathBuf>) -> Result<Option<PathBuf>> {
    if let Some(path) = stack_env.filter(|p| !p.as_os_str().is_empty()) {
        if !path.is_file() {
            bail!(
                "LAMBDA_AGENT_STACK is {}, which is not a file: run `make dev`, or pass --url",
                path.display()
            );
        }
        return Ok(Some(path));
    }
    Ok(start
        .ancestors()
        .map(|dir| dir.join(STACK_FILE))
        .find(|candidate| candidate.is_file()))
}

fn read_stack(path: &Path) -> Result<StackFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let stack: StackFile = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a stack file ({e}): run `make dev` again, or pass --url",
            path.display()
        )
    })?;
    if stack.api.trim().is_empty() {
        bail!("{} has no API URL: run `make dev` again", path.display());
    }
    Ok(stack)
}

fn trimmed(url: String) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "lambda-agent-cli-endpoints-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write_stack(root: &Path, json: &str) -> PathBuf {
        std::fs::create_dir_all(root.join(".dev")).unwrap();
        let path = root.join(STACK_FILE);
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn the_stack_file_is_found_in_a_parent_directory() {
        let root = TempDir::new();
        let path = write_stack(
            &root.0,
            r#"{"api": "http://127.0.0.1:9000/lambda-url/session-handler/", "stream": "http://127.0.0.1:9000/lambda-url/stream", "console": "x", "auth_mode": "insecure-local"}"#,
        );
        let deep = root.0.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_stack(&deep, None).unwrap(), Some(path));
        let endpoints = resolve(None, None, &deep, None).unwrap();
        assert_eq!(
            endpoints,
            Endpoints {
                api: "http://127.0.0.1:9000/lambda-url/session-handler".into(),
                stream: Some("http://127.0.0.1:9000/lambda-url/stream".into()),
                ask_config: false,
            }
        );
        // --stream-url wins over the file's.
        let endpoints = resolve(None, Some("http://s/"), &deep, None).unwrap();
        assert_eq!(endpoints.stream.as_deref(), Some("http://s"));
    }

    #[test]
    fn the_env_variable_names_the_file_and_must_exist() {
        let root = TempDir::new();
        let path = write_stack(&root.0, r#"{"api": "http://a", "stream": null}"#);
        let elsewhere = std::env::temp_dir();
        let endpoints = resolve(None, None, &elsewhere, Some(path)).unwrap();
        assert_eq!(endpoints.api, "http://a");
        assert_eq!(endpoints.stream, None);
        assert!(endpoints.ask_config);
        let missing = resolve(None, None, &elsewhere, Some(root.0.join("nope.json")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("LAMBDA_AGENT_STACK"), "{missing}");
    }

    #[test]
    fn no_stack_file_tells_to_run_make_dev() {
        let root = TempDir::new();
        assert_eq!(find_stack(&root.0, None).unwrap(), None);
        let error = resolve(None, None, &root.0, None).unwrap_err().to_string();
        assert!(
            error.contains("make dev") && error.contains("--url"),
            "{error}"
        );
    }

    #[test]
    fn a_broken_stack_file_says_which_file() {
        let root = TempDir::new();
        write_stack(&root.0, "{not json");
        let error = resolve(None, None, &root.0, None).unwrap_err().to_string();
        assert!(error.contains("stack.json is not a stack file"), "{error}");
    }

    #[test]
    fn url_needs_no_stack_file_and_asks_the_config_for_the_stream() {
        let root = TempDir::new();
        let endpoints = resolve(Some("http://api/x/"), None, &root.0, None).unwrap();
        assert_eq!(endpoints.api, "http://api/x");
        assert_eq!(endpoints.stream, None);
        assert!(endpoints.ask_config);
    }
}
