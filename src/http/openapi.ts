import { errorResponse } from "../transactions/api-schemas";

/** Name of the bearer security scheme in the OpenAPI document. */
export const MERCHANT_API_KEY_SCHEME = "merchantApiKey";

/** Shared by every status API route: the bearer scheme, and the error answers every authenticated route can give. */
export const security = [{ [MERCHANT_API_KEY_SCHEME]: [] }];

export const json = <S>(schema: S, description: string) => ({ description, content: { "application/json": { schema } } });

export const errors = {
  400: json(
    errorResponse,
    "`invalid_query`: an unknown, repeated or malformed query parameter; `invalid_cursor`: a cursor this API did not issue; " +
      "`bad_request`: the admin token without a well-formed `X-Merchant-Id`.",
  ),
  401: json(errorResponse, "`unauthorized`: missing, unknown, malformed or revoked API key."),
  429: {
    ...json(errorResponse, "`rate_limited`: too many requests for this API key."),
    headers: { "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer" as const } } },
  },
};
