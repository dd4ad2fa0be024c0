//! The rest of a working week in the browser: signing in with the keyboard alone,
//! folders, renaming and moving, the trash (restore, delete for good), importing a ZIP
//! with its report, and a forgotten password reset through the outbox.

use super::{PASSWORD, Rig, TENANT};
use crate::support::zipgen::{RawEntry, build};

const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";

/// The newest outbox message's one-time code.
fn newest_code(rig: &Rig) -> String {
    let mut messages: Vec<_> = std::fs::read_dir(rig.data_dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    messages.sort();
    let text = std::fs::read_to_string(messages.last().unwrap()).unwrap();
    text.split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned()
}

/// Opens a row's action menu and picks `action`.
async fn row_action(rig: &Rig, name: &str, action: &str) {
    rig.click(&format!("summary[aria-label='Actions for {name}']"))
        .await;
    rig.click(&format!(
        "details[open] .menu-items [data-action='{action}']"
    ))
    .await;
}

/// Answers the open dialog: its text field (if any) set to `text`, then its main button.
async fn answer_dialog(rig: &Rig, text: Option<&str>) {
    if let Some(text) = text {
        rig.type_into("dialog[open] input[type=text]", text).await;
    }
    rig.click("dialog[open] button[value=ok]").await;
    rig.until(
        "the dialog to close",
        "!document.querySelector('dialog[open]')",
    )
    .await;
}

async fn listed(rig: &Rig, name: &str) {
    let quoted = serde_json::to_string(name).unwrap();
    rig.until(
        name,
        &format!("[...document.querySelectorAll('table.files td.name')].some((td) => td.innerText.trim() === {quoted})"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_trash_import_and_a_password_reset_work_from_the_keyboard_and_mouse() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    // Keyboard only: the e-mail field has focus; Tab to the password, Enter submits.
    rig.open("#/signin").await;
    rig.until(
        "focus in the e-mail field",
        "document.activeElement && document.activeElement.name === 'email'",
    )
    .await;
    let keys = format!("olivia@greenleaf.example{TAB}{PASSWORD}{ENTER}");
    rig.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&keys)
        .await
        .unwrap();
    rig.until("the signed-in shell", "document.getElementById('sign-out')")
        .await;
    rig.until_text("contracts").await;
    // After a view changes, its heading has focus (screen readers start there).
    assert_eq!(rig.js("return document.activeElement.tagName;").await, "H1");

    // A folder, a file renamed and moved into it.
    rig.click("#new-folder").await;
    answer_dialog(&rig, Some("estimates")).await;
    listed(&rig, "estimates").await;
    let local = tempfile::tempdir().unwrap();
    let draft = local.path().join("draft.txt");
    std::fs::write(&draft, b"first draft").unwrap();
    rig.pick(0, &draft.display().to_string()).await;
    listed(&rig, "draft.txt").await;
    row_action(&rig, "draft.txt", "rename").await;
    answer_dialog(&rig, Some("final.txt")).await;
    listed(&rig, "final.txt").await;
    row_action(&rig, "final.txt", "move").await;
    answer_dialog(&rig, Some("estimates")).await;
    rig.open(&format!("#/t/{TENANT}/files/estimates")).await;
    listed(&rig, "final.txt").await;

    // A whole folder, with its subfolders, from the folder picker.
    let visit = local.path().join("site-visit");
    std::fs::create_dir_all(visit.join("photos")).unwrap();
    std::fs::write(visit.join("notes.txt"), b"gate code 1234").unwrap();
    std::fs::write(visit.join("photos/front.png"), b"not really a png").unwrap();
    rig.pick(1, &visit.display().to_string()).await;
    listed(&rig, "site-visit").await;
    let tree = rig
        .js_await(&format!(
            "fetch('/api/v1/tenants/{TENANT}/tree/estimates/site-visit/photos').then((r) => r.json())"
        ))
        .await;
    assert_eq!(tree["entries"][0]["name"], "front.png", "{tree}");

    // A file dropped on the page is uploaded into the folder shown.
    rig.js(
        "const drop = new DataTransfer();
         drop.items.add(new File(['dropped in'], 'dropped.txt', { type: 'text/plain' }));
         const main = document.getElementById('main');
         for (const type of ['dragenter', 'dragover', 'drop'])
           main.dispatchEvent(new DragEvent(type, { dataTransfer: drop, bubbles: true, cancelable: true }));
         return true;",
    )
    .await;
    listed(&rig, "dropped.txt").await;

    // The same name again is never replaced silently: it is refused, and replaced only
    // when the user says so.
    let again = local.path().join("dropped.txt");
    std::fs::write(&again, b"second version").unwrap();
    rig.pick(0, &again.display().to_string()).await;
    rig.until_text("A file with this name is already here.")
        .await;
    rig.click_labelled("Replace dropped.txt").await;
    let replaced = format!(
        "fetch('/api/v1/tenants/{TENANT}/files/estimates/dropped.txt').then((r) => r.text())"
    );
    rig.until(
        "the replacement",
        "[...document.querySelectorAll(\".uploads li[data-name='dropped.txt']\")].pop().dataset.state === 'done'",
    )
    .await;
    assert_eq!(rig.js_await(&replaced).await, "second version");

    // On a slow line the bar moves; cancelling stops the upload and stores nothing.
    rig.uplink(Some(64 * 1024)).await;
    let video = local.path().join("site-video.mp4");
    std::fs::write(&video, vec![7u8; 2 << 20]).unwrap();
    rig.pick(0, &video.display().to_string()).await;
    let row = "document.querySelector(\".uploads li[data-name='site-video.mp4']\")";
    rig.until(
        "the upload under way",
        &format!("{row} && {row}.querySelector('progress').value > 0"),
    )
    .await;
    let part = rig
        .js(&format!(
            "const p = {row}.querySelector('progress'); return p.value / p.max;"
        ))
        .await;
    assert!(part.as_f64().unwrap() < 1.0, "{part}");
    rig.click("button[aria-label='Cancel site-video.mp4']")
        .await;
    rig.until(
        "the cancelled upload",
        &format!("{row}.dataset.state === 'failed' && {row}.innerText.includes('Cancelled')"),
    )
    .await;
    rig.uplink(None).await;
    let listing = rig
        .js_await(&format!(
            "fetch('/api/v1/tenants/{TENANT}/tree/estimates').then((r) => r.json())"
        ))
        .await;
    assert!(!listing.to_string().contains("site-video"), "{listing}");

    // Deleted to the trash, restored, deleted again and then for good.
    row_action(&rig, "final.txt", "delete").await;
    answer_dialog(&rig, None).await;
    rig.until_text("moved to the trash").await;
    rig.open(&format!("#/t/{TENANT}/trash")).await;
    rig.until_text("estimates/final.txt").await;
    rig.check_accessibility("trash").await;
    rig.screenshot("trash").await;
    rig.click_labelled("Restore").await;
    rig.until_text("Restored estimates/final.txt").await;
    rig.open(&format!("#/t/{TENANT}/files/estimates")).await;
    listed(&rig, "final.txt").await;
    row_action(&rig, "final.txt", "delete").await;
    answer_dialog(&rig, None).await;
    rig.open(&format!("#/t/{TENANT}/trash")).await;
    rig.click_labelled("Delete for good").await;
    answer_dialog(&rig, None).await;
    rig.until_text("The trash is empty.").await;

    // Import: a report of what came in; again, what was skipped, or nothing at all.
    let archive = local.path().join("old-files.zip");
    std::fs::write(
        &archive,
        build(&[
            RawEntry::file("imported/price-list.txt", b"mowing: 40"),
            RawEntry::file("imported/notes.txt", b"call back"),
        ]),
    )
    .unwrap();
    rig.open(&format!("#/t/{TENANT}/data")).await;
    rig.pick(0, &archive.display().to_string()).await;
    rig.click_labelled("Import").await;
    rig.until_text("Imported 2 files").await;
    rig.click_labelled("Import").await;
    rig.until_text("Nothing was imported").await;
    rig.client
        .find(fantoccini::Locator::Css("#main select"))
        .await
        .unwrap()
        .select_by_value("skip")
        .await
        .unwrap();
    rig.click_labelled("Import").await;
    rig.until_text("Skipped 2, because they already exist")
        .await;
    rig.until_text("imported/notes.txt").await;
    rig.screenshot("import-report").await;

    // The owner restricts processing, then lifts the restriction.
    rig.click_labelled("Restrict processing").await;
    answer_dialog(&rig, None).await;
    rig.until_text("State: restricted").await;
    rig.click_labelled("Lift the restriction").await;
    answer_dialog(&rig, None).await;
    rig.until_text("State: active").await;

    // A record created in a form, then deleted.
    rig.open(&format!("#/t/{TENANT}/records/jobs/new")).await;
    rig.type_into("#main input[pattern]", "j-ui-test").await;
    rig.type_into("[data-key=name]", "Hedge trimming, Maple Street")
        .await;
    rig.click("#save-record").await;
    rig.until_text("Version 1").await;
    rig.until_text("jobs · j-ui-test").await;
    rig.click_labelled("Delete").await;
    answer_dialog(&rig, None).await;
    rig.until("the jobs table", "document.querySelector('table.records')")
        .await;
    let status = rig
        .js_await(&format!(
            "fetch('/api/v1/tenants/{TENANT}/records/jobs/j-ui-test').then((r) => r.status)"
        ))
        .await;
    assert_eq!(status, 404);

    // Your account: the sessions signed in as you; another one is signed out from here.
    let addr: std::net::SocketAddr = rig.base.trim_start_matches("http://").parse().unwrap();
    let login = serde_json::json!({ "email": "olivia@greenleaf.example", "password": PASSWORD });
    let other = crate::support::client::request(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("content-type", "application/json")],
        login.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(other.status, 200);
    rig.open("#/account").await;
    rig.until_text("this browser").await;
    rig.until(
        "two sessions",
        "document.querySelectorAll('main table tbody tr').length === 2",
    )
    .await;
    rig.click("main table button.danger").await;
    rig.until_text("Signed out there").await;
    rig.until(
        "one session",
        "document.querySelectorAll('main table tbody tr').length === 1",
    )
    .await;
    // A wrong current password is refused with its reason and leaves the session alone.
    rig.check_accessibility("your account").await;
    let password_form = "form.inline-form:nth-of-type(2)";
    rig.type_into(
        &format!("{password_form} input[autocomplete=current-password]"),
        "not my password",
    )
    .await;
    for css in [
        "input[minlength='10']",
        "input[autocomplete=new-password]:not([minlength])",
    ] {
        rig.type_into(&format!("{password_form} {css}"), "another long passphrase")
            .await;
    }
    rig.click_labelled("Change password").await;
    rig.until("the refusal", "document.querySelector('.toast.error')")
        .await;
    assert!(
        !rig.js("return document.body.innerText;")
            .await
            .as_str()
            .unwrap()
            .contains("session has ended")
    );
    assert!(rig.exists("#sign-out").await);
    rig.open("#/account").await;
    rig.until_text("this browser").await;

    // A forgotten password: the code from the outbox, a new password, signed in.
    rig.click("#sign-out").await;
    rig.until_text("Forgot your password?").await;
    rig.click_labelled("Forgot your password?").await;
    rig.type_into("input[type=email]", "olivia@greenleaf.example")
        .await;
    rig.click_labelled("Send reset message").await;
    rig.until_text("a message with a reset code is on its way")
        .await;
    let code = newest_code(&rig);
    rig.open(&format!("#/reset/{code}")).await;
    rig.until_text("Choose a new password").await;
    rig.check_accessibility("choose a new password").await;
    let fields = rig
        .client
        .find_all(fantoccini::Locator::Css("input[type=password]"))
        .await
        .unwrap();
    for field in &fields {
        field.send_keys("a new and long passphrase").await.unwrap();
    }
    rig.click_labelled("Change password").await;
    rig.until_text("Your password is set").await;
    rig.open("#/signin").await;
    rig.type_into("input[name=email]", "olivia@greenleaf.example")
        .await;
    rig.type_into("input[name=password]", PASSWORD).await;
    rig.click("button[type=submit]").await;
    rig.until_text("do not match an account").await;
    rig.type_into("input[name=password]", "a new and long passphrase")
        .await;
    rig.click("button[type=submit]").await;
    rig.until("the signed-in shell", "document.getElementById('sign-out')")
        .await;
}
