//! HTTP/1.1 exchanges for the lean Invoke client ([`crate::lambda_api`]): one request and its
//! whole answer at a time on a kept-alive connection, driven in the caller's own task.
//!
//! Why not hyper's client: its connection runs as a task of its own, so every answer crosses a
//! dispatch channel and a body channel and wakes two tasks, and its pool hashes a key, clones the
//! connector and checks a connection out and back in per request. At thousands of tasks a query
//! that was the largest share of the coordinator's CPU per task. Here a request is one write,
//! its answer is parsed with hyper's own parser (`httparse`) straight from the socket's buffer,
//! and the connection goes back to a plain stack of idle ones. Connecting (TCP, TLS with the
//! system's roots) stays hyper-rustls's.
//!
//! Contract:
//! - [`Connections::exchange`] sends one request (head and body in one write) and answers the
//!   status, headers and whole body, framed by `Content-Length`, chunked transfer coding, or the
//!   end of the connection. `1xx` answers are skipped.
//! - A connection is reused only after a complete answer that did not say `Connection: close`,
//!   with nothing left unread; an idle connection that the server closed, or that has been idle
//!   longer than [`IDLE_TIMEOUT`], is dropped at checkout, never written to.
//! - An answer's head is at most [`MAX_HEAD`] bytes and its body at most the caller's limit;
//!   anything else (a malformed head or chunk, a short body) is an [`ExchangeError`], and the
//!   connection is dropped. Dropping the future (a timeout) drops its connection.

use std::ops::Range;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Context;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tower_service::Service;

/// How long an idle connection is kept (AWS endpoints close idle connections after about a
/// minute; a request on one the server is closing would fail).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// The largest answer head read.
pub const MAX_HEAD: usize = 64 * 1024;

/// Idle connections kept at most.
const MAX_IDLE: usize = 512;

type Stream = TokioIo<MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>>;

/// Kept-alive connections to one endpoint (`scheme://authority`).
pub struct Connections {
    connector: HttpsConnector<HttpConnector>,
    endpoint: http::Uri,
    idle: Mutex<Vec<Connection>>,
}

struct Connection {
    io: Stream,
    /// Bytes read past the previous answer (none on a reusable connection).
    buffer: BytesMut,
    idle_since: Instant,
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    head: Head,
    pub body: Bytes,
}

impl Answer {
    /// The first value of the header `name` (any case), when it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

/// An answer's head: its bytes, and where each header's name and value are in them (so that
/// parsing allocates nothing per header).
#[derive(Debug)]
struct Head {
    bytes: Bytes,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        let (_, value) =
            self.headers.iter().find(|(n, _)| self.bytes[n.clone()].eq_ignore_ascii_case(name.as_bytes()))?;
        std::str::from_utf8(&self.bytes[value.clone()]).ok()
    }
}

/// Why an exchange got no whole answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("connecting: {source}")]
    Connect {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{during}: {source}")]
    Io {
        during: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the connection closed {during}")]
    Closed { during: &'static str },
    #[error("malformed answer: {reason}")]
    Malformed { reason: String },
    #[error("the answer's body is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl Connections {
    /// Connections to `endpoint`'s scheme and authority, made by `connector`.
    pub fn new(connector: HttpsConnector<HttpConnector>, endpoint: http::Uri) -> Self {
        Connections { connector, endpoint, idle: Mutex::new(Vec::new()) }
    }

    /// Sends `head` (a complete request head, ending with the blank line) and `body`, and reads
    /// the whole answer, whose body may be at most `max_body` bytes.
    pub async fn exchange(&self, head: &[u8], body: &[u8], max_body: usize) -> Result<Answer, ExchangeError> {
        let mut connection = match self.checkout() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head);
        request.extend_from_slice(body);
        let io = |source| ExchangeError::Io { during: "sending the request", source };
        connection.io.write_all(&request).await.map_err(io)?;
        connection.io.flush().await.map_err(io)?;
        let (answer, reusable) = connection.read_answer(max_body).await?;
        if reusable && connection.buffer.is_empty() {
            connection.idle_since = Instant::now();
            let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(connection);
            }
        }
        Ok(answer)
    }

    /// The most recently used idle connection that is still open.
    fn checkout(&self) -> Option<Connection> {
        loop {
            let mut connection = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()?;
            if connection.idle_since.elapsed() < IDLE_TIMEOUT && connection.is_open() {
                return Some(connection);
            }
        }
    }

    async fn connect(&self) -> Result<Connection, ExchangeError> {
        let mut connector = self.connector.clone();
        let stream = connector.call(self.endpoint.clone()).await.map_err(|source| ExchangeError::Connect { source })?;
        Ok(Connection {
            io: TokioIo::new(stream),
            buffer: BytesMut::with_capacity(16 * 1024),
            idle_since: Instant::now(),
        })
    }
}

