//! Ends connections that are stuck: no request has started on them for a
//! while, and none is in flight.
//!
//! actix times out a request's head and an idle keep-alive, but not two
//! states a client can hold a connection in for ever: a chunked body actix
//! drains after the answer (a route that answered without reading it, a 401
//! or a 408), and an answer the client never reads. Enough such connections
//! fill the connection cap, and nobody else can connect. Each connection is
//! watched from the worker thread that serves it, so the watch can never
//! see a connection as alive after the worker let go of it: the check below
//! and the connection's end run on one thread.

use std::cell::Cell;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd as _, FromRawFd as _, RawFd};
use std::rc::Rc;
use std::time::Duration;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::rt::net::TcpStream as AsyncTcpStream;

/// What a connection did since the last look.
#[derive(Default)]
struct Activity {
    started: Cell<u64>,
    in_flight: Cell<u32>,
}

/// Kept in a connection's data, so it lives as long as the connection.
pub struct Watched {
    activity: Rc<Activity>,
    /// Ended with the connection: a client that opens a connection per
    /// request would otherwise leave a sleeping watch behind for each.
    watch: actix_web::rt::task::JoinHandle<()>,
}

/// Held while a request is served: a long handler is not a stuck connection.
pub struct Busy(Rc<Activity>);

impl Watched {
    /// Starts watching `io` (plain or TLS) on this worker; `None` for a
    /// stream of another kind, which is then not watched.
    pub fn start(io: &dyn std::any::Any, idle: Duration) -> Option<Watched> {
        let tcp = if let Some(s) = io.downcast_ref::<AsyncTcpStream>() {
            s
        } else {
            io.downcast_ref::<TlsStream<AsyncTcpStream>>()?.get_ref().0
        };
        let (fd, peer) = (tcp.as_raw_fd(), tcp.peer_addr().ok()?);
        let activity = Rc::new(Activity::default());
        let weak = Rc::downgrade(&activity);
        let watch = actix_web::rt::spawn(async move {
            let mut seen = 0;
            loop {
                actix_web::rt::time::sleep(idle).await;
                // Gone: its descriptor may be another connection's by now.
                let Some(activity) = weak.upgrade() else {
                    return;
                };
                let started = activity.started.get();
                if activity.in_flight.get() == 0 && started == seen {
                    end(fd, peer, idle);
                    return;
                }
                seen = started;
            }
        });
        Some(Watched { activity, watch })
    }

    pub fn busy(&self) -> Busy {
        let a = &self.activity;
        a.started.set(a.started.get() + 1);
        a.in_flight.set(a.in_flight.get() + 1);
        Busy(a.clone())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// Shuts the socket down, which makes actix's next read or write fail and
/// the connection end. The peer address is checked first, as a second guard
/// against touching a descriptor that is no longer this connection's.
fn end(fd: RawFd, peer: SocketAddr, idle: Duration) {
    // SAFETY: `fd` is open (the connection that owns it is alive, see
    // above), and ManuallyDrop keeps this borrowed handle from closing it.
    let socket = std::mem::ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
    if socket.peer_addr().ok() == Some(peer) {
        log::info!(
            "closing the connection from {peer}: no request in {} s (an unread answer or a body that never ends)",
            idle.as_secs()
        );
        let _ = socket.shutdown(Shutdown::Both);
    }
}
