# Execution role, least privilege, with ONE inline policy: first the caller's
# own statements (var.policy_documents: the worker's table and queue, the
# router's queue), then what every baton function needs: its SSM parameters
# (and their customer-managed KMS key, if any), its log group, X-Ray when
# tracing is on. No managed policies.
#
# tests/infra/test_contract.py reads the statements here and in the callers'
# documents, and compares the DynamoDB/SQS/SSM actions with the SDK calls in
# the code each function runs, role by role.

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
  source_policy_documents = var.policy_documents

  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) == 0 ? [] : [1]

    content {
      sid       = "ReadOwnParameters"
      actions   = ["ssm:GetParameter"]
      resources = local.ssm_parameter_arns
    }
  }

  # SecureString values are decrypted by SSM with their KMS key. With the
  # default AWS-managed key (alias/aws/ssm) no statement is needed: that key's
  # policy already lets every principal of this account decrypt through SSM,
  # and an alias ARN would not match as an IAM resource anyway. With a
  # customer-managed key, allow Decrypt on that key only, only through SSM in
  # this region, and only for this function's own parameters.
  dynamic "statement" {
    for_each = var.ssm_kms_key_arn == null || length(local.ssm_parameter_arns) == 0 ? [] : [var.ssm_kms_key_arn]

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
