//! The audit log as auditors rely on it: names a tenant chose can be redacted without
//! breaking the chain, no change is ever visible without its event, and nodes sharing a
//! PostgreSQL control plane append to one chain.

use coffer::audit::AuditAction;
use coffer::control::NewUser;
use coffer::export::ExportOptions;
use coffer::names::Email;
use coffer::vault::Precondition;
use coffer::vault::path::{CollectionName, VaultPath};

use crate::nodes::{on_postgres, second_node};
use crate::support::{World, operator, postgres};

fn p(s: &str) -> VaultPath {
    VaultPath::parse(s).unwrap()
}

/// Every string a tenant chose (file names, a move's destination, record ids, the slug)
/// enters the chain only through its hash: after redaction no row of the tenant holds
/// any of them, and the chain still verifies (issue 7).
#[test]
fn issue7_a_purged_tenants_names_are_redacted_and_the_chain_verifies() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(
        &op,
        &p("secret-plans/bid.pdf"),
        &mut &b"x"[..],
        &Precondition::None,
    )
    .unwrap();
    v.rename(&op, &p("secret-plans/bid.pdf"), &p("moved-plans/final.pdf"))
        .unwrap();
    v.create_record(
        &op,
        &CollectionName::parse("clients").unwrap(),
        Some(coffer::vault::path::RecordId::parse("acme-corp").unwrap()),
        &serde_json::json!({ "name": "Acme" }),
    )
    .unwrap();
    let names = [
        "secret-plans",
        "moved-plans",
        "final.pdf",
        "bid.pdf",
        "acme-corp",
        "alpha",
    ];
    let rows = || {
        w.coffer
            .audit()
            .events_for_tenant(w.alpha.id, 0, 1000)
            .unwrap()
    };
    let moved = rows()
        .into_iter()
        .find(|e| e.action == AuditAction::FileMove.as_str())
        .unwrap();
    assert_eq!(moved.destination.as_deref(), Some("moved-plans/final.pdf"));
    assert!(
        moved
            .detail
            .is_none_or(|d| !d.to_string().contains("moved-plans")),
        "the destination is not in the chained detail"
    );
    let redacted = w.coffer.audit().redact_tenant_targets(w.alpha.id).unwrap();
    assert!(redacted >= 4, "{redacted}");
    let chain = w.coffer.audit().verify().unwrap();
    assert!(chain.broken.is_none(), "{chain:?}");
    for e in rows() {
        let text = serde_json::to_string(&e).unwrap();
        for name in names {
            assert!(!text.contains(name), "{name} survives redaction in {text}");
        }
    }
}

/// Makes every audit append fail (as a full or broken audit disk would) until dropped.
struct AuditOutage<'a>(&'a World);

impl<'a> AuditOutage<'a> {
    fn start(w: &'a World) -> Self {
        w.coffer.audit().simulate_outage_unchecked(true).unwrap();
        AuditOutage(w)
    }
}

impl Drop for AuditOutage<'_> {
    fn drop(&mut self) {
        self.0
            .coffer
            .audit()
            .simulate_outage_unchecked(false)
            .unwrap();
    }
}

/// When the audit log refuses an append, no change is ever left without its event: a
/// file write (already durable on disk when the event is due) keeps its event durable
/// in the vault and appends it once the log is back, exactly once; record and
/// control-plane changes roll back; an export does not start (issue 7).
#[test]
fn issue7_an_audit_failure_never_leaves_a_change_without_its_event() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    let clients = CollectionName::parse("clients").unwrap();
    let events_before = w.coffer.audit().last_seq().unwrap();
    {
        let _outage = AuditOutage::start(&w);
        v.write_file(
            &op,
            &p("ledger.csv"),
            &mut &b"1,2,3"[..],
            &Precondition::None,
        )
        .unwrap();
        // Visible with its true metadata (the index matches the disk)...
        assert_eq!(v.stat(&p("ledger.csv")).unwrap().size, 5);
        // ...and its event durable in the vault, waiting for the log.
        let index = rusqlite::Connection::open(w.vault_dir(&w.alpha).join("index.db")).unwrap();
        let pending: i64 = index
            .query_row("SELECT COUNT(*) FROM pending_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pending, 1);
        assert!(
            v.create_record(&op, &clients, None, &serde_json::json!({}))
                .is_err()
        );
        assert!(v.collections().unwrap().is_empty(), "record rolled back");
        let user = NewUser {
            email: Email::parse("nobody@gap.example").unwrap(),
            name: "N".into(),
            password_hash: None,
            is_operator: false,
        };
        assert!(w.coffer.control().create_user(&op, &user).is_err());
        assert!(
            w.coffer
                .control()
                .user_by_email(&user.email)
                .unwrap()
                .is_none(),
            "user rolled back"
        );
        let access = w.access(&w.alpha);
        let snap = w.coffer.snapshot(&access, None).unwrap();
        let mut out = Vec::new();
        let exported = w
            .coffer
            .export(&access, &snap, &mut out, ExportOptions::default(), 0);
        assert!(
            exported.is_err() && out.is_empty(),
            "no export without its start event"
        );
    }
    assert_eq!(w.coffer.audit().last_seq().unwrap(), events_before);
    // The audit log is back: the next operation first appends what was left pending.
    v.mkdir(&op, &p("later")).unwrap();
    assert_eq!(v.stat(&p("ledger.csv")).unwrap().size, 5);
    let actions: Vec<String> = w
        .coffer
        .audit()
        .events_for_tenant(w.alpha.id, events_before, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "file.write").count(),
        1,
        "{actions:?}"
    );
    assert!(actions.contains(&"dir.create".to_owned()), "{actions:?}");
}

