import { afterAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../sandbox/index.ts";
import { api, BASE, control, createProject, pay, truth, uniqueProject } from "./helpers.ts";

const sandbox = createSandbox({ timeScale: 0.001 });
afterAll(() => sandbox.close());

interface ProjectBody {
  project: {
    project_id: string;
    sandbox: boolean;
    settings: { rates: Record<string, unknown>; chaos: Record<string, number>; auto_advance: boolean };
  };
}

describe("projects", () => {
  it("creates a project with defaults, reads and patches its settings", async () => {
    const id = uniqueProject();
    const created = await control<ProjectBody>(sandbox, "POST", "/projects", {
      project_id: id,
      secret_key: "sk",
      chaos: { drop_rate: 0.25 },
    });
    expect(created.status).toBe(201);
    expect(created.body.project).toMatchObject({ project_id: id, sandbox: true });
    expect(created.body.project.settings.rates).toEqual({
      primary: 3000,
      events: 3000,
      sandbox: 1200,
      burst: 20,
      sandbox_bucket: "exclusive",
    });
    expect(created.body.project.settings.chaos.drop_rate).toBe(0.25);
    expect(JSON.stringify(created.body)).not.toContain('"sk"');

    const patched = await control<ProjectBody>(sandbox, "PATCH", `/projects/${id}`, {
      chaos: { duplicate_rate: 0.5 },
      auto_advance: false,
    });
    expect(patched.body.project.settings.chaos).toMatchObject({ drop_rate: 0.25, duplicate_rate: 0.5 });
    expect(patched.body.project.settings.auto_advance).toBe(false);
    expect((await control<ProjectBody>(sandbox, "GET", `/projects/${id}`)).body.project.settings.auto_advance).toBe(false);
  });

  it("refuses duplicates and bad settings with clear errors", async () => {
    const id = await createProject(sandbox);
    const duplicate = await control(sandbox, "POST", "/projects", { project_id: id, secret_key: "other" });
    expect(duplicate.status).toBe(409);
    const cases: [string, unknown][] = [
      ["no secret", { project_id: uniqueProject() }],
      ["bad id", { project_id: "test proj", secret_key: "sk" }],
      ["colon in id", { project_id: "test:proj", secret_key: "sk" }],
      ["zero rate", { project_id: uniqueProject(), secret_key: "sk", rates: { sandbox: 0 } }],
      ["rate above 1", { project_id: uniqueProject(), secret_key: "sk", chaos: { drop_rate: 1.5 } }],
      ["unknown setting", { project_id: uniqueProject(), secret_key: "sk", chaos: { explode: true } }],
      ["unknown bucket mode", { project_id: uniqueProject(), secret_key: "sk", rates: { sandbox_bucket: "sometimes" } }],
    ];
    for (const [label, body] of cases) {
      const answer = await control(sandbox, "POST", "/projects", body);
      expect(answer.status, label).toBe(400);
      expect(answer.body.error_type, label).toBe("request.validation.error");
    }
    expect((await control(sandbox, "PATCH", `/projects/${id}`, { webhook: { max_attempts: 0 } })).status).toBe(400);
    expect((await control(sandbox, "GET", "/projects/test-proj_missing")).status).toBe(404);
  });

  it("deletes a project with its pending work; its credentials stop working", async () => {
    const id = await createProject(sandbox, { delays: { apm_ms: 50_000 } });
    await control(sandbox, "POST", `/projects/${id}/webhooks`, { url: "http://nowhere.test/" });
    await pay(sandbox, id, { apm: "sandbox-apm" });
    expect((await control(sandbox, "DELETE", `/projects/${id}`)).status).toBe(200);
    expect((await control(sandbox, "GET", `/projects/${id}/truth`)).status).toBe(404);
    expect((await api(sandbox, id, "/events")).status).toBe(401);
    expect((await control(sandbox, "DELETE", `/projects/${id}`)).status).toBe(404);
  });

  it("resets everything on POST /_sandbox/reset", async () => {
    const own = createSandbox({ timeScale: 0.001 });
    try {
      const id = await createProject(own);
      await control(own, "POST", "/sink/orders", { ok: true });
      expect((await control<{ projects: number }>(own, "GET", "/health")).body.projects).toBe(1);
      expect((await control(own, "POST", "/reset")).status).toBe(200);
      expect((await control<{ projects: number }>(own, "GET", "/health")).body.projects).toBe(0);
      expect((await control(own, "GET", `/projects/${id}`)).status).toBe(404);
      expect((await control<{ requests: unknown[] }>(own, "GET", "/sink/orders")).body.requests).toEqual([]);
    } finally {
      own.close();
    }
  });

  it("answers unknown control routes with 404 (never with the API's 401)", async () => {
    const answer = await control(sandbox, "GET", "/nothing-here");
    expect(answer.status).toBe(404);
    expect(answer.body.error_type).toBe("request.route-not-found");
  });
});

describe("webhook endpoint registration", () => {
  it("refuses URLs that are not http(s) and empty whitelists", async () => {
    const id = await createProject(sandbox);
    for (const body of [
      { url: "not a url" },
      { url: "ftp://files.test/" },
      { url: "http://ok.test/", events: [] },
      { url: "http://ok.test/", events: ["Not A Name"] },
    ]) {
      const answer = await control(sandbox, "POST", `/projects/${id}/webhooks`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
    }
    const listed = await control<{ endpoints: unknown[] }>(sandbox, "GET", `/projects/${id}/webhooks`);
    expect(listed.body.endpoints).toEqual([]);
  });
});

describe("truth", () => {
  it("lists every transaction's current state with operations, and every event in firing order", async () => {
    const id = await createProject(sandbox, { auto_advance: false });
    const card = await pay(sandbox, id, { card: "4242424242424242", metadata: { order: "1" } });
    const apm = await pay(sandbox, id, { apm: "sandbox-apm" });
    const seen = await truth(sandbox, id);
    expect(seen.transactions.map((tx) => [tx.id, tx.status])).toEqual([
      [card.id, "completed"],
      [apm.id, "pending"],
    ]);
    expect(seen.transactions[0]?.operations).toHaveLength(4);
    expect(seen.events.map((event) => `${event.transaction_id === card.id ? "card" : "apm"} ${event.name}`)).toEqual([
      "card transaction.requested",
      "card transaction.authorized",
      "card transaction.captured",
      "apm transaction.requested",
    ]);
  });
});

describe("fulfilment sink", () => {
  it("records any request, lists it, answers as configured, and clears", async () => {
    const name = `orders-${uniqueProject()}`;
    const first = await sandbox.fetch(
      new Request(`${BASE}/_sandbox/sink/${name}`, {
        method: "POST",
        headers: { "x-signature": "abc", "content-type": "application/json" },
        body: '{"order":1}',
      }),
    );
    expect(first.status).toBe(200);
    await sandbox.fetch(new Request(`${BASE}/_sandbox/sink/${name}`, { method: "POST", body: "plain text" }));

    const listed = await control<{ requests: { method: string; headers: Record<string, string>; body: string; json: unknown }[] }>(
      sandbox,
      "GET",
      `/sink/${name}`,
    );
    expect(listed.body.requests).toHaveLength(2);
    expect(listed.body.requests[0]).toMatchObject({ method: "POST", body: '{"order":1}', json: { order: 1 } });
    expect(listed.body.requests[0]?.headers["x-signature"]).toBe("abc");
    expect(listed.body.requests[1]).toMatchObject({ body: "plain text", json: null });

    expect((await control(sandbox, "PUT", `/sink/${name}`, { status: 503, times: 2 })).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await control(sandbox, "POST", `/sink/${name}`, { order: i })).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect((await control<{ requests: unknown[] }>(sandbox, "GET", `/sink/${name}`)).body.requests).toHaveLength(5);

    expect((await control(sandbox, "DELETE", `/sink/${name}`)).status).toBe(200);
    expect((await control<{ requests: unknown[] }>(sandbox, "GET", `/sink/${name}`)).body.requests).toEqual([]);
    expect((await control(sandbox, "PUT", `/sink/${name}`, { status: 42 })).status).toBe(400);
  });

  it("fails a share of first attempts only, by webhook-id, the same share on every run", async () => {
    const name = `endpoint-${uniqueProject()}`;
    expect((await control(sandbox, "PUT", `/sink/${name}`, { status: 503, first_attempts: 0.2 })).status).toBe(200);
    const post = async (id: string | null) =>
      (
        await sandbox.fetch(
          new Request(`${BASE}/_sandbox/sink/${name}`, { method: "POST", headers: id === null ? {} : { "webhook-id": id }, body: "{}" }),
        )
      ).status;
    const ids = Array.from({ length: 400 }, (_, i) => `msg_${i.toString(16).padStart(32, "0")}`);
    const first = new Map<string, number>();
    for (const id of ids) first.set(id, await post(id));
    const failed = ids.filter((id) => first.get(id) === 503);
    // A hash of the id decides, not a draw: 400 ids land near a fifth.
    expect(failed.length).toBeGreaterThan(400 * 0.12);
    expect(failed.length).toBeLessThan(400 * 0.28);
    expect(ids.every((id) => first.get(id) === 503 || first.get(id) === 200)).toBe(true);
    // Every later attempt of an id, failed first or not, is answered 200.
    for (const id of [...failed, ...ids.slice(0, 20)]) expect(await post(id)).toBe(200);
    // A request without a webhook-id is no first attempt of anything.
    expect(await post(null)).toBe(200);
    const requests = (await control<{ requests: { headers: Record<string, string>; answered: number }[] }>(sandbox, "GET", `/sink/${name}`))
      .body.requests;
    expect(requests.filter((r) => r.answered === 503).map((r) => r.headers["webhook-id"])).toEqual(failed);

    // The same ids on a fresh sink fail the same way.
    const again = `endpoint-${uniqueProject()}`;
    await control(sandbox, "PUT", `/sink/${again}`, { status: 500, first_attempts: 0.2 });
    const failedAgain: string[] = [];
    for (const id of ids) {
      const answer = await sandbox.fetch(new Request(`${BASE}/_sandbox/sink/${again}`, { method: "POST", headers: { "webhook-id": id } }));
      if (answer.status === 500) failedAgain.push(id);
    }
    expect(failedAgain).toEqual(failed);

    // 1 fails every first attempt, 0 none.
    const all = `endpoint-${uniqueProject()}`;
    await control(sandbox, "PUT", `/sink/${all}`, { status: 503, first_attempts: 1 });
    const none = `endpoint-${uniqueProject()}`;
    await control(sandbox, "PUT", `/sink/${none}`, { status: 503, first_attempts: 0 });
    for (const id of ids.slice(0, 10)) {
      expect(
        (await sandbox.fetch(new Request(`${BASE}/_sandbox/sink/${all}`, { method: "POST", headers: { "webhook-id": id } }))).status,
      ).toBe(503);
      expect(
        (await sandbox.fetch(new Request(`${BASE}/_sandbox/sink/${none}`, { method: "POST", headers: { "webhook-id": id } }))).status,
      ).toBe(200);
    }
  });

  it("refuses times with first_attempts, and a share outside 0..1", async () => {
    const name = `endpoint-${uniqueProject()}`;
    for (const body of [
      { status: 503, times: 2, first_attempts: 0.2 },
      { status: 503, first_attempts: 1.5 },
      { status: 503, first_attempts: -0.1 },
    ]) {
      const answer = await control(sandbox, "PUT", `/sink/${name}`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error_type).toBe("request.validation.error");
    }
  });
});
