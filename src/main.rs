//! Entry point: parse the command line, run the command, turn the outcome into an exit code.

mod app;
mod cli;
mod commands;
mod config;
mod crypt;
mod ctx;
mod dataset;
mod diff;
mod expiry;
mod flavour;
#[cfg(test)]
mod fuzz;
mod guard;
mod health;
mod history;
mod inventory;
mod layout;
mod listing;
mod lock;
mod names;
mod parallel;
mod pool;
mod progress;
mod record;
mod replicate;
mod report;
mod restamp;
mod restore;
mod retention;
mod rsync_args;
mod rsync_report;
mod run_facts;
mod stamp;
mod sys;
mod text;
mod verify;
mod watchdog;

use std::process::ExitCode;

fn main() -> ExitCode {
    // `zbk list | head` should end quietly when head stops reading, as other Unix tools do,
    // not panic on a broken pipe: take the default SIGPIPE action back from the Rust runtime.
    // SAFETY: signal(2) with SIG_DFL, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let argv: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let words = &strs[1.min(strs.len())..];
    let plugin = is_check(words);
    let args = match <cli::TopArgs as argh::FromArgs>::from_args(&["zbk"], words) {
        Ok(args) => args,
        Err(early) if early.status.is_ok() => {
            println!("{}", early.output);
            return ExitCode::SUCCESS;
        }
        // argh words some errors on several lines ("...not provided:\n    host").
        Err(early) => {
            let said: Vec<&str> = early.output.split_whitespace().collect();
            return fail(&said.join(" "), ctx::EXIT_USAGE, plugin);
        }
    };
    match app::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => fail(&format!("{err:#}"), ctx::exit_code_of(&err), plugin),
    }
}

/// Whether the command line asks for `zbk check`, whose caller (Nagios, Icinga) reads only
/// stdout and the plugin exit statuses: even a usage error must be `ZBK UNKNOWN`, status 3.
fn is_check(words: &[&str]) -> bool {
    let mut words = words.iter();
    while let Some(word) = words.next() {
        match *word {
            "--root" => {
                words.next();
            }
            w if w.starts_with('-') => {}
            w => return w == "check",
        }
    }
    false
}

/// Reports an error that stops zbk: on stderr with the `zbk:` prefix, or as a plugin's one
/// UNKNOWN line on stdout for `zbk check`.
fn fail(message: &str, code: u8, plugin: bool) -> ExitCode {
    if plugin {
        println!("ZBK UNKNOWN - {}", message.replace('\n', "; "));
        ExitCode::from(health::State::Unknown.code())
    } else {
        eprintln!("zbk: {message}");
        ExitCode::from(code)
    }
}
