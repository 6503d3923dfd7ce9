//! `/metrics`: Prometheus counters and histograms of one server.
//!
//! Label values are bounded: routes are the registered patterns (anything
//! else is `other`), functions are the agent's names, verdicts a fixed set.
//! A caller can never mint a new time series.

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The series a successful call of one function touches, looked up once per
/// agent load: a labelled lookup hashes its label values under a lock on
/// every use.
pub struct FunctionSeries {
    /// `function_calls_total{outcome="ok"}`.
    pub ok: IntCounter,
    pub duration: Histogram,
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub auth_failures: IntCounter,
    pub token_rejections: IntCounterVec,
    pub signature_rejections: IntCounter,
    pub rate_limited: IntCounterVec,
    pub function_calls: IntCounterVec,
    pub function_duration: HistogramVec,
    pub disabled: IntGaugeVec,
    pub alerts: IntCounterVec,
    pub calls_started: IntCounter,
    /// Connections open now, and the most `serve` accepts at once: at the
    /// cap, new connections wait in the listen queue.
    pub connections_open: IntGauge,
    pub connections_max: IntGauge,
    /// Bytes held by bodies read before Basic Auth, whose signature is not
    /// yet checked (set when `/metrics` is read).
    pub unverified_body_bytes: IntGauge,
    /// Summaries in the outbox, given up ones included.
    pub outbox_depth: IntGauge,
    /// Seconds since the oldest summary waiting for delivery arrived.
    pub outbox_oldest_seconds: IntGauge,
    pub summary_deliveries: IntCounterVec,
}

/// Counted in `connections_open` while it lives: kept in a connection's
/// data, it is dropped with the connection.
pub struct OpenConnection(IntGauge);

impl OpenConnection {
    pub fn new(gauge: &IntGauge) -> OpenConnection {
        gauge.inc();
        OpenConnection(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("swagent".into()), None).expect("a valid prefix");
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let requests = counter_vec(
            "requests_total",
            "HTTP requests by route and status.",
            &["route", "status"],
        );
        let auth_failures = counter("auth_failures_total", "Failed Basic Auth attempts.");
        let token_rejections = counter_vec(
            "token_rejections_total",
            "Function tokens refused, by verdict.",
            &["verdict"],
        );
        let signature_rejections = counter(
            "signature_rejections_total",
            "Requests with an invalid SignalWire signature.",
        );
        let rate_limited = counter_vec(
            "rate_limited_total",
            "Requests refused by a rate limit.",
            &["limit"],
        );
        let function_calls = counter_vec(
            "function_calls_total",
            "Function calls by function and outcome.",
            &["function", "outcome"],
        );
        let function_duration = HistogramVec::new(
            HistogramOpts::new("function_duration_seconds", "Handler run time by function.")
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            &["function"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(function_duration.clone()))
            .expect("unique metric");
        let disabled = IntGaugeVec::new(
            Opts::new(
                "function_disabled",
                "1 when the kill switch disables the function.",
            ),
            &["function"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(disabled.clone()))
            .expect("unique metric");
        let alerts = counter_vec("alerts_total", "Alerts raised, by rule.", &["rule"]);
        let calls_started = counter(
            "calls_started_total",
            "SWML documents served (calls started).",
        );
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let connections_open = gauge("connections_open", "HTTP connections open now.");
        let connections_max = gauge(
            "connections_max",
            "The most connections accepted at once; past it, new ones wait.",
        );
        let unverified_body_bytes = gauge(
            "unverified_body_bytes",
            "Bytes held by request bodies whose signature is not yet checked.",
        );
        let outbox_depth = gauge(
            "outbox_depth",
            "Summaries in the outbox: waiting for delivery, or given up on.",
        );
        let outbox_oldest_seconds = gauge(
            "outbox_oldest_seconds",
            "Age of the oldest summary waiting for delivery (0: none waits).",
        );
        let summary_deliveries = counter_vec(
            "summary_deliveries_total",
            "Summary delivery attempts, by outcome (delivered, retry, rejected, expired).",
            &["outcome"],
        );
        Metrics {
            outbox_depth,
            outbox_oldest_seconds,
            summary_deliveries,
            registry,
            requests,
            auth_failures,
            token_rejections,
            signature_rejections,
            rate_limited,
            function_calls,
            function_duration,
            disabled,
            alerts,
            calls_started,
            connections_open,
            connections_max,
            unverified_body_bytes,
        }
    }

    /// The hot series of `function`.
    pub fn function_series(&self, function: &str) -> FunctionSeries {
        FunctionSeries {
            ok: self.function_calls.with_label_values(&[function, "ok"]),
            duration: self.function_duration.with_label_values(&[function]),
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding does not fail");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
