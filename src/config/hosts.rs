//! `SWML_ALLOWED_HOSTS`: which host names a request may name, read once at
//! start and judged on each request's `Host`.

/// `SWML_ALLOWED_HOSTS`: `*`, or host names (`*.example.com` matches
/// subdomains), compared without the port and case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    Any,
    List(Vec<String>),
}

impl AllowedHosts {
    /// Why an entry of the variable can never match a `Host`, for the first
    /// such entry: one with a scheme, a port or a path
    /// (`https://agent.example.com`, `agent.example.com:443`), an empty
    /// label, or a `*` anywhere but a leading `*.` would refuse every request
    /// while `/ready` says all is well.
    pub fn misfit(value: &str) -> Option<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty() && *h != "*")
            .find_map(|h| {
                let why = if let Some(v6) = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                    // An IPv6 literal, as `Host` carries it.
                    v6.parse::<std::net::Ipv6Addr>()
                        .err()
                        .map(|_| "is not an IPv6 address")
                } else if !h.is_ascii() {
                    Some("is not ASCII: give an international name in its `xn--` form")
                } else {
                    let name = h.strip_prefix("*.").unwrap_or(h);
                    let name = name.strip_suffix('.').unwrap_or(name);
                    if name.split('.').any(|label| {
                        label.is_empty()
                            || !label
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    }) {
                        Some("is not a host name, and no request's `Host` would match it")
                    } else {
                        None
                    }
                };
                why.map(|why| format!("`{h}` {why}"))
            })
    }

    /// Parses the comma-separated variable; empty entries are ignored.
    pub fn parse(value: &str) -> AllowedHosts {
        let list: Vec<String> = value
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if list.is_empty() || list.iter().any(|h| h == "*") {
            AllowedHosts::Any
        } else {
            AllowedHosts::List(list)
        }
    }

    /// Whether a request with this `Host` header may go on.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let AllowedHosts::List(list) = self else {
            return true;
        };
        let Some(host) = host else {
            return false;
        };
        let host = host.trim().to_ascii_lowercase();
        // `[::1]:3000` → `[::1]`; `example.com:443` → `example.com`; and the
        // fully qualified `example.com.` is `example.com`.
        let name = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host.as_str(),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        list.iter().any(|allowed| match allowed.strip_prefix("*.") {
            Some(domain) => name
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => name == allowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedHosts;

    #[test]
    fn allowed_hosts() {
        assert_eq!(AllowedHosts::parse("*"), AllowedHosts::Any);
        assert_eq!(AllowedHosts::parse(" , "), AllowedHosts::Any);
        assert!(AllowedHosts::Any.allows(None));
        let list = AllowedHosts::parse("agent.example.com, *.Example.org,[::1]");
        let cases = [
            (Some("agent.example.com"), true),
            (Some("AGENT.example.com:8443"), true),
            (Some("example.com"), false),
            (Some("evil-agent.example.com"), false),
            (Some("a.example.org"), true),
            (Some("a.b.example.org:443"), true),
            (Some("example.org"), false),
            (Some("badexample.org"), false),
            (Some("[::1]:3000"), true),
            (Some("[::2]"), false),
            (None, false),
            // A fully qualified name is the same name.
            (Some("agent.example.com."), true),
        ];
        for (host, want) in cases {
            assert_eq!(list.allows(host), want, "{host:?}");
        }
        assert!(AllowedHosts::parse("agent.example.com.").allows(Some("agent.example.com")));
    }

    #[test]
    fn allowed_host_entries_that_never_match_are_named() {
        for fine in [
            "agent.example.com, *.example.org, [::1], 127.0.0.1, localhost",
            "xn--bcher-kva.example, agent.example.com., *, ",
        ] {
            assert_eq!(AllowedHosts::misfit(fine), None, "{fine}");
        }
        let never = "is not a host name, and no request's `Host` would match it";
        for (value, why) in [
            ("https://agent.example.com", never),
            ("agent.example.com:443", never),
            ("agent.example.com/x", never),
            (".example.com", never),
            ("*example.com", never),
            ("a*.example.com", never),
            ("*.*.example.com", never),
            ("agent..example.com", never),
            ("[::g]", "is not an IPv6 address"),
            (
                "bücher.example",
                "is not ASCII: give an international name in its `xn--` form",
            ),
        ] {
            assert_eq!(
                AllowedHosts::misfit(&format!("ok.example.com, {value}")),
                Some(format!("`{value}` {why}")),
                "{value}"
            );
        }
    }
}
