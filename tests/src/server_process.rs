//! The real `coachsync` binary, started on `127.0.0.1:0` with a data directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Where the binary is: `COACHSYNC_BIN`, or the workspace's debug build.
pub fn binary() -> PathBuf {
    if let Ok(bin) = std::env::var("COACHSYNC_BIN") {
        return bin.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A relative CARGO_TARGET_DIR is relative to the workspace, as cargo reads it.
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug").join("coachsync")
}

/// The address in a `listening on ADDR` log line, which servers print once bound.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.split("listening on ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A running server process. Killed on drop.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    data_dir: PathBuf,
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl ServerProcess {
    /// Start `coachsync serve` on a free loopback port with `data_dir`, and wait until
    /// it listens.
    pub fn start(data_dir: &Path) -> Result<Self> {
        Self::start_with(data_dir, &[])
    }

    /// Like [`start`](Self::start), with extra flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_on(data_dir, "127.0.0.1:0".parse()?, extra)
    }

    /// Like [`start_with`](Self::start_with), on a given address: how a restarted
    /// server comes back where its clients look for it. Like every `start*` but
    /// [`start_secure`](Self::start_secure), it takes anonymous peers
    /// (`--allow-anonymous`), as the tests of syncing itself need.
    pub fn start_on(data_dir: &Path, listen: SocketAddr, extra: &[&str]) -> Result<Self> {
        let mut args = vec!["--allow-anonymous"];
        args.extend_from_slice(extra);
        Self::spawn(data_dir, listen, &args)
    }

    /// Start a server as it runs for real: every connection needs a token.
    pub fn start_secure(data_dir: &Path, extra: &[&str]) -> Result<Self> {
        Self::spawn(data_dir, "127.0.0.1:0".parse()?, extra)
    }

    fn spawn(data_dir: &Path, listen: SocketAddr, extra: &[&str]) -> Result<Self> {
        let bin = binary();
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env(
                "COACHSYNC_LOG",
                std::env::var("COACHSYNC_TEST_SERVER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build -p coachsync-server)",
                    bin.display()
                )
            })?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let found = listening_addr(&line);
                    lines.push(line);
                    if let Some(addr) = found {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    bail!("the server did not start:\n{}", lines.join("\n"));
                }
            }
        };
        Ok(Self {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            log: rx,
            lines,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The WebSocket URL of `/sync`.
    pub fn sync_url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// `GET path` over plain HTTP/1.1; returns the status code and the body.
    pub async fn http_get(&self, path: &str) -> Result<(u16, String)> {
        self.http("GET", path, None, None).await
    }

    /// A request over plain HTTP/1.1, with a bearer token and a JSON body if given;
    /// returns the status code and the body.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, String)> {
        let (status, _, body) = self.http_with_headers(method, path, token, body).await?;
        Ok((status, body))
    }

    /// [`http`](Self::http), with the response's header lines (lowercased names).
    pub async fn http_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<(String, String)>, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await??;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status line")?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Ok((status, headers, body.to_owned()))
    }

    /// One sample of a metric from `/metrics` (the first line that starts with `name`).
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let (_, body) = self.http_get("/metrics").await?;
        body.lines()
            .find_map(|line| {
                let rest = line.strip_prefix(name)?;
                let value = rest.strip_prefix(' ')?;
                value.trim().parse().ok()
            })
            .with_context(|| format!("metric {name} not found in:\n{body}"))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn log(&mut self) -> &[String] {
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        &self.lines
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> Result<ExitStatus> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed: {status}");
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the server did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `coachsync admin ARGS --data-dir DIR`; returns its output's last line (the
/// token, for `user add` and `token create`), or the error it printed.
pub fn admin(data_dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(binary())
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        bail!(
            "coachsync admin {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8(output.stdout)?;
    Ok(stdout.lines().last().unwrap_or_default().to_owned())
}
