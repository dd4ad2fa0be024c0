//! The `coffer` binary as operators script it: names from CLI-CONTRACT.md, one clear
//! line on standard error and a non-zero exit on failure.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn coffer(data: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("coffer: ") && err.contains(needle), "{err}");
}

#[test]
fn operator_workflow_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("root");
    fails_with(&coffer(&data, &["tenant", "list"], None), "coffer init");
    ok(&coffer(&data, &["init"], None));
    assert!(ok(&coffer(&data, &["init"], None)).contains("already"));
    ok(&coffer(
        &data,
        &["user", "create", "owner@acme.test", "--password-stdin"],
        Some(b"long enough password\n"),
    ));
    fails_with(
        &coffer(
            &data,
            &["user", "create", "x@acme.test", "--password-stdin"],
            Some(b"short\n"),
        ),
        "at least",
    );
    ok(&coffer(
        &data,
        &[
            "tenant",
            "create",
            "acme",
            "--name",
            "Acme",
            "--owner",
            "owner@acme.test",
        ],
        None,
    ));
    fails_with(
        &coffer(&data, &["tenant", "create", "acme"], None),
        "already exists",
    );
    fails_with(
        &coffer(&data, &["tenant", "create", "../x"], None),
        "tenant slug",
    );
    ok(&coffer(
        &data,
        &["user", "create", "viewer@acme.test"],
        None,
    ));
    ok(&coffer(
        &data,
        &["member", "add", "acme", "viewer@acme.test", "viewer"],
        None,
    ));
    fails_with(
        &coffer(
            &data,
            &["member", "add", "acme", "viewer@acme.test", "boss"],
            None,
        ),
        "unknown role",
    );
    fails_with(
        &coffer(
            &data,
            &["member", "remove", "acme", "owner@acme.test"],
            None,
        ),
        "at least one owner",
    );
    ok(&coffer(
        &data,
        &["member", "remove", "acme", "viewer@acme.test"],
        None,
    ));

    let local = tmp.path().join("quote.txt");
    std::fs::write(&local, b"quote body").unwrap();
    ok(&coffer(
        &data,
        &[
            "files",
            "put",
            "acme",
            "jobs/quote.txt",
            local.to_str().unwrap(),
        ],
        None,
    ));
    ok(&coffer(
        &data,
        &["files", "put", "acme", "jobs/stdin.txt", "-"],
        Some(b"from stdin"),
    ));
    assert_eq!(
        ok(&coffer(
            &data,
            &["files", "get", "acme", "jobs/stdin.txt"],
            None
        )),
        "from stdin"
    );
    let out = tmp.path().join("out.txt");
    ok(&coffer(
        &data,
        &[
            "files",
            "get",
            "acme",
            "jobs/quote.txt",
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(std::fs::read(&out).unwrap(), b"quote body");
    let listing = ok(&coffer(&data, &["files", "ls", "acme", "jobs"], None));
    assert!(listing.contains("quote.txt") && listing.contains("stdin.txt"));
    let json: serde_json::Value = serde_json::from_str(&ok(&coffer(
        &data,
        &["--json", "files", "ls", "acme", "/"],
        None,
    )))
    .unwrap();
    assert_eq!(json[0]["name"], "jobs");
    for hostile in [
        "../../etc/passwd",
        "/etc/passwd",
        "a\\b",
        "jobs/%2e%2e/x",
        "NUL.txt",
    ] {
        fails_with(
            &coffer(
                &data,
                &["files", "put", "acme", hostile, local.to_str().unwrap()],
                None,
            ),
            "vault path",
        );
    }
    fails_with(
        &coffer(&data, &["files", "get", "acme", "jobs/none.txt"], None),
        "not found",
    );
    fails_with(
        &coffer(&data, &["files", "get", "nosuch", "jobs/quote.txt"], None),
        "no tenant",
    );
    ok(&coffer(
        &data,
        &["files", "rm", "acme", "jobs/quote.txt"],
        None,
    ));
    assert!(ok(&coffer(&data, &["reindex", "acme"], None)).contains("1 files"));
    assert!(
        ok(&coffer(&data, &["tenant", "show", "acme"], None)).contains("owner@acme.test (owner)")
    );
    assert!(ok(&coffer(&data, &["tenant", "list"], None)).starts_with("acme\tactive"));
    assert!(ok(&coffer(&data, &["audit", "verify"], None)).contains("intact"));

    // Tampering with the audit log makes `audit verify` fail.
    let conn = rusqlite::Connection::open(data.join("audit.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update; UPDATE events SET actor = 'someone-else' WHERE seq = 3;",
    )
    .unwrap();
    drop(conn);
    fails_with(
        &coffer(&data, &["audit", "verify"], None),
        "broken at event 3",
    );
}

/// Everything Coffer creates under the data root is private to the service account:
/// directories 0700, files 0600 (databases and their -wal/-shm included), whatever the
/// umask of the process that created them (issue 7).
#[test]
fn issue7_everything_under_the_data_root_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("root");
    let run = |args: &str, stdin: &[u8]| {
        // The most permissive umask: any mode Coffer does not set itself would show.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000 && exec \"$0\" --data-dir \"$1\" {args}"))
            .arg(env!("CARGO_BIN_EXE_coffer"))
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        ok(&child.wait_with_output().unwrap());
    };
    run("init", b"");
    run(
        "user create ann@modes.test --password-stdin",
        b"long enough password\n",
    );
    run("tenant create modes --owner ann@modes.test", b"");
    run("files put modes deep/er/note.txt -", b"private bytes");
    run("files put modes top.txt -", b"more");
    run("files rm modes top.txt", b"");
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(&data).follow_links(false) {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o7777;
        let want = if entry.file_type().is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(
            mode,
            want,
            "{} is {mode:o}",
            entry.path().strip_prefix(&data).unwrap().display()
        );
        checked += 1;
    }
    assert!(checked > 15, "walked {checked} entries");
}

/// Issue 9's commands as an operator scripts them: lifecycle, receipts, backups, the
/// audit checkpoint, usage reconcile, a person's data and account deletion.
#[test]
fn lifecycle_backup_and_rights_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("root");
    let run = |args: &[&str]| coffer(&data, args, None);
    ok(&run(&["init"]));
    ok(&coffer(
        &data,
        &["user", "create", "owner@acme.test", "--password-stdin"],
        Some(b"long enough password\n"),
    ));
    ok(&run(&[
        "tenant",
        "create",
        "acme",
        "--owner",
        "owner@acme.test",
    ]));
    ok(&coffer(
        &data,
        &["files", "put", "acme", "docs/a.txt", "-"],
        Some(b"hello"),
    ));
    assert!(ok(&run(&["tenant", "restrict", "acme"])).contains("restricted"));
    fails_with(&run(&["tenant", "restrict", "acme"]), "restricted");
    ok(&run(&["tenant", "unrestrict", "acme"]));
    fails_with(&run(&["tenant", "restrict", "nosuch"]), "no tenant");
    ok(&run(&["usage", "reconcile"]));
    let shown = ok(&run(&["user", "show", "owner@acme.test"]));
    assert!(shown.contains("\"memberships\"") && shown.contains("acme"));

    let backups = tmp.path().join("backups");
    let out = ok(&run(&["backup", "--to", backups.to_str().unwrap()]));
    assert!(out.contains("1 tenants, 1 files"), "{out}");
    // The root holds the set and its COFFER-BACKUPS marker.
    let set = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("coffer-backup-")
        })
        .unwrap();
    assert!(backups.join("COFFER-BACKUPS").is_file());
    ok(&run(&["backup", "--verify", set.to_str().unwrap()]));
    let restored = tmp.path().join("restored");
    ok(&coffer(
        &restored,
        &["restore", set.to_str().unwrap()],
        None,
    ));
    fails_with(
        &coffer(&restored, &["restore", set.to_str().unwrap()], None),
        "not empty",
    );
    assert!(
        ok(&coffer(
            &restored,
            &["files", "get", "acme", "docs/a.txt"],
            None
        ))
        .contains("hello")
    );

    let checkpoint = tmp.path().join("checkpoint.json");
    ok(&run(&[
        "audit",
        "checkpoint",
        "-o",
        checkpoint.to_str().unwrap(),
    ]));
    ok(&run(&[
        "audit",
        "verify",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]));

    assert!(ok(&run(&["tenant", "cancel", "acme"])).contains("purge after"));
    fails_with(
        &run(&["lifecycle", "run", "--now", "next tuesday"]),
        "RFC 3339",
    );
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(31))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = ok(&run(&["lifecycle", "run", "--now", &soon]));
    assert!(out.contains("1 purged"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("purged: "))
        .unwrap()
        .to_owned();
    let receipt = ok(&run(&["tenant", "receipt", &id]));
    assert!(receipt.contains("coffer-deletion-receipt") && receipt.contains("backup_copies"));
    // The backup no longer holds the purged tenant.
    assert!(!set.join("tenants").join(&id).exists());
    ok(&run(&["backup", "--verify", set.to_str().unwrap()]));

    ok(&run(&["user", "delete", "owner@acme.test"]));
    fails_with(&run(&["user", "show", "owner@acme.test"]), "no user");
}

