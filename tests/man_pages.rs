//! The man pages in man/ against the binary: every option `--help` lists is documented, every
//! documented option exists, every command has its page, and `mandoc -Tlint` finds nothing.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the roff sources.
fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Every man page in man/: files named `*.N` with N a section digit, sorted.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(man_dir())
        .expect("read man/")
        .map(|entry| entry.expect("read man/ entry").path())
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| ext.len() == 1 && ext.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no man pages in {}", man_dir().display());
    pages
}

fn read_page(name: &str) -> String {
    let path = man_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs `zbk ARGS --help` and returns what argh printed on stdout.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zbk"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run zbk");
    let shown = format!("zbk {} --help", args.join(" "));
    assert!(
        out.status.success(),
        "`{shown}` exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("`{shown}` printed non-UTF-8: {e}"))
}

/// The entry lines of one section of argh's help (`Options:`, `Commands:`): the lines indented
/// by exactly two spaces, up to the next blank line. Wrapped descriptions are indented further.
fn help_section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|line| line.trim_end() != title)
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|entry| !entry.starts_with(' '))
        .collect()
}

/// The options of a help text, one entry per option with all its spellings, such as
/// `["-v", "--verbose"]`. argh's own `--help` is left out when `with_help` is false; its
/// `help` alias is not an option and is always left out.
fn help_options(help: &str, with_help: bool) -> Vec<Vec<String>> {
    let entries: Vec<Vec<String>> = help_section(help, "Options:")
        .into_iter()
        .map(|entry| {
            let names = entry.split("  ").next().unwrap_or("");
            names
                .split(", ")
                .map(str::trim)
                .filter(|name| name.starts_with('-'))
                .map(String::from)
                .collect::<Vec<String>>()
        })
        .filter(|names| !names.is_empty())
        .filter(|names| with_help || !names.iter().any(|name| name == "--help"))
        .collect();
    assert!(
        !entries.is_empty() || !with_help,
        "no options found in this help text:\n{help}"
    );
    entries
}

/// The command names listed under `Commands:` in the top-level help.
fn help_commands(help: &str) -> Vec<String> {
    let commands: Vec<String> = help_section(help, "Commands:")
        .into_iter()
        .filter_map(|entry| entry.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect();
    assert!(
        !commands.is_empty(),
        "no commands found in `zbk --help`:\n{help}"
    );
    commands
}

/// The roff source as it reads on screen, near enough for searching: `\-` becomes `-`, and
/// font changes and zero-width escapes are dropped, so `\fB\-\-dry\-run\fR` reads `--dry-run`.
fn plain(roff: &str) -> String {
    let mut text = roff.replace("\\-", "-");
    for escape in ["\\fB", "\\fI", "\\fR", "\\fP", "\\&", "\\%", "\\c"] {
        text = text.replace(escape, "");
    }
    text
}

/// The lines of section `title` (`.SH TITLE`) of a page, without the `.SH` line.
fn section<'a>(page: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix(".SH") {
            inside = rest.trim().trim_matches('"') == title;
            continue;
        }
        if inside {
            lines.push(line);
        }
    }
    lines
}

/// The section titles of a page, in order.
fn section_titles(page: &str) -> Vec<String> {
    page.lines()
        .filter_map(|line| line.strip_prefix(".SH "))
        .map(|rest| rest.trim().trim_matches('"').to_string())
        .collect()
}

/// The tag lines of the `.TP` items in some lines: what each item documents.
fn tags<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut tags = Vec::new();
    let mut after_tp = false;
    for line in lines {
        if line.starts_with(".\\\"") {
            continue;
        }
        if after_tp {
            tags.push(*line);
        }
        after_tp = line.starts_with(".TP");
    }
    tags
}

