//! The `tenantmq` binary: loads configuration, starts telemetry, binds listeners and hands
//! them to the services' `run` functions (house rule 1: a thin `main`).

mod cmd_control;
mod signal;
mod standalone;
mod telemetry;

use std::process::ExitCode;

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
    /// Load-test an MQTT broker (this one or another): pairs, fanin, fanout, conns.
    #[command(args_override_self = true)]
    Bench(tenantmq_bench::Args),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async move {
        match cli.command {
            Command::Standalone(args) => standalone::run(args).await.map(|()| 0),
            Command::ControlApi(args) => cmd_control::run_control_api(args).await.map(|()| 0),
            Command::Migrate(args) => cmd_control::run_migrate(args).await.map(|()| 0),
            // The load tool drives its connections on threads of its own.
            Command::Bench(args) => Ok(tenantmq_bench::run_and_print(args).await),
        }
    })?;
    Ok(ExitCode::from(status))
}