#[test]
fn tokens_are_listed_and_revoked_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("root");
    ok(&coffer(&data, &["init"], None));
    ok(&coffer(&data, &["user", "create", "owner@acme.test"], None));
    ok(&coffer(
        &data,
        &["tenant", "create", "acme", "--owner", "owner@acme.test"],
        None,
    ));
    let secret = ok(&coffer(
        &data,
        &[
            "token",
            "create",
            "acme",
            "owner@acme.test",
            "--name",
            "backup robot",
        ],
        None,
    ));
    assert!(!secret.trim().is_empty());
    let listed = ok(&coffer(&data, &["--json", "token", "list", "acme"], None));
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let id = rows[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(rows[0]["name"], "backup robot");
    assert_eq!(rows[0]["revoked_at"], serde_json::Value::Null);
    assert!(!listed.contains(secret.trim()), "a secret in the listing");
    let text = ok(&coffer(
        &data,
        &["token", "list", "acme", "owner@acme.test"],
        None,
    ));
    assert!(text.contains(&id) && text.contains("1 tokens"), "{text}");
    fails_with(
        &coffer(&data, &["token", "list", "acme", "nobody@acme.test"], None),
        "not a member",
    );
    assert!(ok(&coffer(&data, &["token", "revoke", &id], None)).contains("revoked"));
    let rows: serde_json::Value = serde_json::from_str(&ok(&coffer(
        &data,
        &["--json", "token", "list", "acme"],
        None,
    )))
    .unwrap();
    assert!(rows[0]["revoked_at"].is_string(), "{rows}");
    fails_with(
        &coffer(&data, &["token", "revoke", &id], None),
        "already revoked",
    );
    fails_with(
        &coffer(&data, &["token", "revoke", "no-such-id"], None),
        "no token with id no-such-id",
    );
}

