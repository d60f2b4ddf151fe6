/** Seconds before the next try: exponential in the attempt, capped, with full jitter; a server's hint is a floor. */
export function retryDelaySeconds(attempts: number, hintMs: number | null = null, random: () => number = Math.random): number {
  const ceiling = Math.min(2 ** Math.max(0, attempts), 300);
  const jittered = Math.max(1, Math.round(ceiling / 2 + (random() * ceiling) / 2));
  const hinted = hintMs === null ? 0 : Math.ceil(hintMs / 1000);
  // Cloudflare Queues accept at most 12 hours of delay.
  return Math.min(Math.max(jittered, hinted), 43_200);
}
