//! The checks of an `http` handler: a URL whose scheme, host and port are
//! literal, headers neither the client nor request signing owns, no literal
//! credential, a body that is JSON or a form, and its limits. Its `output`
//! is [`super::output`]'s.

use indexmap::IndexMap;
use serde_json::Value;

use super::template::{looks_secret, Slot};
use super::Checker;
use crate::agent::model::{HttpFile, Method};
use crate::agent::{defaults, HttpSpec};
use crate::template::{Part, Template};

impl Checker<'_> {
    pub(super) fn http(
        &mut self,
        name: &str,
        h: HttpFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<HttpSpec> {
        self.http_at(&["functions", name, "http"], name, h, declared)
    }

    /// [`Self::http`] of the handler at `at` (a function's, or a call
    /// hook's such as `on_call_start.http`).
    pub(super) fn http_at(
        &mut self,
        at: &[&str],
        name: &str,
        h: HttpFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<HttpSpec> {
        let sign = h.sign.unwrap_or(true);
        let url_path = [at, &["url"]].concat();
        let url = self.template(name, &h.url, &url_path, Slot::HttpRequest, declared)?;
        self.check_url(name, &url, &url_path)?;
        let fixed_url = match url.is_literal() {
            true => url::Url::parse(&url.to_string()).ok().map(Box::new),
            false => None,
        };
        let pairs = |this: &mut Self, field: &str, map: Option<IndexMap<String, String>>| {
            let mut out = Vec::new();
            for (k, v) in map.unwrap_or_default() {
                let path = [at, &[field, k.as_str()]].concat();
                let t = this.template(name, &v, &path, Slot::HttpRequest, declared)?;
                this.literal_secret(name, &k, &t, &path);
                out.push((k, t));
            }
            Some(out)
        };
        let query = pairs(self, "query", h.query);
        let headers = pairs(self, "headers", h.headers);
        if let Some(headers) = &headers {
            let mut seen = std::collections::HashSet::new();
            for (k, t) in headers {
                let path = [at, &["headers", k.as_str()]].concat();
                if !seen.insert(k.to_ascii_lowercase()) {
                    let pos = self.spans.key(&path);
                    self.error(
                        pos,
                        format!("function `{name}`: header `{k}` is set twice (header names ignore case)"),
                    );
                }
                self.check_header(name, k, t, &path);
                if sign {
                    self.signature_header(name, k, &path);
                }
            }
        }
        let form = pairs(self, "form", h.form);
        let body = match h.body {
            Some(b) => {
                let mut path: Vec<String> = at.iter().map(|s| s.to_string()).collect();
                path.push("body".into());
                Some(self.json_template(name, &b, &mut path, declared)?)
            }
            None => None,
        };
        let (query, headers, form) = (query?, headers?, form?);
        if body.is_some() && !form.is_empty() {
            let pos = self.spans.key(&[at, &["form"]].concat());
            self.error(
                pos,
                format!("function `{name}`: use `body` or `form`, not both"),
            );
            return None;
        }
        let verified_field = match &h.verified_field {
            Some(field) => match crate::template::parse_path(field) {
                Ok(steps) => Some(steps),
                Err(e) => {
                    let pos = self.spans.value(&[at, &["verified_field"]].concat());
                    self.error(pos, format!("function `{name}`: `verified_field`: {e}"));
                    return None;
                }
            },
            None => None,
        };
        let output = match h.output {
            Some(o) => Some(self.http_output(name, at, o, declared)?),
            None => None,
        };
        let method = h.method.unwrap_or(Method::Get);
        let retries = h.retries.unwrap_or(0);
        if retries > 0 && method != Method::Get {
            let pos = self.spans.value(&[at, &["retries"]].concat());
            self.error(
                pos,
                format!("function `{name}`: `retries` is for GET only; retrying a {} could repeat what it changes", method.as_str()),
            );
        }
        if retries > 10 {
            let pos = self.spans.value(&[at, &["retries"]].concat());
            self.error(pos, format!("function `{name}`: `retries` is at most 10"));
        }
        Some(HttpSpec {
            url,
            fixed_url,
            method,
            query,
            headers,
            body,
            form,
            timeout: self.timeout(name, at, h.timeout.map(|d| d.0)),
            retries,
            output,
            error_keys: h.error_keys.unwrap_or_default(),
            max_response: self.size(
                name,
                at,
                "max_response",
                h.max_response.map(|b| b.0),
                defaults::MAX_RESPONSE,
            ),
            concurrency: self.concurrency(name, at, h.concurrency, defaults::HTTP_CONCURRENCY),
            verified_field,
            sign,
        })
    }

    /// A signed request's `webhook-*` headers are swagent's: one the file
    /// sets would be replaced, or would make a receiver check the wrong one.
    fn signature_header(&mut self, function: &str, key: &str, path: &[&str]) {
        let owned = [
            crate::webhook::ID,
            crate::webhook::TIMESTAMP,
            crate::webhook::SIGNATURE,
        ];
        if owned.iter().any(|h| h.as_str().eq_ignore_ascii_case(key)) {
            let pos = self.spans.key(path);
            self.error(
                pos,
                format!("function `{function}`: header `{key}` is set by swagent when it signs the request (`SWAGENT_WEBHOOK_SECRET`); remove it, or add `sign: false`"),
            );
        }
    }

    /// A header the agent file sets must be one the request can carry on
    /// every call: a valid name, no line breaks or other control characters
    /// in its literal text, not one the HTTP client owns (framing and
    /// connection headers, which a wrong value turns into a broken or
    /// smuggled request), and a `Host` only when literal, like the url's host.
    fn check_header(&mut self, function: &str, key: &str, template: &Template, path: &[&str]) {
        const OWNED: [&str; 9] = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-connection",
            "expect",
        ];
        let lower = key.to_ascii_lowercase();
        let problem = if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err() {
            format!("`{key}` is not a valid header name")
        } else if OWNED.contains(&lower.as_str()) {
            format!("header `{key}` is set by the HTTP client; remove it")
        } else if lower == "host" && !template.is_literal() {
            "header `Host` must be literal, like the url's host, so no argument can choose it"
                .to_owned()
        } else if template.parts().iter().any(
            |p| matches!(p, Part::Lit(text) if text.chars().any(|c| c.is_control() && c != '\t')),
        ) {
            format!("header `{key}` has a line break or control character in its text")
        } else {
            return;
        };
        let pos = self.spans.key(path);
        self.error(pos, format!("function `{function}`: {problem}"));
    }

    /// Scheme, host and port must be literal, so no argument can choose where
    /// a request goes.
    pub(super) fn check_url(&mut self, name: &str, url: &Template, path: &[&str]) -> Option<()> {
        let pos = self.spans.value(path);
        let literal_prefix = match url.parts().first() {
            Some(crate::template::Part::Lit(s)) => s.as_str(),
            _ => "",
        };
        let authority_done = literal_prefix
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains(['/', '?']) || url.is_literal());
        if !authority_done {
            self.error(
                pos,
                format!("function `{name}`: the scheme, host and port of `url` must be literal (no template before the path)"),
            );
            return None;
        }
        // Parse with every variable replaced by a harmless value.
        let probe: String = url
            .parts()
            .iter()
            .map(|p| match p {
                crate::template::Part::Lit(s) => s.as_str(),
                crate::template::Part::Var(..) => "x",
            })
            .collect();
        match url::Url::parse(&probe) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                if u.host_str().is_none_or(str::is_empty) {
                    self.error(pos, format!("function `{name}`: `url` has no host"));
                    return None;
                }
                if !u.username().is_empty() || u.password().is_some() {
                    self.error(
                        pos,
                        format!("function `{name}`: `url` holds credentials; secrets never live in the agent file, use a header with `${{env:NAME}}`"),
                    );
                    return None;
                }
                // `?api_key=sk_live_...` written into the url is a literal
                // credential as much as one in `query:` is. Variables become
                // U+0001 here, which no literal text holds, to tell them apart.
                let marked: String = url
                    .parts()
                    .iter()
                    .map(|p| match p {
                        crate::template::Part::Lit(s) => s.as_str(),
                        crate::template::Part::Var(..) => "\u{1}",
                    })
                    .collect();
                let pairs: Vec<(String, String)> = url::Url::parse(&marked)
                    .map(|m| m.query_pairs().into_owned().collect())
                    .unwrap_or_default();
                for (key, value) in pairs {
                    if looks_secret(&key) && !value.is_empty() && !value.contains('\u{1}') {
                        self.error(
                            pos,
                            format!("function `{name}`: `url` holds a literal credential in `{key}`; secrets never live in the agent file, use `${{env:NAME}}`"),
                        );
                        return None;
                    }
                }
                Some(())
            }
            Ok(u) => {
                self.error(
                    pos,
                    format!(
                        "function `{name}`: `url` scheme `{}` is not http or https",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.error(pos, format!("function `{name}`: `url` does not parse: {e}"));
                None
            }
        }
    }
}
