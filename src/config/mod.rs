//! The one configuration stage: every variable swagent reads ([`vars`]), the
//! `.env` file and the one way a variable is read ([`env`]), and `serve`'s
//! validated configuration with its hardening findings ([`serve`],
//! [`findings`]). Nothing else in swagent reads the environment for its own
//! settings; request handling sees only [`Settings`].

pub mod env;
pub mod findings;
pub mod hosts;
pub mod serve;
pub mod settings;
pub mod vars;

pub use findings::{Finding, Status};
pub use serve::ServeConfig;
pub use settings::Settings;
