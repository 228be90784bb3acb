# Execution role of the worker, least privilege.
#
# DynamoDB and SSM actions are exactly the SDK calls the deployed code makes
# (crates/worker and the workspace crates it links, crates/lock among them;
# without crates/lock/src/table.rs, the `table create` admin helper that no
# Lambda runs). The three SQS actions are
# what the Lambda event source mapping itself needs to poll the queue; the
# code makes no SQS call. tests/infra/test_contract.py compares the actions in
# the statements below with the calls in the code, role by role.

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.function_name}-role"
  description          = "Execution role of the ${var.function_name} Lambda"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "LockTableItems"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.table_arn]
  }

  # The list operation queries the sparse active-locks index.
  statement {
    sid       = "LockTableQuery"
    actions   = ["dynamodb:Query"]
    resources = var.table_index_arns
  }

  # Needed by the event source mapping (Lambda polls with the function's role).
  statement {
    sid       = "CommandQueueEventSource"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "ReadOwnParameters"
    actions   = ["ssm:GetParameter"]
    resources = local.ssm_parameter_arns
  }

  # SecureString values are decrypted by SSM with their KMS key. With the
  # default AWS-managed key (alias/aws/ssm) no statement is needed: that key's
  # policy already lets every principal of this account decrypt through SSM,
  # and an alias ARN would not match as an IAM resource anyway. With a
  # customer-managed key, allow Decrypt on that key only, only through SSM in
  # this region, and only for this function's own parameters.
  dynamic "statement" {
    for_each = var.ssm_kms_key_arn == null ? [] : [var.ssm_kms_key_arn]

    content {
      sid       = "DecryptOwnSecureStrings"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:PARAMETER_ARN"
        values   = local.ssm_parameter_arns
      }
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.tracing_enabled ? [1] : []

    content {
      sid       = "XRayWrite"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
