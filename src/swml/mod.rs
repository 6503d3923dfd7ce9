//! Agent + call → the SWML document the platform fetches when a call starts.
//!
//! `serve` and `swml` both render through [`render`], so the document an
//! operator reviews is byte for byte the one the platform gets. This module
//! also owns [`platform_parameters`]: the platform's schema allows only a few
//! JSON Schema keywords per property, so the full schema stays with swagent
//! (which enforces it) and the platform gets the allowed subset, with the
//! removed limits put into words.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::Value;

pub mod conformance;
mod contexts;
mod document;
pub mod schema;

use crate::agent::Agent;
use crate::token::{self, Secret};
pub use document::PerCall;

/// The userinfo set of RFC 3986: what must be escaped inside `user:pass@`.
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `user:password@` as every webhook URL carries it: percent-encoded, which
/// also leaves nothing to escape in JSON. Made once per server, not per
/// document (encoding it per request was a visible share of rendering).
pub struct Userinfo(String);

impl Userinfo {
    pub fn new(user: &str, password: &str) -> Userinfo {
        let mut out = String::with_capacity(3 * (user.len() + password.len()) + 2);
        out.extend(utf8_percent_encode(user, USERINFO));
        out.push(':');
        out.extend(utf8_percent_encode(password, USERINFO));
        out.push('@');
        Userinfo(out)
    }
}

impl std::fmt::Debug for Userinfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Userinfo(***)")
    }
}

/// Everything a rendering needs besides the agent.
pub struct RenderContext<'a> {
    /// `scheme://host[:port][/prefix]`, without credentials or trailing slash.
    pub base_url: &'a str,
    /// The Basic Auth credentials, encoded for the URLs.
    pub userinfo: &'a Userinfo,
    pub secret: &'a Secret,
    pub call_id: &'a str,
    /// Unix seconds; tokens expire at `now + token_ttl`.
    pub now: u64,
}

impl RenderContext<'_> {
    /// `scheme://user:pass@host[:port][/prefix]`, escaped for JSON.
    fn authed_base(&self) -> String {
        let (scheme, rest) = self
            .base_url
            .split_once("://")
            .unwrap_or(("http", self.base_url));
        let mut out = String::with_capacity(self.base_url.len() + self.userinfo.0.len() + 3);
        json_escape_into(&mut out, scheme);
        out.push_str("://");
        out.push_str(&self.userinfo.0);
        json_escape_into(&mut out, rest);
        out
    }
}

/// Renders the SWML document for one call as a JSON value (for the `swml`
/// command and tests; `serve` keeps a [`Prepared`] per agent). Fails only
/// when the call id cannot be bound into a token.
pub fn render(agent: &Agent, ctx: &RenderContext<'_>) -> Result<Value, token::CallIdError> {
    let text = Prepared::new(agent).render(ctx)?;
    Ok(serde_json::from_str(&text).expect("a prepared document is JSON"))
}

/// A webhook URL in a prepared document: the path under the base, and the
/// function its token is for (`None`: no token).
struct Hole {
    /// JSON-escaped, once.
    escaped_path: String,
    token_for: Option<String>,
}

/// An agent's SWML document with everything constant serialized once; per
/// call only the webhook URLs (base, credentials, tokens) are spliced in.
/// Rendering a `serde_json::Value` tree per request cost more than a whole
/// bare actix-web request (bench/RESULTS.md), so the tree is built once.
pub struct Prepared {
    /// Literal JSON text around the holes: `chunks.len() == holes.len() + 1`.
    chunks: Vec<String>,
    holes: Vec<Hole>,
    token_ttl: u64,
}

impl Prepared {
    /// Builds the document once with a marker in each URL, then cuts the
    /// serialized text at the markers.
    pub fn new(agent: &Agent) -> Prepared {
        Prepared::build(agent, PerCall::default())
    }

