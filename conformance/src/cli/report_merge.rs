//! `virtwire report merge A.json B.json … --html DIR`: several runs' JSON reports
//! (`virtwire-check/1`, from `check --json`) as one HTML grid, a column per file.
//!
//! Exit status: 0 written; 3 a file that cannot be read or is not `virtwire-check/1`, or DIR cannot
//! be written.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::report::{html, merge};
use crate::runner::EXIT_HARNESS;
use crate::wire::Decoder;

/// `virtwire report`'s subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Merge runs' JSON reports (check --json) into one HTML report, a grid column per file.
    Merge(MergeArgs),
}

/// `virtwire report merge`'s arguments.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// JSON reports (virtwire-check/1), one column each, in this order.
    #[arg(required = true, value_name = "JSON")]
    pub files: Vec<PathBuf>,
    /// Where the HTML report goes (DIR/index.html).
    #[arg(long, value_name = "DIR", required = true)]
    pub html: PathBuf,
}

/// Run `virtwire report …`; the exit status.
pub fn run(args: Args) -> ExitCode {
    let Args::Merge(args) = args;
    match merge_files(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("virtwire report merge: {e}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn merge_files(args: &MergeArgs) -> Result<(), String> {
    let loaded = args
        .files
        .iter()
        .map(|f| merge::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    // The records are already decoded: this decoder is never asked to decode.
    let decoder = Decoder::new(crate::wire::Options::default());
    let columns: Vec<html::Column<'_>> = loaded
        .iter()
        .map(|l| html::Column {
            name: l.name.clone(),
            libvirt_version: None,
            meta: Vec::new(),
            report: &l.report,
            decoder: &decoder,
            recorded: Some(&l.wire),
        })
        .collect();
    let opts = html::Options {
        title: "virtwire report merge".into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..html::Options::default()
    };
    let size = html::write(&columns, &args.html, &opts)
        .map_err(|e| format!("--html {}: {e}", args.html.display()))?;
    say!(
        "virtwire report merge: {} ({} KiB, {} columns)",
        args.html.join("index.html").display(),
        size >> 10,
        columns.len()
    );
    Ok(())
}
