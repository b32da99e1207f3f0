// `deploy` takes the hub's connection string from the environment or a file, never from argv (where `ps`
// shows it), and the CLI's errors pass through the shared scrubber.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { main } from '../../../src/cli/main.ts';

const key = 'Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXktMTIzNA==';
const serviceCs = `HostName=127.0.0.9;SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`;
const scratch = mkdtempSync(join(tmpdir(), 'deploy-secrets-'));
const manifestFile = join(scratch, 'deployment.json');
writeFileSync(manifestFile, '{}');

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), stdin: async () => '' });
  return { code, out, err };
}

afterEach(() => {
  delete process.env.IOTEDGE_HUB_CONNECTION_STRING;
});

describe('deploy connection string', () => {
  it('refuses it on the command line, saying why, without echoing it', async () => {
    const r = await run(['deploy', '--hub-connection-string', serviceCs, '--device', 'dev1', manifestFile]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('IOTEDGE_HUB_CONNECTION_STRING');
    expect(r.err).toContain('--hub-connection-string-file');
    expect(r.err + r.out).not.toContain(key);
  });

  it('asks for the variable or the file when neither is given', async () => {
    const r = await run(['deploy', '--device', 'dev1', manifestFile]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/IOTEDGE_HUB_CONNECTION_STRING or give --hub-connection-string-file/);
  });

  it('reads the file and the variable (then validates the manifest before dialling)', async () => {
    const csFile = join(scratch, 'cs');
    writeFileSync(csFile, `${serviceCs}\n`, { mode: 0o600 });
    const fromFile = await run(['deploy', '--hub-connection-string-file', csFile, '--device', 'dev1', manifestFile]);
    process.env.IOTEDGE_HUB_CONNECTION_STRING = serviceCs;
    const fromEnv = await run(['deploy', '--device', 'dev1', manifestFile]);
    for (const r of [fromFile, fromEnv]) {
      // Past the connection string: the empty manifest is what is refused.
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/IEO_/);
      expect(r.err).not.toContain(key);
    }
  });

  it("refuses a device connection string without echoing its key", async () => {
    process.env.IOTEDGE_HUB_CONNECTION_STRING = `HostName=h;DeviceId=d;SharedAccessKey=${key}`;
    const r = await run(['deploy', '--device', 'dev1', manifestFile]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('service (policy) connection string');
    expect(r.err).not.toContain(key);
  });
});

describe('CLI errors', () => {
  it('go through the shared scrubber', async () => {
    const r = await run(['validate', join(scratch, `SharedAccessKey=${key}`)]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('SharedAccessKey=[REDACTED]');
    expect(r.err).not.toContain(key);
  });
});
