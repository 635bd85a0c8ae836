//! The module graph against src/ARCHITECTURE.md: every `crate::`, `super::` and child-module
//! path in src/ is read (comments and strings left out), each file is put on the floor that
//! ARCHITECTURE.md's `floors` block names, and an import that runs back up a floor, a command
//! that imports another command (but for the shared modules the `shared-commands` block names),
//! or a circle among the files below the commands fails with file:line. No ZFS, no build of
//! zbk: it reads the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Imports that break the rule today and are left to another change, with why. An entry that
/// matches no import any more fails too, so the list only shrinks: remove it then.
const PENDING: &[(&str, &str, &str)] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// One token of Rust source, as far as module paths need: comments, strings and characters
/// are gone, so a `crate::` inside them is never taken for an import.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// The tokens of `text`, each with its line (from 1).
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count =
        |from: usize, to: usize, c: &[char]| c[from..to].iter().filter(|&&x| x == '\n').count();
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let (start, mut depth) = (i, 0);
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count(start, i, &c);
        } else if ch == '"' || ((ch == 'r' || ch == 'b') && raw_or_byte_string(&c, i)) {
            let start = i;
            i = skip_string(&c, i);
            line += count(start, i, &c);
        } else if ch == '\'' {
            // A character ('x', '\n', '{') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else {
            let tok = match ch {
                ':' if next == Some(':') => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                _ => Tok::Other,
            };
            out.push((tok, line));
            i += 1;
        }
    }
    out
}

/// Whether `r"`, `r#"`, `b"`, `br"` or `br#"` starts at `i` (not an identifier ending in r or b).
fn raw_or_byte_string(c: &[char], i: usize) -> bool {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    if c[i] == 'b' && c.get(j) == Some(&'r') {
        j += 1;
    }
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

/// The index just past the string literal that starts at `i`.
fn skip_string(c: &[char], mut i: usize) -> usize {
    let mut raw = false;
    while c[i] != '"' && c[i] != '#' {
        raw |= c[i] == 'r';
        i += 1;
    }
    let mut hashes = 0;
    while c[i] == '#' {
        hashes += 1;
        i += 1;
    }
    raw |= hashes > 0;
    i += 1; // the opening quote
    while i < c.len() {
        if !raw && c[i] == '\\' {
            i += 2;
            continue;
        }
        if c[i] == '"' && (0..hashes).all(|k| c.get(i + 1 + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// One path a file names, as written, where it is written, and the module it is written in.
#[derive(Debug)]
struct Reference {
    line: usize,
    module: Vec<String>,
    path: Vec<String>,
}

/// Every path in `text` (the file of module `module`) that starts at `crate`, `super`, `self`
/// or a module of the crate that `is_module` knows, in `use` trees and in code alike.
fn references(
    text: &str,
    module: &[String],
    is_module: &dyn Fn(&[String]) -> bool,
) -> Vec<Reference> {
    let t = tokens(text);
    let mut out = Vec::new();
    // Inline modules (`mod tests { ... }`): their names and the brace depth inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let here = |inline: &[(String, usize)]| {
        let mut m = module.to_vec();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    let mut i = 0;
    while i < t.len() {
        let ident = |k: usize| match t.get(k) {
            Some((Tok::Ident(s), _)) => Some(s.as_str()),
            _ => None,
        };
        // The paths that start at `i`, and where reading goes on.
        let mut found: Option<(Vec<Vec<String>>, usize)> = None;
        match &t[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some(name), Some((Tok::Open, _))) = (ident(i + 1), t.get(i + 2)) {
                    inline.push((name.to_string(), depth + 1));
                    i += 2;
                    continue;
                }
            }
            Tok::Ident(word) if word == "use" => {
                let mut pos = i + 1;
                let mut paths = Vec::new();
                use_tree(&t, &mut pos, &[], &mut paths);
                found = Some((paths, pos));
            }
            Tok::Ident(word) => {
                let after_sep = i > 0 && t[i - 1].0 == Tok::PathSep;
                let visibility = i > 0 && ident(i - 1) == Some("in");
                let starts = matches!(word.as_str(), "crate" | "super" | "self") || {
                    let mut m = here(&inline);
                    m.push(word.clone());
                    is_module(&m)
                };
                if starts
                    && !after_sep
                    && !visibility
                    && t.get(i + 1).map(|x| &x.0) == Some(&Tok::PathSep)
                {
                    let mut path = vec![word.clone()];
                    let mut k = i + 1;
                    while t.get(k).map(|x| &x.0) == Some(&Tok::PathSep) {
                        match ident(k + 1) {
                            Some(s) => path.push(s.to_string()),
                            None => break,
                        }
                        k += 2;
                    }
                    found = Some((vec![path], k));
                }
            }
            _ => {}
        }
        match found {
            Some((paths, next)) => {
                let (line, module) = (t[i].1, here(&inline));
                out.extend(paths.into_iter().map(|path| Reference {
                    line,
                    module: module.clone(),
                    path,
                }));
                i = next;
            }
            None => i += 1,
        }
    }
    out
}

/// Expands one `use` tree from `pos` into whole paths, leaving `pos` past it.
fn use_tree(t: &[(Tok, usize)], pos: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    while let Some((tok, _)) = t.get(*pos) {
        match tok {
            Tok::Ident(s) if s == "as" => {
                *pos += 2;
                break;
            }
            Tok::Ident(s) => {
                path.push(s.clone());
                *pos += 1;
            }
            Tok::PathSep => *pos += 1,
            Tok::Open => {
                *pos += 1;
                while let Some((tok, _)) = t.get(*pos) {
                    match tok {
                        Tok::Close => {
                            *pos += 1;
                            break;
                        }
                        Tok::Comma => *pos += 1,
                        _ => use_tree(t, pos, &path, out),
                    }
                }
                return;
            }
            Tok::Star => {
                *pos += 1;
                break;
            }
            _ => break,
        }
    }
    if path.len() > prefix.len() {
        out.push(path);
    }
}

/// The crate's files by module path (`src/main.rs` is the root, `[]`).
fn modules() -> BTreeMap<Vec<String>, String> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("read a src/ entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let root = src();
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&root).expect("under src/");
        let mut parts: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "main")) {
            parts.pop();
        }
        out.insert(parts, format!("src/{}", rel.display()));
    }
    out
}