/// The option spellings in a piece of plain text: `--long-name` and single-letter `-v`, where
/// the dash does not continue a word (so `zbk-run` and `2026-11-27` yield nothing).
fn options_in(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'-' || (i > 0 && word(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let dashes = if bytes.get(i + 1) == Some(&b'-') {
            2
        } else {
            1
        };
        let start = i + dashes;
        let mut end = start;
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        let name = text[start..end].trim_end_matches('-');
        let first_ok = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        if first_ok && (dashes == 2 || name.len() == 1) {
            found.insert(format!("{}{}", &text[i..start], name));
        }
        i = end.max(i + 1);
    }
    found
}

/// The options a page documents: those named in the tags of its OPTIONS section.
fn documented_options(page: &str) -> BTreeSet<String> {
    tags(&section(page, "OPTIONS"))
        .iter()
        .flat_map(|tag| options_in(&plain(tag)))
        .collect()
}

/// The options a page's SYNOPSIS shows.
fn synopsis_options(page: &str) -> BTreeSet<String> {
    options_in(&plain(&section(page, "SYNOPSIS").join("\n")))
}

/// Checks one page against the options of its help text and returns what disagrees;
/// `also_valid` are options the page may show in SYNOPSIS without documenting them (the global
/// ones, on a command's page).
fn check_page_against_help(
    page_name: &str,
    help_text: &str,
    with_help: bool,
    also_valid: &[Vec<String>],
) -> Vec<String> {
    let page = read_page(page_name);
    let entries = help_options(help_text, with_help);
    let in_help: BTreeSet<String> = entries.iter().flatten().cloned().collect();
    let documented = documented_options(&page);
    let synopsis = synopsis_options(&page);
    let mut problems = Vec::new();

    for entry in &entries {
        for name in entry {
            if !documented.contains(name) {
                problems.push(format!("{name} is in --help but not documented in OPTIONS"));
            }
        }
        if !entry.iter().any(|name| synopsis.contains(name)) {
            problems.push(format!(
                "{} is in --help but not in SYNOPSIS",
                entry.join(", ")
            ));
        }
    }
    for name in &documented {
        if !in_help.contains(name) && name != "--help" {
            problems.push(format!("{name} is documented in OPTIONS but not in --help"));
        }
    }
    let global: BTreeSet<String> = also_valid.iter().flatten().cloned().collect();
    for name in &synopsis {
        if !in_help.contains(name) && !global.contains(name) && name != "--help" {
            problems.push(format!("{name} is in SYNOPSIS but in no --help"));
        }
    }
    if problems.is_empty() {
        return problems;
    }
    vec![format!(
        "man/{page_name} disagrees with the binary:\n  {}\n--help said:\n{help_text}",
        problems.join("\n  ")
    )]
}

#[test]
fn every_command_option_is_documented_and_every_documented_option_exists() {
    let top = help(&[]);
    let global = help_options(&top, true);
    let problems: Vec<String> = help_commands(&top)
        .iter()
        .flat_map(|command| {
            let help_text = help(&[command]);
            check_page_against_help(&format!("zbk-{command}.8"), &help_text, false, &global)
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn top_level_options_are_documented_in_zbk_8() {
    let problems = check_page_against_help("zbk.8", &help(&[]), true, &[]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_command_has_a_page_and_every_command_page_a_command() {
    let commands: BTreeSet<String> = help_commands(&help(&[])).into_iter().collect();
    let overview = read_page("zbk.8");
    let listed: BTreeSet<String> = tags(&section(&overview, "COMMANDS"))
        .iter()
        .filter_map(|tag| {
            let tag = plain(tag);
            let args = tag
                .split_once(' ')
                .map_or("", |(_, args)| args)
                .replace('"', " ");
            args.split_whitespace().next().map(String::from)
        })
        .collect();
    assert_eq!(
        listed, commands,
        "the COMMANDS section of man/zbk.8 against `zbk --help`"
    );

    let command_pages: BTreeSet<String> = pages()
        .iter()
        .filter_map(|path| path.file_name()?.to_str())
        .filter_map(|name| name.strip_prefix("zbk-")?.strip_suffix(".8"))
        .map(String::from)
        .collect();
    assert_eq!(
        command_pages, commands,
        "the man/zbk-*.8 pages against `zbk --help`"
    );
}

#[test]
fn pages_have_the_expected_shape() {
    let version = format!("\"zbk {}\"", env!("CARGO_PKG_VERSION"));
    let overview_see_also = plain(&section(&read_page("zbk.8"), "SEE ALSO").join("\n"));
    let mut problems = Vec::new();
    for path in pages() {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let (stem, sect) = file.rsplit_once('.').unwrap();
        let page = fs::read_to_string(&path).unwrap();

        let opening = format!(".\\\" {stem}({sect}): ");
        if !page.starts_with(&opening) {
            problems.push(format!(
                "{file}: the first line should be a comment `{opening}<role>`"
            ));
        }
        let th = page
            .lines()
            .find(|line| line.starts_with(".TH "))
            .unwrap_or("");
        let th_expected = format!(".TH {} {sect} ", stem.to_uppercase());
        if !th.starts_with(&th_expected) || !th.contains(&version) {
            problems.push(format!(
                "{file}: `{th}` should start `{th_expected}` and name {version}"
            ));
        }
        let name_line = section(&page, "NAME").first().copied().unwrap_or("");
        if !name_line.starts_with(&format!("{stem} \\- ")) {
            problems.push(format!("{file}: NAME should read `{stem} \\- description`"));
        }
        let titles = section_titles(&page);
        let required: &[&str] = if stem.starts_with("zbk-") {
            &[
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "EXIT STATUS",
                "FILES",
                "EXAMPLES",
                "SEE ALSO",
            ]
        } else if stem == "zbk" {
            &[
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "EXIT STATUS",
                "ENVIRONMENT",
                "FILES",
                "EXAMPLES",
                "SEE ALSO",
            ]
        } else {
            &[
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "FILES",
                "EXAMPLES",
                "SEE ALSO",
            ]
        };
        for title in required {
            if !titles.iter().any(|t| t == title) {
                problems.push(format!("{file}: no .SH {title}"));
            }
        }
        if stem != "zbk" && !overview_see_also.contains(&format!("{stem} ({sect})")) {
            problems.push(format!("zbk.8: SEE ALSO does not name {stem}({sect})"));
        }
    }
    assert!(
        problems.is_empty(),
        "man page problems:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn mandoc_lint_reports_nothing() {
    let pages = pages();
    let out = match Command::new("mandoc")
        .args(["-Tlint", "-W", "warning"])
        .args(&pages)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("mandoc not found: apt-get install mandoc")
        }
        Err(e) => panic!("cannot run mandoc: {e}"),
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "mandoc -Tlint -W warning man/* ({}):\n{report}",
        out.status
    );
}

#[test]
fn the_option_scanner_reads_roff_spellings() {
    let text = plain(".BR \\-v \", \" \\-\\-verbose\n.BI \\-\\-as\\-of \" time\" zbk\\-run (8) 2026\\-11\\-27 [\\-\\-all]");
    let found: Vec<String> = options_in(&text).into_iter().collect();
    assert_eq!(found, ["--all", "--as-of", "--verbose", "-v"]);
}
