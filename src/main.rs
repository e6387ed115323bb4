//! The `accord` command line; see `accord --help` and the README.

fn main() -> std::process::ExitCode {
    accord::cli::main()
}
