-- Issue 22, retention of the endpoints' rows (src/retention/prune.ts): transaction changes are pruned per merchant by
-- age, which needs their time in an index (the primary key orders them by transaction).
CREATE INDEX `transaction_changes_created` ON `transaction_changes` (`merchant_id`,`created_at`);
