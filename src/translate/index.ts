// translate(): a validated deployment manifest -> the Kubernetes objects that run it in one namespace.
// Pure and deterministic: no I/O, and the same input gives byte-identical output. Design decisions are
// in src/translate/README.md.
import type {
  KubernetesObject,
  V1Deployment,
  V1EnvVar,
  V1NetworkPolicy,
  V1NetworkPolicyPort,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodSpec,
  V1Service,
  V1ServiceAccount,
  V1ServicePort,
} from '@kubernetes/client-node';
import type { DeploymentManifest, DesiredStatus, ManifestIssue, ModuleSpec, Outcome, RestartPolicy } from '../manifest/model.ts';
import { canonical, canonicalJson } from './canonical.ts';
import { portName, type PortSpec } from './docker.ts';
import { canonicalCreateOptions, originalPath } from './docker-keys.ts';
import {
  configKeyOf, edgeHubConfigMap, edgeHubHttpsContainerPort, edgeHubPorts, forbiddenEdgeHubEnv, routesMountPath, routesVolumeName, stockEdgeHubRuntime,
} from './edgehub.ts';
import { edgeHubModuleId, edgeHubServerSecretName, moduleIdentitySecret, moduleSecretName } from './identity.ts';
import type { VolumeClaimOptions } from './extensions.ts';
import { Issues } from './issues.ts';
import { draftModule, moduleEnv, type ModuleDraft } from './module.ts';
import {
  annotationKeys,
  commonLabels,
  labelKeys,
  moduleLabels,
  moduleName,
  moduleSelector,
  pointer,
  sanitizeDnsLabel,
  sanitizeLabelValue,
  sha256,
  shortHash,
  volumeClaimName,
  type LabelContext,
} from './names.ts';
import { manifestPathOf } from './policy-paths.ts';
import { checkPodSpec, hardenPodSpec, type PodPolicyContext } from './pod-policy.ts';
import { pullSecretsFor, registrySecrets } from './registry.ts';
import type { OperatorSettings } from './settings.ts';
import { builtinEdgeHubRuntime, builtinHubMetricsPort, builtinHubMqttPort, builtinHubTargetPort } from './builtin-hub.ts';
import type { BuiltinEdgeHub } from './builtin-hub.ts';

export { defaultSettings, settingsWith, type OperatorSettings } from './settings.ts';
export { canonical, toWire } from './canonical.ts';
export { annotationKeys, labelKeys, moduleName, ownerSelector, sanitizeDnsLabel, sanitizeLabelValue } from './names.ts';
export * from './policy.ts';
export { admissionLevel, baselineCapabilities, checkPodSpec, defaultVolumeTypes, podSecurityLevels, safeSysctls, type PodPolicyViolation, type PodSecurityLevel } from './pod-policy.ts';

export interface TranslateInput {
  manifest: DeploymentManifest;
  namespace: string;
  /** IoT Hub device id (labels and IOTEDGE_DEVICEID). */
  deviceId: string;
  /** The EdgeDeployment's name (labels); the controller adds ownerReferences itself. */
  ownerName: string;
  /** e.g. myhub.azure-devices.net (IOTEDGE_IOTHUBHOSTNAME); '' in kubectl-only mode. */
  hubHostName: string;
  settings: OperatorSettings;
  /** Registry credential name -> password, resolved by the controller from Secrets. */
  registryPasswords?: Record<string, string>;
  /**
   * Module id -> the Secret holding its IoT Hub identity (IoT Hub mode): key `EdgeHubConnectionString`,
   * optionally `ca.crt`. The module gets both as ModuleClient.fromEnvironment() reads them, so it runs
   * without IoT Edge's workload API.
   */
  moduleCredentialSecrets?: Record<string, string>;
  /**
   * Set when the built-in hub (`iotedge-operator edgehub`) runs as $edgeHub instead of the manifest's
   * edgeHub image; the controller decides it from the `--edge-hub` setting and the mode (docs/builtin-hub.md).
   */
  builtinEdgeHub?: BuiltinEdgeHub;
  /**
   * kubectl mode (no IoT Hub): the identities the operator makes itself. Module id ('$edgeHub' for
   * edgeHub) -> its SAS key, derived from the device root key; each becomes a `<module>-iothub` Secret.
   */
  localIdentities?: { hostName: string; keys: Record<string, string> };
  /** Where edgeHub reads its routes: its own twin (IoT Hub mode) or routes__* variables (kubectl mode, the default). */
  edgeHubConfigSource?: 'twin' | 'local';
  /** SHA-256 of the device CA and of edgeHub's certificate: a change rolls the pods that read them at start. */
  trust?: { caSha256?: string; serverCertSha256?: string };
  /** Further Secrets of the namespace the operator owns or reads (e.g. the IoT Hub binding's); no module may mount them. */
  reservedSecrets?: string[];
}

