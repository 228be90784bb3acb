# The API's own grants, least privilege. ../lambda-function puts them first
# in the role's single inline policy and adds ssm:GetParameter on the token
# document, logs and X-Ray.
#
# The DynamoDB actions are exactly the SDK calls the deployed code makes
# (crates/api and the workspace crates it links, crates/lock among them;
# without crates/lock/src/table.rs, the `table create` admin helper), as
# tests/infra/test_contract.py checks role by role.

data "aws_iam_policy_document" "this" {
  # Acquire, release, renew, force unlock and the hand-offs are conditional
  # UpdateItems; status is a GetItem.
  statement {
    sid       = "LockTableItems"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.table_arn]
  }

  # The lock library it links can send a freeze-checked acquire (a
  # TransactWriteItems with a ConditionCheck on the freeze's item); the API
  # never asks for the check, but the grant follows the code it links. It
  # reveals nothing GetItem does not.
  statement {
    sid       = "LockTableFreezeCheck"
    actions   = ["dynamodb:ConditionCheckItem"]
    resources = [var.table_arn]
  }

  # GET /v1/locks and Tracker's list query the sparse active-locks index.
  statement {
    sid       = "LockTableQuery"
    actions   = ["dynamodb:Query"]
    resources = var.table_index_arns
  }

  # GET /v1/history[/{key}] reads the history table (per key, and across
  # keys through its day index). Read-only: the stream consumer writes it.
  dynamic "statement" {
    for_each = var.history_table_arn == null ? [] : [var.history_table_arn]

    content {
      sid       = "HistoryQuery"
      actions   = ["dynamodb:Query"]
      resources = [statement.value, "${statement.value}/index/*"]
    }
  }
}
