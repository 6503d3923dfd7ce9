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
        .env("CRM_TOKEN", "z")
        .run()
        .code(0)
        .stdout_is("7 agent file(s) valid\n");
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

/// A temporary copy of `tests/fixtures/agents/bad` as `bad/`, with the
/// scripts' modes set here rather than trusted to the checkout.
fn bad_fixtures() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("tests/fixtures/agents/bad");
    let to = dir.path().join("bad");
    std::fs::create_dir_all(to.join("scripts")).unwrap();
    for sub in ["", "scripts"] {
        for entry in std::fs::read_dir(from.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    let mode = |name: &str, mode: u32| {
        std::fs::set_permissions(
            to.join("scripts").join(name),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap()
    };
    mode("echo.sh", 0o755);
    mode("not_executable.sh", 0o644);
    dir
}

/// The `path:line:col: severity: message` lines of an output.
fn finding_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("bad/") || l.starts_with("big/"))
        .collect()
}

/// Each bad agent file with the exact finding lines and the exit code.
#[test]
fn each_bad_file_gets_its_exact_findings_and_exit_code() {
    let dir = bad_fixtures();
    let cases: &[(&str, i32, &[&str])] = &[
        ("unknown_key", 1, &["bad/unknown_key.yaml:6:5: error: invalid agent file: functions.get_hours: unknown field `descripton`; did you mean `description`?"]),
        ("text_and_sections", 1, &["bad/text_and_sections.yaml:2:1: error: `prompt` has both `text` and `sections`: use one of them"]),
        ("no_handler", 1, &["bad/no_handler.yaml:5:3: error: function `get_hours`: needs exactly one handler (`shell`, `http` or `static`), found 0"]),
        ("two_handlers", 1, &["bad/two_handlers.yaml:5:3: error: function `get_hours`: needs exactly one handler (`shell`, `http` or `static`), found 2"]),
        ("bad_function_name", 1, &["bad/bad_function_name.yaml:5:3: error: function `get-hours`: names must match `^[a-zA-Z_][a-zA-Z0-9_]*$`"]),
        ("duplicate_function", 1, &["bad/duplicate_function.yaml:9:3: error: duplicate key `functions.get_hours` (first at line 5): each key may appear only once"]),
        // serde refuses a repeated field at its mapping's start; the
        // finding points at the repeat.
        ("duplicate_field", 1, &["bad/duplicate_field.yaml:9:1: error: duplicate key `name` (first at line 1): each key may appear only once"]),
        ("duplicate_function_field", 1, &["bad/duplicate_function_field.yaml:9:5: error: duplicate key `functions.get_hours.description` (first at line 6): each key may appear only once"]),
        ("undeclared_argument", 1, &["bad/undeclared_argument.yaml:12:24: error: function `greet`: template names `${args.nmae}` but no such argument is declared"]),
        ("env_outside_http", 1, &["bad/env_outside_http.yaml:8:29: error: function `leak`: `${env:HOME}` is only allowed in http `url`, `query`, `headers`, `body` and `form` (its value must never reach the caller)"]),
        ("response_outside_output", 1, &["bad/response_outside_output.yaml:9:20: error: function `lookup`: `${response.id}` is only available in http `output` and the actions of a function with an http handler"]),
        ("literal_authorization", 1, &["bad/literal_authorization.yaml:9:33: error: function `lookup`: `Authorization` holds a literal credential; secrets never live in the agent file, use `${env:NAME}`"]),
        ("literal_password", 1, &["bad/literal_password.yaml:12:19: error: function `login`: `password` holds a literal credential; secrets never live in the agent file, use `${env:NAME}`"]),
        ("url_template_host", 1, &["bad/url_template_host.yaml:12:12: error: function `fetch`: the scheme, host and port of `url` must be literal (no template before the path)"]),
        ("url_credentials", 1, &["bad/url_credentials.yaml:8:12: error: function `fetch`: `url` holds credentials; secrets never live in the agent file, use a header with `${env:NAME}`"]),
        ("script_not_executable", 1, &["bad/script_not_executable.yaml:8:17: error: function `run`: `./scripts/not_executable.sh` is not executable (try `chmod +x`)"]),
        ("script_missing", 1, &["bad/script_missing.yaml:8:17: error: function `run`: `./scripts/nope.sh` does not exist (relative paths start at the agent file's folder)"]),
        ("parameters_invalid_schema", 1, &["bad/parameters_invalid_schema.yaml:10:20: error: function `count`: `parameters` is not a valid JSON Schema: \"integr\" is not valid under any of the schemas listed in the 'anyOf' keyword"]),
        ("parameters_not_object", 1, &["bad/parameters_not_object.yaml:8:11: error: function `count`: `parameters` must be a JSON Schema with `type: object`"]),
        ("insecure_post", 0, &["bad/insecure_post.yaml:7:13: warning: function `order`: `secure: false` on a function that changes something; anyone who can reach the server can call it"]),
        // `--` before the value, `--query=` around it and a `pattern` that
        // refuses a leading `-` each keep a value from being an option; an
        // unanchored pattern matches inside `-rf a` and does not.
        ("argument_injection", 0, &[
            "bad/argument_injection.yaml:12:38: warning: function `search`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:44:38: warning: function `search_with_loose_pattern`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:52:38: warning: function `search_with_open_pattern`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:60:38: warning: function `search_with_long_class`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:68:38: warning: function `notify`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:79:38: warning: function `pick_listed`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:87:38: warning: function `pick_single`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:95:38: warning: function `pick_branch`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
            "bad/argument_injection.yaml:103:38: warning: function `pick_long`: `${args.q}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `q` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt=${args.q}`",
        ]),
        // `ps` shows a command line to every user; the variable is the owner's.
        ("sensitive_on_command_line", 0, &["bad/sensitive_on_command_line.yaml:14:61: warning: function `check_card`: the sensitive argument `pin` is on the command line, where any user on this host can read it while the program runs (`ps`); the program gets it as `SWAIG_ARG_PIN` and on stdin"]),
        ("arg_env_collision", 1, &["bad/arg_env_collision.yaml:11:9: error: function `lookup`: arguments `account` and `Account` would both be `SWAIG_ARG_ACCOUNT`; rename one"]),
        ("max_failures", 1, &["bad/max_failures.yaml:6:56: error: invalid agent file: functions.verify_card.verifies_caller.max_failures: `0/15m`: the count must be at least 1"]),
        ("max_failures_range", 1, &[
            "bad/max_failures_range.yaml:6:56: error: function `verify_card`: `max_failures` `21/900s` allows 21 failures; at most 20 keep a PIN from being guessed; use e.g. `5/15m`",
            "bad/max_failures_range.yaml:16:56: error: function `verify_pin`: `max_failures` `5/30s` lets a guesser try 600 times an hour on one account, without end; at most 20 keep a PIN from being guessed; use e.g. `5/15m`",
        ]),
        ("max_failures_off", 0, &["bad/max_failures_off.yaml:6:56: warning: function `verify_card`: `max_failures: false` lets a caller guess the secret of one account over as many calls as they like"]),
        // A flag or a long form: the error names both, not serde's "did not
        // match any variant of untagged enum".
        ("requires_verification_word", 1, &["bad/requires_verification_word.yaml:11:28: error: invalid agent file: functions.balance.requires_verification: invalid type: a string, expected `true`, `false` or `{ BOUND_NAME: ARGUMENT }`"]),
        ("alert_sensitive", 1, &["bad/alert_sensitive.yaml:14:5: error: alert 1: `argument` `card_number` of `pay` is `sensitive`: an alert would write its value to the logs"]),
        ("alert_not_number", 1, &[
            "bad/alert_not_number.yaml:14:5: error: alert 1: `argument` `amount` must be an argument of `transfer` declared with `type: number` or `integer`; on anything else the rule never fires",
            "bad/alert_not_number.yaml:15:5: error: alert 2: `argument` `amuont` must be an argument of `transfer` declared with `type: number` or `integer`; on anything else the rule never fires",
        ]),
        ("sensitive_unreached", 1, &["bad/sensitive_unreached.yaml:12:9: error: function `login`: `sensitive` at `patternProperties.^pin_` is out of the audit log redaction's reach, which follows only `properties` and `items` from the top; the value would be logged"]),
        ("http_headers", 1, &[
            "bad/http_headers.yaml:15:9: error: function `lookup`: header `Host` must be literal, like the url's host, so no argument can choose it",
            "bad/http_headers.yaml:16:9: error: function `lookup`: header `Content-Length` is set by the HTTP client; remove it",
            "bad/http_headers.yaml:17:9: error: function `lookup`: header `transfer-encoding` is set by the HTTP client; remove it",
            "bad/http_headers.yaml:18:9: error: function `lookup`: `X Note` is not a valid header name",
            "bad/http_headers.yaml:19:9: error: function `lookup`: header `X-Literal` has a line break or control character in its text",
            "bad/http_headers.yaml:21:9: error: function `lookup`: header `host` is set twice (header names ignore case)",
        ]),
        ("verification_binds", 1, &[
            "bad/verification_binds.yaml:7:22: error: function `verify_pin`: `binds` names `account`, which is not in `required`",
            "bad/verification_binds.yaml:17:22: error: function `verify_card`: every verifier must bind the same arguments; `verify_pin` binds [account], this one [card]",
            "bad/verification_binds.yaml:26:28: error: function `balance`: the verified `account` must be in argument `account`, which is not a declared argument; or name the argument that carries it: `requires_verification: { account: ARGUMENT }`",
            "bad/verification_binds.yaml:35:28: error: function `transfer`: `requires_verification` names `pin`, which `verify_pin` does not bind",
            "bad/verification_binds.yaml:35:28: error: function `transfer`: the verified `account` must be in argument `from`, which is not declared `type: string` or `integer`",
            "bad/verification_binds.yaml:45:28: error: function `statement`: the verified `account` is `type: string` at `verify_pin`, but argument `number` is `type: integer`; no grant could ever match",
        ]),
        ("own_variables", 1, &[
            "bad/own_variables.yaml:9:12: error: function `leak`: `SIGNALWIRE_SWAIG_SECRET` is swagent's own setting; its secrets never reach a handler",
            "bad/own_variables.yaml:9:12: error: function `leak`: `SWML_BASIC_AUTH_PASSWORD` is swagent's own setting; its secrets never reach a handler",
            "bad/own_variables.yaml:9:12: error: function `leak`: `SWAGENT_AUDIT_LOG` is swagent's own setting; its secrets never reach a handler",
            "bad/own_variables.yaml:9:12: error: function `leak`: `SWAIG_FUNCTION` is set by swagent for each call (`SWAIG_ARG_*`, `SWAIG_FUNCTION`, `SWAIG_CALL_ID`)",
            "bad/own_variables.yaml:9:12: error: function `leak`: `LD_PRELOAD` changes how programs load or shells start; set it in the program instead",
            "bad/own_variables.yaml:9:12: error: function `leak`: `BASH_ENV` changes how programs load or shells start; set it in the program instead",
            "bad/own_variables.yaml:14:26: error: function `upstream`: `${env:SIGNALWIRE_SWAIG_SECRET}` is swagent's own setting; its secrets never leave swagent",
        ]),
        ("handler_limits", 1, &[
            "bad/handler_limits.yaml:10:16: error: function `forever`: `timeout` must be between 1ms and 5m",
            "bad/handler_limits.yaml:11:19: error: function `forever`: `max_output` must be between 1B and 16MiB",
            "bad/handler_limits.yaml:12:20: error: function `forever`: `concurrency` must be between 1 and 1024",
            "bad/handler_limits.yaml:18:16: error: function `never`: `timeout` must be between 1ms and 5m",
            "bad/handler_limits.yaml:19:21: error: function `never`: `max_response` must be between 1B and 16MiB",
        ]),
        ("url_secret", 1, &[
            "bad/url_secret.yaml:8:12: error: function `transfer`: `url` holds a literal credential in `api_key`; secrets never live in the agent file, use `${env:NAME}`",
            "bad/url_secret.yaml:17:53: warning: function `lookup`: environment variable `CORE_LOOKUP_KEY` is not set",
        ]),
        // An argument without a `type` is refused (it was a warning where a
        // body kept its JSON type): the platform is told `string` while any
        // value would be taken (issue 25).
        ("untyped_body", 1, &["bad/untyped_body.yaml:10:9: error: function `lookup`: the argument at `properties.id` has no `type`: the platform would be told `string`, and any value would be taken"]),
        ("reserved_route", 1, &["bad/reserved_route.yaml:2:8: error: `route` `/health` is a path swagent serves itself (`/health`, `/ready`, `/metrics`); pick another"]),
        ("empty", 1, &["bad/empty.yaml:1:1: error: file is empty: an agent needs at least `name` and `prompt`"]),
        ("not_yaml", 1, &["bad/not_yaml.yaml:3:1: error: invalid agent file: did not find expected ',' or '}', while parsing a flow mapping at line 2 column 9"]),
        ("yaml_bomb", 1, &["bad/yaml_bomb.yaml:1:1: error: invalid agent file: aliases expand too much (a YAML bomb?)"]),
        ("deep_flow", 1, &["bad/deep_flow.yaml:6:264: error: `[` and `{` nest more than 200 deep here: no agent needs that, and the YAML parser slows down with every level"]),
        // The five cases of issue 26 whose SWML the official schema refused, now refused at load.
        ("language_without_voice", 1, &[
            "bad/language_without_voice.yaml:4:5: error: language `en-US`: `voice` is required: the platform refuses a language without one",
            "bad/language_without_voice.yaml:8:14: error: `emotion` takes only `auto`, not `happy`",
            "bad/language_without_voice.yaml:9:26: error: `stability` must be from 0 to 1, not 1.5",
        ]),
        ("pom_sections", 1, &[
            "bad/pom_sections.yaml:4:14: error: `title` is empty: give it text, or leave it out",
            "bad/pom_sections.yaml:6:12: error: a section needs a `body` or `bullets`: the platform refuses one with neither",
            "bad/pom_sections.yaml:7:12: error: a section needs a `body` or `bullets`: the platform refuses one with neither",
            "bad/pom_sections.yaml:8:16: error: `bullets` is empty: give at least one, or leave it out",
            "bad/pom_sections.yaml:9:20: error: `subsections` is empty: give at least one, or leave it out",
            "bad/pom_sections.yaml:12:16: error: a section needs a `body` or `bullets`: the platform refuses one with neither",
        ]),
        ("params_types", 1, &[
            "bad/params_types.yaml:4:26: error: `params.end_of_speech_timeout`: \"700ms\" must be of type integer, or a `${...}` SWML variable",
            "bad/params_types.yaml:5:22: error: `params.attention_timeout`: -5 must be at least 10000, or 0, or a `${...}` SWML variable",
            "bad/params_types.yaml:6:13: error: `params.ai_model`: 42 must be of type string",
            "bad/params_types.yaml:7:3: warning: `params.end_of_speach_timeout` is not a param the SWML schema knows; did you mean `end_of_speech_timeout`?",
        ]),
        ("parameters_null", 1, &[
            "bad/parameters_null.yaml:9:9: error: function `pick`: the argument at `properties.nothing` is `type: null`, which takes nothing but null: leave it out, or allow null beside a type with `type: [string, \"null\"]`",
            "bad/parameters_null.yaml:10:9: error: function `pick`: the argument at `properties.colour` lists an `enum` value that is not of its `type` (such as `null`): the platform takes only values of that type; leave the argument out of `required` when it may be missing",
            "bad/parameters_null.yaml:11:9: error: function `pick`: the argument at `properties.count` has a `default` that is not of its `type`: the platform refuses it",
        ]),
        // Every name a step or context uses names what exists (issue 26).
        ("context_refs", 1, &[
            "bad/context_refs.yaml:5:19: error: context `default`: `initial_step` `start` is not one of its steps",
            "bad/context_refs.yaml:9:29: error: `get_hour` is not a function of this agent",
            "bad/context_refs.yaml:10:28: error: `finish` is not a step of context `default` (or `next`)",
            "bad/context_refs.yaml:11:35: error: `sales` is not a context of this agent",
            "bad/context_refs.yaml:15:30: error: step `ask`: `completion_action` `done` is not `next_step` or a step of context `default`",
            "bad/context_refs.yaml:17:62: error: `lookup_all` is not a function of this agent",
            "bad/context_refs.yaml:18:22: error: step `ask`: two questions have the key `name`",
            "bad/context_refs.yaml:19:15: error: context `default` has two steps named `ask`",
            "bad/context_refs.yaml:25:23: error: `greet` is not a step of context `billing` (or `next`)",
            "bad/context_refs.yaml:30:3: error: function `next_step`: with `contexts`, the platform gives the AI a function of this name",
        ]),
        // Unreachable steps and contexts are warnings (errors with --strict).
        ("context_reach", 0, &[
            "bad/context_reach.yaml:9:13: warning: step `orphan` of context `default` cannot be reached: no step the conversation reaches moves to it (`valid_steps`, `next`, `completion_action`, a function's `change_step`)",
            "bad/context_reach.yaml:14:3: warning: context `archive` is never entered: no step the conversation reaches lists it in `valid_contexts` (nor its context), and no function's `change_context` names it",
        ]),
        ("no_default_context", 1, &[
            "bad/no_default_context.yaml:3:1: error: `contexts` needs a `default` context: the conversation starts there",
            "bad/no_default_context.yaml:8:12: error: context `empty` has no steps: give it at least one",
        ]),
        // Verbs around the AI are checked against their schema definitions.
        ("around_verbs", 1, &[
            "bad/around_verbs.yaml:3:25: error: `answer.max_duration` must be at least 1 second",
            "bad/around_verbs.yaml:4:24: error: `record_call.format`: \"ogg\" must be \"wav\", or \"mp3\", or \"mp4\"",
            "bad/around_verbs.yaml:6:11: error: `before_ai.0.play`: it must have \"url\", or \"urls\"",
            "bad/around_verbs.yaml:7:5: error: `dance` is not a SWML verb the schema knows",
            "bad/around_verbs.yaml:8:5: error: `ai` cannot be placed in `before_ai`: swagent renders the `answer` and the one `ai` verb itself",
            "bad/around_verbs.yaml:9:5: error: `before_ai` holds SWML verbs, each one key: `{ play: { url: ... } }`",
        ]),
        // Ranges, grants in global_data, platform names, fillers, wait files.
        ("ai_settings", 1, &[
            "bad/ai_settings.yaml:4:16: error: `prompt.temperature` must be from 0 to 1.5, not 2",
            "bad/ai_settings.yaml:5:15: error: `prompt.max_tokens` must be from 0 to 4096, not 9000",
            "bad/ai_settings.yaml:6:41: error: `post_prompt.top_p` must be from 0 to 1, not 1.5",
            "bad/ai_settings.yaml:7:31: error: `global_data.swagent_verified_account`: keys starting with `swagent_verified` hold swagent's verification grants; a grant must come from a verifier, never from the file",
            "bad/ai_settings.yaml:8:32: error: `tell_joke` is not a native function; the platform has check_time, wait_seconds, wait_for_user, adjust_response_latency",
            "bad/ai_settings.yaml:10:12: warning: the include's `url` is sent to the platform in the SWML: anyone who can fetch the SWML sees what `${env:...}` puts in it",
            "bad/ai_settings.yaml:10:49: warning: environment variable `INCLUDE_KEY` is not set",
            "bad/ai_settings.yaml:10:81: error: `functions` is empty: name the functions to offer",
            "bad/ai_settings.yaml:12:16: error: `replace` is empty: it would match everywhere",
            "bad/ai_settings.yaml:16:38: error: `xx-XX` is not a language code the platform takes fillers for (`en-US`, `es`, `default`, ...)",
            "bad/ai_settings.yaml:17:16: error: function `hours`: `wait_file` must be an http(s) URL of an audio file",
        ]),
        // `${env:...}` outside the places that read it goes out as written.
        ("env_not_read", 0, &[
            "bad/env_not_read.yaml:2:29: warning: `${env:...}` is not read in `prompt.text`: it is sent to the platform as written (it is read in `languages[].voice`, `params.ai_model`, `includes[].url` and http handlers)",
            "bad/env_not_read.yaml:3:10: warning: `${env:...}` is not read in `hints.0`: it is sent to the platform as written (it is read in `languages[].voice`, `params.ai_model`, `includes[].url` and http handlers)",
            "bad/env_not_read.yaml:4:51: warning: environment variable `VOICE` is not set",
            "bad/env_not_read.yaml:8:64: warning: function `f`: environment variable `KEY` is not set",
        ]),
        // Found by a review of issue 26: each of these rendered SWML the schema refuses, or a nested AI.
        ("odd_inputs", 1, &[
            "bad/odd_inputs.yaml:3:44: error: language `en-US`: `voice` is empty: the platform needs one, such as `elevenlabs.rachel`",
            "bad/odd_inputs.yaml:4:19: error: the include's `url` is empty",
            "bad/odd_inputs.yaml:4:35: error: a function name is empty",
            "bad/odd_inputs.yaml:6:5: error: `cond` holds an `answer` verb: swagent renders the `answer` and the one `ai` verb itself",
            "bad/odd_inputs.yaml:7:5: warning: `hangup` before the AI: the call ends before the agent says a word",
            "bad/odd_inputs.yaml:10:15: error: context `default`: `sections` is empty: give at least one, or leave it out",
            "bad/odd_inputs.yaml:12:17: error: context `default`: a step's `name` must be one line, not empty and not `next` (`next` means the following step)",
            "bad/odd_inputs.yaml:12:55: error: `next` is listed twice",
            "bad/odd_inputs.yaml:19:9: error: function `f`: the argument at `properties.x` is `type: array` without `items`: the platform needs the items' schema, such as `items: { type: string }`",
            "bad/odd_inputs.yaml:20:9: error: function `f`: the argument at `properties.y` has a `nullable` that is not `true` or `false`",
        ]),
        // What a handler's output may do is named in the file, never a kind that moves or bills the call (issue 27).
        ("actions_from_output", 1, &[
            "bad/actions_from_output.yaml:10:32: error: function `lookup`: `transfer` can never come from a handler's output: it moves or bills the call, and a caller who steers the output could use it; destinations stay in the agent file",
            "bad/actions_from_output.yaml:10:42: error: function `lookup`: `dance` is not an action kind output may carry (say, hangup, stop, set_global_data, unset_global_data, set_meta_data, unset_meta_data, toggle_functions, change_step, change_context, play_background, stop_background, hold, user_event)",
            "bad/actions_from_output.yaml:10:49: error: function `lookup`: `say` is listed twice",
            "bad/actions_from_output.yaml:14:45: error: function `move`: `b` is not a step of this agent",
            "bad/actions_from_output.yaml:14:66: error: function `move`: `elsewhere` is not a context of this agent",
            "bad/actions_from_output.yaml:14:105: error: function `move`: `ghost` is not a function of this agent",
            "bad/actions_from_output.yaml:14:113: error: function `move`: `say` has no targets to list: give it `true`",
        ]),
        // Actions' destinations come from the file, never from the call (issue 27).
        ("actions", 1, &[
            "bad/actions.yaml:14:25: error: function `transfer_to`: a destination is a literal number or `sip:` address, `${env:NAME}`, or a `map` picked by an argument with an `enum`: never a template, since a caller who steers it could dial any number (toll fraud)",
            "bad/actions.yaml:15:31: error: function `transfer_to`: `map` is picked by `number`, which must be a declared argument whose `enum` is exactly the map's keys (`sales`); a destination is a literal number or `sip:` address, `${env:NAME}`, or a `map` picked by an argument with an `enum`: never a template, since a caller who steers it could dial any number (toll fraud)",
            "bad/actions.yaml:16:31: error: function `transfer_to`: `map` is picked by `dept`, which must be a declared argument whose `enum` is exactly the map's keys (`billing`, `sales`); a destination is a literal number or `sip:` address, `${env:NAME}`, or a `map` picked by an argument with an `enum`: never a template, since a caller who steers it could dial any number (toll fraud)",
            "bad/actions.yaml:17:25: error: function `transfer_to`: the destination must be an E.164 number such as `+15551230001`, or a `sip:user@host` address",
            "bad/actions.yaml:18:25: warning: function `transfer_to`: `${env:NOT_SET_ANYWHERE_X}` is empty or unset, so this action is off: a call that reaches it hears that it is unavailable",
            "bad/actions.yaml:19:25: error: function `transfer_to`: `send_sms.to` is `caller` or an E.164 number such as `+15551230001`; never a template",
            "bad/actions.yaml:20:39: error: function `transfer_to`: the destination must be an E.164 number such as `+15551230001`",
            "bad/actions.yaml:21:9: error: function `transfer_to`: `send_sms` needs a `body` or `media`",
            "bad/actions.yaml:22:17: error: function `transfer_to`: `hangup: false` does nothing; leave the action out",
            "bad/actions.yaml:23:26: error: function `transfer_to`: `hold.timeout` is at most 900 seconds",
            "bad/actions.yaml:24:28: error: function `transfer_to`: `swagent_verified`: keys starting with `swagent_verified` hold swagent's verification grants, which only a verifier gives",
            "bad/actions.yaml:25:22: error: function `transfer_to`: `nowhere` is not a step of this agent",
            "bad/actions.yaml:26:40: error: function `transfer_to`: `ghost` is not a function of this agent",
        ]),
        ("unknown_action", 1, &[
            "bad/unknown_action.yaml:8:9: error: invalid agent file: functions.f.actions[0]: `dance` is not an action; the actions are `say`, `hangup`, `stop`, `transfer`, `send_sms`, `set_global_data`, `unset_global_data`, `set_meta_data`, `unset_meta_data`, `toggle_functions`, `change_step`, `change_context`, `record_call`, `stop_record_call`, `play_background`, `stop_background`, `hold`",
        ]),
        ("static_action_variable", 1, &[
            "bad/static_action_variable.yaml:9:15: error: function `call_back`: a static `SWML` action may not hold `${...}` or `%{...}`: the platform fills them from the call, so a caller could steer where it dials or texts (toll fraud); write it under `actions:`, whose destinations come from the file",
            "bad/static_action_variable.yaml:11:15: error: function `call_back`: a static `SWML` action may not hold `${...}` or `%{...}`: the platform fills them from the call, so a caller could steer where it dials or texts (toll fraud); write it under `actions:`, whose destinations come from the file",
        ]),
        ("hook_templates", 1, &[
            "bad/hook_templates.yaml:5:61: error: function `on_call_start`: `${global_data.tier}` is always empty in `on_call_start`: the call has no data yet (the file's own `global_data` is known when you write it)",
            "bad/hook_templates.yaml:8:7: error: `cond` holds an `ai` verb: an AI there would run without swagent's functions and guards",
            "bad/hook_templates.yaml:11:57: error: function `on_call_end`: `${meta_data.m}` is always empty in a call hook: it has no `meta_data`",
        ]),
        ("summary", 1, &[
            "bad/summary.yaml:3:1: error: `summary` needs a `post_prompt`: without one the platform sends no summary to deliver",
            "bad/summary.yaml:4:12: error: `summary.max_age` is more than 0 and at most 7d",
            "bad/summary.yaml:5:83: error: function `summary`: `${meta_data.x}` is always empty in a call hook: it has no `meta_data`",
            "bad/summary.yaml:9:26: error: function `f`: `${summary.text}` is only available in `summary`",
        ]),
        // An http `output` with `foreach`: where its path leads, which
        // variables each field may use, its `max`, and its keys.
        ("foreach", 1, &[
            "bad/foreach.yaml:11:18: error: function `not_in_response`: `foreach` must be `response.PATH`, the path to an array in the response (or `response` when the answer is one)",
            "bad/foreach.yaml:20:18: error: function `bad_path`: `foreach`: `x` is not an array index",
            "bad/foreach.yaml:30:35: error: function `misplaced`: `${list}` is only available in `text` of an http `output` with `foreach`",
            "bad/foreach.yaml:31:20: error: function `misplaced`: `${item.time}` is only available in `each` of an http `output` with `foreach`",
            "bad/foreach.yaml:32:31: error: function `misplaced`: `${item}` is only available in `each` of an http `output` with `foreach`",
            "bad/foreach.yaml:33:14: error: function `misplaced`: `max` must be between 1 and 100",
            "bad/foreach.yaml:45:15: error: function `forgetful`: `each` never names `${item...}`: every element would read the same",
            "bad/foreach.yaml:46:15: error: function `forgetful`: `join` is plain text and cannot hold `${...}`",
            "bad/foreach.yaml:47:14: error: function `forgetful`: `max` must be between 1 and 100",
            "bad/foreach.yaml:49:15: error: function `forgetful`: `text` never names `${list}`: the list would not be read out",
            "bad/foreach.yaml:54:24: error: function `elsewhere`: `${item.time}` is only available in `each` of an http `output` with `foreach`",
            "bad/foreach.yaml:54:40: error: function `elsewhere`: `${list}` is only available in `text` of an http `output` with `foreach`",
        ]),
        ("foreach_unknown_key", 1, &["bad/foreach_unknown_key.yaml:12:9: error: invalid agent file: functions.slots.http.output: unknown field `eahc`; did you mean `each`?"]),
        ("foreach_no_empty", 1, &["bad/foreach_no_empty.yaml:11:9: error: invalid agent file: functions.slots.http.output: missing field `empty`"]),
        ("bom", 0, &[]),
    ];
    for (name, code, want) in cases {
        let file = format!("bad/{name}.yaml");
        let out = Swagent::new(["validate", file.as_str()])
            .dir(dir.path())
            .run()
            .code(*code)
            .never_shows("panicked");
        let all = format!("{}{}", out.stdout, out.stderr);
        assert_eq!(finding_lines(&all), *want, "{name}:\n{all}");
        let summary = if *code == 0 {
            "1 agent file(s) valid\n"
        } else {
            "1 of 1 agent file(s) invalid\n"
        };
        assert!(all.ends_with(summary), "{name}:\n{all}");
    }
}

