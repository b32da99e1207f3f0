// Translation where edgeAgent and Docker are lenient: string scalars, anonymous volumes, merged mounts.
import { describe, expect, it } from '@jest/globals';
import { settingsWith } from '../../../src/translate/index.ts';
import { cleanMountPath } from '../../../src/translate/mounts.ts';
import { moduleSpec } from './builders.ts';
import { container, errors, one, podSpec, value } from './helpers.ts';

const allowAll = settingsWith({ allowPrivileged: true, allowHostPath: true, allowDevices: true });
const M = '/modulesContent/$edgeAgent/properties.desired/modules/m/settings/createOptions';

describe('string booleans and integers (IEO_W_COERCED_VALUE)', () => {
  it('converts each with a warning at its path', () => {
    const outcome = one(moduleSpec('m', { createOptions: { Tty: 'TRUE', HostConfig: { Privileged: ' true ', Memory: '1073741824', CpuQuota: '-1' } } }), allowAll);
    const result = value(outcome);
    expect(container(result, 'm')).toMatchObject({ tty: true, securityContext: { privileged: true }, resources: { limits: { memory: '1Gi' } } });
    expect(outcome.warnings.filter((w) => w.code === 'IEO_W_COERCED_VALUE').map((w) => w.path)).toEqual([
      `${M}/Tty`, `${M}/HostConfig/Privileged`, `${M}/HostConfig/Memory`, `${M}/HostConfig/CpuQuota`,
    ]);
  });
  it('finds the field whatever the case of its name, as Docker does', () => {
    const outcome = one(moduleSpec('m', { createOptions: { HostConfig: { privileged: 'false' } } }), allowAll);
    expect(outcome.warnings.map((w) => w.path)).toContain(`${M}/HostConfig/privileged`);
  });
  it('leaves a string that is no value of the type for translation to refuse, as Docker would', () => {
    expect(errors(one(moduleSpec('m', { createOptions: { HostConfig: { Privileged: 'yes' } } }), allowAll))).toEqual([
      expect.objectContaining({ code: 'IEO_CREATE_OPTION_VALUE', path: `${M}/HostConfig/Privileged` }),
    ]);
    expect(errors(one(moduleSpec('m', { createOptions: { HostConfig: { Memory: '512m' } } }), allowAll))[0]?.path).toBe(`${M}/HostConfig/Memory`);
  });
  it('does not change the manifest it reads', () => {
    const createOptions = { HostConfig: { Privileged: 'true' } };
    one(moduleSpec('m', { createOptions }), allowAll);
    expect(createOptions.HostConfig.Privileged).toBe('true');
  });
});

describe('one mount per container path', () => {
  it('lets a bind or tmpfs replace /dev/shm from ShmSize', () => {
    const outcome = one(moduleSpec('m', { createOptions: { HostConfig: { ShmSize: 1048576, Tmpfs: { '/dev/shm': 'size=2m' } } } }));
    const mounts = (container(value(outcome), 'm').volumeMounts ?? []).filter((m) => m.name !== 'device-ca');
    expect(mounts.map((m) => m.mountPath)).toEqual(['/dev/shm']);
    expect(podSpec(value(outcome), 'm').volumes?.filter((v) => v.name !== 'device-ca')).toHaveLength(1);
  });
  it('refuses two binds at one path, as Docker does (duplicate mount point)', () => {
    expect(errors(one(moduleSpec('m', { createOptions: { HostConfig: { Binds: ['a:/data', 'b:/data/'] } } }), allowAll))).toEqual([
      expect.objectContaining({ code: 'IEO_CREATE_OPTION_VALUE', path: `${M}/HostConfig/Binds/1` }),
    ]);
  });
  it('keeps one mount for the same bind written twice', () => {
    const mounts = container(value(one(moduleSpec('m', { createOptions: { HostConfig: { Binds: ['a:/data', 'a:/data'] } } }))), 'm').volumeMounts?.filter((m) => m.name !== 'device-ca');
    expect(mounts).toEqual([{ name: 'a', mountPath: '/data' }]);
  });
  it('lets k8s.volumeMounts override a Docker mount at the same path', () => {
    const outcome = one(moduleSpec('m', { createOptions: {
      HostConfig: { Binds: ['a:/data'] },
      k8s: { volumes: [{ name: 'scratch', emptyDir: {} }], volumeMounts: [{ name: 'scratch', mountPath: '/data' }] },
    } }));
    expect(container(value(outcome), 'm').volumeMounts?.filter((m) => m.name !== 'device-ca')).toEqual([{ name: 'scratch', mountPath: '/data' }]);
    expect(outcome.warnings.map((w) => w.code)).toContain('IEO_W_MOUNT_MERGED');
  });
  it('refuses a k8s volume named like one the operator adds, or twice', () => {
    expect(errors(one(moduleSpec('m', { createOptions: { k8s: { volumes: [{ name: 'iothub-identity', emptyDir: {} }] } } })))[0]?.code).toBe('IEO_K8S_EXTENSION');
    expect(errors(one(moduleSpec('m', { createOptions: { k8s: { volumes: [{ name: 'x', emptyDir: {} }, { name: 'x', emptyDir: {} }] } } })))[0]?.code).toBe('IEO_K8S_EXTENSION');
  });
  it.each([['/data/', '/data'], ['//data//x/', '/data/x'], ['/a/./b', '/a/b'], ['/a/../b', '/b'], ['/', '/']])('cleans %s to %s', (raw, clean) => {
    expect(cleanMountPath(raw)).toBe(clean);
  });
  it('keeps rshared Bidirectional only in a privileged container, as the API server requires', () => {
    const bind = { HostConfig: { Binds: ['/var/lib/plc:/state:rshared'] } };
    const plain = one(moduleSpec('m', { createOptions: bind }), allowAll);
    expect(container(value(plain), 'm').volumeMounts?.[0]?.mountPropagation).toBe('HostToContainer');
    expect(plain.warnings.map((w) => w.code)).toContain('IEO_W_UNSUPPORTED_CREATE_OPTION');
    const privileged = one(moduleSpec('m', { createOptions: { HostConfig: { ...bind.HostConfig, Privileged: true } } }), allowAll);
    expect(container(value(privileged), 'm').volumeMounts?.[0]?.mountPropagation).toBe('Bidirectional');
  });
});
