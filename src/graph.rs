//! `swagent graph`'s drawing: an agent's contexts and steps as a Mermaid
//! flowchart or a Graphviz DOT digraph, as text.
//!
//! Steps are nodes and contexts are clusters. Arrows follow
//! [`Context::moves`] within a context and [`Context::switches`] to another
//! context's entry step, so the graph shows what the loader checks for
//! reach. Dashed arrows, labelled with a function's name, are the moves of
//! that function's `change_step` and `change_context`: its actions, its
//! outcomes and the targets its output may name. Both formats are made from
//! one `Graph`, so they always agree; each escapes every name from the
//! file. This module draws only: it neither loads nor checks the agent, and
//! it never renders a graph itself.

use crate::agent::actions::{Action, OutputKind};
use crate::agent::contexts::{Context, Contexts, Step, StepFunctions};
use crate::agent::{Agent, Function};

/// The agent drawn as a Mermaid flowchart (`flowchart TD`).
pub fn mermaid(agent: &Agent) -> String {
    let graph = Graph::of(agent);
    let mut out = String::from("flowchart TD\n");
    for node in &graph.loose {
        out.push_str(&format!("  {}\n", mermaid_node(node)));
    }
    for cluster in &graph.clusters {
        out.push_str(&format!(
            "  subgraph {}[\"{}\"]\n",
            cluster.id,
            mermaid_text(&cluster.title)
        ));
        for node in &cluster.nodes {
            out.push_str(&format!("    {}\n", mermaid_node(node)));
        }
        out.push_str("  end\n");
    }
    let mut by_functions = Vec::new();
    for (i, edge) in graph.edges.iter().enumerate() {
        let arrow = match &edge.kind {
            EdgeKind::Move => "-->".to_owned(),
            EdgeKind::Switch => "-. switch .->".to_owned(),
            EdgeKind::Function(name) => {
                by_functions.push(i.to_string());
                format!("-. \"{}\" .->", mermaid_text(name))
            }
        };
        out.push_str(&format!("  {} {arrow} {}\n", edge.from, edge.to));
    }
    // Mermaid draws every labelled dotted arrow alike, and a function may
    // be named `switch`: colour tells the two apart. Styles go by the
    // arrow's index, in the order the arrows were written.
    if !by_functions.is_empty() {
        out.push_str(&format!(
            "  linkStyle {} stroke:{FUNCTION_COLOUR},color:{FUNCTION_COLOUR}\n",
            by_functions.join(",")
        ));
    }
    out
}

/// The colour of the arrows of moves by functions, in both formats.
const FUNCTION_COLOUR: &str = "blue";

/// The agent drawn as a Graphviz digraph (`dot -Tsvg` renders it).
pub fn dot(agent: &Agent) -> String {
    let graph = Graph::of(agent);
    let mut out = format!(
        "digraph \"{}\" {{\n  node [shape=box];\n",
        dot_text(&agent.name)
    );
    for node in &graph.loose {
        out.push_str(&format!("  {}\n", dot_node(node)));
    }
    for cluster in &graph.clusters {
        out.push_str(&format!(
            "  subgraph cluster_{} {{\n    label=\"{}\";\n",
            cluster.id,
            dot_text(&cluster.title)
        ));
        for node in &cluster.nodes {
            out.push_str(&format!("    {}\n", dot_node(node)));
        }
        out.push_str("  }\n");
    }
    for edge in &graph.edges {
        let style = match &edge.kind {
            EdgeKind::Move => String::new(),
            EdgeKind::Switch => " [style=dashed, label=\"switch\"]".to_owned(),
            EdgeKind::Function(name) => format!(
                " [style=dashed, label=\"{}\", color={FUNCTION_COLOUR}, fontcolor={FUNCTION_COLOUR}]",
                dot_text(name)
            ),
        };
        out.push_str(&format!("  {} -> {}{style};\n", edge.from, edge.to));
    }
    out.push_str("}\n");
    out
}

/// What both formats draw: nodes outside any context, one cluster per
/// context, and the arrows, all in the file's order.
struct Graph {
    loose: Vec<Node>,
    clusters: Vec<Cluster>,
    edges: Vec<Edge>,
}

