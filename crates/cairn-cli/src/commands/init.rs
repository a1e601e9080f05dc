use crate::cli::GlobalOptions;
use cairn_repository::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct InitArgs {}

pub fn run(g: &GlobalOptions, _a: InitArgs) -> Result<i32> {
    let repo = crate::repo::init(g)?;
    if g.json {
        crate::output::json_line(&serde_json::json!({
            "message_type": "initialized",
            "id": repo.config().id.to_hex(),
            "repository": repo.location(),
        }));
    } else if !g.quiet {
        println!(
            "created cairn repository {} at {}",
            repo.config().id.short(),
            repo.location()
        );
        println!(
            "Please note that knowledge of your password is required to access the repository."
        );
        println!("Losing your password means that your data is irrecoverably lost.");
    }
    Ok(0)
}
