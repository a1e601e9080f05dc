use super::copy::FromRepoArgs;
use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::config::Config;
use cairn_repository::format::crypto::MasterKey;
use cairn_repository::{Kind, Repository};
use clap::Args;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Share the chunker parameters and blob ids of the --from-repo
    /// repository (its id key, chunker seed and chunk sizes; the new
    /// repository still gets its own encryption key), so that `cairn copy`
    /// between the two skips data the target already has without reading it
    #[arg(long, requires = "from_repo")]
    pub copy_chunker_params: bool,
    #[command(flatten)]
    pub from: FromRepoArgs,
}

pub fn run(g: &GlobalOptions, a: InitArgs) -> Result<i32> {
    let repo = if a.copy_chunker_params {
        init_from(g, &a.from)?
    } else {
        if a.from.from_repo.is_some() && std::env::var_os("CAIRN_FROM_REPOSITORY").is_none() {
            return Err(Error::usage(
                "--from-repo is only used with --copy-chunker-params",
            ));
        }
        crate::repo::init(g)?
    };
    if g.json {
        crate::output::json_line(&serde_json::json!({
            "message_type": "initialized",
            "id": repo.config().id.to_hex(),
            "repository": repo.location(),
            "chunker_params_from": a.copy_chunker_params.then(|| a.from.from_repo.clone()),
        }));
    } else if !g.quiet {
        println!(
            "created cairn repository {} at {}",
            repo.config().id.short(),
            repo.location()
        );
        if a.copy_chunker_params {
            println!(
                "with the chunker parameters and blob ids of {}",
                a.from.from_repo.as_deref().unwrap_or_default()
            );
        }
        println!(
            "Please note that knowledge of your password is required to access the repository."
        );
        println!("Losing your password means that your data is irrecoverably lost.");
    }
    Ok(0)
}

/// A new repository with a fresh data key and id, but the source's id key,
/// chunker seed and chunk sizes.
fn init_from(g: &GlobalOptions, from: &FromRepoArgs) -> Result<Arc<Repository>> {
    let backend = crate::repo::backend(g)?;
    if backend.exists(FileKind::Config, "config")? {
        return Err(Error::new(
            Kind::AlreadyInitialized,
            format!("repository {} already exists", backend.location()),
        ));
    }
    let source = from.open(g)?;
    let fresh = MasterKey::random();
    let key = MasterKey {
        data_key: fresh.data_key,
        id_key: source.key().id_key,
        chunker_seed: source.key().chunker_seed,
    };
    let mut config = Config::new();
    config.chunker = source.config().chunker;
    let pw = crate::secret::repository_password(g, true)?;
    Ok(Arc::new(Repository::init_with(
        backend,
        &pw,
        crate::repo::open_options(g)?,
        key,
        config,
    )?))
}
