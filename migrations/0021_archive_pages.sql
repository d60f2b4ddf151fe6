-- Hand-written (issue 21): dead letters (on each shard) and the admin audit (on DB) move to R2 in pages instead of
-- being deleted or kept for ever (src/retention/pages.ts). One row per page object: `writing` from its claim, with the
-- exact ids it holds, until those rows left D1 in the batch that marks it `stored`.
CREATE TABLE `archive_pages` (
	`id` integer PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`scope` text NOT NULL,
	`key` text NOT NULL,
	`status` text NOT NULL,
	`ids` text,
	`first_at` text NOT NULL,
	`first_id` text NOT NULL,
	`last_at` text NOT NULL,
	`last_id` text NOT NULL,
	`entries` integer NOT NULL,
	`bytes` integer,
	`created_at` text NOT NULL,
	`stored_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `archive_pages_key` ON `archive_pages` (`key`);--> statement-breakpoint
-- Claims are exclusive per merchant: a second `writing` page of the same kind and scope is refused.
CREATE UNIQUE INDEX `archive_pages_one_writing` ON `archive_pages` (`kind`,`scope`) WHERE "archive_pages"."status" = 'writing';--> statement-breakpoint
-- The archived lists walk pages newest first, of one merchant or of them all (GET /admin/dead-letters?archived=true, GET /admin/audit).
CREATE INDEX `archive_pages_listing` ON `archive_pages` (`kind`,`scope`,`first_at`,`first_id`);
