# A role for CI pipelines that run the `baton` CLI, assumable through GitHub
# Actions OIDC only by the given repositories and branches, with the least
# privilege the CLI needs on the lock table: GetItem (status, verify, wait),
# UpdateItem (acquire, release, renew, force-unlock) and Query on the
# active-locks index (list). `baton table create` is an admin task and is
# deliberately not granted.

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
