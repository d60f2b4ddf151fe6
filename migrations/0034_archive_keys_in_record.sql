-- Issue 21 item 5: which archive objects hold part of a record's history is listed in the record's own row
-- (`archive_names`, src/retention/history.ts), written by the UPDATE that already strips the archived histories from
-- the record (src/retention/history-rows.ts): no `archived_histories` row (and its D1 row written) per archived record.
-- A name is the object's R2 key within the merchant's prefix (`history/{merchant}/{name}.ndjson.gz`): the same on every
-- shard, so a move copies it as is (archive_objects ids are per shard and had to be remapped).
-- `archived_histories` stays for one release: the code shipped with this migration never writes it and reads it beside
-- the column (old code still writes and reads it between this migration and the deploy); the next release folds what
-- is left in it into the column and drops it. Moves keep carrying it (src/moves/tables.ts) until then.
ALTER TABLE `transactions` ADD `archive_names` text;--> statement-breakpoint
-- The rows stored so far, oldest object first. A merchant fenced or moved away by a move is left alone (its fence
-- triggers would abort the whole migration): its rows are read from the table beside the column.
UPDATE `transactions` SET `archive_names` = (
  SELECT json_group_array(x.name) FROM (
    SELECT substr(o.`key`, length('history/' || o.merchant_id || '/') + 1,
      length(o.`key`) - length('history/' || o.merchant_id || '/') - length('.ndjson.gz')) AS name
    FROM `archived_histories` AS h JOIN `archive_objects` AS o ON o.id = h.archive_id
    WHERE h.merchant_id = `transactions`.merchant_id AND h.transaction_id = `transactions`.id
      AND o.merchant_id = h.merchant_id AND o.status = 'stored'
      AND substr(o.`key`, 1, length('history/' || o.merchant_id || '/')) = 'history/' || o.merchant_id || '/'
      AND substr(o.`key`, -length('.ndjson.gz')) = '.ndjson.gz'
    ORDER BY o.id) AS x)
WHERE EXISTS (SELECT 1 FROM `archived_histories` AS h JOIN `archive_objects` AS o ON o.id = h.archive_id
    WHERE h.merchant_id = `transactions`.merchant_id AND h.transaction_id = `transactions`.id
      AND o.merchant_id = h.merchant_id AND o.status = 'stored'
      AND substr(o.`key`, 1, length('history/' || o.merchant_id || '/')) = 'history/' || o.merchant_id || '/'
      AND substr(o.`key`, -length('.ndjson.gz')) = '.ndjson.gz')
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));
