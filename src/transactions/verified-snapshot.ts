import type { TransactionRead } from "../smart-router/client";
import type { SmartRouterEvent } from "../smart-router/schemas";
import type { VerifiedSnapshot } from "./apply";

/**
 * The snapshot a verified event stands for: the transaction read from the API when the event came without its
 * operations (a read: the event gets no inbox entry of its own), else the event's own with `inbox`; null when the event
 * carries no transaction. The one builder for the webhook consumer and the event-log backstop.
 */
export function snapshotOfVerifiedEvent({
  merchantId,
  event,
  read,
  inbox,
}: {
  merchantId: string;
  event: SmartRouterEvent;
  read: TransactionRead | undefined;
  inbox: NonNullable<VerifiedSnapshot["inbox"]>;
}): VerifiedSnapshot | null {
  const transaction = read?.transaction ?? event.data?.transaction;
  if (!transaction) return null;
  return {
    merchantId,
    snapshot: transaction,
    source: read
      ? { kind: "read", readAt: read.readAt }
      : { kind: "event", eventId: event.id, eventName: event.name, firedAt: event.fired_at },
    inbox: read ? undefined : inbox,
  };
}
