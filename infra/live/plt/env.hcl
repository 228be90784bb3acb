locals {
  env    = "plt"
  region = "ca-central-1"

  # The command config both functions read (BATON_CONFIG): a path inside
  # their zips, e.g. "/var/task/baton.toml" once that file is packaged in
  # both; null = the built-in /build and /deploy. Set here once, so the
  # worker and the router can never be given different configs.
  config_path = null

  # The Slack workspace (T…) or Enterprise Grid (E…) ids this environment
  # serves (BATON_ALLOWED_TEAMS on both functions): commands from any other
  # workspace are refused. Replace with your own before applying.
  allowed_teams = ["T00000000"]
}