/// A context.
struct Cluster {
    /// `c0`, `c1`...: by index, as names may hold anything.
    id: String,
    title: String,
    nodes: Vec<Node>,
}

/// A step, the prompt, or the start marker.
struct Node {
    /// `c0_s1` for step 1 of context 0; `start`; `prompt`.
    id: String,
    /// Unescaped; the first is the name.
    lines: Vec<String>,
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A step, or the prompt of an agent without contexts.
    Box,
    /// A step with `end`: after it, the call leaves step mode.
    End,
    /// Where the conversation starts.
    Start,
}

#[derive(PartialEq, Eq)]
struct Edge {
    from: String,
    to: String,
    kind: EdgeKind,
}

#[derive(PartialEq, Eq)]
enum EdgeKind {
    /// To a step of the same context, or from the start marker.
    Move,
    /// To another context's entry step.
    Switch,
    /// A move by the named function: to a step of the same context, or to
    /// a context's entry step.
    Function(String),
}

/// Where a function's `change_step` or `change_context` moves.
enum Target<'a> {
    Step(&'a str),
    Context(&'a str),
}

impl Graph {
    fn of(agent: &Agent) -> Graph {
        match &agent.contexts {
            Some(contexts) => Graph::of_contexts(agent, contexts),
            // Without contexts the whole conversation is the one prompt.
            None => Graph {
                loose: vec![Node {
                    id: "prompt".into(),
                    lines: [vec!["prompt".to_owned()], all_functions(agent)].concat(),
                    shape: Shape::Box,
                }],
                clusters: Vec::new(),
                edges: Vec::new(),
            },
        }
    }

    fn of_contexts(agent: &Agent, contexts: &Contexts) -> Graph {
        let mut graph = Graph {
            loose: Vec::new(),
            clusters: Vec::new(),
            edges: Vec::new(),
        };
        if let Some(to) = entry_id(contexts, "default") {
            graph.loose.push(Node {
                id: "start".into(),
                lines: vec!["start".into()],
                shape: Shape::Start,
            });
            graph.edges.push(Edge {
                from: "start".into(),
                to,
                kind: EdgeKind::Move,
            });
            // `on_call_start`'s lookup may start a call in any context.
            if agent.on_call_start.is_some() {
                let others = contexts.0.keys().filter(|c| *c != "default");
                for to in others.filter_map(|c| entry_id(contexts, c)) {
                    graph.edges.push(Edge {
                        from: "start".into(),
                        to,
                        kind: EdgeKind::Function("on_call_start".into()),
                    });
                }
            }
        }
        for (c, (name, context)) in contexts.0.iter().enumerate() {
            let nodes = context
                .steps
                .iter()
                .enumerate()
                .map(|(s, step)| Node {
                    id: step_id(c, s),
                    lines: step_lines(agent, step),
                    shape: if step.end { Shape::End } else { Shape::Box },
                })
                .collect();
            graph.clusters.push(Cluster {
                id: format!("c{c}"),
                title: name.clone(),
                nodes,
            });
            for s in 0..context.steps.len() {
                graph.edges.extend(edges_from(contexts, c, context, s));
                graph
                    .edges
                    .extend(function_edges(agent, contexts, c, context, s));
            }
        }
        graph
    }
}

/// The arrows out of step `s` of context `c`: its moves, then its switches.
fn edges_from(contexts: &Contexts, c: usize, context: &Context, s: usize) -> Vec<Edge> {
    let from = step_id(c, s);
    let moves = context.moves(s).into_iter().filter_map(|name| {
        let to = context.steps.iter().position(|step| step.name == name)?;
        Some((step_id(c, to), EdgeKind::Move))
    });
    let switches = context
        .switches(s)
        .into_iter()
        .filter_map(|name| Some((entry_id(contexts, name)?, EdgeKind::Switch)));
    moves
        .chain(switches)
        .map(|(to, kind)| Edge {
            from: from.clone(),
            to,
            kind,
        })
        .collect()
}

/// The arrows of the moves by the functions step `s` of context `c` names,
/// in the order it names them, each once. A `change_step` stays in the
/// step's context; a target that is not there is not drawn.
fn function_edges(
    agent: &Agent,
    contexts: &Contexts,
    c: usize,
    context: &Context,
    s: usize,
) -> Vec<Edge> {
    let mut out: Vec<Edge> = Vec::new();
    for name in callable(&context.steps[s]) {
        let Some(f) = agent.functions.get(name) else {
            continue;
        };
        for target in targets(f) {
            let to = match target {
                Target::Step(step) => context
                    .steps
                    .iter()
                    .position(|st| st.name == step)
                    .map(|to| step_id(c, to)),
                Target::Context(name) => entry_id(contexts, name),
            };
            let Some(to) = to else { continue };
            let edge = Edge {
                from: step_id(c, s),
                to,
                kind: EdgeKind::Function(name.to_owned()),
            };
            if !out.contains(&edge) {
                out.push(edge);
            }
        }
    }
    out
}

/// The functions a step names: its `functions`, then its questions'. A
/// step without `functions` names none here: what stays callable there
/// depends on the step the conversation came from, and the graph does not
/// guess.
fn callable(step: &Step) -> Vec<&str> {
    let listed = match &step.functions {
        Some(StepFunctions::List(names)) => names.as_slice(),
        _ => &[],
    };
    let asked = step.gather_info.iter().flat_map(|g| &g.questions);
    listed
        .iter()
        .chain(asked.flat_map(|q| &q.functions))
        .map(String::as_str)
        .collect()
}

/// Where a function can move the conversation, in the file's order: its
/// actions, its outcomes, then the targets `actions_from_output` names.
/// Output that may name any target adds none: its mark says so.
fn targets(f: &Function) -> Vec<Target<'_>> {
    let actions = f.actions.iter().chain(f.outcomes.values().flatten());
    let mut out: Vec<Target> = actions
        .filter_map(|action| match action {
            Action::ChangeStep(step) => Some(Target::Step(step)),
            Action::ChangeContext(context) => Some(Target::Context(context)),
            _ => None,
        })
        .collect();
    for (kind, names) in &f.output_actions.0 {
        let names = names.iter().flatten().map(String::as_str);
        match kind {
            OutputKind::ChangeStep => out.extend(names.map(Target::Step)),
            OutputKind::ChangeContext => out.extend(names.map(Target::Context)),
            _ => {}
        }
    }
    out
}

