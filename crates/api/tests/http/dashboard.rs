//! The dashboard in a real headless Chromium: served by the binary, reading
//! real locks from DynamoDB Local through `/v1` with a read token. Shows
//! the rows, a countdown that counts down, both filters, the waiting line,
//! a purpose holding HTML shown as text, the history of a grant ended
//! meanwhile, and saves a screenshot as
//! `$CARGO_TARGET_DIR/dashboard.png`.

use std::path::PathBuf;
use std::time::Duration;

use baton_lock::{AcquireRequest, JoinRequest, Joined, LineMode};
use baton_testkit::Browser;
use serde_json::json;

use crate::common::*;

/// Where the screenshot goes: `$CARGO_TARGET_DIR`, else the target
/// directory this test binary was built into.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/http-… → target
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

/// The rows of the held-locks table: (key, holder, purpose, env, left, waiting).
async fn rows(browser: &Browser) -> Vec<[String; 6]> {
    let mut out = Vec::new();
    let cells = browser
        .execute(
            "return [...document.querySelectorAll('#locks tbody tr')].map(tr =>
               ['key','holder','purpose','env','left','waiting'].map(c => tr.querySelector('td.' + c).textContent))",
            json!([]),
        )
        .await
        .expect("read rows");
    for row in cells.as_array().into_iter().flatten() {
        let cell = |i: usize| row[i].as_str().unwrap_or_default().to_owned();
        out.push([cell(0), cell(1), cell(2), cell(3), cell(4), cell(5)]);
    }
    out
}

/// Seconds in a countdown such as `9m 58s`, `1h 2m` or `45s`.
fn seconds(text: &str) -> u64 {
    text.split_whitespace()
        .map(|part| {
            let (n, unit) = part.split_at(part.len() - 1);
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("countdown {text:?}"));
            n * match unit {
                "d" => 86400,
                "h" => 3600,
                "m" => 60,
                "s" => 1,
                _ => panic!("countdown {text:?}"),
            }
        })
        .sum()
}