/// An import: where it is written, the path, and the file it names.
#[derive(Debug)]
struct Edge {
    from: String,
    line: usize,
    path: String,
    to: String,
}

/// Every import between two files of the crate.
fn edges() -> Vec<Edge> {
    let mods = modules();
    let is_module = |m: &[String]| mods.contains_key(m);
    let mut out = Vec::new();
    for (module, file) in &mods {
        let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        for r in references(&text, module, &is_module) {
            let Some(absolute) = absolute(&r.module, &r.path, &is_module) else {
                continue;
            };
            let to = (0..=absolute.len())
                .rev()
                .find_map(|n| mods.get(&absolute[..n]))
                .expect("the root is a module");
            if to != file {
                out.push(Edge {
                    from: file.clone(),
                    line: r.line,
                    path: r.path.join("::"),
                    to: to.clone(),
                });
            }
        }
    }
    out
}

/// `path`, written in module `here`, from the crate root; `None` for another crate's.
fn absolute(
    here: &[String],
    path: &[String],
    is_module: &dyn Fn(&[String]) -> bool,
) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    match first {
        "crate" => Some(path[1..].to_vec()),
        "self" => Some([here, &path[1..]].concat()),
        "super" => {
            let up = path.iter().take_while(|s| *s == "super").count();
            let base = &here[..here.len().saturating_sub(up)];
            Some([base, &path[up..]].concat())
        }
        _ => {
            let child = [here, &path[..1]].concat();
            is_module(&child).then(|| [here, path].concat())
        }
    }
}

/// The lines of ARCHITECTURE.md's fenced block whose info string is `name`.
fn block(name: &str) -> Vec<String> {
    let text = fs::read_to_string(src().join("ARCHITECTURE.md")).expect("read src/ARCHITECTURE.md");
    let fence = format!("```{name}");
    let mut lines = text.lines().skip_while(|l| l.trim() != fence);
    assert!(
        lines.next().is_some(),
        "src/ARCHITECTURE.md: no ```{name} block"
    );
    lines
        .take_while(|l| l.trim() != "```")
        .map(str::to_string)
        .collect()
}

