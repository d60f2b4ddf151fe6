import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

interface Page {
  dead_letters: { id: string; created_at: string }[];
  next_cursor: string | null;
}

describe("admin API: dead letters", () => {
  it("pages newest first with a cursor until next_cursor is null; a bad cursor is a 400", async () => {
    const { merchant } = await createMerchant();
    const insert = shardedDb.prepare(
      "INSERT INTO dead_letters (id, queue, merchant_id, body, error, attempts, created_at) VALUES (?, 'smart-router-webhooks', ?, '{}', 'x', 1, ?)",
    );
    // 130 letters, several sharing a timestamp, so the keyset needs the id as well.
    await shardedDb.batch(
      Array.from({ length: 130 }, (_, i) =>
        insert.bind(
          `dl_${merchant.id}_${String(i).padStart(3, "0")}`,
          merchant.id,
          `2026-11-01T10:00:${String(Math.floor(i / 3) % 60).padStart(2, "0")}.000Z`,
        ),
      ),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `&cursor=${cursor}` : "";
      const response = await call(`/admin/dead-letters?merchant=${merchant.id}${query}`, { headers: ADMIN });
      expect(response.status).toBe(200);
      const page = (await response.json()) as Page;
      seen.push(...page.dead_letters.map((letter) => letter.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 5);
    expect(pages).toBe(2);
    expect(new Set(seen).size).toBe(130);
    expect(seen[0]).toBe(`dl_${merchant.id}_129`);
    expect(seen.at(-1)).toBe(`dl_${merchant.id}_000`);
    const bad = await call(`/admin/dead-letters?merchant=${merchant.id}&cursor=not-a-cursor!`, { headers: ADMIN });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_cursor");
  });
});
