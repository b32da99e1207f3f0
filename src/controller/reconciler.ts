// Level-triggered reconcile of one EdgeDeployment: read what is, translate what should be, apply the
// difference by server-side apply, prune what is no longer desired, and report status. Every decision
// is made from the informers' caches, so a steady state costs no API requests at all.
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1Pod, V1Secret } from '@kubernetes/client-node';
import {
  conditionReasons, conditionTypes, edgeDeploymentApiVersion, edgeDeploymentKind,
  type EdgeDeployment, type EdgeDeploymentStatus, type ModuleStatus,
} from '../api/edge-deployment.ts';
import { errorCatalogue, type ErrorCode } from '../api/errors.ts';
import type { ManifestIssue, DeploymentManifest } from '../manifest/model.ts';
import { issueAtResourcePath, manifestFromResource } from '../manifest/resource.ts';
import { summariseRoutes } from '../manifest/routes.ts';
import { admissionLevel, toWire, translate, type ModulePlan, type TranslationResult } from '../translate/index.ts';
import { annotationKeys, labelKeys, managedBy, sanitizeLabelValue } from '../translate/names.ts';
import type { OperatorSettings } from '../translate/settings.ts';
import type { BuiltinEdgeHub } from '../translate/builtin-hub.ts';
import { deriveModuleKey } from '../runtime/sas.ts';
import { edgeHubModuleId, localHubHostName } from '../translate/identity.ts';
import { mergeConditions, type ConditionInput } from './conditions.ts';
import { defaultLifetimes, DeviceCaError, DeviceTrustKeeper, readOrCreateRootKey, type CertificateLifetimes, type DeviceTrust } from './device-trust.ts';
import type { EventRecorder } from './events.ts';
import { scrubDeep } from '../runtime/scrub.ts';
import { NamespaceSecurityLabeler } from './namespace-security.ts';
import { KubeApiError, type KubeClient, type Logger } from './kube-client.ts';
import { observeModule, type ModuleObservation } from './module-status.ts';
import { boundText, describeRefusal, edgeAgentStatusOf, isRefusal, refusalBackoffMs, refusalOf, TakeoverRefused, type Refusal } from './refusals.ts';
import { collectionPath, edgeDeploymentResource, kindOf, objectId, objectPath, ownedKinds } from './resources.ts';
import { admitByStartupOrder } from './startup-order.ts';

export const fieldManager = 'iotedge-operator';
/** Hash of the object as last applied; equal hash and a cached object mean there is nothing to write. */
export const appliedHashAnnotation = 'iotedge-operator.io/applied-hash';
/** Set by twin sync: the twin's desired $version, reported as lastDesiredVersion. */
export const desiredVersionAnnotation = 'iotedge-operator.io/desired-version';

/** What the reconciler reads: an informer, or several informers over a list of namespaces. */
export interface ObjectCache<T extends KubernetesObject> {
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
}

export interface ReconcilerOptions {
  client: KubeClient;
  edgeDeployments: ObjectCache<EdgeDeployment>;
  /** One cache per owned kind (by kind name), all filtered to the operator's children. */
  children: ReadonlyMap<string, ObjectCache<KubernetesObject>>;
  settings: OperatorSettings;
  events: EventRecorder;
  logger: Logger;
  /** Told each module count by runtimeStatus after a reconcile (the iotedge_modules metric). */
  onModuleStatus?: (namespace: string, name: string, counts: Record<string, number>) => void;
  /** The IoT Hub host name modules are told (IOTEDGE_IOTHUBHOSTNAME) when no binding says otherwise. */
  defaultHubHostName?: string;
  /** Lifetimes of the device CA and edgeHub's server certificate (default: 5 years, 90 days). */
  certificateLifetimes?: CertificateLifetimes;
  /** Label device namespaces for Pod Security Admission where RBAC allows it (`iotedge-operator run` turns it on). */
  labelNamespaces?: boolean;
  now?: () => Date;
}

/**
 * A renewal due within this is scheduled with its own requeue. Anything later is seen again at the
 * informers' resync (every 10 hours), which replays every EdgeDeployment, so nothing waits past it.
 */
const renewalHorizonMs = 12 * 3600_000;

interface Invalid {
  issues: ManifestIssue[];
  code: ErrorCode | undefined;
}

interface PreparedObject {
  desired: KubernetesObject;
  owned: KubernetesObject;
  hash: string;
}

interface Translation {
  key: string;
  plan: TranslationResult;
  warnings: ManifestIssue[];
  prepared: PreparedObject[];
  /** The server accepted a dry-run of every changed child (or nothing changed): applying may start. */
  verified: boolean;
}

