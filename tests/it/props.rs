//! Property tests of the invariants the security model rests on: tokens,
//! templates, and the argv of shell handlers. Case counts are modest so CI
//! stays fast; a failure prints the minimal counterexample.

use std::path::Path;

use proptest::prelude::{
    any, prop, prop_assert, prop_assert_eq, prop_assert_ne, proptest, Just, ProptestConfig,
    Strategy,
};
use proptest::prop_oneof;
use serde_json::{json, Value};

use swagent::agent::{load, LoadOptions};
use swagent::handlers::{CallInput, Runtime};
use swagent::template::{value_to_text, Context, Encoding, Template};
use swagent::token::{self, Expect, Secret, Verdict};

const SECRET: &str = "test-secret-0123456789abcdef";
/// A fixed "now" well before every expiry minted below.
const NOW: u64 = 1_700_000_000;

/// Call ids the token format can carry: no `.` or `:`, no whitespace or
/// controls.
fn call_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_/+=-]{1,64}"
}

/// Function names as the agent format allows them.
fn function_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,30}"
}

/// Characters a one-character edit may put into a token: the base64url
/// alphabet, its padding, and other printable ASCII. Whitespace is left out
/// on purpose: `token::decode` trims surrounding whitespace (so a token with a
/// space appended is still that token); inside the token it is caught by the
/// replacement with other characters.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
                .chars()
                .collect::<Vec<_>>()
        ),
        (0x21u8..0x7f).prop_map(char::from),
    ]
}

fn expect<'a>(function: &'a str, call_id: &'a str) -> Expect<'a> {
    Expect {
        function: Some(function),
        call_id: Some(call_id),
        now: NOW,
    }
}

/// One edit of a token string.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Delete(usize),
    Insert(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), token_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), token_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
    ]
}

/// Applies `edit` at a position taken modulo the length. `None` when the edit
/// would leave the token as it was (replacing a character by itself).
fn apply(token: &str, edit: &Edit) -> Option<String> {
    let mut chars: Vec<char> = token.chars().collect();
    match *edit {
        Edit::Replace(i, c) => {
            let i = i % chars.len();
            if chars[i] == c {
                return None;
            }
            chars[i] = c;
        }
        Edit::Delete(i) => {
            chars.remove(i % chars.len());
        }
        Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
    }
    Some(chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn minted_tokens_verify(call in call_id(), function in function_name(), ttl in 1u64..10_000_000) {
        let secret = Secret::new(SECRET);
        let t = token::mint(&secret, &call, &function, NOW + ttl).unwrap();
        let (verdict, claims) = token::check(&secret, &t, expect(&function, &call));
        prop_assert_eq!(verdict, Verdict::Valid);
        let claims = claims.unwrap();
        prop_assert_eq!(claims.call_id, call);
        prop_assert_eq!(claims.function, function);
        prop_assert_eq!(claims.expiry, NOW + ttl);
    }

    /// A `:` anywhere in a call id is refused: with one, a signature would
    /// fit another split of the signed text.
    #[test]
    fn call_ids_with_a_colon_get_no_token(a in call_id(), b in "[A-Za-z0-9_/+=-]{0,64}") {
        let secret = Secret::new(SECRET);
        let call = format!("{a}:{b}");
        prop_assert_eq!(
            token::mint(&secret, &call, "f", NOW + 60),
            Err(token::CallIdError::Colon)
        );
    }

    /// Any one-character edit anywhere (the last data character and the
    /// padding included) makes the token fail. The base64 engine rejects
    /// non-canonical trailing bits and padding, so no second spelling of the
    /// same bytes exists; `trailing_bits_have_one_spelling` pins that down.
    #[test]
    fn any_edit_invalidates_a_token(call in call_id(), function in function_name(), e in edit()) {
        let secret = Secret::new(SECRET);
        let t = token::mint(&secret, &call, &function, NOW + 3600).unwrap();
        if let Some(changed) = apply(&t, &e) {
            prop_assert_ne!(&changed, &t);
            let (verdict, _) = token::check(&secret, &changed, expect(&function, &call));
            prop_assert_ne!(verdict, Verdict::Valid, "edited token {} accepted", changed);
        }
    }
}

/// The unused low bits of the last base64 character and the `=` padding:
/// flipping the bits that carry no data, or dropping padding, would give the
/// same bytes under a lenient decoder. Every such variant must be refused.
#[test]
fn trailing_bits_have_one_spelling() {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let secret = Secret::new(SECRET);
    let mut seen = [false; 3];
    // Call ids of three lengths give decoded lengths in every class mod 3,
    // so tokens with no padding, `=` and `==` are all covered.
    for call in ["c", "ca", "cal"] {
        let t = token::mint_with_nonce(&secret, call, "f", NOW + 60, "0011223344556677");
        assert_eq!(
            token::check(&secret, &t, expect("f", call)).0,
            Verdict::Valid
        );
        let pad = t.len() - t.trim_end_matches('=').len();
        seen[pad] = true;
        let data_end = t.len() - pad;
        let last = t.as_bytes()[data_end - 1] as char;
        let index = ALPHABET.find(last).unwrap();
        // With `==` the last character carries 2 data bits (4 unused), with
        // `=` 4 data bits (2 unused), without padding all 6 are data.
        let unused = [0u32, 2, 4][pad];
        for low in 1..(1usize << unused) {
            let other = ALPHABET.as_bytes()[index ^ low] as char;
            let variant = format!("{}{other}{}", &t[..data_end - 1], &t[data_end..]);
            assert_eq!(
                token::check(&secret, &variant, expect("f", call)).0.code(),
                "malformed",
                "{variant}"
            );
        }
        if pad > 0 {
            let unpadded = t.trim_end_matches('=');
            assert_eq!(
                token::check(&secret, unpadded, expect("f", call)).0.code(),
                "malformed",
                "{unpadded}"
            );
        }
    }
    assert_eq!(seen, [true, true, true]);
}

/// Literal template text: anything without `${` (which would open a
/// variable). `$`, `{` and `}` on their own are fine and included.
fn literal() -> impl Strategy<Value = String> {
    "[a-z $/{}\\-]{0,8}".prop_filter("no `${`", |s| !s.contains("${"))
}

/// Argument values, biased towards what an attacker would try.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("${env:SECRET}".to_owned()),
        Just("${args.a}".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        Just("$(id)`id`; rm -rf / #".to_owned()),
        any::<String>(),
    ]
}

