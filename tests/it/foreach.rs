//! http `output` with `foreach`: a list in the upstream's answer read out
//! element by element, against a real local upstream. The exact reply, `max`
//! cutting the list, `empty` for a path that is missing, not an array or an
//! empty array, and values that stay data.

use serde_json::{json, Value};

use crate::util::{agent_dir, Answer, Server, Swagent, Upstream};

const FAILED: &str = "Sorry, that service is not working right now; please try again later.";

fn agent(up: &str) -> String {
    format!(
        r#"name: lists
prompt:
  text: You read out lists.
functions:
  free_slots:
    description: Up to three slots, in a sentence.
    secure: false
    parameters:
      type: object
      properties:
        date: {{ type: string }}
        case: {{ type: string, enum: [slots, missing, scalar, empty, gappy] }}
    http:
      url: {up}/${{args.case}}
      output:
        foreach: response.day.slots
        each: "${{item.time}} with ${{item.doctor}}"
        join: "; "
        max: 3
        empty: "There are no free slots on ${{args.date}}."
        text: "Free slots on ${{args.date}}: ${{list}}."
  all_times:
    description: The defaults; an answer that is itself an array.
    secure: false
    http:
      url: {up}/times
      output:
        foreach: response
        each: "${{item}}"
        empty: None.
  values:
    description: Whatever the elements hold, as data.
    secure: false
    http:
      url: {up}/values
      output:
        foreach: response.values
        each: "[${{item.v}}]"
        join: ""
        empty: None.
        text: "${{list}} for ${{call_id}}"
  not_json:
    description: An answer that is not JSON.
    secure: false
    http:
      url: {up}/garbage
      output: {{ foreach: response.slots, each: "${{item}}", empty: None. }}
"#
    )
}

fn upstream() -> Upstream {
    let slot = |time: &str, doctor: &str| json!({"time": time, "doctor": doctor});
    let slots = json!({"day": {"slots": [
        slot("9:00", "Dr Ada"),
        slot("9:30", "Dr Bo"),
        slot("10:00", "Dr Cy"),
        slot("10:30", "Dr Di"),
        slot("11:00", "Dr Ed"),
    ]}});
    Upstream::start(move |req| match req.target.as_str() {
        "/slots" => Answer::json(&slots.to_string()),
        "/missing" => Answer::json(r#"{"day": {}}"#),
        "/scalar" => Answer::json(r#"{"day": {"slots": "ask again tomorrow"}}"#),
        "/empty" => Answer::json(r#"{"day": {"slots": []}}"#),
        "/gappy" => Answer::json(r#"{"day": {"slots": [{"time": "9:00"}]}}"#),
        "/times" => Answer::json(
            &json!((1..=12).map(|h| format!("{h}:00")).collect::<Vec<_>>()).to_string(),
        ),
        "/values" => Answer::json(
            &json!({"values": [
                {"v": "${env:HOME} ${list} ${item.v}"},
                {"v": 12.5},
                {"v": true},
                {"v": null},
                {"v": {"a": [1, "b"]}},
                {"v": "line\nbreak"},
            ]})
            .to_string(),
        ),
        "/garbage" => Answer::new("200 OK", "application/json", "<html>not json"),
        _ => Answer::new("404 Not Found", "text/plain", ""),
    })
}

fn start(up: &Upstream) -> (tempfile::TempDir, Server) {
    let dir = agent_dir(&agent(&up.url()), &[]);
    let server = Swagent::new(["serve", "agent.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    (dir, server)
}

/// What the caller hears from `function`.
fn said(server: &Server, function: &str, args: Value) -> String {
    let (status, reply) = server.swaig(
        "",
        json!({"function": function, "call_id": "call-7", "argument": {"parsed": [args]}}),
    );
    assert_eq!(status, 200, "{reply}");
    reply["response"].as_str().expect("a response").to_owned()
}

#[test]
fn a_list_is_read_out_up_to_max_inside_its_text() {
    let up = upstream();
    let (_dir, server) = start(&up);
    assert_eq!(
        said(
            &server,
            "free_slots",
            json!({"date": "2025-03-03", "case": "slots"})
        ),
        "Free slots on 2025-03-03: 9:00 with Dr Ada; 9:30 with Dr Bo; 10:00 with Dr Cy."
    );
    // Without `join`, `max` and `text`: ", ", the first 10, the list alone.
    assert_eq!(
        said(&server, "all_times", json!({})),
        "1:00, 2:00, 3:00, 4:00, 5:00, 6:00, 7:00, 8:00, 9:00, 10:00"
    );
}

#[test]
fn a_missing_path_a_non_array_and_an_empty_array_say_empty() {
    let up = upstream();
    let (_dir, server) = start(&up);
    for case in ["missing", "scalar", "empty"] {
        assert_eq!(
            said(
                &server,
                "free_slots",
                json!({"date": "2025-03-04", "case": case})
            ),
            "There are no free slots on 2025-03-04.",
            "{case}"
        );
    }
}

#[test]
fn element_values_are_data_never_templates() {
    let up = upstream();
    let (_dir, server) = start(&up);
    assert_eq!(
        said(&server, "values", json!({})),
        "[${env:HOME} ${list} ${item.v}][12.5][true][][{\"a\":[1,\"b\"]}][line\nbreak] for call-7"
    );
}

#[test]
fn an_element_without_a_named_field_or_an_answer_without_json_fails_safely() {
    let up = upstream();
    let (_dir, mut server) = start(&up);
    assert_eq!(
        said(
            &server,
            "free_slots",
            json!({"date": "2025-03-05", "case": "gappy"})
        ),
        FAILED
    );
    assert_eq!(said(&server, "not_json", json!({})), FAILED);
    let log = server.stop_and_log();
    assert!(
        log.contains(
            "function `free_slots` failed: `${item.doctor}` has no value in an element of the list"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "function `not_json` failed: upstream response is not JSON, and `output` needs JSON"
        ),
        "{log}"
    );
}
