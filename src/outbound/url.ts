/** What a `fulfillment_url` is: a public https endpoint, or (local development only) a loopback http server. */
export type FulfillmentUrlCheck = { ok: true; loopback: boolean } | { ok: false; problem: string };

export const FULFILLMENT_URL_RULE = "must be an https:// URL with a DNS host name (no IP address, single-label host or user info)";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost"]);
const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// Names that never leave the machine or the local network (RFC 6761, 6762, 8375), whatever a resolver says.
const PRIVATE_SUFFIXES = ["localhost", "local", "internal", "arpa"];

/** The authority of a URL as written (before the host is normalised): user info hides there as `user:pass@`. */
function writtenAuthority(raw: string): string {
  const afterScheme = raw.slice(raw.indexOf(":") + 1).replace(/^[/\\]+/, "");
  return afterScheme.split(/[/\\?#]/, 1)[0] ?? "";
}

/**
 * Checks a fulfilment URL by the host the runtime would connect to: the WHATWG parser turns every IPv4 notation
 * (`0x7f000001`, `2130706433`, `127.1`, `0177.0.0.1`) into a dotted quad and IPv6 into `[…]`, so both are refused as
 * written and as obfuscated. Loopback `http` is reported (`loopback: true`) for the caller to allow or refuse.
 */
export function checkFulfillmentUrl(raw: string): FulfillmentUrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: `is not a URL; ${FULFILLMENT_URL_RULE}` };
  }
  if (url.username !== "" || url.password !== "" || writtenAuthority(raw).includes("@")) {
    return { ok: false, problem: `must not carry user info; ${FULFILLMENT_URL_RULE}` };
  }
  if ((url.protocol === "http:" || url.protocol === "https:") && LOOPBACK_HOSTS.has(url.hostname)) return { ok: true, loopback: true };
  if (url.protocol !== "https:") return { ok: false, problem: FULFILLMENT_URL_RULE };
  const host = url.hostname;
  if (host.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(host))
    return { ok: false, problem: `must not be an IP address; ${FULFILLMENT_URL_RULE}` };
  const labels = host.split(".");
  if (labels.length < 2) return { ok: false, problem: `must not be a single-label host; ${FULFILLMENT_URL_RULE}` };
  if (!labels.every((label) => DNS_LABEL.test(label)) || /^\d+$/.test(labels.at(-1) ?? "")) {
    return { ok: false, problem: `must have a DNS host name; ${FULFILLMENT_URL_RULE}` };
  }
  if (PRIVATE_SUFFIXES.includes(labels.at(-1) ?? "")) return { ok: false, problem: `must name a public host; ${FULFILLMENT_URL_RULE}` };
  return { ok: true, loopback: false };
}

/** Whether the service may POST to this URL under the running configuration (a loopback one only when allowed). */
export function fulfillmentUrlAllowed(raw: string, allowLoopback: boolean): boolean {
  const check = checkFulfillmentUrl(raw);
  return check.ok && (allowLoopback || !check.loopback);
}