/// A template alternating literals and `${args.a|b|c}` references.
fn template_parts() -> impl Strategy<Value = Vec<(String, Option<&'static str>)>> {
    prop::collection::vec(
        (
            literal(),
            prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        ),
        0..5,
    )
}

/// Every env lookup answers `LEAKED`, so an expansion inside a value would show.
fn leaky_env(_: &str) -> Option<String> {
    Some("LEAKED".to_owned())
}

fn ctx(args: &Value) -> Context<'_> {
    Context {
        args,
        call_id: "call-1",
        global_data: &Value::Null,
        meta_data: &Value::Null,
        response: None,
        call: None,
        payload: None,
        item: None,
        list: None,
        env: &leaky_env,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Parsing loses nothing: a template prints back as its source, and
    /// arbitrary input is an error or a template, never a panic.
    #[test]
    fn parse_round_trips(source in any::<String>()) {
        if let Ok(t) = Template::parse(&source) {
            prop_assert_eq!(t.to_string(), source);
        }
    }

    /// The template invariant, stated precisely. A value may contain `${`
    /// (values are data, so that is correct), so "the output never contains
    /// `${`" is not the invariant. What must hold:
    /// 1. rendering is exactly the literal text with each `${args.X}` replaced
    ///    by X's text: nothing inside a value is ever expanded (a value
    ///    `${env:SECRET}` stays those characters; the env lookup here would
    ///    return `LEAKED` if it were consulted) and literal text is copied as
    ///    written;
    /// 2. so when no value contains `$` or `{`, the output contains no `${`:
    ///    every variable of the source was expanded, none is left over.
    #[test]
    fn values_are_never_expanded(
        parts in template_parts(),
        a in hostile_value(), b in hostile_value(), c in hostile_value(),
    ) {
        let args = json!({"a": a, "b": b, "c": c});
        let mut source = String::new();
        let mut expected = String::new();
        for (lit, var) in &parts {
            source.push_str(lit);
            expected.push_str(lit);
            if let Some(name) = var {
                source.push_str(&format!("${{args.{name}}}"));
                expected.push_str(&value_to_text(&args[*name]));
            }
        }
        // A literal that ends in `$` before a literal that starts with `{`
        // would open a variable in the source; such sources are not templates
        // of this shape, so they are skipped.
        let Ok(t) = Template::parse(&source) else { return Ok(()); };
        let out = t.render(&ctx(&args), Encoding::Text).unwrap();
        prop_assert_eq!(&out, &expected);
        prop_assert!(!out.contains("LEAKED") || [&a, &b, &c].iter().any(|v| v.contains("LEAKED")));
        let plain = [&a, &b, &c].iter().all(|v| !v.contains('$') && !v.contains('{'));
        if plain {
            prop_assert!(!out.contains("${"), "unexpanded `${{` in {:?}", out);
        }
    }

    /// URL encoding: a value becomes only unreserved characters and `%XX`,
    /// and decodes back to itself, so it can never add a path segment, a
    /// query parameter, a fragment or a template.
    #[test]
    fn url_values_are_opaque(a in hostile_value()) {
        let args = json!({"a": a});
        let out = Template::parse("${args.a}").unwrap().render(&ctx(&args), Encoding::Url).unwrap();
        prop_assert!(out.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{}", out);
        let back = percent_encoding::percent_decode_str(&out).decode_utf8().unwrap();
        prop_assert_eq!(back, a);
    }
}

/// An agent whose shell function prints its argc, with templated argv
/// elements in every position: whole value, `--opt=value`, literal, two
/// values glued together.
fn argc_agent(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("argc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '{\"response\": \"%s\"}' \"$#\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = dir.join("argc.yaml");
    std::fs::write(
        &agent,
        r#"name: argc
prompt: { text: Counts arguments. }
functions:
  argc:
    description: Prints its argument count.
    secure: false
    parameters:
      type: object
      properties:
        a: { type: string }
        b: { type: string }
    shell:
      command: ["./argc.sh", "${args.a}", "--x=${args.b}", "lit", "${args.a}${args.b}", "--", "${args.b}"]
"#,
    )
    .unwrap();
    agent
}

/// Strings for argv: anything but NUL, which no argv can hold (a NUL value
/// makes the spawn fail; `nul_in_an_argument_runs_nothing` covers that).
fn argv_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a b c".to_owned()),
        Just("; touch /tmp/x".to_owned()),
        Just("$(id) `id` \"'".to_owned()),
        Just("-rf".to_owned()),
        Just("line1\nline2".to_owned()),
        Just(String::new()),
        any::<String>(),
    ]
    .prop_map(|s| s.replace('\0', ""))
}