/// P15: events older than the retention period go, behind a signed checkpoint; the rest
/// still verifies from it; rows cut from the end, an edited row, or a forged checkpoint
/// are each reported; an auditor's saved checkpoint is held to the log.
#[test]
fn retention_prunes_behind_a_signed_checkpoint_and_truncation_is_detected() {
    let clock = coffer::clock::ManualClock::starting_now();
    let mut w = World::with_clock(coffer::config::Config::default(), clock.clone());
    let op = operator();
    let v = w.vault(&w.alpha);
    v.write_file(&op, &p("old.txt"), &mut &b"old"[..], &Precondition::None)
        .unwrap();
    drop(v);
    let before = w.coffer.audit().head().unwrap().unwrap().0;
    clock.advance(time::Duration::days(7 * 365 + 3));
    let v = w.vault(&w.alpha);
    v.write_file(&op, &p("new.txt"), &mut &b"new"[..], &Precondition::None)
        .unwrap();
    drop(v);
    let report = w.coffer.run_lifecycle().unwrap();
    assert_eq!(report.audit_events_pruned, before as u64);
    let chain = w.coffer.verify_audit().unwrap();
    assert!(chain.broken.is_none(), "{chain:?}");
    assert_eq!(chain.first_seq, before + 1);
    assert_eq!(chain.checkpoints, 2, "the pruning one and the pass's head");
    let pruned = w
        .coffer
        .audit()
        .events_for_tenant(w.alpha.id, 0, 100)
        .unwrap();
    assert!(
        pruned
            .iter()
            .all(|e| e.target.as_deref() != Some("old.txt"))
    );
    // An auditor's saved checkpoint holds while the log is intact.
    let saved = w.coffer.checkpoint_audit().unwrap().unwrap();
    assert_eq!(w.coffer.holds_checkpoint(&saved).unwrap(), Ok(()));
    // Someone with the database drops the newest rows.
    w.coffer
        .audit()
        .tamper_unchecked(&format!("DELETE FROM events WHERE seq >= {}", saved.seq))
        .unwrap();
    let chain = w.coffer.verify_audit().unwrap();
    let (at, why) = chain.broken.expect("truncation detected");
    assert_eq!(at, saved.seq);
    assert!(why.contains("missing"), "{why}");
    assert!(w.coffer.holds_checkpoint(&saved).unwrap().is_err());
    w.skip_invariants = true;
}

#[test]
fn a_forged_checkpoint_or_an_edited_row_is_reported() {
    let mut w = World::new();
    let checkpoint = w.coffer.checkpoint_audit().unwrap().unwrap();
    let forged = checkpoint
        .signed
        .document
        .replace("\"prunes\":false", "\"prunes\":true");
    w.coffer
        .audit()
        .tamper_unchecked(&format!(
            "UPDATE checkpoints SET document = '{}'",
            forged.replace('\'', "''")
        ))
        .unwrap();
    let chain = w.coffer.verify_audit().unwrap();
    assert_eq!(chain.broken.map(|b| b.0), Some(checkpoint.seq));
    w.skip_invariants = true;

    let mut w = World::new();
    let checkpoint = w.coffer.checkpoint_audit().unwrap().unwrap();
    w.coffer
        .audit()
        .tamper_unchecked(&format!(
            "UPDATE events SET actor = 'system' WHERE seq = {}",
            checkpoint.seq
        ))
        .unwrap();
    let (at, why) = w.coffer.verify_audit().unwrap().broken.unwrap();
    assert_eq!(at, checkpoint.seq);
    assert!(why.contains("hash"), "{why}");
    w.skip_invariants = true;
}