export class EdgeDeploymentReconciler {
  private readonly o: ReconcilerOptions;
  /** By EdgeDeployment key: the last translation and the objects prepared from it. */
  private readonly translations = new Map<string, Translation>();
  /**
   * By EdgeDeployment key, then Kind/name: the uid and generation our last apply produced, to tell our writes
   * from others'. Entries go with their objects (pruned, replaced) and with their EdgeDeployment.
   */
  private readonly appliedGenerations = new Map<string, Map<string, { uid: string | undefined; generation: number }>>();
  /** By EdgeDeployment key: how many reconciles in a row the API server refused a child. */
  private readonly refusedAttempts = new Map<string, number>();
  private readonly trust: DeviceTrustKeeper;
  private readonly namespaceLabels: NamespaceSecurityLabeler | undefined;
  constructor(options: ReconcilerOptions) {
    this.o = options;
    if (options.labelNamespaces === true) this.namespaceLabels = new NamespaceSecurityLabeler(options.client, options.logger, admissionLevel(options.settings));
    this.trust = new DeviceTrustKeeper({
      client: options.client,
      secrets: options.children.get('Secret') as ObjectCache<V1Secret> | undefined,
      lifetimes: options.certificateLifetimes ?? defaultLifetimes,
      edgeHubServiceName: options.settings.edgeHubServiceName,
      logger: options.logger,
      now: options.now,
    });
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const [namespace, name] = key.split('/') as [string, string];
    const ed = this.o.edgeDeployments.get(namespace, name);
    if (!ed || ed.metadata?.deletionTimestamp) {
      this.translations.delete(key);
      this.refusedAttempts.delete(key);
      this.appliedGenerations.delete(key);
      return; // children go with it through ownerReferences
    }
    const log = this.o.logger.child({ edgeDeployment: key });

    const senior = this.seniorInNamespace(namespace);
    if (senior && senior.metadata?.name !== name) {
      await this.writeInvalid(ed, log, {
        issues: [{ code: 'IEO_DUPLICATE_DEVICE', path: '/metadata/name', message: `namespace ${namespace} already hosts device EdgeDeployment "${senior.metadata?.name}"; one namespace serves one device, so this one is ignored` }],
        code: undefined,
      }, conditionReasons.duplicateDevice);
      return;
    }

    await this.namespaceLabels?.ensure(namespace);
    const parsed = manifestFromResource(ed.spec ?? {});
    if (!parsed.ok) return this.writeInvalid(ed, log, invalidFrom(parsed.errors), conditionReasons.invalidDesiredState);
    const passwords = await this.registryPasswords(namespace, parsed.value);
    if (passwords.missing.length) {
      await this.writeInvalid(ed, log, { issues: passwords.missing, code: 'IEO_REGISTRY_SECRET' }, conditionReasons.invalidDesiredState);
      // The user's Secrets are not watched, so look again in a while rather than wait for a spec change.
      return { requeueAfterMs: 30_000 };
    }
    const deviceId = ed.spec?.deviceId ?? namespace;
    let trust: DeviceTrust;
    try {
      trust = await this.trust.ensure(ed);
    } catch (error) {
      if (!(error instanceof DeviceCaError)) throw error;
      await this.writeInvalid(ed, log, { issues: [{ code: 'IEO_CA_SECRET', path: '/spec/certificates/deviceCaSecretRef', message: error.message }], code: 'IEO_CA_SECRET' }, conditionReasons.invalidDesiredState);
      return { requeueAfterMs: 30_000 };
    }
    const iotHubMode = ed.spec?.iotHub !== undefined;
    const credentialSecrets = iotHubMode ? this.moduleCredentialSecrets(namespace, name) : {};
    // Most reconciles follow a child's status change with the spec unchanged: translation is then reused.
    const memoKey = contentHash([ed.metadata?.uid, ed.metadata?.generation, passwords.values, credentialSecrets, ed.spec?.iotHub?.hostName, iotHubMode, trust.caSha256, trust.serverCertSha256]);
    let memo = this.translations.get(key);
    if (memo?.key !== memoKey) {
      const localIdentities = iotHubMode ? undefined : await this.localIdentities(ed, deviceId, parsed.value);
      const translated = translate({
        manifest: parsed.value,
        namespace,
        deviceId,
        ownerName: name,
        hubHostName: ed.spec?.iotHub?.hostName ?? this.o.defaultHubHostName ?? '',
        settings: this.o.settings,
        registryPasswords: passwords.values,
        moduleCredentialSecrets: credentialSecrets,
        ...builtinEdgeHubFor(ed, this.o.settings),
        ...(localIdentities ? { localIdentities } : {}),
        edgeHubConfigSource: iotHubMode ? 'twin' : 'local',
        trust: { caSha256: trust.caSha256, serverCertSha256: trust.serverCertSha256 },
        reservedSecrets: reservedSecretsOf(ed),
      });
      if (!translated.ok) return this.writeInvalid(ed, log, invalidFrom(translated.errors.map(issueAtResourcePath)), conditionReasons.invalidDesiredState);
      // Claims first, so a workload never waits on a volume the same pass would create.
      const wire: KubernetesObject[] = [...translated.value.volumeClaims, ...translated.value.objects].map((o) => toWire(o));
      const prepared = wire.map((desired) => this.prepare(ed, desired));
      memo = {
        key: memoKey,
        plan: translated.value,
        warnings: [...parsed.warnings, ...translated.warnings.map(issueAtResourcePath)],
        prepared,
        verified: prepared.every((p) => this.isApplied(namespace, p)),
      };
      this.translations.set(key, memo);
    }
    const { plan, warnings, prepared } = memo;
    const moduleIds = new Map(plan.modules.map((m) => [m.name, m.id]));
    if (!memo.verified) {
      // The desired content changed: all or nothing, like edgeAgent's plan. A child the server would refuse
      // stops the whole generation before anything is applied or pruned, so the running modules stay.
      const refusals = await this.dryRun(ed, prepared, moduleIds);
      if (refusals.length > 0) return this.writeRefused(ed, key, log, refusals, plan.modules, parsed.value, warnings);
      memo.verified = true;
    }
    const desiredObjects = prepared.map((p) => p.desired);
    const podsByModule = this.podsByModule(namespace, name);
    const observations = new Map<string, ModuleObservation>(
      plan.modules.map((m) => [m.id, observeModule(m.status, podsByModule.get(m.name) ?? [])]),
    );
    const decisions = admitByStartupOrder(plan.modules.map((m) => ({
      id: m.id,
      startupOrder: m.startupOrder,
      desiredRunning: m.status === 'running',
      exists: this.moduleExists(namespace, m),
      ready: hasStarted(m, observations.get(m.id)),
    })));
    const heldBack = new Set(plan.modules.filter((m) => !decisions.get(m.id)?.admitted).map((m) => m.name));

    const refusals: Refusal[] = [];
    for (const object of prepared) {
      const desired = object.desired;
      const moduleLabel = desired.metadata?.labels?.[labelKeys.module];
      if (moduleLabel && heldBack.has(moduleLabel)) continue;
      try {
        await this.ensure(ed, object, log);
      } catch (error) {
        // The API server refused the object itself: a fault in the desired state, not worth a tight retry.
        if (isRefusal(error)) refusals.push(refusalOf(desired, error, moduleIds));
        else throw error;
      }
    }
    if (refusals.length > 0) return this.writeRefused(ed, key, log, refusals, plan.modules, parsed.value, warnings, observations, decisions);
    this.refusedAttempts.delete(key);
    await this.prune(namespace, name, desiredObjects, log);

    const generationChanged = ed.status?.observedGeneration !== ed.metadata?.generation;
    const status = this.statusFor(ed, plan.modules, observations, decisions, parsed.value, [], warnings);
    await this.writeStatus(ed, status);
    const counts: Record<string, number> = {};
    for (const m of Object.values(status.modules ?? {})) counts[m.runtimeStatus ?? 'unknown'] = (counts[m.runtimeStatus ?? 'unknown'] ?? 0) + 1;
    this.o.onModuleStatus?.(namespace, name, counts);
    if (generationChanged) {
      await this.o.events.record(ed, 'Normal', ed.status?.observedGeneration === undefined ? 'Created' : 'Updated',
        `applied generation ${ed.metadata?.generation}: ${plan.modules.length} module(s)${warnings.length ? `, ${warnings.length} warning(s): ${warnings.map((w) => `${w.code} ${w.path}`).join('; ')}` : ''}`);
    }
    // Come back when a certificate is due, so it is renewed on time even if nothing else happens.
    const untilRenewal = Math.max(1_000, trust.renewAt.getTime() - (this.o.now?.() ?? new Date()).getTime());
    if (untilRenewal <= renewalHorizonMs) return { requeueAfterMs: untilRenewal };
  }