#[test]
fn argument_values_never_change_argc() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = load(&argc_agent(dir.path()), LoadOptions::default()).unwrap();
    let function = &agent.functions["argc"];
    let runtime = Runtime::new(&agent);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Each case starts a real process: few cases, still every shape above.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    runner
        .run(&(argv_value(), argv_value()), |(a, b)| {
            let args = json!({"a": a, "b": b});
            let reply = rt
                .block_on(runtime.run(
                    &agent,
                    function,
                    CallInput {
                        args: &args,
                        call_id: "call-1",
                        global_data: &Value::Null,
                        meta_data: &Value::Null,
                        call: None,
                        payload: None,
                    },
                ))
                .unwrap();
            prop_assert_eq!(reply.response, "6");
            Ok(())
        })
        .unwrap();
}

#[test]
fn nul_in_an_argument_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = load(&argc_agent(dir.path()), LoadOptions::default()).unwrap();
    let function = &agent.functions["argc"];
    let runtime = Runtime::new(&agent);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let args = json!({"a": "x\0y", "b": "z"});
    let err = rt
        .block_on(runtime.run(
            &agent,
            function,
            CallInput {
                args: &args,
                call_id: "call-1",
                global_data: &Value::Null,
                meta_data: &Value::Null,
                call: None,
                payload: None,
            },
        ))
        .unwrap_err();
    assert_eq!(
        err.spoken(),
        "Sorry, that service is not working right now; please try again later."
    );
}