/// Whether a function's output may move the conversation to a step or
/// context it does not name.
fn moves_anywhere(f: &Function) -> bool {
    f.output_actions.0.iter().any(|(kind, names)| {
        matches!(kind, OutputKind::ChangeStep | OutputKind::ChangeContext) && names.is_none()
    })
}

fn step_id(context: usize, step: usize) -> String {
    format!("c{context}_s{step}")
}

/// The node id of the step a context starts in.
fn entry_id(contexts: &Contexts, name: &str) -> Option<String> {
    let c = contexts.0.get_index_of(name)?;
    let context = &contexts.0[c];
    let s = context
        .steps
        .iter()
        .position(|step| step.name == context.entry())?;
    Some(step_id(c, s))
}

/// A step's label: its name, what it may call, what it asks, whether it is the last.
fn step_lines(agent: &Agent, step: &Step) -> Vec<String> {
    let mut lines = vec![step.name.clone()];
    match &step.functions {
        // The SDK's meaning: a step without `functions` changes nothing,
        // so whatever the step the conversation came from allowed stays
        // callable. That step is not always the one above it in the file.
        None => lines.push("functions: unchanged".into()),
        Some(StepFunctions::Off) => lines.push("functions: none".into()),
        Some(StepFunctions::List(names)) if names.is_empty() => {
            lines.push("functions: none".into())
        }
        Some(StepFunctions::List(names)) => {
            lines.push("functions:".into());
            lines.extend(names.iter().map(|n| format!("- {}", function(agent, n))));
        }
    }
    if let Some(gather) = &step.gather_info {
        let keys: Vec<&str> = gather.questions.iter().map(|q| q.key.as_str()).collect();
        lines.push(format!("asks: {}", keys.join(", ")));
        for q in gather.questions.iter().filter(|q| !q.functions.is_empty()) {
            let names: Vec<String> = q.functions.iter().map(|n| function(agent, n)).collect();
            lines.push(format!("while asking {}: {}", q.key, names.join(", ")));
        }
    }
    if step.end {
        lines.push("end: leaves step mode".into());
    }
    lines
}

