//! Which stream carries an encrypted or plain host, and what a decrypted stream leaves for zbk
//! to carry itself: zfs refuses `send -p` of an encrypted dataset unless the stream is raw, so
//! the `zbk:*` stamps of a decrypted send are set on the copies one by one.

use super::{Send, Tree};
use crate::listing::{own, Listing};
use crate::stamp::SCHEMA;
use std::collections::BTreeMap;

/// How one host's snapshots travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// `zfs send -p`: a host that is not encrypted, its properties in the stream.
    Plain,
    /// `zfs send -w -p`: the blocks as they are on disk, still encrypted, with the properties;
    /// the target stores and expires them without ever holding the key.
    Raw,
    /// `zfs send` of an encrypted host, decrypted on the way; the stamps follow by `zfs set`.
    Decrypted,
}

/// What `--raw` and `--plaintext` ask of one host, given whether it is encrypted here and
/// whether the target's hosts dataset encrypts what it receives.
pub fn choose(
    raw: bool,
    plaintext: bool,
    encrypted: bool,
    target_encrypts: bool,
) -> Result<Stream, &'static str> {
    match (raw, encrypted) {
        (true, true) => Ok(Stream::Raw),
        (true, false) => Err(
            "--raw: it is not encrypted here, so a raw stream of it would be plaintext; only hosts under a dataset made with `zbk init --encrypt` can be sent raw",
        ),
        (false, false) => Ok(Stream::Plain),
        (false, true) if plaintext || target_encrypts => Ok(Stream::Decrypted),
        (false, true) => Err(
            "it is encrypted here and the target would store it decrypted: replicate with --raw (the copy stays encrypted and the target never needs the key), or with --plaintext to store it readable there",
        ),
    }
}

/// A receive that refused a stream whose kind does not match the copy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// A copy received raw takes only raw streams: a decrypted one needs the key it never has
    /// there.
    RawCopy,
    /// A decrypted copy never takes a raw stream.
    DecryptedCopy,
}

/// What to do about a mismatch of the copy `dest`.
pub fn mismatch(kind: Mismatch, dest: &str) -> String {
    match kind {
        Mismatch::RawCopy => format!(
            "{dest} is a raw copy, still encrypted: it takes only raw streams; replicate it with --raw, or destroy it on the target (`zfs destroy -r {dest}`) and the next run sends it in full"
        ),
        Mismatch::DecryptedCopy => format!(
            "{dest} is a decrypted copy: a raw stream cannot go on from it; replicate it with --plaintext as before, or destroy it on the target (`zfs destroy -r {dest}`) and the next run sends it raw in full"
        ),
    }
}

/// The snapshots one send creates on the target, oldest first.
pub fn carried<'a>(source: &'a Tree, send: &Send) -> Vec<&'a str> {
    let names = source.snapshots.iter().map(|s| s.name.as_str());
    match send {
        Send::Full { snapshot } => names.filter(|n| n == snapshot).collect(),
        Send::Incremental { from, to } => names
            .skip_while(|n| n != from)
            .skip(1)
            .scan(false, |past_to, n| {
                if *past_to {
                    return None;
                }
                *past_to = n == to;
                Some(n)
            })
            .collect(),
    }
}

/// The zbk properties set on each dataset and snapshot of `zfs get -H -p -r -s local -o
/// name,property,value,source SCHEMA`, by name, in schema order.
pub fn stamps(output: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let listing = Listing::parse(output, &SCHEMA);
    listing
        .names
        .iter()
        .map(|(name, props)| {
            let set = SCHEMA
                .iter()
                .filter_map(|p| own(props, p).map(|v| (p.to_string(), v.to_string())))
                .collect();
            (name.to_string(), set)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Snap;
    use super::*;

    #[test]
    fn raw_only_for_encrypted_hosts_and_plaintext_only_when_asked_or_reencrypted() {
        assert_eq!(choose(true, false, true, false), Ok(Stream::Raw));
        assert!(choose(true, false, false, true)
            .unwrap_err()
            .starts_with("--raw"));
        assert_eq!(choose(false, false, false, false), Ok(Stream::Plain));
        assert!(choose(false, false, true, false)
            .unwrap_err()
            .contains("--plaintext"));
        assert_eq!(choose(false, true, true, false), Ok(Stream::Decrypted));
        assert_eq!(choose(false, false, true, true), Ok(Stream::Decrypted));
    }

    #[test]
    fn a_stream_of_the_other_kind_is_explained() {
        let raw = mismatch(Mismatch::RawCopy, "off/hosts/a");
        assert!(
            raw.contains("is a raw copy") && raw.contains("--raw"),
            "{raw}"
        );
        let plain = mismatch(Mismatch::DecryptedCopy, "off/hosts/a");
        assert!(plain.contains("is a decrypted copy"), "{plain}");
    }

    #[test]
    fn a_send_carries_its_end_and_what_lies_between() {
        let tree = Tree {
            dataset: "t/hosts/a".into(),
            snapshots: ["s1", "s2", "s3", "s4"]
                .iter()
                .map(|n| Snap {
                    name: n.to_string(),
                    guid: None,
                    createtxg: 0,
                    created: None,
                    expires: None,
                    offsite: None,
                    held: false,
                })
                .collect(),
            ..Tree::default()
        };
        let full = Send::Full {
            snapshot: "s1".into(),
        };
        assert_eq!(carried(&tree, &full), ["s1"]);
        let inc = Send::Incremental {
            from: "s1".into(),
            to: "s3".into(),
        };
        assert_eq!(carried(&tree, &inc), ["s2", "s3"]);
    }

    #[test]
    fn the_schema_is_carried_in_order() {
        let listing = "t/hosts/a\tzbk:retired\t2026-01-01T00:00:00Z\tlocal\n\
            t/hosts/a@s1\tzbk:tier\tdefault\tlocal\n\
            t/hosts/a@s1\tzbk:expires\t2026-02-01T00:00:00Z\tlocal\n\
            t/hosts/a@s1\tcom.example:x\ty\tlocal\n";
        let props = stamps(listing);
        let names: Vec<&str> = props["t/hosts/a@s1"]
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(names, ["zbk:expires", "zbk:tier"]);
        assert_eq!(props["t/hosts/a"][0].0, "zbk:retired");
    }
}
