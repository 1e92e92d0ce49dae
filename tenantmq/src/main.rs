//! The `tenantmq` binary: loads configuration, starts telemetry, binds listeners and hands
//! them to the services' `run` functions (house rule 1: a thin `main`).

mod cmd_control;
#[cfg(test)]
mod observability_tests;
mod ops;
mod signal;
mod standalone;
mod telemetry;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

/// tenantmq — a multi-tenant managed MQTT service.
#[derive(Parser, Debug)]
#[command(name = "tenantmq", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = telemetry::LogFormat::Text, env = "TENANTMQ_LOG_FORMAT")]
    log_format: telemetry::LogFormat,
    /// Export traces and metrics over OTLP/HTTP to this collector (e.g.
    /// `http://127.0.0.1:4318`); off when unset.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // One set of metrics per process: the ops listener serves it, OTLP mirrors it.
    let metrics = Arc::new(tenantmq_common::metrics::Metrics::new());
    let telemetry = runtime.block_on(async {
        telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref(), &metrics)
    })?;
    let status = runtime.block_on(async move {
        match cli.command {
            Command::Standalone(args) => standalone::run(args, metrics).await.map(|()| 0),
            Command::ControlApi(args) => cmd_control::run_control_api(args, metrics)
                .await
                .map(|()| 0),
            Command::Migrate(args) => cmd_control::run_migrate(args).await.map(|()| 0),
            // The load tool drives its connections on threads of its own.
            Command::Bench(args) => Ok(tenantmq_bench::run_and_print(args).await),
        }
    });
    // Outside `block_on`: shutting the exporters down waits for tasks on the runtime.
    telemetry.shutdown();
    Ok(ExitCode::from(status?))
}
