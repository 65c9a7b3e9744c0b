//! `TestServer`: starts the real binary on port 0 and talks to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `lumen serve` (or another server subcommand, e.g. `lumen demo`) with its own data directory.
pub struct TestServer {
    child: Option<Child>,
    /// Base URL of the HTTP port, e.g. `http://127.0.0.1:43123`.
    pub http: String,
    /// Base URL of the gRPC port.
    pub grpc: String,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    command: String,
    extra_args: Vec<String>,
}

impl TestServer {
    /// Starts a server on a fresh data directory.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `lumen serve` flags.
    pub fn start_with(args: &[&str]) -> TestServer {
        Self::start_command("serve", args)
    }

    /// Starts `lumen <command>` (a subcommand that serves, such as `demo`) with extra flags.
    pub fn start_command(command: &str, args: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let extra_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (child, http, grpc) = spawn(command, &data_dir, &extra_args);
        TestServer {
            child: Some(child),
            http,
            grpc,
            data_dir,
            _tmp: Some(tmp),
            command: command.to_string(),
            extra_args,
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `kill -9`: no flush, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the binary again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.kill9();
        let (child, http, grpc) = spawn(&self.command, &self.data_dir, &self.extra_args);
        self.child = Some(child);
        self.http = http;
        self.grpc = grpc;
    }

    /// Runs SQL and returns the JSON response; panics with the server's message on error.
    pub async fn sql(&self, query: &str) -> Value {
        let (status, body) = self.sql_raw(query, "json").await;
        assert_eq!(status, 200, "query failed: {query}\n{body}");
        serde_json::from_str(&body).expect("JSON response")
    }

    /// Runs SQL and returns rows as JSON objects keyed by column name.
    pub async fn sql_rows(&self, query: &str) -> Vec<serde_json::Map<String, Value>> {
        let v = self.sql(query).await;
        let names: Vec<String> = v["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                names
                    .iter()
                    .cloned()
                    .zip(row.as_array().unwrap().iter().cloned())
                    .collect()
            })
            .collect()
    }

    /// Runs SQL with a format; returns (status, body).
    pub async fn sql_raw(&self, query: &str, format: &str) -> (u16, String) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/sql?format={format}", self.http))
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("SQL request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Asks the server to flush its head to segments now.
    pub async fn flush(&self) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/admin/flush", self.http))
            .send()
            .await
            .expect("flush");
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.text().await.unwrap_or_default()
        );
    }

    /// Polls `query` until its single count column equals `want` (data arrives asynchronously from SDKs).
    pub async fn wait_for_count(&self, query: &str, want: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.sql(query).await;
            let got = v["rows"][0][0].as_i64().unwrap_or(-1);
            if got >= want || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(command: &str, data_dir: &Path, extra: &[String]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .arg(command)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start lumen");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("lumen listening") => break line,
            Some(Ok(_)) => continue,
            _ => panic!("lumen exited before listening"),
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .map(|a| format!("http://{a}"))
            .expect("address in the listening line")
    };
    (child, field("http"), field("grpc"))
}