  /** Whether the cache shows this exact object applied already (same applied-hash annotation). */
  private isApplied(namespace: string, object: PreparedObject): boolean {
    const cached = this.o.children.get(object.desired.kind!)?.get(namespace, object.desired.metadata!.name!);
    return cached?.metadata?.annotations?.[appliedHashAnnotation] === object.hash;
  }

  /**
   * Server-side dry-run of every child that differs from what is applied. A bare Pod's admission looks up its
   * ServiceAccount, so the accounts of new bare Pods are applied first (an account with no token and no
   * role grants nothing). An existing bare Pod is replaced rather than updated, so its successor is
   * dry-run as a new Pod under a generated name.
   */
  private async dryRun(ed: EdgeDeployment, prepared: readonly PreparedObject[], moduleIds: ReadonlyMap<string, string>): Promise<Refusal[]> {
    const namespace = ed.metadata!.namespace!;
    const changed = prepared.filter((p) => !this.isApplied(namespace, p));
    const podAccounts = new Set(changed.filter((p) => p.desired.kind === 'Pod').map((p) => (p.desired as V1Pod).spec?.serviceAccountName));
    const refusals: Refusal[] = [];
    const attempt = async (object: PreparedObject, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (error) {
        if (isRefusal(error)) refusals.push(refusalOf(object.desired, error, moduleIds));
        else throw error;
      }
    };
    for (const object of changed) {
      const { desired, owned, hash } = object;
      const kind = kindOf(desired);
      const name = desired.metadata!.name!;
      const cached = this.o.children.get(desired.kind!)?.get(namespace, name);
      const body = { ...owned, metadata: { ...owned.metadata, annotations: { ...owned.metadata?.annotations, [appliedHashAnnotation]: hash } } };
      if (!cached) await attempt(object, () => this.refuseTakeover(ed, desired));
      if (refusals.some((r) => r.object === objectId(desired))) continue;
      if (desired.kind === 'ServiceAccount' && !cached && podAccounts.has(name)) {
        await attempt(object, () => this.ensure(ed, object, this.o.logger));
      } else if (desired.kind === 'Pod' && cached) {
        const { name: _name, ...metadata } = body.metadata;
        await attempt(object, () => this.o.client.request('POST', collectionPath(kind, namespace), { dryRun: 'All', fieldManager }, {
          body: { ...body, metadata: { ...metadata, generateName: `${name.slice(0, 57)}-` } },
        }));
      } else {
        await attempt(object, () => this.o.client.request('PATCH', objectPath(kind, namespace, name), { dryRun: 'All', fieldManager, force: 'true' }, {
          body,
          contentType: 'application/apply-patch+yaml',
        }));
      }
    }
    return refusals;
  }

