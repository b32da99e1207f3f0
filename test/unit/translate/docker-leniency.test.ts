// Docker's own leniency, which edgeAgent and Microsoft's Kubernetes preview shared: createOptions keys in any
// case, mount types in any case, bad port keys skipped; and edgeAgent's rule that a new `version` recreates a module.
import { describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { annotationKeys, settingsWith } from '../../../src/translate/index.ts';
import { moduleSpec } from './builders.ts';
import { codes, container, errors, find, has, one, podSpec, service, value } from './helpers.ts';

const co = (createOptions: Record<string, unknown>) => ({ createOptions });

describe('createOptions keys without regard to case', () => {
  it('reads lower-case top-level keys as Docker does', () => {
    const r = value(one(moduleSpec('m', co({ cmd: ['--verbose'], entrypoint: ['/app/run'], workingdir: '/data', env: ['A=1'] }))));
    const c = container(r, 'm');
    expect(c.args).toEqual(['--verbose']);
    expect(c.command).toEqual(['/app/run']);
    expect(c.workingDir).toBe('/data');
    expect(c.env).toContainEqual({ name: 'A', value: '1' });
  });

  it('reads keys at every level: hostconfig, portbindings, hostport, mounts', () => {
    const r = value(one(moduleSpec('m', co({
      exposedports: { '80/tcp': {} },
      hostconfig: { portbindings: { '8883/tcp': [{ hostport: '18883' }] }, mounts: [{ type: 'volume', source: 'data', target: '/data' }] },
    }))));
    expect(service(r, 'm').spec?.ports?.map((p) => p.port).sort()).toEqual([80, 8883]);
    expect(service(r, 'm-ports').spec?.ports?.map((p) => [p.port, p.targetPort])).toEqual([[18883, 8883]]);
    expect(container(r, 'm').volumeMounts?.map((m) => m.mountPath)).toEqual(['/data', '/etc/iotedge-operator/device-ca']);
    expect(r.volumeClaims.map((c) => c.metadata?.name)).toEqual(['data', 'edgehub-storage']);
  });

  it('keeps the case of map keys: Labels, Sysctls, port keys', () => {
    const r = value(one(moduleSpec('m', co({ labels: { 'Vendor.Key': 'x' } }))));
    const template = find<V1Deployment>(r, 'Deployment', 'm').spec?.template;
    expect(template?.metadata?.annotations?.['Vendor.Key']).toBe('x');
  });

  it('lets the later of two keys naming one field win, and reports the earlier', () => {
    const outcome = one(moduleSpec('m', co({ Cmd: ['first'], cmd: ['second'] })));
    expect(container(value(outcome), 'm').args).toEqual(['second']);
    const warning = outcome.warnings.find((w) => w.code === 'IEO_W_UNSUPPORTED_CREATE_OPTION');
    expect(warning?.path).toMatch(/\/settings\/createOptions\/cmd$/);
    expect(warning?.message).toContain('field Cmd is ignored');
  });

  it('reports faults at the keys as written', () => {
    const e = errors(one(moduleSpec('m', co({ hostconfig: { memory: 'lots' } }))));
    expect(e.map((i) => i.path)).toEqual([expect.stringMatching(/\/settings\/createOptions\/hostconfig\/memory$/)]);
  });
});

describe('Mounts type without regard to case', () => {
  it('maps "Bind" to a host path and "VOLUME" to a claim', () => {
    const r = value(one(moduleSpec('m', co({
      HostConfig: { Mounts: [
        { Type: 'Bind', Source: '/var/log', Target: '/logs', ReadOnly: true },
        { Type: 'VOLUME', Source: 'store', Target: '/store' },
      ] },
    })), settingsWith({ allowHostPath: true })));
    const spec = podSpec(r, 'm');
    expect(spec.volumes?.find((v) => v.hostPath)?.hostPath?.path).toBe('/var/log');
    expect(spec.containers[0]?.volumeMounts).toEqual(expect.arrayContaining([
      expect.objectContaining({ mountPath: '/logs', readOnly: true }),
      expect.objectContaining({ mountPath: '/store' }),
    ]));
    expect(r.volumeClaims.map((c) => c.metadata?.name)).toEqual(['edgehub-storage', 'store']);
  });

  it('still refuses a type Docker has no meaning for, quoting it as written', () => {
    const e = errors(one(moduleSpec('m', co({ HostConfig: { Mounts: [{ Type: 'Nfs', Source: 'x', Target: '/x' }] } }))));
    expect(codes(e)).toEqual(['IEO_CREATE_OPTION_VALUE']);
    expect(e[0]?.message).toContain('"Nfs"');
  });
});

describe('namespace modes without regard to case', () => {
  it('reads NetworkMode "Host" as the host network', () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: { NetworkMode: 'Host' } })), settingsWith({ allowHostNetwork: true })));
    expect(podSpec(r, 'm').hostNetwork).toBe(true);
    expect(podSpec(r, 'm').dnsPolicy).toBe('ClusterFirstWithHostNet');
  });
});

