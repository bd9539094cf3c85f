//! The `stream-manager` binary.

use std::process::ExitCode;

use std::io::IsTerminal;

use clap::Parser;
use stream_manager::config::{Cli, Command, LogFormat, Settings, TokenCommand};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("STREAM_MANAGER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in a file or a journal.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Render(args) => {
            ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
            match stream_manager::render::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stream-manager render: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Template(command) => {
            ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
            match stream_manager::render::run_template(&command) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stream-manager template: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Loader(command) => match stream_manager::loader_cli::run(&command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stream-manager loader: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Token(TokenCommand::New { role, name }) => {
            let token = match stream_manager::auth::new_token() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("stream-manager token: no random bytes from the system: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let name = name.unwrap_or_else(|| role.to_string());
            println!("token (give it to its holder; it is not stored anywhere):\n\n  {token}\n");
            println!("add to the config file:\n");
            print!(
                "{}",
                stream_manager::auth::config_entry(&name, role, &token)
            );
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let settings = match Settings::resolve(&args, &|k| std::env::var(k).ok()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("stream-manager: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(settings.log_format);
            // FFmpeg's own lines are kept to fatal ones: a corrupt input stream would
            // otherwise write one per broken macroblock, as fast as a camera sends them.
            // Failures reach the log and the API through stream-manager's own errors.
            ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Fatal);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("stream-manager: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(stream_manager::server::run(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stream-manager: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
