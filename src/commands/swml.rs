//! `swagent swml FILE`: the SWML document `serve` would answer, for a call
//! id, printed.

use anyhow::Context as _;

use crate::agent::{self, LoadOptions};
use crate::auth::Origin;
use crate::cli::SwmlArgs;
use crate::config::settings::base_url;
use crate::config::vars::{PASSWORD as PASSWORD_VAR, SECRET as SECRET_VAR};
use crate::config::Settings;

pub(super) fn run(args: &SwmlArgs) -> anyhow::Result<u8> {
    let agent = match agent::load(&args.file, LoadOptions::default()) {
        Ok((agent, _)) => agent,
        Err(agent::LoadError::Invalid { report }) => {
            crate::say_raw!("{}", report.human());
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let base = args
        .base_url
        .as_deref()
        .map(|b| base_url("`--base-url`", b))
        .transpose()?;
    let settings = Settings::from_env(false, true)?;
    // As `serve` would answer, or a document that could never be served.
    if settings.creds.origin == Origin::Generated || settings.secret_origin == Origin::Generated {
        crate::say!(
            "warning: no `{PASSWORD_VAR}` or no `{SECRET_VAR}`: this document's password or tokens are throwaway values that no server shares"
        );
    }
    let base = base
        .or_else(|| settings.proxy_base.clone())
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let call_id = args
        .call_id
        .clone()
        .unwrap_or_else(|| crate::random::hex(16));
    let doc = crate::swml::render(
        &agent,
        &crate::swml::RenderContext {
            base_url: base.trim_end_matches('/'),
            userinfo: &crate::swml::Userinfo::new(&settings.creds.user, settings.creds.password()),
            secret: &settings.secret,
            call_id: &call_id,
            now: crate::clock::now(),
        },
    )
    .with_context(|| format!("cannot render SWML for call id `{call_id}`"))?;
    super::print_out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    Ok(0)
}