/** Where a module finds the device CA that edgeHub's certificate chains to (EdgeModuleCACertificateFile). */
export const moduleCaMountPath = '/etc/iotedge-operator/device-ca';
export const moduleCaVolumeName = 'device-ca';
/** Pod annotations holding the trust fingerprints (see TranslateInput.trust). */
export const trustAnnotations = { ca: 'iotedge-operator.io/device-ca-sha256', serverCert: 'iotedge-operator.io/edgehub-cert-sha256' } as const;

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
}

export interface ModulePlan {
  /** The module id as IoT Hub knows it ("$edgeHub" for edgeHub). */
  id: string;
  /** The sanitised name its objects carry. */
  name: string;
  system: boolean;
  kind: 'Deployment' | 'Pod';
  startupOrder: number;
  status: DesiredStatus;
  restartPolicy: RestartPolicy;
  image: string;
  /** The module's own objects in TranslationResult.objects (a stopped bare-pod module has no Pod). */
  objects: ObjectRef[];
  /** Named volumes it mounts, as PVC names in TranslationResult.volumeClaims. */
  volumeClaims: string[];
}

/**
 * Objects are in @kubernetes/client-node's model form, so KubernetesObjectApi serialises them correctly
 * (its serializer drops keys it does not know: a NetworkPolicy's wire-format `from` is the model's `_from`).
 * toWire() gives the API's JSON form for YAML or kubectl.
 */
export interface TranslationResult {
  /** Everything the EdgeDeployment owns, in apply order: ServiceAccounts, Secrets, ConfigMaps, Services, NetworkPolicies, workloads. */
  objects: KubernetesObject[];
  /**
   * PVCs for named volumes, apart from `objects`: those annotated iotedge-operator.io/retain=true get no
   * ownerReference and are never pruned, so data outlives module removal as Docker volumes do.
   */
  volumeClaims: V1PersistentVolumeClaim[];
  /** Modules ordered by startupOrder, then name; the controller gates start-up on it. */
  modules: ModulePlan[];
  /** edgeAgent is not deployed (the operator is edgeAgent); its desired image is reported only. */
  edgeAgent: { image: string };
}

const edgeAgentPath = '/modulesContent/$edgeAgent/properties.desired';

interface ModuleEntry {
  spec: ModuleSpec;
  path: string;
  name: string;
  isEdgeHub: boolean;
}

interface ClaimRequest {
  claimName: string;
  volume: string;
  users: { moduleId: string; path: string }[];
  options: VolumeClaimOptions;
  optionSources: Partial<Record<keyof VolumeClaimOptions, string>>;
  /** edgeHub's own store: the runtime's, not a Docker volume, so no pre-created PersistentVolume is looked for. */
  runtimeStore?: boolean;
}

const kindOrder = ['ServiceAccount', 'Secret', 'ConfigMap', 'Service', 'NetworkPolicy', 'Deployment', 'Pod'];

