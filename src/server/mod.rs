//! The HTTP server: the one `App` factory, its layers and routes, and
//! start-up.
//!
//! [`app`] is used by `serve` and by the tests, so what is tested is what
//! runs. The layers are listed in [`app`], outermost first: [`perimeter::outer`]
//! (security headers, counting), [`perimeter::perimeter`] (flood guard,
//! allowed hosts, lock-out, signatures), [`gate::BasicAuth`]. Then the route
//! table ([`routes`]), whose function-call routes are thin adapters of the
//! call pipeline ([`crate::call`]). Start-up and signals: [`start`], [`ops`].

pub mod descriptors;
pub mod error;
mod gate;
mod lockout;
mod ops;
pub mod paths;
pub mod perimeter;
pub mod request;
pub mod routes;
pub mod start;
mod summary;
mod swaig;
mod swml;
pub mod tls;
pub mod unverified;
pub(crate) mod watchdog;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest};

pub use crate::state::AppState;
pub use start::serve;

/// The server's state, borrowed from a request. Layers and handlers borrow it
/// rather than extract or clone the `web::Data`: a clone is an atomic
/// increment on a counter every worker shares, on every request.
pub(crate) fn state_of(req: &HttpRequest) -> &web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("the app factory sets the state")
}

/// The application: every route, behind the perimeter and the Basic Auth gate.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let live = state.live();
    let agent = &live.agent;
    App::new()
        .app_data(state)
        // The last `wrap` is the outermost. A request meets, in order:
        // headers and counting, the perimeter, Basic Auth, its route.
        .wrap(gate::BasicAuth)
        .wrap(from_fn(perimeter::perimeter))
        .wrap(from_fn(perimeter::outer))
        .configure(|cfg| routes::configure(cfg, agent))
}
