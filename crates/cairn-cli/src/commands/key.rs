//! `cairn key list|add|remove|passwd`: manage the passwords (key files)
//! that open the repository.

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::json_line;
use crate::secret::{Secret, SecretSource};
use cairn_engine::keys;
use cairn_repository::Repository;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List the keys (`*` marks the one the given password opens)
    List,
    /// Add a key: another password that opens the repository
    Add(NewKeyArgs),
    /// Remove a key (not the one in use, and never the last one)
    Remove(RemoveArgs),
    /// Change the password: add a key for the new one, then remove the current key
    Passwd(NewKeyArgs),
}

#[derive(Args, Debug)]
pub struct NewKeyArgs {
    /// Read the new password from the first line of this file
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
    /// Run this shell command and use the first line it prints as the new password
    #[arg(long, conflicts_with = "new_password_file")]
    pub new_password_command: Option<String>,
    /// Host name recorded in the new key (default: this host)
    #[arg(long)]
    pub host: Option<String>,
    /// User name recorded in the new key (default: the current user)
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The key's id, or a unique prefix of it (see `cairn key list`)
    pub key_id: String,
}

pub fn run(g: &GlobalOptions, a: KeyArgs) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    match a.command {
        KeyCommand::List => list(g, &repo),
        KeyCommand::Add(n) => {
            let (pw, host, user) = new_key(&n)?;
            let id = keys::add_key(&repo, &pw, crate::repo::open_options(g)?.kdf, &host, &user)?;
            if g.json {
                json_line(&json!({"message_type": "key_added", "id": id.to_hex()}));
            } else if !g.quiet {
                println!("saved new key with id {}", id.short());
            }
            Ok(0)
        }
        KeyCommand::Remove(r) => {
            let id = keys::find_key(&repo, &r.key_id)?;
            keys::remove_key(&repo, &id)?;
            if g.json {
                json_line(&json!({"message_type": "key_removed", "id": id.to_hex()}));
            } else if !g.quiet {
                println!("removed key {}", id.short());
            }
            Ok(0)
        }
        KeyCommand::Passwd(n) => {
            let (pw, host, user) = new_key(&n)?;
            let (new, old) =
                keys::change_password(&repo, &pw, crate::repo::open_options(g)?.kdf, &host, &user)?;
            if g.json {
                json_line(
                    &json!({"message_type": "password_changed", "id": new.to_hex(), "removed": old.to_hex()}),
                );
            } else if !g.quiet {
                println!(
                    "saved new key with id {}, removed the old key {}",
                    new.short(),
                    old.short()
                );
            }
            Ok(0)
        }
    }
}

/// The new password (asked twice at a terminal), host and user.
fn new_key(n: &NewKeyArgs) -> Result<(Secret, String, String)> {
    let pw = crate::secret::secret(
        &SecretSource {
            env: None,
            file: n.new_password_file.as_deref(),
            command: n.new_password_command.as_deref(),
            command_name: None,
            options: "give the new password with --new-password-file or --new-password-command",
            prompt: "enter new password: ",
        },
        true,
    )?;
    let host = n.host.clone().unwrap_or_else(crate::repo::hostname);
    let user = n.user.clone().unwrap_or_else(crate::repo::username);
    Ok((pw, host, user))
}

fn list(g: &GlobalOptions, repo: &Repository) -> Result<i32> {
    let list = keys::list_keys(repo)?;
    let created = |k: &keys::KeyInfo| {
        k.created
            .map(|c| {
                c.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default()
    };
    if g.json {
        // restic's field names.
        let v: Vec<_> = list
            .iter()
            .map(|k| {
                let mut v = json!({
                    "current": k.current,
                    "id": k.id.to_hex(),
                    "userName": k.username,
                    "hostName": k.hostname,
                    "created": k.created.map(|c| crate::output::json_time(&c)),
                });
                if let Some(e) = &k.error {
                    v["error"] = json!(e);
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string(&v).expect("json"));
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|k| {
            let id = format!("{}{}", if k.current { "*" } else { " " }, k.id.short());
            match &k.error {
                Some(e) => [
                    id,
                    String::new(),
                    String::new(),
                    format!("(unreadable: {e})"),
                ],
                None => [id, k.username.clone(), k.hostname.clone(), created(k)],
            }
        })
        .collect();
    let header = [
        " ID".to_string(),
        "User".into(),
        "Host".into(),
        "Created".into(),
    ];
    let mut w = [0usize; 4];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |r: &[String; 4]| {
        format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2]
        )
    };
    println!("{}", line(&header).trim_end());
    println!("{}", "-".repeat(w.iter().sum::<usize>() + 6));
    for r in &rows {
        println!("{}", line(r).trim_end());
    }
    Ok(0)
}
