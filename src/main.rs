//! The `edgevit` command line: parses the arguments and hands them to [`cli`].

mod cli;

use clap::Parser;

fn main() {
    cli::logging::init();
    edgevit::memory::limit_arenas();
    let code = match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            let (code, say) = cli::exit_code(&error);
            if say {
                eprintln!("error: {}", edgevit::error::chain(error.as_ref()));
            }
            code
        }
    };
    std::process::exit(code);
}
