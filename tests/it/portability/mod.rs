//! Export and import: round trip, determinism, compression choices, verification, every
//! hostile-archive class, and the HTTP export's resume and mid-stream failure behaviour.

mod over_http;

use std::io::{Cursor, Read};

use coffer::config::ImportLimits;
use coffer::export::import::{ConflictPolicy, ImportError, import_archive};
use coffer::export::{ExportOptions, Snapshot, verify};
use coffer::vault::Precondition;
use coffer::vault::path::{CollectionName, RecordId, VaultPath};

use crate::support::zipgen::{RawEntry, build};
use crate::support::{World, operator, snapshot};

fn p(s: &str) -> VaultPath {
    VaultPath::parse(s).unwrap()
}

fn seed(w: &World) {
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(
        &op,
        &p("docs/notes.txt"),
        &mut "lorem ipsum dolor sit amet ".repeat(500).as_bytes(),
        &Precondition::None,
    )
    .unwrap();
    let mut noise = vec![0u8; 200_000];
    let mut x = 7u32;
    for b in noise.iter_mut() {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *b = (x >> 24) as u8;
    }
    v.write_file(
        &op,
        &p("photos/site.jpg"),
        &mut &noise[..],
        &Precondition::None,
    )
    .unwrap();
    v.write_file(
        &op,
        &p("raw/sensor.bin"),
        &mut &noise[..],
        &Precondition::None,
    )
    .unwrap();
    v.write_file(
        &op,
        &p("Résumé (final).txt"),
        &mut &b"unicode name"[..],
        &Precondition::None,
    )
    .unwrap();
    v.mkdir(&op, &p("empty/folder")).unwrap();
    let clients = CollectionName::parse("clients").unwrap();
    v.create_record(
        &op,
        &clients,
        Some(RecordId::parse("c1").unwrap()),
        &serde_json::json!({"name": "=cmd()", "city": "Oslo, Norway"}),
    )
    .unwrap();
    v.create_record(
        &op,
        &CollectionName::parse("jobs").unwrap(),
        None,
        &serde_json::json!({"title": "Hedges", "hours": 3.5}),
    )
    .unwrap();
}

fn export(
    w: &World,
    tenant: &coffer::control::Tenant,
    cursor: Option<i64>,
) -> (Vec<u8>, coffer::export::Manifest) {
    let access = w.access(tenant);
    let snap = w.coffer.snapshot(&access, cursor).unwrap();
    let mut out = Vec::new();
    let m = w
        .coffer
        .export(&access, &snap, &mut out, ExportOptions::default(), 0)
        .unwrap();
    (out, m)
}

