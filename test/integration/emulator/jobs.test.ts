// Jobs with azure-iothub's JobClient: scheduled twin updates and device methods over the devices a query
// condition selects, their statuses and deviceJobStatistics, cancellation, and the jobs query with paging.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import iothub from 'azure-iothub';
import type { JobClient, Registry } from 'azure-iothub';
import device from 'azure-iot-device';
import type { Client as DeviceClientType } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { startEmulatorWithRegistry } from './sdk.ts';

interface JobJson {
  jobId: string;
  status: string;
  type: string;
  failureReason?: string;
  deviceJobStatistics: { deviceCount: number; failedCount: number; succeededCount: number; runningCount: number; pendingCount: number };
}

let hub: HubEmulator;
let registry: Registry;
let jobs: JobClient;
let leaf: DeviceClientType;

async function jobOf(jobId: string): Promise<JobJson> {
  return (await jobs.getJob(jobId)).jobStatus as JobJson;
}

/** Polls the job, as the SDK's own end-to-end test does, until it reaches a final status. */
async function finished(jobId: string): Promise<JobJson> {
  for (;;) {
    const job = await jobOf(jobId);
    if (!['queued', 'running'].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  for (const deviceId of ['job-a', 'job-b', 'job-c']) await registry.create({ deviceId } as never);
  jobs = iothub.JobClient.fromConnectionString(hub.serviceConnectionString);
  leaf = device.Client.fromConnectionString(hub.deviceConnectionString('job-a'), mqtt.Mqtt);
  await leaf.setOptions({ ca: hub.caCertPem });
  await leaf.open();
});

afterAll(async () => {
  await leaf?.close();
  await hub?.stop();
});

describe('jobs (/jobs/v2) with JobClient', () => {
  it('runs a twin update job on the devices its condition selects and counts them', async () => {
    // The patch the SDK's own e2e test sends: etag '*' and an empty reported section, which the hub ignores.
    const patch = { etag: '*', tags: { site: 'north' }, properties: { desired: { interval: 5 }, reported: {} } };
    const created = (await jobs.scheduleTwinUpdate('twin-job', "deviceId IN ['job-a', 'job-b']", patch, new Date(), 120)).jobStatus as JobJson;
    expect(created).toMatchObject({ jobId: 'twin-job', type: 'scheduleUpdateTwin' });
    const job = await finished('twin-job');
    expect(job.status).toBe('completed');
    expect(job.deviceJobStatistics).toEqual({ deviceCount: 2, failedCount: 0, succeededCount: 2, runningCount: 0, pendingCount: 0 });
    for (const deviceId of ['job-a', 'job-b']) {
      const twin = (await registry.getTwin(deviceId)).responseBody as unknown as { tags: unknown; properties: { desired: unknown } };
      expect(twin.tags).toEqual({ site: 'north' });
      expect(twin.properties.desired).toMatchObject({ interval: 5 });
    }
    expect(((await registry.getTwin('job-c')).responseBody as unknown as { tags: unknown }).tags).toEqual({});
  });

  it('selects devices with any twin condition and records each device for devices.jobs queries', async () => {
    await jobs.scheduleTwinUpdate('tag-job', "tags.site = 'north' AND NOT (deviceId = 'job-b')", { properties: { desired: { mode: 'eco' } } }, new Date(), 120);
    const job = await finished('tag-job');
    expect(job).toMatchObject({ status: 'completed', deviceJobStatistics: { deviceCount: 1, succeededCount: 1 } });
    const query = registry.createQuery("SELECT * FROM devices.jobs WHERE jobId = 'tag-job'");
    const { result } = (await query.next(query.continuationToken as string)) as unknown as { result: Array<Record<string, unknown>> };
    expect(result).toEqual([expect.objectContaining({ deviceId: 'job-a', jobId: 'tag-job', jobType: 'scheduleUpdateTwin', status: 'completed' })]);
  });

  it('runs a device method job: the device answers and the job completes', async () => {
    const calls: unknown[] = [];
    leaf.onDeviceMethod('reboot', (request, response) => {
      calls.push(request.payload);
      void response.send(200, { rebooted: true });
    });
    await jobs.scheduleDeviceMethod('method-job', "deviceId = 'job-a'", { methodName: 'reboot', payload: { delay: 1 }, responseTimeoutInSeconds: 30 }, new Date(), 120);
    const job = await finished('method-job');
    expect(job.status).toBe('completed');
    expect(job.deviceJobStatistics).toMatchObject({ deviceCount: 1, succeededCount: 1, failedCount: 0 });
    expect(calls).toEqual([{ delay: 1 }]);
  });

  it('keeps a job with a future start time queued and cancels it', async () => {
    const created = (await jobs.scheduleTwinUpdate('later-job', "deviceId = 'job-c'", { tags: { late: true } }, new Date(Date.now() + 3_600_000), 120)).jobStatus as JobJson;
    expect(created.status).toBe('queued');
    const cancelled = (await jobs.cancelJob('later-job')).jobStatus as JobJson;
    expect(cancelled.status).toBe('cancelled');
    expect((await jobOf('later-job')).status).toBe('cancelled');
    expect(((await registry.getTwin('job-c')).responseBody as unknown as { tags: unknown }).tags).toEqual({});
  });

  it('lists jobs by type and status, a page at a time', async () => {
    const query = jobs.createQuery('scheduleUpdateTwin', undefined, 1);
    const ids: string[] = [];
    while (query.hasMoreResults) {
      // next() without an argument sends no continuation (an SDK quirk of its promise form): pass the token.
      const { result } = (await query.next(query.continuationToken as string)) as unknown as { result: JobJson[] };
      expect(result.length).toBeLessThanOrEqual(1);
      ids.push(...result.map((j) => j.jobId));
    }
    expect(ids.sort()).toEqual(['later-job', 'tag-job', 'twin-job']);
    const { result: cancelled } = (await jobs.createQuery(undefined, 'cancelled').next()) as unknown as { result: JobJson[] };
    expect(cancelled.map((j) => j.jobId)).toEqual(['later-job']);
  });

  it('answers an unknown job with 404 JobNotFound and a bad condition with 400', async () => {
    const missing = await jobs.getJob('no-such-job').then(() => undefined, (e: unknown) => e as { responseBody: string });
    expect(missing?.responseBody).toContain('ErrorCode:JobNotFound');
    const bad = await jobs.scheduleTwinUpdate('bad-job', 'deviceId = ', { tags: {} }, new Date(), 60).then(() => undefined, (e: unknown) => e as { responseBody: string });
    expect(bad?.responseBody).toContain('ErrorCode:ArgumentInvalid');
  });
});
