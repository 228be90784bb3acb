//! The README's settings table and the code that reads the settings must
//! name the same settings: a setting added in code without a row, or a row
//! left behind for a setting no longer read, fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// The modules where the Lambdas read their settings.
const SETTINGS_MODULES: [&str; 6] = [
    "crates/api/src/app.rs",
    "crates/worker/src/settings.rs",
    "crates/history/src/settings.rs",
    "crates/router/src/app.rs",
    "crates/router/src/secrets.rs",
    "crates/runtime/src/config.rs",
];

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/runtime sits two levels below the repository root")
}

fn is_setting_name(s: &str) -> bool {
    s.len() >= 4
        && s.contains('_')
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && s.starts_with(|c: char| c.is_ascii_uppercase())
}

/// A secret's `NAME_PARAM` is documented on the row of `NAME`.
fn row_name(s: &str) -> String {
    s.strip_suffix("_PARAM").unwrap_or(s).to_owned()
}

/// Every string literal in `source` that looks like an environment variable.
fn names_in_code(source: &str) -> BTreeSet<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| is_setting_name(s))
        .map(row_name)
        .collect()
}

/// The backticked names in the README's `## Settings` section, without the
/// AWS SDK's and `RUST_LOG`, which the code does not read itself.
fn names_in_readme(readme: &str) -> BTreeSet<String> {
    let start = readme
        .find("\n## Settings\n")
        .expect("README has a Settings section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| is_setting_name(s))
        .filter(|s| !s.starts_with("AWS_") && *s != "RUST_LOG")
        .map(row_name)
        .collect()
}

#[test]
fn every_setting_read_is_documented_and_every_documented_setting_is_read() {
    let root = repo_root();
    let mut in_code = BTreeSet::new();
    for module in SETTINGS_MODULES {
        let source = std::fs::read_to_string(root.join(module))
            .unwrap_or_else(|e| panic!("reading {module}: {e}"));
        in_code.extend(names_in_code(&source));
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let documented = names_in_readme(&readme);
    assert!(
        in_code.len() >= 15,
        "too few settings found in code: {in_code:?}"
    );
    let undocumented: Vec<_> = in_code.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "settings read in code but missing from the README's table: {undocumented:?}"
    );
    let unread: Vec<_> = documented.difference(&in_code).collect();
    assert!(
        unread.is_empty(),
        "settings in the README's table that no code reads: {unread:?}"
    );
}
