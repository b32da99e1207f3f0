// Fault rules set by tests through the admin interface: each applies to the next `count` matching
// events, or until `forMs` has passed, or (neither given) until cleared.

export interface FaultWindow {
  /** Apply to this many matching events, then expire. */
  count?: number;
  /** Apply for this long, then expire. */
  forMs?: number;
}

export interface IdentityFilter {
  deviceId?: string;
  moduleId?: string;
}

interface Rule<T> {
  value: T;
  filter: IdentityFilter;
  remaining: number | undefined;
  until: number | undefined;
}

function checkWindow(window: FaultWindow): void {
  if (window.count !== undefined && !(Number.isInteger(window.count) && window.count > 0)) {
    throw new RangeError(`count must be a positive integer, not ${window.count}`);
  }
  if (window.forMs !== undefined && !(Number.isFinite(window.forMs) && window.forMs > 0)) {
    throw new RangeError(`forMs must be a positive number of milliseconds, not ${window.forMs}`);
  }
}

/** Rules of one kind; `take` finds the first live rule matching an identity and consumes one use. */
export class FaultRules<T> {
  private rules: Rule<T>[] = [];

  add(value: T, window: FaultWindow, filter: IdentityFilter = {}): void {
    checkWindow(window);
    this.rules.push({
      value,
      filter,
      remaining: window.count,
      until: window.forMs === undefined ? undefined : Date.now() + window.forMs,
    });
  }

  clear(): void {
    this.rules = [];
  }

  get active(): number {
    this.expire();
    return this.rules.length;
  }

  take(identity: IdentityFilter = {}): T | undefined {
    this.expire();
    const rule = this.rules.find(
      (r) =>
        (r.filter.deviceId === undefined || r.filter.deviceId === identity.deviceId) &&
        (r.filter.moduleId === undefined || r.filter.moduleId === identity.moduleId),
    );
    if (!rule) return undefined;
    if (rule.remaining !== undefined) rule.remaining -= 1;
    this.expire();
    return rule.value;
  }

  private expire(): void {
    const now = Date.now();
    this.rules = this.rules.filter((r) => (r.remaining === undefined || r.remaining > 0) && (r.until === undefined || r.until > now));
  }
}
