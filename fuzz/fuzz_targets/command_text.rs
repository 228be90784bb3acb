//! The command grammar: whatever a user types after any command name, the
//! answer is a request the config allows or an error with a message for the
//! user; a request typed out again reads the same.
#![no_main]

use std::sync::OnceLock;

use baton_chatops::{Config, Request, parse_request};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
unlock_users = ["UADMIN"]
[commands."/build".allowed_users]
prod = ["UADMIN"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"

[commands."/deploy"]
lock_ttl = "30m"
lock_scope = "environment"
components = ["router", "api"]
environments = ["plt", "prod"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
"#;

const COMMANDS: [&str; 5] = ["/build", "/deploy", "/BUILD", "/nope", ""];
const USERS: [&str; 3] = ["U1", "UADMIN", ""];

fn config() -> &'static Config {
    static CONFIG_CELL: OnceLock<Config> = OnceLock::new();
    CONFIG_CELL.get_or_init(|| Config::from_toml_str(CONFIG).expect("valid fuzz config"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let command = COMMANDS[usize::from(selector) % COMMANDS.len()];
    let user = USERS[usize::from(selector / 8) % USERS.len()];
    let text = String::from_utf8_lossy(rest);
    let config = config();
    match parse_request(config, command, &text, user) {
        Err(e) => {
            assert!(!e.to_string().trim().is_empty());
            assert!(!e.user_message().trim().is_empty());
        }
        Ok(request) => {
            let cmd = config
                .command(request.command())
                .expect("a request names a configured command");
            if let Request::Run {
                component,
                environment,
                lock_key,
                ..
            }
            | Request::Unlock {
                component,
                environment,
                lock_key,
                ..
            }
            | Request::Cancel {
                component,
                environment,
                lock_key,
                ..
            } = &request
            {
                assert!(
                    cmd.components.contains(component) && cmd.environments.contains(environment)
                );
                assert_eq!(lock_key, &cmd.lock_key(&cmd.name, component, environment));
            }
            assert_eq!(
                parse_request(config, request.command(), &request.text(), user),
                Ok(request)
            );
        }
    }
});
