//! `virtwire`: the command line of the virtwire suite (see [`virtwire_conformance::cli`]).

fn main() -> std::process::ExitCode {
    virtwire_conformance::cli::main()
}