#[test]
fn completions_and_man_pages_come_from_the_same_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("never-created");
    for (shell, marker) in [
        ("bash", "_coffer()"),
        ("zsh", "#compdef coffer"),
        ("fish", "complete -c coffer"),
    ] {
        let script = ok(&coffer(&data, &["completions", shell], None));
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("deployment"), "{shell} lacks a subcommand");
    }
    // A mistake on the command line is one line, with the accepted values.
    fails_with(
        &coffer(&data, &["completions", "tcsh"], None),
        "invalid value 'tcsh' for '<SHELL>' [possible values: bash, elvish, fish, powershell, zsh]",
    );
    fails_with(
        &coffer(&data, &["tenant", "frobnicate"], None),
        "unrecognized subcommand 'frobnicate'",
    );
    fails_with(
        &coffer(
            &data,
            &["audit", "deployment", "--fail-on", "sometimes"],
            None,
        ),
        "invalid value 'sometimes'",
    );
    // Help is still clap's, whole, on standard output.
    let help = ok(&coffer(&data, &["--help"], None));
    assert!(help.contains("Usage: coffer"), "{help}");
    assert!(ok(&coffer(&data, &["audit", "--help"], None)).contains("deployment"));
    let page = ok(&coffer(&data, &["man"], None));
    assert!(
        page.starts_with(".ie") || page.contains(".TH coffer"),
        "{page}"
    );
    let dir = tmp.path().join("man");
    ok(&coffer(&data, &["man", dir.to_str().unwrap()], None));
    for page in [
        "coffer.1",
        "coffer-audit-deployment.1",
        "coffer-token-revoke.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} not written");
    }
    assert!(!data.exists(), "completions and man touched a data root");
}

