// Small building blocks shared by the panels.
import type { ComponentChildren } from "preact";
import { type ApiFailure, describeFailure } from "./api";
import { formatAgo, formatTime } from "./format";
import type { PagedList, Resource } from "./use-resource";

/** An instant in local time, with the API's ISO value as tooltip; `ago` adds how long ago it was. */
export function When({ iso, ago = false }: { iso: string | null; ago?: boolean }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {formatTime(iso)}
      {ago && <span class="muted"> ({formatAgo(iso)})</span>}
    </time>
  );
}

/** A status as a coloured pill; `tone` picks the colour, else it follows the word. */
export function Badge({ label, tone }: { label: string; tone?: Tone }) {
  return <span class={`badge badge-${tone ?? toneOf(label)}`}>{label}</span>;
}

type Tone = "good" | "bad" | "warn" | "info" | "neutral";

const TONES: Record<string, Tone> = {
  completed: "good",
  delivered: "good",
  closed: "good",
  resolved: "good",
  applied: "good",
  authorized: "info",
  running: "info",
  queued: "neutral",
  pending: "warn",
  waiting: "warn",
  "pending-capture": "warn",
  half_open: "warn",
  open: "bad",
  failed: "bad",
  blocked: "bad",
  rejected: "bad",
  cancelled: "neutral",
  voided: "neutral",
  refunded: "neutral",
  "partially-refunded": "neutral",
  "chargeback-initiated": "bad",
  reversed: "bad",
};

function toneOf(label: string): Tone {
  return TONES[label] ?? "neutral";
}

/** One figure with its label; `tone` marks figures that need attention. */
export function Figure({ label, value, hint, tone }: { label: string; value: ComponentChildren; hint?: string; tone?: Tone }) {
  return (
    <div class={`figure${tone ? ` figure-${tone}` : ""}`} data-figure={label}>
      <div class="figure-label">{label}</div>
      <div class="figure-value">{value}</div>
      {hint && <div class="figure-hint">{hint}</div>}
    </div>
  );
}

/** A titled panel section. */
export function Section({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="section">
      <header class="section-head">
        <h2>{title}</h2>
        {actions && <div class="section-actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

/** What a panel shows instead of data: loading, "not available" (404), or the failure. */
export function ResourceNotice<T>({ resource, what }: { resource: Resource<T>; what: string }) {
  if (resource.state === "loading") return <p class="notice">Loading {what}…</p>;
  if (resource.state === "unavailable") {
    return (
      <p class="notice notice-unavailable" data-state="unavailable">
        {what[0]?.toUpperCase()}
        {what.slice(1)}: not available on this deployment ({describeFailure(resource.failure)}).
      </p>
    );
  }
  if (resource.state === "failed") return <FailureNotice failure={resource.failure} />;
  return resource.failure ? <FailureNotice failure={resource.failure} stale /> : null;
}

/** A failed request, inline; `stale` says the figures shown are from the last good answer. */
export function FailureNotice({ failure, stale = false }: { failure: ApiFailure; stale?: boolean }) {
  return (
    <p class="notice notice-error" role="alert">
      {stale && "Refresh failed; showing the last answer. "}
      {describeFailure(failure)}
      {failure.requestId && <span class="request-id"> (request_id {failure.requestId})</span>}
    </p>
  );
}

/** Done and failed as shares of a total, e.g. a batch. */
export function ProgressBar({ done, failed, total, label }: { done: number; failed: number; total: number; label: string }) {
  const share = (n: number) => (total > 0 ? Math.min(100, (n / total) * 100) : 0);
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={total} aria-valuenow={done + failed}>
      <div class="progress-done" style={{ width: `${share(done)}%` }} />
      <div class="progress-failed" style={{ width: `${share(failed)}%` }} />
    </div>
  );
}

/** The "older items" button of a paged list, and the failure of its last try. */
export function MoreButton<T>({ list, label }: { list: PagedList<T>; label: string }) {
  return (
    <>
      {list.moreFailure && <FailureNotice failure={list.moreFailure} />}
      {list.loadMore && (
        <button type="button" class="button-secondary" onClick={list.loadMore}>
          {label}
        </button>
      )}
    </>
  );
}