/// Whether `file` (`src/...`) is what `entry` (relative to src/: a file, `dir/`, or `*`) names.
fn names(entry: &str, file: &str) -> bool {
    let rel = file.strip_prefix("src/").unwrap_or(file);
    entry == "*" || entry == rel || (entry.ends_with('/') && rel.starts_with(entry))
}

/// The floors, top first, each a name and its entries; every entry must name some file.
fn floors(files: &[String]) -> Vec<(String, Vec<String>)> {
    let floors: Vec<(String, Vec<String>)> = block("floors")
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, entries) = l.split_once(':').unwrap_or_else(|| {
                panic!("src/ARCHITECTURE.md floors: {l:?} is not `name: files`")
            });
            let entries = entries.split_whitespace().map(str::to_string).collect();
            (name.trim().to_string(), entries)
        })
        .collect();
    for (name, entries) in &floors {
        for entry in entries {
            assert!(
                files.iter().any(|f| names(entry, f)),
                "src/ARCHITECTURE.md floors: {name}: {entry} names no file in src/"
            );
        }
    }
    floors
}

/// The floor a file stands on (0 the top): its most particular entry decides, `*` last.
fn floor_of(floors: &[(String, Vec<String>)], file: &str) -> usize {
    let rank = |e: &str| if e == "*" { 0 } else { e.len() + 1 };
    floors
        .iter()
        .enumerate()
        .flat_map(|(n, (_, entries))| entries.iter().map(move |e| (n, e)))
        .filter(|(_, e)| names(e, file))
        .max_by_key(|(_, e)| rank(e))
        .map(|(n, _)| n)
        .unwrap_or_else(|| panic!("src/ARCHITECTURE.md floors: no floor for {file}"))
}

/// The pending entry that excuses an import from `from` to `to`, if any.
fn pending(from: &str, to: &str) -> bool {
    PENDING.iter().any(|(f, t, _)| *f == from && *t == to)
}

fn all_files() -> Vec<String> {
    modules().into_values().collect()
}

