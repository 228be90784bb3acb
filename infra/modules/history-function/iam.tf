# The consumer's own grants, least privilege: it writes the history table
# (PutItem for a new entry, UpdateItem to name the next holder) and nothing
# else; the four stream actions are what the Lambda event source mapping
# itself needs to read the stream. tests/infra/test_contract.py compares
# these with the SDK calls of crates/history.

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "HistoryTableWrites"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [var.history_table_arn]
  }

  statement {
    sid = "LockTableStreamEventSource"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:ListStreams",
    ]
    resources = [var.stream_arn]
  }

  dynamic "statement" {
    for_each = var.failure_topic_arn == null ? [] : [var.failure_topic_arn]
    content {
      sid       = "StreamFailureDestination"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }
}
