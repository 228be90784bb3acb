//! The README's `freezes` example is a config baton accepts, and means what
//! the README says: Friday 17:00 in Berlin to Monday 08:00.

use baton_chatops::Config;

const README: &str = include_str!("../../../README.md");

#[test]
fn the_readme_freezes_example_is_valid_and_means_what_it_says() {
    let start = README
        .find("```toml\n[[commands.\"/deploy\".freezes]]")
        .expect("the README shows a freezes example");
    let block = &README[start + "```toml\n".len()..];
    let example = &block[..block.find("```").expect("the example ends")];
    let config = Config::from_toml_str(&format!(
        r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["plt", "prod"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
{example}"#
    ))
    .unwrap_or_else(|e| panic!("the README's example is refused: {e}"));
    let deploy = config.command("/deploy").unwrap();
    assert_eq!(deploy.freezes.len(), 2);
    // Friday 2026-12-04 18:00 Berlin (17:00 UTC): frozen until Monday
    // 08:00 Berlin (07:00 UTC).
    let friday = 1_796_403_600_000;
    let frozen = deploy
        .frozen_at("prod", friday)
        .expect("frozen on Friday evening");
    assert_eq!(frozen.until_ms, 1_796_626_800_000);
    assert_eq!(frozen.reason, "weekend: no deploys");
    assert_eq!(deploy.frozen_at("plt", friday), None);
    // 2026-12-24 12:00 UTC: the year-end freeze holds both.
    let christmas_eve = 1_798_113_600_000;
    assert!(deploy.frozen_at("plt", christmas_eve).is_some());
}
