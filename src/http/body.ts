import { createMiddleware } from "hono/factory";
import type { z } from "zod";
import { ApiError } from "../errors";
import { decodeUtf8Strict } from "../lib/encoding";

/**
 * Reads a request body as text, refusing (413) once it passes `maxBytes` without buffering the rest, whatever
 * Content-Length claims. With a Content-Length within the limit the body is read whole: HTTP framing ends the body at
 * that length, so it cannot grow past it (and the size is checked again). Without one (chunked), it is read chunk by
 * chunk and the read stops past the limit.
 */
export async function readBodyCapped(request: Request, maxBytes: number): Promise<string> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    throw new ApiError("payload_too_large", `body exceeds ${maxBytes} bytes`);
  }
  if (!request.body) return "";
  const bytes = declared !== null ? new Uint8Array(await request.arrayBuffer()) : await readChunksCapped(request.body, maxBytes);
  if (bytes.byteLength > maxBytes) throw new ApiError("payload_too_large", `body exceeds ${maxBytes} bytes`);
  try {
    return decodeUtf8Strict(bytes);
  } catch {
    throw new ApiError("invalid_body", "body is not valid UTF-8");
  }
}

/** The bytes of a body of unknown length, read until it ends or passes `maxBytes` (then cancelled: one chunk past, at most). */
async function readChunksCapped(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new ApiError("payload_too_large", `body exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const joined = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

/**
 * The body limit of every JSON route, ahead of its zod validator (http/validation.ts): reads at most `maxBytes` (413
 * past it, without buffering the rest), refuses what is not UTF-8 JSON, and hands the text on as `application/json`
 * whatever Content-Type said (callers never had to send one), so the validator parses exactly these bytes. With
 * `optional`, an empty body stands for `{}`.
 */
export const jsonBody = (maxBytes: number, { optional = false } = {}) =>
  createMiddleware(async (c, next) => {
    const text = (await readBodyCapped(c.req.raw, maxBytes)) || (optional ? "{}" : "");
    try {
      JSON.parse(text);
    } catch {
      throw new ApiError("invalid_body", text.length === 0 ? "body is empty; expected a JSON object" : "body is not valid JSON");
    }
    const headers = new Headers(c.req.raw.headers);
    headers.set("content-type", "application/json");
    // The length is the new body's (`{}` for an empty optional one), set by the runtime.
    headers.delete("content-length");
    c.req.raw = new Request(c.req.raw, { body: text, headers });
    await next();
  });

/** Describes zod issues in one line: `path: message; …`. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

/** Reads, parses and validates a JSON body; every failure is a 4xx ApiError. */
export async function parseJsonBody<S extends z.ZodType>(request: Request, schema: S, maxBytes: number): Promise<z.infer<S>> {
  const text = await readBodyCapped(request, maxBytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiError("invalid_body", text.length === 0 ? "body is empty; expected a JSON object" : "body is not valid JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ApiError("invalid_body", "body must be a JSON object");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new ApiError("invalid_body", describeIssues(parsed.error));
  return parsed.data;
}
