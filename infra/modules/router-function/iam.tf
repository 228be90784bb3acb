# The router's own grant: send to the command queue. ../lambda-function puts
# it first in the role's single inline policy and adds the SSM parameters,
# logs and X-Ray. tests/infra/test_contract.py compares the SQS/SSM/DynamoDB
# actions (these and the shared ones) with the SDK calls in crates/router.

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "SendCommands"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }
}
