//! A timeout that starts only when a future first has to wait (a client's request body, the central service's body).
//!
//! An auth request's body nearly always arrives with its head, so the common request never
//! registers a timer (a tokio timer costs about 1,000 instructions to register and remove).

use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Sleep;

/// `future`'s output, or `None` if it is still pending `limit` after it first had to wait.
///
/// The clock starts at the first poll that returns `Pending`, which for a request body is the
/// moment the proxy began waiting for bytes the client had not sent with its head.
pub async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(None::<Sleep>);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if timer.is_none() {
            timer.set(Some(tokio::time::sleep(limit)));
        }
        match timer.as_mut().as_pin_mut() {
            Some(sleep) => sleep.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_future_ready_at_once_is_not_cut_even_by_a_zero_limit() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_future_that_waits_past_the_limit_is_cut() {
        let slow = tokio::time::sleep(Duration::from_millis(400));
        assert_eq!(within(Duration::from_millis(50), slow).await, None);
        let quick = tokio::time::sleep(Duration::from_millis(20));
        assert_eq!(within(Duration::from_millis(400), quick).await, Some(()));
    }
}