#[test]
fn tenant_update_renames_and_changes_the_quota() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("root");
    ok(&coffer(&data, &["init"], None));
    ok(&coffer(&data, &["tenant", "create", "acme"], None));
    ok(&coffer(
        &data,
        &["files", "put", "acme", "a.txt", "-"],
        Some(b"0123456789"),
    ));
    let updated = ok(&coffer(
        &data,
        &[
            "--json",
            "tenant",
            "update",
            "acme",
            "--name",
            "Acme Ltd",
            "--quota-bytes",
            "15",
        ],
        None,
    ));
    let updated: serde_json::Value = serde_json::from_str(&updated).unwrap();
    assert_eq!(updated["name"], "Acme Ltd");
    assert_eq!(updated["quota_bytes"], 15);
    // The new quota holds on the next write.
    fails_with(
        &coffer(
            &data,
            &["files", "put", "acme", "b.txt", "-"],
            Some(b"0123456789"),
        ),
        "quota",
    );
    let shown = ok(&coffer(&data, &["--json", "tenant", "show", "acme"], None));
    assert!(shown.contains("Acme Ltd"), "{shown}");
    fails_with(
        &coffer(&data, &["tenant", "update", "acme"], None),
        "nothing to change",
    );
    fails_with(
        &coffer(&data, &["tenant", "update", "nope", "--name", "X"], None),
        "no tenant with slug nope",
    );
    ok(&coffer(&data, &["audit", "verify"], None));
}

