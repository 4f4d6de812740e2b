//! The one place the sandbox's servers are assembled (design/README.md §4): the API port is one axum `Router` with
//! the control API nested under `/__sandbox` and the Vizora API (`api`, Nest's own routing and pipeline) as its
//! fallback; the web and realtime ports serve `services`' handlers. Only this module imports `api`, `control` and
//! `services` together, so they never import each other in a loop; `services` reaches it through `Shared::app`.

use super::{Service, Shared, api, control, services};
use axum::Router;
use std::sync::Arc;

/// The app serving `svc` (stored in `Shared::app`, called again when a service listens anew after a restart).
pub(crate) fn app(sh: &Arc<Shared>, svc: Service) -> Router {
    match svc {
        Service::Api => Router::new()
            .nest("/__sandbox", control::router())
            .route("/__sandbox/", control::index_route())
            .fallback(api::entry)
            .with_state(sh.clone()),
        Service::Web => Router::new().fallback(services::web).with_state(sh.clone()),
        Service::Realtime => Router::new()
            .fallback(services::realtime)
            .with_state(sh.clone()),
    }
}
