//! The web UI in a real browser: Debian's Chromium, headless, driven through WebDriver
//! (Debian's chromedriver and fantoccini) against `coffer demo` started by the test on a
//! free port over a fresh data root. Each journey signs in as one of the demo's people.
//!
//! Without Chromium and chromedriver the tests print that they were skipped and how to
//! run them; with `COFFER_REQUIRE_BROWSER_TESTS=1` (set by `.ci/run`) that skip fails.
//! Screenshots of the main pages go to `$COFFER_SCREENSHOTS` (default
//! `target/tmp/screenshots`); the README's come from there. axe-core (vendored in
//! `fixtures/axe-core/`, for the tests only) checks each page for accessibility.

mod housekeeping;
mod journeys;
mod measure;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub const PASSWORD: &str = "demo-password-2026";
pub const TENANT: &str = "greenleaf-landscaping";

/// How long a page may take to reach an expected state on a loaded 2-core machine (a
/// limit for a hung test, not a performance figure).
const PATIENCE: Duration = Duration::from_secs(60);

/// One browser test at a time: Chromium is heavy on two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn find_tools() -> Option<Tools> {
    let pick = |var: &str, default: &str| {
        let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
        path.exists().then_some(path)
    };
    Some(Tools {
        chromium: pick("COFFER_CHROMIUM", "/usr/bin/chromium")?,
        chromedriver: pick("COFFER_CHROMEDRIVER", "/usr/bin/chromedriver")?,
    })
}

/// A child process killed with the test.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Rig {
    pub client: Client,
    pub base: String,
    pub data_dir: PathBuf,
    pub downloads: PathBuf,
    _tmp: tempfile::TempDir,
    _server: Killed,
    _driver: Killed,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(data_dir: &Path) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first line names the address; the rest (the demo logins) is drained, since a
    // closed pipe would end the server at its next line.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (Killed(child), base)
}

impl Rig {
    /// The server and a browser, or `None` (having said so) when this machine has no
    /// Chromium.
    pub async fn start() -> Option<Rig> {
        Rig::start_with(&[]).await
    }

    /// The same with the system's dark mode on (`prefers-color-scheme: dark`).
    pub async fn start_dark() -> Option<Rig> {
        let rig = Rig::start_with(&["--force-dark-mode"]).await?;
        rig.open("#/signin").await;
        let dark = rig
            .js("return matchMedia('(prefers-color-scheme: dark)').matches;")
            .await;
        assert_eq!(dark, true, "the browser did not take the dark mode");
        Some(rig)
    }