    /// The document of one call, as its `on_call_start` lookup decided.
    pub fn for_call(agent: &Agent, call: PerCall<'_>) -> Prepared {
        Prepared::build(agent, call)
    }

    fn build(agent: &Agent, call: PerCall<'_>) -> Prepared {
        // Letters and digits only, so JSON serialization leaves it intact; the
        // random part means no agent text can contain it by accident.
        let marker = format!("swagentHOLE{}N", crate::random::hex(8));
        let mut holes = Vec::new();
        let doc = document::document(
            agent,
            &mut |path: String, token_for: Option<&str>| {
                let mut escaped_path = String::new();
                json_escape_into(&mut escaped_path, &path);
                holes.push(Hole {
                    escaped_path,
                    token_for: token_for.map(str::to_owned),
                });
                format!("{marker}{}E", holes.len() - 1)
            },
            call,
        );
        let text = serde_json::to_string(&doc).expect("a document serializes");
        // The text need not list the holes in the order they were made
        // (`defaults` comes before `functions`): each marker names its hole.
        let mut chunks = Vec::with_capacity(holes.len() + 1);
        let mut order = Vec::with_capacity(holes.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find(&marker) {
            chunks.push(rest[..i].to_owned());
            let after = &rest[i + marker.len()..];
            let end = after.find('E').expect("a marker ends with E");
            order.push(
                after[..end]
                    .parse::<usize>()
                    .expect("a marker holds its index"),
            );
            rest = &after[end + 1..];
        }
        chunks.push(rest.to_owned());
        let mut slots: Vec<Option<Hole>> = holes.into_iter().map(Some).collect();
        let holes: Vec<Hole> = order
            .into_iter()
            .map(|i| slots[i].take().expect("each marker once"))
            .collect();
        debug_assert_eq!(chunks.len(), holes.len() + 1);
        Prepared {
            chunks,
            holes,
            token_ttl: agent.token_ttl.as_secs(),
        }
    }

    /// The document for one call, as JSON text.
    pub fn render(&self, ctx: &RenderContext<'_>) -> Result<String, token::CallIdError> {
        token::check_call_id(ctx.call_id)?;
        let base = ctx.authed_base();
        let expiry = ctx.now + self.token_ttl;
        let mut out = String::with_capacity(
            self.chunks.iter().map(String::len).sum::<usize>() + self.holes.len() * 256,
        );
        let mut minter = token::Minter::default();
        for (chunk, hole) in self.chunks.iter().zip(&self.holes) {
            out.push_str(chunk);
            out.push_str(&base);
            out.push_str(&hole.escaped_path);
            if let Some(function) = &hole.token_for {
                out.push_str("?__token=");
                let token = minter.mint(ctx.secret, ctx.call_id, function, expiry, &token::nonce());
                // URL-safe base64 needs escaping in a query value only in its
                // `=` padding, which is all at the end.
                let unpadded = token.trim_end_matches('=');
                out.push_str(unpadded);
                for _ in unpadded.len()..token.len() {
                    out.push_str("%3D");
                }
            }
        }
        out.push_str(self.chunks.last().expect("at least one chunk"));
        Ok(out)
    }
}

/// Appends `s` as the inside of a JSON string.
fn json_escape_into(out: &mut String, s: &str) {
    // The common case (host names, paths) has nothing to escape.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        return;
    }
    let quoted = serde_json::to_string(s).expect("a string serializes");
    out.push_str(&quoted[1..quoted.len() - 1]);
}

#[cfg(test)]
mod tests {
    use crate::token::{Claims, Secret, Verdict};