describe('invalid port keys', () => {
  it.each(['aa/TCP', '123/XXX', '0/tcp', '70000'])('skips ExposedPorts key %s with a warning and deploys the rest', (key) => {
    const outcome = one(moduleSpec('m', co({ ExposedPorts: { [key]: {}, '9000/udp': {} } })));
    const r = value(outcome);
    expect(service(r, 'm').spec?.ports?.map((p) => `${p.port}/${p.protocol}`)).toEqual(['9000/UDP']);
    expect(outcome.warnings.filter((w) => w.code === 'IEO_W_PORT_SKIPPED').map((w) => w.path)).toEqual([expect.stringContaining(`/ExposedPorts/${key.replace('/', '~1')}`)]);
  });

  it.each(['abc', '8000-8010'])('skips a binding whose HostPort is %s, as the preview did', (hostPort) => {
    const outcome = one(moduleSpec('m', co({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: hostPort }], '443/tcp': [{ HostPort: '8443' }] } } })));
    expect(service(value(outcome), 'm-ports').spec?.ports?.map((p) => p.port)).toEqual([8443]);
    expect(codes(outcome.warnings)).toEqual(['IEO_W_PORT_SKIPPED']);
  });

  it('makes no Service when every port key is invalid, as the preview did', () => {
    const outcome = one(moduleSpec('m', co({ ExposedPorts: { 'aa/TCP': {} }, HostConfig: { PortBindings: { 'bb/tcp': [{ HostPort: '1' }] } } })));
    const r = value(outcome);
    expect(has(r, 'Service', 'm')).toBe(false);
    expect(has(r, 'Service', 'm-ports')).toBe(false);
    expect(codes(outcome.warnings).filter((c) => c === 'IEO_W_PORT_SKIPPED')).toHaveLength(2);
  });
});

describe('version', () => {
  const template = (version: string | undefined, image = 'example.azurecr.io/m:1.0') =>
    find<V1Deployment>(value(one(moduleSpec('m', { version, image }))), 'Deployment', 'm').spec?.template;

  it('puts the module version on the pod template, so a new version alone rolls the Deployment', () => {
    expect(template('1.0')?.metadata?.annotations?.[annotationKeys.moduleVersion]).toBe('1.0');
    expect(template('1.1')).not.toEqual(template('1.0'));
    expect(template('1.1')?.spec).toEqual(template('1.0')?.spec);
  });

  it('adds nothing when the module has no version', () => {
    expect(template(undefined)?.metadata?.annotations).not.toHaveProperty(annotationKeys.moduleVersion);
  });

  it('rolls the module when only the image digest changes', () => {
    const a = template('1.0', 'example.azurecr.io/m@sha256:' + 'a'.repeat(64));
    const b = template('1.0', 'example.azurecr.io/m@sha256:' + 'b'.repeat(64));
    expect(a?.spec?.containers[0]?.image).not.toBe(b?.spec?.containers[0]?.image);
  });

  it('changes a bare Pod\'s spec hash when only the version changes, so the Pod is recreated', () => {
    const pod = (version: string) => find<V1Pod>(value(one(moduleSpec('job', { version, restartPolicy: 'never' }))), 'Pod', 'job');
    const [a, b] = [pod('1.0'), pod('2.0')];
    expect(a.spec).toEqual(b.spec);
    expect(a.metadata?.annotations?.[annotationKeys.specHash]).not.toBe(b.metadata?.annotations?.[annotationKeys.specHash]);
    expect(b.metadata?.annotations?.[annotationKeys.moduleVersion]).toBe('2.0');
  });
});