  /**
   * A child was refused: Degraded=True naming the object, its module and the API's message, a Warning Event
   * when the refusal is new, lastDesiredStatus 400 or 500 for IoT Hub, and a retry with backoff. Nothing
   * is pruned, so the modules already running keep running.
   */
  private async writeRefused(
    ed: EdgeDeployment,
    key: string,
    log: Logger,
    refusals: readonly Refusal[],
    modules: readonly ModulePlan[],
    manifest: DeploymentManifest,
    warnings: readonly ManifestIssue[],
    observations?: ReadonlyMap<string, ModuleObservation>,
    decisions?: ReturnType<typeof admitByStartupOrder>,
  ): Promise<{ requeueAfterMs: number }> {
    const attempt = (this.refusedAttempts.get(key) ?? 0) + 1;
    this.refusedAttempts.set(key, attempt);
    const namespace = ed.metadata!.namespace!;
    const pods = this.podsByModule(namespace, ed.metadata!.name!);
    const observed = observations ?? new Map(modules.map((m) => [m.id, observeModule(m.status, pods.get(m.name) ?? [])]));
    const admitted = decisions ?? new Map(modules.map((m) => [m.id, { admitted: true, waitingFor: [] as string[] }]));
    const lines = refusals.map(describeRefusal);
    const computed = this.statusFor(ed, modules, observed, admitted as ReturnType<typeof admitByStartupOrder>, manifest, lines, warnings);
    const status = { ...computed, lastDesiredStatus: { code: edgeAgentStatusOf(refusals), description: boundText(lines.join('\n')) } } as EdgeDeploymentStatus;
    const before = ed.status?.conditions?.find((c) => c.type === conditionTypes.degraded);
    await this.writeStatus(ed, status);
    const summary = lines.join('; ');
    if (before?.status !== 'True' || before.message !== status.conditions?.find((c) => c.type === conditionTypes.degraded)?.message) {
      log.warn({ refusals: refusals.map((r) => ({ object: r.object, module: r.moduleId, status: r.status })) }, 'the API server refused a child; the running modules are kept');
      await this.o.events.record(ed, 'Warning', 'ApplyRefused', summary);
    }
    return { requeueAfterMs: refusalBackoffMs(attempt) };
  }

  /**
   * kubectl mode: every module's key (and $edgeHub's) derived from the device root key, as the
   * `<module>-iothub` Secrets carry them. Read only when the translation is redone.
   */
  private async localIdentities(ed: EdgeDeployment, deviceId: string, manifest: DeploymentManifest): Promise<{ hostName: string; keys: Record<string, string> }> {
    const rootKey = await readOrCreateRootKey(this.o.client, ed, this.o.logger);
    const ids = [...(manifest.agent.systemModules.edgeHub ? [edgeHubModuleId] : []), ...Object.values(manifest.agent.modules).map((m) => m.id)];
    return {
      hostName: this.o.defaultHubHostName ?? localHubHostName(deviceId),
      keys: Object.fromEntries(ids.map((id) => [id, deriveModuleKey(rootKey, deviceId, id)])),
    };
  }

  /** One namespace, one device: the oldest EdgeDeployment (then by name) is the device. */
  private seniorInNamespace(namespace: string): EdgeDeployment | undefined {
    return seniorEdgeDeployment(this.o.edgeDeployments.list(namespace));
  }

  /**
   * Registry passwords referenced by passwordSecretRef. These Secrets are the user's, not ours, so they are
   * read on demand rather than watched cluster-wide; a changed password takes effect on the next reconcile.
   */
  private async registryPasswords(namespace: string, manifest: DeploymentManifest): Promise<{ values: Record<string, string>; missing: ManifestIssue[] }> {
    const values: Record<string, string> = {};
    const missing: ManifestIssue[] = [];
    for (const [id, credential] of Object.entries(manifest.agent.runtime.settings.registryCredentials)) {
      if (credential.password !== undefined) continue;
      const ref = credential.passwordSecretRef;
      if (!ref) continue;
      const secret = await this.o.client
        .get<V1Secret>(`/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(ref.name)}`)
        .catch((error: unknown) => (error instanceof KubeApiError && error.status === 404 ? undefined : Promise.reject(error)));
      const encoded = secret?.data?.[ref.key];
      if (encoded === undefined) {
        missing.push({
          code: 'IEO_REGISTRY_SECRET',
          path: `/spec/agent/runtime/settings/registryCredentials/${id}/passwordSecretRef`,
          message: `Secret ${namespace}/${ref.name} with key "${ref.key}" was not found`,
        });
        continue;
      }
      values[id] = Buffer.from(encoded, 'base64').toString('utf8');
    }
    return { values, missing };
  }