/// An argument whose own text no `exec` can carry fails every call, so
/// `validate` says so; one byte under the limit passes.
#[test]
fn shell_arguments_no_exec_can_carry_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let agent = |arg: &str| {
        format!(
            "name: argv\nprompt:\n  text: Hi.\nfunctions:\n  run:\n    description: Runs.\n    parameters:\n      type: object\n      properties:\n        q: {{type: string, enum: [a]}}\n    shell:\n      command: [/bin/echo, \"{arg}\"]\n"
        )
    };
    let max = 32 * 4096 - 1;
    let cases = [
        ("nul", agent("x\\0y"), 1, "bad/nul.yaml:12:28: error: function `run`: argument 1 holds a NUL byte, which no argument can carry".to_owned()),
        ("long", agent(&format!("{}${{args.q}}", "a".repeat(max + 1))), 1, format!("bad/long.yaml:12:28: error: function `run`: argument 1 is {} bytes before any value is filled in, and an argument may hold at most {max}", max + 1)),
    ];
    for (name, text, code, want) in cases {
        write(&bad, &format!("{name}.yaml"), &text);
        let file = format!("bad/{name}.yaml");
        let out = Swagent::new(["validate", file.as_str()])
            .dir(dir.path())
            .run()
            .code(code);
        assert_eq!(
            finding_lines(&out.stderr),
            vec![want.as_str()],
            "{}",
            out.stderr
        );
    }
    let file = write(&bad, "fits.yaml", &agent(&"a".repeat(max)));
    Swagent::new(["validate".as_ref(), file.as_os_str()])
        .run()
        .code(0)
        .stdout_has("1 agent file(s) valid\n");
}

