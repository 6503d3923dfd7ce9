//! The whole `ai` verb (issue 26): each key of the agent file lands in the
//! SWML exactly; contexts render as the SDK's own `ContextBuilder` renders
//! them; the examples meet the official schema; `validate --swml-schema`
//! reports a failure at the agent file's line and column.

use serde_json::{json, Value};

use crate::util::{python, root, sdk_fixture, sdk_python, sdk_schema, Swagent};

/// The SWML `swagent swml` prints for an agent file.
fn swml(file: &str) -> Value {
    serde_json::from_str(&crate::util::swml_of(file, "c1")).unwrap()
}

/// The `ai` verb's object of a document.
fn ai(doc: &Value) -> &Value {
    doc["sections"]["main"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v.get("ai"))
        .unwrap()
}

#[test]
fn every_key_lands_in_the_swml_exactly() {
    let doc = swml("tests/fixtures/agents/full.yaml");
    let main = doc["sections"]["main"].as_array().unwrap();
    let around: Vec<&Value> = main.iter().filter(|v| v.get("ai").is_none()).collect();
    assert_eq!(
        around,
        [
            &json!({"answer": {"max_duration": 3600}}),
            &json!({"record_call": {"format": "mp3", "stereo": true}}),
            &json!({"play": {"url": "say:This call may be recorded."}}),
            &json!({"hangup": {}}),
        ]
    );
    // The order in `main`: answer, record_call, before_ai, ai, after_ai.
    assert!(main[3].get("ai").is_some(), "{main:?}");
    let ai = ai(&doc);
    let mut prompt = ai["prompt"].clone();
    prompt.as_object_mut().unwrap().remove("contexts");
    assert_eq!(
        prompt,
        json!({
            "pom": [{"title": "Role", "body": "You are the front desk.",
                "subsections": [{"title": "Tone", "bullets": ["Warm", "Brief"], "numberedBullets": true}]}],
            "temperature": 0.3, "top_p": 0.9, "confidence": 0.6,
            "presence_penalty": 0.1, "frequency_penalty": -0.1, "max_tokens": 256
        })
    );
    assert_eq!(
        ai["post_prompt"],
        json!({"text": "Summarize as JSON.", "temperature": 0.1})
    );
    assert_eq!(
        ai["params"],
        json!({"end_of_speech_timeout": 700, "ai_model": "gpt-4.1-mini"})
    );
    assert_eq!(
        ai["languages"],
        json!([{"name": "English", "code": "en-US", "voice": "elevenlabs.rachel",
            "emotion": "auto", "speed": "auto", "params": {"stability": 0.5, "similarity": 0.75},
            "speech_fillers": ["um"], "function_fillers": ["one moment"]}])
    );
    assert_eq!(
        ai["multilingual"],
        json!({"start_language": "en", "languages": [
            {"language": "en", "voice": "elevenlabs.rachel"},
            {"language": "es", "voice": "elevenlabs.lucia"}]})
    );
    assert_eq!(
        ai["hints"],
        json!(["SignalWire", {"hint": "swag", "pattern": "swag\\s*ent", "replace": "swagent", "ignore_case": true}])
    );
    assert_eq!(
        ai["pronounce"],
        json!([{"replace": "SQL", "with": "sequel", "ignore_case": false}])
    );
    assert_eq!(ai["global_data"], json!({"company": "Acme"}));
    let swaig = &ai["SWAIG"];
    assert_eq!(swaig["native_functions"], json!(["check_time"]));
    assert_eq!(
        swaig["includes"],
        json!([{"url": "https://other.example.com/swaig", "functions": ["remote_lookup"], "meta_data": {"tier": "gold"}}])
    );
    assert_eq!(
        swaig["internal_fillers"],
        json!({"next_step": {"en-US": ["Moving on."]}})
    );
    let mut function = swaig["functions"][0].clone();
    let hook = function
        .as_object_mut()
        .unwrap()
        .remove("web_hook_url")
        .unwrap();
    assert!(
        hook.as_str().unwrap().contains("/full/swaig/?__token="),
        "{hook}"
    );
    assert_eq!(
        function,
        json!({"function": "get_hours", "description": "Opening hours.",
            "parameters": {"type": "object", "properties": {}},
            "fillers": {"en-US": ["Let me check."]},
            "wait_file": "https://cdn.example.com/wait.mp3", "wait_file_loops": 2,
            "wait_for_fillers": true, "skip_fillers": false, "active": true,
            "meta_data": {"source": "static"}})
    );
}