  /**
   * IoT Hub mode: twin sync keeps one Secret per module identity (labelled with this EdgeDeployment and
   * annotated with the module id). Modules get theirs once it exists; its creation triggers a reconcile.
   */
  private moduleCredentialSecrets(namespace: string, owner: string): Record<string, string> {
    const refs: Record<string, string> = {};
    for (const secret of (this.o.children.get('Secret')?.list(namespace) ?? []) as V1Secret[]) {
      const moduleId = secret.metadata?.annotations?.[annotationKeys.moduleId];
      if (!moduleId || secret.metadata?.labels?.[labelKeys.edgeDeployment] !== sanitizeLabelValue(owner) || secret.data?.EdgeHubConnectionString === undefined) continue;
      refs[moduleId] = secret.metadata!.name!;
    }
    return refs;
  }

  private podsByModule(namespace: string, owner: string): Map<string, V1Pod[]> {
    const byModule = new Map<string, V1Pod[]>();
    for (const pod of (this.o.children.get('Pod')?.list(namespace) ?? []) as V1Pod[]) {
      const labels = pod.metadata?.labels ?? {};
      const module = labels[labelKeys.module];
      if (labels[labelKeys.edgeDeployment] !== sanitizeLabelValue(owner) || !module) continue;
      byModule.set(module, [...(byModule.get(module) ?? []), pod]);
    }
    return byModule;
  }

  private moduleExists(namespace: string, module: ModulePlan): boolean {
    const informer = this.o.children.get(module.kind);
    return informer?.get(namespace, module.name) !== undefined;
  }

  /** The object as applied: in the EdgeDeployment's namespace, owned by it (unless a retained claim), and its hash. */
  private prepare(ed: EdgeDeployment, desired: KubernetesObject): PreparedObject {
    const retained = desired.kind === 'PersistentVolumeClaim' && desired.metadata?.annotations?.[annotationKeys.retain] === 'true';
    const owned: KubernetesObject = {
      ...desired,
      metadata: {
        ...desired.metadata,
        namespace: ed.metadata!.namespace!,
        // A retained claim has no owner, so garbage collection leaves it when the EdgeDeployment goes.
        ...(retained ? {} : { ownerReferences: [{
          apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, name: ed.metadata!.name!, uid: ed.metadata!.uid!,
          controller: true, blockOwnerDeletion: true,
        }] }),
      },
    };
    return { desired, owned, hash: contentHash(owned) };
  }

  /** Server-side apply of one child, skipped when the cache shows this exact object already applied. */
  private async ensure(ed: EdgeDeployment, object: PreparedObject, log: Logger): Promise<void> {
    const { desired, owned, hash } = object;
    const kind = kindOf(desired);
    const namespace = ed.metadata!.namespace!;
    const name = desired.metadata!.name!;
    const generations = this.generationsOf(ed);
    const id = objectId(desired);
    const cached = this.o.children.get(desired.kind!)?.get(namespace, name);
    if (cached && cached.metadata?.annotations?.[appliedHashAnnotation] === hash) {
      // Same desired object. Someone else changing its spec (say, scaling a module's Deployment) moves its
      // generation past the one our last apply produced: that drift is applied away. After a restart the
      // cache is taken as applied, so a restart over unchanged resources writes nothing.
      const generation = cached.metadata?.generation;
      const ours = generations.get(id);
      const known = ours?.uid === cached.metadata?.uid ? ours?.generation : undefined;
      if (generation === undefined || known === undefined || generation <= known) {
        if (generation !== undefined && known === undefined) generations.set(id, { uid: cached.metadata?.uid, generation });
        return;
      }
      log.info({ object: id, generation, applied: known }, 'changed by someone else; applying the desired state again');
    }
    if (!cached) await this.refuseTakeover(ed, desired);
    if (cached && desired.kind === 'Pod') {
      // A Pod's spec is immutable: a changed bare-pod module is replaced, and recreated on the next pass.
      log.info({ pod: name }, 'replacing bare pod whose desired spec changed');
      generations.delete(id);
      await this.o.client.request('DELETE', objectPath(kind, namespace, name), {}, { body: { propagationPolicy: 'Background' } }).catch(ignoreNotFound);
      return;
    }
    const body = { ...owned, metadata: { ...owned.metadata, annotations: { ...owned.metadata?.annotations, [appliedHashAnnotation]: hash } } };
    const applied = await this.o.client.request<KubernetesObject>('PATCH', objectPath(kind, namespace, name), { fieldManager, force: 'true' }, {
      body,
      contentType: 'application/apply-patch+yaml',
    });
    if (applied?.metadata?.generation !== undefined) generations.set(id, { uid: applied.metadata.uid, generation: applied.metadata.generation });
    log.debug({ object: id }, 'applied');
  }

