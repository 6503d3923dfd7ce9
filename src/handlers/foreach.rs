//! An http `output` with `foreach`: each element of an array in the
//! upstream's answer rendered with `each`, at most `max` of them, joined,
//! and said inside `text`; `empty` when there is no element.
//!
//! Elements are data: they fill templates parsed at load and are never
//! parsed themselves, and the joined list is one value inside `text`. The
//! list is bounded by `max_response` too, since `each` may repeat a large
//! value once per element.

use serde_json::Value;

use super::HandlerError;
use crate::agent::Foreach;
use crate::template::{walk, Context, Encoding};

/// The reply for `f` over `response`. The list holds whole elements only,
/// as many as fit in `limit` bytes.
pub(super) fn render(
    function: &str,
    f: &Foreach,
    ctx: &Context<'_>,
    response: &Value,
    limit: u64,
) -> Result<String, HandlerError> {
    let render = |e| HandlerError::render(function, e);
    let ctx = Context {
        response: Some(response),
        ..*ctx
    };
    let items = match walk(response, &f.path) {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return f.empty.render(&ctx, Encoding::Text).map_err(render),
    };
    let mut list = String::new();
    for (i, item) in items.iter().take(f.max).enumerate() {
        let one = Context {
            item: Some(item),
            ..ctx
        };
        let text = f.each.render(&one, Encoding::Text).map_err(render)?;
        let join = if i == 0 { "" } else { f.join.as_str() };
        if (list.len() + join.len() + text.len()) as u64 > limit {
            if i == 0 {
                return Err(HandlerError::failed(
                    function,
                    format!(
                        "the list's first element is larger than `max_response` ({limit} bytes)"
                    ),
                ));
            }
            break;
        }
        list.push_str(join);
        list.push_str(&text);
    }
    match &f.text {
        Some(text) => {
            let whole = Context {
                list: Some(&list),
                ..ctx
            };
            text.render(&whole, Encoding::Text).map_err(render)
        }
        None => Ok(list),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::render;
    use crate::agent::Foreach;
    use crate::template::{Context, Step, Template};

    fn foreach(each: &str, text: Option<&str>) -> Foreach {
        Foreach {
            path: vec![Step::Key("slots".into())],
            each: Template::parse(each).unwrap(),
            join: ", ".into(),
            max: 3,
            empty: Template::parse("none").unwrap(),
            text: text.map(|t| Template::parse(t).unwrap()),
        }
    }

    fn said(f: &Foreach, response: Value, limit: u64) -> String {
        let no_env = |_: &str| None;
        let ctx = Context {
            args: &Value::Null,
            call_id: "call-1",
            global_data: &Value::Null,
            meta_data: &Value::Null,
            response: None,
            call: None,
            payload: None,
            item: None,
            list: None,
            env: &no_env,
        };
        render("f", f, &ctx, &response, limit).unwrap()
    }

    #[test]
    fn values_from_the_response_stay_data() {
        let f = foreach("${item.t}", Some("Slots: ${list}."));
        let response = json!({"slots": [{"t": "${list}"}, {"t": "${env:HOME} ${item}"}]});
        assert_eq!(
            said(&f, response, 1024),
            "Slots: ${list}, ${env:HOME} ${item}."
        );
    }

    #[test]
    fn the_list_holds_whole_elements_within_the_limit() {
        let f = foreach("${item}", None);
        let response = json!({"slots": ["aaaa", "bbbb", "cccc"]});
        assert_eq!(said(&f, response.clone(), 10), "aaaa, bbbb");
        assert_eq!(said(&f, response, 9), "aaaa");
    }
}