#[test]
fn round_trip_is_exact_and_verifiable() {
    let w = World::new();
    seed(&w);
    let (bytes, manifest) = export(&w, &w.alpha, None);
    let report = verify(Cursor::new(&bytes)).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Readable without Coffer: plain entries, relative names, manifest last.
    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert_eq!(names.last().unwrap(), "manifest.json");
    assert!(
        names.contains(&"files/Résumé (final).txt".to_owned())
            && names.contains(&"files/empty/folder/".to_owned())
    );
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('/') && !n.contains(".."))
    );
    let mut csv = String::new();
    zip.by_name("records/clients.csv")
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    assert!(
        csv.contains("\"'=cmd()\"") || csv.contains("'=cmd()"),
        "formula defused: {csv}"
    );
    assert!(csv.contains("\"Oslo, Norway\""));
    // Compression: JPEG and incompressible data stored, text deflated.
    let method = |zip: &mut zip::ZipArchive<_>, n: &str| zip.by_name(n).unwrap().compression();
    assert_eq!(
        method(&mut zip, "files/photos/site.jpg"),
        zip::CompressionMethod::Stored
    );
    assert_eq!(
        method(&mut zip, "files/raw/sensor.bin"),
        zip::CompressionMethod::Stored
    );
    assert_eq!(
        method(&mut zip, "files/docs/notes.txt"),
        zip::CompressionMethod::Deflated
    );
    // No permission bits beyond 0644, no links.
    for i in 0..zip.len() {
        let f = zip.by_index(i).unwrap();
        assert!(!f.is_symlink());
        if let Some(mode) = f.unix_mode() {
            // No set-id or sticky bits, no group/other write.
            assert_eq!(mode & 0o7022, 0, "{:?}", f.name().ok());
        }
    }

    // Import into a new tenant, export again: the same files and records.
    let op = operator();
    let t2 = w
        .coffer
        .create_tenant(&op, crate::support::new_tenant("moved", None))
        .unwrap();
    let v2 = w.vault(&t2);
    let r = import_archive(
        &v2,
        &op,
        Cursor::new(&bytes),
        &ImportLimits::default(),
        ConflictPolicy::Fail,
    )
    .unwrap();
    assert_eq!(
        (r.kind, r.summary.files, r.summary.records),
        ("coffer-export", 4, 2)
    );
    let (_, again) = export(&w, &t2, None);
    let strip = |m: &coffer::export::Manifest| {
        m.entries
            .iter()
            .filter(|e| e.path != "audit.jsonl")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&manifest), strip(&again));
    assert_eq!(
        v2.record(
            &CollectionName::parse("clients").unwrap(),
            &RecordId::parse("c1").unwrap()
        )
        .unwrap()
        .version,
        1
    );
    // The same archive again: conflicts refuse it whole, or skip.
    assert!(matches!(
        import_archive(
            &v2,
            &op,
            Cursor::new(&bytes),
            &ImportLimits::default(),
            ConflictPolicy::Fail
        ),
        Err(ImportError::Vault(coffer::vault::VaultError::ExistsAt(_)))
    ));
    let r = import_archive(
        &v2,
        &op,
        Cursor::new(&bytes),
        &ImportLimits::default(),
        ConflictPolicy::Skip,
    )
    .unwrap();
    assert_eq!((r.summary.files, r.summary.skipped.len()), (0, 4));
}

#[test]
fn same_snapshot_same_bytes_and_tampering_is_found() {
    let w = World::new();
    seed(&w);
    let cursor = w.coffer.audit().last_seq_for_tenant(w.alpha.id).unwrap();
    let (a, _) = export(&w, &w.alpha, Some(cursor));
    // Reading and exporting in between adds audit events, but not to this cursor's archive.
    let (b, _) = export(&w, &w.alpha, Some(cursor));
    assert_eq!(a, b, "deterministic");
    // A changed file changes the snapshot's ETag.
    let v = w.vault(&w.alpha);
    let before = Snapshot::take(&v, &w.alpha, w.coffer.audit(), Some(cursor))
        .unwrap()
        .etag;
    v.write_file(
        &operator(),
        &p("docs/notes.txt"),
        &mut &b"changed"[..],
        &Precondition::None,
    )
    .unwrap();
    assert_ne!(
        Snapshot::take(&v, &w.alpha, w.coffer.audit(), Some(cursor))
            .unwrap()
            .etag,
        before
    );
    // Flip one byte of a stored file's data: verify names the entry.
    let mut tampered = a.clone();
    let needle = b"unicode name";
    let at = tampered
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    tampered[at] ^= 0x20;
    let report = verify(Cursor::new(&tampered));
    let problems = match report {
        Ok(r) => r.problems,
        Err(e) => vec![e.to_string()],
    };
    assert!(!problems.is_empty());
}

