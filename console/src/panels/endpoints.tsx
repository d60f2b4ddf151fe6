// The merchant's endpoints (`GET /v1/endpoints`): each one's status and health from its latest messages, pause and
// enable (`PATCH`), and a replay of a time range: its dry-run count first, then the real replay and its progress.
import { useState } from "preact/hooks";
import type { ApiFailure } from "../api";
import {
  type Endpoint,
  type EndpointMessage,
  type EndpointMessagePage,
  type EndpointPage,
  REPLAY_ACTIVE_STATUSES,
  type Replay,
} from "../api-shapes";
import { formatCount, fromLocalInput, toLocalInput } from "../format";
import { Badge, FailureNotice, MoreButton, ProgressBar, ResourceNotice, Section, When } from "../ui";
import { useApi, usePagedList, useResource } from "../use-resource";

const REFRESH_MS = 10_000;
const PAGE_SIZE = 20;
/** Health is read from this many of the endpoint's latest messages (one request per endpoint). */
const HEALTH_SAMPLE = 100;
const REPLAY_REFRESH_MS = 1_000;

/** The endpoints page. */
export function EndpointsPanel() {
  const list = usePagedList(`/v1/endpoints?limit=${PAGE_SIZE}`, REFRESH_MS, (page: EndpointPage) => page.endpoints);
  return (
    <div class="panel" data-panel="endpoints">
      <Section title="Endpoints">
        <ResourceNotice resource={list.first} what="the endpoint list" />
        {list.first.state === "ready" && list.items.length === 0 && (
          <p class="notice">No endpoint yet. Create one with POST /v1/endpoints.</p>
        )}
        {list.items.length > 0 && (
          <ul class="batch-list">
            {list.items.map((endpoint) => (
              <EndpointRow key={endpoint.id} endpoint={endpoint} onChanged={list.reload} />
            ))}
          </ul>
        )}
        <MoreButton list={list} label="More endpoints" />
      </Section>
    </div>
  );
}

/** Counts of the latest messages by what became of them. */
interface Health {
  delivered: number;
  retrying: number;
  failed: number;
  waiting: number;
  sampled: number;
  more: boolean;
}

/** What became of the endpoint's latest messages: delivered, retrying (pending after a failed attempt), failed, waiting. */
function healthOf(messages: readonly EndpointMessage[], more: boolean): Health {
  const health = { delivered: 0, retrying: 0, failed: 0, waiting: 0, sampled: messages.length, more };
  for (const message of messages) {
    if (message.status === "delivered") health.delivered += 1;
    else if (message.status === "failed") health.failed += 1;
    else if (message.attempts > 0) health.retrying += 1;
    else health.waiting += 1;
  }
  return health;
}

/** One word for the endpoint: its own status when not enabled, else failing when a latest message is failing. */
function healthLabel(endpoint: Endpoint, health: Health | null): string {
  if (endpoint.status !== "enabled") return endpoint.status;
  if (!health) return "…";
  return health.failed + health.retrying > 0 ? "failing" : "healthy";
}

function EndpointRow({ endpoint, onChanged }: { endpoint: Endpoint; onChanged: () => void }) {
  const api = useApi();
  const base = `/v1/endpoints/${encodeURIComponent(endpoint.id)}`;
  const [messages] = useResource<EndpointMessagePage>(`${base}/messages?limit=${HEALTH_SAMPLE}`, REFRESH_MS);
  const [failure, setFailure] = useState<ApiFailure | null>(null);
  const [replaying, setReplaying] = useState(false);
  const health = messages.state === "ready" ? healthOf(messages.data.messages, messages.data.next_cursor !== null) : null;
  const label = healthLabel(endpoint, health);
  const setStatus = async (status: "enabled" | "paused") => {
    const result = await api.patch<{ endpoint: Endpoint }>(base, { status });
    setFailure(result.ok ? null : result.failure);
    onChanged();
  };
  return (
    <li class="batch" data-endpoint={endpoint.id} data-status={endpoint.status} data-health={label}>
      <div class="batch-head">
        <span class="mono">{endpoint.url}</span>
        <Badge label={label} tone={label === "healthy" ? "good" : label === "failing" || label === "disabled" ? "bad" : "warn"} />
        <span class="endpoint-actions">
          {endpoint.status === "enabled" ? (
            <button type="button" class="button-secondary" onClick={() => setStatus("paused")}>
              Pause
            </button>
          ) : (
            <button type="button" class="button-secondary" onClick={() => setStatus("enabled")}>
              Enable
            </button>
          )}
          <button type="button" class="button-secondary" aria-expanded={replaying} onClick={() => setReplaying(!replaying)}>
            Replay…
          </button>
        </span>
      </div>
      <div class="muted small">
        <span class="mono">{endpoint.id}</span> · {endpoint.events.join(", ")}
        {endpoint.description && ` · ${endpoint.description}`} · created <When iso={endpoint.created_at} />
      </div>
      <ResourceNotice resource={messages} what="the endpoint's messages" />
      {health && <HealthCounts health={health} paused={endpoint.status !== "enabled"} />}
      {failure && <FailureNotice failure={failure} />}
      {replaying && <ReplayForm base={base} enabled={endpoint.status === "enabled"} />}
    </li>
  );
}

