import type { FulfillmentStatus } from "../db/schema";
import type { VerifiedSnapshot } from "../transactions/apply";
import { captureTime } from "../transactions/state-machine";

/** What the fulfilment rule needs of the merchant. */
export interface FulfillmentSettings {
  fulfillmentUrl: string | null;
  fulfillmentUrlSetAt: string | null;
}

/**
 * How a transaction's first capture is fulfilled (contract.md, "Fulfilment notifications"). Webhooks fulfil whenever a
 * URL is set. A batch read (sync, refresh, reconciliation) notifies only for a capture at or after the moment the URL
 * was set, so a backfill never ships old orders again; with no capture time in the snapshot, its creation time stands in.
 */
export function fulfillmentStatusFor(merchant: FulfillmentSettings, captured: VerifiedSnapshot): FulfillmentStatus {
  if (!merchant.fulfillmentUrl) return "not_configured";
  if (captured.source.kind === "event" || !merchant.fulfillmentUrlSetAt) return "pending";
  const at = Date.parse(captureTime(captured.snapshot) ?? captured.snapshot.created_at);
  return at < Date.parse(merchant.fulfillmentUrlSetAt) ? "backfilled" : "pending";
}
