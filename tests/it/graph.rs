//! `swagent graph`: the shipped examples with contexts as snapshots in both
//! formats, the moves by functions too, exact output for agents without
//! contexts and for hostile names, and the DOT rendered by Graphviz.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::util::{agent_dir, installed, root, Swagent};

/// The examples with contexts and steps.
const EXAMPLES: [&str; 2] = ["receptionist", "survey"];

/// `swagent graph agents/NAME.yaml [ARGS]` in the repository, which must
/// succeed without a word on stderr.
fn graph(agent: &str, args: &[&str]) -> String {
    Swagent::new(["graph", &format!("agents/{agent}.yaml")])
        .args(args)
        .dir(&root())
        .env("CORE_API_TOKEN", "x")
        .run()
        .code(0)
        .stderr_is("")
        .stdout
}

#[test]
fn the_graphs_of_the_examples_with_contexts() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let _guard = settings.bind_to_scope();
    for agent in EXAMPLES {
        insta::assert_snapshot!(format!("graph_{agent}_mermaid"), graph(agent, &[]));
        insta::assert_snapshot!(
            format!("graph_{agent}_dot"),
            graph(agent, &["--format", "dot"])
        );
    }
    let help = Swagent::new(["graph", "--help"]).run().code(0).stdout;
    insta::assert_snapshot!("help_graph", help);
}

/// Functions that move the conversation: by an action (`lock`), by an
/// outcome (`escalate`), and by the targets their output may name (`pick`).
const MOVES: &str = r#"name: moves
prompt: { text: You help. }
contexts:
  default:
    steps:
      - { name: choose, text: Choose., valid_steps: [], functions: [lock, escalate, pick] }
      - { name: locked, text: Locked., valid_steps: [] }
  help:
    steps: [{ name: note, text: Take a note., valid_steps: [] }]
functions:
  lock:
    description: Locks.
    static: { response: Locked. }
    actions: [ { change_step: locked } ]
  escalate:
    description: Escalates.
    http: { url: "https://backend.example.com/x" }
    outcomes:
      message: [ { change_context: help } ]
  pick:
    description: Picks.
    actions_from_output: { change_step: [choose, locked] }
    shell: { command: ["./pick.sh"] }
"#;

/// `swagent graph agent.yaml [ARGS]` on `yaml`, with `pick`'s script, which
/// must succeed without a word on stderr.
fn graph_of(yaml: &str, args: &[&str]) -> String {
    let dir = agent_dir(yaml, &[("pick.sh", "#!/bin/sh\necho '{}'\n")]);
    Swagent::new(["graph", "agent.yaml"])
        .args(args)
        .dir(dir.path())
        .run()
        .code(0)
        .stderr_is("")
        .stdout
}

#[test]
fn moves_by_functions_are_dashed_arrows_named_after_them() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let _guard = settings.bind_to_scope();
    insta::assert_snapshot!("graph_moves_mermaid", graph_of(MOVES, &[]));
    insta::assert_snapshot!("graph_moves_dot", graph_of(MOVES, &["--format", "dot"]));
}

/// Output that may name any target is a mark, not arrows; an arrow is drawn
/// once, only from a step that names the function, and a `change_step`
/// stays in the step's context.
#[test]
fn moves_anywhere_is_marked_and_arrows_are_drawn_once() {
    let yaml = MOVES
        .replace(
            "actions_from_output: { change_step: [choose, locked] }",
            "actions_from_output: [change_step]",
        )
        .replace(
            "message: [ { change_context: help } ]",
            "message: [ { change_context: help } ]\n      again: [ { change_context: help } ]",
        )
        .replace(
            "text: Take a note.,",
            "text: Take a note., functions: [lock],",
        );
    assert_eq!(
        graph_of(&yaml, &[]),
        concat!(
            "flowchart TD\n",
            "  start((\"start\"))\n",
            "  subgraph c0[\"default\"]\n",
            "    c0_s0[\"choose<br/>functions:<br/>- lock (secure)<br/>- escalate (secure)<br/>- pick (secure, moves anywhere)\"]\n",
            "    c0_s1[\"locked<br/>functions: unchanged\"]\n",
            "  end\n",
            "  subgraph c1[\"help\"]\n",
            "    c1_s0[\"note<br/>functions:<br/>- lock (secure)\"]\n",
            "  end\n",
            "  start --> c0_s0\n",
            "  c0_s0 -. \"lock\" .-> c0_s1\n",
            "  c0_s0 -. \"escalate\" .-> c1_s0\n",
            "  linkStyle 1,2 stroke:blue,color:blue\n",
        )
    );
}

