// A payment's endpoint messages, on its page: for each of the merchant's endpoints (at most 10), the messages of this
// transaction (`GET /v1/endpoints/{id}/messages?transaction_id=…`) in the order they go out: by sequence, each
// `transaction.captured` right after the change that brought it.
import { query } from "../api";
import type { Endpoint, EndpointMessage, EndpointMessagePage, EndpointPage } from "../api-shapes";
import { href } from "../route";
import { Badge, ResourceNotice, Section, When } from "../ui";
import { useResource } from "../use-resource";

const REFRESH_MS = 10_000;
/** A merchant has at most 10 endpoints (contract.md, "Endpoints"): one page holds them all. */
const MAX_ENDPOINTS = 10;
/** A transaction's messages to one endpoint are a handful (one per status change, and one capture); 100 shows them all. */
const MESSAGES_SHOWN = 100;

/** The endpoint messages section of a payment's page. */
export function EndpointMessagesSection({ transactionId }: { transactionId: string }) {
  const [endpoints] = useResource<EndpointPage>(`/v1/endpoints?limit=${MAX_ENDPOINTS}`, REFRESH_MS);
  return (
    <Section title="Endpoint messages">
      <ResourceNotice resource={endpoints} what="the endpoints" />
      {endpoints.state === "ready" && endpoints.data.endpoints.length === 0 && (
        <p class="notice">
          No endpoint receives this merchant's changes. See <a href={href("endpoints")}>Endpoints</a>.
        </p>
      )}
      {endpoints.state === "ready" &&
        endpoints.data.endpoints.map((endpoint) => <EndpointLane key={endpoint.id} endpoint={endpoint} transactionId={transactionId} />)}
    </Section>
  );
}

/** The order messages of one transaction go out to one endpoint: by sequence, the capture after its change. */
function laneOrder(a: EndpointMessage, b: EndpointMessage): number {
  const position = (m: EndpointMessage) => 2 * m.sequence + (m.type === "transaction.captured" ? 1 : 0);
  return position(a) - position(b);
}

function EndpointLane({ endpoint, transactionId }: { endpoint: Endpoint; transactionId: string }) {
  const path = `/v1/endpoints/${encodeURIComponent(endpoint.id)}/messages${query({ transaction_id: transactionId, limit: MESSAGES_SHOWN })}`;
  const [messages] = useResource<EndpointMessagePage>(path, REFRESH_MS);
  const sorted = messages.state === "ready" ? [...messages.data.messages].sort(laneOrder) : [];
  return (
    <div class="endpoint-lane" data-lane={endpoint.id}>
      <div class="batch-head">
        <span class="mono">{endpoint.url}</span> <Badge label={endpoint.status} tone={endpoint.status === "enabled" ? "good" : "warn"} />
      </div>
      <ResourceNotice resource={messages} what="the messages" />
      {messages.state === "ready" && sorted.length === 0 && <p class="notice">No message of this payment to this endpoint.</p>}
      {sorted.length > 0 && (
        <table class="table">
          <thead>
            <tr>
              <th class="num">#</th>
              <th>Type</th>
              <th>Status</th>
              <th class="num">Attempts</th>
              <th class="num">Last HTTP status</th>
              <th>Created</th>
              <th>Delivered</th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((message) => (
              <tr key={message.id} data-message={message.id} data-type={message.type} data-status={message.status}>
                <td class="num mono">{message.sequence}</td>
                <td class="mono">{message.type}</td>
                <td>
                  <Badge label={message.status} />
                </td>
                <td class="num">{message.attempts}</td>
                <td class="num">{message.last_http_status ?? <span class="muted">—</span>}</td>
                <td>
                  <When iso={message.created_at} />
                </td>
                <td>
                  <When iso={message.delivered_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
