/** Timers the emulator owns, so `close()`, a reset or a deleted project can cancel everything still due. */

export interface TimerHandle {
  readonly id: number;
}

export interface Scheduler {
  /** Runs `task` after `delayMs` × timeScale (emulated delays: backoff, async completion, injected latency). */
  after(owner: string, delayMs: number, task: () => void | Promise<void>): TimerHandle;
  /** Runs `task` after `delayMs` of real time, unscaled (waits on the real world, e.g. a receiver's timeout). */
  afterReal(owner: string, delayMs: number, task: () => void | Promise<void>): TimerHandle;
  /** Resolves after `delayMs` × timeScale. */
  sleep(delayMs: number): Promise<void>;
  cancel(timer: TimerHandle | null): void;
  /** Cancels every timer of one owner (a project id). */
  cancelOwner(owner: string): void;
  /** Cancels every timer, keeping the scheduler usable (a reset). */
  cancelAll(): void;
  /** Timers still due for one owner. */
  pending(owner: string): number;
  /** Cancels every timer for good. */
  close(): void;
}

export function createScheduler(timeScale: number, onError: (error: unknown) => void): Scheduler {
  const timers = new Map<number, { owner: string; handle: ReturnType<typeof setTimeout> }>();
  let nextId = 1;
  let closed = false;

  const start = (owner: string, delayMs: number, task: () => void | Promise<void>): TimerHandle => {
    const id = nextId++;
    if (closed) return { id };
    const handle = setTimeout(
      () => {
        timers.delete(id);
        if (closed) return;
        try {
          Promise.resolve(task()).catch(onError);
        } catch (error) {
          onError(error);
        }
      },
      Math.max(0, delayMs),
    );
    // On Node, emulated time alone must not keep a process (a test runner, a script) alive; workerd has no unref.
    (handle as unknown as { unref?: () => void }).unref?.();
    timers.set(id, { owner, handle });
    return { id };
  };

  return {
    after: (owner, delayMs, task) => start(owner, delayMs * timeScale, task),
    afterReal: (owner, delayMs, task) => start(owner, delayMs, task),
    sleep: (delayMs) => (delayMs <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, delayMs * timeScale))),
    cancel(timer) {
      if (!timer) return;
      const entry = timers.get(timer.id);
      if (!entry) return;
      clearTimeout(entry.handle);
      timers.delete(timer.id);
    },
    cancelOwner(owner) {
      for (const [id, entry] of timers) {
        if (entry.owner !== owner) continue;
        clearTimeout(entry.handle);
        timers.delete(id);
      }
    },
    pending(owner) {
      let count = 0;
      for (const entry of timers.values()) if (entry.owner === owner) count++;
      return count;
    },
    cancelAll() {
      for (const entry of timers.values()) clearTimeout(entry.handle);
      timers.clear();
    },
    close() {
      closed = true;
      this.cancelAll();
    },
  };
}
