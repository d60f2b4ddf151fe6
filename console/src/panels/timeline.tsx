// One payment: its record (`GET /v1/transactions/{id}`) and its timeline (`GET /v1/transactions/{id}/timeline`):
// every delivery received, each fetch-back (and any wait at the pacer), each state change with what caused it, and each
// fulfilment attempt with its answer.
import type { Timeline, TimelineEntry, TimelineKind, Transaction } from "../api-shapes";
import { formatClock } from "../format";
import { href } from "../route";
import { Badge, ResourceNotice, Section, When } from "../ui";
import { useResource } from "../use-resource";
import { EndpointMessagesSection } from "./endpoint-messages";

const REFRESH_MS = 10_000;

const KIND_LABELS: Record<TimelineKind, string> = {
  delivery: "Delivery received",
  fetch_back: "Fetch-back",
  state_change: "State change",
  fulfillment_attempt: "Fulfilment attempt",
};

/** The page of one payment. */
export function TimelinePanel({ transactionId }: { transactionId: string }) {
  const base = `/v1/transactions/${encodeURIComponent(transactionId)}`;
  const [record] = useResource<{ transaction: Transaction }>(base, REFRESH_MS);
  const [timeline] = useResource<Timeline>(`${base}/timeline`, REFRESH_MS);
  const missing = record.state === "unavailable";

  return (
    <div class="panel" data-panel="timeline">
      <p>
        <a href={href("payments")}>← Payments</a>
      </p>
      <Section title={`Payment ${transactionId}`}>
        {missing ? (
          <p class="notice notice-unavailable">No payment {transactionId} for this merchant.</p>
        ) : (
          <ResourceNotice resource={record} what="the payment" />
        )}
        {record.state === "ready" && <PaymentSummary transaction={record.data.transaction} />}
      </Section>
      {!missing && (
        <Section title="Timeline">
          <ResourceNotice resource={timeline} what="the timeline" />
          {timeline.state === "ready" && <TimelineList entries={timeline.data.timeline} />}
        </Section>
      )}
      {!missing && <EndpointMessagesSection transactionId={transactionId} />}
    </div>
  );
}

function PaymentSummary({ transaction: t }: { transaction: Transaction }) {
  return (
    <dl class="facts facts-grid">
      <dt>Status</dt>
      <dd>
        <Badge label={t.status} />
      </dd>
      <dt>Amount</dt>
      <dd class="mono">
        {t.amount} {t.currency}
      </dd>
      <dt>Authorized / captured</dt>
      <dd class="mono">
        {t.authorized_amount} / {t.captured_amount}
      </dd>
      <dt>Refunded / available</dt>
      <dd class="mono">
        {t.refunded_amount} / {t.available_amount}
      </dd>
      <dt>Payment type</dt>
      <dd>
        {t.payment_type ?? "—"}
        {t.gateway_name && <span class="muted"> via {t.gateway_name}</span>}
      </dd>
      <dt>Fulfilment</dt>
      <dd>
        <Badge label={t.fulfillment.status} /> {t.fulfillment.delivered_at && <When iso={t.fulfillment.delivered_at} />}
      </dd>
      <dt>Created at Smart Router</dt>
      <dd>
        <When iso={t.created_at} />
      </dd>
      <dt>Record updated</dt>
      <dd>
        <When iso={t.updated_at} ago />
      </dd>
      <dt>Last event</dt>
      <dd class="mono">{t.last_event ? `${t.last_event.name ?? "?"} (${t.last_event.id})` : "— (from a batch)"}</dd>
    </dl>
  );
}

function TimelineList({ entries }: { entries: TimelineEntry[] }) {
  if (entries.length === 0) return <p class="notice">Nothing recorded for this payment yet.</p>;
  const counts = new Map<TimelineKind, number>();
  for (const entry of entries) counts.set(entry.kind, (counts.get(entry.kind) ?? 0) + 1);
  const duplicates = entries.filter((e) => e.kind === "delivery" && e.detail.duplicate === true).length;
  let day = "";
  return (
    <>
      <p class="muted">
        {(Object.keys(KIND_LABELS) as TimelineKind[])
          .map((kind) => `${counts.get(kind) ?? 0} × ${KIND_LABELS[kind].toLowerCase()}`)
          .join(" · ")}
        {duplicates > 0 && ` (${duplicates} duplicate ${duplicates === 1 ? "delivery" : "deliveries"})`}
      </p>
      <ol class="timeline">
        {entries.map((entry, index) => {
          const entryDay = new Date(entry.at).toDateString();
          const newDay = entryDay !== day;
          day = entryDay;
          return (
            <li key={`${entry.at}-${index}`} class={`timeline-entry timeline-${entry.kind}`} data-kind={entry.kind}>
              <div class="timeline-time">
                {newDay && <div class="muted small">{entryDay}</div>}
                <time dateTime={entry.at} title={entry.at}>
                  {formatClock(entry.at)}
                </time>
              </div>
              <div class="timeline-body">
                <div>
                  <span class="timeline-kind">{KIND_LABELS[entry.kind] ?? entry.kind}</span>
                  {entry.kind === "delivery" && entry.detail.duplicate === true && <Badge label="duplicate" tone="warn" />}
                  <span class="timeline-summary">{entry.summary}</span>
                </div>
                <DetailList detail={entry.detail} />
              </div>
            </li>
          );
        })}
      </ol>
    </>
  );
}

/** The entry's detail as `name value` pairs; a nested object (e.g. a state change's cause) adds its own pairs. */
function DetailList({ detail }: { detail: Record<string, unknown> }) {
  const pairs = flatten(detail, "");
  if (pairs.length === 0) return null;
  return (
    <dl class="detail">
      {pairs.map(([name, value]) => (
        <div key={name} class="detail-pair">
          <dt>{name}</dt>
          <dd class="mono">{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function flatten(detail: Record<string, unknown>, prefix: string): [string, string][] {
  return Object.entries(detail).flatMap(([key, value]): [string, string][] => {
    const name = `${prefix}${key.replaceAll("_", " ")}`;
    if (value === null || value === undefined) return [];
    if (typeof value === "object" && !Array.isArray(value)) return flatten(value as Record<string, unknown>, `${name} `);
    return [[name, typeof value === "object" ? JSON.stringify(value) : String(value)]];
  });
}
