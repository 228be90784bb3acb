# DynamoDB tables holding baton's locks and the history of their grants.
#
# The key, TTL and index names are NOT inputs: they are the Rust constants in
# crates/lock/src/schema.rs (TABLE_PARTITION_KEY, TTL_ATTRIBUTE,
# ACTIVE_INDEX_NAME, ACTIVE_INDEX_PARTITION_KEY). tests/infra/test_contract.py
# fails when the two disagree.
#
# TTL only collects garbage: DynamoDB deletes expired items "typically within
# two days" and reads still return them, so the lock's validity is decided by
# the condition expressions in the code, never by the item being gone.

resource "aws_dynamodb_table" "locks" {
  name                        = var.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "lockKey"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "lockKey"
    type = "S"
  }

  # Only IN_PROGRESS items carry activeLock, so the index is sparse: it holds
  # exactly the locks that are held right now (the list operation queries it).
  attribute {
    name = "activeLock"
    type = "S"
  }

  global_secondary_index {
    name            = "active-locks"
    hash_key        = "activeLock"
    range_key       = "lockKey"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  # Every change, with the item before and after: the history consumer
  # (../history-function) derives each ended grant from it, so no lock
  # operation pays a second request for the history.
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}