  private generationsOf(ed: EdgeDeployment): Map<string, { uid: string | undefined; generation: number }> {
    const key = `${ed.metadata!.namespace!}/${ed.metadata!.name!}`;
    let generations = this.appliedGenerations.get(key);
    if (!generations) this.appliedGenerations.set(key, (generations = new Map()));
    return generations;
  }

  /** How many applied generations are remembered, over every EdgeDeployment (a bounded figure: one per live child). */
  rememberedGenerations(): number {
    return [...this.appliedGenerations.values()].reduce((sum, m) => sum + m.size, 0);
  }

  /**
   * An object of the desired name that the cache does not show may still exist without our label: the
   * chart's own Deployment, a user's Service. Applying with force would take it over and a later prune would
   * delete it, so it is refused as a conflict instead. Only on a cache miss, so a steady state asks nothing.
   */
  private async refuseTakeover(ed: EdgeDeployment, desired: KubernetesObject): Promise<void> {
    const namespace = ed.metadata!.namespace!;
    const existing = await this.o.client
      .get<KubernetesObject>(objectPath(kindOf(desired), namespace, desired.metadata!.name!))
      .catch((error: unknown) => (error instanceof KubeApiError && error.status === 404 ? undefined : Promise.reject(error)));
    if (!existing) return;
    const ours = existing.metadata?.ownerReferences?.some((r) => r.kind === edgeDeploymentKind && r.uid === ed.metadata?.uid);
    const ourRetainedClaim = desired.kind === 'PersistentVolumeClaim'
      && existing.metadata?.labels?.[labelKeys.managedBy] === managedBy
      && existing.metadata?.annotations?.[annotationKeys.retain] === 'true';
    if (ours || ourRetainedClaim) return;
    throw new TakeoverRefused(objectId(desired), existing.metadata?.ownerReferences?.find((r) => r.controller)?.kind);
  }

  /** Deletes children of this EdgeDeployment that are no longer desired; retained claims stay. */
  private async prune(namespace: string, owner: string, desired: readonly KubernetesObject[], log: Logger): Promise<void> {
    const wanted = new Set(desired.map(objectId));
    for (const kind of ownedKinds) {
      for (const obj of this.o.children.get(kind.kind)?.list(namespace) ?? []) {
        const labels = obj.metadata?.labels ?? {};
        if (labels[labelKeys.edgeDeployment] !== sanitizeLabelValue(owner) || labels[labelKeys.managedBy] !== managedBy) continue;
        // Pods of a module's Deployment carry the same labels but belong to its ReplicaSet, not to us.
        const ours = obj.metadata?.ownerReferences?.some((r) => r.controller && r.kind === edgeDeploymentKind && r.name === owner);
        const retainedClaim = kind.kind === 'PersistentVolumeClaim' && obj.metadata?.annotations?.[annotationKeys.retain] === 'true';
        if (!ours && !retainedClaim) continue;
        if (wanted.has(`${kind.kind}/${obj.metadata?.name}`)) continue;
        if (retainedClaim) continue;
        if (obj.metadata?.deletionTimestamp) continue;
        log.info({ object: `${kind.kind}/${obj.metadata?.name}` }, 'pruning child no longer desired');
        this.appliedGenerations.get(`${namespace}/${owner}`)?.delete(`${kind.kind}/${obj.metadata?.name}`);
        await this.o.client.request('DELETE', objectPath(kind, namespace, obj.metadata!.name!), {}, {
          body: { propagationPolicy: 'Background', preconditions: { uid: obj.metadata?.uid } },
        }).catch(ignoreNotFound);
      }
    }
  }

