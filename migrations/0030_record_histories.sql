-- Issue 21 item 5: a record's histories in its own row (src/db/operation-history.ts, src/db/status-history.ts): no D1
-- row per operation or status change (each cost its row and its index entry, and retention's delete of both).
-- `operations` stays for one release: the code shipped with this migration never writes it and reads it beside the
-- column (old code may still read it between this migration and the deploy); 0032 (the next release) drops it.
-- `transaction_status_changes` is folded and emptied here (its rows have no id of their own to read them once beside
-- the column); rows old code writes before the deploy are read beside the column until 0032 drops the table.
-- The record is a rowid table again (0026 made it WITHOUT ROWID): an index b-tree, which a WITHOUT ROWID table is, keeps
-- at most ~1,000 B of a row in its page and puts the rest in an overflow page of its own, so a record with its
-- histories (often 1-2 KB) took ~4.7 KB; a rowid table keeps rows up to ~4 KB in the page. The cost: the key's
-- autoindex entry again, one D1 row per record inserted (docs/benchmarks.md, step 12). Rebuilt with the two history
-- columns, its indexes and the move triggers of 0026, as they were.
CREATE TABLE `__new_transactions` (
	`merchant_id` text NOT NULL,
	`id` text NOT NULL,
	`project_id` text NOT NULL,
	`invoice_id` text,
	`customer_id` text,
	`name` text,
	`payment_type` text,
	`gateway_name` text,
	`status` text NOT NULL,
	`currency` text NOT NULL,
	`amount` text NOT NULL,
	`authorized_amount` text NOT NULL,
	`captured_amount` text NOT NULL,
	`refunded_amount` text NOT NULL,
	`available_amount` text NOT NULL,
	`voided_amount` text NOT NULL,
	`metadata` text NOT NULL,
	`sandbox` integer NOT NULL,
	`error_code` text,
	`error_message` text,
	`three_d_s_status` text,
	`chargedback` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL,
	`snapshot_version` text NOT NULL,
	`last_event_id` text,
	`last_event_name` text,
	`last_event_fired_at` text,
	`updated_at` text NOT NULL, `reconciled_at` text, `status_changes` integer DEFAULT 0 NOT NULL,
	`operation_history` text,
	`status_history` text,
	PRIMARY KEY(`merchant_id`, `id`),
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);--> statement-breakpoint
INSERT INTO `__new_transactions` (`merchant_id`, `id`, `project_id`, `invoice_id`, `customer_id`, `name`, `payment_type`, `gateway_name`, `status`, `currency`, `amount`, `authorized_amount`, `captured_amount`, `refunded_amount`, `available_amount`, `voided_amount`, `metadata`, `sandbox`, `error_code`, `error_message`, `three_d_s_status`, `chargedback`, `created_at`, `snapshot_version`, `last_event_id`, `last_event_name`, `last_event_fired_at`, `updated_at`, `reconciled_at`, `status_changes`) SELECT `merchant_id`, `id`, `project_id`, `invoice_id`, `customer_id`, `name`, `payment_type`, `gateway_name`, `status`, `currency`, `amount`, `authorized_amount`, `captured_amount`, `refunded_amount`, `available_amount`, `voided_amount`, `metadata`, `sandbox`, `error_code`, `error_message`, `three_d_s_status`, `chargedback`, `created_at`, `snapshot_version`, `last_event_id`, `last_event_name`, `last_event_fired_at`, `updated_at`, `reconciled_at`, `status_changes` FROM `transactions`;--> statement-breakpoint
DROP TABLE `transactions`;--> statement-breakpoint
ALTER TABLE `__new_transactions` RENAME TO `transactions`;--> statement-breakpoint
CREATE INDEX `transactions_merchant_updated` ON `transactions` (`merchant_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_status_updated` ON `transactions` (`merchant_id`,`status`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_reconcile` ON `transactions` (`merchant_id`,(CASE WHEN "reconciled_at" > "updated_at" THEN "reconciled_at" ELSE "updated_at" END),`id`) WHERE "transactions"."status" IN ('waiting', 'pending', 'authorized', 'pending-capture', 'in-review', 'chargeback-initiated', 'retrieval-request', 'fraud-notification');--> statement-breakpoint
CREATE INDEX `transactions_status_updated` ON `transactions` (`status`,`updated_at`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_payment_type_updated` ON `transactions` (`merchant_id`,`payment_type`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_created` ON `transactions` (`merchant_id`,julianday("created_at"),`id`);--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_insert` BEFORE INSERT ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_insert` AFTER INSERT ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transactions', json_array(NEW.merchant_id, NEW.id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_update` BEFORE UPDATE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_update` AFTER UPDATE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transactions', json_array(NEW.merchant_id, NEW.id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_delete` BEFORE DELETE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_delete` AFTER DELETE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transactions', json_array(OLD.merchant_id, OLD.id)); END;--> statement-breakpoint
-- The rows stored so far, as the writer stores them (null members left out). A merchant fenced or moved away by a move
-- is left alone (its fence triggers would abort the whole migration): its rows are read from the tables until 0032.
UPDATE `transactions` SET `operation_history` = (
  SELECT json_group_array(json_patch('{}', json_object(
    'id', o.id, 'type', o.type, 'amount', o.amount, 'currency', o.currency,
    'is_attempt', json(CASE WHEN o.is_attempt THEN 'true' ELSE 'false' END),
    'has_failed', json(CASE o.has_failed WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
    'is_accountable', json(CASE o.is_accountable WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
    'gateway_operation_id', o.gateway_operation_id, 'error_code', o.error_code, 'error_message', o.error_message,
    'payment_type', o.payment_type, 'metadata', json(o.metadata), 'created_at', o.created_at)))
  FROM `operations` AS o WHERE o.merchant_id = `transactions`.merchant_id AND o.transaction_id = `transactions`.id)
WHERE EXISTS (SELECT 1 FROM `operations` AS o WHERE o.merchant_id = `transactions`.merchant_id AND o.transaction_id = `transactions`.id)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
UPDATE `transactions` SET `status_history` = (
  SELECT json_group_array(json_patch('{}', json_object('at', h.at, 'from', h.from_status, 'to', h.to_status,
    'event_id', h.event_id, 'event_name', h.event_name, 'read_at', h.read_at)))
  FROM (SELECT * FROM `transaction_status_changes` AS c
    WHERE c.merchant_id = `transactions`.merchant_id AND c.transaction_id = `transactions`.id ORDER BY c.id) AS h)
WHERE EXISTS (SELECT 1 FROM `transaction_status_changes` AS c WHERE c.merchant_id = `transactions`.merchant_id AND c.transaction_id = `transactions`.id)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
DELETE FROM `transaction_status_changes` WHERE EXISTS (SELECT 1 FROM `transactions` AS t
  WHERE t.merchant_id = `transaction_status_changes`.merchant_id AND t.id = `transaction_status_changes`.transaction_id
    AND t.status_history IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transaction_status_changes`.merchant_id AND k.state IN ('fenced', 'moved'));