#[test]
fn contexts_render_as_the_sdks_context_builder_renders_them() {
    let Some(py) = sdk_python("contexts_render_as_the_sdks_context_builder_renders_them") else {
        return;
    };
    for file in [
        "agents/receptionist.yaml",
        "agents/survey.yaml",
        "tests/fixtures/agents/full.yaml",
    ] {
        let doc = swml(file);
        let mut ours = ai(&doc)["prompt"]["contexts"].clone();
        // The one difference, on purpose: fillers in the schema's list form.
        for context in ours.as_object_mut().unwrap().values_mut() {
            for key in ["enter_fillers", "exit_fillers"] {
                if let Some(list) = context.get(key).cloned() {
                    let merged: serde_json::Map<String, Value> = list
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|o| o.as_object().unwrap().clone())
                        .collect();
                    context[key] = Value::Object(merged);
                }
            }
        }
        let builder = sdk_fixture("contexts_builder.py");
        let path = root().join(file);
        let out = python(
            &py,
            &[builder.to_str().unwrap(), path.to_str().unwrap()],
            b"",
        )
        .code(0);
        let theirs: Value = serde_json::from_str(&out.stdout).unwrap();
        // Compared as text, so the order of keys counts too.
        assert_eq!(
            serde_json::to_string_pretty(&ours).unwrap(),
            serde_json::to_string_pretty(&theirs).unwrap(),
            "{file}"
        );
    }
}

/// The SDK's `schema.json`, written to a file for `--swml-schema`.
fn sdk_schema_file(test: &str, edit: impl FnOnce(&mut Value)) -> Option<tempfile::NamedTempFile> {
    let mut schema = sdk_schema(test)?;
    edit(&mut schema);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), schema.to_string()).unwrap();
    Some(file)
}

#[test]
fn the_examples_meet_the_sdks_schema() {
    let Some(schema) = sdk_schema_file("the_examples_meet_the_sdks_schema", |_| {}) else {
        return;
    };
    Swagent::new(["validate", "--strict", "--swml-schema"])
        .args([
            schema.path().as_os_str(),
            "agents".as_ref(),
            "tests/fixtures/agents/full.yaml".as_ref(),
        ])
        .dir(&root())
        .env("CORE_API_TOKEN", "x")
        .env("SCHEDULING_API_KEY", "y")
        .env("CRM_TOKEN", "z")
        .run()
        .code(0)
        .stdout_is("8 agent file(s) valid\n");
    // The SDK's own validator agrees on the examples without contexts,
    // which need no extension.
    let py = sdk_python("the_examples_meet_the_sdks_schema").unwrap();
    for agent in ["hello", "bank", "clinic", "production-bank"] {
        let doc = swml(&format!("agents/{agent}.yaml"));
        crate::util::sdk_validate(&py, &doc)
            .code(0)
            .stdout_is("valid\n");
    }
}

#[test]
fn a_failure_against_a_given_schema_is_reported_where_the_file_says_it() {
    // A schema stricter than the official one: `end_of_speech_timeout`
    // must be text, so the file's number fails it.
    let Some(schema) = sdk_schema_file(
        "a_failure_against_a_given_schema_is_reported_where_the_file_says_it",
        |s| {
            s["$defs"]["AIParams"]["properties"]["end_of_speech_timeout"] =
                json!({"type": "string"});
        },
    ) else {
        return;
    };
    Swagent::new(["validate", "--swml-schema"])
        .args([schema.path().as_os_str(), "agents/clinic.yaml".as_ref()])
        .dir(&root())
        .env("SCHEDULING_API_KEY", "y")
        .run()
        .code(1)
        .stderr_is(
            "agents/clinic.yaml:17:34: error: the SWML fails the schema at `/sections/main/1/ai/params/end_of_speech_timeout`: 800 is not of type \"string\"\n   |\n17 | params: { end_of_speech_timeout: 800 }\n   |                                  ^\n1 of 1 agent file(s) invalid\n",
        );
    let missing = root().join("no-such-schema.json");
    Swagent::new(["validate", "--swml-schema"])
        .args([missing.as_os_str(), "agents/hello.yaml".as_ref()])
        .dir(&root())
        .run()
        .code(2)
        .stderr_has("cannot read `");
}

#[test]
fn unreachable_steps_are_errors_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("tests/fixtures/agents/bad/context_reach.yaml");
    std::fs::copy(&from, dir.path().join("reach.yaml")).unwrap();
    let out = Swagent::new(["validate", "--strict", "reach.yaml"])
        .dir(dir.path())
        .run()
        .code(1);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("reach.yaml"))
        .collect();
    assert_eq!(
        lines,
        [
            "reach.yaml:9:13: error: step `orphan` of context `default` cannot be reached: no step the conversation reaches moves to it (`valid_steps`, `next`, `completion_action`, a function's `change_step`)",
            "reach.yaml:14:3: error: context `archive` is never entered: no step the conversation reaches lists it in `valid_contexts` (nor its context), and no function's `change_context` names it",
        ]
    );
}