    /// An agent loaded from YAML text.
    fn agent(yaml: &str) -> crate::agent::Agent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, yaml).unwrap();
        crate::agent::load(&path, crate::agent::LoadOptions::default())
            .unwrap()
            .0
    }

    /// The verdict on a token for `function` in `call_id` at time 1000.
    fn check(
        secret: &Secret,
        token: &str,
        function: &str,
        call_id: &str,
    ) -> (Verdict, Option<Claims>) {
        crate::token::check(
            secret,
            token,
            crate::token::Expect {
                function: Some(function),
                call_id: Some(call_id),
                now: 1000,
            },
        )
    }

    #[test]
    fn prepared_documents_survive_text_that_mimics_the_marker() {
        let agent = agent(
            "name: a\nroute: /r\npost_prompt: sum\nprompt: {text: 'swagentHOLE0000000000000000N0E \" \\\\ '}\nfunctions:\n  f:\n    description: 'swagentHOLEN1E'\n    static: {response: x}\n  g:\n    description: open\n    secure: false\n    static: {response: y}\n",
        );
        let secret = Secret::new("k");
        let ctx = super::RenderContext {
            base_url: "https://h.example",
            userinfo: &super::Userinfo::new("u", "p\"q"),
            secret: &secret,
            call_id: "c1",
            now: 1000,
        };
        let doc = super::render(&agent, &ctx).unwrap();
        let ai = &doc["sections"]["main"][1]["ai"];
        assert_eq!(
            ai["prompt"]["text"],
            "swagentHOLE0000000000000000N0E \" \\\\ "
        );
        assert_eq!(ai["SWAIG"]["functions"][0]["description"], "swagentHOLEN1E");
        assert_eq!(
            ai["SWAIG"]["defaults"]["web_hook_url"],
            "https://u:p%22q@h.example/r/swaig/"
        );
        let hook = ai["SWAIG"]["functions"][0]["web_hook_url"]
            .as_str()
            .unwrap();
        assert!(
            hook.starts_with("https://u:p%22q@h.example/r/swaig/?__token="),
            "{hook}"
        );
        assert!(ai["SWAIG"]["functions"][1].get("web_hook_url").is_none());
        let pp = ai["post_prompt_url"].as_str().unwrap();
        let token = pp.split("__token=").nth(1).unwrap().replace("%3D", "=");
        assert_eq!(
            check(&secret, &token, "post_prompt", "c1").0,
            Verdict::Valid
        );
    }

    #[test]
    fn tokens_in_urls_are_escaped_for_every_padding_and_never_repeat() {
        let prepared = super::Prepared::new(&agent(
            "name: a\nroute: /r\nprompt: {text: hi}\nfunctions:\n  f:\n    description: d\n    static: {response: x}\n",
        ));
        let secret = Secret::new("k");
        let userinfo = super::Userinfo::new("u", "p");
        let mut paddings = std::collections::BTreeSet::new();
        let mut nonces = std::collections::HashSet::new();
        // Call ids of every length mod 3 give every amount of base64 padding.
        for call_id in ["c", "c1", "c12", "c123", "c1234", "c12345"] {
            for _ in 0..100 {
                let ctx = super::RenderContext {
                    base_url: "http://h",
                    userinfo: &userinfo,
                    secret: &secret,
                    call_id,
                    now: 1000,
                };
                let doc: serde_json::Value =
                    serde_json::from_str(&prepared.render(&ctx).unwrap()).unwrap();
                let hook = doc["sections"]["main"][1]["ai"]["SWAIG"]["functions"][0]
                    ["web_hook_url"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let raw = hook.split("__token=").nth(1).unwrap();
                let body = raw.trim_end_matches("%3D");
                assert!(
                    body.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{raw}"
                );
                paddings.insert((raw.len() - body.len()) / 3);
                let token = percent_encoding::percent_decode_str(raw)
                    .decode_utf8()
                    .unwrap();
                let (verdict, claims) = check(&secret, &token, "f", call_id);
                assert_eq!(verdict, Verdict::Valid, "{raw}");
                assert!(nonces.insert(claims.unwrap().nonce), "a nonce repeated");
            }
        }
        assert_eq!(paddings, [0, 1, 2].into());
    }
}
