//! The plain HTTP/1.1 request, served without hyper: a head with no body, no upgrade and no
//! `Expect`, which is nearly every request a keep-alive client sends. Everything else (a
//! body, HTTP/1.0, h2c's preface, an upgrade, a head `httparse` refuses or that has more
//! than [`HEADERS`] fields) is handed to hyper with every byte read so far, and hyper
//! serves the rest of the connection as it did before: its parser, its refusals and its
//! body handling stay the only ones.
//!
//! Per request hyper's dispatcher polls its read, write and flush state machines several
//! times, re-reads the wall clock for its `Date` cache on every poll and copies the head
//! twice on the way out; here one task reads the head, calls the proxy and writes the
//! response head and a short body in one `send`.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::ProxyBody;
use super::forward::ClientBody;
use super::headers::lists_token;
use super::upstream::wire::{bodiless, chunk_header};
use crate::batch::GATHER;

/// Header fields a head may have to be served here (more go to hyper, which enforces
/// `max_headers`).
const HEADERS: usize = 32;
/// A head still incomplete at this size goes to hyper.
const PARTIAL: usize = 8 * 1024;

/// How the plain loop ended.
pub(super) enum Ended {
    /// The client closed, a write failed, or the connection was told to close.
    Closed,
    /// A request this loop does not serve: hyper takes over with these bytes first.
    Handover(BytesMut),
    /// Between two requests, with nothing of the next one read: the connection would run
    /// better on worker `.0` (`crate::placement`).
    Move(usize),
}

/// A head this loop does not serve; the buffer is left as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct NotPlain;

/// A parsed head, and whether its client asked to close after it.
type Head = Option<(Request<ClientBody>, bool)>;

/// Serves plain requests on `io` until the client closes or a request needs hyper.
/// `answer` turns a request into its response; `stopping` is read between requests (a
/// stopping connection answers the request in flight with `connection: close`). A
/// connection that may move (`movable_from`: from then on) asks every
/// [`crate::placement::CHECK_REQUESTS`] requests whether another worker would serve it
/// better, and ends with [`Ended::Move`] if so.
pub(super) async fn serve<IO, F, Fut>(
    io: &mut IO,
    stopping: &std::sync::atomic::AtomicBool,
    movable_from: Option<tokio::time::Instant>,
    mut answer: F,
) -> Ended
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<ClientBody>) -> Fut,
    Fut: std::future::Future<Output = Response<ProxyBody>>,
{
    let mut buf = BytesMut::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(512);
    let mut served = 0u32;
    loop {
        if let Some(from) = movable_from {
            served = served.wrapping_add(1);
            if served.is_multiple_of(crate::placement::CHECK_REQUESTS)
                && buf.is_empty()
                && !stopping.load(std::sync::atomic::Ordering::Relaxed)
                && tokio::time::Instant::now() >= from
            {
                if let Some(to) = crate::placement::better(crate::placement::Brings::Requests) {
                    return Ended::Move(to);
                }
            }
        }
        let (req, close) = loop {
            if !buf.is_empty() {
                match parse(&mut buf) {
                    Ok(Some(head)) => break head,
                    // A long head is left to hyper, which answers one that outgrows its
                    // buffer; and each read re-parses the head from its start.
                    Ok(None) if buf.len() <= PARTIAL => {}
                    Ok(None) | Err(NotPlain) => return Ended::Handover(buf),
                }
            }
            if stopping.load(std::sync::atomic::Ordering::Relaxed) && buf.is_empty() {
                return Ended::Closed;
            }
            buf.reserve(4096);
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Ended::Closed,
                Ok(_) => {}
            }
        };
        let head_only = req.method() == Method::HEAD;
        let resp = answer(req).await;
        let close = close || stopping.load(std::sync::atomic::Ordering::Relaxed);
        match write_response(io, &mut out, resp, head_only, close).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = io.shutdown().await;
                return Ended::Closed;
            }
        }
        if out.capacity() > 4 * GATHER {
            out = Vec::with_capacity(512);
        }
    }
}

/// [`parse`] for the fuzz target: the request's parts and whether it asked to close.
pub fn read_plain_head(
    buf: &mut BytesMut,
) -> Result<Option<(http::request::Parts, bool)>, NotPlain> {
    Ok(parse(buf)?.map(|(req, close)| (req.into_parts().0, close)))
}

