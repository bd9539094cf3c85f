//! The `stream-manager` binary.

use std::process::ExitCode;

use clap::Parser;
use stream_manager::config::{Cli, Command, LogFormat, Settings};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("STREAM_MANAGER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