#[test]
fn an_empty_list_is_a_dead_end_and_a_steps_list_replaces_its_contexts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scoped.yaml"),
        "name: scoped\nprompt: { text: Hi. }\ncontexts:\n  default:\n    valid_contexts: [billing]\n    steps:\n      - { name: a, text: A., valid_steps: [], valid_contexts: [] }\n      - { name: b, text: B. }\n  billing:\n    steps:\n      - { name: c, text: C. }\n",
    )
    .unwrap();
    let out = Swagent::new(["validate", "scoped.yaml"])
        .dir(dir.path())
        .run()
        .code(0);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("scoped.yaml"))
        .collect();
    assert_eq!(
        lines,
        [
            "scoped.yaml:8:9: warning: step `b` of context `default` cannot be reached: no step the conversation reaches moves to it (`valid_steps`, `next`, `completion_action`, a function's `change_step`)",
            "scoped.yaml:9:3: warning: context `billing` is never entered: no step the conversation reaches lists it in `valid_contexts` (nor its context), and no function's `change_context` names it",
        ]
    );
}

/// A function offered in a step keeps every guard: its token is checked
/// and bound to it, whatever the step says.
#[test]
fn a_function_offered_in_a_step_is_still_token_checked() {
    let server = Swagent::new(["serve", "agents/receptionist.yaml"])
        .dir(&root())
        .creds()
        .start();
    let doc: Value = server
        .post("/receptionist")
        .json(&json!({"call_id": "call-7"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let call = |token: Option<&str>| {
        let query = token
            .map(|t| {
                format!(
                    "?__token={}",
                    url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                )
            })
            .unwrap_or_default();
        let body = json!({"function": "invoice_status", "call_id": "call-7",
            "argument": {"parsed": [{"invoice": "INV-123456"}]}});
        let resp = server
            .post(&format!("/receptionist/swaig{query}"))
            .json(&body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let refused = (
        403,
        r#"{"error":"invalid_token","message":"missing or invalid function token"}"#.to_owned(),
    );
    assert_eq!(call(None), refused, "no token");
    let other = crate::util::token_in(&doc, "product_info");
    assert_eq!(call(Some(&other)), refused, "another function's token");
    let own = crate::util::token_in(&doc, "invoice_status");
    let (status, body) = call(Some(&own));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response"],
        "Invoice INV-123456 is paid; a receipt was sent by email."
    );
}

/// The SDK's limits hold, and bound the work a file can ask for: a list of
/// aliases repeating every step is refused at its first repeat.
#[test]
fn the_sdks_limits_hold_and_repeats_stop_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let contexts: String = (0..51)
        .map(|i| format!("  c{i}:\n    steps: [{{ name: s, text: S. }}]\n"))
        .collect();
    let many = format!("name: many\nprompt: {{ text: Hi. }}\ncontexts:\n  default:\n    steps: [{{ name: s, text: S. }}]\n{contexts}");
    std::fs::write(dir.path().join("many.yaml"), many).unwrap();
    Swagent::new(["validate", "many.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_has("many.yaml:3:1: error: 52 contexts: at most 50 (the SDK's limit)\n");
    // The first step's list names every step and then one again; the 99
    // others refer to it.
    let names: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    let first = format!(
        "      - {{ name: s0, text: T., valid_steps: &all [{}, s1] }}\n",
        names.join(", ")
    );
    let rest: String = names[1..]
        .iter()
        .map(|n| format!("      - {{ name: {n}, text: T., valid_steps: *all }}\n"))
        .collect();
    let aliased = format!(
        "name: aliased\nprompt: {{ text: Hi. }}\ncontexts:\n  default:\n    steps:\n{first}{rest}"
    );
    std::fs::write(dir.path().join("aliased.yaml"), aliased).unwrap();
    let out = Swagent::new(["validate", "aliased.yaml"])
        .dir(dir.path())
        .run()
        .code(1);
    let repeats = out.stderr.matches("error: `s1` is listed twice").count();
    assert_eq!(
        repeats, 100,
        "one error per list, at its first repeat:\n{}",
        out.stderr
    );
}

#[test]
fn a_post_prompt_may_have_sections_and_model_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pp.yaml"),
        "name: pp\nprompt: { text: Hi. }\npost_prompt:\n  sections:\n    - { title: Summary, body: Summarize the call. }\n    - { title: Format, bullets: [JSON only] }\n  max_tokens: 300\n",
    )
    .unwrap();
    let out = Swagent::new(["swml", "pp.yaml"])
        .dir(dir.path())
        .creds()
        .run()
        .code(0);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        ai(&doc)["post_prompt"],
        json!({"pom": [{"title": "Summary", "body": "Summarize the call."},
            {"title": "Format", "bullets": ["JSON only"]}], "max_tokens": 300})
    );
}
