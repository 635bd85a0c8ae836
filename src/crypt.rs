//! Native encryption (OpenZFS): what `zfs get` says of a dataset's key, the key file `zbk init
//! --encrypt` makes and the checks on it, and the words that tell an admin how to load a key.

use crate::listing::{value, Listing};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fmt;

/// The properties `key_states` asks for.
pub const KEY_PROPS: [&str; 5] = [
    "encryption",
    "keystatus",
    "encryptionroot",
    "keylocation",
    "keyformat",
];
/// The cipher of an encryption root zbk makes: OpenZFS's default, authenticated.
pub const CIPHER: &str = "aes-256-gcm";
/// A raw key is exactly this many bytes (OpenZFS refuses any other length).
pub const RAW_KEY_BYTES: usize = 32;
/// The key file's name under `<root>/etc` unless `--key-file` names another.
pub const KEY_FILE: &str = "zbk.key";

/// One dataset's encryption as `zfs get` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    /// `off`, or the cipher.
    pub encryption: String,
    /// `available`, `unavailable`, or `-` when not encrypted.
    pub keystatus: String,
    /// The dataset whose key wraps this one's; `load-key` is given this name.
    pub root: String,
    /// The key's location: `file:///…` or `prompt` (zfs says `none` below an encryption root,
    /// where `Zfs::key_state` puts the root's instead).
    pub location: String,
    pub format: String,
}

impl KeyState {
    pub fn encrypted(&self) -> bool {
        !self.encryption.is_empty() && self.encryption != "off" && self.encryption != "-"
    }

    /// Encrypted, and its key is not loaded: nothing in it can be read, mounted or written.
    pub fn locked(&self) -> bool {
        self.encrypted() && self.keystatus == "unavailable"
    }

    /// The command that loads the key. A copy received with `zbk replicate --raw` has
    /// `keylocation=prompt`: its key file must be named, since the target was never told it.
    pub fn load_hint(&self) -> String {
        if self.location.starts_with("file://") {
            format!("zfs load-key {}", self.root)
        } else {
            format!(
                "zfs load-key -L file:///path/to/{KEY_FILE} {} (the key file of the server it was replicated from)",
                self.root
            )
        }
    }
}

/// Parses `zfs get -H -p -o name,property,value,source KEY_PROPS …` into each dataset's state.
pub fn parse_key_states(output: &str) -> BTreeMap<String, KeyState> {
    let listing = Listing::parse(output, &KEY_PROPS);
    listing
        .names
        .iter()
        .map(|(name, props)| {
            let get = |prop: &str| value(props, prop).unwrap_or_default().to_string();
            let state = KeyState {
                encryption: get("encryption"),
                keystatus: get("keystatus"),
                root: get("encryptionroot"),
                location: get("keylocation"),
                format: get("keyformat"),
            };
            (name.to_string(), state)
        })
        .collect()
}

/// How the key file holds the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// 32 random bytes.
    Raw,
    /// A line of text (8 to 512 bytes) that OpenZFS stretches with PBKDF2; a passphrase file
    /// zbk makes holds 64 random hex digits.
    Passphrase,
}

