# A lost lock: a grant's lease ran out before its holder released it, and a
# later request took the lock over while the first run may still have been
# working, so two runs may have overlapped. The worker logs each take-over as
# one JSON WARN line whose message is local.lost_lock_message
# (tests/infra/test_contract.py checks that the worker still logs exactly
# that); this filter counts them and the alarm fires on the first.

locals {
  lost_lock_message = "took over an expired lock"
  # A namespace of this function's own: two deployments in one account (plt
  # and prod workers) never add to each other's count.
  lost_lock_namespace = "Baton/${var.function_name}"
  alarm_actions       = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
}

resource "aws_cloudwatch_log_metric_filter" "lost_lock" {
  name           = "${var.function_name}-lost-lock"
  log_group_name = module.function.log_group_name
  pattern        = "{ $.fields.message = \"${local.lost_lock_message}\" }"

  metric_transformation {
    name          = "LostLock"
    namespace     = local.lost_lock_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "lost_lock" {
  alarm_name          = "${var.function_name}-lost-lock"
  alarm_description   = "${var.function_name} took over a lock whose lease had lapsed: the run that held it may still have been working. Check the lock's history (baton status) and the pipeline runs; raise lock_ttl if runs outlive it."
  namespace           = local.lost_lock_namespace
  metric_name         = "LostLock"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  depends_on = [aws_cloudwatch_log_metric_filter.lost_lock]
}
