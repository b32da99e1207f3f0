// metav1.Condition semantics: lastTransitionTime moves only when status flips, so `kubectl get`
// shows how long a state has held, and a steady state produces an identical status (no writes).
import type { EdgeDeploymentCondition } from '../api/edge-deployment.ts';

export type ConditionInput = Omit<EdgeDeploymentCondition, 'lastTransitionTime'>;

export function mergeConditions(
  previous: readonly EdgeDeploymentCondition[] | undefined,
  next: readonly ConditionInput[],
  now: string,
): EdgeDeploymentCondition[] {
  return next.map((condition) => {
    const before = previous?.find((p) => p.type === condition.type);
    const lastTransitionTime = before && before.status === condition.status ? before.lastTransitionTime : now;
    return { ...condition, lastTransitionTime };
  });
}

export function conditionStatus(conditions: readonly EdgeDeploymentCondition[] | undefined, type: string): string | undefined {
  return conditions?.find((c) => c.type === type)?.status;
}
