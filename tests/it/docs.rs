//! What the docs say that the code already holds: the configuration page
//! and the README's exit codes are made from tables in the code, and fail
//! here when they drift (`UPDATE_DOCS=1 cargo test docs` writes them anew).
//! Snapshots (insta) pin the texts that are a contract: each shipped
//! example's SWML, every `--help`, and `check --production` on the banks.

use std::path::Path;

use crate::util::{root, Swagent, PASSWORD, SECRET, USER};

/// Compares `want` with the file's text between `begin` and `end` (the
/// whole file when both are empty), or writes it with `UPDATE_DOCS=1`.
fn generated(file: &str, begin: &str, end: &str, want: &str) {
    let path = root().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (head, tail) = match (begin, end) {
        ("", "") => (String::new(), String::new()),
        _ => {
            let a = text
                .find(begin)
                .unwrap_or_else(|| panic!("{file} has no `{begin}`"));
            let b = text
                .find(end)
                .unwrap_or_else(|| panic!("{file} has no `{end}`"));
            let a = a + text[a..].find('\n').unwrap() + 1;
            (text[..a].to_owned(), text[b..].to_owned())
        }
    };
    let made = format!("{head}{want}{tail}");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &made).unwrap();
        return;
    }
    assert!(
        made == text,
        "{file} is out of date with the code: run `UPDATE_DOCS=1 cargo test docs` and commit it"
    );
}

#[test]
fn the_configuration_page_is_the_variable_table() {
    generated(
        "docs/configuration.md",
        "",
        "",
        &swagent::config::vars::markdown(),
    );
}

#[test]
fn the_readme_exit_codes_are_the_exit_code_table() {
    generated(
        "README.md",
        "<!-- BEGIN GENERATED: exit-codes",
        "<!-- END GENERATED: exit-codes -->",
        &swagent::exit::markdown(),
    );
}

/// The SWML schema swagent embeds is the installed SDK's, unchanged.
#[test]
fn the_embedded_swml_schema_is_the_sdks() {
    let Some(theirs) = crate::util::sdk_schema("the_embedded_swml_schema_is_the_sdks") else {
        return;
    };
    assert!(
        theirs == swagent::swml::schema::official(),
        "schemas/swml/schema.json differs from the installed SDK's schema.json: see schemas/swml/README.md"
    );
}

/// Every variable the code names, in a constant or a message, is in the
/// table, so in the docs.
#[test]
fn every_variable_swagent_reads_is_in_the_table() {
    let names: Vec<&str> = swagent::config::vars::VARS.iter().map(|v| v.name).collect();
    // `SWML_FORMATS` is a constant of the SWML format, not a variable.
    let named = regex::Regex::new(r"\b((SWML|SIGNALWIRE|SWAGENT)_[A-Z][A-Z_]*[A-Z])\b").unwrap();
    let mut missing = Vec::new();
    for file in walk(&root().join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in named.captures_iter(&text).map(|c| c[1].to_owned()) {
            if !names.contains(&name.as_str()) && name != "SWML_FORMATS" {
                missing.push(format!("{name} ({})", file.display()));
            }
        }
    }
    assert!(missing.is_empty(), "not in config::vars::VARS: {missing:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Settings that make a snapshot the same on every machine and run.
fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"__token=[A-Za-z0-9_%-]+", "__token=[TOKEN]");
    settings.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[DIR]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn the_swml_of_each_shipped_example() {
    let _guard = snapshot_settings().bind_to_scope();
    for agent in [
        "hello",
        "bank",
        "clinic",
        "concierge",
        "production-bank",
        "receptionist",
        "survey",
    ] {
        let out = crate::util::swml_of(&format!("agents/{agent}.yaml"), "snapshot-call");
        insta::assert_snapshot!(format!("swml_{agent}"), out);
    }
}

#[test]
fn every_help_text() {
    let _guard = snapshot_settings().bind_to_scope();
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["validate"],
        &["schema"],
        &["gen-creds"],
        &["verify-token"],
        &["token"],
        &["token", "mint"],
        &["swml"],
        &["call"],
        &["disable"],
        &["enable"],
        &["check"],
        &["completions"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = Swagent::new(&args).run().code(0);
        let name = match command.join("_") {
            n if n.is_empty() => "help".to_owned(),
            n => format!("help_{n}"),
        };
        insta::assert_snapshot!(name, out.stdout);
    }
}

#[test]
fn check_production_on_the_banks() {
    let _guard = snapshot_settings().bind_to_scope();
    let dir = crate::util::sandbox();
    // The bank as a newcomer runs it: nothing configured.
    let out = Swagent::new(["check", "agents/bank.yaml", "--production"])
        .dir(dir.path())
        .run()
        .code(1);
    insta::assert_snapshot!("check_bank", out.stdout);
    // The hardened bank with its documented environment.
    let store = dir.path().join("confirm");
    std::fs::create_dir(&store).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Swagent::new(["check", "agents/production-bank.yaml", "--production"])
        .dir(dir.path())
        .env("SWML_BASIC_AUTH_USER", USER)
        .env("SWML_BASIC_AUTH_PASSWORD", &format!("{PASSWORD}{PASSWORD}"))
        .env("SIGNALWIRE_SWAIG_SECRET", &format!("{SECRET}{SECRET}"))
        .env("SWML_PROXY_URL_BASE", "https://bank-agent.example.com")
        .env("SWML_TRUST_PROXY", "true")
        .env("SIGNALWIRE_SIGNING_KEY", "PSKtest1234")
        .env(
            "SWAGENT_WEBHOOK_SECRET",
            "whsec_c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCBvbmU=",
        )
        .env("SWAGENT_AUDIT_LOG", "audit.log")
        .env("SWAGENT_CONFIRM_STORE", "confirm")
        .env("CORE_API_TOKEN", "core-token")
        .run()
        .code(0);
    insta::assert_snapshot!("check_production_bank", out.stdout);
}
