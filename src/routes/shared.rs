//! [`forward`] for answers that several clients may share: the micro-cache first, then coalescing with a call in flight.
//!
//! Every wait is bounded: a waiter waits at most as long as its leader can take (a place among
//! the requests in flight, the exchange, the body: three `--upstream-timeout`s) and is then a
//! 504; a leader whose client leaves hands the call to a waiter ([`Outcome::Abandoned`]).

use std::sync::Arc;

use http::request::Parts;
use http::Response;

use super::{exchange, forward, Outbound, RouteCx};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::shield::answer::{self, Answer};
use crate::shield::coalesce::{Lead, Outcome, Role};
use crate::shield::{Cache, Flights, Key};
use crate::upstream::UpstreamError;

/// How a request may share: with calls in flight, through the cache, or both.
pub struct Sharing<'a> {
    pub key: Key,
    pub flights: Option<&'a Flights>,
    /// The cache, and the bearer token whose `exp` may shorten an entry's life.
    pub cache: Option<(&'a Cache, &'a str)>,
}

pub async fn forward_shared(
    cx: &mut RouteCx<'_>,
    parts: &Parts,
    outbound: Outbound<'_>,
    sharing: Sharing<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if let Some((cache, _)) = sharing.cache {
        if let Some(answer) = cache.get(sharing.key) {
            cx.upstream.cache = Some("hit");
            return Ok(answer.response());
        }
        cx.upstream.cache = Some("miss");
    }
    let lead = match sharing.flights {
        Some(flights) => match wait_or_lead(cx, flights, sharing.key).await {
            Ok(lead) => Some(lead),
            Err(Waited::Answered(answer)) => return Ok(answer.response()),
            Err(Waited::Failed(e)) => return Err(ProxyError::Upstream(e)),
            Err(Waited::NotShared) => return forward(cx, parts, outbound).await,
        },
        None => None,
    };
    lead_call(cx, parts, outbound, &sharing, lead).await
}

/// How waiting ended without leading.
enum Waited {
    /// The leader's answer, to copy.
    Answered(Arc<Answer>),
    /// The leader's failure, or no answer within the waiter's patience.
    Failed(UpstreamError),
    /// The leader's answer was too large to share: go up alone.
    NotShared,
}

/// Waits for a call in flight for `key`, or becomes its leader (at once, or when the leader's
/// client left).
async fn wait_or_lead<'f>(
    cx: &mut RouteCx<'_>,
    flights: &'f Flights,
    key: Key,
) -> Result<Lead<'f>, Waited> {
    let patience = cx.state.config.upstream_timeout.saturating_mul(3);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let flight = match flights.join(key) {
            Role::Leader(lead) => return Ok(lead),
            Role::Waiter(flight) => flight,
        };
        cx.upstream.coalesced = Some("waiter");
        let Ok(outcome) = tokio::time::timeout_at(deadline, flight.outcome()).await else {
            return Err(Waited::Failed(UpstreamError::Timeout(patience)));
        };
        return Err(match outcome {
            Outcome::Answer(answer) => Waited::Answered(answer),
            Outcome::Failed(e) => Waited::Failed(UpstreamError::Shared(e)),
            Outcome::NotShared => {
                cx.upstream.coalesced = None;
                Waited::NotShared
            }
            Outcome::Abandoned => {
                cx.upstream.coalesced = None;
                continue;
            }
        });
    }
}

/// Makes the call, hands its outcome to the waiters, and caches it if it may be.
async fn lead_call(
    cx: &mut RouteCx<'_>,
    parts: &Parts,
    outbound: Outbound<'_>,
    sharing: &Sharing<'_>,
    lead: Option<Lead<'_>>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let response = match exchange(cx, parts, outbound).await {
        Ok(response) => response,
        Err(e) => return Err(fail(e, lead)),
    };
    let (head, body) = response.into_parts();
    if !answer::is_shareable(&body) {
        if let Some(lead) = lead {
            lead.finish(|| Outcome::NotShared);
        }
        return Ok(Response::from_parts(head, ProxyBody::upstream(body)));
    }
    let bytes = match answer::collect(body, cx.state.config.upstream_timeout).await {
        Ok(bytes) => bytes,
        Err(e) => return Err(fail(e.into(), lead)),
    };
    let ttl = sharing.cache.and_then(|(cache, token)| {
        Some((cache, cache.ttl_for(head.status, &head.headers, token)?))
    });
    let copied = (ttl.is_some() || lead.as_ref().is_some_and(Lead::has_waiters))
        .then(|| Arc::new(Answer::of(&head, &bytes)));
    if let (Some((cache, ttl)), Some(answer)) = (ttl, &copied) {
        cache.insert(sharing.key, answer.clone(), ttl);
    }
    if let Some(lead) = lead {
        lead.finish(|| {
            Outcome::Answer(copied.unwrap_or_else(|| Arc::new(Answer::of(&head, &bytes))))
        });
    }
    Ok(Response::from_parts(head, ProxyBody::full(bytes)))
}

/// Shares the leader's failure with its waiters; the leader answers with it too.
fn fail(e: ProxyError, lead: Option<Lead<'_>>) -> ProxyError {
    match (e, lead) {
        (ProxyError::Upstream(e), Some(lead)) => {
            let e = Arc::new(e);
            lead.finish(|| Outcome::Failed(e.clone()));
            ProxyError::Upstream(UpstreamError::Shared(e))
        }
        // Not the central service's doing (none today): the waiters go up themselves.
        (e, _) => e,
    }
}
