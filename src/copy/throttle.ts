/**
 * Additive-increase / multiplicative-decrease of the number of objects in flight: halve it when the
 * service says slow down (at most once per cool-down), creep back up one step per run of successes.
 */
export class AdaptiveConcurrency {
  private current: number;
  private successes = 0;
  private lastDecrease = 0;

  constructor(
    private readonly max: number,
    private readonly coolDownMs = 1000,
  ) {
    this.current = max;
  }

  get value(): number {
    return this.current;
  }

  /** Returns true when the limit went down. */
  onThrottle(nowMs = Date.now()): boolean {
    this.successes = 0;
    if (nowMs - this.lastDecrease < this.coolDownMs || this.current === 1) return false;
    this.lastDecrease = nowMs;
    this.current = Math.max(1, Math.floor(this.current / 2));
    return true;
  }

  onSuccess(): void {
    if (this.current >= this.max) return;
    this.successes += 1;
    if (this.successes >= this.current) {
      this.successes = 0;
      this.current += 1;
    }
  }
}
