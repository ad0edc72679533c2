//! The command line: global options and one subcommand.

use clap::{Parser, Subcommand};

/// The agent's command line: chat with it, list your sessions, see what a turn did.
#[derive(Debug, Parser)]
#[command(name = "lambda-agent", version, about)]
pub struct Args {
    /// Base URL of the API (the session handler). Without it, the local stack's
    /// `.dev/stack.json` (written by `make dev`) is used.
    #[arg(long, env = "LAMBDA_AGENT_URL", global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Base URL of the streaming function (default: the stack file's, or the API's
    /// `/console/config.json`; none means answers come whole, not streamed).
    #[arg(long, global = true, value_name = "URL")]
    pub stream_url: Option<String>,

    /// Who you are to a local stack (`x-user-id`); ignored when `LAMBDA_AGENT_TOKEN` is set,
    /// whose JWT is sent as a bearer token instead.
    #[arg(
        long,
        env = "LAMBDA_AGENT_USER",
        default_value = "local-user",
        global = true,
        value_name = "USER"
    )]
    pub user: String,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Chat: each line you type is a turn; the answer streams as it comes. `/exit` or end of
    /// input to stop.
    Chat {
        /// Go on with this session instead of starting a new one.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// The model role to answer with (`reasoning`, the default, `fast`, `extraction`).
        #[arg(long, value_name = "ROLE")]
        model: Option<String>,
    },
    /// Your sessions, most recent first.
    Sessions,
    /// What each turn of a session did: its model and tool calls on a timeline.
    Trace {
        /// The session.
        session: String,
        /// Only this turn.
        #[arg(long, value_name = "N")]
        turn: Option<u64>,
    },
    /// The tools the agent can use.
    Tools,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("lambda-agent").chain(args.iter().copied()))
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let args = parse(&["chat", "--url", "http://x", "--model", "fast"]).unwrap();
        assert_eq!(args.url.as_deref(), Some("http://x"));
        assert!(matches!(
            args.command,
            Command::Chat { model: Some(ref m), session: None } if m == "fast"
        ));
        let args = parse(&["--user", "alice", "trace", "abc", "--turn", "2"]).unwrap();
        assert_eq!(args.user, "alice");
        assert!(
            matches!(args.command, Command::Trace { ref session, turn: Some(2) } if session == "abc")
        );
    }

    #[test]
    fn argument_errors_are_clap_errors() {
        assert_eq!(
            parse(&[]).unwrap_err().kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert_eq!(
            parse(&["trace"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["trace", "s", "--turn", "two"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["chatt"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        assert_eq!(
            parse(&["sessions", "--token", "x"]).unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
