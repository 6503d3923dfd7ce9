//! `swagent validate`: exact findings, formats and exit codes.

use crate::util::{root, sandbox, Swagent};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn shipped_agents_are_valid_under_strict_with_their_env() {
    Swagent::new(["validate", "--strict", "agents"])
        .dir(&root())
        .env("CORE_API_TOKEN", "x")
        .env("SCHEDULING_API_KEY", "y")
        .run()
        .code(0)
        .stdout_is("3 agent file(s) valid\n");
}

#[test]
fn unset_env_is_a_warning_and_an_error_under_strict() {
    let dir = sandbox();
    let file = dir.path().join("agents/bank.yaml");
    let out = Swagent::new(["validate".as_ref(), file.as_os_str()])
        .run()
        .code(0);
    assert!(out.stdout.contains("bank.yaml:49:41: warning: function `transfer`: environment variable `CORE_API_TOKEN` is not set\n"), "{}", out.stdout);
    Swagent::new(["validate".as_ref(), "--strict".as_ref(), file.as_os_str()])
        .run()
        .code(1)
        .stderr_has("bank.yaml:49:41: error: function `transfer`: environment variable `CORE_API_TOKEN` is not set\n");
}

#[test]
fn undeclared_argument_points_at_the_template() {
    let dir = sandbox();
    let bank = std::fs::read_to_string(dir.path().join("agents/bank.yaml")).unwrap();
    write(
        &dir.path().join("agents"),
        "bad.yaml",
        &bank.replace("amount: \"${args.amount}\"", "amount: \"${args.ammount}\""),
    );
    Swagent::new(["validate", "agents/bad.yaml"])
        .env("CORE_API_TOKEN", "x")
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_is(
            "agents/bad.yaml:50:64: error: function `transfer`: template names `${args.ammount}` but no such argument is declared\n   |\n50 |       body: { from: \"${args.from}\", to: \"${args.to}\", amount: \"${args.ammount}\" }\n   |                                                                ^\n1 of 1 agent file(s) invalid\n",
        );
}