export function translate(input: TranslateInput): Outcome<TranslationResult> {
  const { manifest, namespace, settings } = input;
  const issues = new Issues();
  const labels: LabelContext = { ownerName: input.ownerName, deviceId: input.deviceId };
  const ownerLabel = sanitizeLabelValue(input.ownerName);
  const objects: KubernetesObject[] = [];
  const plans: ModulePlan[] = [];
  const meta = (name: string, objectLabels: Record<string, string>, annotations?: Record<string, string>) => ({
    name,
    namespace,
    labels: objectLabels,
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  });

  const entries = moduleEntries(manifest, issues);
  if (settings.networkPolicies) {
    // The deployment-wide policy and the modules' own policies share one namespace of NetworkPolicy names.
    const denyName = subdomainName(`${input.ownerName}-default-deny`);
    for (const entry of entries.filter((e) => e.name === denyName)) {
      issues.error('IEO_NAME_COLLISION', entry.path, `module ${JSON.stringify(entry.spec.id)} maps to ${denyName}, the name of the deployment's default-deny NetworkPolicy; rename the module`);
    }
  }
  const serviceNames = new Map<string, string>();
  const claimService = (serviceName: string, what: string, path: string): boolean => {
    const holder = serviceNames.get(serviceName);
    if (holder !== undefined) {
      issues.error('IEO_NAME_COLLISION', path, `${what} and ${holder} both need the Service name ${serviceName}`);
      return false;
    }
    serviceNames.set(serviceName, what);
    return true;
  };
  // edgeHub's Service name is claimed first: every module dials it as IOTEDGE_GATEWAYHOSTNAME.
  const edgeHubEntry = entries.find((e) => e.isEdgeHub);
  if (edgeHubEntry) claimService(settings.edgeHubServiceName, 'module "$edgeHub"', edgeHubEntry.path);

  const pullSecrets = registrySecrets(manifest.agent.runtime.settings.registryCredentials, input.registryPasswords ?? {}, namespace, labels, issues);
  for (const s of pullSecrets) if (s.secret) objects.push(s.secret);

  let routesHash: string | undefined;
  let routesConfigName: string | undefined;
  if (edgeHubEntry) {
    routesConfigName = `${edgeHubEntry.name}-config`;
    const { configMap, hash } = edgeHubConfigMap(manifest.hub, routesConfigName, namespace, labels);
    objects.push(configMap);
    routesHash = hash;
  }

  const operatorSecrets = operatorSecretTest(input);
  const claims = new Map<string, ClaimRequest>();
  const modulesExposingToPeers: string[] = [];
  const serverSecretName = edgeHubServerSecretName(input.ownerName);
  if (input.localIdentities) {
    for (const entry of entries) {
      const moduleId = entry.isEdgeHub ? edgeHubModuleId : entry.spec.id;
      const key = input.localIdentities.keys[moduleId];
      if (key === undefined) continue;
      objects.push(moduleIdentitySecret({
        moduleId, key, hostName: input.localIdentities.hostName, deviceId: input.deviceId,
        gatewayHostName: settings.edgeHubServiceName, namespace, labels,
      }));
    }
  }

  for (const entry of entries) {
    const { name, path, isEdgeHub } = entry;
    const builtin = isEdgeHub ? input.builtinEdgeHub : undefined;
    const moduleIssues = new Issues();
    const createOptionsPath = `${path}/settings/createOptions`;
    const keys = canonicalCreateOptions(entry.spec.createOptions, createOptionsPath, moduleIssues);
    const spec: ModuleSpec = { ...entry.spec, createOptions: keys.createOptions };
    const draft = draftModule({ spec, name, path, settings, issues: moduleIssues });
    const runtimeEnv = [
      { name: 'IOTEDGE_AUTHSCHEME', value: 'sasToken', overridable: false },
      { name: 'IOTEDGE_DEVICEID', value: input.deviceId, overridable: false },
      // edgeHub's own gateway would be a parent device (nested edge); edgeHub instead needs the name it serves.
      isEdgeHub
        ? { name: 'EdgeDeviceHostName', value: settings.edgeHubServiceName, overridable: true }
        : { name: 'IOTEDGE_GATEWAYHOSTNAME', value: settings.edgeHubServiceName, overridable: false },
      ...(input.hubHostName !== '' ? [{ name: 'IOTEDGE_IOTHUBHOSTNAME', value: input.hubHostName, overridable: false }] : []),
      // edgeHub's module identity in IoT Hub is "$edgeHub", whatever id the manifest model gives it.
      { name: 'IOTEDGE_MODULEID', value: isEdgeHub ? '$edgeHub' : spec.id, overridable: false },
      { name: 'RuntimeLogLevel', value: settings.runtimeLogLevel, overridable: true },
    ];
    draft.container.env = moduleEnv(spec, path, runtimeEnv, moduleIssues);
    const manifestEnv = new Set<object>(draft.container.env);
    const asWritten = (issue: ManifestIssue): ManifestIssue => ({ ...issue, path: originalPath(issue.path, createOptionsPath, keys.renames) });

    const kind: ModulePlan['kind'] = spec.restartPolicy === 'always' || spec.restartPolicy === 'on-unhealthy' ? 'Deployment' : 'Pod';
    applyProbes(draft, kind, spec, path, issues);

    const refs: ObjectRef[] = [];
    const annotations = { [annotationKeys.moduleId]: spec.id };
    const ownLabels = moduleLabels(labels, name);
    const selector = moduleSelector(labels, name);

    const serviceAccount: V1ServiceAccount = {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: meta(name, ownLabels, annotations),
      automountServiceAccountToken: draft.ext.automountServiceAccountToken === true,
    };
    objects.push(serviceAccount);
    refs.push({ apiVersion: 'v1', kind: 'ServiceAccount', name });

    // Services: the module's name (edgeHub: the gateway name) inside the cluster, "<name>-ports" for PortBindings.
    if (isEdgeHub) {
      for (const p of [...edgeHubPorts].reverse()) {
        draft.clusterPorts = [{ port: p.port, protocol: 'TCP' }, ...draft.clusterPorts.filter((c) => !(c.port === p.port && c.protocol === 'TCP'))];
      }
      draft.container.ports = builtin
        ? [{ name: 'mqtts', containerPort: builtinHubMqttPort, protocol: 'TCP' }, { name: 'metrics', containerPort: builtinHubMetricsPort, protocol: 'TCP' }]
        : draft.clusterPorts.map((p) => ({ containerPort: containerPortOf(p, true), protocol: p.protocol }));
    }
    const clusterServiceName = isEdgeHub ? settings.edgeHubServiceName : name;
    const serviceOptions = draft.ext.serviceOptions;
    const bindingsService = draft.portBindings.length > 0 ? `${name}-ports` : undefined;
    // Without PortBindings, serviceOptions set the type of the module's own Service, as the preview's one Service did.
    const clusterServiceType = !bindingsService && serviceOptions?.type ? serviceOptions.type : 'ClusterIP';
    if (draft.clusterPorts.length > 0 && (isEdgeHub || claimService(clusterServiceName, `module ${JSON.stringify(spec.id)}`, path))) {
      const service: V1Service = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(clusterServiceName, ownLabels, {
          ...draft.podAnnotations,
          ...annotations,
          ...(!bindingsService ? (serviceOptions?.annotations ?? {}) : {}),
        }),
        spec: {
          type: clusterServiceType,
          selector,
          ports: draft.clusterPorts.map((p) => servicePort(p, isEdgeHub, builtin !== undefined)),
          ...(clusterServiceType === 'LoadBalancer' && serviceOptions?.loadBalancerIP ? { loadBalancerIP: serviceOptions.loadBalancerIP } : {}),
        },
      };
      objects.push(service);
      refs.push({ apiVersion: 'v1', kind: 'Service', name: clusterServiceName });
      modulesExposingToPeers.push(name);
    }
    if (bindingsService && claimService(bindingsService, `the PortBindings of module ${JSON.stringify(spec.id)}`, `${path}/settings/createOptions/HostConfig/PortBindings`)) {
      const type = serviceOptions?.type ?? settings.portBindingServiceType;
      const service: V1Service = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(bindingsService, ownLabels, { ...draft.podAnnotations, ...annotations, ...(serviceOptions?.annotations ?? {}) }),
        spec: {
          type,
          selector,
          ports: draft.portBindings.map((b): V1ServicePort => ({
            name: `${b.container.protocol.toLowerCase()}-${b.hostPort}`,
            port: b.hostPort,
            targetPort: b.container.port,
            protocol: b.container.protocol,
            // A host port in the NodePort range is kept as the node port, the closest thing to Docker's host port.
            ...(type === 'NodePort' && b.hostPort >= 30000 && b.hostPort <= 32767 ? { nodePort: b.hostPort } : {}),
          })),
          ...(type === 'LoadBalancer' && serviceOptions?.loadBalancerIP ? { loadBalancerIP: serviceOptions.loadBalancerIP } : {}),
        },
      };
      objects.push(service);
      refs.push({ apiVersion: 'v1', kind: 'Service', name: bindingsService });
    }

    if (settings.networkPolicies && (draft.clusterPorts.length > 0 || draft.portBindings.length > 0)) {
      const fromPeers = { podSelector: { matchLabels: { [labelKeys.edgeDeployment]: ownerLabel } } };
      const ingress: NonNullable<V1NetworkPolicy['spec']>['ingress'] = [];
      if (draft.clusterPorts.length > 0) ingress.push({ _from: [fromPeers], ports: draft.clusterPorts.map(policyPort) });
      if (draft.portBindings.length > 0) {
        const bound = uniquePorts(draft.portBindings.map((b) => b.container));
        ingress.push({ ports: bound.map(policyPort) });
      }
      const policy: V1NetworkPolicy = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: meta(name, ownLabels, annotations),
        spec: { podSelector: { matchLabels: selector }, policyTypes: ['Ingress'], ingress },
      };
      objects.push(policy);
      refs.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name });
    }

    for (const use of draft.namedVolumes) {
      const claimName = volumeClaimName(use.volume);
      use.podVolume.persistentVolumeClaim = { claimName };
      const claim = claims.get(claimName);
      const options = draft.ext.volumeClaims?.[use.volume] ?? {};
      if (claim && claim.volume !== use.volume) {
        issues.error('IEO_NAME_COLLISION', use.path, `volumes ${JSON.stringify(claim.volume)} and ${JSON.stringify(use.volume)} both map to PersistentVolumeClaim ${claimName}`);
        continue;
      }
      const request = claim ?? { claimName, volume: use.volume, users: [], options: {}, optionSources: {} };
      request.users.push({ moduleId: spec.id, path: use.path });
      for (const key of Object.keys(options) as (keyof VolumeClaimOptions)[]) {
        const value = options[key];
        const previous = request.options[key];
        if (previous !== undefined && previous !== value) {
          issues.error('IEO_K8S_EXTENSION', `${path}/settings/createOptions/k8s/volumeClaims${pointer(use.volume, key)}`,
            `volume ${JSON.stringify(use.volume)}: ${key} ${JSON.stringify(value)} conflicts with ${JSON.stringify(previous)} from ${request.optionSources[key]}`);
        } else if (value !== undefined) {
          (request.options as Record<string, string>)[key] = value;
          request.optionSources[key] = `module ${JSON.stringify(spec.id)}`;
        }
      }
      claims.set(claimName, request);
    }
    for (const volume of Object.keys(draft.ext.volumeClaims ?? {})) {
      if (!draft.namedVolumes.some((u) => u.volume === volume)) {
        issues.unsupported(`${path}/settings/createOptions/k8s/volumeClaims${pointer(volume)}`, `k8s.volumeClaims.${volume}`, 'this module mounts no named volume of that name');
      }
    }

    const podAnnotations: Record<string, string> = {
      ...draft.podAnnotations,
      ...annotations,
      ...(spec.version !== undefined && spec.version !== '' ? { [annotationKeys.moduleVersion]: spec.version } : {}),
    };
    const volumes = [...draft.volumes];
    if (isEdgeHub && routesConfigName && routesHash) {
      // The built-in hub re-reads its routes when the ConfigMap changes; only the stock edgeHub needs a restart.
      if (!builtin) podAnnotations[annotationKeys.configHash] = routesHash;
      volumes.push({ name: routesVolumeName, configMap: { name: routesConfigName } });
      draft.container.volumeMounts = [...(draft.container.volumeMounts ?? []), { name: routesVolumeName, mountPath: routesMountPath, readOnly: true }];
    }
    if (builtin) {
      const storageClaim = volumeClaimName(`${name}-storage`);
      claims.set(storageClaim, { claimName: storageClaim, volume: `${name}-storage`, users: [{ moduleId: spec.id, path }], options: {}, optionSources: {} });
      const runtime = builtinEdgeHubRuntime({
        builtin,
        deviceId: input.deviceId,
        identitySecretName: `${input.ownerName}-device-identity`,
        serverSecretName: `${input.ownerName}-edgehub-server`,
        storageClaimName: storageClaim,
      });
      draft.container.image = runtime.image;
      delete draft.container.command;
      draft.container.args = runtime.args;
      draft.container.env = runtime.env;
      draft.container.readinessProbe = runtime.readinessProbe;
      draft.container.livenessProbe = runtime.livenessProbe;
      volumes.push(...runtime.volumes);
      draft.container.volumeMounts = [...(draft.container.volumeMounts ?? []), ...runtime.volumeMounts];
      draft.pod.securityContext = { ...draft.pod.securityContext, fsGroup: runtime.fsGroup };
      if (input.trust?.serverCertSha256) podAnnotations[trustAnnotations.serverCert] = input.trust.serverCertSha256;
    } else if (isEdgeHub) {
      const storageClaim = volumeClaimName(`${name}-storage`);
      claims.set(storageClaim, { claimName: storageClaim, volume: `${name}-storage`, users: [{ moduleId: spec.id, path }], options: {}, optionSources: {}, runtimeStore: true });
      const runtime = stockEdgeHubRuntime({
        hub: manifest.hub,
        configSource: input.edgeHubConfigSource ?? 'local',
        serverSecretName,
        identitySecretName: moduleSecretName(edgeHubModuleId),
        storageClaimName: storageClaim,
      });
      draft.container.env = withRuntimeEnv(draft.container.env ?? [], runtime.env, spec.id, path, issues);
      volumes.push(...runtime.volumes);
      draft.container.volumeMounts = [...(draft.container.volumeMounts ?? []), ...runtime.volumeMounts];
      for (const route of runtime.routesLosingFields) {
        issues.warn('IEO_W_ROUTE_FIELD_IGNORED', `/modulesContent/$edgeHub/properties.desired/routes${pointer(route)}`,
          `route ${JSON.stringify(route)}: edgeHub's local configuration takes the route text only; its priority and timeToLiveSecs are ignored`);
      }
      if (input.trust?.serverCertSha256) podAnnotations[trustAnnotations.serverCert] = input.trust.serverCertSha256;
    } else {
      // Every module trusts the device CA, which edgeHub's certificate chains to.
      volumes.push({ name: moduleCaVolumeName, secret: { secretName: serverSecretName, items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
      draft.container.volumeMounts = [...(draft.container.volumeMounts ?? []), { name: moduleCaVolumeName, mountPath: moduleCaMountPath, readOnly: true }];
      const credentials = input.localIdentities?.keys[spec.id] !== undefined ? moduleSecretName(spec.id) : input.moduleCredentialSecrets?.[spec.id];
      draft.container.env = [
        ...(draft.container.env ?? []),
        ...(credentials ? [{ name: 'EdgeHubConnectionString', valueFrom: { secretKeyRef: { name: credentials, key: 'EdgeHubConnectionString' } } }] : []),
        { name: 'EdgeModuleCACertificateFile', value: `${moduleCaMountPath}/ca.crt` },
      ];
      if (input.trust?.caSha256) podAnnotations[trustAnnotations.ca] = input.trust.caSha256;
    }
    const imagePullSecrets = pullSecretsFor(spec.image, pullSecrets).map((n) => ({ name: n }));
    const podSpec: V1PodSpec = {
      ...draft.pod,
      containers: [draft.container],
      serviceAccountName: name,
      automountServiceAccountToken: draft.ext.automountServiceAccountToken === true,
      // Docker modules see no Service-link variables; dozens of them in a 50-module device would be noise.
      enableServiceLinks: false,
      ...(volumes.length > 0 ? { volumes } : {}),
      ...(imagePullSecrets.length > 0 ? { imagePullSecrets } : {}),
    };
    hardenPodSpec(podSpec, settings.podSecurity);
    enforcePodPolicy(podSpec, podAnnotations, {
      settings,
      manifestVolumes: new Set(draft.volumes),
      manifestEnv,
      mountableSecrets: new Set([...pullSecrets.map((p) => p.secretName), ...settings.mountableSecrets]),
      isOperatorSecret: operatorSecrets,
    }, spec, createOptionsPath, moduleIssues);
    issues.errors.push(...moduleIssues.errors.map(asWritten));
    issues.warnings.push(...moduleIssues.warnings.map(asWritten));

    if (kind === 'Deployment') {
      const deployment: V1Deployment = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: meta(name, ownLabels, annotations),
        spec: {
          replicas: spec.status === 'stopped' ? 0 : 1,
          selector: { matchLabels: selector },
          // Modules are singletons holding identities, ports and single-node volumes: replace, never overlap.
          strategy: draft.ext.strategy ?? { type: 'Recreate' },
          template: { metadata: { labels: ownLabels, annotations: podAnnotations }, spec: podSpec },
        },
      };
      objects.push(deployment);
      refs.push({ apiVersion: 'apps/v1', kind: 'Deployment', name });
    } else if (spec.status === 'running') {
      podSpec.restartPolicy = spec.restartPolicy === 'never' ? 'Never' : 'OnFailure';
      if (draft.ext.strategy) issues.unsupported(`${path}/settings/createOptions/k8s/strategy`, 'k8s.strategy', `a ${spec.restartPolicy} module is a bare Pod, which has no rollout strategy`);
      const pod: V1Pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: meta(name, ownLabels, podAnnotations),
        spec: podSpec,
      };
      // A Pod's spec cannot be changed in place; the controller recreates the Pod when this hash changes.
      // The version is part of the hash: a new version alone replaces the Pod, as edgeAgent recreates the container.
      const hashed = podAnnotations[annotationKeys.moduleVersion] === undefined ? podSpec : { podSpec, version: podAnnotations[annotationKeys.moduleVersion] };
      pod.metadata!.annotations = { ...podAnnotations, [annotationKeys.specHash]: sha256(canonicalJson(hashed)) };
      objects.push(pod);
      refs.push({ apiVersion: 'v1', kind: 'Pod', name });
    }

    plans.push({
      id: spec.id,
      name,
      system: spec.system,
      kind,
      startupOrder: spec.startupOrder,
      status: spec.status,
      restartPolicy: spec.restartPolicy,
      image: spec.image,
      objects: refs,
      volumeClaims: [...new Set(draft.namedVolumes.map((u) => volumeClaimName(u.volume)))].sort(),
    });
  }

  if (settings.networkPolicies && entries.length > 0) {
    const name = subdomainName(`${input.ownerName}-default-deny`);
    const policy: V1NetworkPolicy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(name, commonLabels(labels, 'network-policy')),
      // No ingress rule: only what a module's own policy allows reaches it.
      spec: { podSelector: { matchLabels: { [labelKeys.edgeDeployment]: ownerLabel } }, policyTypes: ['Ingress'] },
    };
    objects.push(policy);
  }

  const volumeClaims: V1PersistentVolumeClaim[] = [];
  for (const claimName of [...claims.keys()].sort()) {
    const request = claims.get(claimName);
    if (!request) continue;
    const accessMode = request.options.accessMode ?? settings.storage.accessMode;
    const storageClassName = request.options.storageClassName ?? settings.storage.storageClassName;
    // The preview's useMountSourceForVolumeName: the claim binds to the PersistentVolume named like it.
    const volumeName = request.options.volumeName ?? (settings.storage.useMountSourceForVolumeName && !request.runtimeStore ? claimName : undefined);
    const users = [...new Set(request.users.map((u) => u.moduleId))];
    if (users.length > 1 && (accessMode === 'ReadWriteOnce' || accessMode === 'ReadWriteOncePod')) {
      const first = request.users[0];
      issues.warn('IEO_W_SHARED_VOLUME', first?.path ?? edgeAgentPath,
        `volume ${JSON.stringify(request.volume)} is shared by modules ${users.map((u) => JSON.stringify(u)).join(', ')} with access mode ${accessMode}: ` +
          (accessMode === 'ReadWriteOncePod' ? 'only one of their pods can mount it' : 'their pods must run on the same node'));
    }
    volumeClaims.push({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: meta(claimName, commonLabels(labels, 'volume'), {
        [annotationKeys.volumeName]: request.volume,
        ...(settings.storage.retainVolumesOnModuleRemoval ? { [annotationKeys.retain]: 'true' } : {}),
      }),
      spec: {
        accessModes: [accessMode],
        resources: { requests: { storage: request.options.size ?? settings.storage.defaultVolumeSize } },
        ...(storageClassName !== undefined ? { storageClassName } : {}),
        ...(volumeName !== undefined ? { volumeName } : {}),
      },
    });
  }

  const warnings = issues.warnings;
  if (issues.errors.length > 0) return { ok: false, errors: issues.errors, warnings };
  objects.sort((a, b) => kindOrder.indexOf(a.kind ?? '') - kindOrder.indexOf(b.kind ?? '') || compare(a.metadata?.name ?? '', b.metadata?.name ?? ''));
  plans.sort((a, b) => a.startupOrder - b.startupOrder || compare(a.name, b.name));
  return {
    ok: true,
    value: {
      objects: objects.map(canonical),
      volumeClaims: volumeClaims.map(canonical),
      modules: plans,
      edgeAgent: { image: manifest.agent.systemModules.edgeAgent.image },
    },
    warnings,
  };
}

