-- Issue 21 item 5, the contract half of 0030 and 0034: what is still in `operations`, `transaction_status_changes` and
-- `archived_histories` is merged into the record's columns (as 0030 and 0034 backfilled them, each element once) and
-- then deleted from the table, so the code of the release before (which reads each table beside its column) finds
-- nothing beside and answers the same; the code shipped with this migration reads the columns only. The tables stay
-- (that code still reads them until the deploy: a dropped table would fail its reads); the next release drops them
-- (docs/plans/drop-legacy-history-tables.md). Every statement is idempotent: run twice, the second changes nothing.
-- Left alone, and why:
-- * a merchant fenced or moved away by a move (`move_marks`): the fence triggers of `transactions` abort an UPDATE of
--   its records, which would fail the whole migration; its rows stay in the tables (the next release merges them again
--   before dropping them; a moved merchant's rows here are leftovers the target holds);
-- * a row whose record is absent (a move's cleaning or undo midway): nothing reads it, it is not merged nor deleted.
-- Only rows whose element the record's column now holds are deleted.
--
-- The `writing` archive claims whose manifest names rows of `transaction_status_changes` by their ids: once those rows
-- are in the record's history, the read-back of the claim would miss them and leave it writing for an operator. The
-- claim is dropped (nothing left D1 yet: only its finish deletes, and a late finish acts only while it is `writing`);
-- the next run claims the same range again from the cursor, which only the finish moves.
DELETE FROM `archive_objects` WHERE `status` = 'writing'
  AND json_array_length(`manifest`, '$.statusChanges') > 0
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `archive_objects`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
-- Operations: the record's entries first, as stored, then the table's rows it lacks (by operation id), oldest first,
-- each built as 0030 built it (null members left out). Readers sort by (created_at, id) anyway.
UPDATE `transactions` SET `operation_history` = (
  SELECT json_group_array(json(m.v)) FROM (
    SELECT s.value AS v, 0 AS src, s.key AS pos, '' AS created_at, '' AS id FROM json_each(`transactions`.operation_history) AS s
    UNION ALL
    SELECT json_patch('{}', json_object(
      'id', o.id, 'type', o.type, 'amount', o.amount, 'currency', o.currency,
      'is_attempt', json(CASE WHEN o.is_attempt THEN 'true' ELSE 'false' END),
      'has_failed', json(CASE o.has_failed WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
      'is_accountable', json(CASE o.is_accountable WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
      'gateway_operation_id', o.gateway_operation_id, 'error_code', o.error_code, 'error_message', o.error_message,
      'payment_type', o.payment_type, 'metadata', json(o.metadata), 'created_at', o.created_at)), 1, 0, o.created_at, o.id
    FROM `operations` AS o
    WHERE o.merchant_id = `transactions`.merchant_id AND o.transaction_id = `transactions`.id
      AND o.id NOT IN (SELECT s2.value ->> '$.id' FROM json_each(`transactions`.operation_history) AS s2)
    ORDER BY 2, 3, 4, 5) AS m)
WHERE (`merchant_id`, `id`) IN (SELECT o.merchant_id, o.transaction_id FROM `operations` AS o)
  AND EXISTS (SELECT 1 FROM `operations` AS o WHERE o.merchant_id = `transactions`.merchant_id AND o.transaction_id = `transactions`.id
    AND o.id NOT IN (SELECT s2.value ->> '$.id' FROM json_each(`transactions`.operation_history) AS s2))
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
DELETE FROM `operations` WHERE EXISTS (SELECT 1 FROM `transactions` AS t, json_each(t.operation_history) AS j
    WHERE t.merchant_id = `operations`.merchant_id AND t.id = `operations`.transaction_id AND j.value ->> '$.id' = `operations`.id)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `operations`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
-- Status changes: a row the history lacks (same at, from, to and event) goes before the first entry stamped after it,
-- else at the end; the entries keep their order (the archive strips "the first k", the upsert compares the last).
UPDATE `transactions` SET `status_history` = (
  SELECT json_group_array(json(m.v)) FROM (
    SELECT s.value AS v, s.key AS pos, 1 AS src, '' AS at, 0 AS id FROM json_each(`transactions`.status_history) AS s
    UNION ALL
    SELECT json_patch('{}', json_object('at', c.at, 'from', c.from_status, 'to', c.to_status,
        'event_id', c.event_id, 'event_name', c.event_name, 'read_at', c.read_at)),
      coalesce((SELECT min(s3.key) FROM json_each(`transactions`.status_history) AS s3 WHERE s3.value ->> '$.at' > c.at), 9e18),
      0, c.at, c.id
    FROM `transaction_status_changes` AS c
    WHERE c.merchant_id = `transactions`.merchant_id AND c.transaction_id = `transactions`.id
      AND NOT EXISTS (SELECT 1 FROM json_each(`transactions`.status_history) AS s2 WHERE s2.value ->> '$.at' = c.at
        AND s2.value ->> '$.to' = c.to_status AND (s2.value ->> '$.from') IS c.from_status AND (s2.value ->> '$.event_id') IS c.event_id)
    ORDER BY 2, 3, 4, 5) AS m)
WHERE (`merchant_id`, `id`) IN (SELECT c.merchant_id, c.transaction_id FROM `transaction_status_changes` AS c)
  AND EXISTS (SELECT 1 FROM `transaction_status_changes` AS c
    WHERE c.merchant_id = `transactions`.merchant_id AND c.transaction_id = `transactions`.id
      AND NOT EXISTS (SELECT 1 FROM json_each(`transactions`.status_history) AS s2 WHERE s2.value ->> '$.at' = c.at
        AND s2.value ->> '$.to' = c.to_status AND (s2.value ->> '$.from') IS c.from_status AND (s2.value ->> '$.event_id') IS c.event_id))
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
DELETE FROM `transaction_status_changes` WHERE EXISTS (SELECT 1 FROM `transactions` AS t, json_each(t.status_history) AS s
    WHERE t.merchant_id = `transaction_status_changes`.merchant_id AND t.id = `transaction_status_changes`.transaction_id
      AND s.value ->> '$.at' = `transaction_status_changes`.at AND s.value ->> '$.to' = `transaction_status_changes`.to_status
      AND (s.value ->> '$.from') IS `transaction_status_changes`.from_status
      AND (s.value ->> '$.event_id') IS `transaction_status_changes`.event_id)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transaction_status_changes`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
-- Archive names: a stored object's name (its key within the merchant's prefix, as 0034 took it) the record does not list
-- goes before the first listed object written after it, else at the end: oldest object first, as 0034 and the finish
-- list them.
UPDATE `transactions` SET `archive_names` = (
  SELECT json_group_array(m.name) FROM (
    SELECT n.value AS name, n.key AS pos, 1 AS src, 0 AS id FROM json_each(`transactions`.archive_names) AS n
    UNION ALL
    SELECT x.name,
      coalesce((SELECT min(n3.key) FROM json_each(`transactions`.archive_names) AS n3 JOIN `archive_objects` AS o3
        ON o3.`key` = 'history/' || `transactions`.merchant_id || '/' || n3.value || '.ndjson.gz' WHERE o3.id > x.id), 9e18),
      0, x.id
    FROM (SELECT o.id, substr(o.`key`, length('history/' || o.merchant_id || '/') + 1,
        length(o.`key`) - length('history/' || o.merchant_id || '/') - length('.ndjson.gz')) AS name
      FROM `archived_histories` AS h JOIN `archive_objects` AS o ON o.id = h.archive_id
      WHERE h.merchant_id = `transactions`.merchant_id AND h.transaction_id = `transactions`.id
        AND o.merchant_id = h.merchant_id AND o.status = 'stored'
        AND substr(o.`key`, 1, length('history/' || o.merchant_id || '/')) = 'history/' || o.merchant_id || '/'
        AND substr(o.`key`, -length('.ndjson.gz')) = '.ndjson.gz') AS x
    WHERE x.name NOT IN (SELECT n2.value FROM json_each(`transactions`.archive_names) AS n2)
    ORDER BY 2, 3, 4) AS m)
WHERE (`merchant_id`, `id`) IN (SELECT h.merchant_id, h.transaction_id FROM `archived_histories` AS h)
  AND EXISTS (SELECT 1 FROM `archived_histories` AS h JOIN `archive_objects` AS o ON o.id = h.archive_id
    WHERE h.merchant_id = `transactions`.merchant_id AND h.transaction_id = `transactions`.id
      AND o.merchant_id = h.merchant_id AND o.status = 'stored'
      AND substr(o.`key`, 1, length('history/' || o.merchant_id || '/')) = 'history/' || o.merchant_id || '/'
      AND substr(o.`key`, -length('.ndjson.gz')) = '.ndjson.gz'
      AND o.`key` NOT IN (SELECT 'history/' || o.merchant_id || '/' || n2.value || '.ndjson.gz' FROM json_each(`transactions`.archive_names) AS n2))
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
DELETE FROM `archived_histories` WHERE EXISTS (SELECT 1 FROM `transactions` AS t, json_each(t.archive_names) AS n
    JOIN `archive_objects` AS o ON o.id = `archived_histories`.archive_id
    WHERE t.merchant_id = `archived_histories`.merchant_id AND t.id = `archived_histories`.transaction_id
      AND o.`key` = 'history/' || t.merchant_id || '/' || n.value || '.ndjson.gz')
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `archived_histories`.merchant_id AND k.state IN ('fenced', 'moved'));