/// Two nodes on one PostgreSQL control plane, four writers on each, appending at once:
/// one chain, every event in it exactly once, the same head seen from both nodes; a
/// checkpoint signed on one node verifies on the other; and the database itself refuses
/// to edit, delete or truncate the log.
#[test]
fn nodes_appending_at_once_form_one_chain_that_the_database_keeps_append_only() {
    let Some(base) = postgres::base_url("nodes_appending_at_once") else {
        return;
    };
    let mut a = World::with_config(on_postgres(&base));
    let dir = tempfile::tempdir().unwrap();
    let b = second_node(&a, dir.path());
    let before = a.coffer.audit().verify().unwrap().events;
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    std::thread::scope(|s| {
        for node in [&a.coffer, &b] {
            for writer in 0..WRITERS {
                s.spawn(move || {
                    for i in 0..EACH {
                        let e = coffer::audit::AuditEvent::new(
                            AuditAction::FileWrite,
                            coffer::audit::Actor::System,
                        )
                        .target(format!("writer-{writer}/{i}"));
                        node.audit().append_all(&[e.clone(), e]).unwrap();
                    }
                });
            }
        }
    });
    let from_a = a.coffer.verify_audit().unwrap();
    assert!(from_a.broken.is_none(), "{from_a:?}");
    assert_eq!(from_a.events, before + (2 * WRITERS * EACH) as u64);
    assert_eq!(b.verify_audit().unwrap(), from_a);
    assert_eq!(a.coffer.audit().head().unwrap(), b.audit().head().unwrap());

    let saved = b.checkpoint_audit().unwrap().unwrap();
    assert_eq!(a.coffer.holds_checkpoint(&saved).unwrap(), Ok(()));
    assert!(a.coffer.verify_audit().unwrap().broken.is_none());

    let url = a.coffer.config().control.clone().unwrap();
    for refused in [
        "UPDATE events SET actor = 'someone-else' WHERE seq = 2",
        "UPDATE events SET target = 'other' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 2",
        "TRUNCATE events",
        "UPDATE checkpoints SET prunes = TRUE",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints",
    ] {
        let e = postgres::try_query_text(&url, refused).expect_err(refused);
        assert!(e.contains("append-only"), "{refused}: {e}");
    }
    // Redacting is the one change allowed.
    postgres::query_text(&url, "UPDATE events SET target = NULL WHERE seq = 2");
    assert!(a.coffer.verify_audit().unwrap().broken.is_none());
    // Someone who lifts the guards is caught by the chain.
    a.coffer
        .audit()
        .tamper_unchecked("UPDATE events SET outcome = 'denied' WHERE seq = 3")
        .unwrap();
    assert_eq!(b.verify_audit().unwrap().broken.map(|b| b.0), Some(3));
    a.skip_invariants = true;
}

/// Pruning goes through the newest row that may go, even when a checkpoint (the last
/// pass's head) already names the row it would have chosen, and never past a younger
/// row: a row stamped early by a node whose clock was behind does not make the rows
/// before it (younger ones among them) prunable.
#[test]
fn pruning_skips_checkpointed_rows_and_stops_at_the_first_young_one() {
    let clock = coffer::clock::ManualClock::starting_now();
    let start = coffer::clock::Clock::now(clock.as_ref());
    let w = World::with_clock(coffer::config::Config::default(), clock.clone());
    let log = w.coffer.audit();
    let event = |n: usize| {
        coffer::audit::AuditEvent::new(AuditAction::FileWrite, coffer::audit::Actor::System)
            .target(format!("file-{n}"))
    };
    log.append(&event(1)).unwrap();
    // The lifecycle pass's head checkpoint names the newest old row.
    let head = w.coffer.checkpoint_audit().unwrap().unwrap();
    let years = time::Duration::days(8 * 365);
    clock.set(start + years);
    let young = log.append(&event(2)).unwrap();
    // A node whose clock is eight years behind appends after it.
    clock.set(start);
    log.append(&event(3)).unwrap();
    clock.set(start + years);
    let pruned = w.coffer.prune_audit().unwrap();
    assert_eq!(
        pruned,
        (head.seq - 1) as u64,
        "through the row before the head"
    );
    let chain = w.coffer.verify_audit().unwrap();
    assert!(chain.broken.is_none(), "{chain:?}");
    assert_eq!(chain.first_seq, head.seq);
    assert!(
        log.row_hash(young).unwrap().is_some(),
        "the young row stays"
    );
    // The next pass has nothing more it may prune: the head row is checkpointed and
    // the row after it is young.
    assert_eq!(w.coffer.prune_audit().unwrap(), 0);
}
