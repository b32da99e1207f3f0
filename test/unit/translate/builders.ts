// Builders for DeploymentManifest values in translate tests (the manifest parser is tested elsewhere).
import type { DeploymentManifest, ModuleSpec } from '../../../src/manifest/model.ts';
import { defaultSettings, type OperatorSettings, type TranslateInput } from '../../../src/translate/index.ts';

export function moduleSpec(id: string, overrides: Partial<ModuleSpec> = {}): ModuleSpec {
  return {
    id,
    system: false,
    version: '1.0',
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    startupOrder: 4294967295,
    imagePullPolicy: 'on-create',
    image: `example.azurecr.io/${id.toLowerCase()}:1.0`,
    createOptions: {},
    env: {},
    ...overrides,
  };
}

export function edgeHubSpec(overrides: Partial<ModuleSpec> = {}): ModuleSpec {
  return moduleSpec('edgeHub', { system: true, startupOrder: 0, image: 'mcr.microsoft.com/azureiotedge-hub:1.5', ...overrides });
}

export function manifest(modules: ModuleSpec[], options: { edgeHub?: ModuleSpec | null; routes?: DeploymentManifest['hub']['routes']; registryCredentials?: DeploymentManifest['agent']['runtime']['settings']['registryCredentials'] } = {}): DeploymentManifest {
  const edgeHub = options.edgeHub === null ? undefined : (options.edgeHub ?? edgeHubSpec());
  return {
    agent: {
      schemaVersion: '1.1',
      runtime: { type: 'docker', settings: { registryCredentials: options.registryCredentials ?? {} } },
      systemModules: {
        edgeAgent: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: {}, env: {} },
        ...(edgeHub ? { edgeHub } : {}),
      },
      modules: Object.fromEntries(modules.map((m) => [m.id, m])),
    },
    hub: {
      schemaVersion: '1.1',
      routes: options.routes ?? { up: { name: 'up', route: 'FROM /messages/* INTO $upstream', priority: 9 } },
      storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
    },
  };
}

export function input(m: DeploymentManifest, settings: OperatorSettings = defaultSettings, extra: Partial<TranslateInput> = {}): TranslateInput {
  return { manifest: m, namespace: 'dev1', deviceId: 'dev1', ownerName: 'dev1-deployment', hubHostName: 'myhub.azure-devices.net', settings, ...extra };
}
