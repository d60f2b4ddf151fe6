-- Issue 21 item 5: `GET /v1/pipeline` counts the first deliveries folded into the inbox (0024) from a per-merchant,
-- per-minute table (src/transactions/pipeline-minutes.ts) written once per (merchant, minute) an inbox write changes,
-- in the same D1 batch, instead of reading `events_first_delivery`, whose entry cost one D1 row written per webhook.
-- WITHOUT ROWID: the key is the only b-tree (one row written per row changed). Merchant data: moved (src/moves/tables.ts),
-- with the move triggers of 0022 (key: merchant_id, minute). Pruned past 1,500 minutes (src/retention/prune.ts).
CREATE TABLE `pipeline_minutes` (
	`merchant_id` text NOT NULL,
	`minute` text NOT NULL,
	`pending` integer DEFAULT 0 NOT NULL,
	`applied` integer DEFAULT 0 NOT NULL,
	`stale` integer DEFAULT 0 NOT NULL,
	`rejected` integer DEFAULT 0 NOT NULL,
	`ignored` integer DEFAULT 0 NOT NULL,
	`lags` text DEFAULT '[]' NOT NULL,
	PRIMARY KEY(`merchant_id`, `minute`)
) WITHOUT ROWID;--> statement-breakpoint
CREATE TRIGGER `move_fence_pipeline_minutes_insert` BEFORE INSERT ON `pipeline_minutes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_pipeline_minutes_insert` AFTER INSERT ON `pipeline_minutes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'pipeline_minutes', json_array(NEW.merchant_id, NEW.minute)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_pipeline_minutes_update` BEFORE UPDATE ON `pipeline_minutes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_pipeline_minutes_update` AFTER UPDATE ON `pipeline_minutes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'pipeline_minutes', json_array(NEW.merchant_id, NEW.minute)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_pipeline_minutes_delete` BEFORE DELETE ON `pipeline_minutes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_pipeline_minutes_delete` AFTER DELETE ON `pipeline_minutes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'pipeline_minutes', json_array(OLD.merchant_id, OLD.minute)); END;--> statement-breakpoint
-- The last day's first deliveries (and an hour's margin), as the inbox holds them now, so the pipeline answers the same
-- right after the deploy, read per merchant through `events_first_delivery` (still there: it goes last). Idempotent (a
-- row is set, not added to). A merchant with a move under way is left out: its
-- triggers would fence the whole migration or log rows the running move's code does not know; its counters start empty.
INSERT INTO `pipeline_minutes` (`merchant_id`, `minute`, `pending`, `applied`, `stale`, `rejected`, `ignored`, `lags`)
SELECT e.`merchant_id`, substr(e.`first_received_at`, 1, 16),
  sum(e.`outcome` = 'pending'), sum(e.`outcome` = 'applied'), sum(e.`outcome` = 'stale'), sum(e.`outcome` = 'rejected'),
  sum(e.`outcome` = 'ignored'),
  json_group_array(CAST(round((julianday(e.`processed_at`) - julianday(e.`first_received_at`)) * 86400000) AS INTEGER))
    FILTER (WHERE e.`outcome` = 'applied')
FROM `merchants` AS m CROSS JOIN `events` AS e ON e.`merchant_id` = m.`id` AND e.`first_delivery_id` IS NOT NULL
  AND e.`first_received_at` >= strftime('%Y-%m-%dT%H:%M', 'now', '-1500 minutes')
WHERE NOT EXISTS (SELECT 1 FROM `move_marks` AS mm WHERE mm.`merchant_id` = m.`id`)
GROUP BY e.`merchant_id`, substr(e.`first_received_at`, 1, 16)
ON CONFLICT (`merchant_id`, `minute`) DO UPDATE SET `pending` = excluded.`pending`, `applied` = excluded.`applied`,
  `stale` = excluded.`stale`, `rejected` = excluded.`rejected`, `ignored` = excluded.`ignored`, `lags` = excluded.`lags`;--> statement-breakpoint
DROP INDEX IF EXISTS `events_first_delivery`;
