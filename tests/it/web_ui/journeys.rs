//! What each kind of user does in the browser, end to end against the real server: an
//! owner's working day (upload, a refused name, preview, search, an edit and an edit
//! conflict, an invitation, a token, the activity page, export, sign-out), a viewer who
//! cannot write, an auditor who reads the trail and no files, and the operator console.

use std::path::Path;

use serde_json::Value;

use super::{Rig, TENANT};

/// The smallest valid PNG (1×1, one opaque pixel).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x60, 0xf8, 0x0f,
    0x00, 0x01, 0x04, 0x01, 0x00, 0x5f, 0xe5, 0xc3, 0x4b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A fetch from inside the signed-in page (cookie and, for writes, the CSRF token): the
/// answer's status and JSON body.
async fn page_fetch(rig: &Rig, method: &str, path: &str, body: Option<Value>) -> (u64, Value) {
    let body = body.map_or("undefined".to_owned(), |b| {
        serde_json::to_string(&b.to_string()).unwrap()
    });
    let answer = rig
        .js_await(&format!(
            "fetch('/api/v1/auth/me').then((r) => r.ok ? r.json() : {{}}).then((me) =>
               fetch({path:?}, {{ method: {method:?}, body: {body},
                 headers: {{ 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token || '' }} }}))
             .then(async (r) => ({{ status: r.status, body: await r.json().catch(() => null) }}))"
        ))
        .await;
    (
        answer["status"].as_u64().unwrap_or(0),
        answer["body"].clone(),
    )
}

