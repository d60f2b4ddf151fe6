// The console's shell: sign-in or the signed-in pages, the navigation, and the banner of server failures.
import { useMemo, useRef, useState } from "preact/hooks";
import { ApiClient, type ApiFailure, describeFailure } from "./api";
import type { AlertPage } from "./api-shapes";
import { AlertsPanel } from "./panels/alerts";
import { BatchesPanel } from "./panels/batches";
import { BudgetPanel } from "./panels/budget";
import { EndpointsPanel } from "./panels/endpoints";
import { PaymentsPanel } from "./panels/payments";
import { PipelinePanel } from "./panels/pipeline";
import { ShardsPanel } from "./panels/shards";
import { TimelinePanel } from "./panels/timeline";
import { href, type Page, type Route, useRoute } from "./route";
import { authHeaders, clearSession, loadSession, type Session, saveSession } from "./session";
import { SignIn } from "./sign-in";
import { ApiContext, useResource } from "./use-resource";

/** The whole console. */
export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [notice, setNotice] = useState<string | null>(null);
  const [switchingToken, setSwitchingToken] = useState<string | null>(null);

  if (!session) {
    return (
      <SignIn
        notice={notice}
        adminToken={switchingToken}
        onSignedIn={(next) => {
          saveSession(next);
          setSession(next);
          setNotice(null);
          setSwitchingToken(null);
        }}
      />
    );
  }
  const signOut = (reason: string | null) => {
    clearSession();
    setSession(null);
    setSwitchingToken(null);
    setNotice(reason);
  };
  const switchMerchant =
    session.kind === "admin"
      ? () => {
          clearSession();
          setSwitchingToken(session.token);
          setSession(null);
        }
      : null;
  return (
    <SignedIn
      key={session.kind === "admin" ? `admin:${session.merchantId}` : "merchant"}
      session={session}
      onSignOut={signOut}
      onSwitchMerchant={switchMerchant}
    />
  );
}

/** The pages in the navigation; `admin` ones (the deployment's, not a merchant's) only for the admin token. */
const NAV: { page: Page; label: string; admin?: true }[] = [
  { page: "pipeline", label: "Pipeline" },
  { page: "budget", label: "Budget" },
  { page: "batches", label: "Batches" },
  { page: "payments", label: "Payments" },
  { page: "alerts", label: "Alerts" },
  { page: "endpoints", label: "Endpoints" },
  { page: "shards", label: "Shards", admin: true },
];
/** How many banners stay on screen: the newest failures. */
const MAX_BANNERS = 3;

interface SignedInProps {
  session: Session;
  onSignOut: (reason: string | null) => void;
  onSwitchMerchant: (() => void) | null;
}

function SignedIn({ session, onSignOut, onSwitchMerchant }: SignedInProps) {
  const [banners, setBanners] = useState<ApiFailure[]>([]);
  // The client lives as long as the session; it reaches the latest sign-out callback through this ref.
  const signOut = useRef(onSignOut);
  signOut.current = onSignOut;
  const api = useMemo(
    () =>
      new ApiClient(authHeaders(session), (failure) => {
        if (failure.status === 401) {
          signOut.current(`Signed out: ${describeFailure(failure)}. Sign in again.`);
        } else if (failure.status === 0 || failure.status >= 500) {
          // One banner per endpoint: a panel that keeps polling a failing endpoint replaces its own banner.
          const endpoint = (f: ApiFailure) => `${f.method} ${f.path.split("?")[0]}`;
          setBanners((previous) => [...previous.filter((b) => endpoint(b) !== endpoint(failure)), failure].slice(-MAX_BANNERS));
        }
      }),
    [session],
  );
  const route = useRoute();
  const who = session.kind === "merchant" ? "merchant API key" : `admin, acting as ${session.merchantId}`;

  return (
    <ApiContext.Provider value={api}>
      <header class="topbar">
        <div class="brand">
          Smart Router Edge <span class="brand-sub">console</span>
        </div>
        <nav class="nav" aria-label="Console pages">
          {NAV.filter((item) => !item.admin || session.kind === "admin").map((item) => (
            <a key={item.page} href={href(item.page)} aria-current={route.page === item.page ? "page" : undefined}>
              {item.label}
              {item.page === "alerts" && <OpenAlertCount />}
            </a>
          ))}
        </nav>
        <div class="who">
          <span data-who={session.kind}>{who}</span>
          {onSwitchMerchant && (
            <button type="button" class="link" onClick={onSwitchMerchant}>
              Switch merchant
            </button>
          )}
          <button type="button" class="link" onClick={() => onSignOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      {banners.length > 0 && (
        <div class="banners">
          {banners.map((failure) => (
            <div key={`${failure.method} ${failure.path}`} class="banner" role="alert" data-request-id={failure.requestId ?? ""}>
              <span>
                {failure.status === 0 ? "Network failure. " : "Server error. "}
                {describeFailure(failure).replace(/\.?$/, ".")}
                {failure.requestId && (
                  <>
                    {" "}
                    Quote request_id <code>{failure.requestId}</code> when asking for help.
                  </>
                )}
              </span>
              <button type="button" class="link" aria-label="Dismiss" onClick={() => setBanners((b) => b.filter((x) => x !== failure))}>
                ×
              </button>
            </div>
          ))}
        </div>
      )}
      <main class="content">
        <CurrentPage route={route} admin={session.kind === "admin"} />
      </main>
    </ApiContext.Provider>
  );
}

function CurrentPage({ route, admin }: { route: Route; admin: boolean }) {
  switch (route.page) {
    case "pipeline":
      return <PipelinePanel />;
    case "budget":
      return <BudgetPanel />;
    case "batches":
      return <BatchesPanel />;
    case "payments":
      return route.id ? <TimelinePanel key={route.id} transactionId={route.id} /> : <PaymentsPanel route={route} />;
    case "alerts":
      return <AlertsPanel route={route} />;
    case "endpoints":
      return <EndpointsPanel />;
    // A merchant's key would be refused by /admin (and signed out): its session never asks.
    case "shards":
      return admin ? <ShardsPanel /> : <PipelinePanel />;
  }
}

const ALERT_COUNT_REFRESH_MS = 30_000;

/** The number of open alerts beside the Alerts link; nothing when there is none or the endpoint is missing. */
function OpenAlertCount() {
  const [resource] = useResource<AlertPage>("/v1/alerts?state=open&limit=100", ALERT_COUNT_REFRESH_MS);
  if (resource.state !== "ready" || resource.data.alerts.length === 0) return null;
  const count = resource.data.alerts.length;
  return (
    <span class="count" data-open-alerts={count}>
      {resource.data.next_cursor ? `${count}+` : count}
    </span>
  );
}
