//! The rule of issue 26, as a property: every agent file `validate` accepts
//! renders SWML that the official schema accepts (the `schema.json` of the
//! installed SignalWire SDK, with swagent's named context and step
//! extension). Files are generated across every key of the `ai` verb,
//! awkward values included; those refused must be refused at load, never
//! fixed at render.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::{any, prop, BoxedStrategy, Just, Strategy};
use proptest::prop_oneof;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

use swagent::agent::{load, LoadOptions};

/// Mostly `good`, now and then `bad`: a file with many awkward values is
/// refused for one of them, so each must be rare for the rest to be tried.
fn rarely<T: std::fmt::Debug + Clone + 'static>(
    good: impl Strategy<Value = T> + 'static,
    bad: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![14 => good, 1 => bad].boxed()
}

/// Sometimes a key, sometimes not.
fn maybe<S: Strategy<Value = Value>>(s: S) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.4, s)
}

fn insert_all(m: &mut Map<String, Value>, entries: Vec<(&str, Option<Value>)>) {
    for (k, v) in entries {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    }
}

fn object(entries: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    insert_all(&mut m, entries);
    Value::Object(m)
}

/// Short text, rarely empty or blank (which some places refuse).
fn text() -> BoxedStrategy<String> {
    rarely(
        "[A-Za-z][A-Za-z ,.?]{0,12}",
        prop_oneof![Just(String::new()), Just("  ".to_owned())],
    )
}

fn text_value() -> BoxedStrategy<Value> {
    text().prop_map(Value::from).boxed()
}

/// A JSON value of a type a setting might wrongly get.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-20_000i64..700_000).prop_map(Value::from),
        (-3.0f64..3.0).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        prop_oneof![Just("700ms"), Just("gpt-4.1-mini"), Just("${x}"), Just("")]
            .prop_map(Value::from),
        Just(json!({})),
        Just(json!(["a"])),
    ]
}

/// A number in `lo..=hi`, rarely out of it.
fn ranged(lo: f64, hi: f64) -> impl Strategy<Value = Option<Value>> {
    maybe(rarely(
        (lo..=hi).prop_map(Value::from),
        prop_oneof![Just(lo - 0.5), Just(hi + 0.5)].prop_map(Value::from),
    ))
}

/// The model's settings.
fn llm() -> impl Strategy<Value = Vec<(&'static str, Option<Value>)>> {
    (
        ranged(0.0, 1.5),
        ranged(0.0, 1.0),
        ranged(0.0, 1.0),
        ranged(-2.0, 2.0),
        ranged(-2.0, 2.0),
        maybe(rarely(
            (0i64..=4096).prop_map(Value::from),
            Just(Value::from(5000)),
        )),
    )
        .prop_map(|(t, p, c, pp, fp, mt)| {
            vec![
                ("temperature", t),
                ("top_p", p),
                ("confidence", c),
                ("presence_penalty", pp),
                ("frequency_penalty", fp),
                ("max_tokens", mt),
            ]
        })
}

/// A POM section; rarely with neither body nor bullets, an empty title or
/// empty lists; with subsections.
fn section() -> impl Strategy<Value = Value> {
    let bullets =
        || rarely(prop::collection::vec(text(), 1..3), Just(Vec::new())).prop_map(Value::from);
    let content = rarely(
        prop_oneof![
            text_value().prop_map(|b| (Some(b), None)),
            bullets().prop_map(|b| (None, Some(b))),
            (text_value(), bullets()).prop_map(|(b, l)| (Some(b), Some(l))),
        ],
        Just((None, None)),
    );
    let leaf = (
        maybe(text_value()),
        content,
        maybe(any::<bool>().prop_map(Value::from)),
        maybe(any::<bool>().prop_map(Value::from)),
    )
        .prop_map(|(title, (body, bullets), n, nb)| {
            object(vec![
                ("title", title),
                ("body", body),
                ("bullets", bullets),
                ("numbered", n),
                ("numbered_bullets", nb),
            ])
        });
    leaf.prop_recursive(2, 6, 2, |inner| {
        let subs = rarely(prop::collection::vec(inner.clone(), 1..3), Just(Vec::new()));
        (inner, subs).prop_map(|(mut s, subs)| {
            s["subsections"] = Value::from(subs);
            s
        })
    })
}

