import { endpointDisabledVerdict } from "../alerts/rules";
import { openAlerts } from "../alerts/store";
import { runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import type { AlertSettings } from "../db/schema";
import type { EndpointRow } from "./secrets";

/**
 * Opens the merchant's `endpoint_disabled` alert as an endpoint is disabled (one open per merchant: a second disabled
 * endpoint finds it open). The alert run rechecks it, names every disabled endpoint, and resolves it once none is left.
 */
export async function openEndpointDisabledAlert({
  db,
  endpoint,
  settings,
  now,
}: {
  db: Database;
  endpoint: EndpointRow;
  settings: AlertSettings | null;
  now: number;
}): Promise<void> {
  const detail = endpointDisabledVerdict({ disabledEndpoints: [endpoint.id] });
  if (detail === null) return;
  const statements = openAlerts({
    openings: [{ merchantId: endpoint.merchantId, kind: "endpoint_disabled", transactionId: null, detail, settings }],
    now,
  });
  await runBatch(db.$client, statements);
}
