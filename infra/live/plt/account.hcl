# The AWS account this environment deploys to. Replace the placeholder with
# the real 12-digit id before the first plan: the generated provider only
# accepts credentials of this account (allowed_account_ids), and every IAM
# ARN the modules build names the caller's own account, never a wildcard.
locals {
  account_id   = "111111111111"
  account_name = "plt"
}
