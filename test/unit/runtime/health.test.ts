import { afterEach, describe, expect, it } from '@jest/globals';
import { HealthChecks, OperatorHttpServer, parseListenAddress, startOperatorEndpoints } from '../../../src/runtime/health.ts';
import type { OperatorEndpoints } from '../../../src/runtime/health.ts';
import { OperatorMetrics } from '../../../src/runtime/metrics.ts';

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

async function serve(checks: HealthChecks, metrics?: OperatorMetrics): Promise<string> {
  const server = new OperatorHttpServer({ address: '127.0.0.1:0', checks, ...(metrics ? { metrics } : {}) });
  await server.start();
  running.push(server);
  return server.url;
}

async function get(url: string): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

describe('probe server', () => {
  it('answers ok on /healthz and /readyz when every check passes', async () => {
    const checks = new HealthChecks();
    checks.addReadinessCheck('informers-synced', () => true);
    const url = await serve(checks);
    expect(await get(`${url}/healthz`)).toMatchObject({ status: 200, body: 'ok' });
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 200, body: 'ok' });
  });

  it('lists the checks on ?verbose, sorted by name', async () => {
    const checks = new HealthChecks();
    checks.addReadinessCheck('webhooks', () => undefined);
    checks.addReadinessCheck('informers-synced', async () => undefined);
    const url = await serve(checks);
    expect((await get(`${url}/readyz?verbose`)).body).toBe('[+]informers-synced ok\n[+]webhooks ok\nreadyz check passed\n');
    expect((await get(`${url}/healthz?verbose`)).body).toBe('[+]event-loop ok\n[+]ping ok\nhealthz check passed\n');
  });

  it('is not ready until the readiness check passes, and says which check failed and why', async () => {
    const checks = new HealthChecks();
    let synced = false;
    checks.addReadinessCheck('informers-synced', () => {
      if (!synced) throw new Error('edgedeployments informer has not listed yet');
    });
    checks.addReadinessCheck('leader', () => true);
    const url = await serve(checks);
    const notReady = await get(`${url}/readyz`);
    expect(notReady.status).toBe(500);
    expect(notReady.body).toBe('[-]informers-synced failed: edgedeployments informer has not listed yet\n[+]leader ok\nreadyz check failed\n');
    // Liveness is a separate set: an unsynced cache is no reason to restart the process.
    expect((await get(`${url}/healthz`)).status).toBe(200);
    synced = true;
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 200, body: 'ok' });
  });

  it('fails a check that returns false, rejects, or never answers', async () => {
    const checks = new HealthChecks({ checkTimeoutMs: 50 });
    checks.addHealthCheck('returns-false', () => false);
    checks.addHealthCheck('rejects', () => Promise.reject(new Error('watch stream closed')));
    checks.addHealthCheck('hangs', () => new Promise<void>(() => undefined));
    const url = await serve(checks);
    const { status, body } = await get(`${url}/healthz`);
    expect(status).toBe(500);
    expect(body).toContain('[-]returns-false failed: check returned false\n');
    expect(body).toContain('[-]rejects failed: watch stream closed\n');
    expect(body).toContain('[-]hangs failed: check hangs did not finish within 50 ms\n');
    expect(body).toContain('[+]ping ok\n');
  });

  it('runs one check on /readyz/<name> and skips checks named in ?exclude', async () => {
    const checks = new HealthChecks();
    checks.addReadinessCheck('informers-synced', () => true);
    checks.addReadinessCheck('iothub', () => {
      throw new Error('IoT Hub unreachable');
    });
    const url = await serve(checks);
    expect(await get(`${url}/readyz/informers-synced`)).toMatchObject({ status: 200, body: 'ok' });
    expect((await get(`${url}/readyz/iothub`)).status).toBe(500);
    expect((await get(`${url}/readyz/nope`)).status).toBe(404);
    expect(await get(`${url}/readyz?exclude=iothub`)).toMatchObject({ status: 200, body: 'ok' });
  });

  it('never shows a secret in a failure reason', async () => {
    const checks = new HealthChecks();
    const key = 'Zk3q8Vb1Nm6Lp0Xr4Tw7Yc2Hd5Jf9Ga+Es/Qu1Oi3A=';
    checks.addReadinessCheck('iothub', () => {
      throw new Error(`cannot open HostName=hub.example;DeviceId=edge-1;SharedAccessKey=${key}`);
    });
    const url = await serve(checks);
    const { body } = await get(`${url}/readyz`);
    expect(body).toContain('[-]iothub failed: cannot open HostName=hub.example;DeviceId=edge-1;SharedAccessKey=[REDACTED]');
    expect(body).not.toContain(key);
  });

  it('fails /healthz after the event loop was blocked longer than the threshold', async () => {
    const checks = new HealthChecks({ eventLoopStallMs: 100, eventLoopWindowMs: 60_000 });
    const url = await serve(checks);
    const blockUntil = performance.now() + 400;
    while (performance.now() < blockUntil) {
      // Busy-wait on purpose: nothing else may run, which is what a stuck reconcile does.
    }
    const { status, body } = await get(`${url}/healthz`);
    expect(status).toBe(500);
    expect(body).toMatch(/^\[-\]event-loop failed: event loop blocked for \d+ ms within the last 60 s$/m);
  });

  it('rejects a duplicate or URL-unsafe check name', () => {
    const checks = new HealthChecks();
    checks.addReadinessCheck('informers-synced', () => true);
    expect(() => checks.addReadinessCheck('informers-synced', () => true)).toThrow('already registered');
    expect(() => checks.addHealthCheck('a/b', () => true)).toThrow('URL path');
  });
});

