//! `ringlet-bench`: drive any Kafka-compatible broker with a workload file and report.
//!
//! ```text
//! ringlet-bench run --workload benches/workloads/1k-max.toml --bootstrap 127.0.0.1:9092 \
//!     --broker ringlet --broker-pid 1234 --out run.json --html run.html
//! ringlet-bench report --brokers ringlet,kafka --limits limits.json --out DIR runs/*.json
//! ringlet-bench limits --iperf3 iperf3.json --fio fio.json --out limits.json
//! ```
//! See docs/benchmarking.md. The model lives in `ringlet_benches::harness`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ringlet_benches::harness::json::{
    read_json, write_json, Comparison, Limits, RateProbe, RunResult,
};
use ringlet_benches::harness::run::{run, RunOptions};
use ringlet_benches::harness::workload::Workload;
use ringlet_benches::harness::{limits, report_html, summary, HarnessError};

/// Exit status when the run completed but produced != consumed (files are still written).
const EXIT_COUNTS_MISMATCH: u8 = 3;

#[derive(Parser)]
#[command(
    name = "ringlet-bench",
    about = "Load generator and report for Kafka-compatible brokers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one workload against one broker; write its JSON result (and optionally HTML).
    Run(RunArgs),
    /// Merge run results (several brokers) and physical limits into results.json + report.html.
    Report(ReportArgs),
    /// Turn iperf3 -J and fio JSON outputs into a limits file.
    Limits(LimitsArgs),
}

#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    workload: PathBuf,
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Label of the broker in results ("ringlet", "kafka", ...).
    #[arg(long, default_value = "broker")]
    broker: String,
    /// Broker process id, for CPU time and RSS from /proc.
    #[arg(long)]
    broker_pid: Option<u32>,
    #[arg(long, default_value_t = 1)]
    iteration: u32,
    /// Override the workload's measured duration (seconds).
    #[arg(long)]
    duration_s: Option<u64>,
    /// Override the workload's warm-up (seconds).
    #[arg(long)]
    warmup_s: Option<u64>,
    /// Maximum rate (messages/s) for workloads whose rate is a fraction of the maximum.
    /// Without it such a workload first runs a max-rate probe of the same shape.
    #[arg(long)]
    max_rate_msgs: Option<f64>,
    /// Leave the run's topics in the broker (by default they are deleted afterwards).
    #[arg(long)]
    keep_topics: bool,
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    #[arg(long, default_value = "result.json")]
    out: PathBuf,
    /// Also write a one-run HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// Broker labels in order; the first is the baseline of the ratios.
    #[arg(long, value_delimiter = ',')]
    brokers: Vec<String>,
    #[arg(long)]
    limits: Option<PathBuf>,
    /// Output directory for results.json and report.html.
    #[arg(long)]
    out: PathBuf,
    /// Run result files.
    runs: Vec<PathBuf>,
}

#[derive(Args)]
struct LimitsArgs {
    #[arg(long)]
    iperf3: Option<PathBuf>,
    #[arg(long)]
    fio: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Report(args) => report_command(args),
        Command::Limits(args) => limits_command(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ringlet-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(args: RunArgs) -> Result<ExitCode, HarnessError> {
    let mut workload = Workload::load(&args.workload)?;
    if let Some(duration_s) = args.duration_s {
        workload.duration_s = duration_s.max(1);
    }
    if let Some(warmup_s) = args.warmup_s {
        workload.warmup_s = warmup_s;
    }
    let options = RunOptions {
        bootstrap: args.bootstrap,
        broker: args.broker.clone(),
        broker_pid: args.broker_pid,
        iteration: args.iteration,
        replication_factor: args.replication_factor,
        show_progress: !args.no_progress,
        delete_topics: !args.keep_topics,
    };
    let mut max_rate = args.max_rate_msgs;
    let mut probe = None;
    if max_rate.is_none() {
        if let Some(probe_workload) = workload.rate_probe() {
            let measured = probe_max_rate(&probe_workload, &options)?;
            max_rate = Some(measured.max_sustained_messages_per_s);
            probe = Some(measured);
        }
    }
    workload.resolve_rate(max_rate)?;
    let mut result = run(&workload, &options)?;
    result.rate_probe = probe;
    print!("{}", summary::run_summary(&result));
    write_json(&args.out, &result)?;
    if let Some(html) = &args.html {
        let comparison = Comparison::build(vec![args.broker], vec![result.clone()], None);
        write_text(html, &report_html::render(&comparison))?;
    }
    Ok(if result.counts_match {
        ExitCode::SUCCESS
    } else {
        eprintln!("ringlet-bench: produced and consumed counts differ (see the summary)");
        ExitCode::from(EXIT_COUNTS_MISMATCH)
    })
}

/// Runs the max-rate probe of a fraction-of-max workload and takes its sustained maximum:
/// the lower of the produce rate and one group's consume rate.
fn probe_max_rate(probe: &Workload, options: &RunOptions) -> Result<RateProbe, HarnessError> {
    eprintln!(
        "ringlet-bench: {} s max-rate probe for the fraction-of-max rate",
        probe.duration_s
    );
    let result = run(probe, options)?;
    let groups = f64::from(probe.consumer_groups.max(1));
    let produce = result.produce_throughput.messages_per_s;
    let consume = result.consume_throughput.messages_per_s / groups;
    let sustained = if probe.consumer_groups == 0 {
        produce
    } else {
        produce.min(consume)
    };
    eprintln!(
        "ringlet-bench: probe produced {produce:.0} msg/s, consumed {consume:.0} msg/s per group: maximum {sustained:.0} msg/s"
    );
    Ok(RateProbe {
        probe_s: probe.duration_s,
        produce_messages_per_s: produce,
        consume_messages_per_s_per_group: consume,
        max_sustained_messages_per_s: sustained,
        counts_match: result.counts_match,
    })
}

fn report_command(args: ReportArgs) -> Result<ExitCode, HarnessError> {
    let runs: Vec<RunResult> = args
        .runs
        .iter()
        .map(|path| read_json(path))
        .collect::<Result<_, _>>()?;
    let mut brokers = args.brokers;
    for run in &runs {
        if !brokers.contains(&run.broker) {
            brokers.push(run.broker.clone());
        }
    }
    let limits: Option<Limits> = args.limits.as_deref().map(read_json).transpose()?;
    let comparison = Comparison::build(brokers, runs, limits);
    std::fs::create_dir_all(&args.out).map_err(|source| HarnessError::Io {
        context: format!("creating {}", args.out.display()),
        source,
    })?;
    write_json(&args.out.join("results.json"), &comparison)?;
    write_text(
        &args.out.join("report.html"),
        &report_html::render(&comparison),
    )?;
    print!("{}", summary::comparison_table(&comparison));
    Ok(ExitCode::SUCCESS)
}

fn limits_command(args: LimitsArgs) -> Result<ExitCode, HarnessError> {
    let read = |path: &Option<PathBuf>| path.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
    let (iperf3, fio) = (read(&args.iperf3), read(&args.fio));
    let limits = limits::limits_from(iperf3.as_deref(), fio.as_deref());
    write_json(&args.out, &limits)?;
    Ok(ExitCode::SUCCESS)
}

fn write_text(path: &std::path::Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(|source| HarnessError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}