/// Parses one head from the front of `buf`, taking its bytes only when it is served here.
fn parse(buf: &mut BytesMut) -> Result<Head, NotPlain> {
    let mut fields = [httparse::EMPTY_HEADER; HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(NotPlain),
    };
    if parsed.version != Some(1) {
        return Err(NotPlain);
    }
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Err(NotPlain);
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Err(NotPlain);
    };
    if method == Method::CONNECT {
        return Err(NotPlain);
    }
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| s.as_ptr() as usize - base;
    let mut spans = [(0usize, 0usize, 0usize, 0usize); HEADERS];
    let mut close = false;
    for (span, h) in spans.iter_mut().zip(parsed.headers.iter()) {
        let name = h.name.as_bytes();
        for refused in ["content-length", "transfer-encoding", "upgrade", "expect"] {
            if name.eq_ignore_ascii_case(refused.as_bytes()) {
                return Err(NotPlain);
            }
        }
        if name.eq_ignore_ascii_case(b"connection") {
            if lists_token(h.value, b"upgrade") {
                return Err(NotPlain);
            }
            close |= lists_token(h.value, b"close");
        }
        *span = (at(name), name.len(), at(h.value), h.value.len());
    }
    let count = parsed.headers.len();
    let target = (at(path.as_bytes()), path.len());
    // The head is ours from here; if building it fails (a target or value `http` refuses
    // where httparse did not) the bytes go back in front, untouched, for hyper.
    let head = buf.split_to(len).freeze();
    let built = build(&head, method, target, &spans[..count]);
    match built {
        Some(req) => Ok(Some((req, close))),
        None => {
            let mut back = BytesMut::with_capacity(head.len() + buf.len());
            back.extend_from_slice(&head);
            back.extend_from_slice(buf);
            *buf = back;
            Err(NotPlain)
        }
    }
}

fn build(
    head: &Bytes,
    method: Method,
    (t, tl): (usize, usize),
    spans: &[(usize, usize, usize, usize)],
) -> Option<Request<ClientBody>> {
    let uri = Uri::from_maybe_shared(head.slice(t..t + tl)).ok()?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(n, nl, v, vl) in spans {
        let name = HeaderName::from_bytes(&head[n..n + nl]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl)).ok()?;
        headers.append(name, value);
    }
    let mut req = Request::new(ClientBody::Empty);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Some(req)
}

