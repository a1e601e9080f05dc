//! `-o key=value` options, as restic has them: each key names the backend
//! it is for (`s3.region`), except `connections`, which every network
//! backend takes. An unknown key is an error, never ignored; a key for
//! another backend than the repository's is allowed (a profile may set
//! options for several), and has no effect.

use std::collections::BTreeMap;
use std::fmt;

/// Every key, with what it does (for errors and `--help`).
pub const KNOWN_OPTIONS: &[(&str, &str)] = &[
    (
        "connections",
        "requests in flight to a network backend (default 5)",
    ),
    ("rest.connections", "as connections, for rest: only"),
    ("sftp.connections", "as connections, for sftp: only"),
    ("s3.connections", "as connections, for s3: only"),
    ("rclone.connections", "as connections, for rclone: only"),
    (
        "s3.region",
        "the bucket's region (default: from the AWS configuration, else us-east-1)",
    ),
    (
        "s3.storage-class",
        "storage class for data packs, e.g. STANDARD_IA",
    ),
    (
        "s3.bucket-lookup",
        "auto, dns (virtual-host style) or path (path style, MinIO and most self-hosted stores)",
    ),
    (
        "sftp.command",
        "the whole command that starts the SFTP session, e.g. 'ssh -p 2222 user@host -s sftp'",
    ),
    (
        "sftp.args",
        "extra arguments for ssh, e.g. '-i ~/.ssh/backup_key'",
    ),
    (
        "rclone.program",
        "the rclone program to run (default rclone)",
    ),
    (
        "rclone.args",
        "arguments before the remote (default 'serve restic --addr 127.0.0.1:0')",
    ),
];

/// A bad `-o` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError(pub String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

/// The validated `-o` options; a later `-o` for the same key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedOptions {
    values: BTreeMap<String, String>,
}

impl ExtendedOptions {
    /// Parse `key=value` strings.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<ExtendedOptions, OptionError> {
        let mut opts = ExtendedOptions::default();
        for item in items {
            let item = item.as_ref();
            let (key, value) = item.split_once('=').ok_or_else(|| {
                OptionError(format!("invalid option {item:?}: expected key=value"))
            })?;
            opts.set(key.trim(), value)?;
        }
        Ok(opts)
    }

    /// Set one option, checking the key and (where it has one) the value's form.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), OptionError> {
        if !KNOWN_OPTIONS.iter().any(|(k, _)| *k == key) {
            let known: Vec<&str> = KNOWN_OPTIONS.iter().map(|(k, _)| *k).collect();
            return Err(OptionError(format!(
                "unknown option {key:?} (known: {})",
                known.join(", ")
            )));
        }
        if key.ends_with("connections") {
            match value.parse::<usize>() {
                Ok(n) if (1..=128).contains(&n) => {}
                _ => {
                    return Err(OptionError(format!(
                        "invalid option {key}={value:?}: a number from 1 to 128"
                    )))
                }
            }
        }
        if key == "s3.bucket-lookup" && !matches!(value, "auto" | "dns" | "path") {
            return Err(OptionError(format!(
                "invalid option s3.bucket-lookup={value:?}: auto, dns or path"
            )));
        }
        self.values.insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `connections`, or `<scheme>.connections` when the caller asks for one.
    pub fn connections_for(&self, scheme: &str) -> Option<usize> {
        self.get(&format!("{scheme}.connections"))
            .or_else(|| self.get("connections"))
            .and_then(|v| v.parse().ok())
    }

    /// The generic `connections`.
    pub fn connections(&self) -> Option<usize> {
        self.get("connections").and_then(|v| v.parse().ok())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
