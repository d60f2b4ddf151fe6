// The Smart Router budget of the merchant's project, from `GET /v1/budget` (the project's rate-limiter Durable Object):
// each bucket's rate, tokens left, the batch lane's current rate and recent 429s, and the circuit breaker.
import { useEffect, useState } from "preact/hooks";
import type { Budget } from "../api-shapes";
import { type ChartSeries, TimeChart } from "../chart";
import { formatCount } from "../format";
import { Badge, ResourceNotice, Section, When } from "../ui";
import { useResource } from "../use-resource";

const REFRESH_MS = 5_000;
/** Samples kept for the ramp chart: 30 minutes at one every 5 s; older ones drop off. */
const MAX_SAMPLES = 360;
const COLORS = ["#2f6fdf", "#d9822b", "#2e9d5b", "#8e5bd9"];

interface Sample {
  at: number;
  batchRates: Record<string, number>;
}

/** The budget page. */
export function BudgetPanel() {
  const [resource] = useResource<{ budget: Budget }>("/v1/budget", REFRESH_MS);
  const [samples, setSamples] = useState<Sample[]>([]);
  const budget = resource.state === "ready" ? resource.data.budget : null;

  useEffect(() => {
    if (!budget) return;
    const batchRates = Object.fromEntries(budget.buckets.map((b) => [b.bucket, b.batch_rate_per_minute]));
    setSamples((previous) => [...previous, { at: Date.now() / 1000, batchRates }].slice(-MAX_SAMPLES));
  }, [budget]);

  return (
    <div class="panel" data-panel="budget">
      <Section title="Smart Router budget">
        <ResourceNotice resource={resource} what="the budget" />
        {budget && <BudgetView budget={budget} samples={samples} />}
      </Section>
    </div>
  );
}

function BudgetView({ budget, samples }: { budget: Budget; samples: Sample[] }) {
  const series: ChartSeries[] = budget.buckets.map((b, i) => ({
    label: `${b.bucket} batch lane`,
    color: COLORS[i % COLORS.length] ?? "#2f6fdf",
    values: samples.map((s) => s.batchRates[b.bucket] ?? null),
  }));
  return (
    <>
      <dl class="facts facts-inline">
        <dt>Project</dt>
        <dd class="mono">{budget.project_id}</dd>
        <dt>Circuit breaker</dt>
        <dd>
          <Badge label={budget.breaker.state} />{" "}
          {budget.breaker.since && (
            <>
              since <When iso={budget.breaker.since} ago />
            </>
          )}
        </dd>
      </dl>
      <table class="table">
        <thead>
          <tr>
            <th>Bucket</th>
            <th class="num">Rate / min</th>
            <th class="num">Tokens left</th>
            <th class="num">Batch lane / min</th>
            <th class="num">Batch share</th>
            <th>Recent 429s</th>
          </tr>
        </thead>
        <tbody>
          {budget.buckets.map((b) => (
            <tr key={b.bucket} data-bucket={b.bucket}>
              <td>{b.bucket}</td>
              <td class="num">{formatCount(b.rate_per_minute)}</td>
              <td class="num">{formatCount(Math.floor(b.tokens_left))}</td>
              <td class="num">{formatCount(Math.round(b.batch_rate_per_minute))}</td>
              <td class="num">{formatShare(b.batch_share)}</td>
              <td>
                {b.recent_429s.length === 0 ? (
                  <span class="muted">none</span>
                ) : (
                  <>
                    <Badge label={String(b.recent_429s.length)} tone="bad" /> last <When iso={b.recent_429s.at(-1) ?? null} ago />
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Batch lane rate since this page opened</h3>
      <p class="muted">The batch lane starts slowly and ramps up while Smart Router answers without 429s; sampled every 5 s.</p>
      {samples.length < 2 ? (
        <p class="notice">Collecting samples…</p>
      ) : (
        <TimeChart title="Batch lane rate per bucket over time" x={samples.map((s) => s.at)} series={series} />
      )}
    </>
  );
}

/** The batch lane's share of the bucket's rate, a fraction from 0 to 1. */
function formatShare(share: number): string {
  return `${Math.round(share * 100)} %`;
}
