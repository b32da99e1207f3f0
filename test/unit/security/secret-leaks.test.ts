// The secret-leak check that runs after the integration and e2e projects: it must find a key that an Event,
// a status or a log line shows, and not be fooled into reporting public data.
import { describe, expect, it } from '@jest/globals';
import { findLeaks, readAudit, secretsInValue } from '../../support/secret-leaks.ts';

const key = 'c2VjcmV0LWtleS1mb3ItbGVhay10ZXN0cy0wMTIzNDU2Nzg=';
const b64 = (text: string) => Buffer.from(text).toString('base64');
const audit = (events: unknown[]) => events.map((e) => JSON.stringify(e)).join('\n');

describe('secret-leak check', () => {
  it('finds the keys a run stored in Secrets, embedded or whole', () => {
    expect(secretsInValue('connectionString', `HostName=h;DeviceId=d;SharedAccessKey=${key}`)).toContain(key);
    expect(secretsInValue('.dockerconfigjson', JSON.stringify({ auths: { 'r.io': { username: 'u', password: 'fictional-password-9', auth: b64('u:fictional-password-9') } } })))
      .toEqual(expect.arrayContaining(['fictional-password-9', b64('u:fictional-password-9')]));
    expect(secretsInValue('ca.crt', '-----BEGIN CERTIFICATE-----\nMIIB')).toEqual([]);
    expect(secretsInValue('username', 'pull-user-name')).toEqual([]);
  });

  it('reports a key shown in an Event or a status, and only there', () => {
    const { secrets, outputs } = readAudit(audit([
      { verb: 'create', objectRef: { resource: 'secrets', namespace: 'n', name: 'b' }, requestObject: { data: { connectionString: b64(`HostName=h;DeviceId=d;SharedAccessKey=${key}`) } } },
      { verb: 'create', objectRef: { resource: 'events', namespace: 'n', name: 'e1' }, requestObject: { message: 'connected' } },
      { verb: 'create', objectRef: { resource: 'events', namespace: 'n', name: 'e2' }, requestObject: { message: `failed with SharedAccessKey=${key}` } },
      { verb: 'patch', objectRef: { resource: 'edgedeployments', subresource: 'status', namespace: 'n', name: 'd' }, requestObject: { status: { conditions: [{ message: `key ${key}` }] } } },
    ]));
    const leaks = findLeaks(secrets, [...outputs, { where: 'captured op.log', text: '{"msg":"SharedAccessKey=[REDACTED]"}' }]);
    expect(leaks.map((l) => l.where)).toEqual(['events n/e2', 'edgedeployments/status n/d']);
    expect(JSON.stringify(leaks)).not.toContain(key);
  });
});
