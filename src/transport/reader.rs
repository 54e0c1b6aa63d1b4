//! Reading requests off one connection with a deadline: [`RequestReader`] owns the read half
//! and the [`JsonStreamDecoder`], and gives a request that has started arriving
//! `ipc.request_deadline` to finish. A slow-drip client (a byte now and then, never a whole
//! request) gets [`ReadError::Deadline`] instead of holding the connection for ever.
//!
//! Bytes are read only when the session asks for the next request, so a client that sends
//! faster than it is answered waits in its own socket buffer: the agent's buffer holds at most
//! one read (8 KiB) beyond the request being decoded, which the decoder caps at
//! `ipc.max_request_bytes`.

use std::time::Duration;

use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

use super::framing::{FrameError, JsonStreamDecoder};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// Why no request came.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are not an acceptable request (too large, too deep, not JSON).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request started arriving and was not complete within the deadline.
    #[error("request not complete {0:?} after its first byte")]
    Deadline(Duration),
}

/// Requests from one connection.
pub struct RequestReader<R> {
    reader: R,
    decoder: JsonStreamDecoder,
    buf: BytesMut,
    deadline: Duration,
    /// When the first byte of the request being received arrived.
    started: Option<Instant>,
    done: bool,
}

impl<R: AsyncRead + Unpin> RequestReader<R> {
    /// Reads from `reader`, decoding with `decoder`; a request must be complete `deadline`
    /// after its first byte.
    pub fn new(reader: R, decoder: JsonStreamDecoder, deadline: Duration) -> Self {
        RequestReader {
            reader,
            decoder,
            buf: BytesMut::new(),
            deadline,
            started: None,
            done: false,
        }
    }

    /// The next request; `None` once the connection ended (cleanly, or with a read error);
    /// after an `Err` nothing more is read.
    pub async fn next(&mut self) -> Option<Result<Bytes, ReadError>> {
        loop {
            if self.done {
                return None;
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    self.started = None;
                    return Some(Ok(frame));
                }
                Ok(None) => {}
                Err(e) => return self.fail(e.into()),
            }
            if self.decoder.in_progress() {
                self.started.get_or_insert_with(Instant::now);
            }
            self.buf.reserve(READ_CHUNK);
            // At most one chunk: `read_buf` alone would fill all the spare capacity, which
            // grows with a large request.
            let mut chunk = (&mut self.reader).take(READ_CHUNK as u64);
            let read = chunk.read_buf(&mut self.buf);
            // A deadline too far to represent is no deadline (a configured value, not a panic).
            let n = match self.started.and_then(|t0| t0.checked_add(self.deadline)) {
                Some(due) => match tokio::time::timeout_at(due, read).await {
                    Ok(r) => r,
                    Err(_) => return self.fail(ReadError::Deadline(self.deadline)),
                },
                None => read.await,
            };
            match n {
                Ok(0) => {
                    self.done = true;
                    return match self.decoder.decode_eof(&mut self.buf) {
                        Ok(Some(frame)) => Some(Ok(frame)),
                        Ok(None) => None,
                        Err(e) => Some(Err(e.into())),
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "read failed; closing");
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn fail(&mut self, e: ReadError) -> Option<Result<Bytes, ReadError>> {
        self.done = true;
        self.buf.clear();
        Some(Err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn reader(
        r: tokio::io::DuplexStream,
        deadline_ms: u64,
    ) -> RequestReader<tokio::io::DuplexStream> {
        RequestReader::new(
            r,
            JsonStreamDecoder::new(1024, 8),
            Duration::from_millis(deadline_ms),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn requests_split_and_joined_arrive_whole() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut rr = reader(r, 1000);
        w.write_all(b"{\"a\":1}  {\"b\"").await.unwrap();
        assert_eq!(&rr.next().await.unwrap().unwrap()[..], b"{\"a\":1}");
        w.write_all(b":2}").await.unwrap();
        assert_eq!(&rr.next().await.unwrap().unwrap()[..], b"{\"b\":2}");
        drop(w);
        assert!(rr.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_drip_request_misses_its_deadline() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut rr = reader(r, 1000);
        let drip = tokio::spawn(async move {
            for b in b"{\"type\":\"ping_request\"" {
                if w.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let t0 = tokio::time::Instant::now();
        match rr.next().await {
            Some(Err(ReadError::Deadline(d))) => assert_eq!(d, Duration::from_millis(1000)),
            other => panic!("expected a deadline error, got {other:?}"),
        }
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1300),
            "{waited:?}"
        );
        assert!(rr.next().await.is_none(), "nothing after the error");
        drip.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_has_no_deadline_and_each_request_gets_its_own() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut rr = reader(r, 1000);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            w.write_all(b"{\"a\"").await.unwrap();
            tokio::time::sleep(Duration::from_millis(900)).await;
            w.write_all(b":1}{").await.unwrap();
            tokio::time::sleep(Duration::from_millis(900)).await;
            w.write_all(b"}").await.unwrap();
            w
        });
        assert_eq!(&rr.next().await.unwrap().unwrap()[..], b"{\"a\":1}");
        assert_eq!(&rr.next().await.unwrap().unwrap()[..], b"{}");
        drop(writer.await.unwrap());
        assert!(rr.next().await.is_none());
    }

    #[tokio::test]
    async fn at_most_one_chunk_is_read_beyond_the_request() {
        let (mut w, r) = tokio::io::duplex(256 * 1024);
        let mut rr = RequestReader::new(
            r,
            JsonStreamDecoder::new(64 * 1024, 8),
            Duration::from_secs(10),
        );
        // A large request grows the buffer; what the client sent after it stays in its socket.
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(40 * 1024));
        w.write_all(big.as_bytes()).await.unwrap();
        w.write_all("{}".repeat(50 * 1024).as_bytes())
            .await
            .unwrap();
        assert_eq!(rr.next().await.unwrap().unwrap().len(), big.len());
        assert!(
            rr.buf.len() <= READ_CHUNK,
            "{} bytes read ahead",
            rr.buf.len()
        );
    }

    #[tokio::test]
    async fn a_deadline_too_far_to_represent_is_no_deadline() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut rr = RequestReader::new(r, JsonStreamDecoder::new(1024, 8), Duration::MAX);
        w.write_all(b"{\"a\":").await.unwrap();
        // The rest comes once the reader has the start and a deadline would be set.
        let rest = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            w.write_all(b"1}").await.unwrap();
            w
        });
        assert_eq!(&rr.next().await.unwrap().unwrap()[..], b"{\"a\":1}");
        drop(rest.await.unwrap());
    }

    #[tokio::test]
    async fn oversized_and_malformed_input_end_the_stream() {
        let (mut w, r) = tokio::io::duplex(4096);
        let mut rr = reader(r, 1000);
        w.write_all(&[b'{'; 20]).await.unwrap();
        assert!(matches!(
            rr.next().await,
            Some(Err(ReadError::Frame(FrameError::TooDeep { .. })))
        ));
        assert!(rr.next().await.is_none());
        let (mut w, r) = tokio::io::duplex(4096);
        let mut rr = reader(r, 1000);
        w.write_all(b"\xff\xfe").await.unwrap();
        assert!(matches!(
            rr.next().await,
            Some(Err(ReadError::Frame(FrameError::Malformed(_))))
        ));
    }
}
