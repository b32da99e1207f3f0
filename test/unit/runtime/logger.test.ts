import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { REDACTED, createLogger, forEdgeDeployment, scrubSecrets } from '../../../src/runtime/logger.ts';

// Secret-looking values of the shapes IoT Hub and Kubernetes really use.
const deviceKey = 'q9Rz3vK1Xb7pLmN0tYw2uE5sH8dC4fGaJ6iOkQxZr+M=';
const hubKey = 'Hb2L8kPq1Zx9Vm3Nc7Rt5Yw0Ud4Se6Fg8Jh2Kl0QaZ/=';
const signature = 'vS1Ut%2BqL9xP4mR7zK2dW8nB3yF6hJ0cE5gA1oT%3D';
const password = 'Tr0ub4dor&3-horse-battery';
const bearer = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IlNwZWNpYWwifQ.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl';
const deviceConnectionString = `HostName=hub-1.azure-devices.net;DeviceId=edge-1;SharedAccessKey=${deviceKey}`;
const sasToken = `SharedAccessSignature sr=hub-1.azure-devices.net%2Fdevices%2Fedge-1&sig=${signature}&se=1893456000&skn=iothubowner`;
const secrets = [deviceKey, hubKey, signature, password, bearer];

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; raw: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', name: 'test', destination: sink });
  return {
    logger,
    raw: () => text,
    lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function expectNoSecrets(text: string): void {
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('createLogger', () => {
  it('writes JSON lines with a text level, name, time and message', () => {
    const { logger, lines } = capture();
    logger.info({ queue: 'edgedeployments', depth: 3 }, 'queue grew');
    const [line] = lines();
    expect(line).toMatchObject({ level: 'info', name: 'test', queue: 'edgedeployments', depth: 3, msg: 'queue grew' });
    expect(typeof line?.time).toBe('string');
  });

  it('redacts secrets at known object paths and keeps the other fields', () => {
    const { logger, raw, lines } = capture();
    logger.info({
      password,
      sharedAccessKey: deviceKey,
      connectionString: deviceConnectionString,
      device: { id: 'edge-1', primaryKey: deviceKey, secondaryKey: hubKey, auth: { type: 'sas', key: deviceKey } },
      headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
    }, 'device registered');
    expectNoSecrets(raw());
    const [line] = lines();
    expect(line).toMatchObject({
      password: REDACTED,
      sharedAccessKey: REDACTED,
      connectionString: REDACTED,
      device: { id: 'edge-1', primaryKey: REDACTED, secondaryKey: REDACTED, auth: REDACTED },
      headers: { authorization: REDACTED, accept: 'application/json' },
      msg: 'device registered',
    });
  });

  it('scrubs SAS tokens and connection-string keys inside free text, keeping the rest of the text', () => {
    const { logger, raw, lines } = capture();
    logger.warn(`cannot connect with ${deviceConnectionString}; retrying`);
    logger.info({ detail: `token ${sasToken} expires soon` }, 'twin sync');
    logger.info('hub owner: HostName=hub-1.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=%s', hubKey);
    expectNoSecrets(raw());
    const [first, second, third] = lines();
    expect(first?.msg).toBe(`cannot connect with HostName=hub-1.azure-devices.net;DeviceId=edge-1;SharedAccessKey=${REDACTED}; retrying`);
    expect(second?.detail).toBe(
      `token SharedAccessSignature sr=hub-1.azure-devices.net%2Fdevices%2Fedge-1&sig=${REDACTED}&se=1893456000&skn=iothubowner expires soon`,
    );
    expect(third?.msg).toContain('SharedAccessKeyName=iothubowner');
  });

  it('scrubs secrets nested deeper than the redact paths reach, and inside JSON held in strings', () => {
    const { logger, raw, lines } = capture();
    const registryCredentials = JSON.stringify({ address: 'registry.example', username: 'pull', password });
    logger.info({ spec: { modules: { sensor: { settings: { registry: { username: 'pull', password } } } } } }, 'desired');
    logger.info({ createOptions: registryCredentials }, 'module options');
    logger.info(`raw manifest ${registryCredentials}`);
    expectNoSecrets(raw());
    const [deep, nested, message] = lines();
    expect(deep).toMatchObject({ spec: { modules: { sensor: { settings: { registry: { username: 'pull', password: REDACTED } } } } } });
    expect(JSON.parse(nested?.createOptions as string)).toEqual({ address: 'registry.example', username: 'pull', password: REDACTED });
    expect(message?.msg).toBe(`raw manifest ${JSON.stringify({ address: 'registry.example', username: 'pull', password: REDACTED })}`);
  });

  it('scrubs secrets in error messages and stacks', () => {
    const { logger, raw, lines } = capture();
    logger.error({ err: new Error(`connect failed for ${deviceConnectionString}`) }, 'twin sync failed');
    expectNoSecrets(raw());
    const [line] = lines();
    const err = line?.err as { message: string; stack: string };
    expect(err.message).toBe(`connect failed for HostName=hub-1.azure-devices.net;DeviceId=edge-1;SharedAccessKey=${REDACTED}`);
    expect(err.stack).toContain('connect failed for HostName=hub-1.azure-devices.net');
  });

  it('keeps every line valid JSON when a password contains quotes and backslashes', () => {
    const { logger, raw, lines } = capture();
    const awkward = 'p"a\\ss\\"word-9f8e7d';
    logger.info({ nested: { deeper: { password: awkward } }, after: 'kept' }, 'x');
    logger.info({ blob: JSON.stringify({ password: awkward, after: 'kept' }) }, 'y');
    expect(raw()).not.toContain('9f8e7d');
    const [first, second] = lines();
    expect(first).toMatchObject({ nested: { deeper: { password: REDACTED } }, after: 'kept' });
    expect(JSON.parse(second?.blob as string)).toEqual({ password: REDACTED, after: 'kept' });
  });
});

describe('forEdgeDeployment', () => {
  it('puts the EdgeDeployment key on every line of the child', () => {
    const { logger, lines } = capture();
    const child = forEdgeDeployment(logger, { namespace: 'factory', name: 'line-3' });
    child.info('reconciling');
    forEdgeDeployment(child, 'factory/line-4').debug({ modules: 2 }, 'applied');
    logger.info('unrelated');
    const [first, second, third] = lines();
    expect(first).toMatchObject({ edgeDeployment: 'factory/line-3', msg: 'reconciling' });
    expect(second).toMatchObject({ edgeDeployment: 'factory/line-4', modules: 2 });
    expect(third?.edgeDeployment).toBeUndefined();
  });

  it('scrubs secrets carried in child bindings', () => {
    const { logger, raw } = capture();
    logger.child({ device: deviceConnectionString }).info('bound');
    expectNoSecrets(raw());
    expect(raw()).toContain('DeviceId=edge-1');
  });
});

describe('scrubSecrets', () => {
  it('leaves text without secrets untouched', () => {
    const text = 'reconciled factory/line-3 in 12 ms; 4 modules running, signature verified';
    expect(scrubSecrets(text)).toBe(text);
  });

  it.each([
    ['a connection string key', deviceConnectionString, deviceKey],
    ['a SAS signature', sasToken, signature],
    ['a bearer token', `Authorization: Bearer ${bearer}`, bearer],
    ['URL credentials', `amqps://iothubowner:${password}@hub-1.azure-devices.net:5671`, password],
    ['a storage account key', `DefaultEndpointsProtocol=https;AccountName=st;AccountKey=${hubKey};EndpointSuffix=core`, hubKey],
    ['a JSON password', `{"username":"u","password":"${password}"}`, password],
    ['a PEM private key', `tls.key: -----BEGIN RSA PRIVATE KEY-----\nMIIEfictionalKeyBody${password}\n-----END RSA PRIVATE KEY-----\n`, `fictionalKeyBody${password}`],
    ['a device root key in JSON', `{"data":{"rootKey":"${hubKey}"}}`, hubKey],
  ])('removes %s', (_what, text, secret) => {
    const scrubbed = scrubSecrets(text);
    expect(scrubbed).not.toContain(secret);
    expect(scrubbed).toContain(REDACTED);
  });
});
