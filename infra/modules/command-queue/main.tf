# FIFO command queue between the router (producer) and the worker (consumer).
#
# FIFO because the worker's ordering design needs it: the router sends every
# command with MessageGroupId = lock key, so the records of one lock are
# processed in order (acquire before release), while different locks proceed
# in parallel. The router also sends MessageDeduplicationId (Slack's
# trigger_id / the GitHub delivery id), so content-based deduplication is off:
# two identical "/build api plt" commands from two users are two commands.

locals {
  queue_name = "${var.name}.fifo"
  dlq_name   = "${var.name}-dlq.fifo"
  # Who hears the DLQ alarm fire and clear.
  alarm_actions = concat(var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn], var.alarm_actions)
}

resource "aws_sqs_queue" "dlq" {
  name                        = local.dlq_name
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled     = true
  tags                        = var.tags
}

resource "aws_sqs_queue" "commands" {
  name                        = local.queue_name
  fifo_queue                  = true
  content_based_deduplication = false
  # Must stay >= 6x the worker's function timeout (AWS guidance for Lambda
  # event sources, checked by tests/infra and by a precondition in the
  # worker-function module): 300 s for the 45 s worker.
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

# Only the command queue may use the DLQ as its dead-letter target.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.commands.arn]
  })
}

# Refuse plain-HTTP access to both queues.
data "aws_iam_policy_document" "tls_only" {
  for_each = {
    commands = aws_sqs_queue.commands.arn
    dlq      = aws_sqs_queue.dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# The worker trusts nothing it reads from the queue, and the queue trusts no
# sender but the router: every other principal is denied sqs:SendMessage,
# whatever its own IAM policy allows. (The reconciler is invoked by its
# schedule, not through the queue.)
data "aws_iam_policy_document" "commands" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["commands"].json]

  statement {
    sid       = "OnlyTheRouterSends"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.commands.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values = [
        for role in var.sender_role_names :
        "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${role}"
      ]
    }
  }
}

resource "aws_sqs_queue_policy" "commands" {
  queue_url = aws_sqs_queue.commands.id
  policy    = data.aws_iam_policy_document.commands.json
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.tls_only["dlq"].json
}

# A message in the DLQ is a command that failed max_receive_count times: a
# user's /build or /deploy that never ran, or a lock that was never released.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Commands in ${local.dlq_name}: they failed ${var.max_receive_count} times. Inspect, fix, then redrive (infra/README.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
