//! `swagent serve`: SWML, SWAIG, Basic Auth and tokens over real HTTP.

use serde_json::json;

use crate::util::{sandbox, token_in, Swagent};

#[test]
fn serves_bank_and_runs_a_secure_function_with_its_token() {
    let dir = sandbox();
    let server = Swagent::new(["serve", "agents/bank.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    let swml: serde_json::Value = server
        .post("/")
        .json(&json!({"call_id": "call-1"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token_in(&swml, "get_balance");
    let (status, body) = server.swaig(
        &format!("?__token={}", urlencode(&token)),
        json!({"function": "get_balance", "call_id": "call-1", "argument": {"parsed": [{"account": "12345678"}]}}),
    );
    assert_eq!(
        (status, body),
        (
            200,
            json!({"response": "The balance of the account ending in 5678 is 1,234.56 dollars."})
        )
    );
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
