//! A headless Chromium driven over the W3C WebDriver protocol, for tests of
//! pages baton serves. It starts Debian's `chromedriver` on a loopback port
//! and speaks the handful of WebDriver commands a page test needs (open a
//! URL, find elements, read text, click, type, run a script, take a
//! screenshot) as plain JSON over HTTP: eight endpoints are less to build
//! and to trust than a client crate and its dependency tree.
//!
//! Nothing here skips: when Chromium or chromedriver is missing,
//! [`Browser::start`] fails with what to install (`tests/tooling/browser.sh`).

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The key W3C WebDriver uses for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser binary and its driver, as Debian's `chromium` and
/// `chromium-driver` packages install them.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// See [`CHROMIUM`].
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// An element on the page, by its WebDriver reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(String);

/// A WebDriver session in headless Chromium; the driver (and with it the
/// browser) is killed on drop.
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless
    /// session of `width`×`height` pixels.
    pub async fn start(width: u32, height: u32) -> Result<Browser, String> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !std::path::Path::new(path).exists() {
                return Err(format!(
                    "{path} is missing: install Debian's `{package}` (bash tests/tooling/browser.sh)"
                ));
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("could not start {CHROMEDRIVER}: {e}"))?;
        let mut browser = Browser {
            driver,
            addr: format!("127.0.0.1:{port}"),
            session: String::new(),
        };
        browser.wait_ready(Duration::from_secs(20)).await?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let created = browser.call("POST", "/session", Some(caps)).await?;
        browser.session = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {created}"))?
            .to_owned();
        Ok(browser)
    }

    /// Polls the driver's `/status` until it is ready (or `within` passes).
    async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(status) = self.call("GET", "/status", None).await
                && status["ready"] == true
            {
                return Ok(());
            }
            if let Ok(Some(exit)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited at start: {exit}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("chromedriver was not ready within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One WebDriver command; its `value`, or the driver's error message.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect to chromedriver: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with chromedriver: {e}"))?;
        tokio::spawn(conn);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{method} {path}: not JSON ({e})"))?;
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status}: {}",
                json["value"]["message"]
            ));
        }
        Ok(json["value"].clone())
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits for its load.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", &self.path("/url"), Some(json!({"url": url})))
            .await
            .map(drop)
    }

    /// Every element matching the CSS `selector`, in document order.
    pub async fn find_all(&self, selector: &str) -> Result<Vec<Element>, String> {
        let found = self
            .call(
                "POST",
                &self.path("/elements"),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
            .collect())
    }

    /// The first element matching `selector`.
    pub async fn find(&self, selector: &str) -> Result<Element, String> {
        self.find_all(selector)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no element matches `{selector}`"))
    }

    /// The rendered text of `element`.
    pub async fn text(&self, element: &Element) -> Result<String, String> {
        let v = self
            .call(
                "GET",
                &self.path(&format!("/element/{}/text", element.0)),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Clicks `element` as a user would.
    pub async fn click(&self, element: &Element) -> Result<(), String> {
        self.call(
            "POST",
            &self.path(&format!("/element/{}/click", element.0)),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    /// Empties an input.
    pub async fn clear(&self, element: &Element) -> Result<(), String> {
        self.call(
            "POST",
            &self.path(&format!("/element/{}/clear", element.0)),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    /// Types `text` into `element`, key by key.
    pub async fn type_into(&self, element: &Element, text: &str) -> Result<(), String> {
        self.call(
            "POST",
            &self.path(&format!("/element/{}/value", element.0)),
            Some(json!({"text": text})),
        )
        .await
        .map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value, String> {
        self.call(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.call("GET", &self.path("/screenshot"), None).await?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))
    }

    /// Ends the session (the browser closes); the driver stops on drop.
    pub async fn quit(self) -> Result<(), String> {
        self.call("DELETE", &self.path(""), None).await.map(drop)
    }
}
