// How a module's pods read as edgeAgent's runtimeStatus, so `kubectl get edep -o yaml` and IoT Hub's
// reported properties say what an IoT Edge user expects.
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { ModuleStatus } from '../api/edge-deployment.ts';

type RuntimeStatus = NonNullable<ModuleStatus['runtimeStatus']>;

export interface ModuleObservation {
  runtimeStatus: RuntimeStatus;
  ready: boolean;
  restartCount: number;
  exitCode?: number;
  statusDescription: string;
  lastStartTimeUtc?: string;
  lastExitTimeUtc?: string;
  lastRestartTimeUtc?: string;
}

const backoffReasons = new Set(['CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

const iso = (value: Date | string | undefined): string | undefined =>
  value === undefined ? undefined : value instanceof Date ? value.toISOString() : new Date(value).toISOString();

/** The pod that speaks for the module: not terminating, newest first. */
export function currentPod(pods: readonly V1Pod[]): V1Pod | undefined {
  const created = (p: V1Pod) => new Date(p.metadata?.creationTimestamp ?? 0).getTime();
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  return [...(live.length ? live : pods)].sort((a, b) => created(b) - created(a))[0];
}

function container(pod: V1Pod): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.[0];
}

export function observeModule(desiredStatus: 'running' | 'stopped', pods: readonly V1Pod[]): ModuleObservation {
  const pod = currentPod(pods);
  if (!pod) {
    return desiredStatus === 'stopped'
      ? { runtimeStatus: 'stopped', ready: false, restartCount: 0, statusDescription: 'stopped as desired' }
      : { runtimeStatus: 'unknown', ready: false, restartCount: 0, statusDescription: 'no pod yet' };
  }
  const c = container(pod);
  const restartCount = pod.status?.containerStatuses?.reduce((sum, s) => sum + (s.restartCount ?? 0), 0) ?? 0;
  const terminated = c?.state?.terminated ?? c?.lastState?.terminated;
  const base = {
    restartCount,
    exitCode: terminated?.exitCode,
    lastStartTimeUtc: iso(c?.state?.running?.startedAt ?? c?.state?.terminated?.startedAt ?? pod.status?.startTime),
    lastExitTimeUtc: iso(terminated?.finishedAt),
    lastRestartTimeUtc: restartCount > 0 ? iso(c?.lastState?.terminated?.finishedAt) : undefined,
  };
  const ready = pod.status?.conditions?.some((cond) => cond.type === 'Ready' && cond.status === 'True') ?? false;
  const waiting = c?.state?.waiting;
  const phase = pod.status?.phase;

  if (pod.metadata?.deletionTimestamp) return { ...base, runtimeStatus: 'stopped', ready: false, statusDescription: 'stopping' };
  if (waiting?.reason && backoffReasons.has(waiting.reason)) {
    return { ...base, runtimeStatus: 'backoff', ready: false, statusDescription: describe(waiting.reason, waiting.message) };
  }
  switch (phase) {
    case 'Running':
      return ready
        ? { ...base, runtimeStatus: 'running', ready: true, statusDescription: 'running' }
        : { ...base, runtimeStatus: 'unhealthy', ready: false, statusDescription: describe(waiting?.reason ?? 'NotReady', waiting?.message ?? 'the container runs but is not ready') };
    case 'Succeeded':
      return { ...base, runtimeStatus: 'stopped', ready: false, statusDescription: describe('Completed', `exited with code ${base.exitCode ?? 0}`) };
    case 'Failed':
      return { ...base, runtimeStatus: 'failed', ready: false, statusDescription: describe(terminated?.reason ?? 'Failed', `exited with code ${base.exitCode ?? 'unknown'}`) };
    default: {
      const unscheduled = pod.status?.conditions?.find((cond) => cond.type === 'PodScheduled' && cond.status === 'False');
      const reason = waiting?.reason ?? unscheduled?.reason ?? 'Pending';
      return { ...base, runtimeStatus: 'unknown', ready: false, statusDescription: describe(reason, waiting?.message ?? unscheduled?.message) };
    }
  }
}

function describe(reason: string, message: string | undefined): string {
  return message ? `${reason}: ${message}` : reason;
}
