/** Sends JSON messages in batches of at most 100 (Cloudflare's sendBatch limit); nothing to send is a no-op. */
export async function sendAll(queue: Queue, bodies: readonly unknown[], delaySeconds?: number): Promise<void> {
  for (let i = 0; i < bodies.length; i += 100) {
    await queue.sendBatch(bodies.slice(i, i + 100).map((body) => ({ body, contentType: "json" as const, delaySeconds })));
  }
}
