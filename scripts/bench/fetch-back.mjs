// Section 4 — fetch-back: Smart Router API calls per verified event under a burst of 1,000 webhooks for one project.
// Runs the real SmartRouterClient and verifyEvents (src/) in Node against the emulator; calls are counted by the
// emulator itself (GET /_sandbox/projects/{p}/counters). Queue batches hold 100 messages (wrangler.toml).
import "./lib/ts-resolve.mjs";
import { randomBytes } from "node:crypto";
import { mapConcurrent } from "../stack.mjs";
import { startEmulator } from "./lib/emulator.mjs";

const { SmartRouterClient } = await import("../../src/smart-router/client.ts");
const { unlimited } = await import("../../src/rate-limiter/limiter.ts");
const { verifyEvents, COALESCE_THRESHOLD } = await import("../../src/smart-router/fetch-back.ts");

const BURST = 1000;
const QUEUE_BATCH = 100;

export async function benchFetchBack() {
  const emulator = startEmulator();
  try {
    let serial = 0;
    const openProject = async () => {
      const projectId = `proj_benchfb${(serial++).toString()}${randomBytes(3).toString("hex")}`;
      const secretKey = `sk_${randomBytes(16).toString("hex")}`;
      await emulator.createProject(projectId, secretKey);
      const client = new SmartRouterClient({
        baseUrl: "http://smart-router.sandbox",
        credentials: { projectId, secretKey },
        limiter: unlimited,
        lane: "interactive",
        fetch: (url, init) => emulator.fetch(new Request(url, init)),
      });
      return { projectId, client };
    };
    // Fires exactly `count` events: 4242 cards fire 3 each (requested, authorized, captured), declined cards 2.
    const fire = async (projectId, count) => {
      const declined = [0, 2, 1][count % 3];
      for (let i = 0; i < (count - 2 * declined) / 3; i++) await emulator.pay(projectId, "4242424242424242");
      for (let i = 0; i < declined; i++) await emulator.pay(projectId, "4000000000000002");
      const fired = await emulator.newEvents(projectId);
      if (fired.length !== count) throw new Error(`fetch-back: fired ${fired.length} events, wanted ${count}`);
      return fired.map((event) => event.id);
    };
    const measure = async (label, description, work) => {
      const { projectId, client } = await openProject();
      const verified = await work(projectId, client);
      const calls = await emulator.apiCalls(projectId);
      return { label, description, verified, apiCalls: calls.total, listOrSingle: calls, callsPerVerifiedEvent: calls.total / verified };
    };
    const countVerified = (results) => [...results.values()].filter((v) => v.kind === "verified").length;

    const naive = await measure("naive", "one GET /events/{id} per webhook", async (projectId, client) => {
      const ids = await fire(projectId, BURST);
      const events = await mapConcurrent(ids, 6, async (id) =>
        client.fetchEvent(id).then(
          () => true,
          () => false,
        ),
      );
      return events.filter(Boolean).length;
    });

    const keepingUp = await measure(
      "coalesced, consumer keeping up",
      "each queue batch of 100 is verified as soon as it is full (the newest 100 events)",
      async (projectId, client) => {
        let verified = 0;
        for (let batch = 0; batch < BURST / QUEUE_BATCH; batch++) {
          const ids = await fire(projectId, QUEUE_BATCH);
          verified += countVerified(await verifyEvents(client, projectId, ids));
        }
        return verified;
      },
    );

    const behind = await measure(
      "coalesced, whole burst queued first",
      "all 1,000 events fire before the first queue batch is consumed; 10 batches of 100, oldest first",
      async (projectId, client) => {
        const ids = await fire(projectId, BURST);
        let verified = 0;
        for (let i = 0; i < ids.length; i += QUEUE_BATCH) {
          verified += countVerified(await verifyEvents(client, projectId, ids.slice(i, i + QUEUE_BATCH)));
        }
        return verified;
      },
    );

    return { burst: BURST, queueBatch: QUEUE_BATCH, coalesceThreshold: COALESCE_THRESHOLD, naive, keepingUp, behind };
  } finally {
    emulator.close();
  }
}
