// Business alerts (`GET /v1/alerts`): open ones by default, or every alert with the resolved ones.
import { query } from "../api";
import type { AlertPage } from "../api-shapes";
import { href, type Route } from "../route";
import { Badge, MoreButton, ResourceNotice, Section, When } from "../ui";
import { usePagedList } from "../use-resource";

const REFRESH_MS = 15_000;
const PAGE_SIZE = 50;

/** What each alert kind (contract.md) means, for the person on call. */
export const ALERT_KINDS: Record<string, string> = {
  authorized_not_captured: "Authorized, not captured",
  apm_pending: "APM payment pending too long",
  refunded_more_than_captured: "Refunded more than captured",
  chargeback_after_fulfillment: "Chargeback after fulfilment",
  forged_delivery_spike: "Spike of forged deliveries",
  smart_router_key_refused: "Smart Router refuses the API key",
  fulfillment_failing: "Fulfilment failing",
  shard_capacity: "D1 shard filling up",
};

/** The alerts page. */
export function AlertsPanel({ route }: { route: Route }) {
  const state = route.params.get("state") === "all" ? "all" : "open";
  const path = `/v1/alerts${query({ state, limit: PAGE_SIZE })}`;
  const picker = (
    <label class="inline-field">
      Show{" "}
      <select value={state} onChange={(e) => (location.hash = href("alerts", null, { state: e.currentTarget.value }))}>
        <option value="open">open alerts</option>
        <option value="all">all alerts</option>
      </select>
    </label>
  );
  return (
    <div class="panel" data-panel="alerts">
      <Section title="Alerts" actions={picker}>
        <AlertList key={path} path={path} state={state} />
      </Section>
    </div>
  );
}

/** One paged list of alerts in the shape of `GET /v1/alerts` (the merchant's, or the admin's `GET /admin/alerts`). */
export function AlertList({ path, state }: { path: string; state: string }) {
  const list = usePagedList(path, REFRESH_MS, (page: AlertPage) => page.alerts);
  const alerts = list.items;
  return (
    <>
      <ResourceNotice resource={list.first} what="alerts" />
      {list.first.state === "ready" && alerts.length === 0 && (
        <p class="notice notice-good">{state === "open" ? "No open alert." : "No alert yet."}</p>
      )}
      {alerts.length > 0 && (
        <ul class="alert-list">
          {alerts.map((alert) => (
            <li key={alert.id} class={`alert alert-${alert.state}`} data-alert={alert.id} data-kind={alert.kind}>
              <div class="alert-head">
                <strong>{ALERT_KINDS[alert.kind] ?? alert.kind}</strong>
                <Badge label={alert.state} />
                <span class="muted small mono">{alert.kind}</span>
              </div>
              <p class="alert-detail">{alert.detail}</p>
              <div class="muted small">
                opened <When iso={alert.opened_at} ago />
                {alert.resolved_at && (
                  <>
                    {" "}
                    · resolved <When iso={alert.resolved_at} />
                  </>
                )}
                {alert.transaction_id && (
                  <>
                    {" "}
                    · payment{" "}
                    <a class="mono" href={href("payments", alert.transaction_id)}>
                      {alert.transaction_id}
                    </a>
                  </>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
      <MoreButton list={list} label="Older alerts" />
    </>
  );
}
