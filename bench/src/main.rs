//! The `tenantmq-bench` binary: parses the flags, runs, prints the report (a table, or JSON
//! with `--json`) and exits 0 (passed), 2 (ran with failures) or 1 (could not run).

use std::process::ExitCode;

use clap::Parser;
use tenantmq_bench::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The connections run on the tool's own threads; this runtime only coordinates.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantmq-bench: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(runtime.block_on(tenantmq_bench::run_and_print(cli.args)))
}