impl KeyFormat {
    pub fn parse(text: &str) -> Result<KeyFormat> {
        match text {
            "raw" => Ok(KeyFormat::Raw),
            "passphrase" => Ok(KeyFormat::Passphrase),
            other => bail!("{other:?} is not a key format: raw or passphrase"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyFormat::Raw => "raw",
            KeyFormat::Passphrase => "passphrase",
        }
    }

    /// The bytes of a new key file made from 32 random bytes.
    pub fn new_key(self, random: &[u8; RAW_KEY_BYTES]) -> Vec<u8> {
        match self {
            KeyFormat::Raw => random.to_vec(),
            KeyFormat::Passphrase => random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        }
    }
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the key file must be: root's, unreadable to anyone else (the key opens every backup on
/// this server and every offsite copy), and of a length OpenZFS takes for its format.
pub fn check_key_file(uid: u32, mode: u32, len: u64, format: KeyFormat) -> Result<(), String> {
    if uid != 0 || mode & 0o077 != 0 {
        return Err(format!(
            "is owned by uid {uid} with mode {:o}; the key must be root's alone (chown root, chmod 600)",
            mode & 0o7777
        ));
    }
    match format {
        KeyFormat::Raw if len != RAW_KEY_BYTES as u64 => Err(format!(
            "is {len} bytes; keyformat=raw needs exactly {RAW_KEY_BYTES}"
        )),
        KeyFormat::Passphrase if !(8..=513).contains(&len) => {
            Err(format!("is {len} bytes; a passphrase is 8 to 512 bytes"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "tank/hosts\tencryption\taes-256-gcm\t-\n\
        tank/hosts\tkeystatus\tunavailable\t-\n\
        tank/hosts\tencryptionroot\ttank/hosts\t-\n\
        tank/hosts\tkeylocation\tfile:///backup/etc/zbk.key\t-\n\
        tank/hosts\tkeyformat\traw\t-\n\
        tank/hosts/a\tencryption\taes-256-gcm\t-\n\
        tank/hosts/a\tkeystatus\tunavailable\t-\n\
        tank/hosts/a\tencryptionroot\ttank/hosts\t-\n\
        tank/hosts/a\tkeylocation\tnone\t-\n\
        tank/hosts/a\tkeyformat\traw\t-\n\
        tank/plain\tencryption\toff\t-\n\
        tank/plain\tkeystatus\t-\t-\n\
        tank/plain\tencryptionroot\t-\t-\n";

    #[test]
    fn states_are_read_per_dataset_and_name_their_root() {
        let states = parse_key_states(LISTING);
        let a = &states["tank/hosts/a"];
        assert!(a.encrypted() && a.locked());
        assert_eq!(a.root, "tank/hosts");
        assert_eq!(states["tank/hosts"].load_hint(), "zfs load-key tank/hosts");
        let plain = &states["tank/plain"];
        assert!(!plain.encrypted() && !plain.locked());
        assert!(
            !KeyState::default().encrypted(),
            "no answer is no encryption"
        );
    }

    #[test]
    fn a_raw_copy_is_loaded_from_a_named_key_file() {
        let copy = KeyState {
            encryption: CIPHER.into(),
            keystatus: "unavailable".into(),
            root: "off/hosts/a".into(),
            location: "prompt".into(),
            format: "raw".into(),
        };
        assert!(copy
            .load_hint()
            .starts_with("zfs load-key -L file:///path/to/zbk.key off/hosts/a"));
    }

    #[test]
    fn new_keys_have_the_length_their_format_needs() {
        let random = [0xabu8; RAW_KEY_BYTES];
        let raw = KeyFormat::Raw.new_key(&random);
        assert_eq!(raw.len(), 32);
        let pass = KeyFormat::Passphrase.new_key(&random);
        assert_eq!(pass.len(), 64);
        assert!(pass.iter().all(u8::is_ascii_hexdigit));
        for (format, key) in [(KeyFormat::Raw, raw), (KeyFormat::Passphrase, pass)] {
            assert_eq!(check_key_file(0, 0o600, key.len() as u64, format), Ok(()));
        }
    }

    #[test]
    fn a_key_others_can_read_or_of_the_wrong_length_is_refused() {
        let err = check_key_file(0, 0o644, 32, KeyFormat::Raw).unwrap_err();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(check_key_file(1000, 0o600, 32, KeyFormat::Raw).is_err());
        let err = check_key_file(0, 0o600, 33, KeyFormat::Raw).unwrap_err();
        assert!(err.contains("exactly 32"), "{err}");
        assert!(check_key_file(0, 0o400, 7, KeyFormat::Passphrase).is_err());
        assert!(KeyFormat::parse("hex").is_err());
        assert_eq!(
            KeyFormat::parse("passphrase").unwrap(),
            KeyFormat::Passphrase
        );
    }
}