fn local_files(dir: &Path, files: &[(&str, &[u8])]) -> String {
    files
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path.display().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for an upload to be refused; its row's text (the reason).
async fn refused_upload(rig: &Rig) -> String {
    let row = "document.querySelector('.uploads li[data-state=failed]')";
    rig.until("a refused upload", row).await;
    let text = rig.js(&format!("return {row}.innerText;")).await;
    text.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_uploads_finds_edits_invites_exports_and_signs_out() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let files_page = format!("#/t/{TENANT}/files");
    rig.open("#/signin").await;
    rig.until_text("Forgot your password?").await;
    rig.check_accessibility("sign-in").await;
    rig.screenshot("sign-in").await;
    rig.sign_in("olivia@greenleaf.example").await;
    rig.record_requests().await;
    rig.until_text("contracts").await;
    rig.check_accessibility("files").await;
    rig.screenshot("files").await;

    // Several files at once, each with its progress bar, then listed.
    let local = tempfile::tempdir().unwrap();
    let paths = local_files(
        local.path(),
        &[
            (
                "estimate-oakridge.txt",
                b"Oakridge Commons: spring clean-up estimate\n",
            ),
            ("site-photo.png", PNG),
            ("evil.html", b"<script>document.title = 'pwned'</script>"),
            ("price-list.json", b"{\"mowing\": 40, \"hedges\": 55}"),
        ],
    );
    rig.pick(0, &paths).await;
    rig.until(
        "four finished uploads",
        "document.querySelectorAll('.uploads li[data-state=done]').length === 4",
    )
    .await;
    let bars = rig
        .js("return [...document.querySelectorAll('.uploads li progress')].map((p) => p.value === p.max);")
        .await;
    assert_eq!(
        bars,
        serde_json::json!([true, true, true, true]),
        "one full progress bar per file"
    );
    rig.until("the new files listed", "document.querySelector('table.files') && document.querySelector('table.files').innerText.includes('site-photo.png')").await;
    rig.screenshot("files-uploaded").await;

    // A name the vault refuses: the reason, and nothing stored.
    let refused = local_files(local.path(), &[("bad?name.txt", b"x")]);
    rig.pick(0, &refused).await;
    let why = refused_upload(&rig).await;
    assert!(
        why.contains("Name refused") && why.contains("'?' is not allowed"),
        "{why}"
    );
    let (_, tree) = page_fetch(&rig, "GET", &format!("/api/v1/tenants/{TENANT}/tree"), None).await;
    assert!(!tree.to_string().contains("bad?name"), "{tree}");

    // Previews: an image from a blob: address; uploaded HTML is never rendered.
    rig.click_labelled("site-photo.png").await;
    rig.until(
        "the image preview",
        "document.querySelector('dialog[open] .preview img') && document.querySelector('dialog[open] .preview img').naturalWidth === 1",
    )
    .await;
    let src = rig
        .js("return document.querySelector('dialog[open] .preview img').src;")
        .await;
    assert!(src.as_str().unwrap().starts_with("blob:"), "{src}");
    rig.click_labelled("Close").await;
    rig.click_labelled("price-list.json").await;
    rig.until_text("\"hedges\": 55").await;
    assert!(rig.exists("dialog[open] .preview pre").await);
    rig.click_labelled("Close").await;
    rig.click_labelled("evil.html").await;
    rig.until_text("There is no preview for this kind of file")
        .await;
    assert!(!rig.exists("dialog[open] iframe").await);
    assert_ne!(rig.js("return document.title;").await, "pwned");
    rig.click_labelled("Close").await;

    // One box finds a record and a file.
    rig.type_into("#global-search", "oakri\n").await;
    rig.until(
        "record and file hits",
        "document.querySelectorAll('.hits').length === 2",
    )
    .await;
    let hits = rig
        .js("return document.querySelector('main').innerText;")
        .await;
    let hits = hits.as_str().unwrap();
    assert!(
        hits.contains("clients/c-002") && hits.contains("estimate-oakridge.txt"),
        "{hits}"
    );
    rig.check_accessibility("search").await;
    rig.screenshot("search").await;

    // An edit, saved with its version.
    let record = format!("#/t/{TENANT}/records/clients/c-001");
    let record_api = format!("/api/v1/tenants/{TENANT}/records/clients/c-001");
    rig.open(&format!("#/t/{TENANT}/records/clients")).await;
    rig.until_text("Hannah Reyes").await;
    rig.check_accessibility("records").await;
    rig.screenshot("records").await;
    rig.open(&record).await;
    rig.type_into("[data-key=phone]", "555-0100").await;
    rig.click("#save-record").await;
    rig.until_text("Saved").await;
    let (_, saved) = page_fetch(&rig, "GET", &record_api, None).await;
    assert_eq!(saved["body"]["phone"], "555-0100");
    rig.check_accessibility("record form").await;

    // Someone else saves first: both versions shown, nothing overwritten until chosen.
    let (_, current) = page_fetch(&rig, "GET", &record_api, None).await;
    let mut theirs = current["body"].clone();
    theirs["address"] = "1 Changed Elsewhere Road".into();
    let etag = rig
        .js_await(&format!(
            "fetch({record_api:?}).then((r) => r.headers.get('etag'))"
        ))
        .await;
    let status = rig
        .js_await(&format!(
            "fetch('/api/v1/auth/me').then((r) => r.json()).then((me) => fetch({record_api:?}, {{
               method: 'PUT', body: {body}, headers: {{ 'Content-Type': 'application/json',
               'If-Match': {etag}, 'X-CSRF-Token': me.csrf_token }} }})).then((r) => r.status)",
            body = serde_json::to_string(&theirs.to_string()).unwrap(),
        ))
        .await;
    assert_eq!(status, 200);
    rig.type_into("[data-key=phone]", "555-0111").await;
    rig.click("#save-record").await;
    rig.until(
        "the conflict dialog",
        "document.querySelector('dialog[open] table.conflict')",
    )
    .await;
    let both = rig
        .js("return document.querySelector('dialog[open]').innerText;")
        .await;
    let both = both.as_str().unwrap();
    assert!(
        both.contains("1 Changed Elsewhere Road") && both.contains("14 Maple Street"),
        "{both}"
    );
    assert!(
        both.contains("555-0111") && both.contains("555-0100"),
        "{both}"
    );
    assert!(
        both.contains("saved by Olivia Park"),
        "the writer is named: {both}"
    );
    let (_, untouched) = page_fetch(&rig, "GET", &record_api, None).await;
    assert_eq!(untouched["body"]["address"], "1 Changed Elsewhere Road");
    rig.check_accessibility("edit conflict").await;
    rig.screenshot("record-conflict").await;
    rig.click_labelled("Save mine over it").await;
    rig.until_text("Your version is saved").await;
    let (_, chosen) = page_fetch(&rig, "GET", &record_api, None).await;
    assert_eq!(chosen["body"]["phone"], "555-0111");
    assert_eq!(chosen["body"]["address"], "14 Maple Street");

    // People: an invitation through the outbox.
    rig.open(&format!("#/t/{TENANT}/people")).await;
    rig.until_text("Invite someone").await;
    rig.type_into(
        "form.inline-form input[type=email]",
        "newhire@greenleaf.example",
    )
    .await;
    rig.click_labelled("Invite").await;
    rig.until_text("Invitation sent to newhire@greenleaf.example")
        .await;
    rig.until_text("newhire@greenleaf.example").await;
    let outbox = std::fs::read_dir(rig.data_dir.join("outbox"))
        .unwrap()
        .count();
    assert_eq!(outbox, 1);
    rig.check_accessibility("people").await;
    rig.screenshot("people").await;

    // A token, shown once with a copy button.
    rig.open("#/tokens").await;
    rig.until_text("Create a token").await;
    rig.type_into("form.inline-form input[type=text]", "backup script")
        .await;
    rig.click_labelled("Create token").await;
    rig.until(
        "the new token",
        "document.querySelector('dialog[open] .secret')",
    )
    .await;
    let secret = rig
        .js("return document.querySelector('dialog[open] .secret').value;")
        .await;
    assert!(secret.as_str().unwrap().starts_with("cft_"), "{secret}");
    assert!(rig.exists("#copy-token").await);
    // With the address that maps the business's files as a drive.
    let drive = rig
        .js("return document.querySelector('#drive-address').textContent;")
        .await;
    assert!(
        drive
            .as_str()
            .unwrap()
            .ends_with(&format!("/dav/{TENANT}/")),
        "{drive}"
    );
    rig.screenshot("token-created").await;
    rig.click_labelled("Done").await;
    rig.until_text("backup script").await;
    rig.check_accessibility("tokens").await;

    // Activity: storage against the quota, sign-ins, the trail.
    rig.open(&format!("#/t/{TENANT}/activity")).await;
    rig.until(
        "the audit trail",
        "document.querySelector('table.audit tbody tr')",
    )
    .await;
    assert!(rig.exists("#storage-meter").await);
    rig.until_text("olivia@greenleaf.example").await;
    rig.check_accessibility("activity").await;
    rig.screenshot("activity").await;

    // Export: the browser's own download, which the CLI verifies.
    rig.open(&format!("#/t/{TENANT}/data")).await;
    rig.check_accessibility("your data").await;
    rig.screenshot("your-data").await;
    rig.click("#export").await;
    let archive = rig.download().await;
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(TENANT) && name.ends_with(".zip"), "{name}");
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["export", "--verify"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A phone-sized window: one column.
    rig.client.set_window_size(390, 844).await.unwrap();
    rig.open(&files_page).await;
    rig.until_text("site-photo.png").await;
    rig.check_accessibility("files on a phone").await;
    rig.screenshot("files-phone").await;
    rig.client.set_window_size(1280, 900).await.unwrap();

    // Every state-changing request carried the session's CSRF token.
    let (_, me) = page_fetch(&rig, "GET", "/api/v1/auth/me", None).await;
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    rig.click("#sign-out").await;
    rig.until_text("Forgot your password?").await;
    let requests = rig.recorded().await;
    let writes: Vec<_> = requests
        .iter()
        .filter(|(method, _, _)| !matches!(method.as_str(), "GET" | "HEAD"))
        .collect();
    assert!(writes.len() >= 9, "{requests:?}");
    for (method, url, token) in &writes {
        assert_eq!(
            token.as_deref(),
            Some(csrf.as_str()),
            "{method} {url} without the CSRF token"
        );
    }
    assert!(
        writes
            .iter()
            .any(|(m, u, _)| m == "POST" && u.ends_with("/auth/logout"))
    );

    // Signed out: the session is over on the server, and the pages ask to sign in.
    let (status, _) = page_fetch(&rig, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 401);
    rig.open(&files_page).await;
    rig.until_text("Forgot your password?").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_write_controls_and_a_forced_write_is_refused() {
    // In dark mode: axe checks the dark scheme's contrast on these pages.
    let Some(rig) = Rig::start_dark().await else {
        return;
    };
    rig.sign_in("vera@greenleaf.example").await;
    rig.until_text("contracts").await;
    for control in [
        "#upload-files",
        "#upload-folder",
        "#new-folder",
        "#main input[type=file]",
    ] {
        assert!(!rig.exists(control).await, "a viewer sees {control}");
    }
    rig.check_accessibility("files (viewer, dark)").await;
    rig.screenshot("files-viewer-dark").await;
    let forced = format!("/api/v1/tenants/{TENANT}/files/forced.txt");
    let (status, body) = page_fetch(&rig, "PUT", &forced, Some(Value::from("x"))).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = page_fetch(&rig, "GET", &forced, None).await;
    assert_eq!(status, 404);

    rig.open(&format!("#/t/{TENANT}/records/clients/c-001"))
        .await;
    rig.until_text("Version 1").await;
    assert!(!rig.exists("#save-record").await);
    assert_eq!(
        rig.js("return [...document.querySelectorAll('[data-key]')].every((i) => i.disabled);")
            .await,
        true
    );
    assert!(!rig.exists("#new-record").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_the_trail_and_sees_no_files() {
    let Some(rig) = Rig::start_dark().await else {
        return;
    };
    rig.sign_in("audrey@greenleaf.example").await;
    rig.until(
        "the audit trail",
        "document.querySelector('table.audit tbody tr')",
    )
    .await;
    let nav = rig
        .js("return document.querySelector('nav[aria-label=Sections]').innerText;")
        .await;
    let nav = nav.as_str().unwrap();
    assert!(nav.contains("Activity"), "{nav}");
    for hidden in ["Files", "Records", "Search", "Trash"] {
        assert!(
            !nav.contains(hidden),
            "an auditor's menu offers {hidden}: {nav}"
        );
    }
    rig.check_accessibility("activity (auditor, dark)").await;
    rig.screenshot("activity-auditor").await;
    // The files address leads to what an auditor may see; the API refuses the listing.
    rig.open(&format!("#/t/{TENANT}/files")).await;
    rig.until(
        "the audit trail",
        "document.querySelector('table.audit tbody tr')",
    )
    .await;
    assert!(!rig.exists("table.files").await);
    let (status, _) =
        page_fetch(&rig, "GET", &format!("/api/v1/tenants/{TENANT}/tree"), None).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_console_creates_tenants_and_checks_isolation() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    // Page weight: the first load, then a revisit served from the cache.
    rig.open("#/signin").await;
    rig.until_text("Forgot your password?").await;
    let weight = "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
        .filter((e) => !e.name.includes('/api/')).reduce((sum, e) => sum + e.transferSize, 0)";
    let first = rig.js(&format!("return {weight};")).await.as_u64().unwrap();
    rig.client.refresh().await.unwrap();
    rig.until_text("Forgot your password?").await;
    let again = rig.js(&format!("return {weight};")).await.as_u64().unwrap();
    eprintln!("page weight: first load {first} bytes transferred, revisit {again} bytes");
    assert!(first > 0 && again < first, "first {first}, revisit {again}");
    rig.open("#/reset").await;
    rig.until_text("Send reset message").await;
    rig.check_accessibility("password reset").await;

    // A new customer signs up and lands in their own, empty vault.
    rig.open("#/signin").await;
    rig.click_labelled("Create an account").await;
    rig.until_text("Start a vault for your business").await;
    rig.check_accessibility("sign-up").await;
    let form = [
        ("input[autocomplete=name]", "Pat Baker"),
        ("input[type=email]", "pat@harbour-cafe.example"),
        ("input[type=password]", "espresso and croissants"),
        ("input[maxlength='200']", "Harbour Cafe"),
    ];
    for (css, value) in form {
        rig.type_into(css, value).await;
    }
    rig.click("button[type=submit]").await;
    rig.until_text("This folder is empty").await;
    rig.until_text("Harbour Cafe").await;
    rig.click("#sign-out").await;
    rig.until_text("Forgot your password?").await;

    rig.sign_in("operator@coffer.example").await;
    rig.until_text("Operator console").await;
    rig.until_text(TENANT).await;
    rig.check_accessibility("operator console").await;
    rig.screenshot("operator").await;
    rig.type_into("form.inline-form input[pattern]", "corner-bakery")
        .await;
    rig.type_into("form.inline-form input[maxlength='200']", "Corner Bakery")
        .await;
    // Owned by the demo's owner, with a quota of 2,000 bytes.
    rig.type_into(
        "form.inline-form input[type=email]",
        "olivia@greenleaf.example",
    )
    .await;
    rig.type_into("form.inline-form input[type=number]", "0.000002")
        .await;
    rig.click_labelled("Create tenant").await;
    rig.until_text("Tenant corner-bakery created").await;
    rig.until_text("Corner Bakery").await;
    rig.click_labelled("Run the isolation check").await;
    rig.until_text("no findings").await;

    // Deleting a tenant hands over its signed receipt.
    rig.type_into("form.inline-form input[pattern]", "closing-shop")
        .await;
    rig.type_into("form.inline-form input[maxlength='200']", "Closing Shop")
        .await;
    rig.click_labelled("Create tenant").await;
    rig.until_text("Tenant closing-shop created").await;
    rig.click("button[aria-label='delete closing-shop']").await;
    rig.click("dialog[open] button[value=ok]").await;
    rig.until(
        "the receipt",
        "document.querySelector('dialog[open] pre.receipt')",
    )
    .await;
    let receipt = rig
        .js("return document.querySelector('dialog[open] pre.receipt').innerText;")
        .await;
    let receipt: serde_json::Value = serde_json::from_str(receipt.as_str().unwrap()).unwrap();
    assert!(
        receipt["document"].as_str().unwrap().contains("purged_at"),
        "{receipt}"
    );
    assert_eq!(
        receipt["signature"].as_str().unwrap().len(),
        128,
        "{receipt}"
    );
    rig.click_labelled("Done").await;

    // The owner of two businesses picks one; a file over its quota is refused with the
    // numbers.
    rig.click("#sign-out").await;
    rig.sign_in("olivia@greenleaf.example").await;
    rig.until(
        "the business picker",
        "document.querySelectorAll('#tenant-picker a').length === 2",
    )
    .await;
    rig.click("#tenant-picker summary").await;
    rig.click("#tenant-picker a[data-slug=corner-bakery]").await;
    rig.until_text("This folder is empty").await;
    let local = tempfile::tempdir().unwrap();
    let big = local_files(local.path(), &[("menu.pdf", &[b'x'; 5000][..])]);
    rig.pick(0, &big).await;
    let why = refused_upload(&rig).await;
    assert!(
        why.contains("Not enough space: 0 bytes of 2.0 KB used, and this file needs 5.0 KB"),
        "{why}"
    );
}
