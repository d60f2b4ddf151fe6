-- Issue 21 item 5: `transactions_status_updated` (status, updated_at; no merchant_id) goes: each record inserted wrote an
-- entry (~65 B a payment). It served two reads: the list's status + updated_after page, which now names
-- `transactions_merchant_status_updated` (src/transactions/queries.ts; 0006 dropped the index once and 0008 restored it
-- because the planner, without statistics, took `transactions_merchant_updated` for that page), and the refund alert's
-- scan of changed captures across merchants, which now walks each merchant's changes in `transactions_merchant_updated`
-- from a watermark of its own (src/alerts/evaluate.ts).
DROP INDEX IF EXISTS `transactions_status_updated`;--> statement-breakpoint
-- `alert_scans` keyed by (merchant, scan): one watermark per merchant, and the row of merchant '' saying the scan has
-- started on the shard. WITHOUT ROWID: the key is the table. `scanned_at`: runs read the least recently read first.
CREATE TABLE `__new_alert_scans` (
	`merchant_id` text NOT NULL,
	`name` text NOT NULL,
	`updated_at` text NOT NULL,
	`transaction_id` text NOT NULL,
	`scanned_at` text NOT NULL,
	PRIMARY KEY(`merchant_id`, `name`)
) WITHOUT ROWID;--> statement-breakpoint
-- Each merchant starts where the shard-wide watermark stood, exactly: in its old order (updated_at, merchant_id, id), the
-- records changed at the watermark's instant were read for a merchant before its merchant, up to its id for its own,
-- none for a merchant after it. scanned_at '': none read yet.
INSERT INTO `__new_alert_scans` (`merchant_id`, `name`, `updated_at`, `transaction_id`, `scanned_at`)
SELECT m.`id`, s.`name`, s.`updated_at`,
	CASE
		WHEN m.`id` < s.`merchant_id` THEN coalesce((SELECT max(t.`id`) FROM `transactions` AS t WHERE t.`merchant_id` = m.`id` AND t.`updated_at` = s.`updated_at`), '')
		WHEN m.`id` = s.`merchant_id` THEN s.`transaction_id`
		ELSE ''
	END, ''
FROM `alert_scans` AS s CROSS JOIN `merchants` AS m;--> statement-breakpoint
INSERT INTO `__new_alert_scans` (`merchant_id`, `name`, `updated_at`, `transaction_id`, `scanned_at`)
SELECT '', `name`, '', '', '' FROM `alert_scans`;--> statement-breakpoint
DROP TABLE `alert_scans`;--> statement-breakpoint
ALTER TABLE `__new_alert_scans` RENAME TO `alert_scans`;--> statement-breakpoint
-- A merchant's watermarks move with it (src/moves/tables.ts), so a moved merchant's changes are not read twice.
CREATE TRIGGER `move_fence_alert_scans_insert` BEFORE INSERT ON `alert_scans`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_alert_scans_insert` AFTER INSERT ON `alert_scans`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'alert_scans', json_array(NEW.merchant_id, NEW.name)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_alert_scans_update` BEFORE UPDATE ON `alert_scans`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_alert_scans_update` AFTER UPDATE ON `alert_scans`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'alert_scans', json_array(NEW.merchant_id, NEW.name)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_alert_scans_delete` BEFORE DELETE ON `alert_scans`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_alert_scans_delete` AFTER DELETE ON `alert_scans`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'alert_scans', json_array(OLD.merchant_id, OLD.name)); END;
