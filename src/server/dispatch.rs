//! From a decoded request to the bytes of its response: the registry picks the handler,
//! the response is encoded at the request's version.
//!
//! A handler that returns `Err` (it could not build any response) or panics closes the
//! connection with the reason logged. A handler's panic is the one the process survives
//! (`crate::panic_policy`): it runs [`crate::panic_policy::contained`]; any other panic ends
//! the broker.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use ringlet_protocol::encode_response;

use crate::handlers;
use crate::server::RequestContext;

/// Serves one request. `Ok(None)`: no response is due (Produce with acks=0).
/// `Err(reason)`: the connection must be closed.
pub async fn serve_request(
    ctx: RequestContext,
    api_key: ApiKey,
    body: RequestKind,
) -> Result<Option<Bytes>, String> {
    let version = ctx.api_version;
    let outcome = crate::panic_policy::contained(handlers::dispatch(&ctx, body)).await;
    let reply = match outcome {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => return Err(format!("{api_key:?} v{version} failed: {err}")),
        Err(message) => {
            tracing::error!(?api_key, version, %message, "handler panicked");
            return Err(format!(
                "{api_key:?} v{version} handler panicked: {message}"
            ));
        }
    };
    match reply {
        None => Ok(None),
        Some(response) => encode_response(api_key, version, ctx.correlation_id, &response)
            .map(Some)
            .map_err(|err| err.to_string()),
    }
}
