import type { merchants } from "../db/schema";
import type { AppConfig, AppEnv } from "../env";
import { limiterFor } from "../rate-limiter/client";
import type { Lane } from "../rate-limiter/limiter";
import { SmartRouterClient } from "../smart-router/client";
import { smartRouterCredentials } from "./merchants";

/** A Smart Router client with the merchant's decrypted credentials, paced by its project's limiter in the given lane. */
export async function smartRouterFor(
  env: AppEnv,
  config: AppConfig,
  merchant: typeof merchants.$inferSelect,
  lane: Lane,
  onCall?: ConstructorParameters<typeof SmartRouterClient>[0]["onCall"],
) {
  const credentials = await smartRouterCredentials({ config, merchant });
  return new SmartRouterClient({
    baseUrl: config.SMART_ROUTER_API_URL,
    credentials,
    limiter: limiterFor(env, merchant.smartRouterProjectId, merchant.rateLimits),
    lane,
    onCall,
  });
}
