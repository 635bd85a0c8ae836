//! Keeps `src/sys/` sealed: outside it no code names a process (`Cmd`, `Output`, `pipe(`),
//! runs one (`.checked()`), reads a child's stderr (`.stderr`), or puts a `dataset@snapshot`
//! name together by hand (`format!("{dataset}@{name}")`): those are `sys/`'s verbs and the
//! typed names of src/dataset.rs. Nor does a command hand a zfs verb a typed name turned back
//! into text (`.as_str()`), and only src/dataset.rs says which types are names for zfs
//! (`ZfsName`). A plain text check of the sources, so it needs no ZFS.

use std::path::{Path, PathBuf};

/// The lines allowed to match, each with why: a file (relative to src/) and a text the line
/// contains.
const ALLOWED: &[(&str, &str, &str)] = &[
    // The one place snapshot names are built.
    (
        "dataset.rs",
        "format!(\"{dataset}@{name}\")",
        "the typed names themselves",
    ),
    (
        "dataset.rs",
        "format!(\"{base}@{}\", list.join(\",\"))",
        "a destroy's comma list",
    ),
    // A message's quoting of a listed name that is no valid snapshot name.
    (
        "commands/reap.rs",
        "format!(\"{dataset}@{:?}\"",
        "an odd name, quoted",
    ),
    // A login, not a dataset.
    (
        "rsync_args.rs",
        "format!(\"{user}@{source}\")",
        "[user@]host of a source",
    ),
    // std::ops::Add's associated type, not a process's output.
    (
        "rsync_report.rs",
        "type Output = Stats;",
        "the Add impl of Stats",
    ),
    // HOST@SNAPSHOT as messages show it, not a dataset name.
    (
        "commands/restore.rs",
        "&format!(\"{name}@{}\", snap.name)",
        "a message's label",
    ),
    // Test fixtures that write zfs's own listing text.
    (
        "run_facts.rs",
        "let name = format!(\"{ds}@{snap}\");",
        "a unit test's listing",
    ),
    (
        "inventory/fuzz.rs",
        "format!(\"{}@{}\", host.dataset, snap.name)",
        "a fuzzed listing",
    ),
    // Names read back from a host's zbk:record, to list them in one zfs get.
    (
        "record.rs",
        "format!(\"{}@{n}\", self.dataset)",
        "listed names of a record",
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether a word stands alone in `line` (not part of a longer identifier).
fn word(line: &str, w: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(w).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + w.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// A `format!` whose whole template is `{a}@{b}`: a name for zfs, put together by hand.
fn hand_built_name(line: &str) -> bool {
    line.match_indices("format!(\"{").any(|(i, _)| {
        let rest = &line[i + "format!(\"".len()..];
        let Some(end) = rest.find('"') else {
            return false;
        };
        let template = &rest[..end];
        let mut parts = template.split('@');
        let is_field =
            |p: &str| p.starts_with('{') && p.ends_with('}') && p.matches('{').count() == 1;
        matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(a), Some(b), None) if is_field(a) && is_field(b)
        )
    })
}

/// What a line outside `sys/` must not do, if anything.
fn leak(line: &str) -> Option<&'static str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return None;
    }
    if word(code, "Cmd") {
        Some("names `Cmd`")
    } else if word(code, "Output") {
        Some("names `Output`")
    } else if code.contains("pipe(") {
        Some("runs `pipe(`")
    } else if code.contains(".checked()") {
        Some("runs a command (`.checked()`)")
    } else if word(code, ".stderr") || code.contains(".stderr") && !code.contains("::stderr") {
        Some("reads a child's `.stderr`")
    } else if hand_built_name(code) {
        Some("builds a dataset@snapshot name by hand")
    } else {
        None
    }
}

/// Calls `f` with each line of every file under src/, its path relative to src/ and its line
/// number (from 1), in path order.
fn each_line(mut f: impl FnMut(&str, usize, &str)) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            f(&rel, n + 1, line);
        }
    }
}

#[test]
fn no_process_stderr_or_hand_built_name_outside_sys() {
    let mut found = Vec::new();
    each_line(|rel, n, line| {
        if rel.starts_with("sys/") {
            return;
        }
        let Some(what) = leak(line) else { return };
        let allowed = ALLOWED
            .iter()
            .any(|(f, text, _)| *f == rel && line.contains(text));
        if !allowed {
            found.push(format!("src/{rel}:{n}: {what}: {}", line.trim()));
        }
    });
    assert!(
        found.is_empty(),
        "outside src/sys/, code holds a process, its stderr or a hand-built name; use a verb of sys/ and the typed names of src/dataset.rs:\n{}",
        found.join("\n")
    );
}

/// A call of a zfs verb (`ctx.zfs.get(`, `at.listing(`) on one line that passes a typed name
/// as text: the verbs take the typed names themselves.
fn name_as_text(line: &str) -> bool {
    ["zfs.", "at."].iter().any(|handle| {
        line.match_indices(handle).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                return false;
            }
            let rest = &line[i + handle.len()..];
            let verb = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            verb > 0 && rest[verb..].starts_with('(') && rest[verb..].contains(".as_str()")
        })
    })
}

#[test]
fn commands_hand_zfs_verbs_typed_names() {
    let mut found = Vec::new();
    each_line(|rel, n, line| {
        let code = line.trim_start();
        if code.starts_with("//") {
            return;
        }
        if rel.starts_with("commands/") && name_as_text(code) {
            found.push(format!("src/{rel}:{n}: a name as text: {code}"));
        }
        if rel != "dataset.rs" && (code.contains("impl ZfsName for") || code.contains("zfs_name!("))
        {
            found.push(format!("src/{rel}:{n}: a new ZfsName: {code}"));
        }
    });
    assert!(
        found.is_empty(),
        "zfs verbs take the typed names of src/dataset.rs, which alone says what a name for zfs is:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_name_check_sees_text() {
    assert!(name_as_text("ctx.zfs.get(dataset.as_str(), \"mounted\")?;"));
    assert!(name_as_text("if !at.exists(target.as_str())? {"));
    assert!(!name_as_text("ctx.zfs.get(&dataset, \"mounted\")?;"));
    assert!(!name_as_text("let hat.x(a.as_str());"));
    assert!(!name_as_text("println!(\"{}\", name.as_str());"));
}

#[test]
fn the_check_sees_what_it_forbids() {
    for bad in [
        "let cmd: Cmd = x;",
        "use crate::sys::exec::{pipe, Output};",
        "let (a, b) = pipe(&send, &receive)?;",
        "rsync.restore(a, b, c).checked()?;",
        "if received.stderr.contains(MODIFIED) {",
        "let full = format!(\"{ds}@{name}\");",
        "let full = format!(\"{}@{}\", ds, name);",
    ] {
        assert!(leak(bad).is_some(), "{bad}");
    }
    for fine in [
        "// a Cmd in a comment",
        "let progress = std::io::stderr().is_terminal();",
        "eprintln!(\"{name}@{} is from a failed run\", snap.name);",
        "let login = format!(\"{user}@{host}:{path}\");",
        "struct CmdLine;",
    ] {
        assert!(leak(fine).is_none(), "{fine}");
    }
}