/// Polls the table until it has `want` rows (the page refreshes every 5 s
/// and at once on a filter change), or fails after 15 s.
async fn rows_become(browser: &Browser, want: usize) -> Vec<[String; 6]> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let seen = rows(browser).await;
        if seen.len() == want {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {want} rows, saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_dashboard_shows_live_locks_in_a_real_browser() {
    let api = Server::start().await;
    let prefix = deploy_key();
    let (web, db) = (format!("{prefix}/web"), format!("{prefix}/db"));
    let locks = api.locks();
    let mut request = AcquireRequest::new(&web, "jenkins-41", Duration::from_secs(600));
    request.owner_name = Some("Jenkins #41".into());
    request.purpose = Some("<img src=x onerror=\"document.title='pwned'\">deploy web".into());
    request.environment = Some("prod".into());
    request.run_url = Some("https://ci.example/job/41".into());
    locks.acquire(&request).await.expect("web lock");
    let mut request = AcquireRequest::new(&db, "migrator", Duration::from_secs(300));
    request.purpose = Some("schema v7".into());
    request.environment = Some("dev".into());
    locks.acquire(&request).await.expect("db lock");
    let mut waiter = AcquireRequest::new(&db, "next-in-line", Duration::from_secs(300));
    waiter.purpose = Some("schema v8".into());
    let joined = locks
        .join(&JoinRequest {
            acquire: waiter,
            mode: LineMode::Fifo { max: 5 },
            max_wait: Duration::from_secs(600),
            claim: None,
            member: None,
        })
        .await
        .expect("join the line");
    assert!(matches!(joined, Joined::Waiting(_)));

    let browser = Browser::start(1280, 800)
        .await
        .unwrap_or_else(|e| panic!("the dashboard test needs a browser: {e}"));
    // The token travels in the fragment, which the browser never sends.
    browser
        .goto(&format!("{}/#token={READER}", api.base))
        .await
        .expect("open the dashboard");

    let shown = rows_become(&browser, 2).await;
    let db_row = shown.iter().find(|r| r[0] == db).expect("db row");
    let web_row = shown.iter().find(|r| r[0] == web).expect("web row");
    assert_eq!(web_row[1], "Jenkins #41 (jenkins-41)");
    assert_eq!(
        web_row[2], "<img src=x onerror=\"document.title='pwned'\">deploy web",
        "a purpose is text, never markup"
    );
    assert_eq!(web_row[3], "prod");
    assert_eq!(db_row[1], "migrator");
    assert_eq!(db_row[5], "1", "one waits for the db key");
    let title = browser
        .execute("return document.title", json!([]))
        .await
        .unwrap();
    assert_eq!(title, "baton · locks");
    let run_link = browser
        .execute(
            "return document.querySelector('#locks tr[data-key=\"' + arguments[0] + '\"] td.run a').href",
            json!([web]),
        )
        .await
        .unwrap();
    assert_eq!(run_link, "https://ci.example/job/41");
    let line = browser
        .text(&browser.find("#lines tbody tr").await.unwrap())
        .await
        .unwrap();
    assert!(
        line.contains("next-in-line") && line.contains("schema v8"),
        "{line}"
    );

    // The token left the address bar and stays in this tab's storage.
    let href = browser
        .execute("return location.href", json!([]))
        .await
        .unwrap();
    assert!(!href.as_str().unwrap().contains(READER), "{href}");
    let stored = browser
        .execute("return sessionStorage.getItem('baton.token')", json!([]))
        .await
        .unwrap();
    assert_eq!(stored, READER);

    // The countdown counts down between loads.
    let first = seconds(&web_row[4]);
    assert!((590..=600).contains(&first), "{}", web_row[4]);
    let counted_down = eventually(Duration::from_secs(5), || async {
        rows(&browser)
            .await
            .iter()
            .find(|r| r[0] == web)
            .is_some_and(|r| seconds(&r[4]) < first)
    })
    .await;
    assert!(counted_down, "the time left went down from {first}s");

    // Environment filter: only prod.
    browser
        .click(
            &browser
                .find("#environment option[value=\"prod\"]")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let only_prod = rows_become(&browser, 1).await;
    assert_eq!(only_prod[0][0], web);
    assert!(
        browser
            .find_all("#lines tbody tr")
            .await
            .unwrap()
            .is_empty()
    );

    // Back to all environments, then a key prefix: only the db key.
    browser
        .click(
            &browser
                .find("#environment option[value=\"\"]")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    rows_become(&browser, 2).await;
    let input = browser.find("#prefix").await.unwrap();
    browser.type_into(&input, &db).await.unwrap();
    let only_db = rows_become(&browser, 1).await;
    assert_eq!(only_db[0][0], db);
    browser.clear(&input).await.unwrap();
    browser.type_into(&input, &prefix).await.unwrap();
    rows_become(&browser, 2).await;

    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = target_dir().join("dashboard.png");
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("dashboard screenshot: {}", path.display());

    // A lock released elsewhere leaves the page on the next refresh.
    // Its end reaches the history (from the table's stream, by the stream
    // consumer's code) and shows in the history view.
    let seen = locks.status(&web).await.unwrap().unwrap();
    let mut release =
        baton_lock::ReleaseRequest::new(&web, &seen.lock_id, baton_lock::LockStatus::Completed);
    release.actor = Some("jenkins-41".into());
    release.reason = Some("deployed".into());
    locks.release(&release).await.unwrap();
    api.record_history().await;
    let left = rows_become(&browser, 1).await;
    assert_eq!(left[0][0], db);
    let history_row = "return [...document.querySelectorAll('#history tbody tr')].map(tr =>
        ['key','holder','outcome','endedby','reason'].map(c => tr.querySelector('td.' + c).textContent))";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ended = loop {
        let rows = browser.execute(history_row, json!([])).await.unwrap();
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no history row appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        ended,
        json!([[web, "Jenkins #41", "COMPLETED", "jenkins-41", "deployed"]])
    );

    browser.quit().await.expect("close the browser");
}

#[tokio::test]
async fn the_dashboard_files_are_static_and_the_data_needs_a_token() {
    let api = Server::start().await;
    let key = deploy_key();
    let held = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(CI),
            Some(json!({"owner": "x", "ttl": "1m"})),
        )
        .await;
    assert_eq!(held.status, 200);
    let page = api.call("GET", "/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    for asset in ["/dashboard.js", "/dashboard.css"] {
        assert_eq!(
            api.call("GET", asset, None, None).await.status,
            200,
            "{asset}"
        );
    }
    assert!(!page.text.contains(&key), "the page carries no data");
    assert_eq!(api.call("GET", "/v1/locks", None, None).await.status, 401);
}
