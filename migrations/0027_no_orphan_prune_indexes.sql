-- Issue 21 item 5, cutting D1 rows written per webhook. `transaction_status_changes_at` and `fulfillment_attempts_at`
-- served only retention's orphan prune (rows whose record is not in D1): a status change or a fulfilment attempt is
-- written in the batch that writes its record, no record is ever deleted (a move's cleaning deletes the merchant's rows
-- of every table), and a payment's own rows leave D1 with its history, to R2. The prune found nothing and each index
-- cost a row per insert and per archive delete (~0.8 rows a webhook together).
DROP INDEX `transaction_status_changes_at`;--> statement-breakpoint
DROP INDEX `fulfillment_attempts_at`;