/// Every archive class of THREATS.md is refused before anything becomes visible.
#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    let outside = w.tmp.path().join("outside");
    let before_outside = snapshot(&outside);
    let f = RawEntry::file;
    // Each archive with the refusal it must get: its own reason, so that removing one of
    // Coffer's checks fails the case it guards even where the zip crate would refuse the
    // archive anyway (for another reason).
    use coffer::export::import::Refusal as R;
    let manifest_lies = |data: &[u8]| {
        let manifest = serde_json::json!({
            "format": "coffer-export", "format_version": 1,
            "tenant": { "id": "00000000000000000000000000000000", "slug": "x", "name": "X" },
            "as_of": "2026-01-01T00:00:00.000Z", "audit_until_seq": 0,
            "entries": [{ "path": "files/x.txt", "kind": "file", "size": data.len(),
                          "sha256": "0".repeat(64) }],
        });
        build(&[
            f("files/x.txt", data),
            f("manifest.json", manifest.to_string().as_bytes()),
        ])
    };
    let mut cases: Vec<(&str, Vec<u8>, R)> = vec![
        (
            "traversal",
            build(&[f("../../outside/evil.txt", b"x")]),
            R::UnsafeName,
        ),
        ("absolute", build(&[f("/etc/evil", b"x")]), R::UnsafeName),
        (
            "drive letter",
            build(&[f("C:/evil.txt", b"x")]),
            R::UnsafeName,
        ),
        (
            "drive letter inside",
            build(&[f("a/C:/evil.txt", b"x")]),
            R::UnsafeName,
        ),
        ("trailing dot", build(&[f("notes.", b"x")]), R::InvalidName),
        (
            "backslashes",
            build(&[f("..\\..\\evil.txt", b"x")]),
            R::UnsafeName,
        ),
        (
            "UNC",
            build(&[f("\\\\server\\share\\x", b"x")]),
            R::UnsafeName,
        ),
        (
            "encoded traversal",
            build(&[f("%2e%2e/evil.txt", b"x")]),
            R::InvalidName,
        ),
        (
            "reserved name",
            build(&[f("docs/CON.txt", b"x")]),
            R::InvalidName,
        ),
        ("NUL", build(&[f("a\0.txt", b"x")]), R::UnsafeName),
        (
            "duplicates",
            build(&[f("a.txt", b"1"), f("a.txt", b"2")]),
            R::DuplicateNames,
        ),
        (
            "case collision",
            build(&[f("Report.txt", b"1"), f("report.TXT", b"2")]),
            R::NameCollision,
        ),
        (
            "unicode collision",
            build(&[f("caf\u{e9}.txt", b"1"), f("cafe\u{301}.txt", b"2")]),
            R::NameCollision,
        ),
        (
            "file and directory",
            build(&[f("a", b"1"), f("a/b.txt", b"2")]),
            R::FileDirectoryClash,
        ),
        (
            "directory with data",
            build(&[f("d/", b"hidden bytes")]),
            R::DirectoryWithData,
        ),
        (
            "symlink",
            build(&[RawEntry {
                unix_mode: 0o120777,
                ..f("link", b"/etc/passwd")
            }]),
            R::Symlink,
        ),
        (
            "fifo",
            build(&[RawEntry {
                unix_mode: 0o010644,
                ..f("pipe", b"")
            }]),
            R::SpecialFile,
        ),
        (
            "encrypted",
            build(&[RawEntry {
                flags: 0x0801,
                ..f("secret.txt", b"xxxx")
            }]),
            R::Encrypted,
        ),
        (
            "name mismatch",
            build(&[RawEntry {
                local_name: Some("../evil.txt".into()),
                ..f("good.txt", b"x")
            }]),
            R::HeaderMismatch,
        ),
        (
            "overlapping",
            build(&[
                f("one.txt", b"shared data"),
                RawEntry {
                    share_data_with: Some(0),
                    ..f("two.txt", b"")
                },
            ]),
            R::OverlappingEntries,
        ),
        (
            "lying size",
            build(&[RawEntry {
                deflate: true,
                claimed_size: Some(10),
                ..f("big.txt", &[0u8; 50_000])
            }]),
            R::Corrupt,
        ),
        (
            "not a zip",
            b"PK\x03\x04 definitely not an archive".to_vec(),
            R::NotZip,
        ),
        (
            "manifest mismatch",
            manifest_lies(b"original"),
            R::ManifestMismatch,
        ),
    ];
    // A Coffer export with one flipped byte of file data: the entry's CRC no longer holds.
    let (mut export_bytes, _) = {
        let w2 = World::new();
        w2.vault(&w2.alpha)
            .write_file(&op, &p("x.txt"), &mut &b"original"[..], &Precondition::None)
            .unwrap();
        export(&w2, &w2.alpha, None)
    };
    let at = export_bytes
        .windows(8)
        .position(|w| w == b"original")
        .unwrap();
    export_bytes[at] = b'O';
    cases.push(("tampered data", export_bytes, R::Corrupt));
    for (what, bytes, want) in &cases {
        let result = import_archive(
            &v,
            &op,
            Cursor::new(bytes),
            &ImportLimits::default(),
            ConflictPolicy::Fail,
        );
        assert!(
            matches!(&result, Err(ImportError::Refused { reason, .. }) if reason == want),
            "{what}: want {want:?}, got {result:?}"
        );
        assert!(
            v.list(None, None, 10).unwrap().is_empty(),
            "{what}: something became visible"
        );
        assert!(
            std::fs::read_dir(w.vault_dir(&w.alpha).join(".staging"))
                .unwrap()
                .next()
                .is_none(),
            "{what}: staging left"
        );
        assert!(
            std::fs::read_dir(w.vault_dir(&w.alpha).join("files"))
                .unwrap()
                .next()
                .is_none(),
            "{what}: files left"
        );
    }
    assert_eq!(snapshot(&outside), before_outside);

    // Bombs: inflated bytes are counted, not trusted from headers.
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let bomb = build(&[RawEntry {
        deflate: true,
        ..f("zeros.bin", &zeros)
    }]);
    let small = ImportLimits {
        max_entry_bytes: 1024 * 1024,
        ..ImportLimits::default()
    };
    assert!(matches!(
        import_archive(&v, &op, Cursor::new(&bomb), &small, ConflictPolicy::Fail),
        Err(ImportError::TooLarge(_))
    ));
    let ratio = ImportLimits {
        max_ratio: 2,
        ..ImportLimits::default()
    };
    assert!(matches!(
        import_archive(&v, &op, Cursor::new(&bomb), &ratio, ConflictPolicy::Fail),
        Err(ImportError::TooLarge(_))
    ));
    let many: Vec<RawEntry> = (0..20).map(|i| f(&format!("f{i}.txt"), b"x")).collect();
    let few = ImportLimits {
        max_entries: 10,
        ..ImportLimits::default()
    };
    assert!(matches!(
        import_archive(
            &v,
            &op,
            Cursor::new(build(&many)),
            &few,
            ConflictPolicy::Fail
        ),
        Err(ImportError::TooLarge(_))
    ));
    let total = ImportLimits {
        max_total_bytes: 10,
        ..ImportLimits::default()
    };
    assert!(matches!(
        import_archive(
            &v,
            &op,
            Cursor::new(build(&many)),
            &total,
            ConflictPolicy::Fail
        ),
        Err(ImportError::TooLarge(_))
    ));
    assert!(v.list(None, None, 10).unwrap().is_empty());

    // A plain ZIP of folders is accepted (macOS debris skipped).
    let plain = build(&[
        f("Invoices/2026/inv-1.pdf", b"%PDF-1.4"),
        f("__MACOSX/._inv-1.pdf", b"junk"),
        f("notes.txt", b"hi"),
    ]);
    let r = import_archive(
        &v,
        &op,
        Cursor::new(&plain),
        &ImportLimits::default(),
        ConflictPolicy::Fail,
    )
    .unwrap();
    assert_eq!((r.kind, r.summary.files), ("plain-zip", 2));
    assert_eq!(v.stat(&p("Invoices/2026/inv-1.pdf")).unwrap().size, 8);
}

