// Section 3 — limiter: the pure pacer (src/rate-limiter/pacer.ts, the code inside the Durable Object) in simulated
// time, against the emulator's GCRA (sandbox/gcra.ts) standing in for Smart Router's bucket. Calls travel to the
// "server" with a random one-way latency, its answers (x-ratelimit, x-ratelimit-remaining, 429 + Retry-After) come
// back the same way and are fed to `observe`, as SmartRouterClient does.
import "./lib/ts-resolve.mjs";
import { summarize } from "./lib/stats.mjs";

const { acquire, initialPacerState, observe } = await import("../../src/rate-limiter/pacer.ts");
const { gcraTake } = await import("../../sandbox/gcra.ts");

const MINUTE = 60_000;

/** Deterministic PRNG (mulberry32), so every run simulates the same traffic. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Simulates `durationMs` at 1 ms resolution. Greedy callers (per lane) call again as soon as their previous call is
 * answered, or retry when the pacer says; `interactivePerMinute` adds Poisson-arriving interactive calls that each wait
 * until granted (their wait is what a checkout would feel).
 */
function simulate({ rpm, burst, batchShare, greedyInteractive, greedyBatch, interactivePerMinute = 0, durationMs, latencyMs, seed }) {
  const rand = random(seed);
  const bucket = "primary";
  const state = initialPacerState({ primary_rpm: rpm, batch_share: batchShare }, 0);
  const server = { state: undefined, accepted: 0, refused: 0, byLane: { interactive: 0, batch: 0 } };
  const latency = () => latencyMs[0] + Math.floor(rand() * (latencyMs[1] - latencyMs[0] + 1));
  const timeline = new Map(); // t -> [{kind: "arrive"|"answer", ...}]
  const at = (t, item) => {
    const list = timeline.get(t);
    if (list) list.push(item);
    else timeline.set(t, [item]);
  };
  const callers = [
    ...Array.from({ length: greedyInteractive }, () => ({ lane: "interactive", nextAt: 0, busy: false })),
    ...Array.from({ length: greedyBatch }, () => ({ lane: "batch", nextAt: 0, busy: false })),
  ];
  const waits = [];
  const pending = []; // Poisson interactive calls not granted yet: {wantedAt, nextAt}
  let nextArrival = interactivePerMinute > 0 ? Math.floor((-Math.log(1 - rand()) * MINUTE) / interactivePerMinute) : Infinity;
  const grants = { interactive: 0, batch: 0 };

  const send = (now, lane, caller) => {
    grants[lane] += 1;
    at(now + latency(), { kind: "arrive", lane, caller });
  };

  for (let now = 0; now < durationMs; now++) {
    for (const item of timeline.get(now) ?? []) {
      if (item.kind === "arrive") {
        const decision = gcraTake(server.state, now, { rpm, burst });
        server.state = decision.state;
        if (decision.allowed) {
          server.accepted += 1;
          server.byLane[item.lane] += 1;
        } else {
          server.refused += 1;
        }
        at(now + latency(), {
          kind: "answer",
          caller: item.caller,
          observation: {
            bucket,
            status: decision.allowed ? 200 : 429,
            limitPerMinute: rpm,
            remaining: decision.remaining,
            retryAfterMs: decision.allowed ? undefined : Math.max(1000, Math.ceil(decision.retryAfterMs / 1000) * 1000),
          },
        });
      } else {
        observe(state, item.observation, now);
        if (item.caller) {
          item.caller.busy = false;
          item.caller.nextAt = now;
        }
      }
    }
    timeline.delete(now);

    while (nextArrival <= now) {
      pending.push({ wantedAt: nextArrival, nextAt: nextArrival });
      nextArrival += Math.max(1, Math.floor((-Math.log(1 - rand()) * MINUTE) / interactivePerMinute));
    }
    for (let i = 0; i < pending.length; i++) {
      const call = pending[i];
      if (call.nextAt > now) continue;
      const permit = acquire(state, bucket, "interactive", now);
      if (permit.granted) {
        waits.push(now - call.wantedAt);
        send(now, "interactive", null);
        pending.splice(i, 1);
        i -= 1;
      } else {
        call.nextAt = now + permit.retryAfterMs;
      }
    }
    for (const caller of callers) {
      if (caller.busy || caller.nextAt > now) continue;
      const permit = acquire(state, bucket, caller.lane, now);
      if (permit.granted) {
        caller.busy = true;
        send(now, caller.lane, caller);
      } else {
        caller.nextAt = now + permit.retryAfterMs;
      }
    }
  }
  // Calls still in flight at the end arrive after the window: let the server judge them too (they count for overshoot).
  for (const t of [...timeline.keys()].sort((a, b) => a - b)) {
    for (const item of timeline.get(t)) {
      if (item.kind !== "arrive") continue;
      const decision = gcraTake(server.state, t, { rpm, burst });
      server.state = decision.state;
      if (decision.allowed) server.accepted += 1;
      else server.refused += 1;
    }
  }
  const minutes = durationMs / MINUTE;
  const capacity = rpm * minutes + burst;
  return {
    grants,
    serverAccepted: server.accepted,
    overshoot: server.refused,
    capacity,
    utilisation: server.accepted / capacity,
    batchShareOfRate: server.byLane.batch / (rpm * minutes),
    interactiveWaitMs: summarize(waits),
    interactiveNotGranted: pending.length,
  };
}

