//! `search-standin [--listen 127.0.0.1:0]`: the stand-in web search provider on a loopback
//! address. `SEARCH_STANDIN_API_KEY`, when set, is the only key it accepts (read from the
//! environment so it is not on the command line); unset, it accepts any key and none.
//!
//! After binding it prints exactly one line, `search-standin listening on http://127.0.0.1:<port>`,
//! then serves until it is signalled. Bad arguments or a bind failure exit 2.

use std::{io::Write, net::SocketAddr, process::ExitCode};

use tokio::net::TcpListener;

const USAGE: &str = "usage: search-standin [--listen 127.0.0.1:0]";

fn listen_address(args: &[String]) -> Result<SocketAddr, String> {
    let listen = match args {
        [] => "127.0.0.1:0",
        [flag, value] if flag == "--listen" => value,
        _ => return Err(USAGE.to_owned()),
    };
    let address: SocketAddr = listen
        .parse()
        .map_err(|error| format!("--listen {listen:?}: {error}\n{USAGE}"))?;
    if !address.ip().is_loopback() {
        return Err(format!("--listen {address} is not a loopback address"));
    }
    Ok(address)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = async {
        let address = listen_address(&args)?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| format!("cannot bind {address}: {error}"))?;
        let base = search_standin::base_url(&listener).map_err(|error| error.to_string())?;
        let key = std::env::var("SEARCH_STANDIN_API_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "search-standin listening on {}",
            base.as_str().trim_end_matches('/')
        )
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("cannot write to stdout: {error}"))?;
        Ok::<_, String>((listener, search_standin::State::accepting(key.as_deref())))
    };
    match started.await {
        Ok((listener, state)) => {
            search_standin::serve(listener, state).await;
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("search-standin: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        let parse =
            |args: &[&str]| listen_address(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(parse(&[]).unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(
            parse(&["--listen", "[::1]:9"]).unwrap().to_string(),
            "[::1]:9"
        );
        assert!(parse(&["--listen", "0.0.0.0:80"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
    }
}
