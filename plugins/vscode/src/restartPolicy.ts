// When the server dies, start it again after a delay that doubles with each crash; give up when
// it keeps crashing, and say so.

export interface RestartPolicyOptions {
  /** Crashes tolerated within `windowMs`; one more and the server stays down. */
  maxRestarts: number;
  /** Crashes older than this are forgotten (milliseconds). */
  windowMs: number;
  /** The delay before the first restart; doubled for each crash in the window (milliseconds). */
  firstDelayMs: number;
  /** The longest delay (milliseconds). */
  maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  maxRestarts: 5,
  windowMs: 3 * 60 * 1000,
  firstDelayMs: 1000,
  maxDelayMs: 16000,
};

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; message: string };

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(private readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** The server died at `now` (milliseconds): restart it after a delay, or not. */
  onCrash(now: number): RestartDecision {
    this.crashes = this.crashes.filter((t) => now - t < this.options.windowMs);
    this.crashes.push(now);
    const n = this.crashes.length;
    if (n > this.options.maxRestarts) {
      const minutes = Math.round(this.options.windowMs / 60000);
      return {
        restart: false,
        message: `The ponder server stopped ${n} times in ${minutes} minutes and was not restarted. See the "Ponder" output, then run "Ponder: Restart Server".`,
      };
    }
    return { restart: true, delayMs: Math.min(this.options.firstDelayMs * 2 ** (n - 1), this.options.maxDelayMs) };
  }

  /** A restart the user asked for starts afresh. */
  reset(): void {
    this.crashes = [];
  }
}
