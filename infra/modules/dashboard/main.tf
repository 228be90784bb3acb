# One CloudWatch dashboard for a baton deployment, drawn from what the code
# already emits: the worker's EMF metrics (namespace Baton, dimension
# Command: LockAcquired = grants, LockHeld = conflicts, LockDuration in
# seconds), the lost-lock count its log filter makes (namespace
# Baton/<worker>), and the dead-letter queue's depth. The alarms on the
# last two are in ../worker-function and ../command-queue, with their SNS
# topic variable; tests/infra checks the metric names here against
# crates/worker/src/emf.rs.

locals {
  region = data.aws_region.current.name
  widgets = [
      {
        type   = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "Grants and conflicts per command"
          region  = local.region
          stat    = "Sum"
          period  = 300
          metrics = flatten([for c in var.commands : [["Baton", "LockAcquired", "Command", c], ["Baton", "LockHeld", "Command", c]]])
        }
      },
      {
        type   = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Lock duration (grant to completion), p50 and p99"
          region = local.region
          period = 300
          metrics = flatten([for c in var.commands : [
            ["Baton", "LockDuration", "Command", c, { stat = "p50", label = "${c} p50" }],
            ["Baton", "LockDuration", "Command", c, { stat = "p99", label = "${c} p99" }],
          ]])
        }
      },
      {
        type   = "metric", x = 0, y = 6, width = 8, height = 6
        properties = {
          title   = "Lost locks (taken over after their lease lapsed)"
          region  = local.region
          stat    = "Sum"
          period  = 300
          metrics = [["Baton/${var.worker_function_name}", "LostLock"]]
        }
      },
      {
        type   = "metric", x = 8, y = 6, width = 8, height = 6
        properties = {
          title   = "Dispatches and failed dispatches"
          region  = local.region
          stat    = "Sum"
          period  = 300
          metrics = flatten([for c in var.commands : [["Baton", "Dispatched", "Command", c], ["Baton", "DispatchFailed", "Command", c]]])
        }
      },
      {
        type   = "metric", x = 16, y = 6, width = 8, height = 6
        properties = {
          title   = "Commands in the dead-letter queue"
          region  = local.region
          stat    = "Maximum"
          period  = 60
          metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name]]
        }
      },
  ]
}

data "aws_region" "current" {}

resource "aws_cloudwatch_dashboard" "baton" {
  dashboard_name = var.dashboard_name
  dashboard_body = jsonencode({ widgets = local.widgets })
}
