# One item per ended grant, written only by the history consumer. Read per
# key newest first (lockKey + fence) and across keys by the day it ended
# (the by-day index), never scanned; TTL removes an entry after the
# consumer's retention. Names are the constants of crates/lock/src/schema.rs
# (module `history`), checked by tests/infra.
resource "aws_dynamodb_table" "history" {
  name                        = "${var.name}-history"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "lockKey"
  range_key                   = "fence"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "lockKey"
    type = "S"
  }

  attribute {
    name = "fence"
    type = "N"
  }

  attribute {
    name = "endedDay"
    type = "S"
  }

  attribute {
    name = "endedAtMs"
    type = "N"
  }

  global_secondary_index {
    name            = "by-day"
    hash_key        = "endedDay"
    range_key       = "endedAtMs"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}
