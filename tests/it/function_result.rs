//! A function's `actions` render as the SDK's `FunctionResult` renders the
//! same actions (issue 27): each agent-file action beside the SDK call that
//! makes it, compared through the real server and the installed SDK. Each
//! action the file renders also meets the schema's `Action` union, or is in
//! one of the SDK forms `swml::schema` names.

use serde_json::{json, Value};

use crate::util::{agent_dir, python, sdk_fixture, sdk_python, Swagent};

/// (agent-file action, the SDK call that makes the same): with arguments
/// `{name: Ann, dept: support}` and caller `+15557654321`.
const CASES: &[(&str, &str)] = &[
    ("say: Hello ${args.name}.", r#"["say", ["Hello Ann."], {}]"#),
    ("hangup: true", r#"["hangup", [], {}]"#),
    ("stop: true", r#"["stop", [], {}]"#),
    ("transfer: { to: \"+15551230001\" }", r#"["connect", ["+15551230001"], {}]"#),
    ("transfer: { to: \"sip:desk@example.com\", final: false }", r#"["connect", ["sip:desk@example.com"], {"final": false}]"#),
    ("transfer: { to: { by: dept, map: { sales: \"+15551230001\", support: \"sip:support@example.com\" } } }", r#"["connect", ["sip:support@example.com"], {}]"#),
    ("send_sms: { to: caller, from: \"+15550001111\", body: \"Booked for ${args.name}.\", media: [\"https://cdn.example.com/map.png\"] }", r#"["send_sms", [], {"to_number": "+15557654321", "from_number": "+15550001111", "body": "Booked for Ann.", "media": ["https://cdn.example.com/map.png"]}]"#),
    ("set_global_data: { booked: true, who: \"${args.name}\" }", r#"["update_global_data", [{"booked": true, "who": "Ann"}], {}]"#),
    ("unset_global_data: [a, b]", r#"["remove_global_data", [["a", "b"]], {}]"#),
    ("unset_global_data: a", r#"["remove_global_data", ["a"], {}]"#),
    ("set_meta_data: { visits: 2 }", r#"["set_metadata", [{"visits": 2}], {}]"#),
    ("unset_meta_data: visits", r#"["remove_metadata", ["visits"], {}]"#),
    ("toggle_functions: [{ function: other, active: false }]", r#"["toggle_functions", [[{"function": "other", "active": false}]], {}]"#),
    ("change_step: second", r#"["swml_change_step", ["second"], {}]"#),
    ("change_context: help", r#"["swml_change_context", ["help"], {}]"#),
    ("record_call: { format: mp3, stereo: true, control_id: rec1 }", r#"["record_call", [], {"format": "mp3", "stereo": true, "control_id": "rec1"}]"#),
    ("stop_record_call: true", r#"["stop_record_call", [], {}]"#),
    ("stop_record_call: { control_id: rec1 }", r#"["stop_record_call", ["rec1"], {}]"#),
    ("play_background: https://cdn.example.com/hold.mp3", r#"["play_background_file", ["https://cdn.example.com/hold.mp3"], {}]"#),
    ("play_background: { file: \"https://cdn.example.com/hold.mp3\", wait: true }", r#"["play_background_file", ["https://cdn.example.com/hold.mp3"], {"wait": true}]"#),
    ("stop_background: true", r#"["stop_background_file", [], {}]"#),
    ("hold: { timeout: 120 }", r#"["hold", [], {"timeout": 120}]"#),
];

const AGENT: &str = r#"name: results
prompt: { text: You help. }
contexts:
  default:
    steps:
      - { name: first, text: First., valid_steps: [second] }
      - { name: second, text: Second. }
  help:
    steps:
      - { name: ask, text: Ask. }
functions:
  act:
    description: Acts.
    secure: false
    post_process: true
    parameters:
      type: object
      properties:
        name: { type: string }
        dept: { type: string, enum: [sales, support] }
    static: { response: "Done, ${args.name}." }
    actions:
ACTIONS
  other:
    description: Another function.
    secure: false
    static: { response: ok }
"#;

#[test]
fn every_action_renders_as_the_sdks_function_result() {
    let Some(py) = sdk_python("every_action_renders_as_the_sdks_function_result") else {
        return;
    };
    let actions: String = CASES
        .iter()
        .map(|(yaml, _)| format!("      - {yaml}\n"))
        .collect();
    let dir = agent_dir(&AGENT.replace("ACTIONS\n", &actions), &[]);
    let server = Swagent::new(["serve", "agent.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    let (status, ours) = server.swaig(
        "",
        json!({"function": "act", "call_id": "call-1", "caller_id_num": "+15557654321",
               "argument": {"parsed": [{"name": "Ann", "dept": "support"}]}}),
    );
    assert_eq!(status, 200, "{ours}");
    let calls: Vec<Value> = CASES
        .iter()
        .map(|(_, call)| serde_json::from_str(call).unwrap())
        .collect();
    let spec = json!({"response": "Done, Ann.", "post_process": true, "calls": calls});
    let out = python(
        &py,
        &[sdk_fixture("function_result.py").to_str().unwrap()],
        spec.to_string().as_bytes(),
    )
    .code(0);
    let theirs: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(ours["response"], theirs["response"]);
    assert_eq!(ours["post_process"], theirs["post_process"]);
    let (ours, theirs) = (
        ours["action"].as_array().unwrap(),
        theirs["action"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), CASES.len());
    for ((yaml, _), (a, b)) in CASES.iter().zip(ours.iter().zip(theirs)) {
        assert_eq!(a, b, "{yaml}");
        assert!(
            swagent::swml::schema::action_conforms(a),
            "not in the schema or an SDK form: {a}"
        );
    }
}