/// The prompt's label lines for an agent without contexts: every function.
fn all_functions(agent: &Agent) -> Vec<String> {
    if agent.functions.is_empty() {
        return vec!["functions: none".into()];
    }
    let mut lines = vec!["functions:".to_owned()];
    lines.extend(
        agent
            .functions
            .keys()
            .map(|n| format!("- {}", function(agent, n))),
    );
    lines
}

/// `name (secure, verifies, gated, confirm, moves anywhere)`, with the
/// marks that apply.
fn function(agent: &Agent, name: &str) -> String {
    let marks = agent.functions.get(name).map(marks).unwrap_or_default();
    if marks.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({})", marks.join(", "))
    }
}

/// The marks of the guards the server puts on a function, and whether its
/// output may move the conversation anywhere (only with contexts, which
/// the loader checks).
fn marks(f: &Function) -> Vec<&'static str> {
    [
        (f.secure, "secure"),
        (f.verifies_caller, "verifies"),
        (f.requires_verification, "gated"),
        (f.confirm, "confirm"),
        (moves_anywhere(f), "moves anywhere"),
    ]
    .into_iter()
    .filter_map(|(on, mark)| on.then_some(mark))
    .collect()
}

fn mermaid_node(node: &Node) -> String {
    let label = node
        .lines
        .iter()
        .map(|l| mermaid_text(l))
        .collect::<Vec<_>>()
        .join("<br/>");
    let (open, close) = match node.shape {
        Shape::Box => ("[", "]"),
        Shape::End => ("([", "])"),
        Shape::Start => ("((", "))"),
    };
    format!("{}{open}\"{label}\"{close}", node.id)
}

fn dot_node(node: &Node) -> String {
    let label = node
        .lines
        .iter()
        .map(|l| dot_text(l))
        .collect::<Vec<_>>()
        .join("\\n");
    let attrs = match node.shape {
        Shape::Box => "",
        Shape::End => ", style=rounded, peripheries=2",
        Shape::Start => ", shape=circle",
    };
    format!("{} [label=\"{label}\"{attrs}];", node.id)
}

/// Text for inside a quoted Mermaid label. Mermaid has no backslash
/// escapes: a quote would end the label, `#name;` is its entity syntax, and
/// labels are HTML, so markup characters become entity codes too. So do a
/// backtick (a leading one makes a markdown label), `%` (`%%` starts a
/// comment) and `\`. Control characters are written out, as a newline
/// would end the statement.
fn mermaid_text(text: &str) -> String {
    let mut out = String::new();
    for c in crate::text::printable(text).chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '%' => out.push_str("#37;"),
            '\\' => out.push_str("#92;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for inside a quoted DOT string. A backslash is escaped too, as DOT
/// reads `\n`, `\l` and `\N` in labels as line breaks and the node's name,
/// and so is `&`, as Graphviz reads `&amp;` in any label as an entity.
fn dot_text(text: &str) -> String {
    let mut out = String::new();
    for c in crate::text::printable(text).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{dot_text, mermaid_text};

    #[test]
    fn mermaid_text_leaves_nothing_mermaid_or_html_reads() {
        assert_eq!(
            mermaid_text(r#"say "hi" [x] --> #1 <b>&amp;`%%\"#),
            "say #quot;hi#quot; [x] --#gt; #35;1 #lt;b#gt;#amp;amp;#96;#37;#37;#92;"
        );
        assert_eq!(mermaid_text("a\nb ünï 名前"), "a#92;u{a}b ünï 名前");
    }

    #[test]
    fn dot_text_escapes_quotes_backslashes_and_entities() {
        assert_eq!(
            dot_text(r#"a "b" \n c &amp;"#),
            r#"a \"b\" \\n c &amp;amp;"#
        );
        assert_eq!(dot_text("x\ny"), "x\\\\u{a}y");
    }
}