  private statusFor(
    ed: EdgeDeployment,
    modules: readonly ModulePlan[],
    observations: ReadonlyMap<string, ModuleObservation>,
    decisions: ReturnType<typeof admitByStartupOrder>,
    manifest: DeploymentManifest,
    applyErrors: readonly string[],
    warnings: readonly ManifestIssue[],
  ): EdgeDeploymentStatus {
    const moduleStatus: Record<string, ModuleStatus> = {};
    let ready = 0;
    const notReady: string[] = [];
    const degraded: string[] = [];
    for (const m of modules) {
      const o = observations.get(m.id)!;
      const waitingFor = decisions.get(m.id)?.waitingFor ?? [];
      const runtimeStatus = o.runtimeStatus;
      moduleStatus[m.id] = prune({
        name: m.name,
        kind: m.kind,
        image: m.image,
        status: m.status,
        restartPolicy: m.restartPolicy,
        startupOrder: m.startupOrder,
        runtimeStatus,
        restartCount: o.restartCount,
        exitCode: o.exitCode,
        statusDescription: waitingFor.length ? `waiting for ${waitingFor.join(', ')} (startupOrder)` : o.statusDescription,
        lastStartTimeUtc: o.lastStartTimeUtc,
        lastExitTimeUtc: o.lastExitTimeUtc,
        lastRestartTimeUtc: o.lastRestartTimeUtc,
        waitingFor: waitingFor.length ? waitingFor : undefined,
      });
      const settled = m.status === 'running' ? o.ready || (m.kind === 'Pod' && runtimeStatus === 'stopped' && o.exitCode === 0) : runtimeStatus === 'stopped';
      if (settled) ready++;
      else notReady.push(m.id);
      if (runtimeStatus === 'backoff' || runtimeStatus === 'failed') degraded.push(`${m.id} (${o.statusDescription})`);
    }
    const conditions: ConditionInput[] = [
      { type: conditionTypes.valid, status: 'True', reason: 'Valid', message: warnings.length ? `valid with ${warnings.length} warning(s): ${warnings.map((w) => `${w.code} at ${w.path}: ${w.message}`).join('; ')}` : 'the desired state is valid' },
      notReady.length === 0
        ? { type: conditionTypes.ready, status: 'True', reason: 'AllModulesReady', message: `${ready}/${modules.length} modules are as desired` }
        : { type: conditionTypes.ready, status: 'False', reason: 'ModulesNotReady', message: `not ready: ${notReady.join(', ')}` },
      notReady.length === 0
        ? { type: conditionTypes.progressing, status: 'False', reason: 'Converged', message: 'every module is as desired' }
        : { type: conditionTypes.progressing, status: 'True', reason: 'ModulesStarting', message: `waiting on: ${notReady.join(', ')}` },
      degraded.length || applyErrors.length
        ? { type: conditionTypes.degraded, status: 'True', reason: applyErrors.length ? 'ApplyRefused' : 'ModulesFailing', message: [...applyErrors, ...degraded].join('; ') }
        : { type: conditionTypes.degraded, status: 'False', reason: 'Healthy', message: 'no module is failing' },
    ].map((c) => ({ ...c, observedGeneration: ed.metadata?.generation })) as ConditionInput[];
    return prune({
      observedGeneration: ed.metadata?.generation,
      deviceId: ed.spec?.deviceId ?? ed.metadata?.namespace,
      conditions: mergeConditions(ed.status?.conditions, conditions, (this.o.now?.() ?? new Date()).toISOString()),
      lastDesiredStatus: { code: 200, description: '' },
      lastDesiredVersion: this.desiredVersion(ed),
      moduleSummary: `${ready}/${modules.length}`,
      modules: moduleStatus,
      routes: summariseRoutes(manifest).map((r) => prune({ name: r.name, source: r.source, sink: r.sink, priority: r.priority, timeToLiveSecs: r.ttl })),
    }) as EdgeDeploymentStatus;
  }

  private desiredVersion(ed: EdgeDeployment): number | undefined {
    const annotated = ed.metadata?.annotations?.[desiredVersionAnnotation];
    return annotated !== undefined && /^\d+$/.test(annotated) ? Number(annotated) : ed.metadata?.generation;
  }

  /** Invalid desired state: nothing is applied or pruned, so the last good state keeps running. */
  private async writeInvalid(ed: EdgeDeployment, log: Logger, invalid: Invalid, reason: string): Promise<void> {
    const code = invalid.code ?? (invalid.issues[0]?.code as ErrorCode | undefined);
    const edgeAgentStatus = code && code in errorCatalogue ? errorCatalogue[code].edgeAgentStatus : 400;
    // IoT Hub refuses a reported string over 4 KB, and the twin sync would then retry for ever.
    const description = boundText(invalid.issues.map((i) => `${i.code} ${i.path}: ${i.message}`).join('\n'));
    const summary = invalid.issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; ') + (invalid.issues.length > 5 ? `; and ${invalid.issues.length - 5} more` : '');
    const previous = reconcilerOwned(ed.status);
    const now = (this.o.now?.() ?? new Date()).toISOString();
    const keep = (previous.conditions ?? []).filter((c) => c.type !== conditionTypes.valid).map(({ lastTransitionTime: _t, ...c }) => c as ConditionInput);
    const status: EdgeDeploymentStatus = prune({
      ...previous,
      observedGeneration: ed.metadata?.generation,
      lastDesiredStatus: { code: edgeAgentStatus, description },
      lastDesiredVersion: this.desiredVersion(ed),
      conditions: mergeConditions(previous.conditions, [
        { type: conditionTypes.valid, status: 'False', reason, message: summary, observedGeneration: ed.metadata?.generation },
        ...keep,
      ], now),
    }) as EdgeDeploymentStatus;
    const changed = !sameJson(status, previous);
    await this.writeStatus(ed, status);
    if (changed && (previous.observedGeneration !== ed.metadata?.generation || previous.conditions?.find((c) => c.type === conditionTypes.valid)?.status !== 'False')) {
      log.warn({ issues: invalid.issues.map((i) => ({ code: i.code, path: i.path })) }, 'desired state is invalid; keeping the last good state');
      await this.o.events.record(ed, 'Warning', invalid.issues.some((i) => i.code === 'IEO_POLICY_DENIED') ? 'PolicyDenied' : reason, summary);
    }
  }

