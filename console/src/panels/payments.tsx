// The merchant's payments (`GET /v1/transactions`, most recently updated first) with the list's filters: status,
// updated after, payment type, and a search box that opens a transaction by its id or finds payments by the merchant's
// own reference. The filters live in the location hash, so back and forward keep them.
import { useState } from "preact/hooks";
import { query } from "../api";
import type { OpenApiDocument, TransactionPage } from "../api-shapes";
import { fromLocalInput, toLocalInput } from "../format";
import { href, type Route } from "../route";
import { Badge, MoreButton, ResourceNotice, Section, When } from "../ui";
import { usePagedList, useResource } from "../use-resource";

const PAGE_SIZE = 50;
const REFRESH_MS = 10_000;

/** The payments page. */
export function PaymentsPanel({ route }: { route: Route }) {
  const filters = {
    status: route.params.get("status") ?? "",
    payment_type: route.params.get("payment_type") ?? "",
    updated_after: route.params.get("updated_after") ?? "",
    reference: route.params.get("reference") ?? "",
  };
  const path = `/v1/transactions${query({ limit: PAGE_SIZE, ...filters })}`;
  return (
    <div class="panel" data-panel="payments">
      <Section title="Payments">
        <SearchForm key={`search-${filters.reference}`} reference={filters.reference} />
        <FilterForm key={path} filters={filters} />
        <PaymentList key={path} path={path} />
      </Section>
    </div>
  );
}

type Filters = { status: string; payment_type: string; updated_after: string; reference: string };

/** The longest reference the API searches (`GET /v1/transactions?reference=`), in characters. */
const MAX_REFERENCE_LENGTH = 200;

/** Smart Router's transaction ids: what the search box opens directly rather than searching as a reference. */
const TRANSACTION_ID = /^tr_[A-Za-z0-9]+$/;

/** One box for both: a transaction id opens the payment, anything else lists the payments carrying that reference. */
function SearchForm({ reference }: { reference: string }) {
  const [value, setValue] = useState(reference);
  const [problem, setProblem] = useState<string | null>(null);
  const search = (event: Event) => {
    event.preventDefault();
    const wanted = value.trim();
    if (wanted === "") return setProblem("Type a transaction id (tr_…) or a reference.");
    if ([...wanted].length > MAX_REFERENCE_LENGTH) return setProblem(`A reference has at most ${MAX_REFERENCE_LENGTH} characters.`);
    setProblem(null);
    location.hash = TRANSACTION_ID.test(wanted) ? href("payments", wanted) : href("payments", null, { reference: wanted });
  };
  return (
    <form class="filters search" onSubmit={search} aria-label="Find a payment">
      <label htmlFor="payment-search">
        Find a payment <span class="muted">(transaction id, invoice id, name, or metadata order_id / reference; exact match)</span>
        <input
          id="payment-search"
          name="q"
          type="search"
          value={value}
          placeholder="tr_… or ORDER-1001"
          spellcheck={false}
          autocomplete="off"
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      </label>
      <div class="filter-actions">
        <button type="submit">Find</button>
      </div>
      {problem && (
        <p class="notice" role="alert">
          {problem}
        </p>
      )}
      {reference && (
        <p class="muted small" data-reference={reference}>
          Showing payments whose reference is exactly “{reference}”. <a href={href("payments")}>Show all payments</a>
        </p>
      )}
    </form>
  );
}

function FilterForm({ filters }: { filters: Filters }) {
  const [openapi] = useResource<OpenApiDocument>("/v1/openapi.json");
  const statuses = openapi.state === "ready" ? listStatuses(openapi.data) : [];
  const [status, setStatus] = useState(filters.status);
  const [paymentType, setPaymentType] = useState(filters.payment_type);
  const [updatedAfter, setUpdatedAfter] = useState(toLocalInput(filters.updated_after));
  const apply = (event: Event) => {
    event.preventDefault();
    location.hash = href("payments", null, {
      status,
      payment_type: paymentType.trim(),
      updated_after: fromLocalInput(updatedAfter),
      // A reference search stays while the other filters narrow it.
      reference: filters.reference,
    });
  };
  const clear = () => {
    setStatus("");
    setPaymentType("");
    setUpdatedAfter("");
    location.hash = href("payments");
  };
  return (
    <form class="filters" onSubmit={apply} aria-label="Filter payments">
      <StatusField statuses={statuses} status={status} setStatus={setStatus} />
      <label>
        Updated after <span class="muted">(your local time)</span>
        <input
          name="updated_after"
          type="datetime-local"
          step={1}
          value={updatedAfter}
          onInput={(e) => setUpdatedAfter(e.currentTarget.value)}
        />
      </label>
      <label>
        Payment type
        <input
          name="payment_type"
          value={paymentType}
          placeholder="e.g. card"
          spellcheck={false}
          onInput={(e) => setPaymentType(e.currentTarget.value)}
        />
      </label>
      <div class="filter-actions">
        <button type="submit">Apply</button>
        <button type="button" class="button-secondary" onClick={clear}>
          Clear
        </button>
      </div>
    </form>
  );
}

/** The status filter: a list of the documented statuses, or free text until the API document has loaded. */
function StatusField({ statuses, status, setStatus }: { statuses: string[]; status: string; setStatus: (value: string) => void }) {
  return (
    <label htmlFor="filter-status">
      Status
      {statuses.length > 0 ? (
        <select id="filter-status" name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">any</option>
          {statuses.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      ) : (
        <input id="filter-status" name="status" value={status} placeholder="any" onInput={(e) => setStatus(e.currentTarget.value)} />
      )}
    </label>
  );
}

/** The statuses `GET /v1/transactions` documents for its `status` filter. */
function listStatuses(document: OpenApiDocument): string[] {
  const parameters = document.paths?.["/v1/transactions"]?.get?.parameters ?? [];
  return parameters.find((p) => p.name === "status" && p.in === "query")?.schema?.enum ?? [];
}

function PaymentList({ path }: { path: string }) {
  const list = usePagedList(path, REFRESH_MS, (page: TransactionPage) => page.transactions);
  const transactions = list.items;
  return (
    <>
      <ResourceNotice resource={list.first} what="the payment list" />
      {list.first.state === "ready" && transactions.length === 0 && <p class="notice">No payment matches these filters.</p>}
      {transactions.length > 0 && (
        <table class="table table-rows">
          <thead>
            <tr>
              <th>Payment</th>
              <th>Status</th>
              <th class="num">Amount</th>
              <th>Type</th>
              <th>Fulfilment</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {transactions.map((t) => (
              <tr key={t.id} data-transaction={t.id}>
                <td>
                  <a class="mono" href={href("payments", t.id)}>
                    {t.id}
                  </a>
                  {t.name && <div class="muted small">{t.name}</div>}
                </td>
                <td>
                  <Badge label={t.status} />
                </td>
                <td class="num mono">
                  {t.amount} {t.currency}
                </td>
                <td>{t.payment_type ?? <span class="muted">—</span>}</td>
                <td>{t.fulfillment.status}</td>
                <td>
                  <When iso={t.updated_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <MoreButton list={list} label="More payments" />
    </>
  );
}
