ALTER TABLE `merchants` ADD `fulfillment_url_set_at` text;--> statement-breakpoint
-- Merchants that already had a fulfillment URL: fulfilment began when they were created.
UPDATE `merchants` SET `fulfillment_url_set_at` = `created_at` WHERE `fulfillment_url` IS NOT NULL;
--> statement-breakpoint
-- snapshot_version was "count|latest operation|latest timestamp"; it is now "count|source time" (state-machine.ts).
-- The source time of a stored record is its event's fired_at, or for a record from an API read the latest time the
-- old version knew (the read was no earlier than that).
UPDATE `transactions` SET `snapshot_version` = substr(`snapshot_version`, 1, 7) || coalesce(
  strftime('%Y-%m-%dT%H:%M:%f', `last_event_fired_at`) || '000Z',
  strftime('%Y-%m-%dT%H:%M:%f', max(
    substr(substr(`snapshot_version`, 8), 1, instr(substr(`snapshot_version`, 8), '|') - 1),
    substr(substr(`snapshot_version`, 8), instr(substr(`snapshot_version`, 8), '|') + 1)
  )) || '000Z',
  ''
) WHERE instr(substr(`snapshot_version`, 8), '|') > 0;