  /** Writes the reconciler's part of status, only when it differs from what the resource already says. */
  private async writeStatus(ed: EdgeDeployment, computed: EdgeDeploymentStatus): Promise<void> {
    // Conditions and lastDesiredStatus quote manifest values; the shared scrubber keeps secrets out.
    const status = scrubDeep(reconcilerOwned(computed));
    if (sameJson(status, reconcilerOwned(ed.status))) return;
    const { namespace, name } = ed.metadata as { namespace: string; name: string };
    await this.o.client.request('PATCH', `${objectPath(edgeDeploymentResource, namespace, name)}/status`, { fieldManager, force: 'true' }, {
      body: { apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, metadata: { name, namespace }, status },
      contentType: 'application/apply-patch+yaml',
    });
  }
}

const reconcilerConditions: ReadonlySet<string> = new Set([conditionTypes.ready, conditionTypes.progressing, conditionTypes.degraded, conditionTypes.valid]);

/**
 * The part of status this reconciler applies. Twin sync owns status.iotHub and the IoTHubConnected
 * condition under its own field manager; server-side apply merges the two because conditions are a
 * list keyed by type. status.edgeHub is the hub status reader's (hub-status.ts), under a third.
 */
function reconcilerOwned(status: EdgeDeploymentStatus | undefined): EdgeDeploymentStatus {
  const { iotHub: _iotHub, edgeHub: _edgeHub, ...rest } = status ?? {};
  return prune({ ...rest, conditions: rest.conditions?.filter((c) => reconcilerConditions.has(c.type)) });
}

function invalidFrom(errors: readonly ManifestIssue[]): Invalid {
  return { issues: [...errors], code: errors[0]?.code as ErrorCode | undefined };
}

function ignoreNotFound(error: unknown): void {
  if (error instanceof KubeApiError && error.status === 404) return;
  throw error;
}

/** Drops undefined members so that computed and stored status compare equal. */
function prune<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined).map((k) => [k, stable((value as Record<string, unknown>)[k])]));
  }
  return value;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(stable(a)) === JSON.stringify(stable(b));
}

/**
 * A module counts as started once it runs and is ready, or, for a bare-pod module (never, on-failure), once
 * it ran to completion: edgeAgent starts the next startupOrder group after it, and so does this.
 */
function hasStarted(module: ModulePlan, observed: ModuleObservation | undefined): boolean {
  if (!observed) return false;
  if (observed.ready) return true;
  return module.kind === 'Pod' && observed.exitCode !== undefined && (observed.runtimeStatus === 'stopped' || observed.runtimeStatus === 'failed');
}

/**
 * The EdgeDeployment that is its namespace's device: the oldest (then by name) not being deleted. The
 * others are duplicates (IEO_DUPLICATE_DEVICE); twin sync connects only for this one, so two resources
 * never take turns kicking each other's $edgeAgent connection off.
 */
export function seniorEdgeDeployment(all: readonly EdgeDeployment[]): EdgeDeployment | undefined {
  const live = all.filter((e) => !e.metadata?.deletionTimestamp);
  const created = (e: EdgeDeployment) => new Date(e.metadata?.creationTimestamp ?? 0).getTime();
  return [...live].sort((a, b) => created(a) - created(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))[0];
}

export function contentHash(obj: unknown): string {
  return createHash('sha256').update(JSON.stringify(stable(obj))).digest('hex').slice(0, 32);
}

export { collectionPath };

/**
 * Whether the built-in hub runs as $edgeHub: `--edge-hub builtin|stock`, or by mode when not given —
 * builtin in kubectl mode (no spec.iotHub: there is no IoT Hub identity a stock edgeHub could start with),
 * stock in IoT Hub mode. In IoT Hub mode the built-in hub reaches IoT Hub with the binding's connection string.
 */
export function builtinEdgeHubFor(ed: EdgeDeployment, settings: OperatorSettings): { builtinEdgeHub?: BuiltinEdgeHub } {
  const binding = ed.spec?.iotHub?.connectionStringSecretRef;
  const iotHubMode = ed.spec?.iotHub !== undefined;
  const builtin = settings.edgeHub === 'builtin' || (settings.edgeHub === 'auto' && !iotHubMode);
  if (!builtin) return {};
  return { builtinEdgeHub: { image: settings.edgeHubImage, ...(settings.edgeHubNodeOptions !== undefined ? { nodeOptions: settings.edgeHubNodeOptions } : {}), ...(binding ? { upstream: { secretName: binding.name, key: binding.key ?? 'connectionString' } } : {}) } };
}

/** Secrets of the namespace the operator reads for a device and no module may mount: the binding's connection string, a user's CA key. */
function reservedSecretsOf(ed: EdgeDeployment): string[] {
  return [ed.spec?.iotHub?.connectionStringSecretRef.name, ed.spec?.certificates?.deviceCaSecretRef?.name].filter((n): n is string => n !== undefined);
}
