import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { merchants } from "../db/schema";
import { constantTimeEqual, hashCredential } from "../security/credentials";

const MERCHANT_ID = /^[a-z0-9_-]{1,64}$/;
// Compared against when the merchant does not exist, so both paths do the same work.
const ABSENT = { webhookUsername: "\u0000absent", webhookPasswordHash: "0".repeat(64) };

function parseBasic(authorization: string | undefined): { username: string; password: string } | null {
  if (!authorization) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!match?.[1]) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Checks a delivery's Basic credential against the merchant's webhook credential.
 * Unknown merchant, malformed header and wrong password all take the same path and time, so the answer reveals nothing.
 */
export async function isAuthenticDelivery(db: Database, merchantId: string, authorization: string | undefined): Promise<boolean> {
  const row = MERCHANT_ID.test(merchantId)
    ? await db
        .select({ webhookUsername: merchants.webhookUsername, webhookPasswordHash: merchants.webhookPasswordHash })
        .from(merchants)
        .where(eq(merchants.id, merchantId))
        .get()
    : undefined;
  const expected = row ?? ABSENT;
  const presented = parseBasic(authorization) ?? { username: "", password: "" };
  const usernameOk = constantTimeEqual(presented.username, expected.webhookUsername);
  const passwordOk = constantTimeEqual(await hashCredential(presented.password), expected.webhookPasswordHash);
  return row !== undefined && usernameOk && passwordOk;
}
