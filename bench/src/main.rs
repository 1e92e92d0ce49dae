//! The `tenantmq-bench` binary: parses the flags, runs, prints the report (a table, or JSON
//! with `--json`) and exits 0 (passed), 2 (ran with failures) or 1 (could not run).

use std::process::ExitCode;

use clap::Parser;
use tenantmq_bench::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.args.json;
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
    match runtime.block_on(tenantmq_bench::run(cli.args)) {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("tenantmq-bench: serialising the report: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", report.render());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("tenantmq-bench: {e}");
            ExitCode::from(1)
        }
    }
}
