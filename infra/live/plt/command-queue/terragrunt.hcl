# FIFO command queue + DLQ + DLQ alarm. No dependencies: apply before the
# functions (the worker polls it, the router sends to it).

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//command-queue"
}

inputs = {
  name = "baton-commands"

  # >= 6x the worker timeout (45 s in ../worker). Raise this first, and apply
  # this unit first, before raising the worker timeout.
  visibility_timeout_seconds = 300
  max_receive_count          = 5

  # The SNS topic notified when a command lands in the DLQ (null: nobody).
  alarm_topic_arn = null
}
