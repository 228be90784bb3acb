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

  # Only the router's role may send to the queue (../router: function_name
  # "baton-router", so its role is "baton-router-role"). Add an operator
  # role here while it redrives the DLQ.
  sender_role_names = ["baton-router-role"]

  # The SNS topic notified when a command lands in the DLQ (null: nobody).
  alarm_topic_arn = null
}