impl Connection {
    /// Whether the server has neither closed the connection nor sent anything unasked.
    fn is_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut read = ReadBuf::new(&mut byte);
        let waker = futures::task::noop_waker();
        // Pending: nothing to read and no end of stream, so the server still waits for a request.
        Pin::new(&mut self.io).poll_read(&mut Context::from_waker(&waker), &mut read).is_pending()
    }

    /// Reads more bytes into the buffer; `Closed` at the end of the connection.
    async fn fill(&mut self, during: &'static str) -> Result<(), ExchangeError> {
        if self.buffer.capacity() - self.buffer.len() < 4096 {
            self.buffer.reserve(16 * 1024);
        }
        match self.io.read_buf(&mut self.buffer).await {
            Ok(0) => Err(ExchangeError::Closed { during }),
            Ok(_) => Ok(()),
            Err(source) => Err(ExchangeError::Io { during, source }),
        }
    }

    /// The next whole answer, and whether the connection may carry another request.
    async fn read_answer(&mut self, max_body: usize) -> Result<(Answer, bool), ExchangeError> {
        loop {
            let (version, status, headers, head_len) = loop {
                if let Some(parsed) = parse_head(&self.buffer)? {
                    break parsed;
                }
                if self.buffer.len() > MAX_HEAD {
                    return Err(ExchangeError::Malformed {
                        reason: format!("the head is longer than {MAX_HEAD} bytes"),
                    });
                }
                self.fill("before the answer's head").await?;
            };
            let head = Head { bytes: self.buffer.split_to(head_len).freeze(), headers };
            if (100..200).contains(&status) {
                continue;
            }
            let value = |name: &str| head.header(name);
            // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes it unless told
            // to keep it.
            let says = |token: &str| {
                value("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            };
            let mut reusable = if version == 1 { !says("close") } else { says("keep-alive") };
            let chunked = value("transfer-encoding")
                .is_some_and(|v| v.rsplit(',').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked")));
            let length = value("content-length").map(|length| {
                length.trim().parse::<usize>().map_err(|_| ExchangeError::Malformed {
                    reason: format!("Content-Length {length:?} is not a length"),
                })
            });
            let body = if status == 204 || status == 304 {
                Bytes::new()
            } else if chunked {
                self.read_chunked(max_body).await?
            } else if let Some(length) = length {
                let length = length?;
                if length > max_body {
                    return Err(ExchangeError::TooLarge { limit: max_body });
                }
                self.buffer.reserve(length.saturating_sub(self.buffer.len()));
                while self.buffer.len() < length {
                    self.fill("in the answer's body").await?;
                }
                self.buffer.split_to(length).freeze()
            } else {
                // Neither: the body runs to the end of the connection.
                reusable = false;
                loop {
                    if self.buffer.len() > max_body {
                        return Err(ExchangeError::TooLarge { limit: max_body });
                    }
                    match self.fill("").await {
                        Ok(()) => {}
                        Err(ExchangeError::Closed { .. }) => break,
                        Err(e) => return Err(e),
                    }
                }
                self.buffer.split().freeze()
            };
            return Ok((Answer { status, head, body }, reusable));
        }
    }

    /// A chunked body, its trailers skipped.
    async fn read_chunked(&mut self, max_body: usize) -> Result<Bytes, ExchangeError> {
        let mut body = BytesMut::new();
        loop {
            let line = self.line("in a chunk's size").await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .ok()
                .filter(|_| !size.is_empty() && size.len() <= 16)
                .ok_or_else(|| ExchangeError::Malformed { reason: format!("chunk size {size:?}") })?;
            if size == 0 {
                while !self.line("in the trailers").await?.is_empty() {}
                return Ok(body.freeze());
            }
            if body.len().saturating_add(size) > max_body {
                return Err(ExchangeError::TooLarge { limit: max_body });
            }
            while self.buffer.len() < size + 2 {
                self.fill("in a chunk").await?;
            }
            body.extend_from_slice(&self.buffer[..size]);
            if &self.buffer[size..size + 2] != b"\r\n" {
                return Err(ExchangeError::Malformed { reason: "a chunk does not end with CRLF".into() });
            }
            self.buffer.advance(size + 2);
        }
    }

    /// The next CRLF-terminated line (at most [`MAX_HEAD`] bytes), without its CRLF.
    async fn line(&mut self, during: &'static str) -> Result<String, ExchangeError> {
        // Where the search for CRLF goes on: bytes already searched are not searched again.
        let mut searched = 0;
        loop {
            if let Some(at) = self.buffer[searched..].windows(2).position(|w| w == b"\r\n") {
                let end = searched + at;
                let line = self.buffer.split_to(end + 2);
                return String::from_utf8(line[..end].to_vec())
                    .map_err(|_| ExchangeError::Malformed { reason: format!("a line {during} is not UTF-8") });
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(ExchangeError::Malformed { reason: format!("a line {during} is too long") });
            }
            searched = self.buffer.len().saturating_sub(1);
            self.fill(during).await?;
        }
    }
}

type Parsed = (u8, u16, Vec<(Range<usize>, Range<usize>)>, usize);

/// The answer head at the start of `buffer`, when it is all there: its minor HTTP version, its
/// status, where its headers' names and values are, and its length.
fn parse_head(buffer: &[u8]) -> Result<Option<Parsed>, ExchangeError> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let length = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ExchangeError::Malformed { reason: format!("the head: {e}") }),
    };
    let status = response.code.unwrap_or_default();
    let start = buffer.as_ptr() as usize;
    let range = |part: &[u8]| {
        let at = part.as_ptr() as usize - start;
        at..at + part.len()
    };
    let headers = response.headers.iter().map(|h| (range(h.name.as_bytes()), range(h.value))).collect();
    Ok(Some((response.version.unwrap_or_default(), status, headers, length)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers each connection's requests with `answers`, in order, then closes.
    async fn server(answers: Vec<Vec<&'static [u8]>>) -> (http::Uri, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: http::Uri = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
        let handle = tokio::spawn(async move {
            let mut requests = Vec::new();
            for connection in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                for parts in connection {
                    let mut request = vec![0u8; 4096];
                    let n = socket.read(&mut request).await.unwrap();
                    requests.push(request[..n].to_vec());
                    for piece in parts.chunks(7) {
                        socket.write_all(piece).await.unwrap();
                        socket.flush().await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
            }
            requests
        });
        (uri, handle)
    }

    fn connections(uri: http::Uri) -> Connections {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Connections::new(tls, uri)
    }

    const HEAD: &[u8] = b"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n";

    #[tokio::test(flavor = "current_thread")]
    async fn answers_are_framed_by_length_chunks_or_the_end_and_connections_are_reused() {
        let (uri, server) = server(vec![
            vec![
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amz-Function-Error: Unhandled\r\n\r\nhello",
                b"HTTP/1.1 429 Too Many\r\ntransfer-encoding: gzip, chunked\r\nretry-after: 2\r\n\r\n3;x=y\r\nabc\r\n0\r\nt: v\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.1 200 OK\r\n\r\nto the end",
            ],
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"],
            vec![b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nz"],
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\ny"],
        ])
        .await;
        let connections = connections(uri);
        let first = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!((first.status, &first.body[..]), (200, &b"hello"[..]));
        assert_eq!(first.header("x-amz-function-error"), Some("Unhandled"));
        let second = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!((second.status, &second.body[..], second.header("retry-after")), (429, &b"abc"[..], Some("2")));
        let third = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!((third.status, third.body.len()), (204, 0));
        // No length: read to the end; the connection is not reused.
        let fourth = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!(&fourth.body[..], b"to the end");
        let fifth = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!(&fifth.body[..], b"ok");
        // `Connection: close` was honoured: the last request goes on a third connection.
        let sixth = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!(&sixth.body[..], b"z");
        // HTTP/1.0 without `Connection: keep-alive` closes: the last request goes on a fourth.
        let seventh = connections.exchange(HEAD, b"{}", 100).await.unwrap();
        assert_eq!(&seventh.body[..], b"y");
        let requests = server.await.unwrap();
        assert_eq!(requests.len(), 7);
        assert!(requests.iter().all(|r| r.starts_with(HEAD) && r.ends_with(b"{}")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_the_server_closed_is_not_reused() {
        let (uri, server) = server(vec![
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na"],
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb"],
        ])
        .await;
        let connections = connections(uri);
        assert_eq!(&connections.exchange(HEAD, b"{}", 10).await.unwrap().body[..], b"a");
        // The server closes the first connection after its answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(&connections.exchange(HEAD, b"{}", 10).await.unwrap().body[..], b"b");
        assert_eq!(server.await.unwrap().len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn malformed_short_or_oversized_answers_are_errors() {
        let cases: Vec<(&'static [u8], &str)> = vec![
            (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "closed in the answer's body"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", "larger than 100 bytes"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "is not a length"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", "CRLF"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n65\r\n", "larger than 100 bytes"),
            (b"HTTP/1.1 200 OK\r\n\r\n0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789X", "larger than 100 bytes"),
            (b"NOT HTTP\r\n\r\n", "malformed answer"),
            (b"", "closed before the answer's head"),
        ];
        let (uri, server) = server(cases.iter().map(|(answer, _)| vec![*answer]).collect()).await;
        let connections = connections(uri);
        for (_, expected) in &cases {
            let error = connections.exchange(HEAD, b"{}", 100).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} does not say {expected:?}");
        }
        server.abort();
    }
}
