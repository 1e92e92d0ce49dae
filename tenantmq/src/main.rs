//! The `tenantmq` binary: loads configuration, starts telemetry, binds listeners and hands
//! them to the services' `run` functions (house rule 1: a thin `main`).

mod cmd_control;
mod signal;
mod standalone;
mod telemetry;

use clap::{Parser, Subcommand};

/// tenantmq — a multi-tenant managed MQTT service.
#[derive(Parser, Debug)]
#[command(name = "tenantmq", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = telemetry::LogFormat::Text, env = "TENANTMQ_LOG_FORMAT")]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run everything in one process on embedded defaults.
    Standalone(standalone::Args),
    /// Run the control API (HTTP) on Postgres or SQLite.
    ControlApi(cmd_control::ControlApiArgs),
    /// Apply the control database's migrations and exit.
    Migrate(cmd_control::MigrateArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Standalone(args) => standalone::run(args).await,
            Command::ControlApi(args) => cmd_control::run_control_api(args).await,
            Command::Migrate(args) => cmd_control::run_migrate(args).await,
        }
    })
}
