// Sign-in: a merchant API key (that merchant's view), or the admin token and then the merchant to act as. The key is
// checked against the API before it is kept, and kept in sessionStorage only.
import { useEffect, useState } from "preact/hooks";
import { ApiClient, type ApiFailure, describeFailure, query } from "./api";
import type { Merchant, MerchantPage } from "./api-shapes";
import { authHeaders, type Session } from "./session";

interface SignInProps {
  /** Why the last session ended (e.g. the API refused the key), shown above the form. */
  notice: string | null;
  /** The admin token of a session that is switching merchant: straight to the merchant picker. */
  adminToken: string | null;
  onSignedIn: (session: Session) => void;
}

/** The sign-in page. */
export function SignIn({ notice, adminToken, onSignedIn }: SignInProps) {
  const [mode, setMode] = useState<"merchant" | "admin">(adminToken ? "admin" : "merchant");
  const [token, setToken] = useState<string | null>(adminToken);
  return (
    <main class="sign-in">
      <h1>Smart Router Edge</h1>
      <p class="muted">Operations console</p>
      {notice && (
        <p class="notice notice-error" role="alert">
          {notice}
        </p>
      )}
      {token ? (
        <MerchantPicker token={token} onSignedIn={onSignedIn} onBack={() => setToken(null)} />
      ) : (
        <>
          <div class="tabs" role="tablist">
            <button type="button" role="tab" aria-selected={mode === "merchant"} onClick={() => setMode("merchant")}>
              Merchant API key
            </button>
            <button type="button" role="tab" aria-selected={mode === "admin"} onClick={() => setMode("admin")}>
              Admin token
            </button>
          </div>
          {mode === "merchant" ? (
            <SecretForm
              key="merchant"
              label="API key"
              placeholder="sre_…"
              hint="Your merchant's view. The key stays in this tab (sessionStorage) until you sign out or close it."
              check={async (apiKey) => {
                const failure = await checkSession({ kind: "merchant", apiKey });
                if (!failure) onSignedIn({ kind: "merchant", apiKey });
                return failure && refusal(failure, "This API key");
              }}
            />
          ) : (
            <SecretForm
              key="admin"
              label="Admin token"
              placeholder="ADMIN_TOKEN"
              hint="Every merchant: pick one next. The token stays in this tab (sessionStorage) until you sign out or close it."
              check={async (secret) => {
                const answer = await new ApiClient({ authorization: `Bearer ${secret}` }).get<MerchantPage>("/admin/merchants?limit=1");
                // Without the list (an older deployment answers 404), the token is checked with the merchant id typed next.
                if (answer.ok || answer.failure.status === 404) {
                  setToken(secret);
                  return null;
                }
                return refusal(answer.failure, "This admin token");
              }}
            />
          )}
        </>
      )}
    </main>
  );
}

/** Tries the session on the cheapest merchant read; answers the failure, or null when it works. */
async function checkSession(session: Session): Promise<ApiFailure | null> {
  const answer = await new ApiClient(authHeaders(session)).get("/v1/transactions?limit=1");
  return answer.ok ? null : answer.failure;
}

function refusal(failure: ApiFailure, what: string): string {
  if (failure.status === 401) return `${what} was refused (401 ${failure.code}).`;
  if (failure.status === 429) return "Too many requests for this key: wait a minute and try again.";
  return describeFailure(failure);
}

function SecretForm({
  label,
  placeholder,
  hint,
  check,
}: {
  label: string;
  placeholder: string;
  hint: string;
  check: (secret: string) => Promise<string | null>;
}) {
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!secret.trim()) return;
    setBusy(true);
    setError(await check(secret.trim()));
    setBusy(false);
  };
  return (
    <form class="card" onSubmit={submit}>
      <label>
        {label}
        <input
          type="password"
          name="secret"
          autoComplete="off"
          spellcheck={false}
          placeholder={placeholder}
          value={secret}
          onInput={(e) => setSecret(e.currentTarget.value)}
        />
      </label>
      <p class="muted small">{hint}</p>
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? "Checking…" : "Sign in"}
      </button>
    </form>
  );
}

const MERCHANTS_PER_PAGE = 100;

/** The admin picks the merchant to act as: from `GET /admin/merchants`, or by typing its id. */
function MerchantPicker({ token, onSignedIn, onBack }: { token: string; onSignedIn: (session: Session) => void; onBack: () => void }) {
  const [merchants, setMerchants] = useState<Merchant[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [listFailure, setListFailure] = useState<ApiFailure | null>(null);
  const [filter, setFilter] = useState("");
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string | null>(null);
  const client = new ApiClient({ authorization: `Bearer ${token}` });

  const loadPage = async (cursor: string | null) => {
    const answer = await client.get<MerchantPage>(`/admin/merchants${query({ limit: MERCHANTS_PER_PAGE, cursor })}`);
    if (!answer.ok) return setListFailure(answer.failure);
    setListFailure(null);
    setMerchants((previous) => [...(cursor ? previous : []), ...answer.data.merchants]);
    setNextCursor(answer.data.next_cursor);
  };
  // The first page once, when the picker opens (loadPage is new each render; the token is what it depends on).
  useEffect(() => {
    loadPage(null);
  }, [token]);

  const choose = async (merchantId: string) => {
    const session: Session = { kind: "admin", token, merchantId };
    const failure = await checkSession(session);
    if (!failure) return onSignedIn(session);
    if (failure.status === 404) return setError(`No merchant ${merchantId}.`);
    if (failure.status === 400) return setError(`This deployment does not take the admin token on /v1 (${describeFailure(failure)}).`);
    setError(refusal(failure, "The admin token"));
  };
  const shown = merchants.filter((m) => `${m.id} ${m.name}`.toLowerCase().includes(filter.trim().toLowerCase()));

  return (
    <div class="card picker">
      <h2>Act as which merchant?</h2>
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
      {listFailure ? (
        <p class="notice notice-unavailable">
          The merchant list is not available ({describeFailure(listFailure)}); type the merchant's id below.
        </p>
      ) : (
        <>
          <input type="search" placeholder="Filter by id or name" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
          <ul class="merchant-list">
            {shown.map((m) => (
              <li key={m.id}>
                <button type="button" class="merchant" data-merchant={m.id} onClick={() => choose(m.id)}>
                  <span class="merchant-id mono">{m.id}</span>
                  <span class="muted small">
                    {m.name}
                    {m.smart_router && ` · ${m.smart_router.project_id}`}
                  </span>
                </button>
              </li>
            ))}
          </ul>
          {nextCursor && (
            <button type="button" class="button-secondary" onClick={() => loadPage(nextCursor)}>
              More merchants
            </button>
          )}
        </>
      )}
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (typed.trim()) choose(typed.trim());
        }}
      >
        <input name="merchant_id" placeholder="merchant id" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
        <button type="submit">Open</button>
      </form>
      <button type="button" class="link" onClick={onBack}>
        ← Use another token or an API key
      </button>
    </div>
  );
}