/// Before routes were checked, `route: /health` served the SWML (tokens
/// and all) to `POST /health` without credentials: the gate lets the probe
/// paths through. Now `serve` refuses to start on any path it serves itself.
#[test]
fn serve_refuses_a_route_it_serves_itself() {
    for route in ["/health", "/ready/", "/metrics"] {
        let dir = crate::util::agent_dir(
            &format!("name: clash\nroute: {route}\nprompt:\n  text: Hi.\n"),
            &[],
        );
        let out = Swagent::new(["serve", "agent.yaml", "--port", "0"])
            .creds()
            .dir(dir.path())
            .run()
            .code(2);
        let trimmed = route.trim_end_matches('/');
        let want = format!(
            "error: `agent.yaml` is not a valid agent file:\nagent.yaml:2:8: error: `route` `{trimmed}` is a path swagent serves itself (`/health`, `/ready`, `/metrics`); pick another\n"
        );
        assert!(out.stderr.starts_with(&want), "{route}:\n{}", out.stderr);
        assert!(out.stdout.is_empty(), "{route}:\n{}", out.stdout);
    }
}

#[test]
fn strict_turns_any_warning_into_exit_1() {
    let dir = bad_fixtures();
    for name in ["insecure_post", "argument_injection"] {
        let file = format!("bad/{name}.yaml");
        Swagent::new(["validate", file.as_str()])
            .dir(dir.path())
            .run()
            .code(0);
        Swagent::new(["validate", "--strict", file.as_str()])
            .dir(dir.path())
            .run()
            .code(1)
            .stderr_has(&format!("bad/{name}.yaml:"))
            .stderr_has("1 of 1 agent file(s) invalid\n");
    }
    // A clean file stays 0 under --strict.
    Swagent::new(["validate", "--strict", "agents/hello.yaml"])
        .dir(&root())
        .run()
        .code(0)
        .stdout_is("1 agent file(s) valid\n");
}