/** Secret names the operator owns in a device namespace (see the identity and certificate contracts). */
const operatorSecretSuffixes = ['-iothub', '-device-identity', '-device-ca', '-edgehub-server'];

function operatorSecretTest(input: TranslateInput): (name: string) => boolean {
  const reserved = new Set([...Object.values(input.moduleCredentialSecrets ?? {}), ...(input.reservedSecrets ?? [])]);
  // Helm keeps a release's values (a connection string among them) in sh.helm.release.v1.* Secrets.
  return (name) => reserved.has(name) || operatorSecretSuffixes.some((s) => name.endsWith(s)) || name.startsWith('sh.helm.release.');
}

/**
 * The policy on the final pod spec: every violation becomes IEO_POLICY_DENIED at the manifest field
 * behind it, unless the early createOptions checks already reported that reason at or above that path.
 */
function enforcePodPolicy(podSpec: V1PodSpec, annotations: Record<string, string>, context: PodPolicyContext, spec: ModuleSpec, base: string, issues: Issues): void {
  const operatorVolumeNames = new Set((podSpec.volumes ?? []).filter((v) => !context.manifestVolumes.has(v)).map((v) => v.name));
  (podSpec.volumes ?? []).forEach((volume, i) => {
    if (context.manifestVolumes.has(volume) && operatorVolumeNames.has(volume.name)) {
      issues.error('IEO_NAME_COLLISION', manifestPathOf(`/volumes/${i}`, podSpec, spec.createOptions, base),
        `module ${JSON.stringify(spec.id)}: volume name ${JSON.stringify(volume.name)} is one the operator uses in this pod; rename the volume`);
    }
  });
  for (const violation of checkPodSpec(podSpec, annotations, context)) {
    const at = manifestPathOf(violation.field, podSpec, spec.createOptions, base);
    const tag = `[${violation.reason}]`;
    if (issues.errors.some((e) => e.code === 'IEO_POLICY_DENIED' && e.message.endsWith(tag) && (at === e.path || at.startsWith(`${e.path}/`)))) continue;
    issues.error('IEO_POLICY_DENIED', at, `module ${JSON.stringify(spec.id)}: pod field ${violation.field}: ${violation.message} ${tag}`);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** edgeHub first, then modules by sanitised name; two modules with one name is an error naming both. */
function moduleEntries(manifest: DeploymentManifest, issues: Issues): ModuleEntry[] {
  const entries: ModuleEntry[] = [];
  const hub = manifest.agent.systemModules.edgeHub;
  if (hub) entries.push({ spec: hub, path: `${edgeAgentPath}/systemModules/edgeHub`, name: moduleName('edgeHub'), isEdgeHub: true });
  const users = Object.keys(manifest.agent.modules)
    .map((key) => ({ key, spec: manifest.agent.modules[key] }))
    .filter((m): m is { key: string; spec: ModuleSpec } => m.spec !== undefined)
    .map(({ key, spec }) => ({ spec, path: `${edgeAgentPath}/modules${pointer(key)}`, name: moduleName(spec.id), isEdgeHub: false }))
    .sort((a, b) => compare(a.name, b.name) || compare(a.spec.id, b.spec.id));
  const taken = new Map<string, string>(entries.map((e) => [e.name, e.spec.id]));
  for (const entry of users) {
    const holder = taken.get(entry.name);
    if (holder !== undefined) {
      issues.error('IEO_NAME_COLLISION', entry.path,
        `modules ${JSON.stringify(holder)} and ${JSON.stringify(entry.spec.id)} both map to the Kubernetes name ${entry.name}; rename one of them`);
      continue;
    }
    taken.set(entry.name, entry.spec.id);
    entries.push(entry);
  }
  return entries;
}

function applyProbes(draft: ModuleDraft, kind: ModulePlan['kind'], spec: ModuleSpec, path: string, issues: Issues): void {
  const own = draft.ext.probes ?? {};
  const health = draft.healthProbe;
  // Restarting policies (always, on-unhealthy) restart an unhealthy module, as edgeAgent does; for never and
  // on-failure a failing Healthcheck only marks the module not ready, since Docker would not kill it either.
  const liveness = own.liveness ?? (kind === 'Deployment' ? health : undefined);
  const readiness = own.readiness ?? health;
  const startup = own.startup ?? (kind === 'Deployment' && !own.liveness ? draft.healthStartupProbe : undefined);
  if (liveness) draft.container.livenessProbe = liveness;
  if (readiness) draft.container.readinessProbe = readiness;
  if (startup) draft.container.startupProbe = startup;
  if (spec.restartPolicy === 'on-unhealthy' && !liveness) {
    issues.warn('IEO_W_NO_HEALTHCHECK', `${path}/restartPolicy`,
      `module ${JSON.stringify(spec.id)} is on-unhealthy but has no createOptions Healthcheck or k8s.probes.liveness; it is restarted only when it exits`);
  }
}

function servicePort(port: PortSpec, isEdgeHub: boolean, builtin = false): V1ServicePort {
  const known = isEdgeHub && port.protocol === 'TCP' ? edgeHubPorts.find((p) => p.port === port.port) : undefined;
  // The built-in hub has one TLS listener: AMQP and WebSocket clients reach it and are refused with a reason.
  const targetPort = builtin && known ? builtinHubTargetPort(port.port) : containerPortOf(port, isEdgeHub);
  return { name: known?.name ?? portName(port), port: port.port, targetPort, protocol: port.protocol };
}

/** edgeHub's HTTPS listens on an unprivileged port inside the pod; the Service keeps 443 outside. */
function containerPortOf(port: PortSpec, isEdgeHub: boolean): number {
  return isEdgeHub && port.protocol === 'TCP' && port.port === 443 ? edgeHubHttpsContainerPort : port.port;
}

/**
 * The deployment's edgeHub variables plus the runtime's. .NET reads configuration keys case-insensitively
 * with `__` for `:`, so a deployment variable naming a runtime key (or a forbidden one) is dropped with
 * a warning rather than left to race the runtime's.
 */
function withRuntimeEnv(own: V1EnvVar[], runtime: V1EnvVar[], moduleId: string, path: string, issues: Issues): V1EnvVar[] {
  const reserved = new Set([...runtime.map((v) => configKeyOf(v.name)), ...forbiddenEdgeHubEnv.map(configKeyOf)]);
  const kept = own.filter((v) => {
    if (!reserved.has(configKeyOf(v.name))) return true;
    issues.warn('IEO_W_RESERVED_ENV', `${path}/env${pointer(v.name)}`,
      `module ${JSON.stringify(moduleId)}: ${v.name} is set by the runtime (or must not be set on a root edgeHub); the module's value is ignored`);
    return false;
  });
  return [...kept, ...runtime];
}

function policyPort(port: PortSpec): V1NetworkPolicyPort {
  return { port: port.port, protocol: port.protocol };
}

function uniquePorts(ports: PortSpec[]): PortSpec[] {
  return ports.filter((p, i) => ports.findIndex((q) => q.port === p.port && q.protocol === p.protocol) === i);
}

function subdomainName(raw: string): string {
  if (raw.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw)) return raw;
  return sanitizeDnsLabel(raw, 63, false) || `default-deny-${shortHash(raw)}`;
}

export type { ManifestIssue };
