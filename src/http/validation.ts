import type { Context, ValidationTargets } from "hono";
import type { z } from "zod";
import { ApiError } from "../errors";
import { describeQueryIssues } from "../transactions/api-schemas";
import { describeIssues } from "./body";

type ValidationResult =
  | { success: true; target: keyof ValidationTargets }
  | { success: false; error: z.core.$ZodError; target: keyof ValidationTargets };

/**
 * The one hook of every zod validator (the status API's OpenAPIHono default, the admin routes' `zValidator`): a failure
 * becomes the service's error envelope, never zod's raw output.
 */
export function validationHook(result: ValidationResult, c: Context): void {
  if (result.success) return;
  // A path id of impossible shape names nothing there is.
  if (result.target === "param") throw new ApiError("not_found", `${c.req.path} not found`);
  if (result.target === "json" || result.target === "form") throw new ApiError("invalid_body", describeIssues(result.error));
  if (result.target === "query") throw new ApiError("invalid_query", describeQueryIssues(result.error));
  throw new ApiError("bad_request", describeQueryIssues(result.error));
}
