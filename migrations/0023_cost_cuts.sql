-- Issue 21 item 5, cutting D1 rows written per webhook (bench/results/cost-2000.json, docs/benchmarks.md).
-- The record counts its own status changes: an endpoint's `sequence` comes from it, so a merchant without an endpoint
-- writes no transaction_changes / transaction_streams rows (src/transactions/stream.ts). Existing records: at least the
-- stream's number, or the timeline's changes still in D1, or 1 (the first status seen is a change).
ALTER TABLE `transactions` ADD `status_changes` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE `transactions` SET `status_changes` = max(1,
  coalesce((SELECT s.`sequence` FROM `transaction_streams` AS s WHERE s.`merchant_id` = `transactions`.`merchant_id` AND s.`transaction_id` = `transactions`.`id`), 0),
  (SELECT count(*) FROM `transaction_status_changes` AS h WHERE h.`merchant_id` = `transactions`.`merchant_id` AND h.`transaction_id` = `transactions`.`id`));
