# The reconciler: EventBridge Scheduler invokes the worker with the fixed
# input {"action": "reconcile"} (every minute by default). Each pass renews
# the leases of chatops grants whose pipeline run is still alive and ends
# those whose run has finished without a completion reaching the queue.
#
# The schedule invokes through its own role, allowed lambda:InvokeFunction on
# this one function and nothing else; the role trusts the Scheduler service
# only for schedules of this account. Scheduler invokes Lambda
# asynchronously; the event invoke config below drops a failed pass instead
# of retrying it, because the next scheduled pass does the same work with
# fresher data.

locals {
  # The worker's handler reads exactly this (no other field is accepted).
  reconcile_input = jsonencode({ action = "reconcile" })
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    sid     = "SchedulerAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_caller_identity" "current" {}

resource "aws_iam_role" "reconcile_schedule" {
  name                 = "${var.function_name}-reconcile-schedule"
  description          = "Lets EventBridge Scheduler invoke ${var.function_name} for reconciler passes"
  assume_role_policy   = data.aws_iam_policy_document.scheduler_assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "reconcile_invoke" {
  statement {
    sid       = "InvokeWorker"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.function.function_arn]
  }
}

resource "aws_iam_role_policy" "reconcile_schedule" {
  name   = "${var.function_name}-reconcile-invoke"
  role   = aws_iam_role.reconcile_schedule.id
  policy = data.aws_iam_policy_document.reconcile_invoke.json
}

resource "aws_scheduler_schedule" "reconcile" {
  #checkov:skip=CKV_AWS_297:The schedule holds no data but its constant input {"action": "reconcile"}; a customer-managed key would protect nothing.
  name        = "${var.function_name}-reconcile"
  description = "baton reconciler: renews leases of live pipeline runs, ends locks of finished ones"

  schedule_expression = var.reconcile_schedule_expression
  state               = var.reconcile_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = module.function.function_arn
    role_arn = aws_iam_role.reconcile_schedule.arn
    input    = local.reconcile_input

    # A pass that could not be started is not worth a late start: the next
    # one is due within the schedule's period.
    retry_policy {
      maximum_event_age_in_seconds = 60
      maximum_retry_attempts       = 0
    }
  }

  # The role must hold its grant before the first invocation.
  depends_on = [aws_iam_role_policy.reconcile_schedule]
}

# Asynchronous invocations of the worker come only from the schedule above.
# Lambda would retry a failed one twice, overlapping the next pass; a pass
# older than a minute is superseded by the next.
resource "aws_lambda_function_event_invoke_config" "reconcile" {
  function_name                = module.function.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}
