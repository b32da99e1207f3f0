// startupOrder, as IoT Edge defines it: modules start in ascending groups, and a group starts only
// once every module of the lower groups runs. Kubernetes has no such notion, so the reconciler
// creates a module's objects only when this policy admits it.

export interface StartupCandidate {
  id: string;
  startupOrder: number;
  /** Desired running (a stopped module is never waited for). */
  desiredRunning: boolean;
  /** Its objects exist already: a module once started is never held back again. */
  exists: boolean;
  ready: boolean;
}

export interface StartupDecision {
  admitted: boolean;
  /** The modules of lower groups that are not Ready yet, when held back. */
  waitingFor: string[];
}

export function admitByStartupOrder(candidates: readonly StartupCandidate[]): Map<string, StartupDecision> {
  const decisions = new Map<string, StartupDecision>();
  for (const candidate of candidates) {
    const waitingFor = candidates
      .filter((other) => other.startupOrder < candidate.startupOrder && other.desiredRunning && !other.ready)
      .map((other) => other.id)
      .sort();
    const admitted = candidate.exists || !candidate.desiredRunning || waitingFor.length === 0;
    decisions.set(candidate.id, { admitted, waitingFor: admitted ? [] : waitingFor });
  }
  return decisions;
}
