//! Credentials and region from the standard AWS sources, against s3s-fs
//! (which checks signatures): the environment variables, then a named
//! profile in the shared files. Its own test binary, because it sets
//! environment variables: it does so before any thread starts, and no
//! other test shares the process.

use cairn_backend::{Backend, ErrorKind, FileKind};
use cairn_backend_s3::{S3Backend, S3Config};
use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

const VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
];

#[test]
fn credentials_from_the_environment_and_from_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    for v in VARS {
        std::env::remove_var(v);
    }
    // Never ask an instance metadata service: this is not a cloud machine.
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let config_file = dir.path().join("config");
    let credentials_file = dir.path().join("credentials");
    std::env::set_var("AWS_CONFIG_FILE", &config_file);
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials_file);

    let Some(server) = S3Server::s3s_fs(&dir.path().join("s3s")) else {
        return;
    };
    let cfg = S3Config {
        endpoint: Some(server.endpoint()),
        bucket: "env".into(),
        prefix: "repo".into(),
        ..Default::default()
    };

    // 1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let b = S3Backend::open(cfg.clone()).unwrap();
    b.create().unwrap();
    b.write(FileKind::Config, "config", b"from env").unwrap();
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz");
    let e = S3Backend::open(cfg.clone())
        .unwrap()
        .read(FileKind::Config, "config")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied, "{}", e.message);
    assert!(!e.message.contains("not-the-secret-xyz"), "{}", e.message);
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");

    // 2. A named profile in the shared files (the region from it too).
    std::fs::write(
        &config_file,
        "[default]\nregion = us-east-1\n[profile cairn]\nregion = eu-central-1\n",
    )
    .unwrap();
    std::fs::write(
        &credentials_file,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\
             [cairn]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    std::env::set_var("AWS_PROFILE", "cairn");
    let b = S3Backend::open(cfg.clone()).unwrap();
    assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"from env");
    assert_eq!(b.region(), "eu-central-1");

    // 3. The environment's region wins over the profile's, the option over both.
    std::env::set_var("AWS_DEFAULT_REGION", "ap-south-1");
    assert_eq!(S3Backend::open(cfg.clone()).unwrap().region(), "ap-south-1");
    let mut with_option = cfg.clone();
    with_option.region = Some("sa-east-1".into());
    assert_eq!(S3Backend::open(with_option).unwrap().region(), "sa-east-1");

    // 4. The default profile's credentials are refused by the server.
    std::env::remove_var("AWS_PROFILE");
    let e = S3Backend::open(cfg)
        .unwrap()
        .stat(FileKind::Config, "config")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied, "{}", e.message);
}