function HealthCounts({ health, paused }: { health: Health; paused: boolean }) {
  const of = health.more ? `of the latest ${formatCount(health.sampled)} messages` : `of ${formatCount(health.sampled)} messages`;
  return (
    <div class="batch-counts" data-health-counts>
      <span>
        <strong>{formatCount(health.delivered)}</strong> delivered
      </span>
      <span class={health.retrying + health.failed > 0 ? "text-bad" : undefined}>
        <strong>{formatCount(health.retrying)}</strong> retrying, <strong>{formatCount(health.failed)}</strong> failed
      </span>
      <span>
        <strong>{formatCount(health.waiting)}</strong> {paused ? "held (not sent while paused)" : "waiting"}
      </span>
      <span class="muted">{of}</span>
    </div>
  );
}

const DAY_MS = 86_400_000;

/** The replay of a range: count (dry run) first, then the real replay of exactly that range, and its progress. */
function ReplayForm({ base, enabled }: { base: string; enabled: boolean }) {
  const api = useApi();
  const [since, setSince] = useState(() => toLocalInput(new Date(Date.now() - DAY_MS).toISOString()));
  const [until, setUntil] = useState(() => toLocalInput(new Date(Date.now() + 60_000).toISOString()));
  const [types, setTypes] = useState("");
  const [counted, setCounted] = useState<Replay | null>(null);
  const [started, setStarted] = useState<Replay | null>(null);
  const [failure, setFailure] = useState<ApiFailure | null>(null);
  const range = () => {
    const list = types
      .split(",")
      .map((type) => type.trim())
      .filter(Boolean);
    return { since: fromLocalInput(since), until: fromLocalInput(until), ...(list.length > 0 ? { types: list } : {}) };
  };
  const run = async (dryRun: boolean) => {
    const result = await api.post<{ replay: Replay }>(`${base}/replay`, { ...range(), dry_run: dryRun });
    setFailure(result.ok ? null : result.failure);
    if (result.ok) (dryRun ? setCounted : setStarted)(result.data.replay);
  };
  // Another range needs another count before it can be replayed.
  const edit = (set: (value: string) => void) => (event: Event) => {
    set((event.currentTarget as HTMLInputElement).value);
    setCounted(null);
  };
  return (
    <div class="replay" data-replay-form>
      <form
        class="filters"
        aria-label="Replay a range"
        onSubmit={(event) => {
          event.preventDefault();
          run(true);
        }}
      >
        <label>
          Since <span class="muted">(your local time)</span>
          <input name="since" type="datetime-local" step={1} value={since} onInput={edit(setSince)} />
        </label>
        <label>
          Until
          <input name="until" type="datetime-local" step={1} value={until} onInput={edit(setUntil)} />
        </label>
        <label>
          Types <span class="muted">(optional, comma-separated)</span>
          <input name="types" value={types} placeholder="transaction.captured" spellcheck={false} onInput={edit(setTypes)} />
        </label>
        <div class="filter-actions">
          <button type="submit">Count messages</button>
        </div>
      </form>
      {counted && <DryRunCount counted={counted} enabled={enabled} startable={!started} onReplay={() => run(false)} />}
      {failure && <FailureNotice failure={failure} />}
      {started && <ReplayProgress base={base} replay={started} />}
    </div>
  );
}

/** The dry run's count, and the button that replays exactly that range. */
function DryRunCount({
  counted,
  enabled,
  startable,
  onReplay,
}: {
  counted: Replay;
  enabled: boolean;
  startable: boolean;
  onReplay: () => void;
}) {
  const messages = `${formatCount(counted.total)} ${counted.total === 1 ? "message" : "messages"}`;
  return (
    <p class="notice" data-dry-run-total={counted.total}>
      {messages} in this range would be resent, with their original webhook-ids, in order per payment.{" "}
      {counted.total > 0 && enabled && startable && (
        <button type="button" class="button-danger" onClick={onReplay}>
          Replay {messages}
        </button>
      )}
      {!enabled && <span class="muted">Enable the endpoint to replay.</span>}
    </p>
  );
}

function ReplayProgress({ base, replay }: { base: string; replay: Replay }) {
  const api = useApi();
  const path = `${base}/replays/${encodeURIComponent(replay.id)}`;
  const [polled, reload] = useResource<{ replay: Replay }>(path, REPLAY_REFRESH_MS);
  const shown = polled.state === "ready" ? polled.data.replay : replay;
  const active = REPLAY_ACTIVE_STATUSES.includes(shown.status);
  const [failure, setFailure] = useState<ApiFailure | null>(null);
  const cancel = async () => {
    const result = await api.delete<{ replay: Replay }>(path);
    setFailure(result.ok ? null : result.failure);
    reload();
  };
  return (
    <div class="replay-progress" data-replay={shown.id} data-status={shown.status}>
      <div class="batch-head">
        <span class="mono">{shown.id}</span>
        <Badge label={shown.status} />
        {active && (
          <button type="button" class="button-secondary" onClick={cancel}>
            Cancel replay
          </button>
        )}
      </div>
      <ProgressBar done={shown.sent} failed={shown.failed} total={shown.total} label={`Progress of ${shown.id}`} />
      <div class="batch-counts">
        <span>
          <strong>{formatCount(shown.sent)}</strong> sent
        </span>
        <span class={shown.failed > 0 ? "text-bad" : undefined}>
          <strong>{formatCount(shown.failed)}</strong> failed
        </span>
        <span>
          of <strong>{formatCount(shown.total)}</strong>
        </span>
      </div>
      {shown.error && <p class="notice notice-error">{shown.error}</p>}
      {failure && <FailureNotice failure={failure} />}
    </div>
  );
}
