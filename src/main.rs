//! The `bakery` command: parse arguments, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = bakery::cli::Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "bakery=info",
        _ => "bakery=debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = bakery::signals::install()
        .and_then(|()| match cli.command {
            // The action builds its own command line from its inputs, region and endpoint
            // included, and runs it through the CLI.
            bakery::cli::Command::Action => bakery::action::run(),
            _ => bakery::cli::run(cli),
        })
        .unwrap_or_else(|e| {
            bakery::say!("error: {}", bakery::progress::continued(&e.to_string()));
            e.exit_code()
        });
    std::process::exit(code);
}
