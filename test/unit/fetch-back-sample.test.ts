import { describe, expect, it } from "vitest";
import { SmartRouterError } from "../../src/smart-router/errors";
import { judgeSample, type Verification } from "../../src/smart-router/fetch-back";

const unknown: Verification = { kind: "not_found", detail: "no such event" };
const pacerRefusal = new SmartRouterError("rate_limited", "pacer refused", { retryAfterMs: 2_000 });
const refused: Verification = { kind: "retry", error: pacerRefusal };
const failed: Verification = { kind: "retry", error: new SmartRouterError("server", "503", { status: 503 }) };
const foreign: Verification = { kind: "rejected", detail: "another project's event" };

describe("fetch-back: what a sample of unlisted ids says of the others", () => {
  it("walks on and fetches when Smart Router knows one of the sample (a genuine backlog)", () => {
    expect(judgeSample([unknown, foreign]).verdict).toBe("fetch");
    expect(judgeSample([failed, foreign]).verdict).toBe("fetch");
  });

  it("judges the rest forged when none is known and one is unknown, even beside a failure", () => {
    expect(judgeSample([unknown, unknown]).verdict).toBe("forged");
    // Waiting here sent a flood's forged ids round the parking again and again (chaos --flood: 0.159 calls each).
    expect(judgeSample([unknown, refused]).verdict).toBe("forged");
    expect(judgeSample([failed, unknown]).verdict).toBe("forged");
  });

  it("waits, with the sample's error, only when no answer could tell", () => {
    const judged = judgeSample([refused, failed]);
    expect(judged).toEqual({ verdict: "wait", error: pacerRefusal });
  });

  it("fetches one by one when there was no sample to judge by", () => {
    expect(judgeSample([]).verdict).toBe("fetch");
  });
});