/// A real manifest has exactly the keys the schema in `vault-layout/` declares, with the
/// required ones present and values of the declared shapes.
#[test]
fn manifest_follows_its_json_schema() {
    let w = World::new();
    seed(&w);
    let (_, manifest) = export(&w, &w.alpha, None);
    let value = serde_json::to_value(&manifest).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/vault-layout/export-manifest.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema itself is valid");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "manifest breaks its schema: {errors:?}");
    // The validator is not a formality: a manifest that breaks a pattern, a minimum or a
    // required field is refused.
    let mut bad_hash = value.clone();
    bad_hash["entries"][0]["sha256"] = "ABC".into();
    assert!(!validator.is_valid(&bad_hash), "pattern");
    let mut bad_cursor = value.clone();
    bad_cursor["audit_until_seq"] = (-1).into();
    assert!(!validator.is_valid(&bad_cursor), "minimum");
    let mut missing = value.clone();
    missing.as_object_mut().unwrap().remove("tenant");
    assert!(!validator.is_valid(&missing), "required");
    assert!(manifest.entries.iter().any(|e| e.kind == "dir"));
}

/// Large compressible files are compressed ahead on a second thread and copied in raw:
/// the archive must still verify, be deterministic, and import back exactly.
#[test]
fn large_entries_compressed_ahead_round_trip() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    let text: Vec<u8> = (0..900_000)
        .flat_map(|i| format!("{i:08},invoice,paid,{}\n", i % 977).into_bytes())
        .collect();
    assert!(text.len() > 16 << 20);
    v.write_file(&op, &p("logs/big.csv"), &mut &text[..], &Precondition::None)
        .unwrap();
    let mut noise = vec![0u8; 17 << 20];
    let mut x = 3u64;
    for chunk in noise.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    v.write_file(
        &op,
        &p("backups/big.bin"),
        &mut &noise[..],
        &Precondition::None,
    )
    .unwrap();
    v.write_file(
        &op,
        &p("a-small.txt"),
        &mut &b"small"[..],
        &Precondition::None,
    )
    .unwrap();
    let cursor = w.coffer.audit().last_seq_for_tenant(w.alpha.id).unwrap();
    let (a, manifest) = export(&w, &w.alpha, Some(cursor));
    let (b, _) = export(&w, &w.alpha, Some(cursor));
    assert_eq!(a, b, "deterministic with entries compressed ahead");
    assert!(verify(Cursor::new(&a)).unwrap().problems.is_empty());
    let mut zip = zip::ZipArchive::new(Cursor::new(&a)).unwrap();
    assert_eq!(
        zip.by_name("files/logs/big.csv").unwrap().compression(),
        zip::CompressionMethod::Deflated
    );
    assert_eq!(
        zip.by_name("files/backups/big.bin").unwrap().compression(),
        zip::CompressionMethod::Stored
    );
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    let files: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("files/") && !n.ends_with('/'))
        .collect();
    assert_eq!(
        files,
        [
            "files/a-small.txt",
            "files/backups/big.bin",
            "files/logs/big.csv"
        ],
        "path order kept"
    );
    assert!(
        a.len() < text.len() + noise.len(),
        "the text was compressed"
    );
    // Nothing left in staging by the spooling.
    assert!(
        std::fs::read_dir(w.vault_dir(&w.alpha).join(".staging"))
            .unwrap()
            .next()
            .is_none()
    );
    let t2 = w
        .coffer
        .create_tenant(&op, crate::support::new_tenant("big-copy", None))
        .unwrap();
    import_archive(
        &w.vault(&t2),
        &op,
        Cursor::new(&a),
        &ImportLimits::default(),
        ConflictPolicy::Fail,
    )
    .unwrap();
    let (_, again) = export(&w, &t2, None);
    let files_only = |m: &coffer::export::Manifest| {
        m.entries
            .iter()
            .filter(|e| e.path.starts_with("files/"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(files_only(&manifest), files_only(&again));
}
