// EdgeDeployments for tests and benchmarks: edgeHub at startupOrder 0, a catch-all route, and the
// modules a test asks for. One builder, so every test speaks the same resource shape.
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';

export type ModuleFields = Record<string, unknown>;

/** A running, always-restarted docker module; `extra` overrides module fields, `createOptions` is the Docker body. */
export function sampleModule(image: string, extra: ModuleFields = {}, createOptions: unknown = {}): ModuleFields {
  return { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', settings: { image, createOptions }, ...extra };
}

export interface SampleOptions {
  name?: string;
  /** Fields of the edgeHub system module to override (e.g. settings with a fault). */
  edgeHub?: ModuleFields;
  routes?: Record<string, { route: string; priority?: number; timeToLiveSecs?: number }>;
}

export function sampleEdgeDeployment(namespace: string, modules: Record<string, ModuleFields>, options: SampleOptions = {}): EdgeDeployment {
  return {
    apiVersion: 'iotedge-operator.io/v1alpha1',
    kind: 'EdgeDeployment',
    metadata: { name: options.name ?? 'device', namespace },
    spec: {
      agent: {
        schemaVersion: '1.1',
        runtime: { type: 'docker', settings: {} },
        systemModules: {
          edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: {} } },
          edgeHub: sampleModule('mcr.microsoft.com/azureiotedge-hub:1.5', { startupOrder: 0, ...options.edgeHub }),
        },
        modules,
      },
      hub: {
        schemaVersion: '1.1',
        routes: options.routes ?? { up: { route: 'FROM /messages/* INTO $upstream' } },
        storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
      },
    },
  } as unknown as EdgeDeployment;
}

/** Ready=True for the current generation. */
export function isReady(ed: EdgeDeployment | undefined): boolean {
  return ed?.status?.observedGeneration === ed?.metadata?.generation && ed?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}
