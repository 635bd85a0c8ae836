//! How `zbk diff` writes changes out: escaped text lines for a terminal, and JSON objects
//! that keep every path exact, UTF-8 or not.

use crate::diff::{Change, DirStat, Entry};
use crate::text::human_bytes;
use serde::Serialize;

/// A name for a terminal: printable UTF-8 as it is; control characters, the backslash and
/// bytes that are not UTF-8 as a backslash and three octal digits (`\012` for a newline).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

/// One line of the text form: change, type, size, path (` -> ` and the new path for a rename).
/// The size is the one after the change, or before it for a deletion.
pub fn text_line(e: &Entry) -> String {
    let size = match e.change {
        Change::Deleted => e.size_before,
        _ => e.size_after,
    };
    let mut line = format!(
        "{} {} {:>6}  {}",
        e.change.symbol(),
        e.kind,
        size.map_or_else(|| "-".to_string(), human_bytes),
        escape(&e.path)
    );
    if let Some(to) = &e.to {
        line.push_str(" -> ");
        line.push_str(&escape(to));
    }
    line
}

/// One object of `zbk diff --json`, documented in zbk-diff(8). A path is a JSON string when it
/// is UTF-8 (newlines and all, escaped as JSON escapes them); otherwise `path` is null and
/// `path_bytes` holds its bytes.
#[derive(Serialize, Debug, PartialEq)]
pub struct JsonEntry {
    change: String,
    #[serde(rename = "type")]
    kind: String,
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_bytes: Option<Vec<u8>>,
    size_before: Option<u64>,
    size_after: Option<u64>,
}

/// A path as JSON: the string when it is UTF-8, else null and the bytes.
fn json_path(bytes: &[u8]) -> (Option<String>, Option<Vec<u8>>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(bytes.to_vec())),
    }
}

pub fn json_entry(e: &Entry) -> JsonEntry {
    let (path, path_bytes) = json_path(&e.path);
    let (to, to_bytes) = match &e.to {
        Some(to) => {
            let (s, b) = json_path(to);
            (Some(s), b)
        }
        None => (None, None),
    };
    JsonEntry {
        change: e.change.symbol().to_string(),
        kind: e.kind.to_string(),
        path,
        path_bytes,
        to,
        to_bytes,
        size_before: e.size_before,
        size_after: e.size_after,
    }
}

/// One object of `zbk diff --stat --json`: the directory as `json_entry` gives a path
/// (`dir`, or null and `dir_bytes`), then its figures.
#[derive(Serialize, Debug, PartialEq)]
pub struct JsonStat<'a> {
    dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dir_bytes: Option<Vec<u8>>,
    #[serde(flatten)]
    stat: &'a DirStat,
}

pub fn json_stat<'a>(dir: &[u8], stat: &'a DirStat) -> JsonStat<'a> {
    let (dir, dir_bytes) = json_path(dir);
    JsonStat {
        dir,
        dir_bytes,
        stat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped_in_text_and_exact_in_json() {
        assert_eq!(escape(b"caf\xc3\xa9 \\ \n\xff"), "café \\134 \\012\\377");
        let e = Entry {
            change: Change::Renamed,
            kind: 'F',
            path: b"/a\nb".to_vec(),
            to: Some(b"/bad\xff".to_vec()),
            size_before: Some(2048),
            size_after: Some(2048),
        };
        assert_eq!(text_line(&e), "R F   2.0K  /a\\012b -> /bad\\377");
        let json = serde_json::to_string(&json_entry(&e)).unwrap();
        assert_eq!(
            json,
            r#"{"change":"R","type":"F","path":"/a\nb","to":null,"to_bytes":[47,98,97,100,255],"size_before":2048,"size_after":2048}"#
        );
        let plain = Entry {
            change: Change::Deleted,
            to: None,
            path: b"/x".to_vec(),
            size_after: None,
            ..e
        };
        assert_eq!(text_line(&plain), "- F   2.0K  /x");
        assert_eq!(
            serde_json::to_string(&json_entry(&plain)).unwrap(),
            r#"{"change":"-","type":"F","path":"/x","size_before":2048,"size_after":null}"#
        );
    }

    #[test]
    fn a_directory_sum_is_one_json_object() {
        let stat = DirStat {
            modified: 1,
            bytes: 3,
            ..DirStat::default()
        };
        assert_eq!(
            serde_json::to_string(&json_stat(b"/", &stat)).unwrap(),
            r#"{"dir":"/","created":0,"deleted":0,"modified":1,"metadata":0,"renamed":0,"bytes":3}"#
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config("src/proptest-regressions/diff.txt"))]

        #[test]
        fn diff_names_stay_on_their_line(name in prop::collection::vec(any::<u8>(), 0..60)) {
            let shown = escape(&name);
            prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
    }
}