#[test]
fn an_agent_without_contexts_is_one_node_with_every_function() {
    let out = graph("production-bank", &[]);
    assert_eq!(
        out,
        "flowchart TD\n  prompt[\"prompt<br/>functions:<br/>- get_hours<br/>- verify_pin (secure, verifies)<br/>- get_balance (secure, gated)<br/>- transfer (secure, gated, confirm)\"]\n"
    );
    let out = graph("hello", &["--format", "dot"]);
    assert_eq!(
        out,
        "digraph \"hello\" {\n  node [shape=box];\n  prompt [label=\"prompt\\nfunctions: none\"];\n}\n"
    );
}

/// Names that would end a label, start a comment or markup, or draw an
/// arrow if they were not escaped.
const HOSTILE: &str = r#"name: hostile
prompt:
  text: Hi.
contexts:
  default:
    steps:
      - name: 'say "hi" [now] --> {x} #1 <b>&amp; \n `ünï` 名前'
        text: Go on.
        functions: [lookup]
        valid_contexts: ['ctx "q" <x> %% #2']
  'ctx "q" <x> %% #2':
    steps:
      - name: end
        text: Bye.
        end: true
functions:
  lookup:
    description: Look up.
    static:
      response: ok
"#;

#[test]
fn hostile_names_are_escaped_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hostile.yaml"), HOSTILE).unwrap();
    let run = |args: &[&str]| {
        Swagent::new(["graph", "hostile.yaml"])
            .args(args)
            .dir(dir.path())
            .run()
            .code(0)
            .stderr_is("")
    };
    run(&[]).stdout_is(concat!(
        "flowchart TD\n",
        "  start((\"start\"))\n",
        "  subgraph c0[\"default\"]\n",
        "    c0_s0[\"say #quot;hi#quot; [now] --#gt; {x} #35;1 #lt;b#gt;#amp;amp; #92;n #96;ünï#96; 名前<br/>functions:<br/>- lookup (secure)\"]\n",
        "  end\n",
        "  subgraph c1[\"ctx #quot;q#quot; #lt;x#gt; #37;#37; #35;2\"]\n",
        "    c1_s0([\"end<br/>functions: unchanged<br/>end: leaves step mode\"])\n",
        "  end\n",
        "  start --> c0_s0\n",
        "  c0_s0 -. switch .-> c1_s0\n",
    ));
    run(&["--format", "dot"]).stdout_is(concat!(
        "digraph \"hostile\" {\n",
        "  node [shape=box];\n",
        "  start [label=\"start\", shape=circle];\n",
        "  subgraph cluster_c0 {\n",
        "    label=\"default\";\n",
        "    c0_s0 [label=\"say \\\"hi\\\" [now] --> {x} #1 <b>&amp;amp; \\\\n `ünï` 名前\\nfunctions:\\n- lookup (secure)\"];\n",
        "  }\n",
        "  subgraph cluster_c1 {\n",
        "    label=\"ctx \\\"q\\\" <x> %% #2\";\n",
        "    c1_s0 [label=\"end\\nfunctions: unchanged\\nend: leaves step mode\", style=rounded, peripheries=2];\n",
        "  }\n",
        "  start -> c0_s0;\n",
        "  c0_s0 -> c1_s0 [style=dashed, label=\"switch\"];\n",
        "}\n",
    ));
}

#[test]
fn an_invalid_file_prints_its_findings_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        HOSTILE.replace("valid_contexts: ['ctx", "valid_contexts: ['nowhere"),
    )
    .unwrap();
    Swagent::new(["graph", "bad.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stdout_is("")
        .stderr_has(
            "bad.yaml:10:26: error: `nowhere \"q\" <x> %% #2` is not a context of this agent\n",
        );
}

#[test]
fn graphviz_renders_the_dot_of_the_examples() {
    let test = "graphviz_renders_the_dot_of_the_examples";
    if !installed(test, "dot", "graphviz") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for agent in EXAMPLES {
        render_png(&dir, agent, &graph(agent, &["--format", "dot"]));
    }
    render_png(&dir, "moves", &graph_of(MOVES, &["--format", "dot"]));
}

/// Renders `text` with `dot -Tpng` into `dir`, which must make a PNG.
fn render_png(dir: &tempfile::TempDir, agent: &str, text: &str) {
    let png = dir.path().join(format!("{agent}.png"));
    let mut child = Command::new("dot")
        .arg("-Tpng")
        .arg("-o")
        .arg(&png)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot failed on {agent}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 8,
        "{agent}: not a PNG ({} bytes)",
        bytes.len()
    );
}