/// Every command says what it does and every argument and option what it takes: `--help`
/// is the manual an operator reads first.
#[test]
fn every_command_argument_and_option_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let here = format!("{path} {}", cmd.get_name()).trim().to_owned();
        if cmd.get_about().is_none() && here != "coffer help" && !here.ends_with(" help") {
            missing.push(format!("{here}: no description"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{here} <{id}>: no help"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &here, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&coffer::cli::Cli::command(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "{} without help:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// With `--json`, scripts read results and errors alike as JSON: `{"error": {"code",
/// "message"}}` on standard error with the API's codes; messages name what they are
/// about; a config error says its line and column; a user made without a password is
/// told how they will get one.
#[test]
fn json_errors_and_messages_that_name_their_subject() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&coffer(&data, &["init"], None));
    ok(&coffer(&data, &["tenant", "create", "acme"], None));
    let json_error = |out: &Output| -> serde_json::Value {
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "errors go to standard error");
        serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let e = json_error(&coffer(
        &data,
        &["files", "get", "acme", "jobs/x.jpg", "--json"],
        None,
    ));
    assert_eq!(e["error"]["code"], "not-found");
    assert_eq!(e["error"]["message"], "not found: jobs/x.jpg");
    fails_with(
        &coffer(&data, &["files", "get", "acme", "jobs/x.jpg"], None),
        "not found: jobs/x.jpg",
    );
    let e = json_error(&coffer(&data, &["tenant", "show", "nope", "--json"], None));
    assert_eq!(
        e["error"],
        serde_json::json!({ "code": "not-found", "message": "no tenant with slug nope" })
    );
    let e = json_error(&coffer(
        &data,
        &["user", "show", "nobody@example.com", "--json"],
        None,
    ));
    assert_eq!(e["error"]["code"], "not-found", "{e}");
    let e = json_error(&coffer(&data, &["token", "revoke", "abc", "--json"], None));
    assert_eq!(e["error"]["code"], "not-found", "{e}");
    let e = json_error(&coffer(
        &data,
        &["files", "get", "acme", "../etc/passwd", "--json"],
        None,
    ));
    assert_eq!(e["error"]["code"], "invalid-path", "{e}");
    let usage = coffer(&data, &["tenant", "bogus", "--json"], None);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(json_error(&usage)["error"]["code"], "usage");
    let e = json_error(&coffer(
        &data,
        &["import", "acme", "/nonexistent.zip", "--json"],
        None,
    ));
    assert_eq!(e["error"]["code"], "not-found", "{e}");

    // Results are JSON too: a new token with its id.
    ok(&coffer(
        &data,
        &["user", "create", "ada@example.com"],
        Some(b""),
    ));
    ok(&coffer(
        &data,
        &["member", "add", "acme", "ada@example.com", "viewer"],
        None,
    ));
    let made: serde_json::Value = serde_json::from_str(&ok(&coffer(
        &data,
        &["token", "create", "acme", "ada@example.com", "--json"],
        None,
    )))
    .unwrap();
    assert!(made["token"].as_str().unwrap().starts_with("cft_"));
    assert_eq!(made["role"], "viewer");
    assert!(
        ok(&coffer(&data, &["token", "list", "acme"], None)).contains(made["id"].as_str().unwrap())
    );

    // Without a terminal and without --password-stdin, the user is told the way in.
    let out = ok(&coffer(&data, &["user", "create", "bob@example.com"], None));
    assert!(
        out.contains("no password yet") && out.contains("password reset"),
        "{out}"
    );

    // A config error: the file, line and column, on one line.
    let config = dir.path().join("coffer.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:1\"\nsession_days = \"a\"\n").unwrap();
    fails_with(
        &coffer(
            &data,
            &["--config", config.to_str().unwrap(), "tenant", "list"],
            None,
        ),
        "coffer.toml:2:16: invalid type",
    );
}

/// `--json` on every command that prints: standard output is one JSON document (or
/// nothing), never a human sentence a script would have to parse.
#[test]
fn every_printing_command_speaks_json_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = dir.path().join("sample.txt");
    std::fs::write(&sample, b"a quote for the boiler").unwrap();
    let archive = dir.path().join("acme.zip");
    let checkpoint = dir.path().join("checkpoint.json");
    let backups = dir.path().join("backups");
    let (archive_s, sample_s, checkpoint_s, backups_s) = (
        archive.to_str().unwrap(),
        sample.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
        backups.to_str().unwrap(),
    );
    let steps: Vec<Vec<&str>> = vec![
        vec!["init"],
        vec!["tenant", "create", "acme", "--name", "Acme"],
        vec!["tenant", "create", "gone"],
        vec!["user", "create", "ada@example.com"],
        vec!["user", "list"],
        vec!["user", "show", "ada@example.com"],
        vec!["member", "add", "acme", "ada@example.com", "admin"],
        vec!["token", "create", "acme", "ada@example.com"],
        vec!["token", "list", "acme"],
        vec!["tenant", "list"],
        vec!["tenant", "show", "acme"],
        vec!["tenant", "update", "acme", "--quota-bytes", "1000000"],
        vec!["files", "put", "acme", "docs/quote.txt", sample_s],
        vec!["files", "ls", "acme"],
        vec!["files", "ls", "acme", "docs"],
        vec!["reindex", "acme"],
        vec!["export", "acme", "-o", archive_s],
        vec!["export", "--verify", archive_s],
        vec!["files", "rm", "acme", "docs/quote.txt"],
        vec!["import", "acme", archive_s, "--conflict", "skip"],
        vec!["tenant", "restrict", "acme"],
        vec!["tenant", "unrestrict", "acme"],
        vec!["tenant", "hold", "acme"],
        vec!["tenant", "release", "acme"],
        vec!["tenant", "cancel", "acme"],
        vec!["tenant", "reactivate", "acme"],
        vec!["tenant", "delete", "gone"],
        vec!["usage", "reconcile"],
        vec!["lifecycle", "run"],
        vec!["audit", "verify"],
        vec!["audit", "checkpoint", "-o", checkpoint_s],
        vec!["audit", "isolation"],
        vec!["backup", "--to", backups_s],
        vec!["member", "remove", "acme", "ada@example.com"],
        vec!["user", "delete", "ada@example.com"],
    ];
    let mut not_json = Vec::new();
    for step in &steps {
        let mut args = step.clone();
        args.push("--json");
        let out = coffer(&data, &args, Some(b""));
        let stdout = ok(&out);
        if !stdout.trim().is_empty() && serde_json::from_str::<serde_json::Value>(&stdout).is_err()
        {
            not_json.push(format!("{}: {stdout}", step.join(" ")));
        }
    }
    assert!(not_json.is_empty(), "not JSON:\n{}", not_json.join("\n"));
}

/// A refused command line says what is missing or what was meant, and whose help to
/// read; a closed pipe ends a command quietly; a missing thing is named.
#[test]
fn refusals_name_what_is_missing_and_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&coffer(&data, &["init"], None));
    ok(&coffer(&data, &["tenant", "create", "acme"], None));
    let out = coffer(&data, &["files", "get"], None);
    assert_eq!(out.status.code(), Some(2));
    fails_with(&out, "<SLUG> <VAULT_PATH> (coffer files get --help)");
    fails_with(
        &coffer(&data, &["tenant", "lsit"], None),
        "a similar subcommand exists: 'list' (coffer tenant --help)",
    );
    fails_with(
        &coffer(&data, &["files", "rm", "acme", "jobs/x.jpg"], None),
        "not found: jobs/x.jpg",
    );
    fails_with(
        &coffer(&data, &["files", "ls", "acme", "nope"], None),
        "not found: nope",
    );
    let missing_set = dir.path().join("no-such-set");
    fails_with(
        &coffer(
            &dir.path().join("new"),
            &["restore", missing_set.to_str().unwrap()],
            None,
        ),
        "not found:",
    );
    // A reader that goes away: the writer ends with SIGPIPE's status, no panic text.
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(141),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
