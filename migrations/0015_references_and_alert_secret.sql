-- Issue 22, items 5 and 6.
-- Finding a payment by the merchant's own reference (src/transactions/references.ts): one row per reference a
-- transaction carries (Smart Router's invoice_id, its name, its metadata order_id and reference, text of 1-200
-- characters), written in the same D1 batch as the record. Looked up by (merchant_id, reference); replaced by
-- (merchant_id, transaction_id) when the record changes.
CREATE TABLE `transaction_references` (
	`merchant_id` text NOT NULL,
	`reference` text NOT NULL,
	`transaction_id` text NOT NULL,
	PRIMARY KEY(`merchant_id`, `reference`, `transaction_id`)
);
--> statement-breakpoint
CREATE INDEX `transaction_references_transaction` ON `transaction_references` (`merchant_id`,`transaction_id`);--> statement-breakpoint
-- The records stored before this migration: the same rule as the apply's statement, in one pass over transactions.
INSERT INTO `transaction_references` (`merchant_id`, `reference`, `transaction_id`)
	SELECT DISTINCT t.`merchant_id`, v.value, t.`id` FROM `transactions` AS t
	JOIN json_each(json_array(t.`invoice_id`, t.`name`, t.`metadata` ->> '$.order_id', t.`metadata` ->> '$.reference')) AS v
	WHERE v.type = 'text' AND length(v.value) BETWEEN 1 AND 200
	ON CONFLICT DO NOTHING;--> statement-breakpoint
-- Alert notifications get their own signing secret (src/merchants/signing-secret.ts), sealed like the fulfilment one.
-- Merchants with an alert URL and no alert secret get none here (sealing needs SECRETS_KEY): their notifications wait
-- until the operator rotates one (POST /admin/merchants/{id}/alert-secret); they are never signed with another secret.
ALTER TABLE `merchants` ADD `alert_secret_ciphertext` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `alert_secret_key_id` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `alert_secret_previous_ciphertext` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `alert_secret_previous_key_id` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `alert_secret_previous_valid_until` text;--> statement-breakpoint
-- fulfillment_failing stays open while a notification is dead-lettered, until it is delivered or acknowledged.
ALTER TABLE `fulfillments` ADD `failure_acknowledged_at` text;--> statement-breakpoint
CREATE INDEX `fulfillments_failed_unacknowledged` ON `fulfillments` (`merchant_id`,`requested_at`) WHERE "fulfillments"."status" = 'failed' AND "fulfillments"."failure_acknowledged_at" IS NULL;--> statement-breakpoint
ALTER TABLE `alerts` ADD `acknowledged_at` text;
