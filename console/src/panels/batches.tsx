// Batch operations (`GET /v1/batches`, newest first): progress of each, and cancel (`DELETE /v1/batches/{id}`).
import { useState } from "preact/hooks";
import type { ApiFailure } from "../api";
import { BATCH_ACTIVE_STATUSES, type Batch, type BatchPage } from "../api-shapes";
import { formatCount } from "../format";
import { Badge, FailureNotice, MoreButton, ProgressBar, ResourceNotice, Section, When } from "../ui";
import { useApi, usePagedList } from "../use-resource";

const REFRESH_MS = 3_000;
const PAGE_SIZE = 20;

/** The batches page. */
export function BatchesPanel() {
  const list = usePagedList(`/v1/batches?limit=${PAGE_SIZE}`, REFRESH_MS, (page: BatchPage) => page.batches);
  return (
    <div class="panel" data-panel="batches">
      <Section title="Batches">
        <ResourceNotice resource={list.first} what="the batch list" />
        {list.first.state === "ready" && list.items.length === 0 && <p class="notice">No batch yet. Start one with POST /v1/batches.</p>}
        {list.items.length > 0 && (
          <ul class="batch-list">
            {list.items.map((batch) => (
              <BatchRow key={batch.id} batch={batch} onChanged={list.reload} />
            ))}
          </ul>
        )}
        <MoreButton list={list} label="Older batches" />
      </Section>
    </div>
  );
}

function BatchRow({ batch, onChanged }: { batch: Batch; onChanged: () => void }) {
  const api = useApi();
  const [confirming, setConfirming] = useState(false);
  const [failure, setFailure] = useState<ApiFailure | null>(null);
  const active = BATCH_ACTIVE_STATUSES.includes(batch.status);
  // A sync counts its total page by page: until it completes, the total is only what it has found so far.
  const partialTotal = batch.kind === "sync" && batch.status !== "completed";
  const cancel = async () => {
    const result = await api.delete<{ batch: Batch }>(`/v1/batches/${encodeURIComponent(batch.id)}`);
    setConfirming(false);
    setFailure(result.ok ? null : result.failure);
    onChanged();
  };
  return (
    <li class="batch" data-batch={batch.id} data-status={batch.status}>
      <div class="batch-head">
        <span class="mono">{batch.id}</span>
        <span class="batch-kind">{batch.kind}</span>
        <Badge label={batch.status} />
        <span class="muted">
          created <When iso={batch.created_at} />
          {batch.finished_at && (
            <>
              , finished <When iso={batch.finished_at} />
            </>
          )}
        </span>
        {active && !confirming && (
          <button type="button" class="button-secondary" onClick={() => setConfirming(true)}>
            Cancel
          </button>
        )}
        {active && confirming && (
          <span class="confirm">
            Cancel this batch?{" "}
            <button type="button" class="button-danger" onClick={cancel}>
              Yes, cancel it
            </button>{" "}
            <button type="button" class="button-secondary" onClick={() => setConfirming(false)}>
              Keep it
            </button>
          </span>
        )}
      </div>
      <ProgressBar done={batch.done} failed={batch.failed} total={batch.total} label={`Progress of ${batch.id}`} />
      <div class="batch-counts">
        <span>
          <strong>{formatCount(batch.done)}</strong> done
        </span>
        <span class={batch.failed > 0 ? "text-bad" : undefined}>
          <strong>{formatCount(batch.failed)}</strong> failed
        </span>
        <span>
          of <strong>{formatCount(batch.total)}</strong>
          {partialTotal && <span class="muted">{active ? " so far (counted as the batch runs)" : " found before it stopped"}</span>}
        </span>
        <span>
          <strong>{formatCount(batch.api_calls)}</strong> Smart Router API calls
        </span>
      </div>
      {batch.error && <p class="notice notice-error">{batch.error}</p>}
      {failure && <FailureNotice failure={failure} />}
    </li>
  );
}