#[test]
fn imports_run_down_the_floors() {
    let files = all_files();
    let floors = floors(&files);
    let mut wrong = Vec::new();
    for e in edges() {
        let (from, to) = (floor_of(&floors, &e.from), floor_of(&floors, &e.to));
        if to < from && !pending(&e.from, &e.to) {
            wrong.push(format!(
                "{}:{}: {} names {} on the floor `{}`, above its own `{}`",
                e.from, e.line, e.path, e.to, floors[to].0, floors[from].0
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run back up (src/ARCHITECTURE.md draws the floors):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn pending_exceptions_are_still_needed() {
    let edges = edges();
    let stale: Vec<String> = PENDING
        .iter()
        .filter(|(f, t, _)| !edges.iter().any(|e| e.from == *f && e.to == *t))
        .map(|(f, t, why)| format!("{f} -> {t} ({why})"))
        .collect();
    assert!(
        stale.is_empty(),
        "tests/architecture.rs PENDING names imports that are gone; remove them:\n{}",
        stale.join("\n")
    );
}

/// `commands/run/backup.rs` -> `run`; `commands/list.rs` -> `list`.
fn command_of(file: &str) -> Option<String> {
    let rel = file.strip_prefix("src/commands/")?;
    let first = rel.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_string())
}

#[test]
fn commands_share_only_through_the_shared_modules() {
    let shared = block("shared-commands");
    let shared: Vec<&str> = shared.iter().flat_map(|l| l.split_whitespace()).collect();
    let files = all_files();
    for s in &shared {
        assert!(
            files.iter().any(|f| names(s, f)),
            "src/ARCHITECTURE.md shared-commands: {s} names no file in src/"
        );
    }
    let mut wrong = Vec::new();
    for e in edges() {
        let (Some(a), Some(b)) = (command_of(&e.from), command_of(&e.to)) else {
            continue;
        };
        if a != b && !shared.iter().any(|s| names(s, &e.to)) && !pending(&e.from, &e.to) {
            wrong.push(format!("{}:{}: {} names {}", e.from, e.line, e.path, e.to));
        }
    }
    assert!(
        wrong.is_empty(),
        "a command imports another (what they share goes to a module of src/ARCHITECTURE.md's shared-commands):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_circle_below_the_commands() {
    let files = all_files();
    let floors = floors(&files);
    let processes = floors
        .iter()
        .position(|(name, _)| name == "processes")
        .expect("src/ARCHITECTURE.md floors: a `processes` floor");
    let below = |f: &str| floor_of(&floors, f) > processes;
    // A folder is one module to the rest (its mod.rs hands on what its files define, and they
    // use its types), so it is one node here, as the floors draw it.
    let node = |f: &str| match f.strip_prefix("src/").and_then(|r| r.split_once('/')) {
        Some((dir, _)) => format!("src/{dir}/"),
        None => f.to_string(),
    };
    let mut graph: BTreeMap<String, BTreeMap<String, (usize, String)>> = BTreeMap::new();
    for e in edges() {
        let (from, to) = (node(&e.from), node(&e.to));
        if below(&e.from) && below(&e.to) && from != to {
            graph
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert((e.line, format!("{}: {}", e.from, e.path)));
        }
    }
    // Depth-first: a file met again while it is still on the path closes a circle.
    fn visit(
        f: &str,
        graph: &BTreeMap<String, BTreeMap<String, (usize, String)>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == f) {
            let mut circle = path[at..].to_vec();
            circle.push(f.to_string());
            return Some(circle);
        }
        if !done.insert(f.to_string()) {
            return None;
        }
        path.push(f.to_string());
        for next in graph.get(f).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for f in graph.keys() {
        if let Some(circle) = visit(f, &graph, &mut Vec::new(), &mut done) {
            let steps: Vec<String> = circle
                .windows(2)
                .map(|w| {
                    let (line, path) = &graph[&w[0]][&w[1]];
                    let (file, path) = path.split_once(": ").expect("file: path");
                    format!("{file}:{line}: {path} -> {}", w[1])
                })
                .collect();
            panic!(
                "a circle of imports below the commands:\n{}",
                steps.join("\n")
            );
        }
    }
}

#[test]
fn the_reader_sees_through_comments_strings_and_groups() {
    let text = r##"
//! Mentions crate::not_this in a comment.
use crate::alpha::{self, beta::{Gamma, delta}};
use super::sibling;
use child::Thing;
const S: &str = "crate::not_this either";
const R: &str = r#"crate::nor_this"#;
pub(in crate::skipped) fn f<'a>(c: char) -> char { if c == '{' { crate::epsilon::go() } else { '}' } }
#[cfg(test)]
mod tests {
    use super::super::uncle;
}
fn g() { crate::zeta::h() }
"##;
    let module: Vec<String> = vec!["top".into(), "me".into()];
    let is_module = |m: &[String]| m == ["top", "me", "child"];
    let found: Vec<(usize, String, String)> = references(text, &module, &is_module)
        .into_iter()
        .map(|r| {
            let abs = absolute(&r.module, &r.path, &is_module).expect("ours");
            (r.line, r.path.join("::"), abs.join("::"))
        })
        .collect();
    let want = [
        (3, "crate::alpha::self", "alpha::self"),
        (3, "crate::alpha::beta::Gamma", "alpha::beta::Gamma"),
        (3, "crate::alpha::beta::delta", "alpha::beta::delta"),
        (4, "super::sibling", "top::sibling"),
        (5, "child::Thing", "top::me::child::Thing"),
        (8, "crate::epsilon::go", "epsilon::go"),
        (11, "super::super::uncle", "top::uncle"),
        (13, "crate::zeta::h", "zeta::h"),
    ];
    let want: Vec<(usize, String, String)> = want
        .iter()
        .map(|(l, p, a)| (*l, p.to_string(), a.to_string()))
        .collect();
    assert_eq!(found, want);
}
