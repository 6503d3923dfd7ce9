//! The paths the server answers and their `route` labels for `/metrics`:
//! the agent's SWML route with `/swaig` and `/post_prompt` under it, and
//! swagent's own `/health`, `/ready` and `/metrics`. Data only; the
//! handlers behind them are [`super::routes`]'.

use crate::agent::Agent;

/// swagent's own paths and their labels: the probes, then `/metrics`.
pub const SERVER: [(&str, &str); 3] = [
    ("/health", "health"),
    ("/ready", "ready"),
    ("/metrics", "metrics"),
];

/// The agent's paths and their labels: SWML, `/swaig`, `/post_prompt`.
pub fn of_agent(agent: &Agent) -> [(String, &'static str); 3] {
    [
        (agent.route.clone(), "swml"),
        (agent.sub_path("swaig"), "swaig"),
        (agent.sub_path("post_prompt"), "post_prompt"),
    ]
}

/// A path and, except for `/`, the same with a trailing slash: both are served.
pub fn both_forms(path: String) -> Vec<String> {
    if path == "/" {
        return vec![path];
    }
    let slashed = format!("{path}/");
    vec![path, slashed]
}

/// The probes: `/health` (liveness) and `/ready` (readiness), the Python
/// SDK's paths. They need no credentials and are never locked out, so they
/// say nothing about the agent.
pub fn is_probe(path: &str) -> bool {
    path == "/health" || path == "/ready"
}

/// Whether `path` is one of the webhooks SignalWire signs: the SWML route,
/// `/swaig` and `/post_prompt`, with or without a trailing slash.
pub fn is_signed_path(agent: &Agent, path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    path == agent.route || path == agent.sub_path("swaig") || path == agent.sub_path("post_prompt")
}

#[cfg(test)]
mod tests {
    /// The loader refuses an agent route on these paths; they must be the
    /// ones served here, or a route could shadow one or leave one unguarded.
    #[test]
    fn the_loader_reserves_the_paths_served_here() {
        let served: Vec<&str> = super::SERVER.iter().map(|r| r.0).collect();
        assert_eq!(served, crate::agent::SERVER_PATHS);
    }
}
