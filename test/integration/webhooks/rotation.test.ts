import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hashCredential } from "../../../src/security/credentials";
import { ADMIN, basic, type CreatedMerchant, call, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

type Rotated = { webhook: { path: string; username: string; password: string; previous_valid_until: string } };
type Envelope = { error: { code: string; message: string; request_id: string } };

const HOUR_MS = 3_600_000;

function rotate(merchantId: string, body?: string, headers: Record<string, string> = ADMIN) {
  return call(`/admin/merchants/${merchantId}/webhook-credential`, { method: "POST", headers, body });
}

async function rotated(merchantId: string, body?: string): Promise<Rotated> {
  const response = await rotate(merchantId, body);
  if (response.status !== 201) throw new Error(`rotate: ${response.status} ${await response.text()}`);
  return response.json();
}

/** A delivery with this password and the merchant's username; answers the status. */
async function deliverWith(merchant: CreatedMerchant, password: string, eventId = "ev_rotation1"): Promise<number> {
  const response = await call(merchant.webhook.path, {
    method: "POST",
    headers: { authorization: basic(merchant.webhook.username, password) },
    body: JSON.stringify({ event_id: eventId }),
  });
  await response.body?.cancel();
  return response.status;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("webhook credential rotation: happy path", () => {
  it("issues a new password shown once; the old one keeps working for the default 24 h overlap", async () => {
    const merchant = await createMerchant();
    const before = Date.now();
    const response = await rotate(merchant.merchant.id);
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as Rotated;
    expect(Object.keys(body.webhook).sort()).toEqual(["password", "path", "previous_valid_until", "username"]);
    expect(body.webhook).toMatchObject({ path: merchant.webhook.path, username: merchant.webhook.username });
    expect(body.webhook.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(body.webhook.password).not.toBe(merchant.webhook.password);
    const validUntil = Date.parse(body.webhook.previous_valid_until);
    expect(validUntil).toBeGreaterThanOrEqual(before + 24 * HOUR_MS);
    expect(validUntil).toBeLessThanOrEqual(Date.now() + 24 * HOUR_MS);

    expect(await deliverWith(merchant, body.webhook.password)).toBe(200);
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(200);
  });

  it("takes overlap_hours; the old password stops at previous_valid_until, the new one goes on", async () => {
    const merchant = await createMerchant();
    const { webhook } = await rotated(merchant.merchant.id, JSON.stringify({ overlap_hours: 2 }));
    const validUntil = Date.parse(webhook.previous_valid_until);
    expect(validUntil - Date.now()).toBeGreaterThan(2 * HOUR_MS - 60_000);
    expect(validUntil - Date.now()).toBeLessThanOrEqual(2 * HOUR_MS);
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(200);

    // The clock moves past the overlap (the directory reloads too, being more than a minute old then).
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + 2 * HOUR_MS + 1000);
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(401);
    expect(await deliverWith(merchant, webhook.password)).toBe(200);
  });

  it("with overlap_hours 0 the old password is refused at once", async () => {
    const merchant = await createMerchant();
    const { webhook } = await rotated(merchant.merchant.id, JSON.stringify({ overlap_hours: 0 }));
    expect(Date.parse(webhook.previous_valid_until)).toBeLessThanOrEqual(Date.now());
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(401);
    expect(await deliverWith(merchant, webhook.password)).toBe(200);
  });

  it("shows when the previous password ends on GET /admin/merchants/{id}", async () => {
    const merchant = await createMerchant();
    const fresh = (await (await call(`/admin/merchants/${merchant.merchant.id}`, { headers: ADMIN })).json()) as {
      merchant: { webhook: Record<string, unknown> };
    };
    expect(fresh.merchant.webhook).toEqual({
      path: merchant.webhook.path,
      username: merchant.webhook.username,
      previous_valid_until: null,
    });
    const { webhook } = await rotated(merchant.merchant.id);
    const shown = (await (await call(`/admin/merchants/${merchant.merchant.id}`, { headers: ADMIN })).json()) as {
      merchant: { webhook: Record<string, unknown> };
    };
    expect(shown.merchant.webhook).toEqual({
      path: merchant.webhook.path,
      username: merchant.webhook.username,
      previous_valid_until: webhook.previous_valid_until,
    });
  });

  it("accepts an empty body and a body of {} alike (defaults)", async () => {
    const merchant = await createMerchant();
    for (const body of ["", "{}"]) {
      const { webhook } = await rotated(merchant.merchant.id, body);
      expect(Date.parse(webhook.previous_valid_until) - Date.now()).toBeGreaterThan(23 * HOUR_MS);
    }
  });
});

describe("webhook credential rotation: errors", () => {
  it("404 for an unknown merchant, and for an id that cannot be one", async () => {
    for (const id of ["no-such-merchant", "Not%20An%20Id", "a".repeat(65)]) {
      const response = await rotate(id);
      expect(response.status).toBe(404);
      expect(((await response.json()) as Envelope).error.code).toBe("not_found");
    }
  });

  it.each([
    ["a negative overlap", '{"overlap_hours":-1}'],
    ["an overlap over a week", '{"overlap_hours":169}'],
    ["a fractional overlap", '{"overlap_hours":1.5}'],
    ["an overlap as a string", '{"overlap_hours":"24"}'],
    ["an overlap of null", '{"overlap_hours":null}'],
  ])("400 naming overlap_hours for %s", async (_name, body) => {
    const merchant = await createMerchant();
    const response = await rotate(merchant.merchant.id, body);
    expect(response.status).toBe(400);
    const envelope = (await response.json()) as Envelope;
    expect(envelope.error.code).toBe("invalid_body");
    expect(envelope.error.message).toContain("overlap_hours");
    // Refused: the credential is unchanged.
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(200);
  });

  it.each([
    ["an unknown field", '{"overlap":24}', "overlap"],
    ["not JSON", "{", "JSON"],
    ["an array", "[24]", "object"],
  ])("400 for %s, naming it", async (_name, body, named) => {
    const merchant = await createMerchant();
    const response = await rotate(merchant.merchant.id, body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as Envelope).error.message).toContain(named);
  });

  it("two rotations at once: one is a 201, the other a 409, and the password issued works", async () => {
    const merchant = await createMerchant();
    const responses = await Promise.all([rotate(merchant.merchant.id), rotate(merchant.merchant.id)]);
    const statuses = responses.map((response) => response.status);
    // Both read the current password before either writes: the compare-and-set lets the first write in and refuses the other.
    expect([...statuses].sort()).toEqual([201, 409]);
    const issued = await Promise.all(responses.filter((r) => r.status === 201).map(async (r) => ((await r.json()) as Rotated).webhook));
    // The new password is current and the original one, now the previous, still works.
    for (const webhook of issued) expect(await deliverWith(merchant, webhook.password)).toBe(200);
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(200);
    for (const response of responses.filter((r) => r.status === 409)) {
      expect(((await response.json()) as Envelope).error.code).toBe("conflict");
    }
  });
});

describe("webhook credential rotation: security", () => {
  it("401 without the admin token, and the credential is unchanged", async () => {
    const merchant = await createMerchant();
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer not-the-token" },
      { authorization: basic("admin", env.ADMIN_TOKEN) },
    ];
    for (const headers of attempts) {
      const response = await rotate(merchant.merchant.id, undefined, headers);
      expect(response.status).toBe(401);
      expect(JSON.stringify(await response.json())).not.toMatch(/password/);
    }
    const row = await shardedDb
      .prepare("SELECT webhook_password_previous_hash AS previous FROM merchants WHERE id = ?")
      .bind(merchant.merchant.id)
      .first<{ previous: string | null }>();
    expect(row?.previous).toBeNull();
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(200);
  });

  it("stores both passwords only as hashes and never shows the new one again", async () => {
    const merchant = await createMerchant();
    const { webhook } = await rotated(merchant.merchant.id);
    const row = await shardedDb
      .prepare("SELECT webhook_password_hash AS current, webhook_password_previous_hash AS previous FROM merchants WHERE id = ?")
      .bind(merchant.merchant.id)
      .first<{ current: string; previous: string }>();
    expect(row).toEqual({ current: await hashCredential(webhook.password), previous: await hashCredential(merchant.webhook.password) });
    const stored = JSON.stringify(
      await shardedDb.prepare("SELECT * FROM merchants WHERE id = ?").bind(merchant.merchant.id).first<Record<string, unknown>>(),
    );
    expect(stored).not.toContain(webhook.password);
    expect(stored).not.toContain(merchant.webhook.password);

    const shown = await (await call(`/admin/merchants/${merchant.merchant.id}`, { headers: ADMIN })).text();
    for (const secret of [webhook.password, merchant.webhook.password, row?.current ?? "", row?.previous ?? ""]) {
      expect(shown).not.toContain(secret);
    }
  });

  it("a second rotation within the overlap ends the first password: only one previous password is ever accepted", async () => {
    const merchant = await createMerchant();
    const first = await rotated(merchant.merchant.id);
    const second = await rotated(merchant.merchant.id);
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(401);
    expect(await deliverWith(merchant, first.webhook.password)).toBe(200);
    expect(await deliverWith(merchant, second.webhook.password)).toBe(200);
  });

  it("a password expired after its overlap is refused exactly like a wrong one", async () => {
    const merchant = await createMerchant();
    await rotated(merchant.merchant.id, '{"overlap_hours":0}');
    const post = (password: string) =>
      call(merchant.webhook.path, {
        method: "POST",
        headers: { authorization: basic(merchant.webhook.username, password) },
        body: '{"event_id":"ev_expired1"}',
      });
    const expired = await post(merchant.webhook.password);
    const wrong = await post("never-issued");
    expect(expired.status).toBe(401);
    const strip = (envelope: Envelope) => ({ ...envelope.error, request_id: undefined });
    expect(strip((await expired.json()) as Envelope)).toEqual(strip((await wrong.json()) as Envelope));
    expect([...expired.headers.keys()].sort()).toEqual([...wrong.headers.keys()].sort());
  });

  it("logs no password while rotating and accepting deliveries with either password", async () => {
    const merchant = await createMerchant();
    const lines: string[] = [];
    for (const level of ["log", "warn", "error", "info", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      });
    }
    const { webhook } = await rotated(merchant.merchant.id);
    expect(await deliverWith(merchant, webhook.password)).toBe(200);
    expect(await deliverWith(merchant, merchant.webhook.password)).toBe(200);
    expect(await deliverWith(merchant, "wrong-password-logged?")).toBe(401);
    const output = lines.join("\n");
    expect(output).toContain("webhook.delivery");
    for (const secret of [webhook.password, merchant.webhook.password, "wrong-password-logged?", await hashCredential(webhook.password)]) {
      expect(output).not.toContain(secret);
    }
  });
});