    async fn start_with(extra_args: &[&str]) -> Option<Rig> {
        let Some(tools) = find_tools() else {
            let message = "web UI browser tests SKIPPED: Chromium and chromedriver are not \
                installed. Install them (Debian: `apt-get install chromium chromium-driver`, \
                or set COFFER_CHROMIUM and COFFER_CHROMEDRIVER) and run `cargo test --test it \
                web_ui`. `.ci/run` installs them and sets COFFER_REQUIRE_BROWSER_TESTS=1.";
            if std::env::var_os("COFFER_REQUIRE_BROWSER_TESTS").is_some() {
                panic!("{message}");
            }
            // Straight to the terminal: the test harness captures `eprintln!`, and a skip
            // must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{message}");
            return None;
        };
        let turn = ONE_BROWSER.lock().await;
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let downloads = tmp.path().join("downloads");
        std::fs::create_dir(&downloads).unwrap();
        let (server, base) = start_server(&data_dir);

        let port = free_port();
        let driver = Killed(
            Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let profile = tmp.path().join("profile");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .into_iter()
        .chain(extra_args.iter().copied())
        .map(str::to_owned)
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let started = Instant::now();
        let client = loop {
            let attempt = ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if started.elapsed() < PATIENCE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        Some(Rig {
            client,
            base,
            data_dir,
            downloads,
            _tmp: tmp,
            _server: server,
            _driver: driver,
            _turn: turn,
        })
    }

    pub async fn open(&self, hash: &str) {
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .unwrap();
    }

    /// Evaluates `script` (a function body) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Awaits a promise in the page: `script` is an expression yielding one.
    pub async fn js_await(&self, script: &str) -> Value {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];\n\
             Promise.resolve().then(() => ({script})).then(done, (e) => done({{ error: String(e) }}));"
        );
        self.client
            .execute_async(&wrapped, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `condition` (a JavaScript expression) holds in the page.
    pub async fn until(&self, what: &str, condition: &str) {
        self.until_within(what, condition, PATIENCE).await;
    }

    /// The same, for work known to take long (filling a big folder).
    pub async fn until_within(&self, what: &str, condition: &str, patience: Duration) {
        let started = Instant::now();
        let script = format!("return Boolean({condition});");
        loop {
            if self.client.execute(&script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if started.elapsed() > patience {
                let text = self.js("return document.body.innerText;").await;
                panic!("waited in vain for {what} ({condition}); the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's visible text contains `text`.
    pub async fn until_text(&self, text: &str) {
        let quoted = serde_json::to_string(text).unwrap();
        self.until(text, &format!("document.body.innerText.includes({quoted})"))
            .await;
    }

    pub async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Clicks the button or link whose text is exactly `label`.
    pub async fn click_labelled(&self, label: &str) {
        let xpath = format!(
            "//*[(self::button or self::a or self::summary) and normalize-space(.)={}]",
            xpath_literal(label)
        );
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no control labelled {label:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Chooses local files (newline-separated paths; a folder for the folder picker) in the
    /// page's `nth` file input, as a user would in the picker.
    pub async fn pick(&self, nth: usize, paths: &str) {
        let inputs = self
            .client
            .find_all(Locator::Css("#main input[type=file]"))
            .await
            .unwrap();
        inputs
            .get(nth)
            .unwrap_or_else(|| panic!("no file input {nth} on the page"))
            .send_keys(paths)
            .await
            .unwrap();
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn sign_in(&self, email: &str) {
        self.open("#/signin").await;
        self.type_into("input[name=email]", email).await;
        self.type_into("input[name=password]", PASSWORD).await;
        self.click("button[type=submit]").await;
        self.until("the signed-in shell", "document.getElementById('sign-out')")
            .await;
    }

    /// Records every request the page makes from now on, with its CSRF header.
    pub async fn record_requests(&self) {
        self.js(include_str!("record_requests.js")).await;
    }

    /// The requests recorded so far: (method, url, CSRF header).
    pub async fn recorded(&self) -> Vec<(String, String, Option<String>)> {
        let list = self.js("return window.__cofferRequests || [];").await;
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or("GET").to_uppercase(),
                    r["url"].as_str().unwrap_or("").to_owned(),
                    r["csrf"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    /// Waits for the browser to finish downloading one file; returns its path.
    pub async fn download(&self) -> PathBuf {
        let started = Instant::now();
        loop {
            let names: Vec<PathBuf> = std::fs::read_dir(&self.downloads)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            // In progress: `*.crdownload`, or a hidden temporary (`.org.chromium.*`)
            // renamed to the final name when the download completes.
            let busy = names.iter().any(|n| {
                let name = n.file_name().unwrap_or_default().to_string_lossy();
                name.ends_with(".crdownload") || name.starts_with('.')
            });
            if let [done] = names.as_slice()
                && !busy
            {
                return done.clone();
            }
            assert!(
                started.elapsed() < PATIENCE,
                "no download finished: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot of the page as `<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = std::env::var_os("COFFER_SCREENSHOTS").map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Runs axe-core on the page; fails on any serious or critical violation. Returns the
    /// number of rules checked and of lesser findings.
    pub async fn check_accessibility(&self, page: &str) -> (u64, u64) {
        let loaded = self.js("return typeof window.axe === 'object';").await;
        if loaded != Value::Bool(true) {
            let source = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/axe-core/axe.min.js"),
            )
            .unwrap();
            self.js(&format!("{source}\nreturn true;")).await;
        }
        let result = self
            .js_await(
                "axe.run(document, { resultTypes: ['violations'] }).then((r) => ({
                    rules: r.passes.length + r.violations.length + r.incomplete.length + r.inapplicable.length,
                    violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) })),
                }))",
            )
            .await;
        let violations = result["violations"].as_array().cloned().unwrap_or_default();
        let grave: Vec<&Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            grave.is_empty(),
            "accessibility of {page}: {}",
            serde_json::to_string_pretty(&grave).unwrap()
        );
        eprintln!(
            "axe on {page}: {} rules, {} serious or critical, {} lesser: {:?}",
            result["rules"],
            grave.len(),
            violations.len(),
            violations.iter().map(|v| &v["id"]).collect::<Vec<_>>()
        );
        (
            result["rules"].as_u64().unwrap_or(0),
            violations.len() as u64,
        )
    }
}

/// A chromedriver command outside the W3C set (network emulation), for `issue_cmd`.
#[derive(Debug)]
struct ChromeCommand {
    method: axum::http::Method,
    path: &'static str,
    body: Option<Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

impl Rig {
    /// Emulates a slow uplink of `bytes_per_second` (`None`: back to normal).
    pub async fn uplink(&self, bytes_per_second: Option<u64>) {
        let command = match bytes_per_second {
            Some(rate) => ChromeCommand {
                method: axum::http::Method::POST,
                path: "chromium/network_conditions",
                body: Some(json!({ "network_conditions": {
                    "offline": false, "latency": 5,
                    "download_throughput": 10_000_000, "upload_throughput": rate,
                } })),
            },
            None => ChromeCommand {
                method: axum::http::Method::DELETE,
                path: "chromium/network_conditions",
                body: None,
            },
        };
        self.client
            .issue_cmd(command)
            .await
            .unwrap_or_else(|e| panic!("network emulation refused: {e}"));
    }
}

fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else {
        format!("\"{text}\"")
    }
}