fn prompt() -> impl Strategy<Value = Value> {
    let body = prop_oneof![
        text().prop_map(|t| ("text", Value::from(t))),
        rarely(prop::collection::vec(section(), 1..3), Just(Vec::new()))
            .prop_map(|s| ("sections", Value::from(s))),
    ];
    (body, llm()).prop_map(|((k, v), llm)| {
        let mut m = Map::new();
        m.insert(k.into(), v);
        insert_all(&mut m, llm);
        Value::Object(m)
    })
}

fn post_prompt() -> impl Strategy<Value = Value> {
    prop_oneof![
        text_value(),
        (text(), llm()).prop_map(|(t, llm)| {
            let mut m = Map::new();
            m.insert("text".into(), Value::from(t));
            insert_all(&mut m, llm);
            Value::Object(m)
        }),
    ]
}

/// `params`: known keys with the schema's own example value, rarely a value
/// of another type, or a misspelt key.
fn params() -> impl Strategy<Value = Value> {
    let props = swagent::swml::schema::def("AIParams")["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let good: Vec<(String, Value)> = props
        .iter()
        .filter_map(|(k, v)| {
            let example = v
                .get("examples")
                .and_then(|e| e.get(0))
                .or_else(|| v.get("default"));
            example.map(|e| (k.clone(), e.clone()))
        })
        .collect();
    let keys: Vec<String> = good.iter().map(|(k, _)| k.clone()).collect();
    let entry = rarely(
        prop::sample::select(good),
        prop_oneof![
            (prop::sample::select(keys), any_value()),
            any_value().prop_map(|v| ("end_of_speach_timeout".to_owned(), v)),
        ],
    );
    prop::collection::vec(entry, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn language() -> impl Strategy<Value = Value> {
    let auto = || rarely(Just("auto"), Just("happy")).prop_map(Value::from);
    let voice = rarely(
        prop_oneof![Just("elevenlabs.rachel"), Just("${env:HOME}")].prop_map(Some),
        Just(None),
    );
    (
        voice,
        maybe(auto()),
        maybe(auto()),
        maybe(
            (ranged(0.0, 1.0), ranged(0.0, 1.0))
                .prop_map(|(s, m)| object(vec![("stability", s), ("similarity", m)])),
        ),
        maybe(prop::collection::vec(text(), 1..2).prop_map(Value::from)),
    )
        .prop_map(|(voice, emotion, speed, params, fillers)| {
            let mut m = Map::new();
            m.insert("name".into(), json!("English"));
            m.insert("code".into(), json!("en-US"));
            insert_all(
                &mut m,
                vec![
                    ("voice", voice.map(Value::from)),
                    ("emotion", emotion),
                    ("speed", speed),
                    ("params", params),
                    ("speech_fillers", fillers),
                ],
            );
            Value::Object(m)
        })
}

/// `{ CODE: [lines] }`: codes the platform knows, rarely one it does not or
/// one without lines.
fn fillers(languages: std::ops::Range<usize>) -> impl Strategy<Value = Value> {
    let code = rarely(
        prop_oneof![Just("en-US"), Just("default"), Just("es")],
        Just("xx-XX"),
    );
    let lines = rarely(prop::collection::vec(text(), 1..3), Just(Vec::new()));
    prop::collection::btree_map(code, lines, languages).prop_map(|m| json!(m))
}

/// Verbs to put around the AI, rarely wrong ones.
fn verb() -> impl Strategy<Value = Value> {
    rarely(
        prop_oneof![
            Just(json!({"play": {"url": "say:Hello."}})),
            Just(json!({"sleep": 500})),
            Just(json!({"hangup": {}})),
            Just(json!({"hangup": {"reason": "busy"}})),
            Just(json!({"transfer": {"dest": "https://example.com/next"}})),
        ],
        prop_oneof![
            Just(json!({"play": {}})),
            Just(json!({"sleep": "soon"})),
            Just(json!({"dance": {}})),
            Just(json!({"ai": {}})),
            Just(json!({"sleep": 1, "hangup": {}})),
        ],
    )
}

/// An argument schema property, rarely one the platform cannot take.
fn property() -> impl Strategy<Value = Value> {
    rarely(
        prop_oneof![
            Just(json!({"type": "string", "description": "A word."})),
            Just(json!({"type": "integer", "minimum": 1, "maximum": 9})),
            Just(json!({"type": ["string", "null"]})),
            Just(json!({"type": "string", "enum": ["a", "b"]})),
            Just(json!({"type": "array", "items": {"type": "string", "maxLength": 4}})),
            Just(json!({"type": "object", "properties": {"n": {"type": "number"}}})),
        ],
        prop_oneof![
            Just(json!({"type": "null", "description": "Nothing."})),
            Just(json!({"type": "null"})),
            Just(json!({"type": ["string", "null"], "enum": ["a", null]})),
            Just(json!({"type": "integer", "default": "two"})),
        ],
    )
}

fn function() -> impl Strategy<Value = Value> {
    let wait_file =
        rarely(Just("https://cdn.example.com/w.mp3"), Just("/tmp/w.mp3")).prop_map(Value::from);
    (
        prop::collection::btree_map("[a-c]", property(), 0..3),
        maybe(fillers(1..2)),
        maybe(wait_file),
        maybe((0u32..5).prop_map(Value::from)),
        (
            maybe(any::<bool>().prop_map(Value::from)),
            maybe(any::<bool>().prop_map(Value::from)),
        ),
        maybe(Just(json!({"k": 1}))),
    )
        .prop_map(|(props, fillers, wait_file, loops, (active, skip), meta)| {
            let mut m = Map::new();
            m.insert("description".into(), json!("Does a thing."));
            m.insert(
                "parameters".into(),
                json!({"type": "object", "properties": props}),
            );
            m.insert("static".into(), json!({"response": "Done."}));
            insert_all(
                &mut m,
                vec![
                    ("fillers", fillers),
                    ("wait_file", wait_file),
                    ("wait_file_loops", loops),
                    ("active", active),
                    ("skip_fillers", skip),
                    ("meta_data", meta),
                ],
            );
            Value::Object(m)
        })
}

/// A step's target: steps `s0`..`s2` (of which the context may have fewer),
/// `next`, rarely a step that is nowhere.
fn step_target() -> BoxedStrategy<String> {
    rarely(
        prop_oneof![Just("s0"), Just("s1"), Just("s2"), Just("next")],
        Just("ghost"),
    )
    .prop_map(str::to_owned)
    .boxed()
}

fn context_target() -> BoxedStrategy<String> {
    rarely(prop_oneof![Just("default"), Just("other")], Just("ghost"))
        .prop_map(str::to_owned)
        .boxed()
}

fn gather_info() -> impl Strategy<Value = Value> {
    let kind =
        maybe(prop_oneof![Just("integer"), Just("string"), Just("boolean")].prop_map(Value::from));
    let question = (
        text(),
        kind,
        maybe(Just(json!(true))),
        maybe(Just(json!(["f0"]))),
    );
    let action = maybe(
        rarely(
            prop_oneof![Just("next_step"), Just("s0"), Just("s1")],
            Just("nowhere"),
        )
        .prop_map(Value::from),
    );
    (
        rarely(prop::collection::vec(question, 1..3), Just(Vec::new())),
        action,
        maybe(text_value()),
        any::<bool>(),
    )
        .prop_map(|(questions, action, prompt, same_key)| {
            let questions: Vec<Value> = questions
                .into_iter()
                .enumerate()
                .map(|(i, (q, kind, confirm, functions))| {
                    // Rarely two questions with one key.
                    let key = if same_key && i > 0 && q.len() % 7 == 0 {
                        "q0".to_owned()
                    } else {
                        format!("q{i}")
                    };
                    let mut m = Map::new();
                    m.insert("key".into(), json!(key));
                    m.insert("question".into(), json!(q));
                    insert_all(
                        &mut m,
                        vec![
                            ("type", kind),
                            ("confirm", confirm),
                            ("functions", functions),
                        ],
                    );
                    Value::Object(m)
                })
                .collect();
            let mut m = Map::new();
            m.insert("questions".into(), json!(questions));
            insert_all(
                &mut m,
                vec![
                    ("completion_action", action),
                    ("prompt", prompt),
                    ("output_key", Some(json!("answers"))),
                ],
            );
            Value::Object(m)
        })
}

/// A step; its name comes from its place (`s0`, `s1`, ...), rarely `next`.
fn step() -> impl Strategy<Value = (bool, Value)> {
    let functions = prop_oneof![
        Just(json!("none")),
        prop::collection::vec(
            rarely(
                prop_oneof![
                    Just("f0"),
                    Just("f1"),
                    Just("check_time"),
                    Just("next_step")
                ],
                Just("nope")
            ),
            0..3,
        )
        .prop_map(Value::from),
    ];
    let body = prop_oneof![
        text().prop_map(|t| ("text", Value::from(t))),
        prop::collection::vec((text(), text()), 1..3).prop_map(|s| {
            let sections: Vec<Value> = s
                .into_iter()
                .map(|(t, b)| json!({"title": t, "body": b}))
                .collect();
            ("sections", Value::from(sections))
        }),
    ];
    let flags = (
        maybe(any::<bool>().prop_map(Value::from)),
        maybe(any::<bool>().prop_map(Value::from)),
        maybe(any::<bool>().prop_map(Value::from)),
    );
    let reset = rarely(
        prop_oneof![
            Just(json!({"system_prompt": "New.", "consolidate": true})),
            Just(json!({"full_reset": false}))
        ],
        Just(json!({})),
    );
    (
        rarely(Just(false), Just(true)),
        body,
        (
            maybe(functions),
            maybe(prop::collection::vec(step_target(), 0..3).prop_map(Value::from)),
        ),
        maybe(prop::collection::vec(context_target(), 0..2).prop_map(Value::from)),
        flags,
        (
            maybe(prop_oneof![Just("keep"), Just("default"), Just("hide")].prop_map(Value::from)),
            maybe(reset),
        ),
        maybe(gather_info()),
        maybe(text_value()),
    )
        .prop_map(
            |(
                named_next,
                (bk, bv),
                (functions, valid_steps),
                valid_contexts,
                (end, skip, skip_next),
                (history, reset),
                gather,
                criteria,
            )| {
                let mut m = Map::new();
                m.insert(bk.into(), bv);
                insert_all(
                    &mut m,
                    vec![
                        ("step_criteria", criteria),
                        ("functions", functions),
                        ("valid_steps", valid_steps),
                        ("valid_contexts", valid_contexts),
                        ("end", end),
                        ("skip_user_turn", skip),
                        ("skip_to_next_step", skip_next),
                        ("history", history),
                        ("reset", reset),
                        ("gather_info", gather),
                    ],
                );
                (named_next, Value::Object(m))
            },
        )
}

fn context() -> impl Strategy<Value = Value> {
    let prompt = prop_oneof![
        text().prop_map(|t| Some(("text", Value::from(t)))),
        text().prop_map(|t| Some(("sections", json!([{"title": "Role", "bullets": [t]}])))),
        Just(None),
    ];
    (
        rarely(prop::collection::vec(step(), 1..4), Just(Vec::new())),
        prompt,
        (
            maybe(any::<bool>().prop_map(Value::from)),
            maybe(any::<bool>().prop_map(Value::from)),
        ),
        (maybe(fillers(1..3)), maybe(fillers(1..2))),
        maybe(step_target().prop_map(Value::from)),
        maybe(prop::collection::vec(context_target(), 1..2).prop_map(Value::from)),
        (
            maybe(text_value()),
            maybe(text_value()),
            maybe(prop_oneof![Just("keep"), Just("hide")].prop_map(Value::from)),
        ),
    )
        .prop_map(
            |(
                steps,
                prompt,
                (isolated, consolidate),
                (enter, exit),
                initial,
                valid,
                (system, post, history),
            )| {
                let steps: Vec<Value> = steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, (named_next, mut s))| {
                        s["name"] = json!(if named_next {
                            "next".to_owned()
                        } else {
                            format!("s{i}")
                        });
                        s
                    })
                    .collect();
                let mut m = Map::new();
                m.insert("steps".into(), json!(steps));
                if let Some((k, v)) = prompt {
                    m.insert(k.into(), v);
                }
                insert_all(
                    &mut m,
                    vec![
                        ("isolated", isolated),
                        ("consolidate", consolidate),
                        ("enter_fillers", enter),
                        ("exit_fillers", exit),
                        ("initial_step", initial),
                        ("valid_contexts", valid),
                        ("system_prompt", system),
                        ("post_prompt", post),
                        ("history", history),
                    ],
                );
                Value::Object(m)
            },
        )
}

/// An agent file with any of the keys of the `ai` verb.
fn agent() -> impl Strategy<Value = Value> {
    let hint = prop_oneof![
        text_value(),
        Just(
            json!({"hint": "swag", "pattern": "swag\\s*ent", "replace": "swagent", "ignore_case": true})
        ),
    ];
    let call_level = (
        maybe(params()),
        maybe(prop::collection::vec(language(), 1..3).prop_map(Value::from)),
        maybe(rarely(
            Just(
                json!({"start_language": "en", "languages": [{"language": "en", "voice": "elevenlabs.rachel"}]}),
            ),
            Just(json!({"start_language": 5})),
        )),
        maybe(prop::collection::vec(hint, 1..3).prop_map(Value::from)),
        maybe(
            prop::collection::vec(
                (text(), text()).prop_map(|(r, w)| json!({"replace": r, "with": w})),
                1..3,
            )
            .prop_map(Value::from),
        ),
        maybe(rarely(
            Just(json!({"company": "Acme", "tier": 2})),
            Just(json!({"swagent_verified": true})),
        )),
    );
    let swaig = (
        maybe(
            prop::collection::vec(
                rarely(
                    prop_oneof![Just("check_time"), Just("wait_seconds")],
                    Just("tell_joke"),
                ),
                1..3,
            )
            .prop_map(Value::from),
        ),
        maybe(rarely(
            Just(
                json!([{"url": "https://other.example.com/swaig", "functions": ["remote"], "meta_data": {"a": 1}}]),
            ),
            Just(json!([{"url": "https://other.example.com/swaig", "functions": []}])),
        )),
        maybe(rarely(
            Just(
                json!({"next_step": {"en-US": ["Moving on."]}, "check_time": {"default": ["Let me look."]}}),
            ),
            Just(json!({"next_step": {"en-US": "Moving on."}})),
        )),
    );
    let around = (
        maybe(rarely(
            (1u32..5000).prop_map(|d| json!({"max_duration": d})),
            Just(json!({"max_duration": 0})),
        )),
        maybe(
            rarely(prop_oneof![Just("wav"), Just("mp3")], Just("ogg"))
                .prop_map(|f| json!({"format": f, "stereo": true})),
        ),
        maybe(prop::collection::vec(verb(), 1..3).prop_map(Value::from)),
        maybe(prop::collection::vec(verb(), 1..2).prop_map(Value::from)),
    );
    let contexts = maybe(
        (context(), prop::option::of(context())).prop_map(|(default, other)| {
            let mut m = Map::new();
            m.insert("default".into(), default);
            if let Some(other) = other {
                m.insert("other".into(), other);
            }
            Value::Object(m)
        }),
    );
    (
        prompt(),
        maybe(post_prompt()),
        call_level,
        swaig,
        around,
        prop::collection::vec(function(), 0..3),
        contexts,
    )
        .prop_map(|(prompt, post, call, swaig, around, functions, contexts)| {
            let mut m = Map::new();
            m.insert("name".into(), json!("generated"));
            m.insert("prompt".into(), prompt);
            let functions: Map<String, Value> = functions
                .into_iter()
                .enumerate()
                .map(|(i, f)| (format!("f{i}"), f))
                .collect();
            m.insert("functions".into(), Value::Object(functions));
            let (params, languages, multilingual, hints, pronounce, global_data) = call;
            let (native, includes, internal) = swaig;
            let (answer, record, before, after) = around;
            insert_all(
                &mut m,
                vec![
                    ("post_prompt", post),
                    ("params", params),
                    ("languages", languages),
                    ("multilingual", multilingual),
                    ("hints", hints),
                    ("pronounce", pronounce),
                    ("global_data", global_data),
                    ("native_functions", native),
                    ("includes", includes),
                    ("internal_fillers", internal),
                    ("answer", answer),
                    ("record_call", record),
                    ("before_ai", before),
                    ("after_ai", after),
                    ("contexts", contexts),
                ],
            );
            Value::Object(m)
        })
}

#[test]
fn every_file_validate_accepts_renders_swml_the_official_schema_accepts() {
    let Some(mut schema) = crate::util::sdk_schema(
        "every_file_validate_accepts_renders_swml_the_official_schema_accepts",
    ) else {
        return;
    };
    swagent::swml::schema::extend(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("the SDK's schema compiles");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generated.yaml");
    let (accepted, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&agent(), |file| {
        let yaml = serde_yaml::to_string(&file).unwrap();
        std::fs::write(&path, &yaml).unwrap();
        let Ok((agent, _)) = load(&path, LoadOptions::default()) else {
            refused.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let doc = swagent::swml::conformance::placeholder(&agent);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .flat_map(|e| swagent::swml::schema::leaves(&e))
            .map(|(path, message)| format!("{path}: {message}"))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TestCaseError::fail(format!(
                "accepted, but its SWML fails the schema:\n{}\n--- the file:\n{yaml}",
                errors.join("\n")
            )))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (accepted, refused) = (accepted.into_inner(), refused.into_inner());
    // Both sides must be exercised, or the property says nothing.
    assert!(
        accepted >= 50,
        "only {accepted} of 512 generated files were accepted"
    );
    assert!(
        refused >= 50,
        "only {refused} of 512 generated files were refused"
    );
}
