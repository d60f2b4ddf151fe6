-- Issue 20, one key lookup on one database (src/merchants/api-keys.ts): the key -> shard directory, read and written on
-- DB (shard 0) only. Keys of merchants on DB are entered here at once (merchant_shards exists on DB only, so on another
-- shard the INSERT finds nothing); the keys of other shards are entered by the cron's backfill (`api_key_directory` step).
CREATE TABLE `api_key_directory` (
	`key_id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`shard` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
ALTER TABLE `api_keys` ADD `listed_in_directory` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX `api_keys_unlisted` ON `api_keys` (`id`) WHERE "api_keys"."listed_in_directory" = 0;--> statement-breakpoint
INSERT INTO `api_key_directory` (`key_id`, `merchant_id`, `shard`, `created_at`)
	SELECT `api_keys`.`id`, `api_keys`.`merchant_id`, 0, `api_keys`.`created_at` FROM `api_keys`
	JOIN `merchant_shards` ON `merchant_shards`.`merchant_id` = `api_keys`.`merchant_id` AND `merchant_shards`.`shard` = 0;--> statement-breakpoint
UPDATE `api_keys` SET `listed_in_directory` = 1
	WHERE `merchant_id` IN (SELECT `merchant_id` FROM `merchant_shards` WHERE `shard` = 0);
