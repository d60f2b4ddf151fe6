// The D1 shards (`GET /admin/shards`) and the operator's own alerts (`GET /admin/alerts`): for the admin token only.
import type { Shard, ShardList } from "../api-shapes";
import { formatBytes, formatCount } from "../format";
import { Badge, ResourceNotice, Section } from "../ui";
import { useResource } from "../use-resource";
import { AlertList } from "./alerts";

const REFRESH_MS = 30_000;
/** Past this share of its capacity a shard takes no new merchant (contract.md, "Shards: watch and move"). */
const PLACEMENT_LIMIT = 0.8;

/** The shards page. */
export function ShardsPanel() {
  const [resource] = useResource<ShardList>("/admin/shards", REFRESH_MS);
  return (
    <div class="panel" data-panel="shards">
      <Section title="Shards">
        <ResourceNotice resource={resource} what="shards" />
        {resource.state === "ready" && <ShardTable shards={resource.data.shards} />}
        <p class="muted small">
          New merchants go to the healthy shard with the most free bytes; past {PLACEMENT_LIMIT * 100} % of its capacity a shard takes none.
          Days to full follow the growth of the last 7 days, sampled by the cron once an hour.
        </p>
      </Section>
      <Section title="Admin alerts">
        <AlertList path="/admin/alerts?state=open&limit=50" state="open" />
      </Section>
    </div>
  );
}

function ShardTable({ shards }: { shards: Shard[] }) {
  return (
    <table class="table">
      <thead>
        <tr>
          <th>Shard</th>
          <th class="num">Merchants</th>
          <th class="num">Size</th>
          <th class="num">Used</th>
          <th class="num">Growth / day</th>
          <th class="num">Days to full</th>
          <th>Migration</th>
        </tr>
      </thead>
      <tbody>
        {shards.map((shard) => (
          <tr key={shard.binding} data-shard={shard.binding}>
            <td>
              <span class="mono">{shard.binding}</span> <Badge label={shard.ok ? "ok" : "failing"} tone={shard.ok ? "good" : "bad"} />
              {shard.error && <div class="muted small">{shard.error}</div>}
            </td>
            <td class="num">{shard.merchants === null ? "—" : formatCount(shard.merchants)}</td>
            <td class="num">
              {shard.bytes === null ? "—" : formatBytes(shard.bytes)}
              <div class="muted small">of {formatBytes(shard.capacity_bytes)}</div>
            </td>
            <td class="num" data-used={shard.used ?? ""}>
              {/* From the bytes where known: `used` has 4 decimals, which a young shard's share rounds to 0. */}
              <Used used={shard.bytes === null ? shard.used : shard.bytes / shard.capacity_bytes} />
            </td>
            <td class="num">{shard.growth_bytes_per_day === null ? "—" : formatBytes(shard.growth_bytes_per_day)}</td>
            <td class="num" data-days-to-full={shard.days_to_full ?? ""}>
              {shard.days_to_full === null ? <span class="muted">no growth yet</span> : formatCount(shard.days_to_full)}
            </td>
            <td class="mono small">{shard.migration ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The share used, marked once the shard takes no new merchant. */
function Used({ used }: { used: number | null }) {
  if (used === null) return <span class="muted">—</span>;
  const text = `${(used * 100).toFixed(used < 0.001 ? 3 : 1)} %`;
  return used > PLACEMENT_LIMIT ? <Badge label={`${text}: full for new merchants`} tone="bad" /> : <span>{text}</span>;
}