describe('metrics endpoint', () => {
  it('serves the Prometheus text format with the operator metrics', async () => {
    const metrics = new OperatorMetrics({ processMetrics: false });
    metrics.registerController('edgedeployment', 1);
    const url = await serve(new HealthChecks(), metrics);
    const { status, body, type } = await get(`${url}/metrics`);
    expect(status).toBe(200);
    expect(type).toContain('text/plain');
    expect(body).toContain('controller_runtime_reconcile_total{controller="edgedeployment",result="success"} 0');
  });

  it('serves metrics and probes from separate servers when the addresses differ', async () => {
    // Two loopback addresses; the rule for this project is that only 127.0.0.0/8 is dialled.
    const endpoints: OperatorEndpoints = await startOperatorEndpoints({
      probeAddress: '127.0.0.1:0',
      metricsAddress: '127.0.0.2:0',
      checks: new HealthChecks(),
      metrics: new OperatorMetrics({ processMetrics: false }),
    });
    running.push(endpoints);
    const [probes, metricsServer] = endpoints.servers;
    expect(endpoints.servers).toHaveLength(2);
    expect((await get(`${probes!.url}/healthz`)).status).toBe(200);
    expect((await get(`${probes!.url}/metrics`)).status).toBe(404);
    expect((await get(`${metricsServer!.url}/metrics`)).status).toBe(200);
    expect((await get(`${metricsServer!.url}/healthz`)).status).toBe(404);
  });

  it('serves everything from one server when both addresses are the same', async () => {
    const endpoints = await startOperatorEndpoints({
      probeAddress: '127.0.0.1:0',
      metricsAddress: '127.0.0.1:0',
      checks: new HealthChecks(),
      metrics: new OperatorMetrics({ processMetrics: false }),
    });
    running.push(endpoints);
    expect(endpoints.servers).toHaveLength(1);
    const url = endpoints.servers[0]!.url;
    expect((await get(`${url}/healthz`)).status).toBe(200);
    expect((await get(`${url}/metrics`)).status).toBe(200);
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:8081', { host: '127.0.0.1', port: 8081 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['0.0.0.0:8080', { host: '0.0.0.0', port: 8080 }],
    ['[::1]:9090', { host: '::1', port: 9090 }],
  ])('%s', (address, expected) => {
    expect(parseListenAddress(address)).toEqual(expected);
  });

  it.each(['8080', 'localhost', '1.2.3.4:99999', 'a:b:c'])('rejects %s', (address) => {
    expect(() => parseListenAddress(address)).toThrow('expected host:port');
  });
});
