# A role for CI pipelines that run the `baton` CLI, assumable through GitHub
# Actions OIDC only by the given repositories and branches, with the least
# privilege the CLI needs on the lock table:
#
# - GetItem (status, verify, wait, queue) and UpdateItem (acquire, release,
#   renew, run, joining and leaving a line) only on lock keys that start with
#   one of `lock_key_prefixes` (a `dynamodb:LeadingKeys` condition);
# - no force unlock unless `admin` is true: force-unlock is the only write
#   that names the force attribute (`forcedLockId`, FORCE_UNLOCK_ATTRIBUTE in
#   crates/lock/src/schema.rs), and IAM denies every UpdateItem naming it;
# - Query on the active-locks index (`list`), read-only and NOT limited by
#   prefix: the index's partition key is the same for every held lock, so
#   `list` shows every active lock in the table, whoever holds it.
#
# The prefix is the boundary, not the CLI: with raw API access a role can do
# anything to the keys inside its prefixes (end a grant by writing its status
# without naming the force attribute, for one). `baton table create` is an
# admin task and is deliberately not granted. The CLI also calls
# sts:GetCallerIdentity (to record who took a grant), which needs no grant.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # AWS verifies GitHub's OIDC certificates through its own trust store; the
  # thumbprint is still a required argument for older providers.
  thumbprint_list = var.oidc_thumbprints
  tags            = var.tags
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1
  url   = "https://token.actions.githubusercontent.com"
}

locals {
  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
  # repo:OWNER/REPO:ref:refs/heads/BRANCH for every repository x branch pair.
  subjects = flatten([
    for repo in var.repositories : [
      for branch in var.branches : "repo:${repo}:ref:refs/heads/${branch}"
    ]
  ])
  # `<prefix>*` for dynamodb:LeadingKeys: every key the role may touch.
  lock_key_patterns = [for prefix in var.lock_key_prefixes : "${prefix}*"]
  # The attribute only force-unlock writes (FORCE_UNLOCK_ATTRIBUTE in
  # crates/lock/src/schema.rs; tests/infra checks they are the same).
  force_unlock_attribute = "forcedLockId"
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    # Exact subjects, never a wildcard: only these repositories and branches.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = local.subjects
    }
  }
}

resource "aws_iam_role" "ci" {
  name                 = var.role_name
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "locks" {
  statement {
    sid       = "LockTableItems"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.table_arn]
    # Every partition key of the request matches one of the patterns. (A
    # request without a key would pass a ForAllValues test, but GetItem and
    # UpdateItem always carry one.)
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = local.lock_key_patterns
    }
  }

  # IAM sees the attribute NAMES a request uses, never their values: the
  # force attribute is named by force-unlock (and an operator's takeover)
  # and by no other write, not even to remove it.
  dynamic "statement" {
    for_each = var.admin ? [] : ["no-force-unlock"]
    content {
      sid       = "NoForceUnlock"
      effect    = "Deny"
      actions   = ["dynamodb:UpdateItem"]
      resources = [var.table_arn]
      condition {
        test     = "ForAnyValue:StringEquals"
        variable = "dynamodb:Attributes"
        values   = [local.force_unlock_attribute]
      }
    }
  }

  statement {
    sid       = "LockTableQuery"
    actions   = ["dynamodb:Query"]
    resources = var.table_index_arns
  }
}

resource "aws_iam_role_policy" "locks" {
  name   = "baton-locks"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.locks.json
}
