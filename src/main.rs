//! Entry point: parse the command line, run the command, turn the outcome into an exit code.

mod app;
mod cli;
mod commands;
mod config;
mod exec;
mod expiry;
#[cfg(test)]
mod fuzz_tests;
mod health;
mod inventory;
mod layout;
mod lock;
mod names;
mod parallel;
mod progress;
mod replicate;
mod restamp;
mod restore;
mod retention;
mod rsync;
mod run_facts;
mod zfs;
mod zfs_send;

use std::process::ExitCode;

fn main() -> ExitCode {
    // `zbk list | head` should end quietly when head stops reading, as other Unix tools do,
    // not panic on a broken pipe: take the default SIGPIPE action back from the Rust runtime.
    // SAFETY: signal(2) with SIG_DFL, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let argv: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args =
        match <cli::TopArgs as argh::FromArgs>::from_args(&["zbk"], &strs[1.min(strs.len())..]) {
            Ok(args) => args,
            Err(early) => {
                return if early.status.is_ok() {
                    println!("{}", early.output);
                    ExitCode::SUCCESS
                } else {
                    eprintln!("{}", early.output.trim_end());
                    ExitCode::from(app::EXIT_USAGE)
                };
            }
        };
    match app::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("zbk: {err:#}");
            ExitCode::from(app::exit_code_of(&err))
        }
    }
}