/// Writes `resp`: the head and a short body in one write, a longer or streamed body as it
/// comes. `Ok(false)`: the connection must close (asked to, or the body failed or fell
/// short of its length).
async fn write_response<IO>(
    io: &mut IO,
    out: &mut Vec<u8>,
    resp: Response<ProxyBody>,
    head_only: bool,
    mut close: bool,
) -> io::Result<bool>
where
    IO: AsyncWrite + Unpin,
{
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let bodyless = bodiless(head_only, status);
    let length = body.size_hint().exact();
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if !bodyless && (name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING) {
            continue;
        }
        if name == header::CONNECTION {
            close |= lists_token(value.as_bytes(), b"close");
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let chunked = !bodyless && length.is_none();
    if !bodyless {
        match length {
            Some(n) => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");

    let mut sent: u64 = 0;
    loop {
        // A frame not ready yet: what is gathered goes out first (a streamed response must
        // not hold its head back).
        let ready = poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(f) => Some(f),
                Poll::Pending => None,
            })
        })
        .await;
        let frame = match ready {
            Some(f) => f,
            None => {
                if !out.is_empty() {
                    io.write_all(out).await?;
                    out.clear();
                }
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let Some(frame) = frame else { break };
        let Ok(frame) = frame else {
            // The server's body failed midway: the client must not take what it got for
            // the whole response.
            if !out.is_empty() {
                io.write_all(out).await?;
            }
            return Ok(false);
        };
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers: HTTP/1 clients did not ask for them
        };
        if bodyless || data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if length.is_some_and(|n| sent > n) {
            // More than the length the head promised: what follows would read as the next
            // response. Nothing of it goes out, and the connection closes.
            if !out.is_empty() {
                io.write_all(out).await?;
            }
            return Ok(false);
        }
        if chunked {
            chunk_header(out, data.len());
        }
        if out.len() + data.len() <= GATHER {
            out.extend_from_slice(&data);
        } else {
            io.write_all(out).await?;
            out.clear();
            while data.has_remaining() {
                let n = io.write(&data).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                data.advance(n);
            }
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await?;
    let whole = bodyless || length.is_none_or(|n| n == sent);
    Ok(whole && !close)
}

/// `io` with `prefix` read first: the bytes the plain loop took before it handed over.
pub(super) struct Prefixed<IO> {
    prefix: BytesMut,
    io: IO,
}

impl<IO> Prefixed<IO> {
    pub(super) fn new(prefix: BytesMut, io: IO) -> Self {
        Prefixed { prefix, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::{empty, full, BoxError};
    use http::StatusCode;
    use http_body_util::BodyExt;
    use hyper::body::Frame;
    use std::sync::atomic::AtomicBool;

    fn parsed(text: &str) -> (Result<Head, NotPlain>, BytesMut) {
        let mut buf = BytesMut::from(text);
        let head = parse(&mut buf);
        (head, buf)
    }

    #[test]
    fn a_plain_head_is_served_and_leaves_what_follows() {
        let (head, rest) = parsed(
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nConnection: keep-alive, Close\r\n\r\nGET /next",
        );
        let Ok(Some((req, close))) = head else {
            panic!("not served")
        };
        assert!(close);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(req.version(), http::Version::HTTP_11);
        assert_eq!(req.headers()["host"], "x");
        let xa: Vec<_> = req.headers().get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert!(matches!(req.body(), ClientBody::Empty));
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn anything_but_a_plain_head_goes_to_hyper_untouched() {
        let many: String = (0..HEADERS + 1).map(|i| format!("x-{i}: v\r\n")).collect();
        for text in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na".to_string(),
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(),
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n".into(),
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n".into(),
            "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n".into(),
            "GET / HTTP/1.0\r\n\r\n".into(),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(),
            "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n".into(),
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n".into(),
            "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n".into(),
            format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
        ] {
            let (head, rest) = parsed(&text);
            assert!(head.is_err(), "served: {text:?}");
            assert_eq!(&rest[..], text.as_bytes(), "bytes moved: {text:?}");
        }
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        let (head, rest) = parsed("GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(matches!(head, Ok(None)));
        assert_eq!(&rest[..], b"GET / HTTP/1.1\r\nHost: x\r\n");
    }

    /// A body of unknown length in two pieces.
    struct Pieces(Vec<&'static str>);
    impl Body for Pieces {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.0.is_empty() {
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(self.0.remove(0))))))
        }
    }

    async fn written(resp: Response<ProxyBody>, head_only: bool) -> (String, bool) {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let mut out = Vec::new();
        let keep = write_response(&mut a, &mut out, resp, head_only, false)
            .await
            .unwrap();
        drop(a);
        let mut text = String::new();
        b.read_to_string(&mut text).await.unwrap();
        (text, keep)
    }

    #[tokio::test]
    async fn responses_are_framed_by_length_or_chunks() {
        let mut resp = Response::new(full("hello"));
        resp.headers_mut()
            .insert(header::DATE, HeaderValue::from_static("d"));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let (text, keep) = written(resp, false).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: d\r\ncontent-length: 5\r\n\r\nhello"
        );
        assert!(keep);

        let mut resp = Response::new(Pieces(vec!["ab", "cde"]).boxed());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        let (text, keep) = written(resp, false).await;
        assert!(
            text.starts_with("HTTP/1.1 404 Not Found\r\ndate: "),
            "{text}"
        );
        assert!(
            text.ends_with(
                "\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
            ),
            "{text}"
        );
        assert!(keep);
    }

    /// Claims `len` bytes and yields more.
    struct Overlong(u64, Vec<&'static str>);
    impl Body for Overlong {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.1.is_empty() {
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(self.1.remove(0))))))
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(self.0)
        }
    }

    #[tokio::test]
    async fn a_body_longer_than_its_length_is_cut_and_the_connection_closes() {
        let mut resp = Response::new(Overlong(3, vec!["abc", "HTTP/1.1 200 OK\r\n\r\n"]).boxed());
        resp.headers_mut()
            .insert(header::DATE, HeaderValue::from_static("d"));
        let (text, keep) = written(resp, false).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: d\r\ncontent-length: 3\r\n\r\nabc"
        );
        assert!(!keep);
    }

    #[tokio::test]
    async fn head_responses_keep_their_length_and_send_no_body() {
        let mut resp = Response::new(empty());
        resp.headers_mut()
            .insert(header::DATE, HeaderValue::from_static("d"));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        let (text, keep) = written(resp, true).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: d\r\ncontent-length: 42\r\n\r\n"
        );
        assert!(keep);
    }

    #[tokio::test]
    async fn a_response_asking_to_close_closes() {
        let mut resp = Response::new(full("x"));
        resp.headers_mut()
            .insert(header::DATE, HeaderValue::from_static("d"));
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let (text, keep) = written(resp, false).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: d\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx"
        );
        assert!(!keep);
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_until_one_needs_hyper() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let post = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
        client
            .write_all(
                format!(
                    "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n{post}"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let stopping = AtomicBool::new(false);
        let ended = serve(&mut server, &stopping, None, |req| async move {
            let mut resp = Response::new(full(req.uri().path().to_string()));
            resp.headers_mut()
                .insert(header::DATE, HeaderValue::from_static("d"));
            resp
        })
        .await;
        let Ended::Handover(rest) = ended else {
            panic!("closed")
        };
        assert_eq!(&rest[..], post.as_bytes());
        drop(server);
        let mut text = String::new();
        client.read_to_string(&mut text).await.unwrap();
        let one = "HTTP/1.1 200 OK\r\ndate: d\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(text, format!("{one}/1{one}/2"));
    }

    #[tokio::test]
    async fn a_stopping_connection_answers_with_close_and_ends() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // The stop comes while the request is in flight.
        let stopping = AtomicBool::new(false);
        let ended = serve(&mut server, &stopping, None, |_| {
            stopping.store(true, std::sync::atomic::Ordering::Relaxed);
            async { Response::new(full("k")) }
        })
        .await;
        assert!(matches!(ended, Ended::Closed));
        drop(server);
        let mut text = String::new();
        client.read_to_string(&mut text).await.unwrap();
        assert!(text.ends_with("connection: close\r\n\r\nk"), "{text}");
    }

    #[tokio::test]
    async fn prefixed_reads_the_handed_over_bytes_first() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut p = Prefixed::new(BytesMut::from("hello"), b);
        let mut text = String::new();
        p.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello world");
    }
}