#[test]
fn hostile_inputs_get_an_error_never_a_panic() {
    let dir = bad_fixtures();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    // Over the 1 MiB limit, and a sparse 50 MB one: refused before parsing.
    let mut text = String::from("name: big\nprompt:\n  text: \"");
    text.push_str(&"a".repeat(1100 * 1024));
    text.push_str("\"\n");
    write(&big, "over_1mib.yaml", &text);
    std::fs::File::create(big.join("sparse_50mb.yaml"))
        .unwrap()
        .set_len(50 * 1024 * 1024)
        .unwrap();
    // Binary junk: every byte value.
    let junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    std::fs::write(big.join("junk.yaml"), junk).unwrap();
    // Nesting inside `params`: 10,000 levels of flow sequences (refused before
    // parsing), and 180 of flow mappings (past serde's limit of 128).
    let deep_seq = format!(
        "name: deep\nprompt:\n  text: Hi.\nparams:\n  x: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    write(&big, "deep_seq.yaml", &deep_seq);
    let deep_map = format!(
        "name: deep\nprompt:\n  text: Hi.\nparams:\n  x: {}1{}\n",
        "{a: ".repeat(180),
        "}".repeat(180)
    );
    write(&big, "deep_map.yaml", &deep_map);
    let cases = [
        ("over_1mib", "big/over_1mib.yaml:1:1: error: file is larger than 1024 KiB: an agent file this big is not an agent file"),
        ("sparse_50mb", "big/sparse_50mb.yaml:1:1: error: file is larger than 1024 KiB: an agent file this big is not an agent file"),
        ("junk", "big/junk.yaml:1:1: error: file is not UTF-8 text"),
        ("deep_seq", "big/deep_seq.yaml:5:261: error: `[` and `{` nest more than 200 deep here: no agent needs that, and the YAML parser slows down with every level"),
        ("deep_map", "big/deep_map.yaml:5:510: error: invalid agent file: nesting is too deep"),
    ];
    for (name, want) in cases {
        let file = format!("big/{name}.yaml");
        let out = Swagent::new(["validate", file.as_str()])
            .dir(dir.path())
            .run()
            .code(1)
            .never_shows("panicked");
        assert_eq!(finding_lines(&out.stderr), vec![want], "{}", out.stderr);
        // The context line of a huge line is a window, never the whole line.
        assert!(
            out.stderr.len() < 2048,
            "{} bytes of output",
            out.stderr.len()
        );
    }
}

#[test]
fn unreadable_paths_and_empty_folders_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    write(&dir.path().join("empty"), "README.md", "no agents here\n");
    Swagent::new(["validate", "empty"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: no agent files (`*.yaml`, `*.yml`) under `empty`\n");
    Swagent::new(["validate", "nope.yaml"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: cannot read `nope.yaml`: No such file or directory (os error 2)\n");
    // A usage error: no path at all.
    Swagent::new(["validate"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("required");
}

#[test]
fn json_format_is_one_array_with_an_object_per_file() {
    let dir = bad_fixtures();
    let out = Swagent::new([
        "validate",
        "--format",
        "json",
        "bad/insecure_post.yaml",
        "bad/bad_function_name.yaml",
    ])
    .dir(dir.path())
    .run()
    .code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is JSON");
    assert_eq!(
        v,
        serde_json::json!([
            {
                "file": "bad/insecure_post.yaml",
                "valid": true,
                "findings": [{
                    "severity": "warning",
                    "line": 7,
                    "column": 13,
                    "message": "function `order`: `secure: false` on a function that changes something; anyone who can reach the server can call it"
                }]
            },
            {
                "file": "bad/bad_function_name.yaml",
                "valid": false,
                "findings": [{
                    "severity": "error",
                    "line": 5,
                    "column": 3,
                    "message": "function `get-hours`: names must match `^[a-zA-Z_][a-zA-Z0-9_]*$`"
                }]
            }
        ])
    );
    // Under --strict the warning makes its file invalid too.
    let out = Swagent::new([
        "validate",
        "--strict",
        "--format",
        "json",
        "bad/insecure_post.yaml",
    ])
    .dir(dir.path())
    .run()
    .code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["valid"], false);
}

#[test]
fn github_format_is_workflow_commands() {
    let dir = bad_fixtures();
    Swagent::new([
        "validate",
        "--format",
        "github",
        "bad/insecure_post.yaml",
        "bad/literal_authorization.yaml",
    ])
    .dir(dir.path())
    .run()
    .code(1)
    .stdout_is(concat!(
        "::warning file=bad/insecure_post.yaml,line=7,col=13::function `order`: `secure: false` on a function that changes something; anyone who can reach the server can call it\n",
        "::error file=bad/literal_authorization.yaml,line=9,col=33::function `lookup`: `Authorization` holds a literal credential; secrets never live in the agent file, use `${env:NAME}`\n",
    ));
}

#[test]
fn committed_schema_matches_the_rust_types() {
    let out = Swagent::new(["schema"]).run().code(0);
    let committed =
        std::fs::read_to_string(root().join("schemas/agent.schema.json")).unwrap_or_default();
    assert!(
        out.stdout == committed,
        "schemas/agent.schema.json is out of date with the Rust types: run `cargo run -q -- schema > schemas/agent.schema.json` and commit it"
    );
    // It is a JSON Schema 2020-12 document.
    let v: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
}
