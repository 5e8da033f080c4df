//! Body types on both sides, the lease-holding response body, the guarded request body
//! (size limit, slow-body timeout, client framing errors kept apart from server failures)
//! and the proxy's own small error responses.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use super::stats::Reject;
use crate::pool::Lease;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What flows to clients and to servers.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> ProxyBody {
    full(Bytes::new())
}

/// A response the proxy makes itself (502, 503, 504...), with a one-line body.
pub(crate) fn error_response(status: StatusCode) -> Response<ProxyBody> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut resp = Response::new(full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The answer to a refused request; HTTP/1 connections close after it, so nothing the
/// client sent after the refused head is ever read as another request.
pub(crate) fn refusal(status: StatusCode, h1: bool) -> Response<ProxyBody> {
    let mut resp = error_response(status);
    if h1 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Why a client's request body was cut off. It travels as the body's error through the
/// upstream client, so the attempt's failure can be told apart from a server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("request body refused: {}", .0.name())]
pub(crate) struct BodyRefused(pub(crate) Reject);

pin_project_lite::pin_project! {
    /// A client's request body with `max` bytes at most and no pause longer than `pause`
    /// between two pieces. The timer is only armed when the client makes the proxy wait and
    /// re-armed lazily, so a pause is cut after between one and two `pause` windows and a
    /// fast body never reads the clock.
    pub(crate) struct GuardedBody {
        #[pin]
        inner: Incoming,
        #[pin]
        timer: Option<Sleep>,
        pause: Duration,
        progressed: bool,
        left: u64,
    }
}

impl GuardedBody {
    /// `max` 0: unlimited.
    pub(crate) fn new(inner: Incoming, max: u64, pause: Duration) -> Self {
        GuardedBody {
            inner,
            timer: None,
            pause,
            progressed: false,
            left: if max == 0 { u64::MAX } else { max },
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.remaining() as u64);
                if n > *this.left {
                    return Poll::Ready(Some(Err(BodyRefused(Reject::BodyTooLarge).into())));
                }
                *this.left -= n;
                *this.progressed = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => {
                Poll::Ready(Some(Err(BodyRefused(Reject::BadBody).into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => loop {
                let Some(timer) = this.timer.as_mut().as_pin_mut() else {
                    this.timer
                        .set(Some(tokio::time::sleep_until(Instant::now() + *this.pause)));
                    *this.progressed = false;
                    continue;
                };
                if timer.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if !std::mem::take(this.progressed) {
                    return Poll::Ready(Some(Err(BodyRefused(Reject::BodyTimeout).into())));
                }
                let again = Instant::now() + *this.pause;
                if let Some(timer) = this.timer.as_mut().as_pin_mut() {
                    timer.reset(again);
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's refusal inside an upstream error's source chain, if that is what ended it.
pub(crate) fn body_refusal(e: &(dyn std::error::Error + 'static)) -> Option<Reject> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<BodyRefused>() {
            return Some(r.0);
        }
        source = s.source();
    }
    None
}

/// A server's response body that keeps the server's lease until the body has been sent
/// (or the client went away), so connection counts and maxconn cover the whole response.
pub(crate) struct LeaseBody<B> {
    inner: B,
    lease: Option<Lease>,
}

impl<B> LeaseBody<B> {
    pub(crate) fn new(inner: B, lease: Lease) -> Self {
        LeaseBody {
            inner,
            lease: Some(lease),
        }
    }
}

impl<B> Body for LeaseBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &polled {
            this.lease = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
