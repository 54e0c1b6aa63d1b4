//! The baseline: an echo server in its own process (this same binary, `--echo-server`), on the
//! same kind of Unix socket as the agent's, answering each request line with a line of the
//! agent's answer's size.

use std::os::unix::net::UnixStream as StdStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Serves `socket`, answering each request line on a connection with the next of `sizes`
/// (cycling) bytes: a JSON object and `\n`. Single-threaded, as the agent's event loop is.
pub fn echo_server(socket: &Path, sizes: &[usize]) -> Result<()> {
    let answers: Arc<Vec<Vec<u8>>> = Arc::new(
        sizes
            .iter()
            .map(|n| {
                let fill = n.saturating_sub(12).max(1);
                format!("{{\"echo\":\"{}\"}}\n", "x".repeat(fill)).into_bytes()
            })
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::UnixListener::bind(socket)
            .with_context(|| format!("bind {}", socket.display()))?;
        loop {
            let (stream, _) = listener.accept().await?;
            let answers = answers.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = tokio::io::BufReader::new(r);
                let mut line = Vec::with_capacity(1024);
                let mut i = 0;
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line).await {
                        Ok(n) if n > 0 => {}
                        _ => return,
                    }
                    if w.write_all(&answers[i % answers.len()]).await.is_err() {
                        return;
                    }
                    i += 1;
                }
            });
        }
    })
}

/// A running echo server process.
pub struct Echo {
    pub child: Child,
    pub socket: PathBuf,
}

impl Echo {
    pub fn start(dir: &Path, sizes: &[usize]) -> Result<Echo> {
        let socket = dir.join("echo.sock");
        let _ = std::fs::remove_file(&socket);
        let csv: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        let child = Command::new(std::env::current_exe()?)
            .arg("--echo-server")
            .arg(&socket)
            .arg(csv.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("start the echo server")?;
        let mut echo = Echo { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdStream::connect(&echo.socket).is_err() {
            if let Some(s) = echo.child.try_wait()? {
                bail!("the echo server exited with {s}");
            }
            if Instant::now() > deadline {
                bail!("the echo server did not listen within 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(echo)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
