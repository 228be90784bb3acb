//! The command config: any text is a valid config or an error that says
//! where and what; an accepted config keeps baton's promises.
#![no_main]

use std::time::Duration;

use baton_chatops::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(source) {
        Ok(config) => {
            for c in config.commands() {
                assert!(c.name.starts_with('/') && c.name.len() > 1);
                assert!(!c.components.is_empty() && !c.environments.is_empty());
                assert!(
                    (Duration::from_secs(60)..=Duration::from_secs(12 * 3600))
                        .contains(&c.lock_ttl)
                );
            }
        }
        Err(e) => {
            assert!(!e.to_string().trim().is_empty());
            if let ConfigError::Syntax { line, column, .. } = e {
                assert!(line >= 1 && column >= 1);
            }
        }
    }
});
