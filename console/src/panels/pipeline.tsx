// The webhook pipeline: deliveries per minute, verification outcomes, lag, what is waiting, the backlog and its age, dead
// letters, backstop and reconciliation, all from `GET /v1/pipeline`.
import { useState } from "preact/hooks";
import type { Pipeline } from "../api-shapes";
import { TimeChart } from "../chart";
import { formatCount, formatDuration } from "../format";
import { Figure, ResourceNotice, Section, When } from "../ui";
import { useResource } from "../use-resource";

const WINDOWS = [
  { minutes: 15, label: "15 min" },
  { minutes: 60, label: "1 hour" },
  { minutes: 360, label: "6 hours" },
  { minutes: 1440, label: "24 hours" },
];
const REFRESH_MS = 10_000;

/** The pipeline page. */
export function PipelinePanel() {
  const [windowMinutes, setWindowMinutes] = useState(60);
  const [resource] = useResource<{ pipeline: Pipeline }>(`/v1/pipeline?window_minutes=${windowMinutes}`, REFRESH_MS);
  const windowPicker = (
    <label class="inline-field">
      Window{" "}
      <select value={windowMinutes} onChange={(e) => setWindowMinutes(Number(e.currentTarget.value))}>
        {WINDOWS.map((w) => (
          <option key={w.minutes} value={w.minutes}>
            {w.label}
          </option>
        ))}
      </select>
    </label>
  );

  return (
    <div class="panel" data-panel="pipeline">
      <Section title="Webhook pipeline" actions={windowPicker}>
        <ResourceNotice resource={resource} what="the pipeline" />
        {resource.state === "ready" && <PipelineFigures pipeline={resource.data.pipeline} />}
      </Section>
    </div>
  );
}

function PipelineFigures({ pipeline }: { pipeline: Pipeline }) {
  const { outcomes, lag_ms: lag, waiting, backstop, reconciliation } = pipeline;
  const perMinute = pipeline.deliveries_per_minute;
  const total = perMinute.reduce((sum, m) => sum + m.count, 0);
  const ms = (value: number | null) => (value === null ? "—" : formatDuration(value));
  return (
    <>
      <p class="muted">
        From <When iso={pipeline.from} /> to <When iso={pipeline.to} />: {formatCount(total)} deliveries.
      </p>
      <h3>Deliveries per minute</h3>
      {perMinute.length === 0 ? (
        <p class="notice">No delivery in this window.</p>
      ) : (
        <TimeChart
          title="Webhook deliveries per minute"
          bars
          x={perMinute.map((m) => Date.parse(m.minute) / 1000)}
          series={[{ label: "deliveries", color: "#2f6fdf", values: perMinute.map((m) => m.count) }]}
        />
      )}
      <h3>Verification outcomes</h3>
      <div class="figures">
        <Figure label="Applied" value={formatCount(outcomes.applied)} />
        <Figure label="Stale" value={formatCount(outcomes.stale)} hint="verified, older than the record" />
        <Figure label="Duplicate" value={formatCount(outcomes.duplicate)} />
        <Figure
          label="Rejected as forged"
          value={formatCount(outcomes.rejected)}
          hint="Smart Router does not know the event"
          tone={outcomes.rejected > 0 ? "bad" : undefined}
        />
        <Figure label="Pending" value={formatCount(outcomes.pending)} />
        <Figure label="Ignored" value={formatCount(outcomes.ignored)} hint="not a transaction event" />
      </div>
      <div class="columns">
        <div>
          <h3>Webhook → applied</h3>
          <div class="figures">
            <Figure label="Lag p50" value={ms(lag.p50)} />
            <Figure label="Lag p99" value={ms(lag.p99)} />
          </div>
        </div>
        <div>
          <h3>Waiting</h3>
          <div class="figures">
            <Figure label="Pending inbox rows" value={formatCount(waiting.pending_events)} />
            <Figure label="Retries scheduled" value={formatCount(waiting.retries_scheduled)} />
            <Figure label="Dead letters" value={formatCount(pipeline.dead_letters)} tone={pipeline.dead_letters > 0 ? "bad" : undefined} />
          </div>
        </div>
      </div>
      <Backlog pipeline={pipeline} />
      <div class="columns">
        <div>
          <h3>Event-log backstop</h3>
          <dl class="facts">
            <dt>Watermark</dt>
            <dd>
              <When iso={backstop.watermark} />
            </dd>
            <dt>Lag</dt>
            <dd>{backstop.lag_seconds === null ? "—" : formatDuration(backstop.lag_seconds * 1000)}</dd>
            <dt>Last walk</dt>
            <dd>
              <When iso={backstop.last_run_at} ago />
            </dd>
          </dl>
        </div>
        <div>
          <h3>Reconciliation</h3>
          <dl class="facts">
            <dt>Runs in this window</dt>
            <dd>{formatCount(reconciliation.runs)}</dd>
            <dt>Last run</dt>
            <dd>
              <When iso={reconciliation.last_run_at} ago />
            </dd>
          </dl>
        </div>
      </div>
    </>
  );
}

/** The contract's horizon: a delivery accepted is applied within 15 minutes; older than that, the backlog is a problem. */
const BACKLOG_HORIZON_SECONDS = 15 * 60;

/** A duration in whole seconds, or a dash without one. */
const seconds = (value: number | null) => (value === null ? "—" : formatDuration(value * 1000));

/** The merchant's backlog (its inbox), and the whole webhook queue when the admin token is signed in. */
function Backlog({ pipeline }: { pipeline: Pipeline }) {
  const { backlog, webhook_queue: queue } = pipeline;
  return (
    <div class="columns">
      <div>
        <h3>Backlog</h3>
        <div class="figures">
          <Figure label="Backlog" value={formatCount(backlog.count)} hint="deliveries taken in, not settled (from the inbox)" />
          <Figure
            label="Oldest waiting"
            value={seconds(backlog.oldest_age_seconds)}
            hint="since the edge accepted it"
            tone={(backlog.oldest_age_seconds ?? 0) > BACKLOG_HORIZON_SECONDS ? "bad" : undefined}
          />
        </div>
      </div>
      {queue && (
        <div>
          <h3>Webhook queue, all merchants</h3>
          <div class="figures">
            <Figure label="Queue backlog" value={formatCount(queue.backlog_count)} hint="Queue.metrics(): every merchant's messages" />
            <Figure label="Oldest message" value={seconds(queue.oldest_age_seconds)} />
          </div>
        </div>
      )}
    </div>
  );
}
