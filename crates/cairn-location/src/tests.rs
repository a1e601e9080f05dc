use super::*;

fn sftp(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Location {
    Location::Sftp(SftpLocation {
        user: user.map(str::to_owned),
        host: host.into(),
        port,
        path: path.into(),
    })
}

fn s3(endpoint: Option<&str>, bucket: &str, prefix: &str, region: Option<&str>) -> Location {
    Location::S3(S3Location {
        endpoint: endpoint.map(str::to_owned),
        bucket: bucket.into(),
        prefix: prefix.into(),
        region: region.map(str::to_owned),
    })
}

#[test]
fn every_form_parses() {
    let cases: Vec<(&str, Location)> = vec![
        ("/srv/repo", Location::Local("/srv/repo".into())),
        ("relative/repo", Location::Local("relative/repo".into())),
        ("local:/srv/repo", Location::Local("/srv/repo".into())),
        ("local:C:x", Location::Local("C:x".into())),
        ("./a:b", Location::Local("./a:b".into())),
        (
            "rest:http://h:8000/r/",
            Location::Rest("rest:http://h:8000/r/".into()),
        ),
        (
            "sftp:alice@nas:/srv/repo",
            sftp(Some("alice"), "nas", None, "/srv/repo"),
        ),
        ("sftp:nas:repo", sftp(None, "nas", None, "repo")),
        ("sftp:u@[::1]:/r", sftp(Some("u"), "::1", None, "/r")),
        (
            "sftp://alice@nas:2222//srv/repo",
            sftp(Some("alice"), "nas", Some(2222), "/srv/repo"),
        ),
        ("sftp://nas/repo", sftp(None, "nas", None, "repo")),
        (
            "sftp://u@[::1]:22//r",
            sftp(Some("u"), "::1", Some(22), "/r"),
        ),
        (
            "s3:http://127.0.0.1:9000/bucket",
            s3(Some("http://127.0.0.1:9000"), "bucket", "", None),
        ),
        (
            "s3:https://minio.lan/b/some/prefix/",
            s3(Some("https://minio.lan"), "b", "some/prefix", None),
        ),
        (
            "s3:minio.lan:9000/b/p",
            s3(Some("https://minio.lan:9000"), "b", "p", None),
        ),
        ("s3:s3.amazonaws.com/bucket", s3(None, "bucket", "", None)),
        (
            "s3:s3.eu-west-1.amazonaws.com/b/r",
            s3(None, "b", "r", Some("eu-west-1")),
        ),
        (
            "rclone:gdrive:backups/repo",
            Location::Rclone("gdrive:backups/repo".into()),
        ),
        ("rclone:/tmp/x", Location::Rclone("/tmp/x".into())),
    ];
    for (spec, want) in cases {
        assert_eq!(Location::parse(spec).unwrap(), want, "{spec}");
        // What Display prints parses back to the same location.
        let shown = want.to_string();
        if !matches!(want, Location::Rest(_)) {
            assert_eq!(
                Location::parse(&shown).unwrap(),
                want,
                "{spec} shown as {shown}"
            );
        }
    }
}

#[test]
fn bad_locations_say_what_is_wrong() {
    let cases = [
        ("", "empty"),
        ("ftp://host/x", "unknown repository type \"ftp\""),
        ("local:", "no path"),
        ("sftp:host", "no path"),
        ("sftp:host:", "no path"),
        ("sftp:@host:/x", "empty user"),
        ("sftp://host:notaport//x", "not a number"),
        ("sftp://host", "no path"),
        ("s3:", "no bucket"),
        ("s3:http://host", "no bucket"),
        ("s3:ftp://host/b", "http or https"),
        ("s3:host/Bad_Bucket", "not a valid bucket"),
        ("rclone:", "no remote"),
        ("rest:ftp://x/", "http or https"),
    ];
    for (spec, want) in cases {
        let e = Location::parse(spec).unwrap_err().to_string();
        assert!(e.contains(want), "{spec:?}: {e}");
    }
    let e = Location::parse("gopher:x").unwrap_err().to_string();
    for form in ["local:PATH", "rest:", "sftp:", "s3:", "rclone:"] {
        assert!(e.contains(form), "{e}");
    }
}

#[test]
fn passwords_never_show() {
    let loc = Location::parse("rest:https://alice:s3cret@h/r/").unwrap();
    assert!(!loc.to_string().contains("s3cret"), "{loc}");
    let e = Location::parse("s3:ftp://alice:s3cret@h/b")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn options_are_checked() {
    let o = ExtendedOptions::parse(&[
        "s3.region=eu-west-1",
        "connections=8",
        "s3.region=us-east-2",
    ])
    .unwrap();
    assert_eq!(o.get("s3.region"), Some("us-east-2"));
    assert_eq!(o.connections_for("s3"), Some(8));
    let o = ExtendedOptions::parse(&["connections=2", "sftp.connections=3"]).unwrap();
    assert_eq!(o.connections_for("sftp"), Some(3));
    assert_eq!(o.connections_for("s3"), Some(2));
    for (bad, want) in [
        ("s3.regoin=x", "unknown option \"s3.regoin\""),
        ("noequals", "expected key=value"),
        ("connections=0", "1 to 128"),
        ("connections=many", "1 to 128"),
        ("s3.bucket-lookup=virtual", "auto, dns or path"),
    ] {
        let e = ExtendedOptions::parse(&[bad]).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn a_local_location_opens_without_wrappers_and_rest_fails_fast_when_down() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::parse(dir.path().to_str().unwrap()).unwrap();
    let b = open(&loc, &BackendOptions::default()).unwrap();
    b.create().unwrap();
    assert!(dir.path().join("keys").is_dir());

    // Nothing listens on this port: the first request fails at once
    // instead of retrying for a minute.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let loc = Location::parse(&format!("rest:http://127.0.0.1:{port}/repo/")).unwrap();
    let retries = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = retries.clone();
    let opts = BackendOptions {
        retry_notify: Some(Arc::new(move |_, _, _| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })),
        ..BackendOptions::default()
    };
    let b = open(&loc, &opts).unwrap();
    let e = b.list(cairn_backend::FileKind::Snapshot).unwrap_err();
    assert_eq!(
        retries.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a server never reached was retried: {}",
        e.message
    );
    assert!(
        e.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.message
    );
}

#[test]
fn s3_refuses_tls_options_it_cannot_apply() {
    let loc = Location::parse("s3:https://127.0.0.1:9/bucket/prefix").unwrap();
    for opts in [
        BackendOptions {
            insecure_tls: true,
            ..BackendOptions::default()
        },
        BackendOptions {
            tls_client_cert: Some("/nonexistent/client.pem".into()),
            ..BackendOptions::default()
        },
    ] {
        let e = open(&loc, &opts).err().expect("refused");
        assert!(e.message.contains("rest: only"), "{}", e.message);
    }
}