export function benchLimiter({ durationMs = MINUTE } = {}) {
  const started = performance.now();
  // Smart Router's documented example rate and the emulator's default burst; a 0.5 batch share (the default).
  const base = { rpm: 3000, burst: 20, batchShare: 0.5, durationMs, latencyMs: [5, 60] };
  const saturation = simulate({ ...base, greedyInteractive: 50, greedyBatch: 50, seed: 1 });
  // Batch saturating its lane (200 workers) while checkouts ask for 30% of the rate, arriving at random.
  const mixed = simulate({ ...base, greedyInteractive: 0, greedyBatch: 200, interactivePerMinute: 0.3 * base.rpm, seed: 2 });
  return {
    model: {
      server: "sandbox/gcra.ts gcraTake, rpm 3000, burst 20 (emulator default)",
      pacer: "src/rate-limiter/pacer.ts acquire/observe, configured 3000 rpm, batch_share 0.5",
      latencyMs: base.latencyMs,
      simulatedMs: durationMs,
    },
    saturation: { callers: { interactive: 50, batch: 50 }, ...saturation },
    interactiveUnderBatch: { callers: { batch: 200, interactivePerMinute: 0.3 * base.rpm }, ...mixed },
    wallMs: performance.now() - started,
  };
}

/**
 * Real-time sanity run against the Durable Object itself (workerd via Miniflare): greedy callers in both lanes for a few
 * seconds; the grant times seen in Node are then replayed against the emulator's GCRA to count what it would refuse.
 */
export async function benchLimiterDurableObject(worker, { durationMs = 5000, rpm = 3000, burst = 20, callersPerLane = 8 } = {}) {
  const namespace = await worker.mf.getDurableObjectNamespace("RATE_LIMITER");
  const stub = namespace.get(namespace.idFromName("proj_benchlimiter"));
  const settings = { primary_rpm: rpm, batch_share: 0.5 };
  const grants = { interactive: [], batch: [] };
  let denials = 0;
  const started = Date.now();
  const deadline = started + durationMs;
  const caller = async (lane) => {
    while (Date.now() < deadline) {
      const permit = await stub.acquire("primary", lane, settings);
      if (permit.granted) grants[lane].push(Date.now() - started);
      else {
        denials += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.min(permit.retryAfterMs, Math.max(0, deadline - Date.now()))));
      }
    }
  };
  await Promise.all([
    ...Array.from({ length: callersPerLane }, () => caller("interactive")),
    ...Array.from({ length: callersPerLane }, () => caller("batch")),
  ]);
  const all = [...grants.interactive, ...grants.batch].sort((a, b) => a - b);
  let state;
  let refused = 0;
  for (const t of all) {
    const decision = gcraTake(state, t, { rpm, burst });
    state = decision.state;
    if (!decision.allowed) refused += 1;
  }
  return {
    durationMs,
    rpm,
    callers: { interactive: callersPerLane, batch: callersPerLane },
    grants: { interactive: grants.interactive.length, batch: grants.batch.length },
    denials,
    overshoot: refused,
    grantRateVsLimit: all.length / ((rpm * durationMs) / MINUTE),
  };
}
